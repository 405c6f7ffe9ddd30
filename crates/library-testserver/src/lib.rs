//! An in-process Container Library server for tests and demos.
//!
//! [`TestServer`] listens on `127.0.0.1` (two ports) and speaks the library
//! protocol the way the Sylabs Container Library does: version, entities,
//! collections, containers, images, search, tags (v1 and per architecture),
//! delete, image download (streamed, or redirected with `303 See Other` to a
//! ranged blob endpoint on the same or on a second listener), v1 upload, v2
//! single upload and v2 multipart upload through presigned-style URLs that
//! check `Content-Length`, `x-amz-content-sha256` and part `ETag`s, and the
//! `v1/oci-redirect` probe. Optionally it hands out real presigned URLs of
//! an S3 server instead ([`S3Backend`]).
//!
//! Everything a test needs to make assertions is exposed: the log of every
//! request ([`TestServer::requests`]), the stored bytes of an image
//! ([`TestServer::image_bytes`]), the objects themselves
//! ([`TestServer::find_image`], [`TestServer::container`]), and queued
//! faults per endpoint ([`TestServer::inject`], [`Fault`]). A
//! [`ThrottledLink`] between a client and the server makes the network slow
//! or dead in either direction.
//!
//! The server runs on its own small tokio runtime, so it works the same
//! under a current-thread test runtime and a multi-thread one; dropping the
//! [`TestServer`] stops it.
//!
//! # Example
//!
//! ```
//! use library_testserver::{DownloadMode, TestServer};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = TestServer::builder()
//!         .api_version("2.0.0-alpha.2")
//!         .token("secret")
//!         .download(DownloadMode::RedirectOtherListener)
//!         .start()
//!         .await?;
//!
//!     // Seed an image: entity, collection and container are created as needed.
//!     let image = server.add_image("alice", "tools", "hello", &["latest"], "amd64", b"SIF".to_vec());
//!     assert_eq!(image.size, 3);
//!     assert!(image.uploaded);
//!     assert!(image.hash.starts_with("sha256."));
//!
//!     // It can be found the way a client would find it.
//!     let found = server.find_image("alice", "tools", "hello", "latest", "amd64").unwrap();
//!     assert_eq!(found.id, image.id);
//!     assert_eq!(server.image_bytes(&image.id).unwrap(), b"SIF");
//!
//!     // A client points at server.url(); redirected downloads go to server.blob_url().
//!     assert_ne!(server.url().port(), server.blob_url().port());
//!     assert!(server.requests().is_empty());
//!     server.shutdown().await;
//!     Ok(())
//! }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod body;
mod db;
mod faults;
mod in_flight;
mod link;
mod range;
mod record;
mod s3;
mod server;
mod store;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

pub use faults::{Endpoint, Fault, FaultAction};
pub use link::{LinkDirection, ThrottledLink, ThrottledLinkBuilder};
pub use range::ByteRange;
pub use record::{Listener, RecordedRequest};

/// The API version a server announces by default: v2 uploads and tags per
/// architecture.
pub const DEFAULT_API_VERSION: &str = "2.0.0-alpha.2";

/// The default multipart part size the server hands out: 64 MiB.
pub const DEFAULT_PART_SIZE: u64 = 64 * 1024 * 1024;

/// How `GET v1/imagefile/<ref>` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadMode {
    /// `200 OK` with the bytes, `Content-Length` and `Accept-Ranges: bytes`;
    /// a `Range: bytes=a-b` request on the same URL gets `206` (or `416`
    /// when unsatisfiable).
    Stream,
    /// `303 See Other` to `<url>/blobs/<imageID>?sig=…` on the library
    /// listener (same origin as the library).
    RedirectSameListener,
    /// `303 See Other` to `<blob_url>/blobs/<imageID>?sig=…`, another port
    /// and so another origin. The default.
    #[default]
    RedirectOtherListener,
}

/// Where the server keeps image bytes and uploaded parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Storage {
    /// In memory. The default.
    #[default]
    Memory,
    /// In files under this directory (created when missing), so that large
    /// images do not sit in memory; downloads stream from the files.
    Dir(PathBuf),
}

