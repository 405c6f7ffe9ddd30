//! Lenient decoding (nulls, unknown and missing fields, other servers'
//! shapes) and errors that name the failing field.

use library_model::*;
use serde_json::json;

#[test]
fn null_strings_lists_maps_numbers_and_times_decode_as_zero() {
    let body = br#"{
        "deleted": null, "createdBy": null, "createdAt": null, "updatedBy": null,
        "updatedAt": null, "deletedBy": null, "deletedAt": null, "owner": null,
        "id": null, "name": null, "description": null, "fullDescription": null,
        "collection": null, "images": null, "imageTags": null, "archTags": null,
        "size": null, "downloadCount": null, "stars": null, "private": null,
        "readOnly": null, "customData": null, "entity": null, "entityName": null,
        "collectionName": null
    }"#;
    let via_serde: Container = serde_json::from_slice(body).unwrap();
    let via_from_json: Container = from_json(body).unwrap();
    assert_eq!(via_serde, Container::default());
    assert_eq!(via_from_json, Container::default());

    let image: Image = from_json(
        br#"{"signed": null, "arch": null, "fingerprints": null, "encrypted": null,
             "tags": null, "size": null, "containerStars": null, "blob": null}"#,
    )
    .unwrap();
    assert_eq!(image, Image::default());

    let search: SearchResponse = from_json(
        br#"{"data": {"entity": null, "collection": null, "container": null, "image": null},
             "error": null, "page": null}"#,
    )
    .unwrap();
    assert_eq!(search, SearchResponse::default());

    let tags: TagsResponse = from_json(br#"{"data": null}"#).unwrap();
    assert!(tags.data.is_empty());
}

#[test]
fn null_inside_lists_and_maps_reads_as_zero_with_from_json() {
    let c: Container = from_json(
        br#"{"images": ["a", null], "imageTags": {"latest": null},
             "archTags": {"amd64": null, "arm64": {"latest": null, "v1": "x"}}}"#,
    )
    .unwrap();
    assert_eq!(c.images.unwrap(), ["a", ""]);
    assert_eq!(c.image_tags.unwrap()["latest"], "");
    let arch = c.arch_tags.unwrap();
    assert!(arch["amd64"].is_empty());
    assert_eq!(arch["arm64"]["latest"], "");
    assert_eq!(arch["arm64"]["v1"], "x");

    let tags: TagsResponse = from_json(br#"{"data": {"latest": null}}"#).unwrap();
    assert_eq!(tags.data["latest"], "");

    let search: SearchResponse = from_json(br#"{"data": {"image": [null, {"id": "i"}]}}"#).unwrap();
    let images = search.data.images.unwrap();
    assert_eq!(images[0], Image::default());
    assert_eq!(images[1].id(), "i");
}

#[test]
fn unknown_fields_are_ignored() {
    let e: EntityResponse = from_json(
        br#"{"data": {"name": "sylabs", "ModelManager": {}, "brandNew": [1, {"x": null}],
             "id": "e1"}, "meta": 1, "page": {"next": "n", "other": true}}"#,
    )
    .unwrap();
    assert_eq!(e.data.name, "sylabs");
    assert_eq!(e.data.id(), "e1");
    assert_eq!(e.page.unwrap().next, "n");
}

#[test]
fn missing_fields_take_their_zero_value() {
    let entity: Entity = from_json(b"{}").unwrap();
    assert_eq!(entity, Entity::default());
    let image: ImageResponse = from_json(br#"{"data": {"id": "i"}}"#).unwrap();
    assert_eq!(image.data.id(), "i");
    assert!(image.error.is_none());
    let empty: ImageResponse = from_json(b"{}").unwrap();
    assert_eq!(empty, ImageResponse::default());
    let parts: UploadImagePartRequest = from_json(b"{}").unwrap();
    assert_eq!(parts, UploadImagePartRequest::default());
}

#[test]
fn hinkskalle_image_decodes() {
    // Shapes seen from Hinkskalle: string IDs, microseconds with +00:00,
    // null times and sizes, uploadState instead of uploaded.
    let body = br#"{"data": {
        "id": "42", "hash": "sha256.0123", "container": "7", "containerName": "busybox",
        "createdAt": "2023-01-02T03:04:05.123456+00:00", "updatedAt": null,
        "deletedAt": null, "size": null, "uploadState": "completed",
        "arch": "amd64", "signed": null, "expiresAt": null
    }}"#;
    let image = from_json::<ImageResponse>(body).unwrap().data;
    assert_eq!(image.id(), "42");
    assert_eq!(image.size, 0);
    assert!(!image.uploaded);
    assert!(image.is_uploaded());
    assert!(image.updated_at.is_zero());
    assert_eq!(image.created_at.to_string(), "2023-01-02T03:04:05.123456Z");
    assert_eq!(image.upload_state.as_deref(), Some("completed"));

    let encoded = serde_json::to_value(&image).unwrap();
    assert_eq!(encoded["uploadState"], "completed");
    assert_eq!(encoded["updatedAt"], "0001-01-01T00:00:00Z");

    let initialized: Image = from_json(br#"{"uploadState": "initialized"}"#).unwrap();
    assert!(!initialized.is_uploaded());
    assert!(serde_json::to_value(Image::default())
        .unwrap()
        .get("uploadState")
        .is_none());
}

