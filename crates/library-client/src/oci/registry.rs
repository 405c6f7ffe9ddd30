//! The registry handle: URLs, names, credentials and the 401 dance.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use library_transport::{
    new_request, redact_url, same_origin, Body, HttpClient, Response, RetryConfig,
};
use url::Url;

use super::auth::{parse_www_authenticate, AuthScheme, TokenAnswer};
use crate::error::{Error, Result};

/// Largest error body read from a registry.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Largest token answer read from a token endpoint.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;
/// Redirects followed at most for one request.
const MAX_REDIRECTS: usize = 5;

/// A client of one OCI distribution registry that stores SIF images as
/// OCI artifacts (a config of media type
/// [`MEDIA_TYPE_SIF_CONFIG`](library_model::MEDIA_TYPE_SIF_CONFIG) and one
/// layer, the SIF file, of media type
/// [`MEDIA_TYPE_SIF_LAYER`](library_model::MEDIA_TYPE_SIF_LAYER)).
///
/// This is the registry a library fronts (the library's
/// [`Client::download_image`](crate::Client::download_image) and
/// [`Client::upload_image`](crate::Client::upload_image) use it when the
/// library redirects there), but it works against any registry directly.
///
/// Requests carry `Authorization: Bearer <token>` when a token is given,
/// and only to the registry's own origin (scheme, host and port). When the
/// registry answers 401 with a `Bearer` challenge naming a realm, a token
/// is requested from that realm (Docker token protocol) and the request is
/// sent again with it; a 401 to a request sent without credentials is
/// retried once with `Authorization: none`, which some registries require.
/// With [`basic_auth`](Self::basic_auth), a user name and password (or an
/// access token the registry accepts as a password) are sent as `Basic`
/// credentials to the realm when asking for a token, and to the registry
/// itself when it challenges with `Basic`.
///
/// Cheap to clone: clones share the connection pool and the current token.
///
/// ```no_run
/// # async fn demo() -> library_client::Result<()> {
/// use std::sync::Arc;
/// use library_client::oci::OciRegistry;
/// use library_client::{Downloader, HttpClient, NoProgress};
///
/// let http = HttpClient::new()?;
/// let registry = url::Url::parse("https://registry.example.org").unwrap();
/// let reg = OciRegistry::new(http, registry, Some(std::env::var("REGISTRY_TOKEN").unwrap_or_default()));
///
/// // Push: the architecture comes from the SIF header; the image is tagged `1.17`.
/// let pushed = reg
///     .push("alice/tools/samtools", "samtools.sif".as_ref(), None, &["1.17".to_string()], "samtools", Arc::new(NoProgress))
///     .await?;
/// println!("manifest {} for layer {}", pushed.manifest_digest, pushed.layer_digest);
///
/// // Pull it back for amd64, checked against the layer digest.
/// let pulled = reg
///     .pull("alice/tools/samtools", "1.17", Some("amd64"), "copy.sif".as_ref(),
///           Downloader::default(), false, Arc::new(NoProgress))
///     .await?;
/// assert_eq!(pulled.digest, pushed.layer_digest);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OciRegistry {
    pub(crate) http: HttpClient,
    pub(crate) base: Url,
    pub(crate) auth: Arc<Mutex<Credentials>>,
    pub(crate) retry: RetryConfig,
    pub(crate) replace: bool,
    pub(crate) max_size: u64,
}

/// What a registry request carries, shared by clones.
#[derive(Default)]
pub(crate) struct Credentials {
    /// The bearer token: given, or fetched from a realm.
    token: Option<String>,
    /// Without a token, send `Authorization: none` (the registry wanted
    /// some header).
    none: bool,
    /// User name and password for `Basic` (realm or registry).
    basic: Option<(String, String)>,
    /// The registry itself asked for `Basic`: send it with every request
    /// to the registry's origin.
    basic_to_registry: bool,
}

