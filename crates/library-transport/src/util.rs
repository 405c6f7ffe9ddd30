//! Small protocol helpers (protocol section 9) and URL utilities.

use std::num::IntErrorKind;

use url::Url;

/// Why a header value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderParseError {
    /// The value does not have the expected shape (for `Content-Range`:
    /// the unit is not `bytes`, or the range does not split into exactly
    /// two parts on `/`).
    #[error("malformed header value {0:?}")]
    Malformed(String),
    /// A number is not a decimal integer.
    #[error("invalid number {0:?}")]
    IntSyntax(String),
    /// A number does not fit in a signed 64-bit integer.
    #[error("number out of range {0:?}")]
    IntRange(String),
}

/// Parses a decimal signed 64-bit integer the way Go's `strconv.ParseInt`
/// does in base 10: an optional `+` or `-` sign followed by digits.
fn parse_i64(s: &str) -> Result<i64, HeaderParseError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderParseError::IntSyntax(s.to_string()));
    }
    s.parse::<i64>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            HeaderParseError::IntRange(s.to_string())
        }
        _ => HeaderParseError::IntSyntax(s.to_string()),
    })
}

/// Returns the total size from a `Content-Range` value such as
/// `bytes 0-1000/1000`.
///
/// The value is split on single spaces; the first field must be `bytes`
/// (case-insensitive) and the second must split on `/` into exactly two
/// parts, the second of which is the total. A value without a space (such
/// as `bytes`) is an error, never a panic.
///
/// ```
/// assert_eq!(library_transport::headers::parse_content_range("bytes 0-1000/1000"), Ok(1000));
/// assert!(library_transport::headers::parse_content_range("bytes").is_err());
/// ```
pub fn parse_content_range(value: &str) -> Result<i64, HeaderParseError> {
    let mut fields = value.split(' ');
    let unit = fields.next().unwrap_or_default();
    let range = fields
        .next()
        .ok_or_else(|| HeaderParseError::Malformed(value.to_string()))?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return Err(HeaderParseError::Malformed(value.to_string()));
    }
    let parts: Vec<&str> = range.split('/').collect();
    if parts.len() != 2 {
        return Err(HeaderParseError::Malformed(value.to_string()));
    }
    parse_i64(parts[1])
}

/// Parses a `Content-Range` value strictly into `(first, last, total)`,
/// as needed to check a part: `bytes FIRST-LAST/TOTAL` with unsigned
/// decimal numbers. Returns `None` for anything else (including `*`).
pub fn parse_content_range_exact(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    Some((num(first)?, num(last)?, num(total)?))
}

/// Parses a `Content-Length` value: an empty value means unknown and gives
/// `-1`; anything that is not a decimal integer is an error.
///
/// ```
/// assert_eq!(library_transport::headers::parse_content_length(""), Ok(-1));
/// assert_eq!(library_transport::headers::parse_content_length("1234"), Ok(1234));
/// assert!(library_transport::headers::parse_content_length("xxxx").is_err());
/// ```
pub fn parse_content_length(value: &str) -> Result<i64, HeaderParseError> {
    if value.is_empty() {
        return Ok(-1);
    }
    parse_i64(value)
}

/// Whether two URLs have the same origin: scheme, host and port (the
/// scheme's default port when none is given), compared case-insensitively.
/// A client uses this to decide whether its credentials may follow a
/// redirect.
///
/// ```
/// use url::Url;
/// use library_transport::same_origin;
/// let a = Url::parse("https://Library.example/v1/x").unwrap();
/// assert!(same_origin(&a, &Url::parse("https://library.example:443/s3").unwrap()));
/// assert!(!same_origin(&a, &Url::parse("http://library.example/").unwrap()));
/// ```
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme().eq_ignore_ascii_case(b.scheme())
        && match (a.host_str(), b.host_str()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => false,
        }
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL as it may appear in errors and logs: scheme, host, port and path,
/// without user information, query or fragment (so presigned URL
/// signatures and embedded passwords are never shown).
///
/// ```
/// let u = url::Url::parse("https://user:pw@s3.example/bucket/key?X-Amz-Signature=secret").unwrap();
/// assert_eq!(library_transport::redact_url(&u), "https://s3.example/bucket/key");
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut s = format!("{}://", url.scheme());
    if let Some(h) = url.host_str() {
        s.push_str(h);
    }
    if let Some(p) = url.port() {
        s.push_str(&format!(":{p}"));
    }
    s.push_str(url.path());
    s
}

/// [`redact_url`] for an `http::Uri`.
pub(crate) fn redact_uri(uri: &http::Uri) -> String {
    let mut s = String::new();
    if let Some(sch) = uri.scheme_str() {
        s.push_str(sch);
        s.push_str("://");
    }
    if let Some(h) = uri.host() {
        s.push_str(h);
    }
    if let Some(p) = uri.port_u16() {
        s.push_str(&format!(":{p}"));
    }
    s.push_str(uri.path());
    s
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Parses a 64-digit hex SHA-256 (either case); `None` if it is not one.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A request for [`HttpClient::send`](crate::HttpClient::send): `method`
/// on `url` with `headers` (replacing any of the same name) and `body`.
/// A URL the HTTP layer cannot take is [`Error::InvalidRequest`](crate::Error::InvalidRequest), naming
/// the URL (without its query).
///
/// ```
/// use library_transport::{new_request, Body};
/// let url = url::Url::parse("https://library.example/version").unwrap();
/// let req = new_request(http::Method::GET, &url, &http::HeaderMap::new(), Body::empty()).unwrap();
/// assert_eq!(req.uri(), "https://library.example/version");
/// ```
pub fn new_request(
    method: http::Method,
    url: &url::Url,
    headers: &http::HeaderMap,
    body: crate::Body,
) -> crate::Result<http::Request<crate::Body>> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .body(body)
        .map_err(|e| crate::Error::InvalidRequest(format!("{}: {e}", redact_url(url))))?;
    req.headers_mut().extend(headers.clone());
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_shapes() {
        assert_eq!(parse_content_range("bytes 0-1/2"), Ok(2));
        assert_eq!(parse_content_range("BYTES 0-1/+2"), Ok(2));
        assert!(matches!(
            parse_content_range("bytes"),
            Err(HeaderParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_content_range("items 0-1/2"),
            Err(HeaderParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_content_range("bytes 0-1/2/3"),
            Err(HeaderParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_content_range("bytes 0-1/x"),
            Err(HeaderParseError::IntSyntax(_))
        ));
        assert!(matches!(
            parse_content_range("bytes 0-1/99999999999999999999"),
            Err(HeaderParseError::IntRange(_))
        ));
        assert_eq!(parse_content_range_exact("bytes 5-9/10"), Some((5, 9, 10)));
        assert_eq!(parse_content_range_exact("bytes */10"), None);
        assert_eq!(parse_content_range_exact("bytes 5-9/*"), None);
    }

    #[test]
    fn hex_round_trip() {
        let h = "490139eb82e1281db85dba1679f0b511e2f705067a3c71a766ef50ce39fd021b";
        assert_eq!(hex(&parse_sha256_hex(h).unwrap()), h);
        assert!(parse_sha256_hex("abc").is_none());
    }
}
