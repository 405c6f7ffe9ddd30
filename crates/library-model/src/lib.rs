//! The JSON wire types of the Container Library API (the library behind
//! Singularity's and Apptainer's `library://` images), byte-compatible with
//! what the reference Go client (`scs-library-client` v1.4) writes and
//! reads.
//!
//! - Objects: [`Entity`] > [`Collection`] > [`Container`] > [`Image`], and
//!   [`Blob`]. Each carries the audit fields (`deleted`, `createdBy`,
//!   `createdAt`, `updatedBy`, `updatedAt`, `deletedBy`, `deletedAt`,
//!   `owner`) at the top level of its JSON.
//! - Tags: [`TagMap`], [`ArchTagMap`], [`ImageTag`], [`ArchImageTag`].
//! - The envelope of every response, [`Response<T>`], with its error
//!   [`JsonError`], and aliases per payload ([`ImageResponse`],
//!   [`SearchResponse`], …).
//! - Upload messages ([`UploadImageRequest`], [`MultipartUpload`], …),
//!   [`VersionInfo`], [`QuotaResponse`].
//! - The OCI side: [`OciRedirect`], [`SifConfig`], [`ImageManifest`],
//!   [`ImageIndex`], [`Descriptor`], [`Platform`] and the media types.
//!
//! # Encoding
//!
//! Values encode exactly as Go encodes the same values: lists and maps that
//! Go leaves `nil` are `Option`s written as `null` when `None`; fields Go
//! marks `omitempty` are left out when empty; times ([`GoTime`]) are always
//! written, the zero time as `"0001-01-01T00:00:00Z"`. `T::default()`
//! encodes like Go's zero value.
//!
//! # Decoding
//!
//! The types decode with `serde_json` directly, accepting missing fields,
//! unknown fields and `null` in any field. [`from_json`] adds Go's meaning
//! of `null` everywhere (also inside lists and maps) and errors that name
//! the path of the failing value ([`DecodeError::path`]).
//!
//! # Example
//!
//! ```
//! use library_model::{from_json, ImageResponse};
//!
//! let body = br#"{"data": {
//!     "id": "5f0c1e2d",
//!     "hash": "sha256.d7d71e2cd0b4ef2ae3c1ee6d4bd5d2cda6bb4b2d58e0a1e1e2cbe26d1e5d5c3f",
//!     "size": 2838528,
//!     "uploaded": true,
//!     "arch": "amd64",
//!     "createdAt": "2023-12-29T10:11:12.123456789Z",
//!     "updatedAt": null,
//!     "entityName": "sylabs", "collectionName": "tests", "containerName": "alpine",
//!     "tags": ["latest"]
//! }}"#;
//!
//! let image = from_json::<ImageResponse>(body)?.into_result()?;
//! assert!(image.is_uploaded());
//! assert_eq!(image.architecture.as_deref(), Some("amd64"));
//! assert!(image.updated_at.is_zero());
//! assert_eq!(image.created_at.to_string(), "2023-12-29T10:11:12.123456789Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod api_version;
mod decode;
mod gotime;
mod models;
mod oci;
mod response;
mod upload;

pub use api_version::{version_at_least, API_VERSION_V2_ARCH_TAGS, API_VERSION_V2_UPLOAD};
pub use decode::{from_json, DecodeError};
pub use gotime::{GoTime, TimeParseError};
pub use models::{
    ArchImageTag, ArchTagMap, Blob, Collection, Container, Entity, Image, ImageTag, SearchResults,
    TagMap, LIBRARY_MODELS,
};
pub use oci::{
    Descriptor, ImageIndex, ImageManifest, OciRedirect, Platform, SifConfig, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SIF_CONFIG, MEDIA_TYPE_SIF_LAYER,
};
pub use response::{
    status_text, ArchTagsResponse, CollectionResponse, CompleteMultipartUploadResponse,
    ContainerResponse, EntityResponse, ImageResponse, JsonError, MultipartUploadStartResponse,
    PageDetails, Response, SearchResponse, TagsResponse, UploadImageCompleteResponse,
    UploadImagePartResponse, UploadImageResponse, VersionResponse,
};
pub use upload::{
    AbortMultipartUploadRequest, CompleteMultipartUploadRequest, CompletedPart, MultipartUpload,
    MultipartUploadStartRequest, QuotaResponse, UploadImage, UploadImageComplete,
    UploadImageCompleteRequest, UploadImagePart, UploadImagePartRequest, UploadImageRequest,
    VersionInfo, OPTION_S3_COMPLIANT,
};