/// Whether the server offers the v2 multipart upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Multipart {
    /// `POST v2/imagefile/<id>/_multipart` starts an upload whose parts are
    /// `part_size` bytes (the last one the rest); the server decides
    /// `totalParts = ceil(filesize / part_size)`.
    Supported {
        /// Size of every part but the last, in bytes.
        part_size: u64,
    },
    /// `POST v2/imagefile/<id>/_multipart` answers `404`, so a client falls
    /// back to the single v2 upload.
    NotSupported,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::Supported {
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

/// A real S3 server to hand out presigned URLs for, instead of the test
/// server's own upload endpoints.
///
/// The server creates, completes and reads back objects itself (with path
/// style URLs, `<endpoint>/<bucket>/<key>`), signing with these keys.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Backend {
    /// Base URL of the S3 server, e.g. `http://127.0.0.1:9000/`. Only
    /// `http` is supported.
    pub endpoint: Url,
    /// The bucket to store objects in; created when missing.
    pub bucket: String,
    /// Access key ID.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Region used in signatures, e.g. `us-east-1`.
    pub region: String,
    /// Sign `x-amz-content-sha256` into the presigned URLs (the client then
    /// has to send that header with the body's SHA-256). The header is
    /// signed as an ordinary header with an `UNSIGNED-PAYLOAD` payload hash;
    /// a part whose request came without a `sha256sum` gets a host-only
    /// URL.
    pub sign_content_sha256: bool,
}

impl S3Backend {
    /// A backend with region `us-east-1` and host-only signed URLs.
    pub fn new(
        endpoint: Url,
        bucket: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        S3Backend {
            endpoint,
            bucket: bucket.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: "us-east-1".into(),
            sign_content_sha256: false,
        }
    }
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("endpoint", &self.endpoint.as_str())
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .field("sign_content_sha256", &self.sign_content_sha256)
            .finish()
    }
}

/// The configuration of a server, collected by [`TestServerBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) api_version: Option<String>,
    pub(crate) version: String,
    pub(crate) token: Option<String>,
    pub(crate) download: DownloadMode,
    pub(crate) storage: Storage,
    pub(crate) multipart: Multipart,
    pub(crate) s3_compliant: bool,
    pub(crate) s3: Option<S3Backend>,
    pub(crate) oci: Option<(Url, String)>,
    pub(crate) bind: IpAddr,
    pub(crate) port: u16,
    pub(crate) workers: Option<usize>,
    pub(crate) busy_above: Option<usize>,
    pub(crate) discovery: server::discovery::DiscoveryConfig,
}

/// Configures and starts a [`TestServer`].
///
/// ```
/// use library_testserver::{DownloadMode, Multipart, Storage, TestServer};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("testserver-doc-{}", std::process::id()));
/// let server = TestServer::builder()
///     .api_version("2.0.0-alpha.1")
///     .download(DownloadMode::Stream)
///     .storage(Storage::Dir(dir.clone()))
///     .multipart(Multipart::Supported { part_size: 5 * 1024 * 1024 })
///     .s3_compliant(true)
///     .start()
///     .await?;
/// assert_eq!(server.url().host_str(), Some("127.0.0.1"));
/// server.shutdown().await;
/// # let _ = std::fs::remove_dir_all(dir);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    config: Config,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            config: Config {
                api_version: Some(DEFAULT_API_VERSION.to_string()),
                version: format!("testserver-{}", env!("CARGO_PKG_VERSION")),
                token: None,
                download: DownloadMode::default(),
                storage: Storage::default(),
                multipart: Multipart::default(),
                s3_compliant: false,
                s3: None,
                oci: None,
                bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 0,
                workers: None,
                busy_above: None,
                discovery: Default::default(),
            },
        }
    }
}

impl TestServerBuilder {
    /// The `apiVersion` announced by `GET version`, which also decides what
    /// the server offers: `"1.0.0"` (v1 upload and v1 tags only; the v2
    /// endpoints answer 404), `"2.0.0-alpha.1"` (adds the v2 upload API),
    /// `"2.0.0-alpha.2"` (adds tags per architecture; the default).
    pub fn api_version(mut self, v: impl Into<String>) -> Self {
        self.config.api_version = Some(v.into());
        self
    }

    /// `GET version` answers without `apiVersion`; the server then behaves
    /// like a `1.0.0` server.
    pub fn no_api_version(mut self) -> Self {
        self.config.api_version = None;
        self
    }

