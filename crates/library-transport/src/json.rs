//! JSON requests: the `{"data", "error"}` envelope and the status rules of
//! the library protocol.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::body::Body;
use crate::client::HttpClient;
use crate::error::{Error, Result};
use crate::retry::{Answer, RetryConfig};
use crate::util::{new_request, redact_url};

/// A `None` request body for the JSON helpers, with a concrete type.
pub const NO_BODY: Option<&()> = None;

/// A buffered JSON response (at most the client's JSON body limit).
#[derive(Debug, Clone)]
pub struct JsonResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// The request URL without query or user information.
    pub url: String,
}

/// Whether `status` is a success for a JSON request with `method`:
/// GET 200; POST 200 or 201; PUT 200 or 204; DELETE 200; any other method
/// any 2xx.
pub fn status_accepted(method: &Method, status: StatusCode) -> bool {
    match *method {
        Method::GET | Method::DELETE => status == StatusCode::OK,
        Method::POST => status == StatusCode::OK || status == StatusCode::CREATED,
        Method::PUT => status == StatusCode::OK || status == StatusCode::NO_CONTENT,
        _ => status.is_success(),
    }
}

/// The code and message of an error body, from whichever shape the server
/// sent: the envelope `{"error":{"code","message"}}`, `{"message":…}`, or
/// `{"errors":[{"code","detail"|"message"}]}`. Returns `(None, None)` for
/// anything else.
///
/// ```
/// use library_transport::error_message;
/// assert_eq!(error_message(br#"{"error":{"code":403,"message":"no"}}"#), (Some(403), Some("no".into())));
/// assert_eq!(error_message(br#"{"message":"bad"}"#), (None, Some("bad".into())));
/// assert_eq!(error_message(br#"{"errors":[{"code":401,"detail":"Not Authorized"}]}"#), (Some(401), Some("Not Authorized".into())));
/// ```
pub fn error_message(body: &[u8]) -> (Option<i64>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|m| m.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        let m = text(e.get("message"));
        if m.is_some() {
            return (e.get("code").and_then(|c| c.as_i64()), m);
        }
    }
    if let Some(m) = text(v.get("message")) {
        return (v.get("code").and_then(|c| c.as_i64()), Some(m));
    }
    if let Some(first) = v
        .get("errors")
        .and_then(|e| e.as_array())
        .and_then(|a| a.first())
    {
        let m = text(first.get("detail"))
            .or_else(|| text(first.get("message")))
            .or_else(|| text(first.get("title")));
        if m.is_some() {
            return (first.get("code").and_then(|c| c.as_i64()), m);
        }
    }
    (None, None)
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

impl Answer for JsonResponse {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl JsonResponse {
    /// Applies the status rules for `method` (see [`status_accepted`]):
    /// 404 is [`Error::NotFound`], 401 is [`Error::Unauthorized`], any
    /// other unaccepted status is [`Error::Status`], each carrying the
    /// server's message when its body has one.
    pub fn check(&self, method: &Method) -> Result<()> {
        if status_accepted(method, self.status) {
            return Ok(());
        }
        let (code, message) = error_message(&self.body);
        Err(Error::from_status(&self.url, self.status, code, message))
    }

    /// Decodes `{"data": T}`; a missing or null `data` is a decode error.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T> {
        self.data_opt()?.ok_or_else(|| Error::Decode {
            url: self.url.clone(),
            source: <serde_json::Error as serde::de::Error>::custom("response has no data"),
        })
    }

    /// Decodes `{"data": T}`; an empty body (or whitespace only) or a
    /// missing or null `data` gives `None`.
    pub fn data_opt<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        serde_json::from_slice::<Envelope<T>>(&self.body)
            .map(|e| e.data)
            .map_err(|source| Error::Decode {
                url: self.url.clone(),
                source,
            })
    }

    /// Decodes the whole body as `T` (no envelope).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|source| Error::Decode {
            url: self.url.clone(),
            source,
        })
    }
}

impl HttpClient {
    /// Sends a JSON request and buffers the response (up to the JSON body
    /// limit, [`Error::BodyTooLarge`] beyond) without judging its status.
    /// `body`, when given, is serialized as the request body with
    /// `Content-Type: application/json`. `headers` are added as given (for
    /// example `Authorization`).
    pub async fn request_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&B>,
    ) -> Result<JsonResponse> {
        let json = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::InvalidRequest(format!("cannot encode JSON body: {e}")))?;
        let has_body = json.is_some();
        let body = json.map_or_else(Body::empty, Body::bytes);
        let mut req = new_request(method, url, &HeaderMap::new(), body)?;
        if has_body {
            req.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        req.headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (k, v) in headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = self.send(req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let url = resp.url().to_string();
        let body = resp.bytes_limited(self.inner.json_limit).await?;
        Ok(JsonResponse {
            status,
            headers,
            body,
            url,
        })
    }

    /// [`request_json`](Self::request_json), sent again with backoff while
    /// the outcome may be retried for `method` (a failure on the way, or an
    /// answer such as 503; see
    /// [`may_retry_error`](crate::may_retry_error) and
    /// [`may_retry_status`](crate::may_retry_status)). Reading the body is
    /// part of each attempt. The last answer is returned whatever its
    /// status.
    pub async fn request_json_with_retry<B: Serialize + ?Sized>(
        &self,
        retry: &RetryConfig,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&B>,
    ) -> Result<JsonResponse> {
        let shown = redact_url(url);
        crate::retry::exchange(retry, &method, &shown, || {
            self.request_json(method.clone(), url, headers, body)
        })
        .await
    }

    /// Sends a JSON request, applies the status rules
    /// ([`JsonResponse::check`]) and decodes `{"data": T}`.
    ///
    /// ```no_run
    /// # async fn demo() -> library_transport::Result<()> {
    /// use library_transport::{HttpClient, NO_BODY};
    /// let client = HttpClient::new()?;
    /// let url = url::Url::parse("https://library.example/version").unwrap();
    /// let v: serde_json::Value = client.json(http::Method::GET, &url, &http::HeaderMap::new(), NO_BODY).await?;
    /// # Ok(()) }
    /// ```
    pub async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&B>,
    ) -> Result<T> {
        let r = self
            .request_json(method.clone(), url, headers, body)
            .await?;
        r.check(&method)?;
        r.data()
    }

    /// Like [`json`](Self::json), but an empty body or a null `data` is
    /// accepted as `None`.
    pub async fn json_opt<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&B>,
    ) -> Result<Option<T>> {
        let r = self
            .request_json(method.clone(), url, headers, body)
            .await?;
        r.check(&method)?;
        r.data_opt()
    }
}
