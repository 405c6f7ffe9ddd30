//! A small HTTP/1.1 server whose every answer is decided by a closure:
//! for the misbehaviour the library test server does not offer (a stalled
//! body, a redirect to `file://`, a 100 MiB JSON body, absurd sizes, an
//! answer on another scheme).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use url::Url;

/// One request as the scripted server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: Method,
    /// The path as sent (percent-encoded), with its leading `/`.
    pub path: String,
    /// The query without `?`, if any.
    pub query: Option<String>,
    /// Every request header.
    pub headers: HeaderMap,
    /// The whole request body.
    pub body: Bytes,
}

impl Seen {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Authorization` header.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `Range: bytes=a-b` start, when the request has one.
    pub fn range_start(&self) -> Option<u64> {
        self.range().map(|(a, _)| a)
    }

    /// The `Range: bytes=a-b` bounds, when the request has them.
    pub fn range(&self) -> Option<(u64, u64)> {
        match library_testserver::ByteRange::parse(self.header("range")?)? {
            library_testserver::ByteRange::From(a, Some(b)) => Some((a, b)),
            _ => None,
        }
    }
}

/// One step of a scripted response body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes.
    Data(Bytes),
    /// Send this chunk `n` times (without holding `n` copies).
    Repeat(Bytes, u64),
    /// Stay silent for this long.
    Sleep(Duration),
    /// Cut the connection.
    Fail,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    steps: Vec<Step>,
    drop: bool,
    delay: Option<Duration>,
}

impl Reply {
    /// An answer with this status and no body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: Vec::new(),
            steps: Vec::new(),
            drop: false,
            delay: None,
        }
    }

    /// Closes the connection without answering.
    pub fn drop_connection() -> Reply {
        Reply {
            drop: true,
            ..Reply::status(500)
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Reply {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value.as_ref()).expect("header value"),
        ));
        self
    }

    /// The whole body (its length becomes `Content-Length`).
    pub fn body(mut self, b: impl Into<Bytes>) -> Reply {
        self.steps = vec![Step::Data(b.into())];
        self
    }

    /// A JSON body.
    pub fn json(self, v: &serde_json::Value) -> Reply {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(v).expect("json"))
    }

    /// The library's envelope around `data`.
    pub fn data(self, data: serde_json::Value) -> Reply {
        self.json(&serde_json::json!({ "data": data }))
    }

    /// A body made of steps; `Content-Length` is left to the caller.
    pub fn steps(mut self, steps: Vec<Step>) -> Reply {
        self.steps = steps;
        self
    }

    /// Waits this long before sending the status line.
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

/// The body of a scripted answer.
pub struct ScriptBody {
    steps: VecDeque<Step>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    exact: Option<u64>,
    sent: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
}

impl Drop for ScriptBody {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl http_body::Body for ScriptBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            if let Some(s) = self.sleep.as_mut() {
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            match self.steps.pop_front() {
                None => return Poll::Ready(None),
                Some(Step::Data(b)) => {
                    self.sent.fetch_add(b.len() as u64, Ordering::Relaxed);
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Some(Step::Repeat(b, n)) => {
                    if n == 0 {
                        continue;
                    }
                    if n > 1 {
                        self.steps.push_front(Step::Repeat(b.clone(), n - 1));
                    }
                    self.sent.fetch_add(b.len() as u64, Ordering::Relaxed);
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Some(Step::Sleep(d)) => self.sleep = Some(Box::pin(tokio::time::sleep(d))),
                Some(Step::Fail) => {
                    return Poll::Ready(Some(Err(std::io::Error::other("scripted cut"))))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty() && self.sleep.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A running scripted server; dropping it stops it.
pub struct Scripted {
    addr: SocketAddr,
    scheme: &'static str,
    log: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    /// Starts a plain HTTP server on 127.0.0.1 answering with `handler`.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Scripted {
        Self::start_with(Arc::new(handler), None).await
    }

    /// Starts an HTTPS server (TLS by `acceptor`) answering with `handler`.
    pub async fn start_tls(
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Scripted {
        Self::start_with(Arc::new(handler), Some(acceptor)).await
    }

    async fn start_with(handler: Arc<Handler>, tls: Option<tokio_rustls::TlsAcceptor>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (log2, sent2, open2) = (log.clone(), sent.clone(), open.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, log, sent, open, tls) = (
                    handler.clone(),
                    log2.clone(),
                    sent2.clone(),
                    open2.clone(),
                    tls.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (handler, log, sent, open) =
                            (handler.clone(), log.clone(), sent.clone(), open.clone());
                        serve(req, handler, log, sent, open)
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Scripted {
            addr,
            scheme,
            log,
            sent,
            open,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/` (or `https://`).
    pub fn url(&self) -> Url {
        Url::parse(&format!("{}://{}/", self.scheme, self.addr)).expect("url")
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request seen so far.
    pub fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The requests whose path contains `needle`.
    pub fn hits(&self, needle: &str) -> Vec<Seen> {
        self.log()
            .into_iter()
            .filter(|s| s.path.contains(needle))
            .collect()
    }

    /// Body bytes handed to the connection so far, over all answers.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits (at most 20 s) until every answer body given out so far is
    /// done with: sent whole, or dropped with its connection. From then on
    /// [`bytes_sent`](Self::bytes_sent) no longer grows.
    pub async fn until_answers_ended(&self) {
        for _ in 0..2000 {
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{} answers still being sent",
            self.open.load(Ordering::SeqCst)
        );
    }
}

async fn serve(
    req: hyper::Request<hyper::body::Incoming>,
    handler: Arc<Handler>,
    log: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
) -> Result<hyper::Response<ScriptBody>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    log.lock().unwrap().push(seen.clone());
    let reply = handler(&seen);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    if reply.drop {
        return Err(std::io::Error::other("scripted: connection dropped"));
    }
    let exact = match reply.steps.as_slice() {
        [] => Some(0),
        [Step::Data(b)] => Some(b.len() as u64),
        _ => None,
    };
    open.fetch_add(1, Ordering::SeqCst);
    let mut resp = hyper::Response::new(ScriptBody {
        steps: reply.steps.into(),
        sleep: None,
        exact,
        sent,
        open,
    });
    *resp.status_mut() = reply.status;
    for (k, v) in reply.headers {
        resp.headers_mut().append(k, v);
    }
    Ok(resp)
}

/// Serves `data` for a GET honouring `Range: bytes=a-b` (206 with
/// `Content-Range`), or whole (200).
pub fn serve_bytes(seen: &Seen, data: &Bytes) -> Reply {
    let total = data.len() as u64;
    match seen.range() {
        Some((a, b)) if a < total => {
            let b = b.min(total - 1);
            Reply::status(206)
                .header("content-range", format!("bytes {a}-{b}/{total}"))
                .header("accept-ranges", "bytes")
                .body(data.slice(a as usize..=b as usize))
        }
        Some(_) => Reply::status(416).header("content-range", format!("bytes */{total}")),
        None => Reply::status(200)
            .header("accept-ranges", "bytes")
            .body(data.clone()),
    }
}
