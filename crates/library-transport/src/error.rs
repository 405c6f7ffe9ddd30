//! The error type of this crate.

use std::path::PathBuf;

use http::StatusCode;

/// A boxed error used as the source of transport failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while moving bytes.
///
/// URLs inside errors are always shown without their query string and
/// without user information (see [`redact_url`](crate::redact_url)), so a
/// presigned URL's signature never lands in a log. Header values such as
/// `Authorization` are never part of an error.
///
/// Match on the predicates ([`is_not_found`](Error::is_not_found),
/// [`is_unauthorized`](Error::is_unauthorized), [`status`](Error::status),
/// [`is_timeout`](Error::is_timeout), [`is_connect`](Error::is_connect),
/// [`is_retryable`](Error::is_retryable)) rather than on message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered 404.
    #[error("{url}: not found{}", msg_suffix(.message))]
    NotFound {
        /// The redacted URL.
        url: String,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The server answered 401.
    #[error("{url}: unauthorized{}", msg_suffix(.message))]
    Unauthorized {
        /// The redacted URL.
        url: String,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The server answered with a status the operation does not accept.
    #[error("{url}: HTTP {status}{}", msg_suffix(.message))]
    Status {
        /// The redacted URL.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The error code from the server's error body, when present.
        code: Option<i64>,
        /// The server's message, when it sent one.
        message: Option<String>,
        /// The delay the server asked for with `Retry-After`, which the
        /// retry policy honours.
        retry_after: Option<std::time::Duration>,
    },
    /// The connection to the server (or proxy) could not be established.
    #[error("{url}: connection failed: {source}")]
    Connect {
        /// The redacted URL.
        url: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
    /// A timeout elapsed.
    #[error("{url}: timed out {what}")]
    Timeout {
        /// The redacted URL.
        url: String,
        /// Which timeout: while connecting, waiting for headers or reading the body.
        what: &'static str,
    },
    /// TLS failed, or the TLS configuration could not be built.
    #[error("TLS: {message}")]
    Tls {
        /// What failed (names the certificate file when one is involved).
        message: String,
        /// The underlying failure, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The proxy refused the request or its configuration is invalid.
    #[error("proxy: {message}")]
    Proxy {
        /// What failed.
        message: String,
        /// The underlying failure, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The request failed after it was sent (for example the connection
    /// was reset while reading the body).
    #[error("{url}: request failed: {source}")]
    Request {
        /// The redacted URL.
        url: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
    /// A local file operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The server's response does not fit the request: a bad or
    /// mismatching `Content-Range`, a body of the wrong length, a 200 to a
    /// partial `Range` request, a missing `ETag`, ...
    #[error("{url}: invalid response: {reason}")]
    InvalidResponse {
        /// The redacted URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The object changed under a ranged download: a part answered 412 to
    /// its `If-Match` / `If-Unmodified-Since`, or with another `ETag` or
    /// `Last-Modified` than the parts before it. Parts of two versions are
    /// never put together; [`HttpClient::download_ranged`](crate::HttpClient::download_ranged)
    /// starts over once on this error, and gives it only when the object
    /// changes again (or when the caller asked for one version with
    /// [`RangedDownload::if_match`](crate::RangedDownload::if_match)).
    #[error("{url}: the object changed during the download: {reason}")]
    Changed {
        /// The redacted URL.
        url: String,
        /// What showed the change.
        reason: String,
    },
    /// The bytes received do not have the expected SHA-256.
    #[error("digest mismatch: expected sha256 {expected}, got {actual}")]
    DigestMismatch {
        /// The expected hex digest.
        expected: String,
        /// The hex digest of what was received.
        actual: String,
    },
    /// A response body was larger than the configured cap.
    #[error("{url}: response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The redacted URL.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// A JSON body could not be decoded.
    #[error("{url}: cannot decode response: {source}")]
    Decode {
        /// The redacted URL (its path names the endpoint).
        url: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A request could not be built, or an argument was invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A failure inside the transport (a worker task or thread stopped):
    /// neither the server's nor the input's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// One part of a ranged download or multipart upload failed for good.
    #[error("part {number}: {source}")]
    Part {
        /// The part number (1-based).
        number: u64,
        /// Why the part failed (after its retries).
        #[source]
        source: Box<Error>,
    },
}

fn msg_suffix(m: &Option<String>) -> String {
    match m {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Error {
    /// The innermost error, looking through [`Error::Part`].
    pub(crate) fn inner(&self) -> &Error {
        match self {
            Error::Part { source, .. } => source.inner(),
            e => e,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self.inner(), Error::NotFound { .. })
    }

    /// True for a 401 answer.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.inner(), Error::Unauthorized { .. })
    }

    /// The HTTP status of an error answer, if the error is one.
    pub fn status(&self) -> Option<StatusCode> {
        match self.inner() {
            Error::NotFound { .. } => Some(StatusCode::NOT_FOUND),
            Error::Unauthorized { .. } => Some(StatusCode::UNAUTHORIZED),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when a timeout elapsed (connect, headers or body read).
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner(), Error::Timeout { .. })
    }

    /// True when the object changed under a ranged download
    /// ([`Error::Changed`]).
    pub fn is_changed(&self) -> bool {
        matches!(self.inner(), Error::Changed { .. })
    }

    /// True when no connection could be made.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner(), Error::Connect { .. })
    }

    /// The part number of a failed part, if this error is about one.
    pub fn part_number(&self) -> Option<u64> {
        match self {
            Error::Part { number, .. } => Some(*number),
            _ => None,
        }
    }

    /// Whether sending the same GET again may succeed, as the retry
    /// policy ([`Attempts`](crate::Attempts)) judges it: connection
    /// failures, timeouts, interrupted bodies, invalid part responses, 408,
    /// 429, 500, 502, 503 and 504. Other statuses, local I/O and decode
    /// errors are final. For another method, ask
    /// [`Attempts::after_error`](crate::Attempts::after_error).
    pub fn is_retryable(&self) -> bool {
        crate::retry::may_retry_error(&http::Method::GET, self)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(url: &str, reason: impl Into<String>) -> Error {
        Error::InvalidResponse {
            url: url.to_string(),
            reason: reason.into(),
        }
    }

    /// An error for an unexpected status, with the server's message when known.
    pub fn from_status(
        url: &str,
        status: StatusCode,
        code: Option<i64>,
        message: Option<String>,
    ) -> Error {
        let url = url.to_string();
        match status {
            StatusCode::NOT_FOUND => Error::NotFound { url, message },
            StatusCode::UNAUTHORIZED => Error::Unauthorized { url, message },
            _ => Error::Status {
                url,
                status,
                code,
                message,
                retry_after: None,
            },
        }
    }

    /// The same error, carrying the delay a `Retry-After` header of the
    /// answer asked for (only a status error carries one).
    pub fn with_retry_after(mut self, delay: Option<std::time::Duration>) -> Error {
        if let Error::Status { retry_after, .. } = &mut self {
            *retry_after = delay;
        }
        self
    }
}
