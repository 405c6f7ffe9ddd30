//! Request and response bodies.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::sync::{mpsc, Notify};

use crate::error::{BoxError, Error, Result};

/// Size of the blocks a file is read or written in.
pub(crate) const FILE_BLOCK: usize = 256 * 1024;

/// Size of the blocks a file body is sent in. With at most three blocks
/// of a body in memory at once (one read, one queued, one with the
/// connection), 16 streams hold about 6 MiB.
const SEND_BLOCK: usize = 128 * 1024;

type ChunkCallback = Arc<dyn Fn(u64) + Send + Sync>;

/// A request body: empty, bytes in memory, or a byte range of a file
/// streamed from disk by offset (never buffered whole).
pub struct Body {
    kind: Kind,
    watch: Option<Arc<SendWatch>>,
}

/// What a request body reports while it is sent: when the connection last
/// asked for more of it, and when it was sent whole. The client's watchdog
/// reads it to time out on progress instead of on total duration.
#[derive(Debug)]
pub(crate) struct SendWatch {
    start: Instant,
    /// Milliseconds since `start` when the body was last polled, plus one
    /// (zero: never).
    last: AtomicU64,
    /// Milliseconds since `start` when the body was done, plus one (zero:
    /// not yet).
    done: AtomicU64,
    /// Signalled when the body is done.
    finished: Notify,
}

/// Where sending a request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendState {
    /// The body was not asked for yet (connecting, sending the head) since
    /// this instant.
    Started(Instant),
    /// Still sending; the connection last asked for more at this instant.
    Sending(Instant),
    /// Sent whole at this instant.
    Done(Instant),
}

impl SendWatch {
    pub(crate) fn new() -> SendWatch {
        SendWatch {
            start: Instant::now(),
            last: AtomicU64::new(0),
            done: AtomicU64::new(0),
            finished: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn progress(&self) {
        self.last.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    fn finish(&self) {
        let now = self.now_ms();
        if self
            .done
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.finished.notify_waiters();
        }
    }

    /// Resolves once the body is done (at once when it already is).
    pub(crate) async fn finished(&self) {
        let notified = self.finished.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.done.load(Ordering::Relaxed) != 0 {
            return;
        }
        notified.await
    }

    pub(crate) fn state(&self) -> SendState {
        let at = |m: u64| self.start + Duration::from_millis(m - 1);
        match (
            self.done.load(Ordering::Relaxed),
            self.last.load(Ordering::Relaxed),
        ) {
            (0, 0) => SendState::Started(self.start),
            (0, last) => SendState::Sending(at(last)),
            (done, _) => SendState::Done(at(done)),
        }
    }
}

enum Kind {
    Empty,
    Bytes(Option<Bytes>),
    File {
        rx: mpsc::Receiver<std::io::Result<Bytes>>,
        remaining: u64,
        on_chunk: Option<ChunkCallback>,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Bytes(b) => write!(
                f,
                "Body::Bytes({} bytes)",
                b.as_ref().map_or(0, |b| b.len())
            ),
            Kind::File { remaining, .. } => write!(f, "Body::File({remaining} bytes left)"),
        }
    }
}

impl Body {
    /// An empty body.
    pub fn empty() -> Body {
        Body {
            kind: Kind::Empty,
            watch: None,
        }
    }

    /// A body from bytes in memory.
    pub fn bytes(b: impl Into<Bytes>) -> Body {
        Body {
            kind: Kind::Bytes(Some(b.into())),
            watch: None,
        }
    }

