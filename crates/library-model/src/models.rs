//! The objects of the library: entities, collections, containers, images
//! and blobs, and the tag maps that link containers to images.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decode::null_default;
use crate::gotime::GoTime;

/// The names of the library's object types, in the order the library lists
/// them.
pub const LIBRARY_MODELS: [&str; 5] = ["Entity", "Collection", "Container", "Image", "Blob"];

/// Tag name to image ID, e.g. `{"latest": "5cd2e2fe5a9e4f3b1c2d3e4f"}`.
///
/// A `BTreeMap`, so tags iterate and encode in sorted order.
pub type TagMap = BTreeMap<String, String>;

/// Architecture to [`TagMap`], e.g.
/// `{"amd64": {"latest": "…"}, "arm64": {"latest": "…"}}`.
pub type ArchTagMap = BTreeMap<String, TagMap>;

/// Declares a library object: the audit fields every object carries at the
/// top level of its JSON come first, then the object's own fields; adds the
/// `id()` and `is_deleted()` accessors.
macro_rules! library_model {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $( $(#[$field_attr:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        pub struct $name {
            /// Soft-deletion marker: the library keeps deleted objects and
            /// sets this flag. Always written.
            #[serde(deserialize_with = "null_default")]
            pub deleted: bool,
            /// ID of the user who created the object. Always written, empty
            /// when unknown.
            #[serde(deserialize_with = "null_default")]
            pub created_by: String,
            /// When the object was created. Always written; the zero time
            /// when unset.
            pub created_at: GoTime,
            /// ID of the user who last changed the object. Left out when
            /// empty.
            #[serde(
                deserialize_with = "null_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub updated_by: String,
            /// When the object was last changed. Always written; the zero
            /// time (or `null`, from some servers) when never changed.
            pub updated_at: GoTime,
            /// ID of the user who deleted the object. Left out when empty.
            #[serde(
                deserialize_with = "null_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub deleted_by: String,
            /// When the object was deleted. Always written; the zero time
            /// when not deleted.
            pub deleted_at: GoTime,
            /// ID of the user or group that owns the object. Left out when
            /// empty.
            #[serde(
                deserialize_with = "null_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub owner: String,
            $( $(#[$field_attr])* pub $field: $ty, )*
        }

        impl $name {
            /// The object's ID, as assigned by the library.
            pub fn id(&self) -> &str {
                &self.id
            }

            /// True when the library has soft-deleted the object.
            pub fn is_deleted(&self) -> bool {
                self.deleted
            }
        }
    };
}

library_model! {
    /// The top level of the library: a user or a group, which holds
    /// collections. `library://<name>` addresses it.
    pub struct Entity {
        /// The entity's ID.
        #[serde(deserialize_with = "null_default")]
        pub id: String,
        /// The entity's name, the first part of a library path (the user or
        /// group name).
        #[serde(deserialize_with = "null_default")]
        pub name: String,
        /// Free-text description.
        #[serde(deserialize_with = "null_default")]
        pub description: String,
        /// IDs of the entity's collections; `None` is written as `null`.
        pub collections: Option<Vec<String>>,
        /// Bytes used by the entity's images.
        #[serde(deserialize_with = "null_default")]
        pub size: i64,
        /// Storage quota of the entity, in bytes.
        #[serde(deserialize_with = "null_default")]
        pub quota: i64,
        /// When true, collections created in this entity are private from
        /// the start.
        #[serde(deserialize_with = "null_default")]
        pub default_private: bool,
        /// A string free for integrations; the library itself does not use
        /// it.
        #[serde(deserialize_with = "null_default")]
        pub custom_data: String,
    }
}

impl Entity {
    /// The entity's URI: `library://<name>`.
    pub fn library_uri(&self) -> String {
        format!("library://{}", self.name)
    }
}

library_model! {
    /// The second level of the library: a collection of containers inside
    /// an entity. `library://<entity>/<name>` addresses it.
    pub struct Collection {
        /// The collection's ID.
        #[serde(deserialize_with = "null_default")]
        pub id: String,
        /// The collection's name, the second part of a library path.
        #[serde(deserialize_with = "null_default")]
        pub name: String,
        /// Free-text description.
        #[serde(deserialize_with = "null_default")]
        pub description: String,
        /// ID of the entity holding the collection.
        #[serde(deserialize_with = "null_default")]
        pub entity: String,
        /// IDs of the collection's containers; `None` is written as `null`.
        pub containers: Option<Vec<String>>,
        /// Bytes used by the collection's images.
        #[serde(deserialize_with = "null_default")]
        pub size: i64,
        /// Whether only the owner may see the collection.
        #[serde(deserialize_with = "null_default")]
        pub private: bool,
        /// A string free for integrations; the library itself does not use
        /// it.
        #[serde(deserialize_with = "null_default")]
        pub custom_data: String,
        /// Name of the holding entity. Computed by the server for responses
        /// only (not stored); left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub entity_name: String,
    }
}

impl Collection {
    /// The collection's URI: `library://<entityName>/<name>`.
    pub fn library_uri(&self) -> String {
        format!("library://{}/{}", self.entity_name, self.name)
    }
}

library_model! {
    /// The third level of the library: a named container inside a
    /// collection, holding the images of its versions and architectures.
    /// `library://<entity>/<collection>/<name>` addresses it.
    pub struct Container {
        /// The container's ID.
        #[serde(deserialize_with = "null_default")]
        pub id: String,
        /// The container's name, the last part of a library path.
        #[serde(deserialize_with = "null_default")]
        pub name: String,
        /// Short description.
        #[serde(deserialize_with = "null_default")]
        pub description: String,
        /// Long description.
        #[serde(deserialize_with = "null_default")]
        pub full_description: String,
        /// ID of the collection holding the container.
        #[serde(deserialize_with = "null_default")]
        pub collection: String,
        /// IDs of the container's images; `None` is written as `null`.
        pub images: Option<Vec<String>>,
        /// Tags without architecture (tag to image ID), kept by the library
        /// for old clients (Singularity 3.3 and before); `None` is written
        /// as `null`.
        pub image_tags: Option<TagMap>,
        /// Tags per architecture (architecture to tag to image ID), used by
        /// current clients; `None` is written as `null`.
        pub arch_tags: Option<ArchTagMap>,
        /// Bytes used by the container's images.
        #[serde(deserialize_with = "null_default")]
        pub size: i64,
        /// How many times the container's images were downloaded.
        #[serde(deserialize_with = "null_default")]
        pub download_count: i64,
        /// How many users starred the container.
        #[serde(deserialize_with = "null_default")]
        pub stars: i64,
        /// Whether only the owner may see the container.
        #[serde(deserialize_with = "null_default")]
        pub private: bool,
        /// Whether the container refuses new images and tag changes.
        #[serde(deserialize_with = "null_default")]
        pub read_only: bool,
        /// A string free for integrations; the library itself does not use
        /// it.
        #[serde(deserialize_with = "null_default")]
        pub custom_data: String,
        /// ID of the entity holding the collection. Computed by the server
        /// for responses only; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub entity: String,
        /// Name of that entity. Computed; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub entity_name: String,
        /// Name of the holding collection. Computed; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub collection_name: String,
    }
}

impl Container {
    /// The container's URI: `library://<entityName>/<collectionName>/<name>`.
    pub fn library_uri(&self) -> String {
        format!(
            "library://{}/{}/{}",
            self.entity_name, self.collection_name, self.name
        )
    }

    /// The container's tags (the keys of [`image_tags`](Self::image_tags)),
    /// sorted and joined by single spaces; empty when there are none.
    pub fn tag_list(&self) -> String {
        // A BTreeMap iterates its keys in byte order, the order Go's
        // sort.Strings gives.
        self.image_tags
            .iter()
            .flat_map(|tags| tags.keys())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

library_model! {
    /// One image file of a container (one version for one architecture),
    /// identified by its hash.
    pub struct Image {
        /// The image's ID.
        #[serde(deserialize_with = "null_default")]
        pub id: String,
        /// Hash of the image file: `sha256.<hex>` (or `sif.<uuid>` for
        /// older images).
        #[serde(deserialize_with = "null_default")]
        pub hash: String,
        /// Free-text description.
        #[serde(deserialize_with = "null_default")]
        pub description: String,
        /// ID of the container holding the image.
        #[serde(deserialize_with = "null_default")]
        pub container: String,
        /// ID of the blob storing the file. Left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub blob: String,
        /// Size of the image file in bytes (some servers send `null`, read
        /// as 0).
        #[serde(deserialize_with = "null_default")]
        pub size: i64,
        /// Whether the file has been uploaded completely. See also
        /// [`upload_state`](Self::upload_state) and
        /// [`is_uploaded`](Self::is_uploaded).
        #[serde(deserialize_with = "null_default")]
        pub uploaded: bool,
        /// Whether the SIF file carries a signature, when known. Left out
        /// when `None`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub signed: Option<bool>,
        /// The image's architecture (`amd64`, `arm64`, …), when known. JSON
        /// key `arch`; left out when `None`.
        #[serde(rename = "arch", skip_serializing_if = "Option::is_none")]
        pub architecture: Option<String>,
        /// Fingerprints of the keys that signed the image. Left out when
        /// empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "Vec::is_empty"
        )]
        pub fingerprints: Vec<String>,
        /// Whether the image's root file system is encrypted, when known.
        /// Left out when `None`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub encrypted: Option<bool>,
        /// A string free for integrations; the library itself does not use
        /// it.
        #[serde(deserialize_with = "null_default")]
        pub custom_data: String,
        /// ID of the entity holding the image. Computed by the server for
        /// responses only (not stored); left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub entity: String,
        /// Name of that entity. Computed; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub entity_name: String,
        /// ID of the collection holding the image. Computed; left out when
        /// empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub collection: String,
        /// Name of that collection. Computed; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub collection_name: String,
        /// Name of the holding container. Computed; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub container_name: String,
        /// Tags pointing at this image. Computed; left out when empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "Vec::is_empty"
        )]
        pub tags: Vec<String>,
        /// Description of the holding container. Computed; left out when
        /// empty.
        #[serde(
            deserialize_with = "null_default",
            skip_serializing_if = "String::is_empty"
        )]
        pub container_description: String,
        /// Stars of the holding container. Computed; always written.
        #[serde(deserialize_with = "null_default")]
        pub container_stars: i64,
        /// Downloads of the holding container. Computed; always written.
        #[serde(deserialize_with = "null_default")]
        pub container_downloads: i64,
        /// Upload state sent by some servers (Hinkskalle) instead of
        /// `uploaded`: `"initialized"` or `"completed"`. Not part of the
        /// reference model; left out when `None`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub upload_state: Option<String>,
    }
}