fn decode_err<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> DecodeError {
    from_json::<T>(body.as_bytes()).expect_err("must be rejected")
}

#[test]
fn wrong_types_are_rejected_with_the_path() {
    let err = decode_err::<EntityResponse>(r#"{"data":{"name":5}}"#);
    assert_eq!(err.path(), "data.name");
    assert!(
        err.to_string()
            .starts_with("data.name: invalid type: integer `5`"),
        "{err}"
    );
    assert_eq!(err.classify(), serde_json::error::Category::Data);

    let err =
        decode_err::<SearchResponse>(r#"{"data":{"image":[{"id":"a","size":1},{"size":"12"}]}}"#);
    assert_eq!(err.path(), "data.image[1].size");

    let err = decode_err::<SearchResponse>(r#"{"data":{"image":[{"size":true}]}}"#);
    assert_eq!(err.path(), "data.image[0].size");
    assert!(err.to_string().contains("data.image[0].size"));

    let err = decode_err::<ContainerResponse>(r#"{"data":{"archTags":{"amd64":{"latest":7}}}}"#);
    assert_eq!(err.path(), "data.archTags.amd64.latest");

    let err = decode_err::<ContainerResponse>(r#"{"data":{"images":"i1"}}"#);
    assert_eq!(err.path(), "data.images");

    let err = decode_err::<ImageResponse>(r#"{"data":{"signed":"yes"}}"#);
    assert_eq!(err.path(), "data.signed");

    let err = decode_err::<EntityResponse>(r#"{"data":{},"error":{"code":"404"}}"#);
    assert_eq!(err.path(), "error.code");

    // serde would take an array as a struct's fields in order; Go does not.
    let err = decode_err::<EntityResponse>(r#"{"data":[]}"#);
    assert_eq!(err.path(), "data");
    assert!(err.to_string().contains("expected struct Entity"), "{err}");
    let err = decode_err::<SearchResponse>(r#"{"data":{"image":[["i1"]]}}"#);
    assert_eq!(err.path(), "data.image[0]");

    let err = decode_err::<Entity>(r#"{"size": 1.5}"#);
    assert_eq!(err.path(), "size");

    let err = decode_err::<MultipartUploadStartResponse>(r#"{"data":{"options":{"a b":1}}}"#);
    assert_eq!(err.path(), r#"data.options["a b"]"#);
}

#[test]
fn bad_times_are_rejected_with_the_path() {
    let err = decode_err::<ImageResponse>(r#"{"data":{"createdAt":""}}"#);
    assert_eq!(err.path(), "data.createdAt");
    assert!(err.to_string().contains("empty"), "{err}");

    let err = decode_err::<Entity>(r#"{"updatedAt":"2023-13-01T00:00:00Z"}"#);
    assert_eq!(err.path(), "updatedAt");

    let err = decode_err::<Entity>(r#"{"deletedAt":12}"#);
    assert_eq!(err.path(), "deletedAt");
}

#[test]
fn malformed_json_is_rejected() {
    let err = decode_err::<EntityResponse>(r#"{"data":{"name":"x""#);
    assert_eq!(err.classify(), serde_json::error::Category::Eof);
    // The input ends where the rest of the `data` object should be.
    assert_eq!(err.path(), "data");

    let err = decode_err::<EntityResponse>(r#"{"data":{}} trailing"#);
    assert_eq!(err.path(), "");
    assert_eq!(err.classify(), serde_json::error::Category::Syntax);
    assert_eq!(err.line(), 1);

    let err = decode_err::<EntityResponse>("");
    assert_eq!(err.classify(), serde_json::error::Category::Eof);

    let err = decode_err::<Entity>("5");
    assert_eq!(err.classify(), serde_json::error::Category::Data);
    assert_eq!(err.path(), "");
    let _ = err.into_inner();

    // Like Go, a bare null leaves the zero value.
    assert_eq!(from_json::<Entity>(b"null").unwrap(), Entity::default());
}

#[test]
fn error_envelope_shapes() {
    let r: EntityResponse =
        from_json(br#"{"data": null, "error": {"code": 401, "message": "Not Authorized"}}"#)
            .unwrap();
    assert_eq!(
        r.into_result().unwrap_err().to_string(),
        "Not Authorized (401 Unauthorized)"
    );
    let r: EntityResponse = from_json(br#"{"error": {"code": null, "message": null}}"#).unwrap();
    assert_eq!(r.error, Some(JsonError::default()));
    assert_eq!(
        serde_json::to_value(JsonError::default()).unwrap(),
        json!({})
    );
}

#[test]
fn responses_encode_error_and_page_only_when_set() {
    let ok = Response::new(VersionInfo {
        version: "v1.0.0".into(),
        api_version: "2.0.0-alpha.2".into(),
    });
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({"data": {"version": "v1.0.0", "apiVersion": "2.0.0-alpha.2"}})
    );
    let paged = Response {
        data: TagMap::new(),
        page: Some(PageDetails {
            next: "2".into(),
            total_size: 30,
            ..PageDetails::default()
        }),
        error: Some(JsonError::new(500, "boom")),
    };
    assert_eq!(
        serde_json::to_value(&paged).unwrap(),
        json!({"data": {}, "page": {"next": "2", "totalSize": 30},
               "error": {"code": 500, "message": "boom"}})
    );
    let version: VersionResponse =
        from_json(br#"{"data":{"version":"v1","apiVersion":"2.0.0"}}"#).unwrap();
    assert_eq!(version.into_result().unwrap().api_version, "2.0.0");
}

#[test]
fn upload_messages_encode_like_go() {
    let req = UploadImageRequest {
        size: 10,
        ..Default::default()
    };
    assert_eq!(serde_json::to_value(&req).unwrap(), json!({"filesize": 10}));
    assert_eq!(
        serde_json::to_string(&UploadImageCompleteRequest {}).unwrap(),
        "{}"
    );
    let complete = CompleteMultipartUploadRequest::default();
    assert_eq!(
        serde_json::to_value(&complete).unwrap(),
        json!({"uploadID": "", "completedParts": null})
    );
    let complete = CompleteMultipartUploadRequest {
        upload_id: "u".into(),
        completed_parts: Some(vec![]),
    };
    assert_eq!(
        serde_json::to_value(&complete).unwrap(),
        json!({"uploadID": "u", "completedParts": []}),
        "an empty list that was set is written as []"
    );
    let up: UploadImageResponse = from_json(br#"{"data":{"uploadURL":"https://s3/x"}}"#).unwrap();
    assert_eq!(up.data.upload_url, "https://s3/x");
    let part: UploadImagePartResponse =
        from_json(br#"{"data":{"presignedURL":"https://s3/p"}}"#).unwrap();
    assert_eq!(part.data.presigned_url, "https://s3/p");
    let done: CompleteMultipartUploadResponse =
        from_json(br#"{"data":{"containerUrl":""}}"#).unwrap();
    assert_eq!(done.data, UploadImageComplete::default());
}

#[test]
fn s3_compliance_option() {
    let with = |v: Option<&str>| MultipartUpload {
        options: v.map(|v| [(OPTION_S3_COMPLIANT.to_owned(), v.to_owned())].into()),
        ..Default::default()
    };
    assert!(with(None).is_s3_compliant());
    assert!(with(Some("")).is_s3_compliant());
    assert!(with(Some("true")).is_s3_compliant());
    assert!(!with(Some("false")).is_s3_compliant());
    assert!(!with(Some("TRUE")).is_s3_compliant());
}