impl fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has_token = self.current_token().is_some();
        let user = self.basic().map(|(u, _)| u);
        f.debug_struct("OciRegistry")
            .field("base", &self.base.as_str())
            .field("token", &has_token.then_some("<redacted>"))
            .field("basic_user", &user)
            .finish_non_exhaustive()
    }
}

impl OciRegistry {
    /// A client of the registry at `registry` (its base URL: `/v2/...` is
    /// resolved against it, and a path prefix is kept), sending `token` as
    /// a bearer token (`None` or an empty token: no credentials).
    pub fn new(http: HttpClient, registry: Url, token: Option<String>) -> OciRegistry {
        let mut base = registry;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        base.set_query(None);
        base.set_fragment(None);
        OciRegistry {
            http,
            base,
            auth: Arc::new(Mutex::new(Credentials {
                token: token.filter(|t| !t.is_empty()),
                ..Credentials::default()
            })),
            retry: RetryConfig::default(),
            replace: true,
            max_size: library_transport::DEFAULT_MAX_IMAGE_SIZE,
        }
    }

    /// How failed chunks and download parts are retried (default: 5
    /// retries with exponential backoff).
    #[must_use]
    pub fn retry(mut self, retry: RetryConfig) -> OciRegistry {
        self.retry = retry;
        self
    }

    /// Whether [`pull`](Self::pull) may replace a file already at its
    /// destination (default: yes, atomically). With `false` a pull into an
    /// existing file fails, and so does one whose destination appears
    /// while it runs: the file found there is never replaced (see
    /// [`Pull::replace_existing`](crate::Pull::replace_existing)).
    #[must_use]
    pub fn replace_existing(mut self, yes: bool) -> OciRegistry {
        self.replace = yes;
        self
    }

    /// The largest layer [`pull`](Self::pull) takes (default
    /// [`DEFAULT_MAX_IMAGE_SIZE`](library_transport::DEFAULT_MAX_IMAGE_SIZE),
    /// 1 TiB); a larger size in the manifest is refused before anything
    /// is downloaded.
    #[must_use]
    pub fn max_image_size(mut self, bytes: u64) -> OciRegistry {
        self.max_size = bytes;
        self
    }

