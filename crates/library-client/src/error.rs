//! The one error type of the client.

use std::path::PathBuf;

use http::StatusCode;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to a library.
///
/// The kinds a caller usually acts on can be matched directly (or through
/// the predicates [`is_not_found`](Error::is_not_found),
/// [`is_unauthorized`](Error::is_unauthorized),
/// [`is_bad_request`](Error::is_bad_request)), without comparing messages:
///
/// ```no_run
/// # async fn demo(client: library_client::Client) {
/// use library_client::Error;
/// match client.get_image("amd64", "alice/tools/samtools:1.17").await {
///     Ok(image) => println!("{} bytes", image.size),
///     Err(Error::NotFound { .. }) => println!("no such image"),
///     Err(Error::Unauthorized { .. }) => println!("log in first"),
///     Err(e) => println!("failed: {e}"),
/// }
/// # }
/// ```
///
/// Messages never contain a token, and URLs in them never carry a query
/// string (presigned URLs keep their signatures out of logs).
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
    /// The input was rejected before any request was sent, or the server
    /// answered 400. The message says what is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The server answered with a status the operation does not accept.
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
    /// A local file could not be read or written.
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
    /// The OCI registry answered something the client cannot use.
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
    /// Moving bytes failed: connection, TLS, timeout, an invalid response,
    /// a JSON body that cannot be decoded.
    #[error(transparent)]
    Transport(library_transport::Error),
}

/// Whether a transport error is a network failure, looking through the
/// part of a ranged download or multipart upload that failed.
fn transport_is_network(t: &library_transport::Error) -> bool {
    use library_transport::Error as T;
    match t {
        T::Part { source, .. } => transport_is_network(source),
        T::Request { .. } | T::Tls { .. } | T::Proxy { .. } => true,
        t => t.is_connect() || t.is_timeout(),
    }
}

fn suffix(m: &Option<String>) -> String {
    match m {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Error {
    /// True when the server answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when the server answered 401.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// True for invalid input, whether caught before sending or answered 400.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Error::BadRequest(_) | Error::Ref { .. })
            || self.status() == Some(StatusCode::BAD_REQUEST)
    }

    /// True when the data received failed an integrity check.
    pub fn is_integrity(&self) -> bool {
        match self {
            Error::DigestMismatch { .. } => true,
            Error::Transport(t) => matches!(t, library_transport::Error::DigestMismatch { .. }),
            _ => false,
        }
    }

    /// The HTTP status of an error answer, when the error is one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::NotFound { .. } => Some(StatusCode::NOT_FOUND),
            Error::Unauthorized { .. } => Some(StatusCode::UNAUTHORIZED),
            Error::Http { status, .. } => Some(*status),
            Error::Oci { status, .. } => *status,
            Error::Transport(t) => t.status(),
            _ => None,
        }
    }

    /// True when the failure is on the network side (connection, timeout,
    /// TLS, interrupted transfer) rather than an answer of the server.
    pub fn is_network(&self) -> bool {
        match self {
            Error::Transport(t) => transport_is_network(t),
            _ => false,
        }
    }

    /// Mask `secret` wherever a server's words were copied into this
    /// error (a server may quote the request's `Authorization` back).
    pub(crate) fn redact(self, secret: &str) -> Error {
        if secret.is_empty() {
            return self;
        }
        let mask = |m: String| {
            if m.contains(secret) {
                m.replace(secret, "<redacted>")
            } else {
                m
            }
        };
        let mask_opt = |m: Option<String>| m.map(mask);
        match self {
            Error::NotFound { what, message } => Error::NotFound {
                what: mask(what),
                message: mask_opt(message),
            },
            Error::Unauthorized { url, message } => Error::Unauthorized {
                url,
                message: mask_opt(message),
            },
            Error::BadRequest(m) => Error::BadRequest(mask(m)),
            Error::Http {
                url,
                status,
                code,
                message,
            } => Error::Http {
                url,
                status,
                code,
                message: mask_opt(message),
            },
            Error::Oci { message, status } => Error::Oci {
                message: mask(message),
                status,
            },
            other => other,
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
            T::Part { number, source } if !source.is_retryable() => {
                // Keep the server's verdict matchable; the part number stays in the chain.
                match Error::from(*source) {
                    Error::Transport(inner) => Error::Transport(T::Part {
                        number,
                        source: Box::new(inner),
                    }),
                    other => other,
                }
            }
            other => Error::Transport(other),
        }
    }
}
