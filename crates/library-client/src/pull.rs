//! Pulling images.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, LOCATION};
use http::{Method, StatusCode};
use library_transport::{Concurrency, Destination, NoProgress, Progress, RangedDownload};
use tokio::io::AsyncWrite;
use url::Url;

use crate::api::{check_image_path, check_tag};
use crate::cache::{Cache, CacheUse};
use crate::client::Client;
use crate::error::{Error, Result};

/// How a download is split: the number of parts fetched at once and the
/// size of each part.
///
/// By default the number of parts in flight is found while the image
/// comes, up to 16 ([`Concurrency::Auto`]): more streams as long as they
/// make the download faster, fewer when the server refuses the load. The
/// part size is chosen from the image's size, a 64th of it between 5 and
/// 64 MiB, so that large images need fewer requests on long round trips.
/// Singularity and Apptainer use 3 streams of 5 MiB.
///
/// ```
/// use library_client::{Concurrency, Downloader};
/// let d = Downloader::default();
/// assert_eq!(d.concurrency, Concurrency::Auto { max: 16 });
/// assert_eq!(d.part_size_for(100 << 20), 5 << 20);
/// assert_eq!(d.part_size_for(2 << 30), 32 << 20);
/// // As Apptainer does:
/// let d = Downloader { concurrency: Concurrency::Fixed(3), part_size: Some(5 << 20) };
/// assert_eq!(d.part_size_for(2 << 30), 5 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Downloader {
    /// Parts fetched at once: automatic up to a maximum, or fixed (at
    /// least 1 either way).
    pub concurrency: Concurrency,
    /// Bytes per part (at least 1), or `None` to choose from the image's
    /// size.
    pub part_size: Option<u64>,
}

impl Downloader {
    /// The smallest part size chosen (the part size of Apptainer).
    pub const MIN_AUTO_PART_SIZE: u64 = 5 << 20;
    /// The largest part size chosen.
    pub const MAX_AUTO_PART_SIZE: u64 = 64 << 20;

    /// The part size for an image of `image_size` bytes: the one set, or
    /// a 64th of the image between [`MIN_AUTO_PART_SIZE`](Self::MIN_AUTO_PART_SIZE)
    /// and [`MAX_AUTO_PART_SIZE`](Self::MAX_AUTO_PART_SIZE).
    pub fn part_size_for(&self, image_size: u64) -> u64 {
        self.part_size.unwrap_or_else(|| {
            (image_size / 64).clamp(Self::MIN_AUTO_PART_SIZE, Self::MAX_AUTO_PART_SIZE)
        })
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.concurrency.max() == 0 || matches!(self.concurrency, Concurrency::Fixed(0)) {
            return Err(Error::bad_request(
                "the number of parts at once must be at least 1",
            ));
        }
        if self.part_size == Some(0) {
            return Err(Error::bad_request("the part size must be at least 1 byte"));
        }
        Ok(())
    }
}

/// What to pull: a container path, a tag, an architecture, and how.
///
/// ```
/// use library_client::{Concurrency, Downloader, Pull};
/// let p = Pull::new("alice/tools/samtools")
///     .tag("1.17")
///     .arch("arm64")
///     .downloader(Downloader { concurrency: Concurrency::Fixed(4), ..Downloader::default() })
///     .resume(true);
/// assert_eq!(p.tag_name(), "1.17");
/// ```
#[derive(Clone)]
#[must_use]
pub struct Pull {
    pub(crate) path: String,
    pub(crate) tag: String,
    pub(crate) arch: String,
    pub(crate) downloader: Downloader,
    pub(crate) resume: bool,
    pub(crate) progress: Arc<dyn Progress>,
    pub(crate) replace: bool,
    pub(crate) max_size: u64,
    pub(crate) cache: Option<Cache>,
}

impl fmt::Debug for Pull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pull")
            .field("path", &self.path)
            .field("tag", &self.tag)
            .field("arch", &self.arch)
            .field("downloader", &self.downloader)
            .field("resume", &self.resume)
            .field("replace_existing", &self.replace)
            .field("max_image_size", &self.max_size)
            .field("cache", &self.cache.as_ref().map(Cache::dir))
            .finish_non_exhaustive()
    }
}

