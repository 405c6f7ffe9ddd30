//! The pooled HTTP client and its builder.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, PROXY_AUTHORIZATION, USER_AGENT};
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::body::{Body, Response, SendState, SendWatch};
use crate::error::{BoxError, Error, Result};
use crate::retry::RetryConfig;
use crate::util::redact_uri;

/// Where the trusted root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RootSource {
    /// The operating system's store, or the files named by `SSL_CERT_FILE`
    /// / `SSL_CERT_DIR` when those are set (default).
    #[default]
    Native,
    /// No built-in roots: only the CA files added with
    /// [`HttpClientBuilder::add_root_certificate_pem_file`].
    None,
}

/// Proxy settings, as read from the environment or set explicitly.
#[derive(Clone, Default, PartialEq, Eq)]
struct ProxySettings {
    all: String,
    http: String,
    https: String,
    no: String,
    cgi: bool,
}

/// Whether `value` names a proxy this client can use: an `http` or `https`
/// URL (or a bare `host:port`, taken as `http`) with a host.
fn proxy_uri_is_usable(value: &str) -> bool {
    let Ok(uri) = value.parse::<Uri>() else {
        return false;
    };
    let scheme_ok = matches!(uri.scheme_str(), None | Some("http") | Some("https"));
    let host_ok = uri
        .authority()
        .map(|a| a.host())
        .is_some_and(|h| !h.is_empty());
    scheme_ok && host_ok
}

/// Hides `user:password@` in a proxy URL.
fn mask_userinfo(u: &str) -> String {
    match (u.find("://"), u.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}***{}", &u[..a + 3], &u[b..]),
        (None, Some(b)) => format!("***{}", &u[b..]),
        _ => u.to_string(),
    }
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("all", &mask_userinfo(&self.all))
            .field("http", &mask_userinfo(&self.http))
            .field("https", &mask_userinfo(&self.https))
            .field("no", &self.no)
            .field("cgi", &self.cgi)
            .finish()
    }
}

impl ProxySettings {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| names.iter().find_map(|n| get(n)).unwrap_or_default();
        ProxySettings {
            all: first(&["ALL_PROXY", "all_proxy"]),
            http: first(&["HTTP_PROXY", "http_proxy"]),
            https: first(&["HTTPS_PROXY", "https_proxy"]),
            no: first(&["NO_PROXY", "no_proxy"]),
            cgi: get("REQUEST_METHOD").is_some(),
        }
    }

    /// Refuses a proxy URL that the matcher would silently skip (requests
    /// would then go direct, around the proxy the user named).
    fn check(&self) -> Result<()> {
        for (what, value) in [
            ("all", &self.all),
            ("http://", &self.http),
            ("https://", &self.https),
        ] {
            if value.is_empty() || proxy_uri_is_usable(value) {
                continue;
            }
            return Err(Error::InvalidRequest(format!(
                "proxy {:?} for {what} requests is not a proxy URL \
                 (expected http://host:port or https://host:port)",
                mask_userinfo(value)
            )));
        }
        Ok(())
    }

    fn matcher(&self) -> Matcher {
        // As curl does: HTTP_PROXY is ignored under CGI (REQUEST_METHOD set),
        // because a request header "Proxy:" would set it.
        let http = if self.cgi {
            String::new()
        } else {
            self.http.clone()
        };
        Matcher::builder()
            .all(self.all.clone())
            .http(http)
            .https(self.https.clone())
            .no(self.no.clone())
            .build()
    }
}

/// Configures and builds an [`HttpClient`].
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// let client = library_transport::HttpClient::builder()
///     .user_agent("my-tool/1.0")
///     .connect_timeout(Duration::from_secs(5))
///     .build()?;
/// # Ok::<(), library_transport::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpClientBuilder {
    user_agent: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    write_timeout: Duration,
    read_timeout: Duration,
    roots: RootSource,
    extra_roots: Vec<PathBuf>,
    danger_accept_invalid_certs: bool,
    proxy: ProxySettings,
    json_limit: usize,
    http1_only: bool,
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        HttpClientBuilder {
            user_agent: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            roots: RootSource::Native,
            extra_roots: Vec::new(),
            danger_accept_invalid_certs: false,
            proxy: ProxySettings::from_lookup(|k| std::env::var(k).ok()),
            json_limit: 16 << 20,
            http1_only: false,
        }
    }
}

