//! The JSON envelope of every library response, and its error object.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decode::null_default;
use crate::models::{ArchTagMap, Collection, Container, Entity, Image, SearchResults, TagMap};
use crate::upload::{MultipartUpload, UploadImage, UploadImageComplete, UploadImagePart};
use crate::VersionInfo;

/// The envelope of every JSON response of the library:
/// `{"data": <payload>, "error": {"code": …, "message": …}}`.
///
/// On success `error` is absent or `null`; on failure `data` is usually the
/// zero payload. `error` and `page` are written only when set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: Deserialize<'de> + Default"
))]
pub struct Response<T> {
    /// The payload.
    #[serde(default, deserialize_with = "null_default")]
    pub data: T,
    /// Paging details, sent by endpoints that return one page of a longer
    /// list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageDetails>,
    /// The error, when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JsonError>,
}

impl<T> Response<T> {
    /// A successful response carrying `data`.
    pub fn new(data: T) -> Self {
        Response {
            data,
            page: None,
            error: None,
        }
    }

    /// The payload, or the error when the response carries one.
    pub fn into_result(self) -> Result<T, JsonError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.data),
        }
    }
}

/// Paging information of a response that holds one page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PageDetails {
    /// Reference to the previous page. Left out when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub prev: String,
    /// Reference to the next page. Left out when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub next: String,
    /// Number of items over all pages. Left out when zero.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub total_size: i64,
}

/// The error object of a response: `{"code": 404, "message": "…"}`.
///
/// Displays like the reference client: `"<message> (<code> <reason>)"`,
/// e.g. `entity not found (404 Not Found)`, or `"<code> <reason>"` when the
/// message is empty. The reason is Go's `http.StatusText` (empty for a
/// code it does not know).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonError {
    /// The HTTP status code the server meant. Left out when zero.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub code: i64,
    /// What went wrong, in the server's words. Left out when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
}

impl JsonError {
    /// An error with the given code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        JsonError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = status_text(self.code);
        if self.message.is_empty() {
            write!(f, "{} {}", self.code, reason)
        } else {
            write!(f, "{} ({} {})", self.message, self.code, reason)
        }
    }
}

impl std::error::Error for JsonError {}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The reason phrase Go's `net/http.StatusText` gives for an HTTP status
/// code, or `""` for a code it does not know.
pub fn status_text(code: i64) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Response of `GET v1/entities/…` and `POST v1/entities`.
pub type EntityResponse = Response<Entity>;
/// Response of `GET v1/collections/…` and `POST v1/collections`.
pub type CollectionResponse = Response<Collection>;
/// Response of `GET v1/containers/…` and `POST v1/containers`.
pub type ContainerResponse = Response<Container>;
/// Response of `GET v1/images/…` and `POST v1/images`.
pub type ImageResponse = Response<Image>;
/// Response of `GET v1/tags/<containerID>`: tag to image ID.
pub type TagsResponse = Response<TagMap>;
/// Response of `GET v2/tags/<containerID>`: architecture to tag to image ID.
pub type ArchTagsResponse = Response<ArchTagMap>;
/// Response of `GET v1/search`.
pub type SearchResponse = Response<SearchResults>;
/// Response of `POST v2/imagefile/<imageID>`: where to upload the file.
pub type UploadImageResponse = Response<UploadImage>;
/// Response of `PUT v2/imagefile/<imageID>/_complete`.
pub type UploadImageCompleteResponse = Response<UploadImageComplete>;
/// Response of `POST v2/imagefile/<imageID>/_multipart`.
pub type MultipartUploadStartResponse = Response<MultipartUpload>;
/// Response of `PUT v2/imagefile/<imageID>/_multipart`: where to upload one
/// part.
pub type UploadImagePartResponse = Response<UploadImagePart>;
/// Response of `PUT v2/imagefile/<imageID>/_multipart_complete`.
pub type CompleteMultipartUploadResponse = Response<UploadImageComplete>;
/// Response of `GET version`.
pub type VersionResponse = Response<VersionInfo>;