    /// Credentials for registries that want a log-in (as `docker login`
    /// takes them): a user name and a password or access token. They are
    /// sent only when asked for, and only
    /// - as `Basic` to the token realm a `Bearer` challenge names, when
    ///   that realm is `https` or on the registry's own host (a realm
    ///   elsewhere over plain `http` is refused rather than sent a
    ///   password);
    /// - as `Basic` to the registry's own origin, once it challenges with
    ///   `Basic`.
    ///
    /// The password is masked in errors and never logged.
    ///
    /// ```no_run
    /// # fn demo() -> library_client::Result<()> {
    /// use library_client::{oci::OciRegistry, HttpClient};
    /// let reg = OciRegistry::new(HttpClient::new()?, url::Url::parse("https://harbor.example.org").unwrap(), None)
    ///     .basic_auth("robot$ci", std::env::var("HARBOR_SECRET").unwrap_or_default());
    /// # let _ = reg; Ok(()) }
    /// ```
    #[must_use]
    pub fn basic_auth(
        self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> OciRegistry {
        if let Ok(mut a) = self.auth.lock() {
            a.basic = Some((username.into(), password.into()));
        }
        self
    }

    fn basic(&self) -> Option<(String, String)> {
        self.auth.lock().ok().and_then(|a| a.basic.clone())
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        let (user, password) = self.basic()?;
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut v = HeaderValue::from_str(&format!("Basic {raw}")).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    fn sends_basic(&self) -> bool {
        self.auth
            .lock()
            .map(|a| a.basic_to_registry && a.basic.is_some())
            .unwrap_or_default()
    }

    fn set_basic_to_registry(&self) {
        if let Ok(mut a) = self.auth.lock() {
            a.basic_to_registry = true;
        }
    }

    /// The registry's base URL (always ending with `/`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Mask the registry token (given, or fetched from a realm) in the
    /// server's words an error carries.
    pub(crate) fn scrub(&self, e: Error) -> Error {
        let e = match self.current_token() {
            Some(t) => e.redact(&t),
            None => e,
        };
        match self.basic() {
            Some((_, password)) => e.redact(&password),
            None => e,
        }
    }

    pub(crate) fn current_token(&self) -> Option<String> {
        self.auth
            .lock()
            .map(|a| a.token.clone())
            .unwrap_or_default()
    }

    fn set_token(&self, t: String) {
        if let Ok(mut a) = self.auth.lock() {
            a.token = Some(t);
        }
    }

    fn sends_none(&self) -> bool {
        self.auth.lock().map(|a| a.none).unwrap_or_default()
    }

    fn set_none(&self) {
        if let Ok(mut a) = self.auth.lock() {
            a.none = true;
        }
    }

    /// `v2/<name>/<rest>` resolved against the base URL.
    pub(crate) fn v2(&self, name: &str, rest: &str) -> Result<Url> {
        self.base
            .join(&format!("v2/{name}/{rest}"))
            .map_err(|e| Error::bad_request(format!("cannot build a registry URL for {name}: {e}")))
    }

    /// The credentials for `url`, on the registry's origin only: the
    /// token, or `Authorization: none` once the registry asked for a
    /// header and no token is known.
    pub(crate) fn auth_headers_for(&self, url: &Url) -> HeaderMap {
        let mut h = HeaderMap::new();
        if same_origin(url, &self.base) {
            if self.sends_basic() {
                if let Some(v) = self.basic_header() {
                    h.insert(AUTHORIZATION, v);
                }
            } else if let Some(t) = self.current_token() {
                if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                    v.set_sensitive(true);
                    h.insert(AUTHORIZATION, v);
                }
            } else if self.sends_none() {
                h.insert(AUTHORIZATION, HeaderValue::from_static("none"));
            }
        }
        h
    }

    /// Sends one request to the registry with its credentials, handling a
    /// 401 as described on [`OciRegistry`]. `scope` names the access the
    /// request needs (`repository:<name>:pull`), used when a realm is asked
    /// for a token and the challenge names no scope. Any other status is
    /// returned to the caller.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<Bytes>,
        scope: &str,
    ) -> Result<Response> {
        let mut realm_tried = false;
        let mut none_tried = false;
        // A PATCH (an upload chunk) is retried by its caller, which first
        // asks the registry where the upload stands; a DELETE (giving an
        // upload up) is a best-effort cleanup, not worth waiting for.
        let retry = if method == Method::PATCH || method == Method::DELETE {
            RetryConfig::none()
        } else {
            self.retry.clone()
        };
        loop {
            let had_token = self.current_token().is_some();
            tracing::debug!(%method, url = %redact_url(url), "registry request");
            let resp = self
                .http
                .send_with_retry(&retry, || {
                    let body = body.clone().map_or_else(Body::empty, Body::bytes);
                    let mut req = new_request(method.clone(), url, headers, body)?;
                    req.headers_mut().extend(self.auth_headers_for(url));
                    Ok(req)
                })
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(parse_www_authenticate);
            if !realm_tried {
                if let Some(Ok(c)) = &challenge {
                    if c.scheme == AuthScheme::Bearer && !c.realm.is_empty() {
                        realm_tried = true;
                        let scope = if c.scope.is_empty() { scope } else { &c.scope };
                        match self.fetch_token(&c.realm, &c.service, scope).await {
                            Ok(t) => {
                                resp.into_body().drain(ERROR_BODY_LIMIT as u64).await;
                                self.set_token(t);
                                continue;
                            }
                            // With credentials given, the realm's refusal
                            // is the error worth reporting.
                            Err(e) if self.basic().is_some() => {
                                resp.into_body().drain(ERROR_BODY_LIMIT as u64).await;
                                return Err(e);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "no token from the registry's realm")
                            }
                        }
                    }
                    if c.scheme == AuthScheme::Basic
                        && self.basic().is_some()
                        && !self.sends_basic()
                        && same_origin(url, &self.base)
                    {
                        realm_tried = true;
                        self.set_basic_to_registry();
                        resp.into_body().drain(ERROR_BODY_LIMIT as u64).await;
                        continue;
                    }
                }
            }
            if !had_token && !none_tried && !self.sends_none() && !self.sends_basic() {
                none_tried = true;
                self.set_none();
                resp.into_body().drain(ERROR_BODY_LIMIT as u64).await;
                continue;
            }
            return Err(status_error(resp, "").await);
        }
    }

    /// Asks a token endpoint for a token (`GET realm?service=&scope=`).
    async fn fetch_token(&self, realm: &str, service: &str, scope: &str) -> Result<String> {
        let mut url = Url::parse(realm).map_err(|e| {
            Error::invalid_response(
                redact_url(&self.base),
                format!("invalid token realm {realm:?}: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid_response(
                redact_url(&self.base),
                format!("token realm {realm:?} is not http(s)"),
            ));
        }
        {
            let mut q = url.query_pairs_mut();
            if !service.is_empty() {
                q.append_pair("service", service);
            }
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
        }
        // A password goes to the realm only over TLS, or to the registry's
        // own host (where the registry's own requests go anyway).
        let basic = match self.basic_header() {
            Some(v) if url.scheme() == "https" || url.host_str() == self.base.host_str() => Some(v),
            Some(_) => {
                return Err(Error::invalid_response(
                    redact_url(&self.base),
                    format!(
                        "the registry's token realm {} is plain http on another host: credentials not sent",
                        redact_url(&url)
                    ),
                ))
            }
            None => None,
        };
        tracing::debug!(realm = %redact_url(&url), scope, with_credentials = basic.is_some(), "requesting a registry token");
        let resp = self
            .http
            .send_with_retry(&self.retry, || {
                let mut req = new_request(Method::GET, &url, &HeaderMap::new(), Body::empty())?;
                req.headers_mut()
                    .insert(ACCEPT, HeaderValue::from_static("application/json"));
                if let Some(v) = &basic {
                    req.headers_mut().insert(AUTHORIZATION, v.clone());
                }
                Ok(req)
            })
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(status_error(resp, "token").await);
        }
        let rurl = resp.url().to_string();
        let body = resp.bytes_limited(TOKEN_BODY_LIMIT).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Oci {
            message: format!("{rurl}: cannot decode the token answer: {e}"),
            status: None,
        })?;
        answer.into_token().ok_or_else(|| Error::Oci {
            message: format!("{rurl}: the token answer holds no token"),
            status: None,
        })
    }

    /// GET `url` (a blob), following redirects: credentials go only to the
    /// registry's origin. Returns the URL that answered and its response,
    /// whatever its status.
    pub(crate) async fn get_following(
        &self,
        url: &Url,
        headers: &HeaderMap,
        scope: &str,
    ) -> Result<(Url, Response)> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let resp = if same_origin(&current, &self.base) {
                self.send(Method::GET, &current, headers, None, scope)
                    .await?
            } else {
                self.http
                    .send_with_retry(&self.retry, || {
                        new_request(Method::GET, &current, headers, Body::empty())
                    })
                    .await?
            };
            if !resp.status().is_redirection() {
                return Ok((current, resp));
            }
            let next = location(&resp, &current)?;
            tracing::debug!(to = %redact_url(&next), "registry redirect");
            resp.into_body().drain(ERROR_BODY_LIMIT as u64).await;
            current = next;
        }
        Err(Error::invalid_response(
            redact_url(url),
            "too many redirects",
        ))
    }
}

