//! Uploads: one byte range of a file by PUT, and concurrent multipart.

use std::fs::File;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use url::Url;

use crate::body::{Body, FILE_BLOCK};
use crate::client::HttpClient;
use crate::error::{Error, Result};
use crate::json::error_message;
use crate::progress::{Progress, ProgressGuard};
use crate::retry::RetryConfig;
use crate::util::{new_request, redact_url};

/// A request whose body is a byte range of a file: for example the
/// presigned S3 `PUT` of a whole image, or a v1 `POST` of its bytes. The
/// body is streamed from the file by offset with an exact
/// `Content-Length` and `Content-Type: application/octet-stream` (the
/// headers given here are added after, so they may override the type).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileRangeUpload {
    /// The request method (usually `PUT` or `POST`).
    pub method: Method,
    /// The target URL.
    pub url: Url,
    /// Extra request headers.
    pub headers: HeaderMap,
    /// The file to read.
    pub path: PathBuf,
    /// Where the range starts in the file.
    pub offset: u64,
    /// How many bytes to send.
    pub len: u64,
    /// Retry policy of the request.
    pub retry: RetryConfig,
}

impl FileRangeUpload {
    /// Sends `len` bytes of `path` from `offset` with `method` to `url`,
    /// with the default retry policy and no extra headers.
    pub fn new(method: Method, url: Url, path: impl Into<PathBuf>, offset: u64, len: u64) -> Self {
        FileRangeUpload {
            method,
            url,
            headers: HeaderMap::new(),
            path: path.into(),
            offset,
            len,
            retry: RetryConfig::default(),
        }
    }

    /// Sets the extra request headers.
    pub fn headers(mut self, h: HeaderMap) -> Self {
        self.headers = h;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, r: RetryConfig) -> Self {
        self.retry = r;
        self
    }
}

/// One part of a multipart upload, as handed to the target callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartInfo {
    /// The part number, from 1.
    pub number: u64,
    /// Offset of the part in the file.
    pub offset: u64,
    /// Length of the part in bytes.
    pub len: u64,
    /// The part's SHA-256, when [`MultipartUpload::part_sha256`] asked for it.
    pub sha256: Option<[u8; 32]>,
}

/// Where a part is uploaded: a URL (typically presigned) and extra headers
/// (for example `x-amz-content-sha256`).
#[derive(Debug, Clone)]
pub struct PartTarget {
    /// The URL to PUT the part to.
    pub url: Url,
    /// Extra headers for the PUT.
    pub headers: HeaderMap,
}

impl PartTarget {
    /// A target with no extra headers.
    pub fn new(url: Url) -> PartTarget {
        PartTarget {
            url,
            headers: HeaderMap::new(),
        }
    }
}

/// An uploaded part and the `ETag` the server answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part number, from 1.
    pub number: u64,
    /// The `ETag` response header, as sent (quotes included).
    pub etag: String,
}

/// A multipart upload of a file: parts of `part_size` bytes (the last one
/// shorter), as many uploaded at once as `streams` allows, each read from the
/// file by offset in 256 KiB blocks (memory is bounded by the streams,
/// not by the part size), each retried per `retry` before the upload
/// fails.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MultipartUpload {
    /// The file to upload.
    pub path: PathBuf,
    /// Bytes to upload from the start of the file.
    pub size: u64,
    /// Bytes per part.
    pub part_size: u64,
    /// How many parts are in flight at once: chosen by a
    /// [`Controller`](crate::Controller) up to 16 by default
    /// ([`Concurrency::Auto`](crate::Concurrency::Auto)), or fixed.
    pub streams: crate::Concurrency,
    /// Retry policy of each part.
    pub retry: RetryConfig,
    /// Compute each part's SHA-256 (by reading the part once before
    /// uploading it) and pass it in [`PartInfo::sha256`].
    pub part_sha256: bool,
}

impl MultipartUpload {
    /// An upload of the first `size` bytes of `path` in parts of `part_size`.
    pub fn new(path: impl Into<PathBuf>, size: u64, part_size: u64) -> MultipartUpload {
        MultipartUpload {
            path: path.into(),
            size,
            part_size: part_size.max(1),
            streams: crate::Concurrency::default(),
            retry: RetryConfig::default(),
            part_sha256: false,
        }
    }

