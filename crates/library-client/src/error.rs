//! The one error type of the client.

use std::fmt;
use std::path::PathBuf;

use http::StatusCode;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cause behind a network, timeout or invalid-response error: a
/// `library_transport::Error`, reachable through
/// [`source`](std::error::Error::source) for those who want the detail.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when talking to a library.
///
/// Act on [`kind`](Error::kind) (or on the predicates
/// [`is_not_found`](Error::is_not_found),
/// [`is_unauthorized`](Error::is_unauthorized),
/// [`is_forbidden`](Error::is_forbidden),
/// [`is_bad_request`](Error::is_bad_request),
/// [`is_integrity`](Error::is_integrity),
/// [`is_network`](Error::is_network), ...), never on messages. One cause
/// gives one kind whatever the path that met it: a 503 is
/// [`ErrorKind::Server`] whether it answered a JSON request, a streamed
/// pull or one part of a ranged download.
///
/// ```no_run
/// # async fn demo(client: library_client::Client) {
/// use library_client::ErrorKind;
/// match client.get_image("amd64", "alice/tools/samtools:1.17").await {
///     Ok(image) => println!("{} bytes", image.size),
///     Err(e) if e.kind() == ErrorKind::NotFound => println!("no such image"),
///     Err(e) if e.is_unauthorized() => println!("log in first"),
///     Err(e) => println!("failed: {e}"),
/// }
/// # }
/// ```
///
/// Messages never contain a token (not even where a server quoted the
/// request's `Authorization` back, in any error, its causes included),
/// and URLs in them never carry a query string (presigned URLs keep their
/// signatures out of logs).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The library (or registry) answered 404 for what was asked.
    #[error("{what} not found{}", suffix(.message))]
    NotFound {
        /// What was looked for (an image reference, an entity name, an endpoint).
        what: String,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The server answered 401: no token, or one it does not accept.
    #[error("unauthorized ({url}){}: check the access token", suffix(.message))]
    Unauthorized {
        /// The endpoint that refused (without query).
        url: String,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The server answered 403: the token is known but may not do this.
    #[error("forbidden ({url}){}", suffix(.message))]
    Forbidden {
        /// The endpoint that refused (without query).
        url: String,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The input was rejected before any request was sent, or the server
    /// answered 400. The message says what is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The server answered with a status the operation does not accept
    /// (an error status is [`ErrorKind::Server`], a success or redirect
    /// status where it makes no sense [`ErrorKind::InvalidResponse`]).
    #[error("{url}: HTTP {status}{}", suffix(.message))]
    Http {
        /// The endpoint (without query).
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The error code of the server's error body, when present.
        code: Option<i64>,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The client configuration is invalid (base URL, certificates, proxy).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A local file could not be read or written (a full disk is
    /// [`ErrorKind::StorageFull`]).
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The bytes received (or read) do not have the expected digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The expected digest.
        expected: String,
        /// The digest of what was received.
        actual: String,
    },
    /// The image found is not of the architecture asked for.
    #[error("unexpected architecture: asked for {expected}, the image is {actual}")]
    UnexpectedArchitecture {
        /// The architecture asked for.
        expected: String,
        /// The architecture of the image.
        actual: String,
    },
    /// The OCI registry answered something the client cannot use, or an
    /// error status (then [`kind`](Error::kind) follows the status).
    #[error("OCI registry: {message}")]
    Oci {
        /// What was wrong.
        message: String,
        /// The HTTP status, when the registry answered with an error status.
        status: Option<StatusCode>,
    },
    /// The file is not a SIF image the client can read.
    #[error("{}: {source}", .path.display())]
    Sif {
        /// The image file.
        path: PathBuf,
        /// What is wrong with its header.
        #[source]
        source: crate::sif::SifError,
    },
    /// A reference could not be parsed.
    #[error("invalid reference {input:?}: {source}")]
    Ref {
        /// The text given.
        input: String,
        /// Why it is invalid.
        #[source]
        source: library_ref::RefError,
    },
    /// The network failed: no connection, TLS, the proxy, a transfer cut
    /// short (after the retries).
    #[error("{source}")]
    Network {
        /// What failed.
        #[source]
        source: Cause,
    },
    /// A timeout elapsed (connecting, waiting for an answer, reading a
    /// body), after the retries.
    #[error("{source}")]
    Timeout {
        /// Which timeout, where.
        #[source]
        source: Cause,
    },
    /// The server's answer cannot be used: it does not fit the request
    /// (a bad `Content-Range`, a body of the wrong length), is larger than
    /// allowed, cannot be decoded, or redirects where the client does not
    /// go (a non-http(s) `Location`, too many redirects).
    #[error("{source}")]
    InvalidResponse {
        /// What was wrong.
        #[source]
        source: Cause,
    },
    /// The client failed inside (a worker task stopped): not the server's
    /// nor the input's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of failure an [`Error`] is: one per cause, whatever the path
/// (library JSON request, streamed or ranged pull, OCI registry) that met
/// it.
///
/// ```
/// use library_client::{Error, ErrorKind};
/// let e = Error::BadRequest("no tag".into());
/// assert_eq!(e.kind(), ErrorKind::BadRequest);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 404: no such image, tag, architecture, entity, collection or container.
    NotFound,
    /// 401: no token, or one the server does not accept.
    Unauthorized,
    /// 403: the token may not do this.
    Forbidden,
    /// Invalid input, caught before sending or answered 400.
    BadRequest,
    /// The client configuration is invalid.
    Config,
    /// Bytes that do not match their digest.
    Integrity,
    /// Connection, TLS, proxy, interrupted transfer.
    Network,
    /// A timeout elapsed.
    Timeout,
    /// An error status of the server (5xx, 429, 409, ... after the retries).
    Server,
    /// An answer the client cannot use (including refused redirects).
    InvalidResponse,
    /// The local disk (or quota) is full.
    StorageFull,
    /// Any other local file failure.
    Io,
    /// A file that is not a SIF image the client can read.
    InvalidImage,
    /// The image is not of the architecture asked for.
    UnexpectedArchitecture,
    /// A failure inside the client.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Integrity => "integrity failure",
            ErrorKind::Network => "network failure",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Server => "server error",
            ErrorKind::InvalidResponse => "invalid response",
            ErrorKind::StorageFull => "storage full",
            ErrorKind::Io => "local I/O failure",
            ErrorKind::InvalidImage => "invalid image",
            ErrorKind::UnexpectedArchitecture => "unexpected architecture",
            ErrorKind::Internal => "internal error",
        })
    }
}

