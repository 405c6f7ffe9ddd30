//! The byte mover of the Container Library client: an HTTP client stack on
//! hyper and rustls, JSON request helpers, a concurrent ranged download
//! engine, safe destinations, uploads (a byte range by PUT, and concurrent
//! multipart), checksums, retries and progress. It knows HTTP and files,
//! and nothing about entities or images.
//!
//! - [`HttpClient`] (built by [`HttpClient::builder`]) is one pooled
//!   HTTP/1.1 + HTTP/2 client, cheap to clone: TLS by rustls with the
//!   system roots (honouring `SSL_CERT_FILE`) plus extra CA files, proxies
//!   from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`/`ALL_PROXY`, a connect
//!   timeout, a timeout up to the response headers and an idle timeout per
//!   body frame. Redirects are never followed.
//! - [`HttpClient::request_json`] sends a JSON body and buffers the answer
//!   ([`JsonResponse`], capped), leaving the judging of its status to the
//!   caller; [`error_message`] reads the message of a JSON error body.
//! - [`HttpClient::download_ranged`] runs a [`RangedDownload`] into a
//!   [`Destination`]; [`HttpClient::download_stream`] and
//!   [`HttpClient::download_response`] download one stream;
//!   [`copy_response`] copies a body into any `AsyncWrite`.
//! - [`HttpClient::put_file_range`], [`HttpClient::upload_file_range`] and
//!   [`HttpClient::upload_parts`] upload.
//! - [`checksums`] computes MD5 and SHA-256 in one read.
//! - Errors are one [`Error`] type with predicates such as
//!   [`Error::is_not_found`] and [`Error::is_retryable`].
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use library_transport::{Destination, HttpClient, NoProgress, RangedDownload, NO_BODY};
//!
//! # async fn demo() -> library_transport::Result<()> {
//! let client = HttpClient::builder().user_agent("example/1.0").build()?;
//!
//! // A JSON request; the answer is buffered, its status left to the caller.
//! let base = url::Url::parse("https://library.example/").unwrap();
//! let answer = client
//!     .request_json(http::Method::GET, &base.join("version").unwrap(), &http::HeaderMap::new(), NO_BODY)
//!     .await?;
//! if answer.status.is_success() {
//!     let version: serde_json::Value = answer.decode()?;
//!     println!("{version}");
//! }
//!
//! // A verified concurrent download into a file, renamed into place when complete.
//! let job = RangedDownload::new(base.join("s3/image.sif").unwrap(), 50 << 20)
//!     .part_size(5 << 20)
//!     .concurrency(3);
//! let dest = Destination::new("image.sif").resumable(true);
//! let done = client.download_ranged(&job, dest, Arc::new(NoProgress)).await?;
//! println!("sha256.{}", done.sha256_hex());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod adaptive;
mod body;
mod checksum;
mod client;
mod dest;
mod download;
mod error;
mod gate;
mod json;
mod local;
mod progress;
mod retry;
mod upload;
mod util;

pub use adaptive::{Concurrency, Controller};
pub use body::{Body, Response, ResponseBody};
pub use checksum::{checksums, sha256_file, Checksums};
pub use client::{HttpClient, HttpClientBuilder, RootSource};
pub use dest::{Destination, DEFAULT_MAX_IMAGE_SIZE};
pub use download::{copy_response, Downloaded, RangedDownload, MAX_PARTS};
pub use error::{BoxError, Error, Result};
pub use json::{error_message, JsonResponse, NO_BODY};
pub use local::LocalCopy;
pub use progress::{NoProgress, Progress};
pub use retry::{Attempts, Backoff, RetryConfig};
pub use upload::{
    CompletedPart, FileRangeUpload, MultipartUpload, PartInfo, PartTarget, UploadedParts,
};
pub use util::{hex, new_request, parse_sha256_hex, redact_url, same_origin};

/// Parsers of the headers that carry byte counts (`Content-Length`,
/// `Content-Range`), with the reference's error kinds.
pub mod headers {
    pub use crate::util::{
        parse_content_length, parse_content_range, parse_content_range_exact, HeaderParseError,
    };
}