impl HttpClientBuilder {
    /// A builder with the defaults; proxies are read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `User-Agent` sent with every request (none by default).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Time allowed to connect, including TLS and a proxy's CONNECT
    /// (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time allowed from the end of a request (its whole body sent) until
    /// its response headers arrive (default 60 s). Sending the body is
    /// bounded only by [`write_timeout`](Self::write_timeout), receiving
    /// one only by [`read_timeout`](Self::read_timeout): a transfer as a
    /// whole may take as long as it needs while it progresses.
    ///
    /// The body counts as sent once the connection took its last block;
    /// what the operating system still holds in its socket buffers then
    /// goes out within this time.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Longest time without progress while sending a request (default
    /// 60 s): the connection took no new block of the body (256 KiB from a
    /// file) in that time. Before the first block, connecting is allowed
    /// [`connect_timeout`](Self::connect_timeout) on top.
    ///
    /// The default equals the [`read_timeout`](Self::read_timeout), so that
    /// a silent link fails alike in both directions, and it lets one block
    /// through an uplink as slow as about 4 KB/s (a block is handed over
    /// whole, so progress is seen once per block). A timeout is retried as
    /// any other (see [`Attempts`](crate::Attempts)).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// Longest idle time between two frames of a response body (default
    /// 60 s). There is never a total timeout on a body.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// Which built-in roots to trust (default [`RootSource::Native`],
    /// which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub fn root_certificates(mut self, roots: RootSource) -> Self {
        self.roots = roots;
        self
    }

    /// Also trusts the CA certificates in the PEM file at `path` (for
    /// servers with a private CA). The file is read by [`build`](Self::build).
    pub fn add_root_certificate_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_roots.push(path.into());
        self
    }

    /// **Dangerous**: accept any server certificate, valid or not, for any
    /// host. This disables the protection TLS gives against an attacker on
    /// the network; use it only against a test server you control.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.danger_accept_invalid_certs = yes;
        self
    }

    /// Sends all requests (http and https) through the proxy at `url`,
    /// overriding the environment. `user:password@` in the URL is sent as
    /// Basic proxy authorization. A value that is not an `http` or `https`
    /// URL with a host (a bare `host:port` is taken as `http`) makes
    /// [`build`](Self::build) fail, rather than send requests around it;
    /// the same holds for the proxy variables of the environment.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        let u = url.into();
        self.proxy.all = u.clone();
        self.proxy.http = u.clone();
        self.proxy.https = u;
        self
    }

    /// Sends `http://` requests through the proxy at `url`.
    pub fn http_proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy.http = url.into();
        self
    }

    /// Sends `https://` requests through the proxy at `url` (CONNECT tunnel).
    pub fn https_proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy.https = url.into();
        self
    }

    /// Hosts that are reached directly, as in `NO_PROXY`: a comma-separated
    /// list of domains (matching subdomains too), IP addresses or CIDR
    /// ranges, or `*` for all. Replaces the list from the environment.
    pub fn no_proxy(mut self, list: impl Into<String>) -> Self {
        self.proxy.no = list.into();
        self
    }

    /// Ignores the proxy environment variables: every request goes direct
    /// unless a proxy is set explicitly afterwards.
    pub fn no_proxy_from_env(mut self) -> Self {
        self.proxy = ProxySettings::default();
        self
    }

    /// Reads the proxy settings (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`,
    /// `NO_PROXY`, either case, upper case first) through `lookup` instead
    /// of the process environment. This is what the builder does by
    /// default with the real environment; tests use it to avoid mutating
    /// the process environment.
    pub fn proxy_from_vars(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        self.proxy = ProxySettings::from_lookup(lookup);
        self
    }

    /// Largest response body the JSON helpers will buffer (default 16 MiB).
    pub fn json_body_limit(mut self, bytes: usize) -> Self {
        self.json_limit = bytes;
        self
    }

    /// Speaks HTTP/1.1 only (no HTTP/2 offered by ALPN).
    pub fn http1_only(mut self, yes: bool) -> Self {
        self.http1_only = yes;
        self
    }

    fn tls_config(&self) -> Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                message: "cannot set up TLS protocol versions".into(),
                source: Some(Box::new(e)),
            })?;
        if self.danger_accept_invalid_certs {
            tracing::warn!("TLS certificate verification is disabled");
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth());
        }
        let mut roots = RootCertStore::empty();
        if self.roots == RootSource::Native {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "could not load some system root certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "loaded system root certificates");
        }
        for path in &self.extra_roots {
            let bad = |m: String, e: Option<BoxError>| Error::Tls {
                message: format!("CA file {}: {m}", path.display()),
                source: e,
            };
            let iter = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad("cannot read PEM certificates".into(), Some(Box::new(e))))?;
            let mut n = 0;
            for cert in iter {
                let cert = cert.map_err(|e| bad("invalid PEM".into(), Some(Box::new(e))))?;
                roots
                    .add(cert)
                    .map_err(|e| bad("invalid certificate".into(), Some(Box::new(e))))?;
                n += 1;
            }
            if n == 0 {
                return Err(bad("no certificate found".into(), None));
            }
        }
        if roots.is_empty() {
            return Err(Error::Tls {
                message: "no trusted root certificates: the system store is empty (or SSL_CERT_FILE names none) and no CA file was added".into(),
                source: None,
            });
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }

    /// Builds the client. Fails if a CA file cannot be read or holds no
    /// certificate, or if no root certificate is trusted at all.
    pub fn build(self) -> Result<HttpClient> {
        self.proxy.check()?;
        let tls = self.tls_config()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = {
            let b = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1();
            if self.http1_only {
                b.wrap_connector(http)
            } else {
                b.enable_http2().wrap_connector(http)
            }
        };
        let mut tunnel_tls = tls;
        tunnel_tls.alpn_protocols = if self.http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        let matcher = Arc::new(self.proxy.matcher());
        let user_agent = match &self.user_agent {
            Some(ua) => Some(HeaderValue::from_str(ua).map_err(|_| {
                Error::InvalidRequest("user agent is not a valid header value".into())
            })?),
            None => None,
        };
        let connector = Connector {
            https,
            tunnel_tls: Arc::new(tunnel_tls),
            matcher: matcher.clone(),
            timeout: self.connect_timeout,
            user_agent: user_agent.clone(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .http1_max_buf_size(HTTP1_MAX_BUF)
            .build(connector);
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                matcher,
                user_agent,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                write_timeout: self.write_timeout,
                read_timeout: self.read_timeout,
                json_limit: self.json_limit,
            }),
        })
    }
}