    /// The `version` field of `GET version`; default
    /// `testserver-<crate version>`.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.config.version = v.into();
        self
    }

    /// Require `Authorization: Bearer <t>` on every library endpoint; a
    /// request without it (or with another value) gets `401` with an error
    /// envelope. The blob and upload endpoints never require it, like
    /// presigned URLs.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.config.token = Some(t.into());
        self
    }

    /// How `GET v1/imagefile/<ref>` answers; default
    /// [`DownloadMode::RedirectOtherListener`].
    pub fn download(mut self, mode: DownloadMode) -> Self {
        self.config.download = mode;
        self
    }

    /// Where image bytes are kept; default [`Storage::Memory`].
    pub fn storage(mut self, s: Storage) -> Self {
        self.config.storage = s;
        self
    }

    /// Whether multipart uploads are offered, and their part size; default
    /// 64 MiB parts.
    pub fn multipart(mut self, m: Multipart) -> Self {
        self.config.multipart = m;
        self
    }

    /// The `s3compliant` option of the multipart start answer (`"true"` or
    /// `"false"`; default false). When true, each part request must carry a
    /// `sha256sum`, the presigned URLs sign `x-amz-content-sha256`, and
    /// part and single-upload PUTs must send that header with the body's
    /// SHA-256.
    pub fn s3_compliant(mut self, yes: bool) -> Self {
        self.config.s3_compliant = yes;
        self
    }

    /// Hand out presigned URLs of a real S3 server instead of the server's
    /// own upload endpoints.
    pub fn s3(mut self, s3: S3Backend) -> Self {
        self.config.s3 = Some(s3);
        self
    }

    /// Answer `GET v1/oci-redirect` with this registry URL and token; when
    /// not set (the default) that endpoint answers 404, the "no OCI
    /// registry" case.
    pub fn oci_registry(mut self, url: Url, token: impl Into<String>) -> Self {
        self.config.oci = Some((url, token.into()));
        self
    }

    /// The address to listen on; default `127.0.0.1`. Both listeners get a
    /// free port of this address.
    pub fn bind(mut self, addr: IpAddr) -> Self {
        self.config.bind = addr;
        self
    }

    /// The library listener's port (default 0: a free port). The second
    /// listener (redirected downloads and uploads) always takes a free
    /// port. Starting fails when the port is taken.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// Serve at most `n` requests at once on the library listener, like a
    /// server with a fixed pool of worker threads (a WSGI or Java servlet
    /// server on site): a request holds its worker from the moment it is
    /// taken until its answer has been sent in full (or its connection
    /// closed), and further requests wait, unread, until a worker is free.
    /// A client that keeps a response body open and unread while it waits
    /// for another answer of the same server can deadlock such a server;
    /// this mode lets tests see that. Default: no limit. `n` is at least 1.
    ///
    /// The second listener (redirected downloads and uploads, standing for
    /// object storage) is not limited.
    ///
    /// ```
    /// use library_testserver::{DownloadMode, TestServer};
    /// # #[tokio::main] async fn main() -> std::io::Result<()> {
    /// let server = TestServer::builder()
    ///     .download(DownloadMode::Stream)
    ///     .workers(4)
    ///     .start()
    ///     .await?;
    /// assert_eq!(server.workers(), Some(4));
    /// # server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = Some(n.max(1));
        self
    }

    /// Answer `503 Service Unavailable` at once (without `Retry-After`, as
    /// nginx's `limit_conn` does) to image downloads beyond `n` in flight at
    /// once: a small server that refuses load instead of queueing it.
    /// Downloads are the GETs (and HEADs) of image bytes, whole or a
    /// `Range`, on whichever listener serves them (`v1/imagefile/…` in
    /// [`DownloadMode::Stream`], `blobs/…` otherwise); an admitted one
    /// counts as in flight until its body has been sent in full (or its
    /// connection closed). Other requests are never refused. The refusals
    /// are counted by [`TestServer::busy_answers`]. Default: no limit.
    ///
    /// With a limit, the server's connections keep small buffers (32 KiB
    /// in the connection and 32 KiB asked of the kernel for sending), so
    /// that an answer counts as in flight until its client has nearly all
    /// of it, as on a real network; loopback sockets and the HTTP
    /// connection's own buffer would otherwise take most of a part at once.
    ///
    /// ```
    /// use library_testserver::TestServer;
    /// # #[tokio::main] async fn main() -> std::io::Result<()> {
    /// let server = TestServer::builder()
    ///     .refuse_downloads_above(4)
    ///     .start()
    ///     .await?;
    /// assert_eq!(server.download_limit(), Some(4));
    /// assert_eq!(server.busy_answers(), 0);
    /// # server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn refuse_downloads_above(mut self, n: usize) -> Self {
        self.config.busy_above = Some(n);
        self
    }

    /// The `libraryAPI.uri` of `GET assets/config/config.prod.json`
    /// (service discovery); default: the server itself.
    pub fn discovery_library(mut self, url: Url) -> Self {
        self.config.discovery.library = Some(url);
        self
    }

    /// Answer service discovery with this body (status 200, type JSON)
    /// instead of the generated one: a body that is not JSON, or one
    /// without `libraryAPI`.
    pub fn discovery_body(mut self, body: impl Into<String>) -> Self {
        self.config.discovery.body = Some(body.into());
        self
    }

    /// `GET v1/rbac/users/current` answers 404, as on libraries that lack
    /// it (Hinkskalle); default: it answers the user of the token.
    pub fn no_current_user(mut self) -> Self {
        self.config.discovery.no_current_user = true;
        self
    }

    /// Binds both listeners and starts serving.
    pub async fn start(self) -> std::io::Result<TestServer> {
        server::start(self.config).await
    }
}

