//! Security: where the bearer tokens go (and never go), redirects, bounded
//! buffering and sizes, references that could escape their path, and what
//! errors and Debug output show.

mod errors;
mod kinds;
mod limits;
mod paths;
mod redirects;
mod tokens;