/// A pooled HTTP/1.1 and HTTP/2 client (TLS by rustls, proxies from the
/// environment). Cloning is cheap and shares the connection pool.
/// Redirects are never followed: a 3xx is returned to the caller.
#[derive(Clone)]
pub struct HttpClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: Client<Connector, Body>,
    matcher: Arc<Matcher>,
    user_agent: Option<HeaderValue>,
    connect_timeout: Duration,
    request_timeout: Duration,
    write_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) json_limit: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("user_agent", &self.inner.user_agent)
            .field("request_timeout", &self.inner.request_timeout)
            .field("write_timeout", &self.inner.write_timeout)
            .field("read_timeout", &self.inner.read_timeout)
            .field("proxy", &self.inner.matcher)
            .finish()
    }
}

impl HttpClient {
    /// A builder with the default settings.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::new()
    }

    /// A client with the default settings.
    pub fn new() -> Result<HttpClient> {
        Self::builder().build()
    }

    /// Sends a request and returns the response once its headers arrived.
    /// The request body may take as long as it needs while the connection
    /// keeps taking it (each block within the write timeout); the headers
    /// must then arrive within the request timeout. The response body is
    /// read from the returned [`Response`], each frame within the read
    /// timeout. Any status is
    /// returned as is; redirects are not followed.
    pub async fn send(&self, mut req: http::Request<Body>) -> Result<Response> {
        let url = redact_uri(req.uri());
        if let Some(ua) = &self.inner.user_agent {
            if !req.headers().contains_key(USER_AGENT) {
                req.headers_mut().insert(USER_AGENT, ua.clone());
            }
        }
        if req.uri().scheme_str() == Some("http") {
            if let Some(auth) = self
                .inner
                .matcher
                .intercept(req.uri())
                .and_then(|i| i.basic_auth().cloned())
            {
                req.headers_mut().insert(PROXY_AUTHORIZATION, auth);
            }
        }
        let watch = Arc::new(SendWatch::new());
        req.body_mut().watch(watch.clone());
        let fut = self.inner.client.request(req);
        tokio::pin!(fut);
        // Times out on progress, never on the whole exchange: while the
        // body goes out, when the connection took nothing for the write
        // timeout; once it is sent, when the headers take longer than the
        // request timeout.
        let resp = loop {
            let state = watch.state();
            let (deadline, what) = self.inner.deadline(state);
            if deadline <= Instant::now() {
                return Err(Error::Timeout { url, what });
            }
            tokio::select! {
                r = &mut fut => match r {
                    Ok(r) => break r,
                    Err(e) => return Err(classify(e, url)),
                },
                // Progress may have been made meanwhile: look again.
                () = tokio::time::sleep_until(deadline.into()) => {}
                // Sent whole: from now on the request timeout counts.
                () = watch.finished(), if !matches!(state, SendState::Done(_)) => {}
            }
        };
        let (parts, body) = resp.into_parts();
        Ok(Response::new(parts, body, url, self.inner.read_timeout))
    }

    /// Sends the request that `build` makes, and sends a new one with
    /// backoff while the outcome may be retried for the request's method
    /// (the rules of [`Attempts`](crate::Attempts)); a `Retry-After`
    /// answer is honoured up to the policy's largest delay. The final
    /// response is returned whatever its status, so that the caller can
    /// judge it (when the retries are used up on a 503, that 503). `build`
    /// is called once per attempt, so that each attempt has a fresh body.
    ///
    /// ```no_run
    /// # async fn demo() -> library_transport::Result<()> {
    /// use library_transport::{Body, HttpClient, RetryConfig};
    /// let client = HttpClient::new()?;
    /// let resp = client
    ///     .send_with_retry(&RetryConfig::default(), || {
    ///         http::Request::get("https://library.example/version")
    ///             .body(Body::empty())
    ///             .map_err(|e| library_transport::Error::InvalidRequest(e.to_string()))
    ///     })
    ///     .await?;
    /// println!("{}", resp.status());
    /// # Ok(()) }
    /// ```
    pub async fn send_with_retry<F>(&self, retry: &RetryConfig, mut build: F) -> Result<Response>
    where
        F: FnMut() -> Result<http::Request<Body>>,
    {
        let first = build()?;
        let method = first.method().clone();
        let url = redact_uri(first.uri());
        let mut first = Some(first);
        crate::retry::exchange(retry, &method, &url, || {
            let req = first.take().map(Ok).unwrap_or_else(&mut build);
            async move { self.send(req?).await }
        })
        .await
    }

    /// The idle timeout between body frames this client was built with.
    pub fn read_timeout(&self) -> Duration {
        self.inner.read_timeout
    }
}

