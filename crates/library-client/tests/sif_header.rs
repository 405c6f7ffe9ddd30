//! The SIF header reader against the fixtures of `testdata/sif` and
//! arbitrary bytes.

use std::path::{Path, PathBuf};

use library_client::sif::{read_sif_header, SifError, SifHeader, HEADER_READ_SIZE};
use library_client::Error;
use proptest::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sif")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_fixture_gives_the_expected_facts() {
    let cases = expected();
    assert_eq!(cases.len(), 8);
    for c in &cases {
        let file = c["file"].as_str().unwrap();
        let path = fixtures().join(file);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            c["size"].as_u64().unwrap(),
            "{file}"
        );
        let got = read_sif_header(&path);
        if c["uuid"].is_null() {
            // The header cannot be read at all (truncated-100.sif).
            match got {
                Err(Error::Sif { path: p, source }) => {
                    assert_eq!(p, path);
                    assert_eq!(source, SifError::Truncated { len: 100 }, "{file}");
                }
                other => panic!("{file}: expected a SIF error, got {other:?}"),
            }
            continue;
        }
        let h = got.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(h.uuid, c["uuid"].as_str().unwrap(), "{file}");
        assert_eq!(h.arch, c["primary_arch"].as_str().unwrap(), "{file}");
        assert_eq!(h.signed, c["signed"].as_bool().unwrap(), "{file}");
        assert_eq!(h.encrypted, c["encrypted"].as_bool(), "{file}");
        match c["reference_error"].as_str() {
            None => {
                let (arch, signed, encrypted) = h.oci_facts().unwrap();
                assert_eq!(arch, c["primary_arch"].as_str().unwrap(), "{file}");
                assert_eq!(signed, c["signed"].as_bool().unwrap(), "{file}");
                assert_eq!(encrypted, c["encrypted"].as_bool().unwrap(), "{file}");
            }
            Some(msg) => {
                let e = h.oci_facts().unwrap_err();
                assert_eq!(e, SifError::NoPrimaryPartition, "{file}");
                assert!(e.to_string().contains(msg), "{file}: {e}");
            }
        }
    }
}

#[test]
fn setprim_image_takes_the_arch_from_the_header() {
    let h = read_sif_header(&fixtures().join("amd64-setprim.sif")).unwrap();
    assert_eq!(h.arch, "amd64");
    assert_eq!(h.primary_partitions, 1);
}

#[test]
fn only_the_first_32_kib_count() {
    // The same bytes with a long tail parse the same.
    let mut bytes = std::fs::read(fixtures().join("amd64-signed.sif")).unwrap();
    let h = SifHeader::parse(&bytes).unwrap();
    bytes.resize(1 << 20, 0xAB);
    assert_eq!(SifHeader::parse(&bytes).unwrap(), h);
    assert_eq!(SifHeader::parse(&bytes[..HEADER_READ_SIZE]).unwrap(), h);
    // Cut inside the descriptor table: out of range.
    assert!(matches!(
        SifHeader::parse(&bytes[..5000]),
        Err(SifError::DescriptorsOutOfRange { .. })
    ));
}

#[test]
fn files_that_are_not_sif() {
    let dir = tempfile::tempdir().unwrap();
    let readme = fixtures().join("README.md");
    match read_sif_header(&readme) {
        Err(Error::Sif { source, .. }) => assert_eq!(source, SifError::BadMagic),
        other => panic!("README.md: {other:?}"),
    }
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        read_sif_header(&empty),
        Err(Error::Sif {
            source: SifError::Truncated { len: 0 },
            ..
        })
    ));
    let missing = dir.path().join("missing.sif");
    assert!(matches!(read_sif_header(&missing), Err(Error::Io { .. })));
    // Right magic, wrong version.
    let mut b = std::fs::read(fixtures().join("amd64.sif")).unwrap();
    b[42..45].copy_from_slice(b"02\0");
    assert!(matches!(
        SifHeader::parse(&b),
        Err(SifError::BadVersion { .. })
    ));
}

#[test]
fn the_truncated_fixture_is_not_amd64() {
    let bytes = std::fs::read(fixtures().join("truncated-100.sif")).unwrap();
    // It holds the magic, version and arch code of amd64.sif ...
    assert_eq!(&bytes[32..48], b"SIF_MAGIC\x0001\x0002\x00");
    // ... and is still rejected as too short.
    assert_eq!(
        SifHeader::parse(&bytes),
        Err(SifError::Truncated { len: 100 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40_000)) {
        if let Ok(h) = SifHeader::parse(&bytes) {
            let _ = h.oci_facts();
        }
    }

    /// A real header with random changes in the fields that matter never
    /// panics either.
    #[test]
    fn mutated_headers_never_panic(
        edits in proptest::collection::vec((0usize..HEADER_READ_SIZE, any::<u8>()), 0..16),
        numbers in proptest::collection::vec((0usize..6, any::<i64>()), 0..4),
        len in 0usize..HEADER_READ_SIZE + 10,
    ) {
        let mut b = std::fs::read(fixtures().join("amd64-signed.sif")).unwrap();
        b.truncate(len.min(b.len()));
        for (at, v) in edits {
            if at < b.len() {
                b[at] = v;
            }
        }
        for (field, v) in numbers {
            let at = 80 + field * 8;
            if at + 8 <= b.len() {
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        match SifHeader::parse(&b) {
            Ok(h) => {
                if let Ok((arch, _, _)) = h.oci_facts() {
                    prop_assert_eq!(arch, h.arch.clone());
                    prop_assert_eq!(h.primary_partitions, 1);
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