    /// Uploads exactly `n` parts at once (at least 1): the same as
    /// `streams(Concurrency::Fixed(n))`.
    pub fn concurrency(self, n: usize) -> Self {
        self.streams(crate::Concurrency::Fixed(n.max(1)))
    }

    /// Sets how many parts are uploaded at once: a fixed number, or chosen
    /// by a [`Controller`](crate::Controller) up to a maximum.
    pub fn streams(mut self, c: crate::Concurrency) -> Self {
        self.streams = c;
        self
    }

    /// Sets the retry policy of each part.
    pub fn retry(mut self, r: RetryConfig) -> Self {
        self.retry = r;
        self
    }

    /// Asks for each part's SHA-256 (S3-compliant mode).
    pub fn part_sha256(mut self, yes: bool) -> Self {
        self.part_sha256 = yes;
        self
    }

    /// The number of parts.
    pub fn total_parts(&self) -> u64 {
        self.size.div_ceil(self.part_size)
    }

    /// The part with 1-based `number`.
    pub fn part(&self, number: u64) -> PartInfo {
        let offset = (number - 1) * self.part_size;
        PartInfo {
            number,
            offset,
            len: (self.size - offset).min(self.part_size),
            sha256: None,
        }
    }
}

/// Reports a part's bytes to the progress sink once, however often the
/// part is retried.
struct PartMeter {
    progress: Arc<dyn Progress>,
    reported: AtomicU64,
    /// Counts the bytes for the stream controller of a multipart upload.
    gate: Option<Arc<crate::gate::Gate>>,
}

impl PartMeter {
    fn attempt(self: &Arc<Self>) -> Arc<dyn Fn(u64) + Send + Sync> {
        let me = self.clone();
        let sent = AtomicU64::new(0);
        Arc::new(move |n| {
            let t = sent.fetch_add(n, Ordering::Relaxed) + n;
            let prev = me.reported.fetch_max(t, Ordering::Relaxed);
            if t > prev {
                if let Some(g) = &me.gate {
                    g.moved(t - prev);
                }
                me.progress.increment(t - prev);
            }
        })
    }
}

