//! Answers: JSON envelopes, stored bytes (whole or a range), and the body
//! faults (cut, short, long, corrupt).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};
use serde::Serialize;

use crate::faults::FaultAction;
use crate::store::{BoxError, Data, CHUNK};

/// The body type of every answer.
pub(crate) type RespBody = BoxBody<Bytes, BoxError>;

/// How long a cut body waits before the connection is closed, so that the
/// bytes sent before the cut reach the client.
const CUT_GRACE: Duration = Duration::from_millis(100);

/// What to send as the body.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of stored data from `start`.
    Data {
        data: Data,
        start: u64,
        len: u64,
    },
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Payload::Empty => 0,
            Payload::Bytes(b) => b.len() as u64,
            Payload::Data { len, .. } => *len,
        }
    }
}

/// An answer before faults and framing are applied.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Payload,
    /// Answer to a HEAD request: headers only.
    pub(crate) head_only: bool,
    /// Where to add the body bytes as they are sent (stored image data).
    pub(crate) count: Option<Arc<AtomicU64>>,
    /// Kept until the body has been sent in full (a download counted in).
    pub(crate) guard: Option<crate::in_flight::Entered>,
}

impl Reply {
    pub(crate) fn new(status: u16, payload: Payload) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            payload,
            head_only: false,
            count: None,
            guard: None,
        }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply::new(status, Payload::Empty)
    }

    /// `{"data": <data>}` with status 200.
    pub(crate) fn json<T: Serialize>(data: &T) -> Reply {
        Reply::raw_json(200, &library_model::Response::new(data))
    }

    /// Any value as a JSON body.
    pub(crate) fn raw_json<T: Serialize>(status: u16, value: &T) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Reply::new(status, Payload::Bytes(body.into())).header("content-type", "application/json")
    }

    /// `{"data":null,"error":{"code":N,"message":"…"}}`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Reply {
        let value = serde_json::json!({
            "data": null,
            "error": {"code": status, "message": message.into()},
        });
        Reply::raw_json(status, &value)
    }

    /// An S3-style XML error.
    pub(crate) fn s3_error(status: u16, code: &str, message: &str) -> Reply {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        Reply::new(status, Payload::Bytes(body.into())).header("content-type", "application/xml")
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(name, v);
        }
        self
    }

    /// Adds the body bytes, as they are sent, to `counter`.
    pub(crate) fn counted(mut self, counter: Arc<AtomicU64>) -> Reply {
        self.count = Some(counter);
        self
    }

    /// Keeps `guard` until the body has been sent in full (or dropped).
    pub(crate) fn kept_until_sent(mut self, guard: crate::in_flight::Entered) -> Reply {
        self.guard = Some(guard);
        self
    }

    /// Frames the reply, applying a body fault when there is one.
    pub(crate) fn into_response(self, fault: Option<FaultAction>) -> Response<RespBody> {
        let mut plan = BodyPlan::default();
        let claimed = self.payload.len();
        match fault {
            Some(FaultAction::DropAfter(n)) => plan.cut_after = Some(n),
            Some(FaultAction::ShortBody) => plan.cut_after = Some(claimed.saturating_sub(1)),
            Some(FaultAction::CorruptBody) if claimed > 0 => plan.corrupt_at = Some(claimed / 2),
            Some(FaultAction::LongBody) => plan.extra = extra_bytes(&self.payload),
            _ => {}
        }
        let sent_len = claimed + plan.extra.len() as u64;
        let mut builder = Response::builder().status(self.status);
        if let Some(h) = builder.headers_mut() {
            *h = self.headers;
            if !h.contains_key(CONTENT_TYPE) && !matches!(self.payload, Payload::Empty) {
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
            }
            h.insert(CONTENT_LENGTH, HeaderValue::from(sent_len));
        }
        let body = if self.head_only {
            Empty::new().map_err(|never| match never {}).boxed()
        } else {
            let body = payload_body(self.payload, plan);
            match self.count {
                Some(counter) => Counted { body, counter }.boxed(),
                None => body,
            }
        };
        // Sliced, so that the guard is kept while the client reads.
        let body = match self.guard {
            Some(guard) => hold_until_sent(body, guard),
            None => body,
        };
        builder
            .body(body)
            .unwrap_or_else(|_| Response::new(Empty::new().map_err(|never| match never {}).boxed()))
    }
}

/// Extra bytes for [`FaultAction::LongBody`]: the bytes that follow the
/// range in the stored data when there are some, else filler.
fn extra_bytes(payload: &Payload) -> Bytes {
    const EXTRA: usize = 16;
    if let Payload::Data { data, start, len } = payload {
        let after = start + len;
        if after < data.len() {
            if let Ok(mut r) = data.reader() {
                if let Ok(b) = r.read_at(after, EXTRA) {
                    if !b.is_empty() {
                        return b;
                    }
                }
            }
        }
    }
    Bytes::from_static(b"\0extra-bytes!!!\0")
}

/// Body faults to apply while sending.
#[derive(Debug, Default)]
struct BodyPlan {
    /// Send this many bytes, then cut the connection.
    cut_after: Option<u64>,
    /// Flip the byte at this offset of the body.
    corrupt_at: Option<u64>,
    /// Append these bytes.
    extra: Bytes,
}

