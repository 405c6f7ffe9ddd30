//! Downloads: concurrent ranged parts by offset, or one stream.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use bytes::Bytes;
use http::header::{CONTENT_RANGE, IF_MATCH, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use url::Url;

use crate::body::{Body, Response, FILE_BLOCK};
use crate::client::HttpClient;
use crate::dest::{Destination, Sidecar};
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressGuard};
use crate::retry::RetryConfig;
use crate::util::{hex, new_request, parse_content_range_exact, redact_url};

/// A concurrent ranged download of `size` bytes from `url`.
///
/// The file is split into parts of `part_size` bytes (the last one
/// shorter), fetched with `Range: bytes=first-last`, at most `concurrency`
/// at once, and written at their offsets. Every part response is checked:
/// a 206 must carry `Content-Range: bytes first-last/size` for exactly
/// that part, and a 200 is accepted only when the part is the whole file.
/// A 200 with the whole file to a request for a smaller range is an
/// invalid response (retried, then fatal) rather than read partially: a
/// server that ignores `Range` is better served by a single-stream
/// download. Every part must have exactly its length. A failed part is
/// retried with backoff per `retry`, restarting that part.
///
/// A size of 0 is accepted and produces an empty file without any request
/// (the caller decides whether an empty image is an error).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RangedDownload {
    /// The URL to fetch (for example a presigned URL).
    pub url: Url,
    /// Headers sent with every part request (for example `Authorization`
    /// when the target is the library itself).
    pub headers: HeaderMap,
    /// The total size in bytes.
    pub size: u64,
    /// Bytes per part (default 5 MiB).
    pub part_size: u64,
    /// Parts in flight at once (default 3).
    pub concurrency: usize,
    /// Retry policy of each part.
    pub retry: RetryConfig,
    /// Sent as `If-Match` with every part, so that parts of different
    /// versions of the object are never mixed.
    pub if_match: Option<String>,
}

impl RangedDownload {
    /// A download of `size` bytes from `url` with the default part size
    /// (5 MiB), concurrency (3) and retry policy.
    pub fn new(url: Url, size: u64) -> RangedDownload {
        RangedDownload {
            url,
            headers: HeaderMap::new(),
            size,
            part_size: 5 << 20,
            concurrency: 3,
            retry: RetryConfig::default(),
            if_match: None,
        }
    }

    /// Sets the headers sent with every part.
    pub fn headers(mut self, h: HeaderMap) -> Self {
        self.headers = h;
        self
    }

    /// Sets the part size (at least 1 byte).
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Sets how many parts are fetched at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the retry policy of each part.
    pub fn retry(mut self, r: RetryConfig) -> Self {
        self.retry = r;
        self
    }

    /// Sends `If-Match: etag` with every part.
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    fn parts(&self) -> u64 {
        self.size.div_ceil(self.part_size.max(1))
    }

    fn range(&self, idx: u64) -> (u64, u64) {
        let start = idx * self.part_size;
        (start, (self.size - start).min(self.part_size))
    }
}

/// The result of a completed download.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Downloaded {
    /// Where the file now is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Parts fetched by this call (0 for a single stream; fewer than all
    /// parts when a resumed download found some already complete).
    pub parts_fetched: u64,
}

