//! A scriptable HTTP test server (hyper), a forward proxy and helpers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn range(&self) -> Option<String> {
        self.headers
            .get(http::header::RANGE)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// A scripted answer.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Bytes>,
    /// Sleep before sending the headers.
    pub head_delay: Option<Duration>,
    /// Sleep before every chunk after the first.
    pub chunk_delay: Option<Duration>,
    /// After the chunks, fail the body so the connection is cut.
    pub cut: bool,
    /// Before sending the headers, wait until this holds `true`.
    pub hold: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Default::default()
        }
    }
    pub fn body(mut self, b: impl Into<Bytes>) -> Reply {
        self.chunks = vec![b.into()];
        self
    }
    pub fn header(mut self, k: &str, v: impl ToString) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Seen>>>,
    pub max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ScriptBody {
    chunks: VecDeque<Bytes>,
    delay: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    first: bool,
    cut: bool,
}

impl hyper::body::Body for ScriptBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.chunks.is_empty() {
            if this.cut {
                this.cut = false;
                return Poll::Ready(Some(Err("cut by the test server".into())));
            }
            return Poll::Ready(None);
        }
        if !this.first {
            if let Some(d) = this.delay {
                let s = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(d)));
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
        }
        this.first = false;
        Poll::Ready(Some(Ok(Frame::data(this.chunks.pop_front().unwrap()))))
    }
}

use std::future::Future;

impl TestServer {
    /// Starts a server answering every request with `handler`.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        Self::start_with(handler, None).await
    }

    /// Starts a server, with TLS when `tls` is given.
    pub async fn start_with(
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let handler: Handler = Arc::new(handler);
        let (log2, max2) = (log.clone(), max_in_flight.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (handler, log, max, inf, tls) = (
                    handler.clone(),
                    log2.clone(),
                    max2.clone(),
                    in_flight.clone(),
                    tls.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<Incoming>| {
                        let (handler, log, max, inf) =
                            (handler.clone(), log.clone(), max.clone(), inf.clone());
                        async move {
                            let n = inf.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(n, Ordering::SeqCst);
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
                            if let Some(d) = reply.head_delay {
                                tokio::time::sleep(d).await;
                            }
                            if let Some(mut h) = reply.hold.clone() {
                                let _ = h.wait_for(|open| *open).await;
                            }
                            inf.fetch_sub(1, Ordering::SeqCst);
                            let mut resp = http::Response::builder()
                                .status(StatusCode::from_u16(reply.status).unwrap());
                            for (k, v) in &reply.headers {
                                resp = resp.header(k, v);
                            }
                            let body = ScriptBody {
                                chunks: reply.chunks.into_iter().collect(),
                                delay: reply.chunk_delay,
                                sleep: None,
                                first: true,
                                cut: reply.cut,
                            };
                            Ok::<_, Infallible>(resp.body(body).unwrap())
                        }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acc) => {
                            if let Ok(s) = acc.accept(sock).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(sock), svc).await;
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            log,
            max_in_flight,
            task,
        }
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{}", self.addr, path)).unwrap()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| rng.u8(..)).collect()
}

/// A correct answer to a (possibly ranged) GET of `data`.
pub fn serve_range(data: &[u8], seen: &Seen) -> Reply {
    let total = data.len() as u64;
    match seen.range() {
        None => Reply::status(200)
            .header("content-length", total)
            .body(Bytes::copy_from_slice(data)),
        Some(r) => {
            let (a, b) = parse_range(&r);
            let b = b.min(total - 1);
            Reply::status(206)
                .header("content-range", format!("bytes {a}-{b}/{total}"))
                .header("content-length", b - a + 1)
                .body(Bytes::copy_from_slice(&data[a as usize..=b as usize]))
        }
    }
}

/// The bounds of a `Range: bytes=a-b` header the client sent.
pub fn parse_range(r: &str) -> (u64, u64) {
    match library_testserver::ByteRange::parse(r) {
        Some(library_testserver::ByteRange::From(a, Some(b))) => (a, b),
        other => panic!("the client asks for one closed range, not {r:?} ({other:?})"),
    }
}

/// A forward proxy on raw TCP: answers absolute-form requests itself with
/// the body `from-proxy`, and tunnels CONNECT. Records each request line
/// and its Proxy-Authorization header.
/// Request lines with their Proxy-Authorization header.
pub type ProxyLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct TestProxy {
    pub addr: SocketAddr,
    pub log: ProxyLog,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    pub async fn start() -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let log = log2.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if sock.read(&mut b).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(b[0]);
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let line = text.lines().next().unwrap_or("").to_string();
                    let auth = text
                        .lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:"))
                        .map(|l| l.split_once(':').unwrap().1.trim().to_string());
                    log.lock().unwrap().push((line.clone(), auth));
                    if let Some(target) = line.strip_prefix("CONNECT ") {
                        let target = target.split(' ').next().unwrap().to_string();
                        let Ok(mut up) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await;
                        let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
                    } else {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nfrom-proxy")
                            .await;
                    }
                });
            }
        });
        TestProxy { addr, log, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}

/// Files in `dir` (names), sorted.
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A retry policy with tiny delays for tests.
pub fn fast_retry(n: u32) -> library_transport::RetryConfig {
    library_transport::RetryConfig::default()
        .with_max_retries(n)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

/// A client that ignores the proxy environment.
pub fn client() -> library_transport::HttpClient {
    library_transport::HttpClient::builder()
        .no_proxy_from_env()
        .read_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}
