//! Every golden file of `testdata/json` decodes into its type and encodes
//! back to the same JSON value; default values encode like the `*_zero`
//! files.

use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use library_model::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/json")
}

/// Decodes `bytes` as `T` (through `from_json` and through plain
/// `serde_json`), checks that both agree and that the value encodes to the
/// same JSON value as the file. For a `*_zero.json` file, also checks that
/// `T::default()` encodes to it.
fn check<T>(name: &str, bytes: &[u8])
where
    T: DeserializeOwned + Serialize + Default + PartialEq + Debug,
{
    let expected: Value = serde_json::from_slice(bytes).expect("fixture is JSON");

    let decoded: T = from_json(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let plain: T = serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded, plain, "{name}: from_json and serde_json disagree");

    let encoded = serde_json::to_value(&decoded).expect("encodes");
    assert_eq!(encoded, expected, "{name}: re-encoded value differs");

    // Encoding again from the re-encoded text is stable.
    let again: T = from_json(&serde_json::to_vec(&decoded).unwrap()).unwrap();
    assert_eq!(again, decoded, "{name}: second round trip differs");

    if name.ends_with("_zero.json") {
        let zero = serde_json::to_value(T::default()).expect("encodes");
        assert_eq!(zero, expected, "{name}: T::default() encodes differently");
        assert_eq!(
            decoded,
            T::default(),
            "{name}: decodes to a non-default value"
        );
    }
}

/// What the tests do with a fixture, for the fixture's type.
struct Ops {
    check: fn(&str, &[u8]),
    pretty: fn(&[u8]) -> String,
}

fn ops<T>() -> Ops
where
    T: DeserializeOwned + Serialize + Default + PartialEq + Debug,
{
    Ops {
        check: check::<T>,
        pretty: |bytes| serde_json::to_string_pretty(&from_json::<T>(bytes).unwrap()).unwrap(),
    }
}

/// Maps a fixture file to its type. An unknown name fails the test, so a
/// new fixture cannot be skipped silently.
fn ops_for(name: &str) -> Ops {
    match name {
        "abort_multipart_upload_request.json" => ops::<AbortMultipartUploadRequest>(),
        "arch_image_tag.json" => ops::<ArchImageTag>(),
        "arch_tags_response.json" => ops::<ArchTagsResponse>(),
        "blob_full.json" | "blob_zero.json" => ops::<Blob>(),
        "collection_full.json" | "collection_zero.json" => ops::<Collection>(),
        "complete_multipart_upload_request.json" => ops::<CompleteMultipartUploadRequest>(),
        "container_full.json" | "container_zero.json" => ops::<Container>(),
        "entity_full.json" | "entity_zero.json" => ops::<Entity>(),
        "entity_response_error.json" => ops::<EntityResponse>(),
        "image_full.json" | "image_zero.json" => ops::<Image>(),
        "image_tag.json" => ops::<ImageTag>(),
        "multipart_upload_start_request.json" => ops::<MultipartUploadStartRequest>(),
        "multipart_upload_start_response.json" => ops::<MultipartUploadStartResponse>(),
        "search_results_zero.json" => ops::<SearchResults>(),
        "tags_response.json" => ops::<TagsResponse>(),
        "upload_image_complete_request.json" => ops::<UploadImageCompleteRequest>(),
        "upload_image_complete_response.json" => ops::<UploadImageCompleteResponse>(),
        "upload_image_part_request.json" => ops::<UploadImagePartRequest>(),
        "upload_image_request.json" | "upload_image_request_min.json" => {
            ops::<UploadImageRequest>()
        }
        other => panic!("no type is mapped to fixture {other}: add it to ops_for"),
    }
}

/// The JSON files of the fixture directory, sorted.
fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixture_dir())
        .expect("testdata/json exists")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 25,
        "expected the golden files, found {names:?}"
    );
    names
}

#[test]
fn every_fixture_round_trips() {
    for name in fixture_names() {
        let bytes = fs::read(fixture_dir().join(&name)).unwrap();
        (ops_for(&name).check)(&name, &bytes);
    }
}

#[test]
fn no_file_but_json_and_readme() {
    for entry in fs::read_dir(fixture_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.ends_with(".json") || name == "README.md",
            "unexpected file {name} in testdata/json"
        );
    }
}

#[test]
fn full_fixtures_decode_to_the_expected_values() {
    let read = |name: &str| fs::read(fixture_dir().join(name)).unwrap();

    let image: Image = from_json(&read("image_full.json")).unwrap();
    assert_eq!(image.id(), "i1");
    assert_eq!(image.signed, Some(true));
    assert_eq!(image.encrypted, Some(false));
    assert_eq!(image.architecture.as_deref(), Some("amd64"));
    assert_eq!(image.fingerprints, ["F1"]);
    assert_eq!(image.tags, ["latest"]);
    assert_eq!(image.container_downloads, 7);
    assert_eq!(image.owner, "o");
    assert_eq!(
        image.updated_at.to_string(),
        "2024-01-02T03:04:05+01:00",
        "the offset is kept"
    );
    assert_eq!(
        image.created_at.to_string(),
        "2023-12-29T10:11:12.123456789Z"
    );

    let container: Container = from_json(&read("container_full.json")).unwrap();
    assert_eq!(
        container.arch_tags.as_ref().unwrap()["arm64"]["latest"],
        "i2"
    );
    assert_eq!(
        container.images.as_deref(),
        Some(&["i1".into(), "i2".into()][..])
    );

    let parts: CompleteMultipartUploadRequest =
        from_json(&read("complete_multipart_upload_request.json")).unwrap();
    assert_eq!(parts.completed_parts.unwrap()[0].token, "\"etag1\"");

    let err: EntityResponse = from_json(&read("entity_response_error.json")).unwrap();
    let err = err.into_result().unwrap_err();
    assert_eq!(err, JsonError::new(404, "entity not found"));

    let start: MultipartUploadStartResponse =
        from_json(&read("multipart_upload_start_response.json")).unwrap();
    assert!(!start.data.is_s3_compliant());
    assert_eq!(start.data.part_size, 64 << 20);
}

/// Beyond JSON-value equality: the golden files are Go's indented output,
/// and our pretty-printed encoding matches them byte for byte (same key
/// order, same number and time text).
#[test]
fn fixtures_match_byte_for_byte_when_pretty_printed() {
    for name in fixture_names() {
        let bytes = fs::read(fixture_dir().join(&name)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let ours = (ops_for(&name).pretty)(&bytes);
        assert_eq!(ours, text.trim_end(), "{name}: bytes differ");
    }
}
