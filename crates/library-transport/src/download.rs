//! Downloads: concurrent ranged parts by offset, or one stream.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_RANGE, ETAG, IF_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use crate::body::{Body, Response, FILE_BLOCK};
use crate::client::HttpClient;
use crate::dest::{Destination, Sidecar, Validator};
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressGuard};
use crate::retry::RetryConfig;
use crate::util::{hex, new_request, parse_content_range_exact, redact_url};

/// A concurrent ranged download of `size` bytes from `url`.
///
/// The file is split into parts of `part_size` bytes (the last one
/// shorter), fetched with `Range: bytes=first-last`, as many at once as
/// `streams` allows, and written at their offsets. Every part response is checked:
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
///
/// Parts of two versions of the object are never put together. The first
/// part answers give the object's validator (its `ETag`, or its
/// `Last-Modified` when it has no `ETag`); every later part is asked for
/// with `If-Match: <etag>` (`If-Unmodified-Since: <date>` for a
/// `Last-Modified`), and every answer's validator must be the same. A
/// resumable destination records the validator in its sidecar, and a
/// resumed download asks for the missing parts on the same condition. When
/// the object changed (a 412, or another validator in an answer) the
/// download starts over once from nothing: the partial file is discarded,
/// every part fetched again and the whole verified. `If-Match` rather than
/// `If-Range`: a changed object then answers a short 412 to each part, not
/// the whole new object to a request for one part. A weak `ETag` (`W/…`)
/// is compared but not sent, since `If-Match` compares strongly.
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
    /// How many parts are in flight at once: chosen by a
    /// [`Controller`](crate::Controller) up to 16 by default
    /// ([`Concurrency::Auto`](crate::Concurrency::Auto)), or fixed.
    pub streams: crate::Concurrency,
    /// Retry policy of each part.
    pub retry: RetryConfig,
    /// Sent as `If-Match` with every part: only this version of the object
    /// is fetched (a resumed download continues only from parts of it),
    /// and a change fails the download with [`Error::Changed`] instead of
    /// starting over. Without it, the version is the one the first part
    /// answers name (see above).
    pub if_match: Option<String>,
}

