//! The OCI side of the library: the registry redirect, the SIF image config,
//! and the few OCI image-spec documents a SIF push or pull uses.
//!
//! Fields are declared in the order Go's `image-spec` types declare them,
//! so that documents encode with the same key order as the reference
//! client's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decode::null_default;

/// Media type of an OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of the config blob of a SIF image ([`SifConfig`]).
pub const MEDIA_TYPE_SIF_CONFIG: &str = "application/vnd.sylabs.sif.config.v1+json";
/// Media type of the single layer of a SIF image: the SIF file itself.
pub const MEDIA_TYPE_SIF_LAYER: &str = "application/vnd.sylabs.sif.layer.v1.sif";

/// The answer of `GET v1/oci-redirect`: how to reach the OCI registry
/// behind the library. Plain JSON, without the response envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OciRedirect {
    /// Bearer token for the registry requests.
    #[serde(deserialize_with = "null_default")]
    pub token: String,
    /// Base URL of the registry.
    #[serde(deserialize_with = "null_default")]
    pub url: String,
    /// The repository name in the registry; when non-empty and different
    /// from the name asked for, it replaces it (a short ref such as
    /// `alpine` maps to `library/default/alpine`).
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

/// The config blob of a SIF image in an OCI registry (media type
/// [`MEDIA_TYPE_SIF_CONFIG`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SifConfig {
    /// Primary architecture of the SIF file (`amd64`, `arm64`, …); must
    /// not be empty.
    #[serde(deserialize_with = "null_default")]
    pub architecture: String,
    /// Operating system, `linux`.
    #[serde(deserialize_with = "null_default")]
    pub os: String,
    /// Digest of the SIF file, `sha256:<hex>`: the image's single layer.
    #[serde(deserialize_with = "null_default")]
    pub rootfs: String,
    /// Description given at push time. Left out when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    /// Whether the SIF file carries a signature.
    #[serde(deserialize_with = "null_default")]
    pub signed: bool,
    /// Whether the SIF file's primary partition is encrypted.
    #[serde(deserialize_with = "null_default")]
    pub encrypted: bool,
}

/// The platform an image manifest is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Platform {
    /// CPU architecture, e.g. `amd64`.
    #[serde(deserialize_with = "null_default")]
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    #[serde(deserialize_with = "null_default")]
    pub os: String,
}

/// A reference to content in an OCI registry: its media type, digest and
/// size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(deserialize_with = "null_default")]
    pub media_type: String,
    /// Digest of the content, `<algorithm>:<hex>`.
    #[serde(deserialize_with = "null_default")]
    pub digest: String,
    /// Size of the content in bytes.
    #[serde(deserialize_with = "null_default")]
    pub size: i64,
    /// Arbitrary metadata. Left out when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of the referenced manifest (in an index). Left out when
    /// `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An OCI image manifest: one config blob and the layers of an image. A
/// SIF image has a [`MEDIA_TYPE_SIF_CONFIG`] config and exactly one
/// [`MEDIA_TYPE_SIF_LAYER`] layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageManifest {
    /// Schema version, 2.
    #[serde(deserialize_with = "null_default")]
    pub schema_version: i64,
    /// Media type of the manifest itself, [`MEDIA_TYPE_OCI_MANIFEST`] when
    /// given. Left out when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    #[serde(deserialize_with = "null_default")]
    pub config: Descriptor,
    /// The layers, in order.
    #[serde(deserialize_with = "null_default")]
    pub layers: Vec<Descriptor>,
    /// Arbitrary metadata. Left out when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index: a list of manifests, one per platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageIndex {
    /// Schema version, 2.
    #[serde(deserialize_with = "null_default")]
    pub schema_version: i64,
    /// Media type of the index itself, [`MEDIA_TYPE_OCI_INDEX`]. Left out
    /// when empty.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    /// The manifests, with their platforms.
    #[serde(deserialize_with = "null_default")]
    pub manifests: Vec<Descriptor>,
    /// Arbitrary metadata. Left out when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}