/// The `Location` of a response, resolved against the request URL; only
/// http(s) targets are accepted.
pub(crate) fn location(resp: &Response, request: &Url) -> Result<Url> {
    let raw = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::invalid_response(
                resp.url(),
                format!("HTTP {} without a Location", resp.status()),
            )
        })?;
    let url = request
        .join(raw)
        .map_err(|e| Error::invalid_response(resp.url(), format!("invalid Location: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid_response(
            resp.url(),
            "Location is not http(s): redirect refused",
        ));
    }
    Ok(url)
}

/// The code and message of a registry error body
/// (`{"errors":[{"code","message","detail"}]}`), or of any shape the
/// transport knows.
fn registry_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(first) = v
            .get("errors")
            .and_then(|e| e.as_array())
            .and_then(|a| a.first())
        {
            let code = first.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = first.get("message").and_then(|c| c.as_str()).unwrap_or("");
            let text = match (code.is_empty(), msg.is_empty()) {
                (false, false) => format!("{code}: {msg}"),
                (false, true) => code.to_string(),
                (true, false) => msg.to_string(),
                (true, true) => String::new(),
            };
            if !text.is_empty() {
                return Some(text);
            }
        }
    }
    library_transport::error_message(body).1
}

/// The error for a response whose status the operation does not accept:
/// 404 is [`Error::NotFound`] about `what` (or the URL), 401
/// [`Error::Unauthorized`], anything else [`Error::Oci`] with the status.
pub(crate) async fn status_error(resp: Response, what: &str) -> Error {
    let status = resp.status();
    let url = resp.url().to_string();
    let body = resp
        .bytes_limited(ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let message = registry_message(&body);
    match status {
        StatusCode::NOT_FOUND => Error::NotFound {
            what: if what.is_empty() {
                url
            } else {
                what.to_string()
            },
            message,
        },
        StatusCode::UNAUTHORIZED => Error::Unauthorized { url, message },
        _ => Error::Oci {
            message: match message {
                Some(m) => format!("{url}: HTTP {status}: {m}"),
                None => format!("{url}: HTTP {status}"),
            },
            status: Some(status),
        },
    }
}

/// Whether `name` is a repository name registries accept: path components
/// of lower-case letters and digits, separated inside a component by `.`,
/// `_`, `__` or runs of `-`, joined by `/`; at most 255 characters.
pub(crate) fn valid_repository_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    name.split('/').all(|comp| {
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
            if !ok {
                return false;
            }
        }
        true
    })
}