impl RangedDownload {
    /// A download of `size` bytes from `url` with the default part size
    /// (5 MiB), streams (automatic, at most 16) and retry policy.
    pub fn new(url: Url, size: u64) -> RangedDownload {
        RangedDownload {
            url,
            headers: HeaderMap::new(),
            size,
            part_size: 5 << 20,
            streams: crate::Concurrency::default(),
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

    /// Fetches exactly `n` parts at once (at least 1): the same as
    /// `streams(Concurrency::Fixed(n))`.
    pub fn concurrency(self, n: usize) -> Self {
        self.streams(crate::Concurrency::Fixed(n.max(1)))
    }

    /// Sets how many parts are fetched at once: a fixed number, or chosen
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

    /// Sends `If-Match: etag` with every part (see the field).
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
    /// The parts in flight allowed when the download ended (1 for a
    /// single stream, 0 when no byte was fetched).
    pub streams: usize,
    /// Part requests sent again after a failure or a refusal.
    pub retries: u64,
}

/// What one pass of a ranged download did.
struct Fetched {
    sha256: [u8; 32],
    parts: u64,
    streams: usize,
    retries: u64,
}

impl Downloaded {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Where the hasher delivers the digest (`None` if stopped early).
type HashResult = tokio::task::JoinHandle<std::io::Result<Option<[u8; 32]>>>;

/// The most parts one ranged download may have (20 TiB in 5 MiB parts).
pub const MAX_PARTS: u64 = 1 << 22;

/// Sets a flag when dropped (stops the hasher on cancellation).
struct CancelOnDrop(Arc<AtomicBool>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Hashes the file's parts in order as they complete: parts finished out
/// of order wait until the prefix reaches them, and are then read back
/// from the file (normally from the page cache, so the cost is a memory
/// copy next to hashing). Runs in parallel with the downloads as a task
/// that holds no thread while it waits: each run of parts that completes
/// the prefix is hashed on the runtime's blocking pool, so many downloads
/// in one process share that pool's threads. Returns `None` if stopped
/// before the last part (the sender dropped, or `cancel` set).
fn spawn_hasher(
    file: Arc<File>,
    job: &RangedDownload,
    done: &[u64],
    cancel: Arc<AtomicBool>,
) -> (mpsc::UnboundedSender<u64>, HashResult) {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let parts = job.parts();
    let (size, part_size) = (job.size, job.part_size);
    let mut complete = vec![false; parts as usize];
    for &d in done {
        if let Some(c) = complete.get_mut(d as usize) {
            *c = true;
        }
    }
    let task = tokio::spawn(async move {
        let mut state = Some((Sha256::new(), vec![0u8; FILE_BLOCK]));
        let mut next = 0u64;
        loop {
            let mut end = next;
            while end < parts && complete[end as usize] {
                end += 1;
            }
            if end > next {
                let (mut h, mut buf) = state.take().expect("hash state");
                let (file, cancel) = (file.clone(), cancel.clone());
                let first = next;
                let (h, buf, stopped) = tokio::task::spawn_blocking(move || {
                    for idx in first..end {
                        let start = idx * part_size;
                        let stop = (start + part_size).min(size);
                        let mut pos = start;
                        while pos < stop {
                            if cancel.load(Ordering::Relaxed) {
                                return Ok((h, buf, true));
                            }
                            let n = ((stop - pos) as usize).min(buf.len());
                            file.read_exact_at(&mut buf[..n], pos)?;
                            h.update(&buf[..n]);
                            pos += n as u64;
                        }
                        start_writeback(&file, start, stop - start);
                    }
                    Ok::<_, std::io::Error>((h, buf, false))
                })
                .await
                .map_err(std::io::Error::other)??;
                if stopped {
                    return Ok(None);
                }
                state = Some((h, buf));
                next = end;
            }
            if next == parts {
                let (h, _) = state.take().expect("hash state");
                return Ok(Some(h.finalize().into()));
            }
            match rx.recv().await {
                Some(i) => {
                    if let Some(c) = complete.get_mut(i as usize) {
                        *c = true;
                    }
                }
                None => return Ok(None),
            }
        }
    });
    (tx, task)
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
            ..job.clone()
        });
        // A size beyond the destination's maximum, a size no server can
        // mean (or a part size far too small for it), or a size the file
        // system has no room for is refused before any file is created or
        // any request sent.
        dest.check_claim(Some(job.size), &redact_url(&job.url))?;
        if job.parts() > MAX_PARTS {
            return Err(Error::InvalidRequest(format!(
                "{}: {} bytes in parts of {} bytes is {} parts, more than the {MAX_PARTS} allowed",
                redact_url(&job.url),
                job.size,
                job.part_size,
                job.parts()
            )));
        }
        dest.check_room(job.size)?;
        let guard = ProgressGuard::new(progress.clone());
        let counted = Arc::new(HighWater::new(progress.clone()));
        let sink: Arc<dyn Progress> = counted.clone();
        let got = match self.download_ranged_inner(&job, &mut dest, &sink).await {
            // The object changed (since the partial file was made, or
            // while the parts came): start over from nothing, once.
            Err(e) if e.is_changed() && job.if_match.is_none() => {
                tracing::info!(url = %redact_url(&job.url), error = %e, "the object changed; starting the download over");
                dest.discard();
                counted.next_attempt();
                self.download_ranged_inner(&job, &mut dest, &sink).await?
            }
            r => r?,
        };
        let path = dest.commit(got.sha256).await?;
        guard.finish();
        Ok(Downloaded {
            path,
            size: job.size,
            sha256: got.sha256,
            parts_fetched: got.parts,
            streams: got.streams,
            retries: got.retries,
        })
    }

    async fn download_ranged_inner(
        &self,
        job: &Arc<RangedDownload>,
        dest: &mut Destination,
        progress: &Arc<dyn Progress>,
    ) -> Result<Fetched> {
        let resumed = dest.open(
            Some(job.size),
            Some((job.part_size, job.if_match.as_deref())),
        )?;
        let mut done = resumed.done;
        let version = Arc::new(Version::new(
            job.if_match
                .clone()
                .map(Validator::Etag)
                .or(resumed.validator),
        ));
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
        let mut streams = crate::gate::Streams::new(
            job.streams,
            parts - done.len() as u64,
            crate::gate::Direction::Download,
        );
        let mut tick = tokio::time::interval(crate::Controller::SAMPLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while set.len() < streams.level() {
                let Some(idx) = todo.next() else { break };
                let (client, job, file, path, progress, version, gate) = (
                    self.clone(),
                    job.clone(),
                    file.clone(),
                    path.clone(),
                    progress.clone(),
                    version.clone(),
                    streams.gate(),
                );
                set.spawn(async move {
                    fetch_part(
                        &client, &job, &version, idx, &file, &path, &*progress, &gate,
                    )
                    .await
                });
            }
            if set.is_empty() {
                break;
            }
            tokio::select! {
                joined = set.join_next() => {
                    let Some(joined) = joined else { break };
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
                            validator: version.get(),
                            sha256: None,
                            done: done.clone(),
                        })
                        .await?;
                    }
                }
                // Also for a fixed setting: refused parts wait for it.
                _ = tick.tick() => {}
            }
            streams.update(set.len());
        }
        drop(htx);
        let sha = hrx
            .await
            .map_err(|e| Error::Internal(format!("hasher task failed: {e}")))?
            .map_err(|e| Error::io(&*path, e))?
            .ok_or_else(|| Error::Internal("hasher stopped before the end".into()))?;
        Ok(Fetched {
            sha256: sha,
            parts: fetched,
            streams: if fetched == 0 { 0 } else { streams.level() },
            retries: streams.gate().retries(),
        })
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
            let url = resp.url().to_string();
            dest.check_claim(resp.content_length(), &url)?;
            if let Some(n) = resp.content_length() {
                dest.check_room(n)?;
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
                copy_response_checked(resp, &mut w, &*progress, |n| dest.check_streamed(n, &url))
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
            streams: 1,
            retries: 0,
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
    copy_response_checked(resp, w, progress, |_| Ok(())).await
}

