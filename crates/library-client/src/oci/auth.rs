//! The `WWW-Authenticate` challenge of a registry's 401, and the token
//! request of the Docker token protocol.

use std::fmt;

/// The authentication scheme a registry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// `Basic`: a user name and password.
    Basic,
    /// `Bearer`: a token, usually obtained from the challenge's realm.
    Bearer,
}

impl fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthScheme::Basic => "basic",
            AuthScheme::Bearer => "bearer",
        })
    }
}

/// A parsed `WWW-Authenticate` header. Parameters the header does not
/// give are empty strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AuthChallenge {
    /// The scheme.
    pub scheme: AuthScheme,
    /// `realm`: for a bearer challenge, the URL tokens are requested from.
    pub realm: String,
    /// `service`: the name of the service the token is for.
    pub service: String,
    /// `scope`: the access the request needed, such as
    /// `repository:alice/tools:pull,push`.
    pub scope: String,
}

/// Why a `WWW-Authenticate` value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthHeaderError {
    /// No space separates the scheme from its parameters (an empty value
    /// is one of these).
    #[error("invalid auth header: {0}")]
    Invalid(String),
    /// The scheme is neither `Basic` nor `Bearer`.
    #[error("unknown auth type '{0}'")]
    UnknownScheme(String),
}

/// Compares a scheme name with a lower-case ASCII word the way Go's
/// `strings.EqualFold` does: ASCII letters ignore case, and the two
/// non-ASCII letters whose simple case folding reaches ASCII letters
/// (KELVIN SIGN for `k`, LATIN SMALL LETTER LONG S for `s`) match too.
fn equal_fold(s: &str, word: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        c => c.to_ascii_lowercase(),
    };
    s.chars().map(fold).eq(word.chars())
}

/// Splits a comma-separated list (RFC 2068 style): commas inside double
/// quotes do not split, and inside quotes a backslash escapes the next
/// character (the backslash itself is dropped). Elements are trimmed; an
/// empty element between two commas is kept, a trailing empty one is not.
fn parse_list(value: &str) -> Vec<String> {
    let mut list = Vec::new();
    let mut cur = String::new();
    let (mut escape, mut quote) = (false, false);
    for c in value.chars() {
        if escape {
            cur.push(c);
            escape = false;
        } else if quote {
            if c == '\\' {
                escape = true;
            } else {
                if c == '"' {
                    quote = false;
                }
                cur.push(c);
            }
        } else if c == ',' {
            list.push(cur.trim().to_string());
            cur.clear();
        } else {
            if c == '"' {
                quote = true;
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        list.push(cur.trim().to_string());
    }
    list
}

/// Parses a `WWW-Authenticate` header value, as a registry sends with a
/// 401: a scheme (`Basic` or `Bearer`, any case), a single space, then a
/// comma-separated list of `key=value` parameters.
///
/// Values are unquoted only when they both start and end with a double
/// quote; keys are case-sensitive; only `realm`, `service` and `scope` are
/// kept (a key repeated keeps its last value; a key without `=` has the
/// empty value). Never panics: an empty value, or one that is a lone `"`,
/// is empty.
///
/// ```
/// use library_client::oci::{parse_www_authenticate, AuthScheme};
/// let c = parse_www_authenticate(
///     r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull""#,
/// ).unwrap();
/// assert_eq!(c.scheme, AuthScheme::Bearer);
/// assert_eq!(c.realm, "https://auth.example/token");
/// assert_eq!(c.scope, "repository:a/b:pull");
/// assert!(parse_www_authenticate("Digest realm=\"x\"").is_err());
/// ```
pub fn parse_www_authenticate(value: &str) -> Result<AuthChallenge, AuthHeaderError> {
    let Some((scheme, params)) = value.split_once(' ') else {
        return Err(AuthHeaderError::Invalid(value.to_string()));
    };
    let scheme = if equal_fold(scheme, "basic") {
        AuthScheme::Basic
    } else if equal_fold(scheme, "bearer") {
        AuthScheme::Bearer
    } else {
        return Err(AuthHeaderError::UnknownScheme(scheme.to_string()));
    };
    let mut c = AuthChallenge {
        scheme,
        realm: String::new(),
        service: String::new(),
        scope: String::new(),
    };
    for pair in parse_list(params.trim()) {
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, unquote(v)),
            None => (pair.as_str(), ""),
        };
        match key {
            "realm" => c.realm = value.to_string(),
            "service" => c.service = value.to_string(),
            "scope" => c.scope = value.to_string(),
            _ => {}
        }
    }
    Ok(c)
}

/// Removes one pair of surrounding double quotes; a lone `"` is empty.
fn unquote(v: &str) -> &str {
    if v == "\"" {
        return "";
    }
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner,
        None => v,
    }
}

/// The answer of a token endpoint (Docker token protocol).
#[derive(serde::Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    pub(crate) token: Option<String>,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
}

impl TokenAnswer {
    /// The token, from `token` or else `access_token`.
    pub(crate) fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_case_folding() {
        assert!(equal_fold("BEARER", "bearer"));
        assert!(equal_fold("ba\u{017F}ic", "basic"));
        assert!(!equal_fold("bearer ", "bearer"));
        assert!(!equal_fold("be\u{0130}rer", "bearer"));
    }

    #[test]
    fn lists_respect_quotes_and_escapes() {
        assert_eq!(
            parse_list(r#"a="x,y", b="q\"z",, c"#),
            vec![r#"a="x,y""#, r#"b="q"z""#, "", "c"]
        );
        assert_eq!(parse_list(" "), vec![""]);
        assert!(parse_list("").is_empty());
    }

    #[test]
    fn empty_values_do_not_panic() {
        for v in [
            "Bearer realm=",
            "Bearer realm=\"",
            "Bearer =",
            "Bearer \"",
            "Basic  ",
        ] {
            let c = parse_www_authenticate(v).unwrap();
            assert_eq!(c.realm, "", "{v}");
        }
        let c = parse_www_authenticate("Bearer realm=x,realm").unwrap();
        assert_eq!(c.realm, "");
        let c = parse_www_authenticate("Basic realm=\"\"").unwrap();
        assert_eq!((c.scheme, c.realm.as_str()), (AuthScheme::Basic, ""));
    }

    #[test]
    fn token_answers() {
        let t: TokenAnswer = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("b"));
        let t: TokenAnswer = serde_json::from_str(r#"{"token":"a","access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenAnswer = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }
}
