//! The tool's errors: one line, `error: <what failed>: <what to do>`, and
//! an exit code per kind of failure.

use std::fmt;

use library_client::{Error, ErrorKind};

/// Success.
pub const OK: i32 = 0;
/// Any failure without a code of its own.
pub const OTHER: i32 = 1;
/// Bad arguments, invalid reference, existing destination, input refused
/// by the server (400), invalid configuration. Also clap's code.
pub const USAGE: i32 = 2;
/// The library has no such image, tag or container.
pub const NOT_FOUND: i32 = 3;
/// The library refused the token (or there is none), or the token may
/// not do what was asked (403).
pub const UNAUTHORIZED: i32 = 4;
/// Connection, timeout, TLS, an error answer of the server, or an answer
/// that cannot be used.
pub const NETWORK: i32 = 5;
/// Bytes that do not match their digest.
pub const INTEGRITY: i32 = 6;
/// Stopped by Ctrl-C.
pub const INTERRUPTED: i32 = 130;

/// A failure of a command, ready to be shown.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: i32,
    /// What failed.
    pub what: String,
    /// What to do about it (may be empty).
    pub hint: String,
}

impl CliError {
    /// A failure with a code.
    pub fn new(code: i32, what: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError {
            code,
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// A usage error (exit code 2).
    pub fn usage(what: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::new(USAGE, what, hint)
    }

    /// A failure without a code of its own (exit code 1).
    pub fn other(what: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::new(OTHER, what, hint)
    }

    /// A client error met while `doing` something; `not_found` says what to
    /// do when the library has no such thing. The exit code follows the
    /// error's [`ErrorKind`], never its text.
    pub fn client(doing: &str, e: &Error, not_found: &str) -> CliError {
        let what = match e {
            // The hint says what to do, in the tool's terms.
            Error::Unauthorized { url, message } => match message {
                Some(m) if !m.is_empty() => format!("{doing}: unauthorized ({url}): {m}"),
                _ => format!("{doing}: unauthorized ({url})"),
            },
            e => format!("{doing}: {}", chain(e)),
        };
        let (code, hint) = match e.kind() {
            ErrorKind::Integrity => (
                INTEGRITY,
                "nothing was kept; pull again, and tell the library's administrators if it persists",
            ),
            ErrorKind::NotFound => (NOT_FOUND, not_found),
            ErrorKind::Unauthorized => (
                UNAUTHORIZED,
                "give a valid access token with LIBRARY_TOKEN or --token-file",
            ),
            ErrorKind::Forbidden => (
                UNAUTHORIZED,
                "the token may not do this: give one that may, with LIBRARY_TOKEN or --token-file",
            ),
            ErrorKind::BadRequest => (USAGE, "fix the arguments (see --help)"),
            ErrorKind::Config => (USAGE, "check --url (or LIBRARY_URL), --ca-file and --proxy"),
            ErrorKind::Network | ErrorKind::Timeout => (
                NETWORK,
                "check --url (or LIBRARY_URL), the network and proxy settings, then try again",
            ),
            ErrorKind::Server => (
                NETWORK,
                "the library answered with an error; try again later, or check --url",
            ),
            ErrorKind::InvalidResponse => (
                NETWORK,
                "the server's answer cannot be used; try again later, or check --url",
            ),
            ErrorKind::StorageFull => (OTHER, "free some disk space, then try again"),
            ErrorKind::InvalidImage => (OTHER, "give a SIF image file (or --arch)"),
            ErrorKind::UnexpectedArchitecture => {
                (OTHER, "ask for the image's architecture with --arch")
            }
            ErrorKind::Internal => (OTHER, "try again, and report it if it persists"),
            _ => (OTHER, "check the files involved"),
        };
        CliError {
            code,
            what,
            hint: hint.to_string(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = one_line(&self.what);
        if self.hint.is_empty() {
            write!(f, "error: {what}")
        } else {
            write!(f, "error: {what}: {}", one_line(&self.hint))
        }
    }
}

/// The error's message followed by those of its causes that add something.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !m.is_empty() && !text.contains(&m) {
            text.push_str(": ");
            text.push_str(&m);
        }
        source = s.source();
    }
    text
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn one_line_display() {
        let e = CliError::usage("a\nb", "c");
        assert_eq!(e.to_string(), "error: a b: c");
        assert_eq!(CliError::other("x", "").to_string(), "error: x");
    }

    #[test]
    fn codes_of_client_errors() {
        let nf = Error::NotFound {
            what: "image".into(),
            message: None,
        };
        assert_eq!(CliError::client("pulling", &nf, "look").code, NOT_FOUND);
        let un = Error::Unauthorized {
            url: "u".into(),
            message: None,
        };
        assert_eq!(CliError::client("x", &un, "").code, UNAUTHORIZED);
        let dm = Error::DigestMismatch {
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(CliError::client("x", &dm, "").code, INTEGRITY);
        assert_eq!(
            CliError::client("x", &Error::BadRequest("no".into()), "").code,
            USAGE
        );
        let http = Error::Http {
            url: "u".into(),
            status: StatusCode::BAD_GATEWAY,
            code: None,
            message: None,
        };
        assert_eq!(CliError::client("x", &http, "").code, NETWORK);
        let forbidden = Error::Http {
            url: "u".into(),
            status: StatusCode::FORBIDDEN,
            code: None,
            message: None,
        };
        assert_eq!(CliError::client("x", &forbidden, "").code, UNAUTHORIZED);
        let io = Error::Io {
            path: "f".into(),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(CliError::client("x", &io, "").code, OTHER);
    }

    #[test]
    fn codes_follow_the_kind_not_the_text() {
        let forbidden = Error::Forbidden {
            url: "u".into(),
            message: Some("not found".into()),
        };
        assert_eq!(CliError::client("x", &forbidden, "").code, UNAUTHORIZED);
        let full = Error::Io {
            path: "f".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        let e = CliError::client("x", &full, "");
        assert_eq!(e.code, OTHER);
        assert!(e.hint.contains("disk space"), "{e}");
        // A message that reads like another kind changes nothing.
        let internal = Error::Internal("connection refused, HTTP 401".into());
        assert_eq!(CliError::client("x", &internal, "").code, OTHER);
        let moved = Error::Http {
            url: "u".into(),
            status: StatusCode::SEE_OTHER,
            code: None,
            message: Some("bad request".into()),
        };
        assert_eq!(CliError::client("x", &moved, "").code, NETWORK);
        let unauthorized = Error::Unauthorized {
            url: "https://h/v1/images".into(),
            message: Some("expired".into()),
        };
        let e = CliError::client("pulling", &unauthorized, "");
        assert_eq!(
            e.to_string(),
            "error: pulling: unauthorized (https://h/v1/images): expired: \
             give a valid access token with LIBRARY_TOKEN or --token-file"
        );
    }
}