impl Pull {
    /// Pull `path` (`entity/collection/container`, or a shorter path the
    /// library completes, such as `alpine`) at tag `latest`, for this
    /// machine's architecture ([`default_arch`](crate::default_arch)).
    /// A `library://` prefix is accepted; tags go through [`Pull::tag`].
    pub fn new(path: impl Into<String>) -> Pull {
        let path = path.into();
        let path = path
            .strip_prefix("library://")
            .map(str::to_string)
            .unwrap_or(path);
        Pull {
            path,
            tag: "latest".to_string(),
            arch: crate::default_arch().to_string(),
            downloader: Downloader::default(),
            resume: false,
            progress: Arc::new(NoProgress),
            replace: true,
            max_size: library_transport::DEFAULT_MAX_IMAGE_SIZE,
            cache: None,
        }
    }

    /// Pull through this image cache (default: none). An image whose
    /// entry the cache holds is not downloaded; one that it does not hold
    /// is downloaded into it once, however many processes pull it at the
    /// same time, and the destination is produced from the entry (see
    /// [`Cache`]). A cache that cannot be used (its location is not
    /// writable) is skipped: the pull goes on without it and says so in
    /// [`PulledImage::cache`].
    ///
    /// ```
    /// use library_client::{Cache, Pull};
    /// let p = Pull::new("alpine").cache(Cache::new("/tmp/apptainer-cache"));
    /// assert!(format!("{p:?}").contains("apptainer-cache"));
    /// ```
    pub fn cache(mut self, cache: Cache) -> Pull {
        self.cache = Some(cache);
        self
    }

    /// Whether an existing file at the destination may be replaced
    /// (default: yes, atomically).
    ///
    /// With `false` the pull fails with an [`Error::Io`] of kind
    /// [`AlreadyExists`](std::io::ErrorKind::AlreadyExists) naming the
    /// destination when it exists before the pull, or when a file appears
    /// there while the pull runs: the final rename never replaces it.
    pub fn replace_existing(mut self, yes: bool) -> Pull {
        self.replace = yes;
        self
    }

    /// The largest image accepted (default
    /// [`DEFAULT_MAX_IMAGE_SIZE`](library_transport::DEFAULT_MAX_IMAGE_SIZE),
    /// 1 TiB). A larger size stated by the server is refused before
    /// anything is created or downloaded; so is a size the destination's
    /// file system has no room for (an [`Error::Io`] of kind
    /// [`StorageFull`](std::io::ErrorKind::StorageFull)).
    pub fn max_image_size(mut self, bytes: u64) -> Pull {
        self.max_size = bytes;
        self
    }

    /// The tag (or `sha256.<hex>` image hash) to pull; default `latest`.
    pub fn tag(mut self, tag: impl Into<String>) -> Pull {
        self.tag = tag.into();
        self
    }

    /// The architecture to pull (default: this machine's).
    pub fn arch(mut self, arch: impl Into<String>) -> Pull {
        self.arch = arch.into();
        self
    }

    /// Concurrency and part size of ranged downloads.
    pub fn downloader(mut self, d: Downloader) -> Pull {
        self.downloader = d;
        self
    }

    /// Keep a failed download's partial file beside the destination and
    /// continue from it next time (default: start over).
    pub fn resume(mut self, yes: bool) -> Pull {
        self.resume = yes;
        self
    }

    /// Report progress here (default: nowhere).
    pub fn progress(mut self, p: Arc<dyn Progress>) -> Pull {
        self.progress = p;
        self
    }

    /// The container path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag.
    pub fn tag_name(&self) -> &str {
        &self.tag
    }

    /// The architecture.
    pub fn arch_name(&self) -> &str {
        &self.arch
    }

    /// The download settings.
    pub fn downloader_settings(&self) -> Downloader {
        self.downloader
    }

    /// Whether partial files are kept for resuming.
    pub fn is_resumable(&self) -> bool {
        self.resume
    }

    /// The progress sink.
    pub fn progress_sink(&self) -> Arc<dyn Progress> {
        self.progress.clone()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.contains(':') {
            return Err(Error::bad_request(format!(
                "image path {:?} must not contain a tag: give the tag separately",
                self.path
            )));
        }
        check_image_path(&self.path)?;
        check_tag(&self.tag)?;
        if self.arch.is_empty() {
            return Err(Error::bad_request("the architecture must not be empty"));
        }
        self.downloader.check()
    }
}