impl Downloaded {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Where the hasher thread delivers the digest (`None` if stopped early).
type HashResult = tokio::sync::oneshot::Receiver<std::io::Result<Option<[u8; 32]>>>;

/// The most parts one ranged download may have (20 TiB in 5 MiB parts).
pub const MAX_PARTS: u64 = 1 << 22;

/// Sets a flag when dropped (stops the hasher thread on cancellation).
struct CancelOnDrop(Arc<AtomicBool>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Hashes the file's parts in order as they complete: parts finished out
/// of order wait until the prefix reaches them, and are then read back
/// from the file (normally from the page cache, so the cost is a memory
/// copy next to hashing). Runs on its own thread, in parallel with the
/// downloads. Returns `None` if stopped before the last part.
fn spawn_hasher(
    file: Arc<File>,
    job: &RangedDownload,
    done: &[u64],
    cancel: Arc<AtomicBool>,
) -> (mpsc::Sender<u64>, HashResult) {
    let (tx, rx) = mpsc::channel::<u64>();
    let (rtx, rrx) = tokio::sync::oneshot::channel();
    let parts = job.parts();
    let (size, part_size) = (job.size, job.part_size);
    let mut complete = vec![false; parts as usize];
    for &d in done {
        if let Some(c) = complete.get_mut(d as usize) {
            *c = true;
        }
    }
    std::thread::Builder::new()
        .name("sha256-prefix".into())
        .spawn(move || {
            let mut run = || -> std::io::Result<Option<[u8; 32]>> {
                let mut h = Sha256::new();
                let mut buf = vec![0u8; FILE_BLOCK];
                let mut next = 0u64;
                loop {
                    while next < parts && complete[next as usize] {
                        let start = next * part_size;
                        let end = (start + part_size).min(size);
                        let mut pos = start;
                        while pos < end {
                            if cancel.load(Ordering::Relaxed) {
                                return Ok(None);
                            }
                            let n = ((end - pos) as usize).min(buf.len());
                            file.read_exact_at(&mut buf[..n], pos)?;
                            h.update(&buf[..n]);
                            pos += n as u64;
                        }
                        start_writeback(&file, start, end - start);
                        next += 1;
                    }
                    if next == parts {
                        return Ok(Some(h.finalize().into()));
                    }
                    match rx.recv() {
                        Ok(i) => {
                            if let Some(c) = complete.get_mut(i as usize) {
                                *c = true;
                            }
                        }
                        Err(_) => return Ok(None),
                    }
                }
            };
            let _ = rtx.send(run());
        })
        .expect("spawn hasher thread");
    (tx, rrx)
}

impl HttpClient {
    /// Runs a concurrent ranged download into `dest` (see
    /// [`RangedDownload`] and [`Destination`]), reporting progress as bytes
    /// land. The SHA-256 of the result is computed while the parts arrive
    /// and checked against the destination's expected digest before the
    /// file is renamed into place.
    ///
    /// Dropping the future cancels the download: the part tasks are
    /// aborted and the temporary file removed (or kept when resumable).
    ///
    /// ```no_run
    /// # async fn demo() -> library_transport::Result<()> {
    /// use std::sync::Arc;
    /// use library_transport::{Destination, HttpClient, NoProgress, RangedDownload};
    /// let client = HttpClient::new()?;
    /// let url = url::Url::parse("https://s3.example/bucket/image.sif?X-Amz-Signature=x").unwrap();
    /// let job = RangedDownload::new(url, 123_456_789).concurrency(4);
    /// let got = client.download_ranged(&job, Destination::new("image.sif"), Arc::new(NoProgress)).await?;
    /// println!("sha256 {}", got.sha256_hex());
    /// # Ok(()) }
    /// ```
    pub async fn download_ranged(
        &self,
        job: &RangedDownload,
        mut dest: Destination,
        progress: Arc<dyn Progress>,
    ) -> Result<Downloaded> {
        let job = Arc::new(RangedDownload {
            part_size: job.part_size.max(1),
            concurrency: job.concurrency.max(1),
            ..job.clone()
        });
        // A size no server can mean (or a part size far too small for it)
        // is refused before any file is created or any request sent.
        if job.parts() > MAX_PARTS {
            return Err(Error::InvalidRequest(format!(
                "{}: {} bytes in parts of {} bytes is {} parts, more than the {MAX_PARTS} allowed",
                redact_url(&job.url),
                job.size,
                job.part_size,
                job.parts()
            )));
        }
        let guard = ProgressGuard::new(progress.clone());
        let (sha, fetched) = self
            .download_ranged_inner(&job, &mut dest, &progress)
            .await?;
        let path = dest.commit(sha).await?;
        guard.finish();
        Ok(Downloaded {
            path,
            size: job.size,
            sha256: sha,
            parts_fetched: fetched,
        })
    }

    async fn download_ranged_inner(
        &self,
        job: &Arc<RangedDownload>,
        dest: &mut Destination,
        progress: &Arc<dyn Progress>,
    ) -> Result<([u8; 32], u64)> {
        let mut done = dest.open(
            Some(job.size),
            Some((job.part_size, job.if_match.as_deref())),
        )?;
        let parts = job.parts();
        done.retain(|&d| d < parts);
        done.sort_unstable();
        done.dedup();
        progress.total(job.size);
        let already: u64 = done.iter().map(|&i| job.range(i).1).sum();
        if already > 0 {
            progress.increment(already);
        }
        let file = dest.file();
        let path = Arc::new(dest.temp_path());
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let (htx, hrx) = spawn_hasher(file.clone(), job, &done, cancel);

        let mut is_done = vec![false; parts as usize];
        for &d in &done {
            is_done[d as usize] = true;
        }
        let mut todo = (0..parts).filter(|&i| !is_done[i as usize]);
        let mut set: JoinSet<Result<u64>> = JoinSet::new();
        let mut fetched = 0u64;
        loop {
            while set.len() < job.concurrency {
                let Some(idx) = todo.next() else { break };
                let (client, job, file, path, progress) = (
                    self.clone(),
                    job.clone(),
                    file.clone(),
                    path.clone(),
                    progress.clone(),
                );
                set.spawn(
                    async move { fetch_part(&client, &job, idx, &file, &path, &*progress).await },
                );
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let idx = match joined {
                Ok(Ok(idx)) => idx,
                Ok(Err(e)) => return Err(e),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(Error::Internal(format!("part task failed: {e}"))),
            };
            fetched += 1;
            let _ = htx.send(idx);
            if dest.is_resumable() {
                done.push(idx);
                dest.save_sidecar(Sidecar {
                    size: job.size,
                    part_size: job.part_size,
                    etag: job.if_match.clone(),
                    done: done.clone(),
                })
                .await?;
            }
        }
        drop(htx);
        let sha = hrx
            .await
            .map_err(|_| Error::Internal("hasher thread stopped".into()))?
            .map_err(|e| Error::io(&*path, e))?
            .ok_or_else(|| Error::Internal("hasher stopped before the end".into()))?;
        Ok((sha, fetched))
    }

    /// Downloads a response body (typically a 200 to a GET) into `dest`,
    /// hashing as it goes, and checks the byte count against
    /// `Content-Length` when present (which is also given to
    /// [`Progress::total`]). A non-2xx response is an error
    /// carrying the server's message. Single streams always start from
    /// the beginning, even into a resumable destination.
    pub async fn download_response(
        &self,
        resp: Response,
        mut dest: Destination,
        progress: Arc<dyn Progress>,
    ) -> Result<Downloaded> {
        let guard = ProgressGuard::new(progress.clone());
        let res = async {
            let resp = check_success(resp).await?;
            if let Some(n) = resp.content_length() {
                progress.total(n);
            }
            dest.open(None, None)?;
            let temp = dest.temp_path();
            let std_file = dest.file().try_clone().map_err(|e| Error::io(&temp, e))?;
            let mut w = tokio::io::BufWriter::with_capacity(
                FILE_BLOCK,
                tokio::fs::File::from_std(std_file),
            );
            let (size, sha) =
                copy_response(resp, &mut w, &*progress)
                    .await
                    .map_err(|e| match e {
                        Error::Io { source, .. } => Error::io(&temp, source),
                        e => e,
                    })?;
            w.shutdown().await.map_err(|e| Error::io(&temp, e))?;
            Ok::<_, Error>((size, sha))
        }
        .await;
        let (size, sha) = res?;
        let path = dest.commit(sha).await?;
        guard.finish();
        Ok(Downloaded {
            path,
            size,
            sha256: sha,
            parts_fetched: 0,
        })
    }

    /// Fetches `url` with a GET (no redirects followed) and downloads the
    /// body into `dest` as one stream (see
    /// [`download_response`](Self::download_response)).
    pub async fn download_stream(
        &self,
        url: &Url,
        headers: &HeaderMap,
        dest: Destination,
        progress: Arc<dyn Progress>,
    ) -> Result<Downloaded> {
        let req = new_request(Method::GET, url, headers, Body::empty())?;
        let resp = self.send(req).await?;
        self.download_response(resp, dest, progress).await
    }
}

/// Fails with the status (and the server's message) unless `resp` is 2xx.
async fn check_success(resp: Response) -> Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(resp.into_status_error().await)
}

/// Copies a response body into any async writer, hashing it with SHA-256
/// and reporting progress; checks the byte count against `Content-Length`
/// when the response has one. Returns the byte count and the digest. The
/// writer is flushed but not shut down.
pub async fn copy_response<W: AsyncWrite + Unpin + ?Sized>(
    resp: Response,
    w: &mut W,
    progress: &dyn Progress,
) -> Result<(u64, [u8; 32])> {
    let expect = resp.content_length();
    let url = resp.url().to_string();
    let mut body = resp.into_body();
    let mut h = Sha256::new();
    let mut n = 0u64;
    let io = |e| Error::io("<writer>", e);
    while let Some(c) = body.chunk().await? {
        n += c.len() as u64;
        if let Some(exp) = expect {
            if n > exp {
                return Err(Error::invalid(
                    &url,
                    format!("body longer than Content-Length {exp}"),
                ));
            }
        }
        h.update(&c);
        w.write_all(&c).await.map_err(io)?;
        progress.increment(c.len() as u64);
    }
    if let Some(exp) = expect {
        if n != exp {
            return Err(Error::invalid(
                &url,
                format!("body ended after {n} of {exp} bytes"),
            ));
        }
    }
    w.flush().await.map_err(io)?;
    Ok((n, h.finalize().into()))
}

/// Writes `data` (contiguous chunks) at `pos` on a blocking thread.
fn spawn_write(
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    data: Vec<Bytes>,
    mut pos: u64,
) -> tokio::task::JoinHandle<Result<()>> {
    let f = file.clone();
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        for b in &data {
            f.write_all_at(b, pos).map_err(|e| Error::io(&*p, e))?;
            pos += b.len() as u64;
        }
        Ok(())
    })
}