/// The kind of an answer with `status`: an error status by its class, any
/// other status (the operation did not expect it) an invalid response.
fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status {
        StatusCode::BAD_REQUEST => ErrorKind::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
        StatusCode::FORBIDDEN => ErrorKind::Forbidden,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        s if s.is_client_error() || s.is_server_error() => ErrorKind::Server,
        _ => ErrorKind::InvalidResponse,
    }
}

fn suffix(m: &Option<String>) -> String {
    match m {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::BadRequest(_) | Error::Ref { .. } => ErrorKind::BadRequest,
            Error::Http { status, .. } => kind_of_status(*status),
            Error::Config(_) => ErrorKind::Config,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    ErrorKind::StorageFull
                }
                _ => ErrorKind::Io,
            },
            Error::DigestMismatch { .. } => ErrorKind::Integrity,
            Error::UnexpectedArchitecture { .. } => ErrorKind::UnexpectedArchitecture,
            Error::Oci {
                status: Some(s), ..
            } => kind_of_status(*s),
            Error::Oci { status: None, .. } => ErrorKind::InvalidResponse,
            Error::Sif { .. } => ErrorKind::InvalidImage,
            Error::Network { .. } => ErrorKind::Network,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::InvalidResponse { .. } => ErrorKind::InvalidResponse,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// True when the server answered 404.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// True when the server answered 401.
    pub fn is_unauthorized(&self) -> bool {
        self.kind() == ErrorKind::Unauthorized
    }

    /// True when the server answered 403.
    pub fn is_forbidden(&self) -> bool {
        self.kind() == ErrorKind::Forbidden
    }

    /// True for invalid input, whether caught before sending or answered 400.
    pub fn is_bad_request(&self) -> bool {
        self.kind() == ErrorKind::BadRequest
    }

    /// True when the data received failed an integrity check.
    pub fn is_integrity(&self) -> bool {
        self.kind() == ErrorKind::Integrity
    }

    /// True when the failure is on the network side (connection, timeout,
    /// TLS, interrupted transfer) rather than an answer of the server.
    pub fn is_network(&self) -> bool {
        matches!(self.kind(), ErrorKind::Network | ErrorKind::Timeout)
    }

    /// True when a timeout elapsed.
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// True when the local disk (or quota) is full.
    pub fn is_storage_full(&self) -> bool {
        self.kind() == ErrorKind::StorageFull
    }

    /// The HTTP status of an error answer, when the error is one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::NotFound { .. } => Some(StatusCode::NOT_FOUND),
            Error::Unauthorized { .. } => Some(StatusCode::UNAUTHORIZED),
            Error::Forbidden { .. } => Some(StatusCode::FORBIDDEN),
            Error::Http { status, .. } => Some(*status),
            Error::Oci { status, .. } => *status,
            _ => None,
        }
    }

    /// The transport failure behind a network, timeout or invalid-response error.
    pub(crate) fn transport(&self) -> Option<&library_transport::Error> {
        match self {
            Error::Network { source }
            | Error::Timeout { source }
            | Error::InvalidResponse { source } => source.downcast_ref(),
            _ => None,
        }
    }

    /// Mask `secret` wherever a server's words (or a URL it chose) were
    /// copied into this error, its causes included: a server may quote the
    /// request's `Authorization` back in any answer.
    pub(crate) fn redact(self, secret: &str) -> Error {
        if secret.is_empty() {
            return self;
        }
        let m = Masker(secret);
        match self {
            Error::NotFound { what, message } => Error::NotFound {
                what: m.s(what),
                message: m.opt(message),
            },
            Error::Unauthorized { url, message } => Error::Unauthorized {
                url: m.s(url),
                message: m.opt(message),
            },
            Error::Forbidden { url, message } => Error::Forbidden {
                url: m.s(url),
                message: m.opt(message),
            },
            Error::BadRequest(s) => Error::BadRequest(m.s(s)),
            Error::Http {
                url,
                status,
                code,
                message,
            } => Error::Http {
                url: m.s(url),
                status,
                code,
                message: m.opt(message),
            },
            Error::Config(s) => Error::Config(m.s(s)),
            Error::Io { path, source } => Error::Io {
                path,
                source: m.io(source),
            },
            Error::UnexpectedArchitecture { expected, actual } => Error::UnexpectedArchitecture {
                expected: m.s(expected),
                actual: m.s(actual),
            },
            Error::Oci { message, status } => Error::Oci {
                message: m.s(message),
                status,
            },
            Error::Network { source } => Error::Network {
                source: m.cause(source),
            },
            Error::Timeout { source } => Error::Timeout {
                source: m.cause(source),
            },
            Error::InvalidResponse { source } => Error::InvalidResponse {
                source: m.cause(source),
            },
            Error::Internal(s) => Error::Internal(m.s(s)),
            // Digests are hex; SIF headers and references are local input.
            e @ (Error::DigestMismatch { .. } | Error::Sif { .. } | Error::Ref { .. }) => e,
        }
    }

    pub(crate) fn bad_request(msg: impl Into<String>) -> Error {
        Error::BadRequest(msg.into())
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An answer of `url` the client cannot use (a refused redirect, a
    /// missing or invalid URL where one was due, ...).
    pub(crate) fn invalid_response(url: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidResponse {
            source: Box::new(library_transport::Error::InvalidResponse {
                url: url.into(),
                reason: reason.into(),
            }),
        }
    }

    /// Turn a transport error about `what` into the client's kinds.
    pub(crate) fn about(what: impl Into<String>, e: library_transport::Error) -> Error {
        match e {
            library_transport::Error::NotFound { message, .. } => Error::NotFound {
                what: what.into(),
                message,
            },
            other => Error::from(other),
        }
    }
}

/// Replaces a secret in text, and in errors rebuilt around masked text.
#[derive(Clone, Copy)]
struct Masker<'a>(&'a str);

