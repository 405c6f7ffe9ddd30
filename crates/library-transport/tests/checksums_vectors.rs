//! Checksums and the conformance vectors of the protocol helpers.

use std::path::PathBuf;

use library_transport::headers::{parse_content_length, parse_content_range, HeaderParseError};
use library_transport::{checksums, MultipartUpload};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vectors(name: &str) -> Vec<Value> {
    let p = repo().join("testdata/vectors").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn err_kind(e: &HeaderParseError) -> &'static str {
    match e {
        HeaderParseError::Malformed(_) => "ErrUnexpectedMalformedValue",
        HeaderParseError::IntSyntax(_) => "int_syntax_error",
        HeaderParseError::IntRange(_) => "int_range_error",
        _ => "other",
    }
}

fn check(name: &str, got: Result<i64, HeaderParseError>, expect: &Value) {
    match (got, expect.get("size"), expect.get("error")) {
        (Ok(v), Some(s), _) => assert_eq!(v, s.as_i64().unwrap(), "{name}"),
        (Err(e), _, Some(k)) => {
            let k = k.as_str().unwrap();
            assert!(k == "panic" || err_kind(&e) == k, "{name}: {e:?} vs {k}")
        }
        (got, _, _) => panic!("{name}: got {got:?}, expected {expect}"),
    }
}

#[test]
fn parse_content_range_vectors() {
    let v = vectors("parse_content_range.json");
    assert!(!v.is_empty());
    for c in v {
        check(
            c["name"].as_str().unwrap(),
            parse_content_range(c["input"].as_str().unwrap()),
            &c["expect"],
        );
    }
    // Go panics on a value without a space; we must not.
    assert!(matches!(
        parse_content_range("bytes"),
        Err(HeaderParseError::Malformed(_))
    ));
    assert!(parse_content_range("").is_err());
}

#[test]
fn parse_content_length_vectors() {
    let v = vectors("parse_content_length.json");
    assert_eq!(v.len(), 3);
    for c in v {
        check(
            c["name"].as_str().unwrap(),
            parse_content_length(c["input"].as_str().unwrap()),
            &c["expect"],
        );
    }
    assert_eq!(parse_content_length("-5"), Ok(-5));
    assert_eq!(parse_content_length("+5"), Ok(5));
    assert!(parse_content_length(" 5").is_err());
    assert!(matches!(
        parse_content_length("9223372036854775808"),
        Err(HeaderParseError::IntRange(_))
    ));
}

/// The reference's part-size cases, as the multipart splitter applies them:
/// the first part of an upload of `bytes_remaining` bytes in parts of
/// `part_size`.
#[test]
fn part_size_vectors() {
    let cases = vectors("get_part_size.json");
    assert!(!cases.is_empty());
    for c in cases {
        let i = &c["input"];
        let size = i["bytes_remaining"].as_u64().unwrap();
        let part = i["part_size"].as_u64().unwrap();
        let got = MultipartUpload::new("unused.sif", size, part).part(1).len;
        assert_eq!(got, c["expect"]["size"].as_u64().unwrap(), "{}", c["name"]);
    }
}

#[test]
fn checksums_of_the_test_image() {
    let p = repo().join("testdata/sif/amd64.sif");
    let c = checksums(&p).unwrap();
    assert_eq!(
        c.sha256_hex(),
        "490139eb82e1281db85dba1679f0b511e2f705067a3c71a766ef50ce39fd021b"
    );
    assert_eq!(c.size, std::fs::metadata(&p).unwrap().len());
    assert_eq!(library_transport::sha256_file(&p).unwrap(), c.sha256);
}

#[test]
fn checksums_of_known_contents() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let c = checksums(&empty).unwrap();
    assert_eq!(c.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        c.sha256_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // Larger than one block, not a multiple of it.
    let big = dir.path().join("big");
    let data: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let c = checksums(&big).unwrap();
    use sha2::Digest;
    assert_eq!(c.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
    assert_eq!(c.md5, <[u8; 16]>::from(md5::Md5::digest(&data)));
    assert_eq!(c.size, data.len() as u64);
    let missing = checksums(&dir.path().join("nope")).unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}