async fn join_write(h: tokio::task::JoinHandle<Result<()>>) -> Result<()> {
    h.await
        .map_err(|e| Error::Internal(format!("writer task failed: {e}")))?
}

/// Asks the kernel to start writing a finished range to disk, so that the
/// final `fsync` has little left to do (Linux only; a hint).
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is valid for the life of `file`, and
        // sync_file_range only reads its integer arguments.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Fetches one part with retries; returns its index.
async fn fetch_part(
    client: &HttpClient,
    job: &RangedDownload,
    idx: u64,
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut backoff = job.retry.backoff();
    let mut reported = 0u64;
    let mut attempt = 0u32;
    loop {
        let r = fetch_part_once(client, job, idx, file, path, progress, &mut reported).await;
        match r {
            Ok(()) => return Ok(idx),
            Err(e) if attempt < job.retry.max_retries && e.is_retryable() => {
                let d = backoff.next_delay();
                tracing::debug!(part = idx + 1, attempt, error = %e, delay_ms = d.as_millis() as u64, "retrying part");
                tokio::time::sleep(d).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(Error::Part {
                    number: idx + 1,
                    source: Box::new(e),
                })
            }
        }
    }
}

async fn fetch_part_once(
    client: &HttpClient,
    job: &RangedDownload,
    idx: u64,
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    progress: &dyn Progress,
    reported: &mut u64,
) -> Result<()> {
    let (start, len) = job.range(idx);
    let last = start + len - 1;
    let mut req = new_request(Method::GET, &job.url, &job.headers, Body::empty())?;
    let range = HeaderValue::from_str(&format!("bytes={start}-{last}")).expect("ascii");
    req.headers_mut().insert(RANGE, range);
    if let Some(etag) = &job.if_match {
        let v = HeaderValue::from_str(etag)
            .map_err(|_| Error::InvalidRequest("If-Match value is not a valid header".into()))?;
        req.headers_mut().insert(IF_MATCH, v);
    }
    let resp = client.send(req).await?;
    let url = resp.url().to_string();
    match resp.status() {
        StatusCode::PARTIAL_CONTENT => {
            let cr = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match parse_content_range_exact(cr) {
                Some((a, b, t)) if a == start && b == last && t == job.size => {}
                _ => {
                    return Err(Error::invalid(
                        &url,
                        format!(
                            "Content-Range {cr:?} does not match bytes {start}-{last}/{}",
                            job.size
                        ),
                    ))
                }
            }
        }
        StatusCode::OK => {
            if !(start == 0 && len == job.size) {
                return Err(Error::invalid(
                    &url,
                    format!("200 (whole file) to a request for bytes {start}-{last}: the server ignored Range"),
                ));
            }
        }
        _ => {
            check_success(resp).await?;
            return Err(Error::invalid(
                &url,
                "unexpected success status for a range request",
            ));
        }
    }
    if let Some(cl) = resp.content_length() {
        if cl != len {
            return Err(Error::invalid(
                &url,
                format!("Content-Length {cl} for a part of {len} bytes"),
            ));
        }
    }
    // Chunks are gathered (not copied) into batches of about FILE_BLOCK
    // bytes; each batch is written at its offset on a blocking thread while
    // the next one is received, so at most two batches per part are held.
    let mut body = resp.into_body();
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0u64;
    let mut received = 0u64;
    let mut pos = start;
    let mut this_attempt = 0u64;
    let mut in_flight: Option<(tokio::task::JoinHandle<Result<()>>, u64)> = None;
    let mut land = |n: u64| {
        this_attempt += n;
        if this_attempt > *reported {
            progress.increment(this_attempt - *reported);
            *reported = this_attempt;
        }
    };
    let streamed: Result<()> = async {
        loop {
            let chunk = body.chunk().await?;
            let end = chunk.is_none();
            if let Some(c) = chunk {
                received += c.len() as u64;
                if received > len {
                    return Err(Error::invalid(
                        &url,
                        format!("body longer than the part's {len} bytes"),
                    ));
                }
                batch_len += c.len() as u64;
                batch.push(c);
            }
            if batch_len >= FILE_BLOCK as u64 || (end && batch_len > 0) {
                if let Some((h, n)) = in_flight.take() {
                    join_write(h).await?;
                    land(n);
                }
                let data = std::mem::take(&mut batch);
                in_flight = Some((spawn_write(file, path, data, pos), batch_len));
                pos += batch_len;
                batch_len = 0;
            }
            if end {
                return Ok(());
            }
        }
    }
    .await;
    // The last write is awaited even when the body failed: a retry must
    // never race a write left over from this attempt at the same offsets.
    if let Some((h, n)) = in_flight.take() {
        let written = join_write(h).await;
        if streamed.is_ok() {
            written?;
            land(n);
        }
    }
    streamed?;
    if received != len {
        return Err(Error::invalid(
            &url,
            format!("part body ended after {received} of {len} bytes"),
        ));
    }
    Ok(())
}
