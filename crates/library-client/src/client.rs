//! The client handle and its builder.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Method};
use library_transport::{HttpClient, JsonResponse, RetryConfig, RootSource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;
use url::Url;

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::DEFAULT_BASE_URL;

/// A `None` request body with a concrete type.
pub(crate) use library_transport::NO_BODY;

/// A client of one library server.
///
/// Cheap to clone: clones share one connection pool, the configuration and
/// the cached server version. Build one with [`Client::builder`] (or
/// [`Client::new`] for the defaults) and keep it for the life of the program.
///
/// ```no_run
/// # async fn demo() -> library_client::Result<()> {
/// use library_client::Client;
///
/// let client = Client::builder()
///     .base_url("https://library.example.org")
///     .token(std::env::var("LIBRARY_TOKEN").unwrap_or_default())
///     .user_agent("my-tool/1.0")
///     .build()?;
/// println!("{:?}", client.get_version().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: HttpClient,
    pub(crate) base: Url,
    pub(crate) token: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) retry: RetryConfig,
    pub(crate) version: OnceCell<library_model::VersionInfo>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .field("user_agent", &self.inner.user_agent)
            .finish_non_exhaustive()
    }
}

/// Configuration of a [`Client`].
///
/// Every setting has a default: the Sylabs Cloud Library as base URL, no
/// token, the system's root certificates plus `SSL_CERT_FILE`, proxies from
/// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, 10 s to connect, 60 s to the
/// response headers and 60 s of silence at most while reading a body (never
/// a limit on a whole transfer), and 5 retries of failed transfer parts.
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    user_agent: Option<String>,
    http: library_transport::HttpClientBuilder,
    retry: RetryConfig,
    custom_http: Option<HttpClient>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            base_url: DEFAULT_BASE_URL.to_string(),
            token: None,
            user_agent: None,
            http: HttpClient::builder(),
            retry: RetryConfig::default(),
            custom_http: None,
        }
    }
}

impl ClientBuilder {
    /// The library's base URL (default [`DEFAULT_BASE_URL`]). A path prefix
    /// is kept (`https://host/library` sends `https://host/library/v1/...`);
    /// only `http` and `https` are accepted. An empty string means the default.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The bearer token sent to the library (and only there). An empty
    /// token means none: no `Authorization` header is sent.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let t = token.into();
        self.token = (!t.is_empty()).then_some(t);
        self
    }

    /// The `User-Agent` of every request.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        let ua = ua.into();
        self.http = self.http.user_agent(ua.clone());
        self.user_agent = Some(ua);
        self
    }

    /// How long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.http = self.http.connect_timeout(d);
        self
    }

    /// How long to wait for the response headers of a request once it was
    /// sent whole (default 60 s). Sending an upload is bounded only by
    /// [`write_timeout`](Self::write_timeout).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.http = self.http.request_timeout(d);
        self
    }

    /// The longest time without progress allowed while sending a request
    /// body (default 60 s): an upload takes as long as it needs while the
    /// connection keeps taking it. See
    /// [`HttpClientBuilder::write_timeout`](library_transport::HttpClientBuilder::write_timeout).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.http = self.http.write_timeout(d);
        self
    }

    /// The longest silence allowed while reading a body (default 60 s).
    /// Transfers as a whole have no time limit.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.http = self.http.read_timeout(d);
        self
    }

    /// Where trusted root certificates come from (default: the system's).
    pub fn root_certificates(mut self, roots: RootSource) -> Self {
        self.http = self.http.root_certificates(roots);
        self
    }

    /// Also trust the CA certificates of this PEM file (a private CA of an
    /// on-premises library). May be called several times.
    pub fn add_root_certificate_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.http = self.http.add_root_certificate_pem_file(path);
        self
    }

    /// Accept any server certificate. Dangerous: anyone on the path can read
    /// and change the traffic, token included. For tests of servers with
    /// self-signed certificates only.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.http = self.http.danger_accept_invalid_certs(yes);
        self
    }

    /// Send every request through this proxy, instead of the proxies named
    /// by the environment.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.http = self.http.proxy(url);
        self
    }

    /// Hosts reached without a proxy (the `NO_PROXY` syntax).
    pub fn no_proxy(mut self, list: impl Into<String>) -> Self {
        self.http = self.http.no_proxy(list);
        self
    }

    /// How failed transfer parts are retried (default: 5 retries with
    /// exponential backoff and jitter).
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Use this HTTP client instead of building one from the settings above
    /// (timeouts, TLS and proxy settings of this builder are then ignored).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.custom_http = Some(http);
        self
    }

    /// Build the client. Fails on a base URL that does not parse or is not
    /// http(s), and on TLS or proxy settings that cannot be used.
    pub fn build(self) -> Result<Client> {
        let base = normalize_base_url(&self.base_url)?;
        let http = match self.custom_http {
            Some(h) => h,
            None => self
                .http
                .build()
                .map_err(|e| Error::Config(e.to_string()))?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: self.token,
                user_agent: self.user_agent,
                retry: self.retry,
                version: OnceCell::new(),
            }),
        })
    }
}

