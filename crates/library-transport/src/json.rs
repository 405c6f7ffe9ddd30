//! JSON requests: a JSON body out, a buffered answer back (its status not
//! judged), and the message of a JSON error body.

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

impl Answer for JsonResponse {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl JsonResponse {
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
    /// answer such as 503; the rules of
    /// [`Attempts`](crate::Attempts)). Reading the body is
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
}
