//! The tool's errors: one line, `error: <what failed>: <what to do>`, and
//! an exit code per kind of failure.

use std::fmt;

use http::StatusCode;
use library_client::Error;

/// Success.
pub const OK: i32 = 0;
/// Any failure without a code of its own.
pub const OTHER: i32 = 1;
/// Bad arguments, invalid reference, existing destination, input refused
/// by the server (400), invalid configuration. Also clap's code.
pub const USAGE: i32 = 2;
/// The library has no such image, tag or container.
pub const NOT_FOUND: i32 = 3;
/// The library refused the token (or there is none).
pub const UNAUTHORIZED: i32 = 4;
/// Connection, timeout, TLS, or an error answer of the server.
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
    /// do when the library has no such thing.
    pub fn client(doing: &str, e: &Error, not_found: &str) -> CliError {
        let mut what = format!("{doing}: {}", chain(e));
        if e.is_unauthorized() {
            // The hint below says it in the tool's terms.
            if let Some(cut) = what.find(": check the access token") {
                what.replace_range(cut..cut + ": check the access token".len(), "");
            }
        }
        let (code, hint) = if e.is_integrity() {
            (
                INTEGRITY,
                "nothing was kept; pull again, and tell the library's administrators if it persists"
                    .to_string(),
            )
        } else if e.is_not_found() {
            (NOT_FOUND, not_found.to_string())
        } else if e.is_unauthorized() || e.status() == Some(StatusCode::FORBIDDEN) {
            (
                UNAUTHORIZED,
                "give a valid access token with LIBRARY_TOKEN or --token-file".to_string(),
            )
        } else if e.is_bad_request() {
            (USAGE, "fix the arguments (see --help)".to_string())
        } else if matches!(e, Error::Config(_)) {
            (
                USAGE,
                "check --url (or LIBRARY_URL), --ca-file and --proxy".to_string(),
            )
        } else if e.is_network() {
            (
                NETWORK,
                "check --url (or LIBRARY_URL), the network and proxy settings, then try again"
                    .to_string(),
            )
        } else if e.status().is_some()
            || matches!(
                e,
                Error::Http { .. } | Error::Oci { .. } | Error::Transport(_)
            )
        {
            (
                NETWORK,
                "the library answered with an error; try again later, or check --url".to_string(),
            )
        } else if matches!(e, Error::Sif { .. }) {
            (OTHER, "give a SIF image file (or --arch)".to_string())
        } else if matches!(e, Error::UnexpectedArchitecture { .. }) {
            (
                OTHER,
                "ask for the image's architecture with --arch".to_string(),
            )
        } else {
            (OTHER, "check the files involved".to_string())
        };
        CliError { code, what, hint }
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
}
