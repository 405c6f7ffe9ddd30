//! Messages of the upload endpoints (v2 single and multipart uploads) and
//! of the version endpoint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decode::null_default;

/// The key of [`MultipartUpload::options`] telling whether the server's
/// object store is fully S3 compatible.
pub const OPTION_S3_COMPLIANT: &str = "s3compliant";

/// Payload of `GET version`: the server's version and API version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VersionInfo {
    /// The server software's version.
    #[serde(deserialize_with = "null_default")]
    pub version: String,
    /// The API version, a semantic version; `2.0.0-alpha.1` and later have
    /// the v2 upload API, `2.0.0-alpha.2` and later have tags per
    /// architecture.
    #[serde(deserialize_with = "null_default")]
    pub api_version: String,
}

/// Storage quota of the uploading user, as reported after an upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaResponse {
    /// Storage available in total, in bytes (JSON key `quotaTotal`).
    #[serde(rename = "quotaTotal", deserialize_with = "null_default")]
    pub quota_total_bytes: i64,
    /// Storage in use, in bytes (JSON key `quotaUsage`).
    #[serde(rename = "quotaUsage", deserialize_with = "null_default")]
    pub quota_usage_bytes: i64,
}

/// Body of `POST v2/imagefile/<imageID>`: starts a single-part upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadImageRequest {
    /// Size of the image file in bytes (JSON key `filesize`).
    #[serde(rename = "filesize", deserialize_with = "null_default")]
    pub size: i64,
    /// Hex MD5 of the file (JSON key `md5sum`). Left out when empty.
    #[serde(
        rename = "md5sum",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub md5_checksum: String,
    /// Hex SHA-256 of the file (JSON key `sha256sum`). Left out when empty.
    #[serde(
        rename = "sha256sum",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub sha256_checksum: String,
}

/// Payload answering [`UploadImageRequest`]: where to send the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadImage {
    /// Presigned URL to `PUT` the file to (JSON key `uploadURL`). Needs no
    /// library credentials; empty is an error.
    #[serde(rename = "uploadURL", deserialize_with = "null_default")]
    pub upload_url: String,
}

/// Body of `PUT v2/imagefile/<imageID>/_complete`, which finishes a
/// single-part upload. It has no fields and is written as `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UploadImageCompleteRequest {}

/// Payload answering the completion of an upload (single or multipart).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadImageComplete {
    /// The user's quota after the upload.
    #[serde(deserialize_with = "null_default")]
    pub quota: QuotaResponse,
    /// Path of the container on the library's web site (JSON key
    /// `containerUrl`); empty means success without details.
    #[serde(rename = "containerUrl", deserialize_with = "null_default")]
    pub container_url: String,
}

/// Body of `POST v2/imagefile/<imageID>/_multipart`: starts a multipart
/// upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MultipartUploadStartRequest {
    /// Size of the image file in bytes (JSON key `filesize`).
    #[serde(rename = "filesize", deserialize_with = "null_default")]
    pub size: i64,
}

/// Payload answering [`MultipartUploadStartRequest`]: how to split the
/// file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MultipartUpload {
    /// The upload's ID, to quote in every later request (JSON key
    /// `uploadID`).
    #[serde(rename = "uploadID", deserialize_with = "null_default")]
    pub upload_id: String,
    /// Number of parts to send (JSON key `totalParts`).
    #[serde(rename = "totalParts", deserialize_with = "null_default")]
    pub total_parts: i64,
    /// Size of each part in bytes; the last part is the rest (JSON key
    /// `partSize`).
    #[serde(rename = "partSize", deserialize_with = "null_default")]
    pub part_size: i64,
    /// Server options, e.g. [`OPTION_S3_COMPLIANT`]; `None` is written as
    /// `null`.
    pub options: Option<BTreeMap<String, String>>,
}

impl MultipartUpload {
    /// Whether the server's object store is fully S3 compatible: the
    /// `s3compliant` option is absent, empty or `"true"`. In that mode the
    /// SHA-256 of each part is computed and sent.
    pub fn is_s3_compliant(&self) -> bool {
        match self
            .options
            .as_ref()
            .and_then(|o| o.get(OPTION_S3_COMPLIANT))
        {
            None => true,
            Some(v) => v.is_empty() || v == "true",
        }
    }
}

/// Body of `PUT v2/imagefile/<imageID>/_multipart`, sent before each part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadImagePartRequest {
    /// Size of this part in bytes (JSON key `partSize`).
    #[serde(rename = "partSize", deserialize_with = "null_default")]
    pub part_size: i64,
    /// The upload's ID (JSON key `uploadID`).
    #[serde(rename = "uploadID", deserialize_with = "null_default")]
    pub upload_id: String,
    /// Number of this part, from 1 (JSON key `partNumber`).
    #[serde(rename = "partNumber", deserialize_with = "null_default")]
    pub part_number: i64,
    /// Hex SHA-256 of this part in S3-compliant mode, else empty (JSON key
    /// `sha256sum`; always written).
    #[serde(rename = "sha256sum", deserialize_with = "null_default")]
    pub sha256_checksum: String,
}

/// Payload answering [`UploadImagePartRequest`]: where to send the part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadImagePart {
    /// Presigned URL to `PUT` the part's bytes to (JSON key
    /// `presignedURL`).
    #[serde(rename = "presignedURL", deserialize_with = "null_default")]
    pub presigned_url: String,
}

/// One uploaded part, as listed when completing a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletedPart {
    /// Number of the part, from 1 (JSON key `partNumber`).
    #[serde(rename = "partNumber", deserialize_with = "null_default")]
    pub part_number: i64,
    /// The `ETag` header the object store answered the part's upload with,
    /// quotes included.
    #[serde(deserialize_with = "null_default")]
    pub token: String,
}

/// Body of `PUT v2/imagefile/<imageID>/_multipart_complete`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CompleteMultipartUploadRequest {
    /// The upload's ID (JSON key `uploadID`).
    #[serde(rename = "uploadID", deserialize_with = "null_default")]
    pub upload_id: String,
    /// Every part, in order (JSON key `completedParts`); `None` is written
    /// as `null`.
    #[serde(rename = "completedParts")]
    pub completed_parts: Option<Vec<CompletedPart>>,
}

/// Body of `PUT v2/imagefile/<imageID>/_multipart_abort`, sent when a part
/// failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AbortMultipartUploadRequest {
    /// The upload's ID (JSON key `uploadID`).
    #[serde(rename = "uploadID", deserialize_with = "null_default")]
    pub upload_id: String,
}