impl Masker<'_> {
    fn s(self, text: String) -> String {
        if text.contains(self.0) {
            text.replace(self.0, "<redacted>")
        } else {
            text
        }
    }

    fn opt(self, text: Option<String>) -> Option<String> {
        text.map(|t| self.s(t))
    }

    /// Whether the error, or any of its causes, shows the secret.
    fn shows(self, e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if e.to_string().contains(self.0) || format!("{e:?}").contains(self.0) {
                return true;
            }
            cur = e.source();
        }
        false
    }

    fn io(self, e: std::io::Error) -> std::io::Error {
        if self.shows(&e) {
            std::io::Error::new(e.kind(), Masked::of(&e, self))
        } else {
            e
        }
    }

    fn cause(self, c: Cause) -> Cause {
        match c.downcast::<library_transport::Error>() {
            Ok(t) => Box::new(self.transport(*t)),
            Err(c) => self.boxed(c),
        }
    }

    fn boxed(self, c: Cause) -> Cause {
        if self.shows(c.as_ref()) {
            Box::new(Masked::of(c.as_ref(), self))
        } else {
            c
        }
    }

    fn transport(self, t: library_transport::Error) -> library_transport::Error {
        use library_transport::Error as T;
        match t {
            T::NotFound { url, message } => T::NotFound {
                url: self.s(url),
                message: self.opt(message),
            },
            T::Unauthorized { url, message } => T::Unauthorized {
                url: self.s(url),
                message: self.opt(message),
            },
            T::Status {
                url,
                status,
                code,
                message,
                retry_after,
            } => T::Status {
                url: self.s(url),
                status,
                code,
                message: self.opt(message),
                retry_after,
            },
            T::Connect { url, source } => T::Connect {
                url: self.s(url),
                source: self.boxed(source),
            },
            T::Timeout { url, what } => T::Timeout {
                url: self.s(url),
                what,
            },
            T::Tls { message, source } => T::Tls {
                message: self.s(message),
                source: source.map(|s| self.boxed(s)),
            },
            T::Proxy { message, source } => T::Proxy {
                message: self.s(message),
                source: source.map(|s| self.boxed(s)),
            },
            T::Request { url, source } => T::Request {
                url: self.s(url),
                source: self.boxed(source),
            },
            T::Io { path, source } => T::Io {
                path,
                source: self.io(source),
            },
            T::InvalidResponse { url, reason } => T::InvalidResponse {
                url: self.s(url),
                reason: self.s(reason),
            },
            T::BodyTooLarge { url, limit } => T::BodyTooLarge {
                url: self.s(url),
                limit,
            },
            T::Decode { url, source } => {
                if self.shows(&source) {
                    // serde_json quotes the values it cannot use.
                    T::Decode {
                        url: self.s(url),
                        source: serde::de::Error::custom(self.s(source.to_string())),
                    }
                } else {
                    T::Decode {
                        url: self.s(url),
                        source,
                    }
                }
            }
            T::InvalidRequest(s) => T::InvalidRequest(self.s(s)),
            T::Internal(s) => T::Internal(self.s(s)),
            T::Part { number, source } => T::Part {
                number,
                source: Box::new(self.transport(*source)),
            },
            other => {
                if self.shows(&other) {
                    T::InvalidResponse {
                        url: String::new(),
                        reason: self.s(other.to_string()),
                    }
                } else {
                    other
                }
            }
        }
    }
}