/// How the bytes of a pulled image travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// Concurrent ranged parts from the URL the library redirected to.
    Ranged,
    /// One stream from the library itself.
    Stream,
    /// From the OCI registry the library fronts.
    Oci,
    /// No image byte travelled: the destination was produced from the
    /// cache, or already held the image.
    Local,
}

/// A pulled image, in place under its destination name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PulledImage {
    /// Where the image is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The hex SHA-256 of its bytes.
    pub sha256: String,
    /// Whether the bytes were checked against a digest the server stated
    /// (the image's `sha256.` hash, or the OCI layer digest).
    pub verified: bool,
    /// How the bytes came.
    pub transfer: Transfer,
    /// How the cache was used (and whether the destination was already up
    /// to date).
    pub cache: CacheUse,
    /// The parts in flight allowed when the download ended (1 for one
    /// stream, 0 when no image byte travelled).
    pub streams: usize,
    /// Part requests sent again after a failure or a refusal.
    pub retries: u64,
}

impl Client {
    /// Pull an image into the file `dest`.
    ///
    /// The library is asked first whether it keeps its images in an OCI
    /// registry (then the image comes from there); otherwise the image
    /// record (`GET v1/images/<path>:<tag>?arch=<arch>`) is fetched, and
    /// then `GET v1/imagefile/<path>:<tag>?arch=<arch>` either streams the
    /// image (200) or redirects (303) to a URL that serves byte ranges,
    /// fetched in concurrent parts. Every part is checked and retried; the
    /// whole is checked against the record's `sha256.` hash. A record that
    /// cannot be fetched fails the pull; only a record that states no
    /// SHA-256 (an old `sif.<uuid>` hash) gives an unverified image
    /// ([`PulledImage::verified`] is false). The bytes land in a temporary file beside `dest`, renamed into
    /// place only when complete and verified: on failure `dest` is left as
    /// it was. An existing `dest` is replaced atomically, unless
    /// [`Pull::replace_existing`] says not to.
    ///
    /// The library's token goes to the redirect target only when it is on
    /// the library's own origin (scheme, host and port).
    ///
    /// ```no_run
    /// # async fn demo(client: library_client::Client) -> library_client::Result<()> {
    /// use library_client::Pull;
    /// let img = client.download_image("alpine.sif", &Pull::new("library/default/alpine")).await?;
    /// assert!(img.verified);
    /// # Ok(()) }
    /// ```
    pub async fn download_image(&self, dest: impl AsRef<Path>, pull: &Pull) -> Result<PulledImage> {
        pull.validate()?;
        let dest = dest.as_ref();
        let r = match self.oci_target(&pull.path, false).await {
            Some(target) => crate::oci::pull_via_library(self, &target, pull, dest).await,
            None => self.download_library(dest, pull).await,
        };
        r.map_err(|e| self.scrub(e))
    }

    /// `GET url` with the library's token when `url` is on the library's
    /// origin, sent again while it fails in a way that may be retried.
    async fn get_retrying(&self, url: &Url) -> Result<library_transport::Response> {
        Ok(self
            .inner
            .http
            .send_with_retry(&self.inner.retry, || {
                library_transport::new_request(
                    Method::GET,
                    url,
                    &self.auth_headers_for(url),
                    library_transport::Body::empty(),
                )
            })
            .await?)
    }

    /// Downloads the image the library streams itself (`resp`, a 200).
    /// A stream that fails in a way that may be retried (cut, short, too
    /// long, timed out) starts over with a new request, up to the retry
    /// policy's count: without ranges there is no way to continue it. Each
    /// attempt writes a fresh temporary file; the destination changes only
    /// when an attempt completes and is verified.
    async fn download_stream_restarting(
        &self,
        resp: library_transport::Response,
        url: &Url,
        dest: &Path,
        pull: &Pull,
        expected: Option<&str>,
    ) -> Result<library_transport::Downloaded> {
        let progress = Arc::new(Restarting::new(pull.progress.clone()));
        let mut attempts = library_transport::Attempts::new(&self.inner.retry, &Method::GET);
        let mut resp = resp;
        let r = async {
            loop {
                progress.next_attempt();
                let mut d = Destination::new(dest)
                    .resumable(false)
                    .replace(pull.replace)
                    .max_size(pull.max_size);
                if let Some(hex) = expected {
                    d = d.expect_sha256_hex(hex)?;
                }
                let e = match self
                    .inner
                    .http
                    .download_response(resp, d, progress.clone())
                    .await
                {
                    Ok(got) => return Ok(got),
                    Err(e) => e,
                };
                let Some(delay) = attempts.after_error(&e) else {
                    return Err(Error::from(e));
                };
                tracing::debug!(retries = attempts.retries(), error = %e, delay_ms = delay.as_millis() as u64, "stream failed; starting over");
                tokio::time::sleep(delay).await;
                resp = self.get_retrying(url).await?;
                if resp.status() != StatusCode::OK {
                    return Err(crate::client::status_error(resp).await);
                }
            }
        }
        .await;
        if r.is_err() {
            pull.progress.abort();
        }
        r
    }