/// A running library server. Dropping it stops both listeners.
///
/// See the [crate documentation](crate) for an example.
pub struct TestServer {
    shared: Arc<server::Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    library_addr: SocketAddr,
    blob_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url().as_str())
            .field("blob_url", &self.blob_url().as_str())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// A builder with the defaults: API `2.0.0-alpha.2`, no token,
    /// redirected downloads to the second listener, memory storage, 64 MiB
    /// multipart parts, not S3-compliant, no OCI registry.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Starts a server with the defaults (see [`TestServer::builder`]).
    pub async fn start() -> std::io::Result<TestServer> {
        Self::builder().start().await
    }

    /// Base URL of the library listener, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> Url {
        self.shared.library_url.clone()
    }

    /// Base URL of the second listener as the server hands it out in
    /// redirected downloads (`blobs/…`) and presigned-style upload URLs
    /// (`uploads/…`): `http://127.0.0.1:PORT2/` (of
    /// [`blob_addr`](Self::blob_addr)) unless changed by
    /// [`advertise_blob_url`](Self::advertise_blob_url).
    pub fn blob_url(&self) -> Url {
        self.shared.blob_url()
    }

    /// Hands out `url` instead of the blob listener's own URL in the
    /// redirects and upload URLs of later requests (answers already given
    /// keep theirs), so that something in front of
    /// [`blob_addr`](Self::blob_addr), such as a [`ThrottledLink`], carries
    /// every image byte of pulls and pushes. The listener itself stays where
    /// it is; `url` should lead to it. A path in `url` is kept as the base
    /// (end it with `/`).
    ///
    /// The link needs the blob address, so start the server first, then the
    /// link, then advertise the link:
    ///
    /// ```
    /// use library_testserver::{LinkDirection, TestServer, ThrottledLink};
    /// # #[tokio::main] async fn main() -> std::io::Result<()> {
    /// let server = TestServer::start().await?;
    /// let link = ThrottledLink::builder(server.blob_addr())
    ///     .down(LinkDirection::new().rate(40_000_000))
    ///     .start()
    ///     .await?;
    /// server.advertise_blob_url(link.url());
    /// assert_eq!(server.blob_url(), link.url());
    /// // Pulls redirected by server.url() now download through the link.
    /// # server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn advertise_blob_url(&self, url: Url) {
        self.shared.set_blob_url(url)
    }

    /// How many image downloads were answered `503` because more than
    /// [`refuse_downloads_above`](TestServerBuilder::refuse_downloads_above)
    /// were in flight.
    pub fn busy_answers(&self) -> u64 {
        self.shared.in_flight.refused_downloads()
    }

    /// The limit set by
    /// [`refuse_downloads_above`](TestServerBuilder::refuse_downloads_above),
    /// if any.
    pub fn download_limit(&self) -> Option<usize> {
        self.shared.config.busy_above
    }

    /// Every request seen so far on both listeners, in the order they
    /// arrived.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.all()
    }

    /// The bytes of stored image data (image downloads, their ranges, and
    /// blobs) this server has sent in answer bodies so far, counted as the
    /// body frames go out.
    pub fn image_bytes_sent(&self) -> u64 {
        self.shared
            .image_bytes_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared.log.clear()
    }

    /// Queues a fault; the next matching requests get it. Faults are tried
    /// in the order they were queued; the first one that matches and has
    /// uses left applies.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.push(fault)
    }

    /// The uploaded bytes of an image, if it has any.
    pub fn image_bytes(&self, image_id: &str) -> Option<Vec<u8>> {
        let data = self.shared.db().blob(image_id)?;
        data.read_all().ok()
    }

    /// The image a client would get for
    /// `GET v1/images/<entity>/<collection>/<container>:<tag>?arch=<arch>`
    /// (`tag` may be a `sha256.<hex>` hash).
    pub fn find_image(
        &self,
        entity: &str,
        collection: &str,
        container: &str,
        tag: &str,
        arch: &str,
    ) -> Option<library_model::Image> {
        let db = self.shared.db();
        let path = db::Path::new(entity, collection, container);
        let image = db.find_image(&path, tag, Some(arch))?;
        Some(db.present_image(image))
    }

    /// A container, with its tags, image IDs and download count.
    pub fn container(
        &self,
        entity: &str,
        collection: &str,
        container: &str,
    ) -> Option<library_model::Container> {
        let db = self.shared.db();
        let path = db::Path::new(entity, collection, container);
        let c = db.find_container(&path)?;
        Some(db.present_container(c))
    }

    /// Seeds an uploaded image, creating the entity, collection and
    /// container as needed, and points `tags` at it (for `arch` and
    /// without architecture). The image gets hash `sha256.<hex>` of
    /// `bytes`, their size, `arch` and `uploaded: true`.
    ///
    /// # Panics
    ///
    /// When the bytes cannot be written to the storage directory.
    pub fn add_image(
        &self,
        entity: &str,
        collection: &str,
        container: &str,
        tags: &[&str],
        arch: &str,
        bytes: Vec<u8>,
    ) -> library_model::Image {
        let hash = format!("sha256.{}", store::sha256_hex(&bytes));
        let data = self
            .shared
            .store
            .put(bytes)
            .expect("test server: storing seeded image");
        let mut db = self.shared.db();
        let path = db::Path::new(entity, collection, container);
        let id = db.seed_image(&path, tags, arch, hash, data);
        let image = db.image(&id).expect("seeded image");
        db.present_image(image)
    }

    /// Changes the hash an image's record states, leaving its bytes as
    /// they are: `sif.<uuid>` for an image from before hashes were
    /// SHA-256 (a client then has nothing to verify against), or a wrong
    /// `sha256.<hex>`. Returns false when there is no such image.
    pub fn set_image_hash(&self, image_id: &str, hash: impl Into<String>) -> bool {
        match self.shared.db().image_mut(image_id) {
            Some(image) => {
                image.hash = hash.into();
                true
            }
            None => false,
        }
    }

    /// Stops both listeners and waits until they are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    /// The most requests `listener` has handled at once since the server
    /// started or since [`reset_peaks`](Self::reset_peaks). A request counts
    /// from its arrival until its answer has been sent in full (or its
    /// connection closed), waiting for a worker included.
    pub fn peak_in_flight(&self, listener: Listener) -> usize {
        self.shared.in_flight.peak(listener)
    }

    /// Starts [`peak_in_flight`](Self::peak_in_flight) again from the
    /// requests in flight now.
    pub fn reset_peaks(&self) {
        self.shared.in_flight.reset_peaks()
    }

    /// The size of the worker pool of the library listener, when it has
    /// one (see [`TestServerBuilder::workers`]).
    pub fn workers(&self) -> Option<usize> {
        self.shared.config.workers
    }

    /// Address of the library listener.
    pub fn library_addr(&self) -> SocketAddr {
        self.library_addr
    }

    /// Address of the blob listener.
    pub fn blob_addr(&self) -> SocketAddr {
        self.blob_addr
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