/// The error for a response whose status the operation does not accept,
/// with the server's message from its (bounded) body.
pub(crate) async fn status_error(resp: library_transport::Response) -> Error {
    resp.into_status_error().await.into()
}

/// Add the trailing `/` that keeps a path prefix, parse, and accept only
/// http(s).
pub(crate) fn normalize_base_url(raw: &str) -> Result<Url> {
    let raw = if raw.is_empty() {
        DEFAULT_BASE_URL
    } else {
        raw
    };
    let with_slash = if raw.ends_with('/') {
        raw.to_string()
    } else {
        format!("{raw}/")
    };
    let url = Url::parse(&with_slash)
        .map_err(|e| Error::Config(format!("base URL {raw:?} is not a URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Error::Config(format!(
                "base URL {raw:?}: unsupported scheme {other:?} (use http or https)"
            )))
        }
    }
    if url.cannot_be_a_base() || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::Config(format!("base URL {raw:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(format!(
            "base URL {raw:?} must not carry credentials: use the token setting"
        )));
    }
    Ok(url)
}

impl Client {
    /// A builder with every setting at its default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client of `base_url` with a bearer token (empty for none) and
    /// every other setting at its default.
    pub fn new(base_url: &str, token: &str) -> Result<Client> {
        Client::builder().base_url(base_url).token(token).build()
    }

