//! A client for the Container Library API: the HTTP service behind the
//! `library://` images of Singularity and Apptainer.
//!
//! [`Client`] talks to one library server. It validates references before
//! sending anything, pulls images with concurrent ranged downloads that are
//! retried, verified against the image's hash and renamed into place only
//! when complete, and pushes them with concurrent multipart uploads.
//!
//! # Example
//!
//! ```no_run
//! use library_client::{Client, Pull, Push};
//!
//! # async fn demo() -> library_client::Result<()> {
//! let client = Client::builder()
//!     .base_url("https://library.example.org")
//!     .token(std::env::var("LIBRARY_TOKEN").unwrap_or_default())
//!     .build()?;
//!
//! // Push a SIF file under two tags; the architecture comes from its header.
//! let pushed = client
//!     .upload_image("samtools.sif", &Push::new("alice/tools/samtools").tags(["1.17", "latest"]))
//!     .await?;
//! println!("pushed {}", pushed.hash);
//!
//! // Pull it back: 3 streams of 5 MiB parts, checked against its sha256.
//! let pulled = client
//!     .download_image("copy.sif", &Pull::new("alice/tools/samtools").tag("1.17").arch("amd64"))
//!     .await?;
//! println!("{} bytes, sha256 {}", pulled.size, pulled.sha256);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod api;
mod cache;
mod client;
mod envelope;
mod error;
pub mod oci;
mod presigned;
mod pull;
mod push;
pub mod remote;
pub mod sif;

pub use api::SearchArgs;
pub use cache::{Cache, CacheEntry, CacheUse, Cleaned};
pub use client::{Client, ClientBuilder};
pub use error::{Cause, Error, ErrorKind, Result};
pub use library_model as model;
pub use library_ref as reference;
pub use library_transport::{
    Concurrency, HttpClient, NoProgress, Progress, RetryConfig, RootSource,
};
pub use pull::{Downloader, Pull, PulledImage, Transfer};
pub use push::{Push, PushedImage, UploadKind};

pub use library_model::{API_VERSION_V2_ARCH_TAGS, API_VERSION_V2_UPLOAD};
/// The multipart option saying the server's object store is S3-compliant
/// (each part's SHA-256 is sent).
pub const OPTION_S3_COMPLIANT: &str = "s3compliant";
/// The library used when no base URL is configured.
pub const DEFAULT_BASE_URL: &str = "https://library.sylabs.io";

/// The content hash the library knows an image file by:
/// `sha256.` and the hex SHA-256 of its bytes.
///
/// ```no_run
/// # fn demo() -> library_client::Result<()> {
/// let hash = library_client::image_hash("alpine.sif")?;
/// assert!(hash.starts_with("sha256."));
/// # Ok(()) }
/// ```
pub fn image_hash(path: impl AsRef<std::path::Path>) -> Result<String> {
    let digest = library_transport::sha256_file(path.as_ref())?;
    Ok(format!("sha256.{}", library_transport::hex(&digest)))
}

/// The architecture of this machine, named as the library names
/// architectures (Go's names: `amd64`, `arm64`, `ppc64le`, ...).
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips" => "mips",
        other => other,
    }
}
