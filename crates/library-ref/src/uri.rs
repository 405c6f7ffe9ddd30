//! The part of generic URI parsing that `library:` references need.
//!
//! The grammar and the error cases follow the URL parser that the reference
//! client relies on, so that a reference is accepted or rejected exactly as
//! the other tools of the ecosystem accept or reject it: a scheme of
//! letters, digits, `+`, `-` and `.`; an opaque part when the text after the
//! scheme does not start with `/`; an authority (user info, host, port) after
//! `//`; percent-escapes decoded in the path, host and fragment.

use std::borrow::Cow;

/// A URI split into the components a reference looks at.
#[derive(Debug)]
pub(crate) struct Uri<'a> {
    /// The scheme, as written (compare case-insensitively).
    pub scheme: &'a str,
    /// The raw text after `scheme:` when it does not start with `/`.
    pub opaque: Option<&'a str>,
    /// True when an authority (`//...`) carried user info, even empty.
    pub has_user: bool,
    /// The decoded host, with its port.
    pub host: Cow<'a, str>,
    /// The decoded path (empty when the URI is opaque).
    pub path: Cow<'a, str>,
    /// The raw query, without `?`.
    pub query: &'a str,
    /// The decoded fragment, without `#`.
    pub fragment: Cow<'a, str>,
}

/// Why a text is not a URI at all.
pub(crate) type UriError = String;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Split `raw` into its components, or say why it is not a URI.
pub(crate) fn parse(raw: &str) -> Result<Uri<'_>, UriError> {
    let (before_fragment, fragment_raw) = match raw.find('#') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    let mut uri = parse_without_fragment(before_fragment)?;
    if let Some(f) = fragment_raw {
        uri.fragment = unescape(f, Mode::Fragment)?;
    }
    Ok(uri)
}

fn parse_without_fragment(raw: &str) -> Result<Uri<'_>, UriError> {
    if let Some(b) = raw.bytes().find(|&b| b < 0x20 || b == 0x7f) {
        return Err(format!("invalid control character {b:#04x} in reference"));
    }
    let (scheme, rest) = split_scheme(raw)?;
    let (rest, query) = if rest.ends_with('?') && rest.bytes().filter(|&b| b == b'?').count() == 1 {
        (&rest[..rest.len() - 1], "")
    } else {
        match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        }
    };
    let mut uri = Uri {
        scheme,
        opaque: None,
        has_user: false,
        host: Cow::Borrowed(""),
        path: Cow::Borrowed(""),
        query,
        fragment: Cow::Borrowed(""),
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            uri.opaque = Some(rest);
            return Ok(uri);
        }
        let first_segment = rest.split('/').next().unwrap_or("");
        if first_segment.contains(':') {
            return Err(format!(
                "first path segment {first_segment:?} cannot contain a colon"
            ));
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, p) = match authority_and_path.find('/') {
            Some(i) => (&authority_and_path[..i], &authority_and_path[i..]),
            None => (authority_and_path, ""),
        };
        path = p;
        let (has_user, host) = parse_authority(authority)?;
        uri.has_user = has_user;
        uri.host = host;
    }
    uri.path = unescape(path, Mode::Path)?;
    Ok(uri)
}

/// `scheme:rest`, or no scheme at all when the text does not start with one.
fn split_scheme(raw: &str) -> Result<(&str, &str), UriError> {
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing scheme before \":\"".to_string());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(authority: &str) -> Result<(bool, Cow<'_, str>), UriError> {
    let (user, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let host = parse_host(host)?;
    let Some(user) = user else {
        return Ok((false, host));
    };
    if let Some(c) = user.chars().find(|&c| !valid_userinfo_char(c)) {
        return Err(format!("invalid character {c:?} in user info"));
    }
    match user.split_once(':') {
        None => {
            unescape(user, Mode::UserPassword)?;
        }
        Some((name, password)) => {
            unescape(name, Mode::UserPassword)?;
            unescape(password, Mode::UserPassword)?;
        }
    }
    Ok((true, host))
}

fn valid_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | ':'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | '%'
                | '@'
        )
}

fn parse_host(host: &str) -> Result<Cow<'_, str>, UriError> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err(format!("missing ']' in host {host:?}"));
        };
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {colon_port:?} after host"));
        }
        if let Some(zone) = host[..close].find("%25") {
            let mut out = String::with_capacity(host.len());
            out.push_str(&unescape(&host[..zone], Mode::Host)?);
            out.push_str(&unescape(&host[zone..close], Mode::Zone)?);
            out.push_str(&unescape(&host[close..], Mode::Host)?);
            return Ok(Cow::Owned(out));
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {colon_port:?} after host"));
        }
    }
    unescape(host, Mode::Host)
}