    /// A body of `len` bytes of the file at `path` starting at `offset`,
    /// read in blocks of 256 KiB on a blocking thread (at most two blocks
    /// are buffered). Must be called inside a tokio runtime. A file shorter
    /// than `offset + len` makes the body fail.
    pub fn file_range(path: &Path, offset: u64, len: u64) -> Result<Body> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::file_range_from(
            Arc::new(file),
            path.to_path_buf(),
            offset,
            len,
        ))
    }

    pub(crate) fn file_range_from(file: Arc<File>, path: PathBuf, offset: u64, len: u64) -> Body {
        let (tx, rx) = mpsc::channel(1);
        if len > 0 {
            tokio::task::spawn_blocking(move || {
                let mut pos = offset;
                let end = offset + len;
                while pos < end {
                    let n = ((end - pos) as usize).min(SEND_BLOCK);
                    let mut buf = BytesMut::zeroed(n);
                    let r = file.read_exact_at(&mut buf, pos).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    });
                    let failed = r.is_err();
                    let item = r.map(|_| buf.freeze());
                    if tx.blocking_send(item).is_err() || failed {
                        return;
                    }
                    pos += n as u64;
                }
            });
        }
        Body {
            kind: Kind::File {
                rx,
                remaining: len,
                on_chunk: None,
            },
            watch: None,
        }
    }

    /// Calls `f` with the size of every chunk as it is handed to the
    /// connection (used for upload progress).
    pub(crate) fn on_chunk(mut self, f: ChunkCallback) -> Body {
        if let Kind::File { on_chunk, .. } = &mut self.kind {
            *on_chunk = Some(f);
        }
        self
    }

    /// Reports progress and completion to `watch` from now on; a body
    /// that is already at its end is done at once.
    pub(crate) fn watch(&mut self, watch: Arc<SendWatch>) {
        if hyper::body::Body::is_end_stream(self) {
            watch.finish();
        }
        self.watch = Some(watch);
    }

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            // In blocks, as a file is sent, so that progress is seen while
            // a large buffer goes out (splitting `Bytes` copies nothing).
            Kind::Bytes(b) => Poll::Ready(match b.as_mut().filter(|b| !b.is_empty()) {
                None => None,
                Some(all) if all.len() > FILE_BLOCK => {
                    Some(Ok(Frame::data(all.split_to(FILE_BLOCK))))
                }
                Some(_) => b.take().map(|b| Ok(Frame::data(b))),
            }),
            Kind::File {
                rx,
                remaining,
                on_chunk,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                match rx.poll_recv(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => Poll::Ready(Some(Err("file reader stopped early".into()))),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(Some(Ok(b))) => {
                        *remaining = remaining.saturating_sub(b.len() as u64);
                        if let Some(f) = on_chunk {
                            f(b.len() as u64);
                        }
                        Poll::Ready(Some(Ok(Frame::data(b))))
                    }
                }
            }
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        // The connection asks for more only once it has taken (most of)
        // what it was given: being polled is progress.
        if let Some(w) = &this.watch {
            w.progress();
        }
        let r = this.poll_data(cx);
        if let Some(w) = &this.watch {
            match &r {
                Poll::Ready(Some(Ok(_))) if hyper::body::Body::is_end_stream(this) => w.finish(),
                Poll::Ready(None) => w.finish(),
                _ => {}
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Bytes(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            Kind::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::bytes(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::bytes(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::bytes(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::bytes(Bytes::from_static(s.as_bytes()))
    }
}

/// A response: status and headers, with the body not yet read.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    url: String,
    body: ResponseBody,
}

impl crate::retry::Answer for Response {
    fn status(&self) -> StatusCode {
        self.status()
    }
    fn headers(&self) -> &http::HeaderMap {
        self.headers()
    }
}

impl Response {
    pub(crate) fn new(
        parts: http::response::Parts,
        body: Incoming,
        url: String,
        read_timeout: Duration,
    ) -> Self {
        Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: ResponseBody {
                inner: body,
                read_timeout,
                url: url.clone(),
            },
            url,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request URL without query or user information.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `Content-Length`, when present and valid.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// Splits the response into its headers and its body.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, ResponseBody) {
        (self.status, self.headers, self.body)
    }

    /// The body, consuming the response.
    pub fn into_body(self) -> ResponseBody {
        self.body
    }

    /// The error this response stands for, by its status (see
    /// [`Error::from_status`]), with the code and message of its body when
    /// the body has one (read up to 64 KiB, in any of the shapes
    /// [`error_message`](crate::error_message) knows). For an answer the
    /// caller did not expect, whatever its status.
    pub async fn into_status_error(self) -> Error {
        let status = self.status();
        let url = self.url().to_string();
        let asked = crate::retry::retry_after(self.headers());
        let body = self.bytes_limited(64 << 10).await.unwrap_or_default();
        let (code, message) = crate::json::error_message(&body);
        Error::from_status(&url, status, code, message).with_retry_after(asked)
    }

    /// Reads the whole body, failing with [`Error::BodyTooLarge`] past `limit` bytes.
    pub async fn bytes_limited(self, limit: usize) -> Result<Bytes> {
        if let Some(n) = self.content_length() {
            if n > limit as u64 {
                return Err(Error::BodyTooLarge {
                    url: self.url,
                    limit,
                });
            }
        }
        self.body.bytes_limited(limit).await
    }
}

/// A response body whose every frame must arrive within the read timeout
/// (an idle timeout, never a bound on the whole transfer).
#[derive(Debug)]
pub struct ResponseBody {
    inner: Incoming,
    read_timeout: Duration,
    url: String,
}

impl ResponseBody {
    /// The next chunk of data, or `None` at the end of the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match tokio::time::timeout(self.read_timeout, self.inner.frame()).await {
                Err(_) => {
                    return Err(Error::Timeout {
                        url: self.url.clone(),
                        what: "reading the response body",
                    })
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(Error::Request {
                        url: self.url.clone(),
                        source: Box::new(e),
                    })
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// Reads the whole body, failing with [`Error::BodyTooLarge`] past `limit` bytes.
    pub async fn bytes_limited(mut self, limit: usize) -> Result<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        while let Some(c) = self.chunk().await? {
            let have = first.as_ref().map_or(0, |b| b.len()) + buf.len();
            if have + c.len() > limit {
                return Err(Error::BodyTooLarge {
                    url: self.url,
                    limit,
                });
            }
            if first.is_none() && buf.is_empty() {
                first = Some(c);
            } else {
                if let Some(f) = first.take() {
                    buf.extend_from_slice(&f);
                }
                buf.extend_from_slice(&c);
            }
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    }

    /// Reads and discards the rest of the body (at most `limit` bytes), so
    /// that the connection can be reused.
    pub async fn drain(mut self, limit: u64) {
        let mut seen = 0u64;
        while let Ok(Some(c)) = self.chunk().await {
            seen += c.len() as u64;
            if seen > limit {
                break;
            }
        }
    }

    /// The request URL without query or user information.
    pub fn url(&self) -> &str {
        &self.url
    }
}