impl Image {
    /// True when the image file is on the server: `uploaded` is set, or
    /// the server reports `uploadState: "completed"`.
    pub fn is_uploaded(&self) -> bool {
        self.uploaded || self.upload_state.as_deref() == Some("completed")
    }
}

library_model! {
    /// Binary data (an image file) in the library's object store, in
    /// bucket and key terms.
    pub struct Blob {
        /// The blob's ID.
        #[serde(deserialize_with = "null_default")]
        pub id: String,
        /// Object-store bucket holding the data.
        #[serde(deserialize_with = "null_default")]
        pub bucket: String,
        /// Object-store key of the data.
        #[serde(deserialize_with = "null_default")]
        pub key: String,
        /// Size of the data in bytes.
        #[serde(deserialize_with = "null_default")]
        pub size: i64,
        /// Hash of the content.
        #[serde(deserialize_with = "null_default")]
        pub content_hash: String,
        /// Storage status as reported by the library.
        #[serde(deserialize_with = "null_default")]
        pub status: String,
    }
}

/// Body of `POST v1/tags/<containerID>`: point a tag (without architecture)
/// at an image. The keys are capitalised: `{"Tag": …, "ImageID": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageTag {
    /// The tag name, e.g. `latest`.
    #[serde(rename = "Tag", deserialize_with = "null_default")]
    pub tag: String,
    /// ID of the image the tag points at.
    #[serde(rename = "ImageID", deserialize_with = "null_default")]
    pub image_id: String,
}

/// Body of `POST v2/tags/<containerID>`: point a tag of one architecture at
/// an image. The keys are capitalised: `{"Arch": …, "Tag": …, "ImageID": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchImageTag {
    /// The architecture, e.g. `amd64`.
    #[serde(rename = "Arch", deserialize_with = "null_default")]
    pub arch: String,
    /// The tag name, e.g. `latest`.
    #[serde(rename = "Tag", deserialize_with = "null_default")]
    pub tag: String,
    /// ID of the image the tag points at.
    #[serde(rename = "ImageID", deserialize_with = "null_default")]
    pub image_id: String,
}

/// The payload of `GET v1/search`: every matching object, by kind. A kind
/// with no match may be `null` (`None`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchResults {
    /// Matching entities (JSON key `entity`).
    #[serde(rename = "entity")]
    pub entities: Option<Vec<Entity>>,
    /// Matching collections (JSON key `collection`).
    #[serde(rename = "collection")]
    pub collections: Option<Vec<Collection>>,
    /// Matching containers (JSON key `container`).
    #[serde(rename = "container")]
    pub containers: Option<Vec<Container>>,
    /// Matching images (JSON key `image`).
    #[serde(rename = "image")]
    pub images: Option<Vec<Image>>,
}