impl Inner {
    /// When sending a request times out, by where it stands, and what it
    /// is then waiting for.
    fn deadline(&self, state: SendState) -> (Instant, &'static str) {
        match state {
            // Connecting (bounded on its own) and sending the head.
            SendState::Started(t) => (
                t + self.connect_timeout + self.write_timeout,
                "sending the request (no progress within the write timeout)",
            ),
            SendState::Sending(t) => (
                t + self.write_timeout,
                "sending the request body (no progress within the write timeout)",
            ),
            SendState::Done(t) => (t + self.request_timeout, "waiting for the response headers"),
        }
    }
}

/// Turns a hyper-util client error into our error, looking for the
/// failures our connector reports.
fn classify(e: hyper_util::client::legacy::Error, url: String) -> Error {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(f) = s.downcast_ref::<ConnectFailure>() {
            return match f {
                ConnectFailure::Timeout => Error::Timeout {
                    url,
                    what: "connecting",
                },
                ConnectFailure::Proxy(m) => Error::Proxy {
                    message: format!("{url}: {m}"),
                    source: None,
                },
                ConnectFailure::Tls(m) => Error::Tls {
                    message: format!("{url}: {m}"),
                    source: None,
                },
            };
        }
        src = s.source();
    }
    if e.is_connect() {
        Error::Connect {
            url,
            source: Box::new(e),
        }
    } else {
        Error::Request {
            url,
            source: Box::new(e),
        }
    }
}

#[derive(Debug)]
enum ConnectFailure {
    Timeout,
    Proxy(String),
    Tls(String),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::Timeout => f.write_str("connect timed out"),
            ConnectFailure::Proxy(m) => write!(f, "proxy: {m}"),
            ConnectFailure::Tls(m) => write!(f, "TLS: {m}"),
        }
    }
}

impl std::error::Error for ConnectFailure {}

/// Finds a rustls error in a connector error, if TLS is what failed.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut src = Some(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        // io::Error hides its payload from source(): look inside it.
        src = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

/// The largest HTTP/1 read buffer per connection. Small buffers keep the
/// memory of many concurrent parts low; 64 KiB reads cost little.
const HTTP1_MAX_BUF: usize = 64 << 10;

type Https = HttpsConnector<HttpConnector>;
type Plain = MaybeHttpsStream<TokioIo<TcpStream>>;

#[derive(Clone)]
struct Connector {
    https: Https,
    tunnel_tls: Arc<ClientConfig>,
    matcher: Arc<Matcher>,
    timeout: Duration,
    user_agent: Option<HeaderValue>,
}

