//! `WWW-Authenticate` parsing against `testdata/vectors/auth_header.json`.

use library_client::oci::{parse_www_authenticate, AuthHeaderError, AuthScheme};
use proptest::prelude::*;
use serde_json::Value;

#[test]
fn every_vector() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/vectors/auth_header.json"
    );
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cases.len(), 13);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let input = c["input"].as_str().unwrap();
        let expect = &c["expect"];
        let got = parse_www_authenticate(input);
        match expect.get("error").and_then(Value::as_str) {
            Some("ErrInvalidAuthHeader") => {
                assert!(
                    matches!(got, Err(AuthHeaderError::Invalid(_))),
                    "{name}: {got:?}"
                )
            }
            Some("ErrUnknownAuthType") => {
                let e = got.unwrap_err();
                assert!(matches!(e, AuthHeaderError::UnknownScheme(_)), "{name}");
                if let Some(m) = c["go_message"].as_str() {
                    assert_eq!(e.to_string(), m, "{name}");
                }
            }
            Some("panic") => {
                // The reference crashes; any answer but a panic will do.
            }
            Some(other) => panic!("{name}: unknown error kind {other}"),
            None => {
                let ch = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                let scheme = match expect["type"].as_str().unwrap() {
                    "basic" => AuthScheme::Basic,
                    "bearer" => AuthScheme::Bearer,
                    t => panic!("{name}: type {t}"),
                };
                assert_eq!(ch.scheme, scheme, "{name}");
                assert_eq!(ch.realm, expect["realm"].as_str().unwrap(), "{name}");
                assert_eq!(ch.service, expect["service"].as_str().unwrap(), "{name}");
                assert_eq!(ch.scope, expect["scope"].as_str().unwrap(), "{name}");
            }
        }
    }
}

#[test]
fn cases_the_reference_crashes_on() {
    for input in [
        "Bearer realm=",
        "Bearer realm=\"",
        "Basic realm=,service=\"",
        "Bearer =\"",
    ] {
        let c = parse_www_authenticate(input).unwrap();
        assert_eq!((c.realm.as_str(), c.service.as_str()), ("", ""), "{input}");
    }
}

#[test]
fn more_shapes() {
    let c = parse_www_authenticate("BASIC realm=\"test-realm\"").unwrap();
    assert_eq!(
        (c.scheme, c.realm.as_str()),
        (AuthScheme::Basic, "test-realm")
    );
    // A comma inside quotes does not split; an escaped quote is kept.
    let c =
        parse_www_authenticate(r#"Bearer scope="repository:a:pull,push",realm="x\"y""#).unwrap();
    assert_eq!(c.scope, "repository:a:pull,push");
    assert_eq!(c.realm, "x\"y");
    // The last of repeated keys wins.
    let c = parse_www_authenticate("Bearer realm=a,realm=b").unwrap();
    assert_eq!(c.realm, "b");
    // A tab is not the separator.
    assert!(matches!(
        parse_www_authenticate("Bearer\trealm=x"),
        Err(AuthHeaderError::Invalid(_))
    ));
    assert!(matches!(
        parse_www_authenticate("Negotiate abc"),
        Err(AuthHeaderError::UnknownScheme(s)) if s == "Negotiate"
    ));
    // The registry's own challenge.
    let c = parse_www_authenticate(
        r#"Bearer realm="http://127.0.0.1:1/token",service="test-registry",scope="repository:test/sif:pull,push",error="insufficient_scope""#,
    )
    .unwrap();
    assert_eq!(c.service, "test-registry");
    assert_eq!(c.scope, "repository:test/sif:pull,push");
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,64}") {
        let _ = parse_www_authenticate(&s);
    }

    #[test]
    fn never_panics_on_challenge_shapes(
        scheme in "(Basic|bearer|BEARER|x)",
        params in proptest::collection::vec(("(realm|service|scope|x|)", "[=\"\\\\, a]{0,4}"), 0..5),
    ) {
        let s = format!("{scheme} {}", params.iter().map(|(k, v)| format!("{k}{v}")).collect::<Vec<_>>().join(","));
        let _ = parse_www_authenticate(&s);
    }
}