/// `""` or `:` followed by digits only.
pub(crate) fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn unhex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Decode `%XX` escapes, rejecting malformed ones and, in a host, bytes
/// that a host may not contain.
fn unescape(s: &str, mode: Mode) -> Result<Cow<'_, str>, UriError> {
    let bytes = s.as_bytes();
    let mut escapes = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                escapes += 1;
                if i + 2 >= bytes.len() || !is_hex(bytes[i + 1]) || !is_hex(bytes[i + 2]) {
                    let end = (i + 3).min(bytes.len());
                    return Err(format!(
                        "invalid escape {:?}",
                        String::from_utf8_lossy(&bytes[i..end])
                    ));
                }
                let escape = &s[i..i + 3];
                if mode == Mode::Host && unhex(bytes[i + 1]) < 8 && escape != "%25" {
                    return Err(format!("invalid escape {escape:?} in host"));
                }
                if mode == Mode::Zone {
                    let v = (unhex(bytes[i + 1]) << 4) | unhex(bytes[i + 2]);
                    if escape != "%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(format!("invalid escape {escape:?} in host"));
                    }
                }
                i += 3;
            }
            b => {
                if (mode == Mode::Host || mode == Mode::Zone) && b < 0x80 && should_escape(b, mode)
                {
                    return Err(format!("invalid character {:?} in host name", b as char));
                }
                i += 1;
            }
        }
    }
    if escapes == 0 {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(bytes.len() - 2 * escapes);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push((unhex(bytes[i + 1]) << 4) | unhex(bytes[i + 2]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Escapes may spell bytes that are not UTF-8; keep them readable.
    Ok(Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

/// Percent-encode a host for display, as a URI writer does.
pub(crate) fn escape_host(s: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    escape(s, Mode::Host, out)
}

/// Percent-encode a path for display, as a URI writer does.
pub(crate) fn escape_path(s: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    escape(s, Mode::Path, out)
}

fn escape(s: &str, mode: Mode, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if should_escape(b, mode) {
            // Bytes left as they are are ASCII, so a non-empty run starts
            // and ends on character boundaries.
            if start < i {
                out.write_str(&s[start..i])?;
            }
            out.write_char('%')?;
            out.write_char(HEX[(b >> 4) as usize] as char)?;
            out.write_char(HEX[(b & 15) as usize] as char)?;
            start = i + 1;
        }
    }
    out.write_str(&s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_components() {
        let u = parse("library://user@host:443/a/b?q=1#frag").unwrap();
        assert_eq!(u.scheme, "library");
        assert!(u.has_user);
        assert_eq!(u.host, "host:443");
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.query, "q=1");
        assert_eq!(u.fragment, "frag");
    }

    #[test]
    fn opaque_part_is_raw() {
        let u = parse("library:a%20b").unwrap();
        assert_eq!(u.opaque, Some("a%20b"));
        let u = parse("library:/a%20b").unwrap();
        assert_eq!(u.path, "/a b");
    }

    #[test]
    fn host_rules() {
        assert!(parse("library://h%41st/x").is_err(), "ASCII escape in host");
        assert_eq!(parse("library://h%C3%A9/x").unwrap().host, "hé");
        assert!(parse("library://ho st/x").is_err());
        assert!(parse("library://host:ab/x").is_err());
        assert_eq!(parse("library://::1/x").unwrap().host, "::1");
        assert_eq!(
            parse("library://[fe80::1%25eth1]:80/x").unwrap().host,
            "[fe80::1%eth1]:80"
        );
        assert!(parse("library://[fe80::1/x").is_err());
    }

    #[test]
    fn scheme_rules() {
        assert!(parse(":").is_err());
        assert!(parse("1library:x").is_err(), "colon in first segment");
        assert_eq!(parse("LIBRARY:x").unwrap().scheme, "LIBRARY");
        assert!(parse("library:x\n").is_err());
        // A control character in the fragment is only decoded, not refused.
        assert_eq!(parse("library:x#\n").unwrap().fragment, "\n");
    }

    #[test]
    fn trailing_question_mark_is_no_query() {
        assert_eq!(parse("library:x?").unwrap().query, "");
        assert_eq!(parse("library:x??").unwrap().query, "?");
    }

    #[test]
    fn escapes_for_display() {
        let mut s = String::new();
        escape_host("[fe80::1%eth1]:443", &mut s).unwrap();
        assert_eq!(s, "[fe80::1%25eth1]:443");
        let mut s = String::new();
        escape_path("a b/c?d:e", &mut s).unwrap();
        assert_eq!(s, "a%20b/c%3Fd:e");
    }
}