impl HttpClient {
    /// PUTs `len` bytes of the file at `path` from `offset` to `url` with
    /// an exact `Content-Length` and `Content-Type: application/octet-stream`
    /// (plus `headers`), streaming the body from the file. Retried per
    /// `retry`; any 2xx is success, and its headers are returned.
    ///
    /// ```no_run
    /// # async fn demo() -> library_transport::Result<()> {
    /// use library_transport::{HttpClient, RetryConfig};
    /// let client = HttpClient::new()?;
    /// let url = url::Url::parse("https://s3.example/bucket/key?X-Amz-Signature=x").unwrap();
    /// let path = std::path::Path::new("image.sif");
    /// let len = std::fs::metadata(path).unwrap().len();
    /// client.put_file_range(&url, &http::HeaderMap::new(), path, 0, len, &RetryConfig::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn put_file_range(
        &self,
        url: &Url,
        headers: &HeaderMap,
        path: &Path,
        offset: u64,
        len: u64,
        retry: &RetryConfig,
    ) -> Result<HeaderMap> {
        let up = FileRangeUpload::new(Method::PUT, url.clone(), path, offset, len)
            .headers(headers.clone())
            .retry(retry.clone());
        self.upload_file_range(&up, Arc::new(crate::progress::NoProgress))
            .await
    }

    /// Sends a byte range of a file as a request body (see
    /// [`FileRangeUpload`]), retried per its policy, reporting progress as
    /// the bytes are sent (a retry never reports bytes twice). Any 2xx is
    /// success, and its headers are returned.
    pub async fn upload_file_range(
        &self,
        up: &FileRangeUpload,
        progress: Arc<dyn Progress>,
    ) -> Result<HeaderMap> {
        let file = Arc::new(File::open(&up.path).map_err(|e| Error::io(&up.path, e))?);
        let flen = file.metadata().map_err(|e| Error::io(&up.path, e))?.len();
        if flen < up.offset.saturating_add(up.len) {
            return Err(Error::InvalidRequest(format!(
                "{} has {flen} bytes, fewer than {} + {}",
                up.path.display(),
                up.offset,
                up.len
            )));
        }
        let path = Arc::new(up.path.clone());
        let guard = ProgressGuard::new(progress.clone());
        progress.total(up.len);
        let meter = Arc::new(PartMeter {
            progress,
            reported: AtomicU64::new(0),
            gate: None,
        });
        let headers = crate::retry::retry(&up.retry, &up.method, "upload", |_| {
            self.put_once(
                &up.method,
                &up.url,
                &up.headers,
                &file,
                &path,
                up.offset,
                up.len,
                Some(meter.attempt()),
            )
        })
        .await?;
        guard.finish();
        Ok(headers)
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        file: &Arc<File>,
        path: &Arc<PathBuf>,
        offset: u64,
        len: u64,
        meter: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    ) -> Result<HeaderMap> {
        let mut body = Body::file_range_from(file.clone(), (**path).clone(), offset, len);
        if let Some(m) = meter {
            body = body.on_chunk(m);
        }
        let mut req = new_request(method.clone(), url, &HeaderMap::new(), body)?;
        req.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        req.headers_mut().extend(headers.clone());
        req.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
        let resp = self.send(req).await?;
        let status = resp.status();
        let rurl = resp.url().to_string();
        let (_, rheaders, body) = resp.into_parts();
        if !status.is_success() {
            let b = body.bytes_limited(64 << 10).await.unwrap_or_default();
            let (code, message) = error_message(&b);
            return Err(Error::from_status(&rurl, status, code, message)
                .with_retry_after(crate::retry::retry_after(&rheaders)));
        }
        body.drain(1 << 20).await;
        Ok(rheaders)
    }

    /// Uploads the parts of `job` concurrently and returns them in part
    /// order with their ETags.
    ///
    /// For every attempt at a part, `target` is called with the part's
    /// [`PartInfo`] and returns where to PUT it (the library protocol asks
    /// the server for a presigned URL per part); an error from `target` is
    /// retried like a failed PUT when it is retryable. A part is final
    /// once it answered 2xx with an `ETag`. When a part fails for good the
    /// other parts are stopped and the error is [`Error::Part`] naming the
    /// part; aborting the upload on the server is the caller's job.
    ///
    /// Progress gets the total, then each part's bytes as they are sent
    /// (never twice for a retried part), then finish or abort.
    pub async fn upload_parts<F, Fut>(
        &self,
        job: &MultipartUpload,
        progress: Arc<dyn Progress>,
        target: F,
    ) -> Result<UploadedParts>
    where
        F: Fn(PartInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<PartTarget>> + Send + 'static,
    {
        let guard = ProgressGuard::new(progress.clone());
        let parts = self
            .upload_parts_inner(job, progress, Arc::new(target))
            .await?;
        guard.finish();
        Ok(parts)
    }

    async fn upload_parts_inner<F, Fut>(
        &self,
        job: &MultipartUpload,
        progress: Arc<dyn Progress>,
        target: Arc<F>,
    ) -> Result<UploadedParts>
    where
        F: Fn(PartInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<PartTarget>> + Send + 'static,
    {
        let file = Arc::new(File::open(&job.path).map_err(|e| Error::io(&job.path, e))?);
        let len = file.metadata().map_err(|e| Error::io(&job.path, e))?.len();
        if len < job.size {
            return Err(Error::InvalidRequest(format!(
                "{} has {len} bytes, fewer than the {} to upload",
                job.path.display(),
                job.size
            )));
        }
        progress.total(job.size);
        let path = Arc::new(job.path.clone());
        let total = job.total_parts();
        let mut out: Vec<Option<CompletedPart>> = vec![None; total as usize];
        let mut next = 1u64;
        let mut set: JoinSet<Result<CompletedPart>> = JoinSet::new();
        let mut streams =
            crate::gate::Streams::new(job.streams, total, crate::gate::Direction::Upload);
        let mut tick = tokio::time::interval(crate::Controller::SAMPLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while set.len() < streams.level() && next <= total {
                let info = job.part(next);
                next += 1;
                let (client, file, path, target, retry, progress, gate) = (
                    self.clone(),
                    file.clone(),
                    path.clone(),
                    target.clone(),
                    job.retry.clone(),
                    progress.clone(),
                    streams.gate(),
                );
                let want_sha = job.part_sha256;
                set.spawn(async move {
                    let number = info.number;
                    upload_one(
                        &client, info, want_sha, &file, &path, &*target, &retry, progress, gate,
                    )
                    .await
                    .map_err(|e| Error::Part {
                        number,
                        source: Box::new(e),
                    })
                });
            }
            if set.is_empty() {
                break;
            }
            tokio::select! {
                joined = set.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(p))) => {
                        tracing::debug!(part = p.number, "part uploaded");
                        let i = (p.number - 1) as usize;
                        out[i] = Some(p);
                    }
                    Some(Ok(Err(e))) => return Err(e),
                    Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Some(Err(e)) => return Err(Error::Internal(format!("part task failed: {e}"))),
                },
                // Also for a fixed setting: refused parts wait for it.
                _ = tick.tick() => {}
            }
            streams.update(set.len());
        }
        Ok(UploadedParts {
            parts: out.into_iter().flatten().collect(),
            streams: if total == 0 { 0 } else { streams.level() },
            retries: streams.gate().retries(),
        })
    }
}

