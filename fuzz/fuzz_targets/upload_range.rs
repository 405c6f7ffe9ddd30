//! The parser of a registry's upload `Range` (`0-<last>`) never panics,
//! accepts exactly `0-` and digits whose value has a successor, and gives
//! that successor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use library_client::oci::parse_upload_range;
use library_transport::headers::HeaderParseError;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let digits = s
        .strip_prefix("0-")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    match parse_upload_range(s) {
        Ok(held) => {
            let last = digits.expect("accepted only `0-` and digits");
            assert!(held >= 1);
            assert_eq!(last.parse::<u64>(), Ok(held - 1), "{s:?}");
            // The canonical form reads back the same.
            assert_eq!(parse_upload_range(&format!("0-{}", held - 1)), Ok(held));
        }
        Err(HeaderParseError::IntRange(v)) => {
            assert_eq!(v, s);
            let last = digits.expect("out of range only for digits");
            assert!(last.parse::<u64>().map_or(true, |n| n == u64::MAX), "{s:?}");
        }
        Err(HeaderParseError::Malformed(v)) => {
            assert_eq!(v, s);
            assert!(digits.is_none(), "{s:?}");
        }
        Err(e) => panic!("{s:?}: unexpected {e:?}"),
    }
});
