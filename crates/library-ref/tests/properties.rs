//! Property tests: formatting round-trips, the validators agree with the
//! regular expressions that define them, and no input panics.

use library_ref::{
    is_image_hash, is_library_pull_ref, is_library_push_ref, is_ref_part, parse_library_path, Ref,
};
use proptest::prelude::*;
use regex::Regex;
use std::sync::LazyLock;

/// The grammars, as regular expressions (the validators use none).
const PART: &str = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$";
const PULL: &str = r"^(library://)?([a-z0-9]+(?:[._-][a-z0-9]+)*/){0,2}([a-z0-9]+(?:[._-][a-z0-9]+)*)(:[a-z0-9]+(?:[._-][a-z0-9]+)*)?$";
const PUSH: &str = r"^(library://)?([a-z0-9]+(?:[._-][a-z0-9]+)*/){2}([a-z0-9]+(?:[._-][a-z0-9]+)*)(:[a-z0-9]+(?:[,._-][a-z0-9]+)*)?$";
const HASH: &str = r"^((sha256\.[a-f0-9]{64})|(sif\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))$";

static PART_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PART).unwrap());
static PULL_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PULL).unwrap());
static PUSH_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PUSH).unwrap());
static HASH_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(HASH).unwrap());

fn part() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,4}([._-][a-z0-9]{1,4}){0,2}"
}

fn host() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,2}",
        "(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})){3}",
        "\\[[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7}\\]",
        "\\[fe80::[0-9a-f]{1,4}(%[a-z]{1,4}[0-9])?\\]",
        "\\[::1\\]",
    ];
    (name, proptest::option::of(0u16..=65535)).prop_map(|(h, port)| match port {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

fn valid_ref() -> impl Strategy<Value = Ref> {
    (
        prop_oneof![Just(String::new()), host()],
        proptest::collection::vec(part(), 1..=4),
        proptest::collection::vec(part(), 0..=3),
    )
        .prop_map(|(host, path, tags)| Ref {
            host,
            path: path.join("/"),
            tags,
        })
}

/// Strings over an alphabet that hits every branch of the grammars.
fn noisy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => "[a-c0-2]",
            1 => "[._,:/-]",
            1 => Just("library://".to_string()),
            1 => "[A@?#% \n]",
            1 => prop_oneof![Just("%C3%A9".to_string()), Just("%f5".to_string()), Just("%25".to_string()), Just("[::1]".to_string())],
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_then_parse_round_trips(r in valid_ref()) {
        let text = r.to_string();
        prop_assert_eq!(Ref::parse(&text), Ok(r.clone()), "via {}", text);
        if r.host.is_empty() {
            prop_assert!(text.starts_with("library:") && !text.starts_with("library://"));
        } else {
            let port: Option<String> = match r.host.rsplit_once(':') {
                Some((_, p)) if !r.host.ends_with(']') => Some(p.to_string()),
                _ => None,
            };
            let parsed = Ref::parse(&text).unwrap();
            prop_assert_eq!(parsed.port().map(str::to_string), port);
            prop_assert!(!parsed.hostname().starts_with('['));
        }
    }

    #[test]
    fn validators_agree_with_their_grammar(s in noisy()) {
        prop_assert_eq!(is_ref_part(&s), PART_RE.is_match(&s), "{:?}", s);
        prop_assert_eq!(is_library_pull_ref(&s), PULL_RE.is_match(&s), "{:?}", s);
        prop_assert_eq!(is_library_push_ref(&s), PUSH_RE.is_match(&s), "{:?}", s);
        prop_assert_eq!(is_image_hash(&s), HASH_RE.is_match(&s), "{:?}", s);
    }

    #[test]
    fn validators_accept_generated_refs(
        parts in proptest::collection::vec(part(), 1..=3),
        tags in proptest::collection::vec(part(), 0..=3),
        prefix in any::<bool>(),
    ) {
        let mut s = if prefix { "library://".to_string() } else { String::new() };
        s.push_str(&parts.join("/"));
        if !tags.is_empty() {
            s.push(':');
            s.push_str(&tags.join(","));
        }
        let pull = parts.iter().all(|p| is_ref_part(p)) && tags.len() <= 1;
        prop_assert_eq!(is_library_pull_ref(&s), pull, "{:?}", s);
        prop_assert_eq!(is_library_push_ref(&s), parts.len() == 3, "{:?}", s);
        let p = parse_library_path(&s);
        prop_assert_eq!(&p.container, parts.last().unwrap());
        prop_assert_eq!(p.tags, tags);
    }

    #[test]
    fn hashes_agree_with_their_grammar(hex in "[0-9a-gA-F]{62,66}", uuid in "[0-9a-fA-F-]{34,38}") {
        for s in [format!("sha256.{hex}"), format!("sif.{uuid}")] {
            prop_assert_eq!(is_image_hash(&s), HASH_RE.is_match(&s), "{:?}", s);
        }
    }

    #[test]
    fn nothing_panics(s in "\\PC{0,40}", bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for input in [s.as_str(), lossy.as_str()] {
            let _ = Ref::parse(input).map(|r| (r.hostname().len(), r.port().map(str::len), r.to_string()));
            let _ = Ref::parse_ambiguous(input).map(|r| r.to_string());
            let _ = parse_library_path(input);
            let _ = (is_library_pull_ref(input), is_library_push_ref(input), is_ref_part(input), is_image_hash(input));
        }
    }

    #[test]
    fn parse_ambiguous_agrees_with_parse_off_the_double_slash(s in noisy()) {
        if !s.starts_with("library://") {
            prop_assert_eq!(Ref::parse_ambiguous(&s), Ref::parse(&s));
        }
    }
}