    async fn download_library(&self, dest: &Path, pull: &Pull) -> Result<PulledImage> {
        let image_ref = format!("{}:{}", pull.path, pull.tag);
        // The image record comes first, as in Apptainer: its hash verifies
        // the bytes and its size sizes a ranged download. Asking for it
        // while an image body of the same server is open and unread would
        // keep one of that server's workers busy sending the body while
        // this pull waits for another; with more pulls than workers, none
        // would advance. A record that cannot be had fails the pull.
        let image = self.get_image(&pull.arch, &image_ref).await?;
        let expected = sha256_of(&image);
        let Some(hex) = expected.clone() else {
            return self.fetch_library(dest, pull, &image, None).await;
        };
        let size = u64::try_from(image.size).unwrap_or(0);
        if size > 0 && crate::cache::up_to_date(dest, size, &hex).await {
            return Ok(up_to_date_image(dest, size, hex));
        }
        let reference = format!("library://{image_ref}");
        let (dest, pull) = (dest.to_path_buf(), pull.clone());
        let expected = Some(hex.clone());
        through_cache(&pull, &hex, &reference, &dest, |at, pull| async move {
            self.fetch_library(&at, &pull, &image, expected).await
        })
        .await
    }

    /// Downloads the image of the record `image` into `dest`, checked
    /// against `expected` when known.
    async fn fetch_library(
        &self,
        dest: &Path,
        pull: &Pull,
        image: &library_model::Image,
        expected: Option<String>,
    ) -> Result<PulledImage> {
        let image_ref = format!("{}:{}", pull.path, pull.tag);
        let url = self.endpoint(
            &format!("v1/imagefile/{image_ref}"),
            &[("arch", pull.arch.as_str())],
        )?;
        let resp = self.get_retrying(&url).await?;
        let status = resp.status();
        match status {
            StatusCode::OK => {
                // The library serves the image itself. When it says it
                // serves byte ranges, fetch concurrent parts from the same
                // URL (on the library's origin, so with its token);
                // otherwise take the one stream.
                let ranges = resp
                    .headers()
                    .get(ACCEPT_RANGES)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"));
                if let Some(len) = resp.content_length().filter(|&n| n > 0) {
                    let worth_it = pull.resume
                        || (pull.downloader.concurrency.max() > 1
                            && len > pull.downloader.part_size_for(len));
                    if ranges && worth_it {
                        // Closed before the parts are asked for, so that
                        // the worker sending it is free for them.
                        drop(resp);
                        return self
                            .download_ranged_from(dest, pull, url, len, expected)
                            .await;
                    }
                }
                let got = self
                    .download_stream_restarting(resp, &url, dest, pull, expected.as_deref())
                    .await?;
                Ok(PulledImage {
                    path: got.path,
                    size: got.size,
                    sha256: library_transport::hex(&got.sha256),
                    verified: expected.is_some(),
                    transfer: Transfer::Stream,
                    cache: CacheUse::None,
                    streams: got.streams,
                    retries: got.retries,
                })
            }
            StatusCode::SEE_OTHER => {
                let target = redirect_target(resp, &url).await?;
                if image.size <= 0 {
                    return Err(Error::Http {
                        url: library_transport::redact_url(&target),
                        status,
                        code: None,
                        message: Some(format!(
                            "the library gives image size {}, cannot download in parts",
                            image.size
                        )),
                    });
                }
                self.download_ranged_from(dest, pull, target, image.size as u64, expected)
                    .await
            }
            StatusCode::NOT_FOUND => {
                let body = resp.bytes_limited(64 * 1024).await.unwrap_or_default();
                Err(Error::NotFound {
                    what: format!("image {image_ref} (arch {})", pull.arch),
                    message: library_transport::error_message(&body).1,
                })
            }
            _ => Err(crate::client::status_error(resp).await),
        }
    }

