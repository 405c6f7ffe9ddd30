//! The request log.

use std::sync::Mutex;

use bytes::Bytes;
use http::{HeaderMap, Method};

/// How many body bytes are kept per recorded request.
pub(crate) const RECORDED_BODY_LIMIT: usize = 64 * 1024;

/// Which of the two listeners a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// The library listener ([`TestServer::url`](crate::TestServer::url)).
    Library,
    /// The second listener
    /// ([`TestServer::blob_url`](crate::TestServer::blob_url)): redirected
    /// downloads and presigned-style uploads.
    Blob,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The listener it came in on.
    pub listener: Listener,
    /// The HTTP method.
    pub method: http::Method,
    /// The path, percent-encoded as sent, with its leading `/`
    /// (`/v1/images/alice/tools/hello:latest`).
    pub path: String,
    /// The query string without `?`, when there was one.
    pub query: Option<String>,
    /// Every request header.
    pub headers: http::HeaderMap,
    /// The body: whole for JSON requests, the first 64 KiB for uploads.
    pub body: bytes::Bytes,
    /// The full length of the body as received (it can be longer than
    /// [`body`](Self::body)).
    pub body_len: u64,
}

impl RecordedRequest {
    /// The value of a header, when present and valid text. The name is
    /// case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Authorization` header, when present.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The value of a query parameter (percent-decoded), when present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// The log shared by both listeners.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    next_seq: u64,
    entries: Vec<(u64, RecordedRequest)>,
}

impl RequestLog {
    /// Records the head of a request; returns the number that
    /// [`set_body`](Self::set_body) takes.
    pub(crate) fn start(
        &self,
        listener: Listener,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.entries.push((
            seq,
            RecordedRequest {
                listener,
                method: method.clone(),
                path: path.to_string(),
                query: query.map(str::to_string),
                headers: headers.clone(),
                body: Bytes::new(),
                body_len: 0,
            },
        ));
        seq
    }

    /// Fills in the body of a recorded request.
    pub(crate) fn set_body(&self, seq: u64, body: Bytes, len: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, r)) = inner.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            r.body = if body.len() > RECORDED_BODY_LIMIT {
                body.slice(..RECORDED_BODY_LIMIT)
            } else {
                body
            };
            r.body_len = len;
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.iter().map(|(_, r)| r.clone()).collect()
    }

    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.clear();
    }
}
