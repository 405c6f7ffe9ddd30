//! The fault matrix: pulls and pushes on the library path and on the OCI
//! path under a misbehaving server, a full disk and cancellation. Every
//! case checks the outcome, that the destination is untouched unless the
//! pull succeeded, that no temporary file is left (unless resuming), and
//! that a resumed pull after the failure gives a byte-identical file.

mod cancel;
mod disk;
mod oci;
mod pull_library;
mod push_library;
mod requests;