/// Whether `tag` is a valid tag: a word character, then up to 127 word
/// characters, `.` or `-`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/default/alpine",
            "a.b/c_d/e__f",
            "a--b/c-d",
            "test/sif",
            "0/1",
        ] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "", "A/b", "a/", "/a", "a//b", "a/../b", "a/.b", "a_", "a___b", "a._b", "a:b", "a%2fb",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(valid_tag("latest"));
        assert!(valid_tag(&format!("sha256.{}", "a".repeat(64))));
        assert!(valid_tag("_x.y-z"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a:b"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn base_keeps_prefix_and_hides_token() {
        let http = HttpClient::new().unwrap();
        let r = OciRegistry::new(
            http,
            Url::parse("https://reg.example/prefix?x=1").unwrap(),
            Some("secret".into()),
        );
        assert_eq!(r.base_url().as_str(), "https://reg.example/prefix/");
        assert_eq!(
            r.v2("a/b", "manifests/latest").unwrap().as_str(),
            "https://reg.example/prefix/v2/a/b/manifests/latest"
        );
        assert!(!format!("{r:?}").contains("secret"));
        let other = Url::parse("https://s3.example/blob").unwrap();
        assert!(r.auth_headers_for(&other).is_empty());
        let same = Url::parse("https://REG.example:443/v2/").unwrap();
        assert!(r.auth_headers_for(&same).contains_key(AUTHORIZATION));
    }

    #[test]
    fn registry_error_bodies() {
        assert_eq!(
            registry_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#)
                .as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(
            registry_message(br#"{"message":"x"}"#).as_deref(),
            Some("x")
        );
        assert_eq!(registry_message(b"garbage"), None);
    }
}