impl Connector {
    async fn connect(mut self, dst: Uri) -> std::result::Result<Conn, BoxError> {
        let wrap = |e: BoxError| -> BoxError {
            match tls_failure(e.as_ref()) {
                Some(m) => Box::new(ConnectFailure::Tls(m)),
                None => e,
            }
        };
        let Some(icpt) = self.matcher.intercept(&dst) else {
            let io = self.https.call(dst).await.map_err(wrap)?;
            return Ok(Conn::Direct { io, proxied: false });
        };
        if dst.scheme_str() != Some("https") {
            let io = self.https.call(icpt.uri().clone()).await.map_err(wrap)?;
            return Ok(Conn::Direct { io, proxied: true });
        }
        let mut tunnel = Tunnel::new(icpt.uri().clone(), self.https.clone());
        if let Some(auth) = icpt.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        if let Some(ua) = &self.user_agent {
            let mut h = http::HeaderMap::new();
            h.insert(USER_AGENT, ua.clone());
            tunnel = tunnel.with_headers(h);
        }
        let tunneled = tunnel
            .call(dst.clone())
            .await
            .map_err(|e| -> BoxError { Box::new(ConnectFailure::Proxy(e.to_string())) })?;
        let host = dst
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = ServerName::try_from(host)
            .map_err(|e| -> BoxError { Box::new(ConnectFailure::Tls(e.to_string())) })?;
        let tls = tokio_rustls::TlsConnector::from(self.tunnel_tls.clone())
            .connect(name, TokioIo::new(tunneled))
            .await
            .map_err(|e| -> BoxError {
                let m = tls_failure(&e).unwrap_or_else(|| e.to_string());
                Box::new(ConnectFailure::Tls(m))
            })?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(Conn::Tunneled {
            io: Box::new(TokioIo::new(tls)),
            h2,
        })
    }
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, this.connect(dst)).await {
                Ok(r) => r,
                Err(_) => Err(Box::new(ConnectFailure::Timeout) as BoxError),
            }
        })
    }
}

/// A connection: direct (plain or TLS, possibly to an HTTP proxy that gets
/// absolute-form requests) or TLS through a CONNECT tunnel.
// One value per connection: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Conn {
    Direct {
        io: Plain,
        proxied: bool,
    },
    Tunneled {
        io: Box<TokioIo<tokio_rustls::client::TlsStream<TokioIo<Plain>>>>,
        h2: bool,
    },
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Direct { io, proxied } => io.connected().proxy(*proxied),
            Conn::Tunneled { h2, .. } => {
                let c = Connected::new();
                if *h2 {
                    c.negotiated_h2()
                } else {
                    c
                }
            }
        }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Direct { io, .. } => Pin::new(io).poll_read(cx, buf),
            Conn::Tunneled { io, .. } => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Direct { io, .. } => Pin::new(io).poll_write(cx, buf),
            Conn::Tunneled { io, .. } => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Direct { io, .. } => Pin::new(io).poll_flush(cx),
            Conn::Tunneled { io, .. } => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Direct { io, .. } => Pin::new(io).poll_shutdown(cx),
            Conn::Tunneled { io, .. } => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Direct { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
            Conn::Tunneled { io, .. } => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Direct { io, .. } => io.is_write_vectored(),
            Conn::Tunneled { io, .. } => io.is_write_vectored(),
        }
    }
}

/// Accepts every certificate (see [`HttpClientBuilder::danger_accept_invalid_certs`]).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks that `path` names a readable file (used to fail early with the
/// path in the error).
#[allow(dead_code)]
pub(crate) fn check_readable(path: &Path) -> Result<()> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_proxy_credentials() {
        let b = HttpClientBuilder::new()
            .no_proxy_from_env()
            .proxy("http://user:secret@proxy.example:3128");
        let shown = format!("{b:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("proxy.example:3128"), "{shown}");
    }

    #[test]
    fn a_proxy_that_cannot_be_used_fails_the_build() {
        for good in [
            "http://proxy.example:3128",
            "https://p.example",
            "p.example:8080",
        ] {
            let b = HttpClientBuilder::new().no_proxy_from_env().proxy(good);
            assert!(b.build().is_ok(), "{good}");
        }
        for bad in [
            "not a proxy url",
            "socks5://p.example:1080",
            "ftp://p.example",
            "http://user:secret@/",
        ] {
            let err = HttpClientBuilder::new()
                .no_proxy_from_env()
                .proxy(bad)
                .build()
                .expect_err(bad)
                .to_string();
            assert!(err.contains("not a proxy URL"), "{bad}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let from_env = HttpClientBuilder::new().proxy_from_vars(|k| {
            (k == "HTTPS_PROXY").then(|| "socks5h://p.example:1080".to_string())
        });
        assert!(from_env.build().is_err());
    }
}