    /// The base URL, always ending with `/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The HTTP client underneath (shared by every clone of this client).
    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The URL of an endpoint: `path` (relative, like `v1/images/...`)
    /// resolved against the base URL, with the query pairs appended.
    pub(crate) fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Result<Url> {
        let mut url =
            self.inner.base.join(path).map_err(|e| {
                Error::bad_request(format!("cannot build a URL from {path:?}: {e}"))
            })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// The headers every library request carries: the token, when set.
    pub(crate) fn auth_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = &self.inner.token {
            if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                v.set_sensitive(true);
                h.insert(AUTHORIZATION, v);
            }
        }
        h
    }

    /// The library's headers for `url` when it is on the library's own
    /// origin (scheme, host and port), none otherwise: the token never
    /// leaves the library.
    pub(crate) fn auth_headers_for(&self, url: &Url) -> HeaderMap {
        if library_transport::same_origin(url, &self.inner.base) {
            self.auth_headers()
        } else {
            HeaderMap::new()
        }
    }

    /// Mask this client's token in the server's words an error carries.
    pub(crate) fn scrub(&self, e: Error) -> Error {
        match &self.inner.token {
            Some(t) => e.redact(t),
            None => e,
        }
    }

    /// A JSON request to the library, status not yet judged. It is sent
    /// again with backoff after a failure or an answer that may be retried
    /// for its method (a GET after a 502, a POST only when it surely never
    /// reached the server).
    pub(crate) async fn raw_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
    ) -> Result<JsonResponse> {
        tracing::debug!(%method, url = %library_transport::redact_url(url), "library request");
        self.inner
            .http
            .request_json_with_retry(&self.inner.retry, method, url, &self.auth_headers(), body)
            .await
            .map_err(|e| self.scrub(e.into()))
    }

    /// A JSON request to the library with the status rules applied and the
    /// `data` of the envelope decoded. A 404 becomes [`Error::NotFound`]
    /// about `what`.
    pub(crate) async fn library_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        what: &str,
    ) -> Result<T> {
        let resp = self.raw_json(method.clone(), url, body).await?;
        resp.check(&method)
            .map_err(|e| self.scrub(Error::about(what, e)))?;
        resp.data().map_err(|e| self.scrub(e.into()))
    }

    /// Like [`library_json`](Self::library_json) for answers whose body may
    /// be empty or carry no data.
    pub(crate) async fn library_json_opt<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        what: &str,
    ) -> Result<Option<T>> {
        let resp = self.raw_json(method.clone(), url, body).await?;
        resp.check(&method)
            .map_err(|e| self.scrub(Error::about(what, e)))?;
        resp.data_opt().map_err(|e| self.scrub(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors(file: &str) -> Vec<Value> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/vectors/");
        serde_json::from_str(&std::fs::read_to_string(format!("{p}{file}")).unwrap()).unwrap()
    }

    /// `new_client.json`: base URL normalisation, endpoint resolution and
    /// the headers every request carries.
    #[test]
    fn new_client_vectors() {
        for c in vectors("new_client.json") {
            let name = c["name"].as_str().unwrap();
            let cfg = &c["input"]["config"];
            let mut b = Client::builder();
            if let Some(u) = cfg.get("base_url").and_then(Value::as_str) {
                b = b.base_url(u);
            }
            if let Some(t) = cfg.get("auth_token").and_then(Value::as_str) {
                b = b.token(t);
            }
            if let Some(ua) = cfg.get("user_agent").and_then(Value::as_str) {
                b = b.user_agent(ua);
            }
            let expect = &c["expect"];
            let req = &c["input"]["request"];
            if expect.get("error").is_some() {
                let method_bad = req
                    .get("method")
                    .and_then(Value::as_str)
                    .is_some_and(|m| Method::from_bytes(m.as_bytes()).is_err());
                assert!(
                    method_bad || matches!(b.build(), Err(Error::Config(_))),
                    "{name}: expected an error"
                );
                continue;
            }
            let client = b.build().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(client.base_url().as_str(), expect["base_url"], "{name}");
            if req.is_null() {
                continue;
            }
            // The library's endpoints are relative paths; a leading `/`
            // resolves against the host, as in the reference.
            let mut url = client
                .base_url()
                .join(req["path"].as_str().unwrap())
                .unwrap();
            let q = req["raw_query"].as_str().unwrap();
            if !q.is_empty() {
                url.set_query(Some(q));
            }
            assert_eq!(url.as_str(), expect["request_url"], "{name}");
            let auth = client.auth_headers();
            assert_eq!(
                auth.get(AUTHORIZATION).map(|v| v.to_str().unwrap()),
                expect["authorization"].as_str(),
                "{name}"
            );
            assert_eq!(
                client.inner.user_agent.as_deref(),
                expect["user_agent"].as_str(),
                "{name}"
            );
        }
    }

    #[test]
    fn base_url_rules() {
        assert!(normalize_base_url("ftp://x").is_err());
        assert!(normalize_base_url("https://user:pw@x").is_err());
        assert_eq!(
            normalize_base_url("").unwrap().as_str(),
            "https://library.sylabs.io/"
        );
        let c = Client::new("http://127.0.0.1:1/prefix", "").unwrap();
        assert_eq!(
            c.endpoint("v1/images/a/b/c:t", &[("arch", "amd64")])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/prefix/v1/images/a/b/c:t?arch=amd64"
        );
    }

    #[test]
    fn token_stays_on_the_library_origin() {
        let c = Client::new("https://lib.example:443/x", "secret").unwrap();
        let same = Url::parse("https://LIB.example/blobs/1").unwrap();
        assert!(c.auth_headers_for(&same).contains_key(AUTHORIZATION));
        for other in [
            "http://lib.example/blobs/1",
            "https://lib.example:8443/blobs/1",
            "https://s3.example/blobs/1",
        ] {
            let u = Url::parse(other).unwrap();
            assert!(c.auth_headers_for(&u).is_empty(), "{other}");
        }
        assert!(!format!("{c:?}").contains("secret"));
    }
}