    async fn download_ranged_from(
        &self,
        dest: &Path,
        pull: &Pull,
        target: Url,
        size: u64,
        expected: Option<String>,
    ) -> Result<PulledImage> {
        let mut d = Destination::new(dest)
            .resumable(pull.resume)
            .replace(pull.replace)
            .max_size(pull.max_size);
        if let Some(hex) = &expected {
            d = d.expect_sha256_hex(hex)?;
        }
        let job = RangedDownload::new(target.clone(), size)
            .headers(self.auth_headers_for(&target))
            .part_size(pull.downloader.part_size_for(size))
            .streams(pull.downloader.concurrency)
            .retry(self.inner.retry.clone());
        let got = self
            .inner
            .http
            .download_ranged(&job, d, pull.progress.clone())
            .await?;
        Ok(PulledImage {
            path: got.path,
            size: got.size,
            sha256: library_transport::hex(&got.sha256),
            verified: expected.is_some(),
            transfer: Transfer::Ranged,
            cache: CacheUse::None,
            streams: got.streams,
            retries: got.retries,
        })
    }

    /// Pull an image as one stream into any writer (the reference client's
    /// `DownloadImage`). Nothing is verified on disk here, but the stream's
    /// byte count is checked against `Content-Length`, and against the
    /// image's hash when the library states one. Returns the byte count.
    ///
    /// ```no_run
    /// # async fn demo(client: library_client::Client) -> library_client::Result<()> {
    /// use library_client::Pull;
    /// let mut buf = Vec::new();
    /// let n = client.download_image_to_writer(&mut buf, &Pull::new("alice/tools/samtools")).await?;
    /// assert_eq!(n as usize, buf.len());
    /// # Ok(()) }
    /// ```
    pub async fn download_image_to_writer<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        writer: &mut W,
        pull: &Pull,
    ) -> Result<u64> {
        self.download_to_writer(writer, pull)
            .await
            .map_err(|e| self.scrub(e))
    }

    async fn download_to_writer<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        writer: &mut W,
        pull: &Pull,
    ) -> Result<u64> {
        pull.validate()?;
        let image_ref = format!("{}:{}", pull.path, pull.tag);
        let url = self.endpoint(
            &format!("v1/imagefile/{image_ref}"),
            &[("arch", pull.arch.as_str())],
        )?;
        // The record first (see `download_library`): its hash checks the
        // stream, and no image body is open while it is asked for.
        let image = self.get_image(&pull.arch, &image_ref).await?;
        let expected = sha256_of(&image);
        let mut current = url.clone();
        // Follow at most a few redirects, sending the token only where it belongs.
        for _ in 0..5 {
            let resp = self.get_retrying(&current).await?;
            match resp.status() {
                s if s.is_redirection() => {
                    let next = redirect_target(resp, &current).await?;
                    current = next;
                }
                StatusCode::OK => {
                    if resp.headers().get(CONTENT_LENGTH).is_none() {
                        tracing::debug!("image stream without Content-Length");
                    }
                    let (n, digest) =
                        library_transport::copy_response(resp, writer, pull.progress.as_ref())
                            .await?;
                    let actual = library_transport::hex(&digest);
                    if let Some(e) = &expected {
                        if *e != actual {
                            return Err(Error::DigestMismatch {
                                expected: format!("sha256:{e}"),
                                actual: format!("sha256:{actual}"),
                            });
                        }
                    }
                    return Ok(n);
                }
                StatusCode::NOT_FOUND => {
                    return Err(Error::NotFound {
                        what: format!("image {image_ref} (arch {})", pull.arch),
                        message: None,
                    })
                }
                _ => return Err(crate::client::status_error(resp).await),
            }
        }
        Err(Error::invalid_response(
            library_transport::redact_url(&url),
            "too many redirects",
        ))
    }
}

/// The result of a pull onto a destination that already held the image.
pub(crate) fn up_to_date_image(dest: &Path, size: u64, hex: String) -> PulledImage {
    PulledImage {
        path: dest.to_path_buf(),
        size,
        sha256: hex,
        verified: true,
        transfer: Transfer::Local,
        cache: CacheUse::UpToDate,
        streams: 0,
        retries: 0,
    }
}

