//! The byte mover of the Container Library client: an HTTP client stack on
//! hyper and rustls, JSON request helpers, a concurrent ranged download
//! engine, safe destinations, uploads (single range PUT and concurrent
//! multipart), checksums, retries and progress.
//!
//! It knows HTTP and files, and nothing about entities or images.
#![deny(missing_docs)]

mod body;
mod checksum;
mod client;
mod dest;
mod download;
mod error;
mod json;
mod progress;
mod retry;
mod upload;
mod util;

pub use body::{Body, Response, ResponseBody};
pub use client::{HttpClient, HttpClientBuilder, RootSource};
pub use error::{BoxError, Error, Result};
pub use progress::{NoProgress, Progress};
pub use retry::{retry, Backoff, RetryConfig};
pub use util::{
    hex, parse_content_length, parse_content_range, parse_content_range_exact, parse_sha256_hex,
    part_size, redact_url, remote_sha256_support, same_origin, HeaderParseError,
};
pub use checksum::{checksums, sha256_file, Checksums};
pub use dest::Destination;
pub use download::{copy_response, Downloaded, RangedDownload};
pub use json::{error_message, status_accepted, JsonResponse, NO_BODY};
pub use upload::{CompletedPart, MultipartUpload, PartInfo, PartTarget};