impl BodyPlan {
    fn is_clean(&self) -> bool {
        self.cut_after.is_none() && self.corrupt_at.is_none() && self.extra.is_empty()
    }
}

fn full(b: Bytes) -> RespBody {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn payload_body(payload: Payload, plan: BodyPlan) -> RespBody {
    let (data, start, len) = match payload {
        Payload::Empty if plan.is_clean() => return full(Bytes::new()),
        Payload::Bytes(b) if plan.is_clean() => return full(b),
        Payload::Data {
            data: Data::Mem(b),
            start,
            len,
        } if plan.is_clean() => return full(b.slice(start as usize..(start + len) as usize)),
        Payload::Empty => (Data::Mem(Bytes::new()), 0, 0),
        Payload::Bytes(b) => {
            let n = b.len() as u64;
            (Data::Mem(b), 0, n)
        }
        Payload::Data { data, start, len } => (data, start, len),
    };
    let total = len + plan.extra.len() as u64;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(8);
    tokio::task::spawn_blocking(move || produce(data, start, len, plan, tx));
    ChannelBody {
        rx,
        remaining: total,
    }
    .boxed()
}

/// Reads the range chunk by chunk into the channel, applying the plan.
fn produce(
    data: Data,
    start: u64,
    len: u64,
    plan: BodyPlan,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>,
) {
    let mut reader = match data.reader() {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(Box::new(e)));
            return;
        }
    };
    let cut = |tx: &tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>| {
        std::thread::sleep(CUT_GRACE);
        let _ = tx.blocking_send(Err("connection cut by the test server".into()));
    };
    let mut sent = 0u64;
    while sent < len {
        let want = (len - sent).min(CHUNK as u64) as usize;
        let mut chunk = match reader.read_at(start + sent, want) {
            Ok(c) if c.is_empty() => {
                let _ = tx.blocking_send(Err("stored data ended early".into()));
                return;
            }
            Ok(c) => c,
            Err(e) => {
                let _ = tx.blocking_send(Err(Box::new(e)));
                return;
            }
        };
        if let Some(at) = plan.corrupt_at {
            if at >= sent && at < sent + chunk.len() as u64 {
                let mut m = BytesMut::from(&chunk[..]);
                m[(at - sent) as usize] ^= 0xff;
                chunk = m.freeze();
            }
        }
        if let Some(limit) = plan.cut_after {
            if sent + chunk.len() as u64 >= limit {
                let keep = (limit - sent) as usize;
                if keep > 0 && tx.blocking_send(Ok(chunk.slice(..keep))).is_err() {
                    return;
                }
                cut(&tx);
                return;
            }
        }
        sent += chunk.len() as u64;
        if tx.blocking_send(Ok(chunk)).is_err() {
            return;
        }
    }
    if !plan.extra.is_empty() && tx.blocking_send(Ok(plan.extra.clone())).is_err() {
        return;
    }
    if plan.cut_after.is_some() {
        cut(&tx);
    }
}

/// A body fed by a producer thread.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, BoxError>>,
    remaining: u64,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let mut h = SizeHint::new();
        h.set_upper(self.remaining);
        h
    }
}

/// A body that keeps `worker` until it has been sent in full or dropped
/// (its connection closed), as a thread of a worker pool stays busy while
/// it writes an answer. Large frames go out in slices of [`SLICE`] bytes:
/// the connection then asks for the next slice only once it has written
/// most of the previous ones, so the worker is held while the client does
/// not read, instead of the whole answer waiting in a buffer.
pub(crate) fn hold_until_sent<G: Send + Sync + Unpin + 'static>(
    body: RespBody,
    worker: G,
) -> RespBody {
    let sliced = Sliced {
        body,
        pending: Bytes::new(),
    };
    keep_until_sent(sliced.boxed(), worker)
}

/// A body that keeps `guard` until it has been sent in full or has failed,
/// or until it is dropped (its connection closed).
pub(crate) fn keep_until_sent<G: Send + Sync + Unpin + 'static>(
    body: RespBody,
    guard: G,
) -> RespBody {
    Guarded {
        body,
        guard: Some(guard),
    }
    .boxed()
}

struct Guarded<G> {
    body: RespBody,
    guard: Option<G>,
}

impl<G: Unpin> Body for Guarded<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            // Sent (or failed): the guard is released.
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The frames of a body held until sent: small, so that what waits in
/// the connection's buffer is little of the answer.
const SLICE: usize = 16 * 1024;

/// A body that hands out large frames in slices of [`SLICE`] bytes.
struct Sliced {
    body: RespBody,
    /// The rest of a large frame, still to be sent.
    pending: Bytes,
}

impl Sliced {
    fn next_slice(&mut self) -> Frame<Bytes> {
        let n = self.pending.len().min(SLICE);
        Frame::data(self.pending.split_to(n))
    }
}

impl Body for Sliced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Some(Ok(self.next_slice())));
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.pending = data;
                    Poll::Ready(Some(Ok(self.next_slice())))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut h = self.body.size_hint();
        let pending = self.pending.len() as u64;
        if let Some(u) = h.upper() {
            h.set_upper(u + pending);
        }
        h.set_lower(h.lower() + pending);
        h
    }
}

/// A body that adds the bytes of each data frame it yields to a counter.
struct Counted {
    body: RespBody,
    counter: Arc<AtomicU64>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
