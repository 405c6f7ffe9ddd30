//! The reference client's own test cases, loaded from `testdata/vectors/`.

use std::path::PathBuf;

use library_ref::{
    is_image_hash, is_library_pull_ref, is_library_push_ref, is_ref_part, parse_library_path, Ref,
    RefError,
};
use serde_json::Value;

fn cases(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!v.is_empty(), "{file} has no cases");
    v
}

fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap()
}

fn tags(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
        other => panic!("tags {other}"),
    }
}

fn error_kind(e: &RefError) -> &'static str {
    match e {
        RefError::SchemeNotValid => "ErrRefSchemeNotValid",
        RefError::UserNotPermitted => "ErrRefUserNotPermitted",
        RefError::QueryNotPermitted => "ErrRefQueryNotPermitted",
        RefError::FragmentNotPermitted => "ErrRefFragmentNotPermitted",
        RefError::PathNotValid => "ErrRefPathNotValid",
        RefError::TagsNotValid => "ErrRefTagsNotValid",
        RefError::Malformed(_) => "url_parse_error",
        _ => "unknown",
    }
}

fn check_parse(file: &str, parse: fn(&str) -> Result<Ref, RefError>) {
    let mut failures = Vec::new();
    for c in cases(file) {
        let input = c["input"].as_str().unwrap();
        let expect = &c["expect"];
        let got = parse(input);
        let ok = match (&got, expect.get("error")) {
            (Err(e), Some(kind)) => kind == "panic" || error_kind(e) == kind.as_str().unwrap(),
            (Ok(r), None) => {
                r.host == expect["host"].as_str().unwrap()
                    && r.path == expect["path"].as_str().unwrap()
                    && r.tags == tags(&expect["tags"])
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: {input:?} gave {got:?}, expected {expect}",
                name(&c)
            ));
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
}

#[test]
fn ref_parse() {
    check_parse("ref_parse.json", Ref::parse);
}

#[test]
fn ref_parse_ambiguous() {
    check_parse("ref_parse_ambiguous.json", Ref::parse_ambiguous);
}

#[test]
fn ref_from_str_is_parse() {
    for c in cases("ref_parse.json") {
        let input = c["input"].as_str().unwrap();
        assert_eq!(input.parse::<Ref>(), Ref::parse(input), "{}", name(&c));
    }
}

#[test]
fn ref_string() {
    for c in cases("ref_string.json") {
        let i = &c["input"];
        let r = Ref {
            host: i["host"].as_str().unwrap().into(),
            path: i["path"].as_str().unwrap().into(),
            tags: tags(&i["tags"]),
        };
        assert_eq!(
            r.to_string(),
            c["expect"]["string"].as_str().unwrap(),
            "{}",
            name(&c)
        );
    }
}

#[test]
fn ref_hostname_port() {
    check_hostname_port("ref_hostname_port.json");
}

#[test]
fn ref_hostname_port_malformed() {
    check_hostname_port("ref_hostname_port_malformed.json");
}

fn check_hostname_port(file: &str) {
    for c in cases(file) {
        let i = &c["input"];
        let r = match (i.get("ref"), i.get("host")) {
            (Some(s), _) => Ref::parse(s.as_str().unwrap()).unwrap(),
            (None, Some(h)) => Ref {
                host: h.as_str().unwrap().into(),
                ..Ref::default()
            },
            _ => panic!("{}: no input", name(&c)),
        };
        let e = &c["expect"];
        assert_eq!(r.host, e["host"].as_str().unwrap(), "{}", name(&c));
        assert_eq!(
            r.hostname(),
            e["hostname"].as_str().unwrap(),
            "{}",
            name(&c)
        );
        assert_eq!(
            r.port().unwrap_or(""),
            e["port"].as_str().unwrap(),
            "{}",
            name(&c)
        );
    }
}

fn check_match(file: &str, f: fn(&str) -> bool) {
    let mut failures = Vec::new();
    for c in cases(file) {
        let input = c["input"].as_str().unwrap();
        let want = c["expect"]["match"].as_bool().unwrap();
        if f(input) != want {
            failures.push(format!("{}: {input:?} expected {want}", name(&c)));
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
}

#[test]
fn pull_refs() {
    check_match("is_library_pull_ref.json", is_library_pull_ref);
}

#[test]
fn push_refs() {
    check_match("is_library_push_ref.json", is_library_push_ref);
}

#[test]
fn ref_parts() {
    check_match("is_ref_part.json", is_ref_part);
}

#[test]
fn image_hashes() {
    check_match("is_image_hash.json", is_image_hash);
}

#[test]
fn library_paths() {
    for c in cases("parse_library_path.json") {
        let p = parse_library_path(c["input"].as_str().unwrap());
        let e = &c["expect"];
        assert_eq!(p.entity, e["entity"].as_str().unwrap(), "{}", name(&c));
        assert_eq!(
            p.collection,
            e["collection"].as_str().unwrap(),
            "{}",
            name(&c)
        );
        assert_eq!(
            p.container,
            e["container"].as_str().unwrap(),
            "{}",
            name(&c)
        );
        assert_eq!(p.tags, tags(&e["tags"]), "{}", name(&c));
    }
}
