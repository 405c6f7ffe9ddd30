//! `Range: bytes=…` request headers, read as the test server reads them.

/// One byte range of a `Range: bytes=…` request header. Several ranges in
/// one header are not supported (the server then answers the whole body,
/// as HTTP allows).
///
/// ```
/// use library_testserver::ByteRange;
/// let r = ByteRange::parse("bytes=8-20").unwrap();
/// assert_eq!(r, ByteRange::From(8, Some(20)));
/// assert_eq!(r.resolve(10), Some((8, 9)));
/// assert_eq!(ByteRange::parse("bytes=-3").unwrap().resolve(10), Some((7, 9)));
/// assert_eq!(ByteRange::parse("bytes=0-1,4-5"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b` or `a-` (`None` end): from byte `a`, inclusive.
    From(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a header value; `None` for anything but one well-formed range.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() {
            return Some(ByteRange::Suffix(b.parse().ok()?));
        }
        let a: u64 = a.parse().ok()?;
        if b.is_empty() {
            return Some(ByteRange::From(a, None));
        }
        let b: u64 = b.parse().ok()?;
        (b >= a).then_some(ByteRange::From(a, Some(b)))
    }

    /// The first and last byte this range selects from `total` bytes, or
    /// `None` when it cannot be satisfied (416).
    pub fn resolve(self, total: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::From(a, _) if a >= total => None,
            ByteRange::From(a, b) => Some((a, b.unwrap_or(total - 1).min(total - 1))),
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(_) if total == 0 => None,
            ByteRange::Suffix(n) => Some((total.saturating_sub(n), total - 1)),
        }
    }

    /// The first byte, when the range names it (not for a suffix).
    pub fn start(self) -> Option<u64> {
        match self {
            ByteRange::From(a, _) => Some(a),
            ByteRange::Suffix(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = ByteRange::parse;
        assert_eq!(h("bytes=0-9"), Some(ByteRange::From(0, Some(9))));
        assert_eq!(h("bytes=5-"), Some(ByteRange::From(5, None)));
        assert_eq!(h(" bytes= 2 - 4 "), Some(ByteRange::From(2, Some(4))));
        assert_eq!(h("bytes=-3"), Some(ByteRange::Suffix(3)));
        assert_eq!(h("bytes=0-1,4-5"), None);
        assert_eq!(h("bytes=9-1"), None);
        assert_eq!(h("items=0-1"), None);
        assert_eq!(ByteRange::From(8, Some(20)).resolve(10), Some((8, 9)));
        assert_eq!(ByteRange::From(10, None).resolve(10), None);
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some((7, 9)));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::Suffix(3).start(), None);
    }
}
