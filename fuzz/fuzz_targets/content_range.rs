//! The `Content-Range` and `Content-Length` parsers never panic, and agree
//! with each other on what they accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use library_transport::headers::{parse_content_length, parse_content_range, parse_content_range_exact};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    // Content-Length: empty is unknown (-1); a number reads back as itself.
    match parse_content_length(s) {
        Ok(-1) if s.is_empty() => {}
        Ok(n) => {
            assert!(!s.is_empty());
            assert_eq!(parse_content_length(&n.to_string()), Ok(n), "{s:?}");
            // Only a sign and digits were accepted.
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        }
        Err(_) => assert!(!s.is_empty()),
    }

    // Content-Range, lenient: the total is the number after the one `/`
    // of the second space-separated field, read as a Content-Length is.
    if let Ok(total) = parse_content_range(s) {
        let mut fields = s.split(' ');
        let unit = fields.next().unwrap();
        assert!(unit.eq_ignore_ascii_case("bytes"), "{s:?}");
        let range = fields.next().unwrap();
        let (_, after) = range.split_once('/').unwrap();
        assert_eq!(parse_content_length(after), Ok(total), "{s:?}");
    }

    // Content-Range, strict: the canonical text of what it accepts parses
    // back to the same triple, and the lenient parser agrees on the total.
    if let Some((first, last, total)) = parse_content_range_exact(s) {
        let canonical = format!("bytes {first}-{last}/{total}");
        assert_eq!(
            parse_content_range_exact(&canonical),
            Some((first, last, total)),
            "{s:?}"
        );
        if let Ok(t) = i64::try_from(total) {
            assert_eq!(parse_content_range(&canonical), Ok(t), "{s:?}");
            if s == s.trim() {
                assert_eq!(parse_content_range(s), Ok(t), "{s:?}");
            }
        }
    }
});
