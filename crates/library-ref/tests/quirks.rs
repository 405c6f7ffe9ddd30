//! Corner cases of the URI grammar where the reference client's behaviour
//! is easy to get wrong; each expectation follows the rules documented in
//! `testdata/vectors/README.md`.

use library_ref::{parse_library_path, Ref, RefError};

fn ok(host: &str, path: &str, tags: &[&str]) -> Result<Ref, RefError> {
    Ok(Ref {
        host: host.into(),
        path: path.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    })
}

fn malformed(r: Result<Ref, RefError>) -> bool {
    matches!(r, Err(RefError::Malformed(_)))
}

#[test]
fn scheme_is_case_insensitive_and_must_start_with_a_letter() {
    assert_eq!(Ref::parse("LIBRARY:x"), ok("", "x", &[]));
    assert_eq!(Ref::parse("Library://h/x"), ok("h", "x", &[]));
    assert!(
        malformed(Ref::parse("1library:x")),
        "first segment with a colon"
    );
    assert_eq!(Ref::parse("x"), Err(RefError::SchemeNotValid));
}

#[test]
fn unbracketed_ipv6_authority_reads_as_host_and_port() {
    let r = Ref::parse("library://::1/x").unwrap();
    assert_eq!(r.host, "::1");
    assert_eq!(r.hostname(), "");
    assert_eq!(
        r.port(),
        Some(":1"),
        "split at the first colon, as the reference does"
    );
}

#[test]
fn percent_escapes_in_hosts() {
    assert!(
        malformed(Ref::parse("library://h%41st/x")),
        "ASCII may not be escaped in a host"
    );
    assert_eq!(Ref::parse("library://h%C3%A9/x"), ok("hé", "x", &[]));
    assert_eq!(
        Ref::parse("library://[::1%25en0]/x"),
        ok("[::1%en0]", "x", &[])
    );
    assert!(malformed(Ref::parse("library://[::1%25%00]/x")));
    assert!(malformed(Ref::parse("library://h st/x")));
    assert!(malformed(Ref::parse("library://host:8a/x")));
}

#[test]
fn control_characters() {
    assert!(malformed(Ref::parse("library:x\u{7f}")));
    assert!(malformed(Ref::parse("library://h/x\ty")));
    // The fragment is cut off before control characters are looked for.
    assert_eq!(
        Ref::parse("library:x#\n"),
        Err(RefError::FragmentNotPermitted)
    );
}

#[test]
fn escapes_in_path_and_fragment() {
    assert_eq!(Ref::parse("library:/a%20b"), ok("", "a b", &[]));
    assert_eq!(
        Ref::parse("library:a%20b"),
        ok("", "a%20b", &[]),
        "opaque text is not decoded"
    );
    assert!(malformed(Ref::parse("library:/a%2")));
    assert!(malformed(Ref::parse("library:x#%zz")));
    assert_eq!(
        Ref::parse("library:/a%3Ab%3Ac"),
        Err(RefError::PathNotValid)
    );
}

#[test]
fn empty_user_query_and_fragment() {
    assert_eq!(
        Ref::parse("library://@h/x"),
        Err(RefError::UserNotPermitted)
    );
    assert_eq!(
        Ref::parse("library:x?"),
        ok("", "x", &[]),
        "a lone trailing ? is no query"
    );
    assert_eq!(Ref::parse("library:x??"), Err(RefError::QueryNotPermitted));
    assert_eq!(Ref::parse("library:x#"), ok("", "x", &[]));
    assert!(malformed(Ref::parse("library://a b@h/x")));
}

#[test]
fn tags_are_split_without_filtering() {
    assert_eq!(Ref::parse("library:x:a,,b"), ok("", "x", &["a", "", "b"]));
    assert_eq!(Ref::parse("library:x:,"), ok("", "x", &["", ""]));
    assert_eq!(
        Ref::parse("library:////x"),
        ok("", "/x", &[]),
        "only one / is stripped"
    );
}

#[test]
fn ambiguous_counts_decoded_components() {
    assert_eq!(
        Ref::parse_ambiguous("library://a%2Fb%2Fc"),
        ok("", "a/b/c", &[])
    );
    assert_eq!(Ref::parse_ambiguous("library://a/b"), ok("a", "b", &[]));
    assert_eq!(
        Ref::parse_ambiguous("library://a/b/c/d"),
        ok("a", "b/c/d", &[])
    );
    assert_eq!(
        Ref::parse_ambiguous("library://user@h/x/y"),
        ok("", "user@h/x/y", &[])
    );
    assert_eq!(Ref::parse_ambiguous("library:///a/b"), ok("", "a/b", &[]));
    assert_eq!(
        Ref::parse_ambiguous("LIBRARY://a/b/c"),
        ok("a", "b/c", &[]),
        "prefix is case-sensitive"
    );
}

#[test]
fn display_escapes_like_a_url() {
    let r = Ref {
        host: "h".into(),
        path: "a b?c".into(),
        tags: vec!["t".into()],
    };
    assert_eq!(r.to_string(), "library://h/a%20b%3Fc:t");
    let r = Ref {
        host: "h".into(),
        path: String::new(),
        tags: vec![],
    };
    assert_eq!(r.to_string(), "library://h");
    let r = Ref {
        host: String::new(),
        path: String::new(),
        tags: vec!["t".into()],
    };
    assert_eq!(r.to_string(), "library::t");
}

#[test]
fn library_path_quirks() {
    let p = parse_library_path("image:");
    assert_eq!(
        (p.container.as_str(), p.tags),
        ("image", vec![String::new()])
    );
    let p = parse_library_path("a/b/c:t1:t2,t3");
    assert_eq!(p.tags, ["t1"]);
    let p = parse_library_path("a:x/b");
    assert_eq!((p.collection.as_str(), p.container.as_str()), ("a:x", "b"));
    assert_eq!(
        parse_library_path(""),
        library_ref::LibraryPath {
            container: String::new(),
            ..Default::default()
        }
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let e = Ref::parse("library://host:8a/x").unwrap_err();
    assert!(e.to_string().contains("\":8a\""), "{e}");
    assert!(RefError::SchemeNotValid.to_string().contains("library:"));
    let _: &dyn std::error::Error = &e;
}

#[test]
fn display_escapes_multibyte_characters() {
    // Found by fuzzing: a decoded escape that is not ASCII in the path.
    let r = Ref::parse("library://h/a%C3%A9b:t").unwrap();
    assert_eq!(r.path, "aéb");
    assert_eq!(r.to_string(), "library://h/a%C3%A9b:t");
    assert_eq!(Ref::parse(&r.to_string()), Ok(r));
    let r = Ref {
        host: "hé".into(),
        path: "é".into(),
        tags: vec!["é".into()],
    };
    assert_eq!(r.to_string(), "library://h%C3%A9/%C3%A9:%C3%A9");
}