/// Pulls into `dest` through `pull`'s cache, when it has one and it can
/// be used; `fetch(at, pull)` downloads to `at` with the settings of
/// `pull` (into the cache, replacing and not resumable; or straight
/// to the destination when there is no cache).
pub(crate) async fn through_cache<F, Fut>(
    pull: &Pull,
    hex: &str,
    reference: &str,
    dest: &Path,
    fetch: F,
) -> Result<PulledImage>
where
    F: FnOnce(PathBuf, Pull) -> Fut,
    Fut: std::future::Future<Output = Result<PulledImage>>,
{
    if !pull.replace && std::fs::symlink_metadata(dest).is_ok() {
        // Before any image byte is fetched (into the cache or not).
        return Err(Error::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the destination exists (and holds another image); it is not to be replaced",
            ),
        });
    }
    let Some(cache) = &pull.cache else {
        return fetch(dest.to_path_buf(), pull.clone()).await;
    };
    if let Err(reason) = cache.prepare() {
        tracing::warn!(%reason, "cache disabled");
        let mut got = fetch(dest.to_path_buf(), pull.clone()).await?;
        got.cache = CacheUse::Unusable { reason };
        return Ok(got);
    }
    let fill_pull = pull.clone().replace_existing(true).resume(false);
    // How the bytes came into the cache, if they had to.
    let mut how = (Transfer::Local, 0, 0);
    let t = crate::cache::fill::Target {
        dest,
        replace: pull.replace,
        max_size: pull.max_size,
        progress: pull.progress.clone(),
    };
    let (got, used) = crate::cache::pull_through(cache, hex, reference, &t, |at| {
        let how = &mut how;
        async move {
            let got = fetch(at, fill_pull).await?;
            *how = (got.transfer, got.streams, got.retries);
            Ok(())
        }
    })
    .await?;
    Ok(PulledImage {
        path: got.path,
        size: got.size,
        sha256: library_transport::hex(&got.sha256),
        verified: true,
        transfer: how.0,
        cache: used,
        streams: how.1,
        retries: how.2,
    })
}

/// Where a redirect of the library (`resp`, answering `from`) points: its
/// `Location` resolved against `from`, which must be an http or https URL.
/// The redirect's body is drained, so that its connection can be used
/// again.
async fn redirect_target(resp: library_transport::Response, from: &Url) -> Result<Url> {
    let status = resp.status();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    resp.into_body().drain(64 * 1024).await;
    let shown = library_transport::redact_url(from);
    let Some(location) = location else {
        return Err(Error::invalid_response(
            shown,
            format!("HTTP {status} without a Location"),
        ));
    };
    let target = from.join(&location).map_err(|e| {
        Error::invalid_response(shown.clone(), format!("invalid redirect target: {e}"))
    })?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(Error::invalid_response(
            shown,
            format!("redirect to a {:?} URL refused", target.scheme()),
        ));
    }
    Ok(target)
}

/// The hex SHA-256 an image record states (its hash `sha256.<hex>`), or
/// `None` for a record with a hash of another kind (`sif.<uuid>` of old
/// images) or none: such a pull cannot be verified, and says so. A
/// `sha256.` hash that is not 64 hex digits is kept, and fails the check.
fn sha256_of(image: &library_model::Image) -> Option<String> {
    image
        .hash
        .strip_prefix("sha256.")
        .map(str::to_ascii_lowercase)
}

/// Progress of a transfer whose attempts start over: each byte is
/// reported once (an attempt reports only what goes beyond the furthest
/// point an earlier one reached), and an attempt's `abort` is held back,
/// since the next attempt continues the same transfer; the caller aborts
/// when it gives up.
struct Restarting {
    inner: Arc<dyn Progress>,
    reached: std::sync::atomic::AtomicU64,
    this_attempt: std::sync::atomic::AtomicU64,
}

impl Restarting {
    fn new(inner: Arc<dyn Progress>) -> Restarting {
        Restarting {
            inner,
            reached: 0.into(),
            this_attempt: 0.into(),
        }
    }

    fn next_attempt(&self) {
        self.this_attempt
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Progress for Restarting {
    fn total(&self, bytes: u64) {
        self.inner.total(bytes);
    }

    fn increment(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.this_attempt.fetch_add(bytes, Relaxed) + bytes;
        let before = self.reached.fetch_max(now, Relaxed);
        if now > before {
            self.inner.increment(now - before);
        }
    }

    fn finish(&self) {
        self.inner.finish();
    }

    fn abort(&self) {}
}