/// [`copy_response`], with `check` called with the byte count after
/// every chunk (before it is written).
async fn copy_response_checked<W: AsyncWrite + Unpin + ?Sized>(
    resp: Response,
    w: &mut W,
    progress: &dyn Progress,
    check: impl Fn(u64) -> Result<()>,
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
        check(n)?;
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

/// Progress of a download that may start over: each byte is reported
/// once (an attempt reports only what goes beyond the furthest point an
/// earlier one reached).
struct HighWater {
    inner: Arc<dyn Progress>,
    reached: AtomicU64,
    this_attempt: AtomicU64,
}

impl HighWater {
    fn new(inner: Arc<dyn Progress>) -> HighWater {
        HighWater {
            inner,
            reached: AtomicU64::new(0),
            this_attempt: AtomicU64::new(0),
        }
    }

    fn next_attempt(&self) {
        self.this_attempt.store(0, Ordering::Relaxed);
    }
}

impl Progress for HighWater {
    fn total(&self, bytes: u64) {
        self.inner.total(bytes);
    }

    fn increment(&self, bytes: u64) {
        let now = self.this_attempt.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let before = self.reached.fetch_max(now, Ordering::Relaxed);
        if now > before {
            self.inner.increment(now - before);
        }
    }

    fn finish(&self) {
        self.inner.finish();
    }

    fn abort(&self) {
        self.inner.abort();
    }
}

/// The version of the object the parts of one download come from: known
/// from the start (the caller's `If-Match`, or the validator of the parts
/// a resumed download continues from), or learnt from the first answer
/// that names one.
#[derive(Debug)]
struct Version(std::sync::Mutex<Option<Validator>>);

impl Version {
    fn new(known: Option<Validator>) -> Version {
        Version(std::sync::Mutex::new(known))
    }

    fn get(&self) -> Option<Validator> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn describe(&self) -> String {
        match self.get() {
            Some(Validator::Etag(t)) => format!("ETag {t}"),
            Some(Validator::LastModified(d)) => format!("Last-Modified {d}"),
            None => "the same".into(),
        }
    }

    /// Adds the condition that the object is still this version:
    /// `If-Match` for a strong `ETag`, `If-Unmodified-Since` for a
    /// `Last-Modified` (a weak `ETag` never matches `If-Match`, so it is
    /// only compared). Returns whether a condition was added.
    fn condition(&self, headers: &mut HeaderMap) -> Result<bool> {
        let (name, value) = match self.get() {
            Some(Validator::Etag(t)) if !t.starts_with("W/") => (IF_MATCH, t),
            Some(Validator::LastModified(d)) => (IF_UNMODIFIED_SINCE, d),
            _ => return Ok(false),
        };
        let v = HeaderValue::from_str(&value).map_err(|_| {
            Error::InvalidRequest(format!("{name} value {value:?} is not a valid header"))
        })?;
        headers.insert(name, v);
        Ok(true)
    }

    /// Checks the validator of a part's answer against the version (the
    /// first answer that has one sets it).
    fn check(&self, headers: &HeaderMap, url: &str) -> Result<()> {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, modified) = (text(ETAG), text(LAST_MODIFIED));
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (what, had, got) = match (&*known, etag, modified) {
            (None, Some(t), _) => {
                *known = Some(Validator::Etag(t));
                return Ok(());
            }
            (None, None, Some(d)) => {
                *known = Some(Validator::LastModified(d));
                return Ok(());
            }
            // Weak comparison: the same opaque tag, strong or weak.
            (Some(Validator::Etag(had)), Some(got), _)
                if had.trim_start_matches("W/") != got.trim_start_matches("W/") =>
            {
                ("ETag", had.clone(), got)
            }
            (Some(Validator::LastModified(had)), _, Some(got)) if *had != got => {
                ("Last-Modified", had.clone(), got)
            }
            _ => return Ok(()),
        };
        Err(Error::Changed {
            url: url.to_string(),
            reason: format!("{what} {got} where the parts before had {had}"),
        })
    }
}

