//! `WWW-Authenticate` parsing never panics; the parameters it returns come
//! from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use library_client::oci::parse_www_authenticate;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = parse_www_authenticate(s) {
        assert!(s.contains(' '));
        for v in [&c.realm, &c.service, &c.scope] {
            // Unquoting and unescaping only ever remove characters.
            assert!(v.len() <= s.len());
        }
    }
});
