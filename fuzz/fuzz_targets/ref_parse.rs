//! Reference parsing never panics, and what it accepts formats back into
//! something it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use library_ref::{parse_library_path, Ref};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for parsed in [Ref::parse(s), Ref::parse_ambiguous(s)] {
        if let Ok(r) = parsed {
            let _ = (r.hostname(), r.port());
            let text = r.to_string();
            // A parsed ref without a leading `/` in its path formats into a
            // ref that parses to itself.
            if !r.path.starts_with('/') && !r.path.contains(['?', '#']) && r.tags.iter().all(|t| !t.contains(['?', '#'])) {
                if let Ok(again) = Ref::parse(&text) {
                    assert_eq!(again, r, "{text}");
                }
            }
        }
    }
    let p = parse_library_path(s);
    assert!(p.container.len() <= s.len());
    let _ = (
        library_ref::is_library_pull_ref(s),
        library_ref::is_library_push_ref(s),
        library_ref::is_ref_part(s),
        library_ref::is_image_hash(s),
    );
});