/// Fetches one part with retries; returns its index.
#[allow(clippy::too_many_arguments)]
async fn fetch_part(
    client: &HttpClient,
    job: &RangedDownload,
    version: &Version,
    idx: u64,
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    progress: &dyn Progress,
    gate: &crate::gate::Gate,
) -> Result<u64> {
    let mut attempts = crate::retry::Attempts::new(&job.retry, &Method::GET);
    let mut reported = 0u64;
    loop {
        let ticket = gate.enter().await;
        let r = fetch_part_once(
            client,
            job,
            version,
            idx,
            file,
            path,
            progress,
            &mut reported,
            gate,
        )
        .await;
        let e = match r {
            Ok(()) => return Ok(idx),
            Err(e) => e,
        };
        match attempts.after_error(&e) {
            Some(d) => {
                tracing::debug!(part = idx + 1, retries = attempts.retries(), error = %e, delay_ms = d.as_millis() as u64, "retrying part");
                // The stream is free while the part waits.
                gate.retrying(ticket, &e);
                tokio::time::sleep(d).await;
            }
            None => {
                return Err(Error::Part {
                    number: idx + 1,
                    source: Box::new(e),
                })
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn fetch_part_once(
    client: &HttpClient,
    job: &RangedDownload,
    version: &Version,
    idx: u64,
    file: &Arc<File>,
    path: &Arc<PathBuf>,
    progress: &dyn Progress,
    reported: &mut u64,
    gate: &crate::gate::Gate,
) -> Result<()> {
    let (start, len) = job.range(idx);
    let last = start + len - 1;
    let mut req = new_request(Method::GET, &job.url, &job.headers, Body::empty())?;
    let range = HeaderValue::from_str(&format!("bytes={start}-{last}")).expect("ascii");
    req.headers_mut().insert(RANGE, range);
    let conditional = version.condition(req.headers_mut())?;
    let sent_at = std::time::Instant::now();
    let resp = client.send(req).await?;
    let url = resp.url().to_string();
    match resp.status() {
        StatusCode::PRECONDITION_FAILED if conditional => {
            let now = resp
                .headers()
                .get(ETAG)
                .or_else(|| resp.headers().get(LAST_MODIFIED))
                .and_then(|v| v.to_str().ok())
                .map(|v| format!(" (now {v})"))
                .unwrap_or_default();
            return Err(Error::Changed {
                url,
                reason: format!(
                    "412 to the condition that it is still {}{now}",
                    version.describe()
                ),
            });
        }
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
    version.check(resp.headers(), &url)?;
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
                if received == 0 {
                    gate.first_byte(sent_at.elapsed());
                }
                received += c.len() as u64;
                gate.moved(c.len() as u64);
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