/// The parts of a completed multipart upload, and how they went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedParts {
    /// Every part with its `ETag`, in part order.
    pub parts: Vec<CompletedPart>,
    /// The parts in flight allowed when the upload ended.
    pub streams: usize,
    /// Part uploads sent again after a failure or a refusal.
    pub retries: u64,
}

#[allow(clippy::too_many_arguments)]
async fn upload_one<F, Fut>(
    client: &HttpClient,
    mut info: PartInfo,
    want_sha: bool,
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    target: &F,
    retry: &RetryConfig,
    progress: Arc<dyn Progress>,
    gate: Arc<crate::gate::Gate>,
) -> Result<CompletedPart>
where
    F: Fn(PartInfo) -> Fut,
    Fut: Future<Output = Result<PartTarget>>,
{
    if want_sha {
        let (f, p, off, len) = (file.clone(), path.clone(), info.offset, info.len);
        let sha = tokio::task::spawn_blocking(move || -> Result<[u8; 32]> {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; FILE_BLOCK];
            let mut pos = off;
            while pos < off + len {
                let n = ((off + len - pos) as usize).min(buf.len());
                f.read_exact_at(&mut buf[..n], pos)
                    .map_err(|e| Error::io(&*p, e))?;
                h.update(&buf[..n]);
                pos += n as u64;
            }
            Ok(h.finalize().into())
        })
        .await
        .map_err(|e| Error::Internal(format!("hash task failed: {e}")))??;
        info.sha256 = Some(sha);
    }
    let meter = Arc::new(PartMeter {
        progress,
        reported: AtomicU64::new(0),
        gate: Some(gate.clone()),
    });
    let mut attempts = crate::retry::Attempts::new(retry, &Method::PUT);
    loop {
        let ticket = gate.enter().await;
        let e = match upload_part_once(client, &info, file, path, target, &meter).await {
            Ok(p) => return Ok(p),
            Err(e) => e,
        };
        match attempts.after_error(&e) {
            Some(d) => {
                tracing::debug!(part = info.number, retries = attempts.retries(), error = %e, delay_ms = d.as_millis() as u64, "retrying part");
                // The stream is free while the part waits.
                gate.retrying(ticket, &e);
                tokio::time::sleep(d).await;
            }
            None => return Err(e),
        }
    }
}

async fn upload_part_once<F, Fut>(
    client: &HttpClient,
    info: &PartInfo,
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    target: &F,
    meter: &Arc<PartMeter>,
) -> Result<CompletedPart>
where
    F: Fn(PartInfo) -> Fut,
    Fut: Future<Output = Result<PartTarget>>,
{
    let t = target(info.clone()).await?;
    let headers = client
        .put_once(
            &Method::PUT,
            &t.url,
            &t.headers,
            file,
            path,
            info.offset,
            info.len,
            Some(meter.attempt()),
        )
        .await?;
    let etag = headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::invalid(&redact_url(&t.url), "part upload answered without an ETag")
        })?;
    Ok(CompletedPart {
        number: info.number,
        etag: etag.to_string(),
    })
}