/// An error whose text (and that of its causes) had a secret masked.
#[derive(Debug)]
struct Masked {
    message: String,
    source: Option<Box<Masked>>,
}

impl Masked {
    fn of(e: &(dyn std::error::Error + 'static), m: Masker<'_>) -> Masked {
        Masked {
            message: m.s(e.to_string()),
            source: e.source().map(|s| Box::new(Masked::of(s, m))),
        }
    }
}

impl fmt::Display for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Masked {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<library_transport::Error> for Error {
    fn from(e: library_transport::Error) -> Error {
        use library_transport::Error as T;
        match e {
            T::NotFound { url, message } => Error::NotFound { what: url, message },
            T::Unauthorized { url, message } => Error::Unauthorized { url, message },
            T::Status {
                url,
                status,
                message,
                ..
            } if status == StatusCode::BAD_REQUEST => Error::BadRequest(match message {
                Some(m) => format!("{url}: {m}"),
                None => format!("{url}: HTTP 400"),
            }),
            T::Status {
                url,
                status,
                message,
                ..
            } if status == StatusCode::FORBIDDEN => Error::Forbidden { url, message },
            T::Status {
                url,
                status,
                code,
                message,
                ..
            } => Error::Http {
                url,
                status,
                code,
                message,
            },
            T::Io { path, source } => Error::Io { path, source },
            T::DigestMismatch { expected, actual } => Error::DigestMismatch {
                expected: format!("sha256:{expected}"),
                actual: format!("sha256:{actual}"),
            },
            T::InvalidRequest(m) => Error::BadRequest(m),
            T::Internal(m) => Error::Internal(m),
            e @ T::Timeout { .. } => Error::Timeout {
                source: Box::new(e),
            },
            e @ (T::InvalidResponse { .. } | T::BodyTooLarge { .. } | T::Decode { .. }) => {
                Error::InvalidResponse {
                    source: Box::new(e),
                }
            }
            T::Part { number, source } => {
                // The kind is that of the part's failure; the part number
                // stays in the message (or in the cause).
                match Error::from(*source) {
                    Error::Network { source } => Error::Network {
                        source: Box::new(T::Part {
                            number,
                            source: into_transport(source),
                        }),
                    },
                    Error::Timeout { source } => Error::Timeout {
                        source: Box::new(T::Part {
                            number,
                            source: into_transport(source),
                        }),
                    },
                    Error::InvalidResponse { source } => Error::InvalidResponse {
                        source: Box::new(T::Part {
                            number,
                            source: into_transport(source),
                        }),
                    },
                    Error::Http {
                        url,
                        status,
                        code,
                        message,
                    } => Error::Http {
                        url,
                        status,
                        code,
                        message: Some(match message {
                            Some(m) => format!("part {number}: {m}"),
                            None => format!("part {number}"),
                        }),
                    },
                    other => other,
                }
            }
            // Connection, TLS, proxy, a request cut short, and whatever
            // the transport may add.
            e => Error::Network {
                source: Box::new(e),
            },
        }
    }
}

/// The transport error inside a cause built by [`From`] above.
fn into_transport(c: Cause) -> Box<library_transport::Error> {
    match c.downcast::<library_transport::Error>() {
        Ok(t) => t,
        Err(c) => Box::new(library_transport::Error::InvalidRequest(c.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use library_transport::Error as T;

    const SECRET: &str = "tok-123";

    fn shown(e: &Error) -> String {
        let mut s = format!("{e}\n{e:?}");
        let mut cur = std::error::Error::source(e);
        while let Some(c) = cur {
            s.push_str(&format!("\n{c}\n{c:?}"));
            cur = c.source();
        }
        s
    }

    #[test]
    fn every_transport_failure_is_masked_causes_included() {
        let said = || format!("you sent Bearer {SECRET}");
        let boxed = || -> library_transport::BoxError { std::io::Error::other(said()).into() };
        let cases = [
            T::Status {
                url: "u".into(),
                status: StatusCode::BAD_GATEWAY,
                code: None,
                message: Some(said()),
                retry_after: None,
            },
            T::Part {
                number: 2,
                source: Box::new(T::Status {
                    url: "u".into(),
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: None,
                    message: Some(said()),
                    retry_after: None,
                }),
            },
            T::Part {
                number: 3,
                source: Box::new(T::InvalidResponse {
                    url: "u".into(),
                    reason: said(),
                }),
            },
            T::Connect {
                url: "u".into(),
                source: boxed(),
            },
            T::Request {
                url: format!("http://h/{SECRET}"),
                source: boxed(),
            },
            T::Tls {
                message: said(),
                source: Some(boxed()),
            },
            T::Decode {
                url: "u".into(),
                source: serde_json::from_str::<i64>(&format!("{:?}", said())).unwrap_err(),
            },
            T::Io {
                path: "f".into(),
                source: std::io::Error::other(said()),
            },
            T::NotFound {
                url: "u".into(),
                message: Some(said()),
            },
            T::Internal(said()),
        ];
        for t in cases {
            let before = Error::from(t);
            assert!(shown(&before).contains(SECRET), "{before:?}");
            let kind = before.kind();
            let after = before.redact(SECRET);
            assert!(!shown(&after).contains(SECRET), "{}", shown(&after));
            assert!(shown(&after).contains("<redacted>"), "{}", shown(&after));
            assert_eq!(after.kind(), kind, "{after:?}");
        }
    }

    #[test]
    fn kinds_of_transport_failures() {
        let status = |s: u16| T::Status {
            url: "u".into(),
            status: StatusCode::from_u16(s).unwrap(),
            code: None,
            message: None,
            retry_after: None,
        };
        let part = |t: T| T::Part {
            number: 1,
            source: Box::new(t),
        };
        for (t, kind) in [
            (status(503), ErrorKind::Server),
            (part(status(503)), ErrorKind::Server),
            (status(403), ErrorKind::Forbidden),
            (part(status(403)), ErrorKind::Forbidden),
            (status(400), ErrorKind::BadRequest),
            (
                T::Timeout {
                    url: "u".into(),
                    what: "reading the body",
                },
                ErrorKind::Timeout,
            ),
            (
                part(T::BodyTooLarge {
                    url: "u".into(),
                    limit: 1,
                }),
                ErrorKind::InvalidResponse,
            ),
            (T::Internal("part task failed".into()), ErrorKind::Internal),
            (
                T::Io {
                    path: "f".into(),
                    source: std::io::ErrorKind::StorageFull.into(),
                },
                ErrorKind::StorageFull,
            ),
        ] {
            let e = Error::from(t);
            assert_eq!(e.kind(), kind, "{e:?}");
        }
        let e = Error::from(part(status(503)));
        assert!(e.to_string().contains("part 1"), "{e}");
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    }
}
