//! The library's objects: entities, collections, containers, images, their
//! tags, and the uploads in progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use library_model::{Collection, Container, Entity, GoTime, Image, QuotaResponse, SearchResults};

use crate::store::Data;

/// The architecture assumed when none is known.
pub(crate) const DEFAULT_ARCH: &str = "amd64";

/// Quota reported after uploads: 100 GiB.
const QUOTA_TOTAL: i64 = 100 << 30;

/// An error answer: status and message.
pub(crate) type ApiError = (u16, String);

pub(crate) fn err(code: u16, msg: impl Into<String>) -> ApiError {
    (code, msg.into())
}

/// `entity/collection/container` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    pub(crate) entity: String,
    pub(crate) collection: String,
    pub(crate) container: String,
}

impl Path {
    pub(crate) fn new(entity: &str, collection: &str, container: &str) -> Path {
        Path {
            entity: entity.to_string(),
            collection: collection.to_string(),
            container: container.to_string(),
        }
    }

    /// Parses `a/b/c`; a single name `c` means `library/default/c` and two
    /// names `a/c` mean `a/default/c`.
    pub(crate) fn parse(s: &str) -> Option<Path> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        match parts.as_slice() {
            [c] => Some(Path::new("library", "default", c)),
            [a, c] => Some(Path::new(a, "default", c)),
            [a, b, c] => Some(Path::new(a, b, c)),
            _ => None,
        }
    }

    /// Parses `a/b/c[:tag]`; the tag defaults to `latest`.
    pub(crate) fn parse_with_tag(s: &str) -> Option<(Path, String)> {
        let (path, tag) = match s.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, t),
            _ => (s, "latest"),
        };
        if tag.is_empty() {
            return None;
        }
        Some((Path::parse(path)?, tag.to_string()))
    }
}

/// A single-part v2 upload in progress.
#[derive(Debug, Clone)]
pub(crate) struct SingleUpload {
    pub(crate) image_id: String,
    pub(crate) size: u64,
    pub(crate) md5: String,
    pub(crate) sha256: String,
    pub(crate) sign_sha256: bool,
    /// The bytes, once PUT.
    pub(crate) data: Option<Data>,
    /// The S3 object key, in S3 mode.
    pub(crate) s3_key: Option<String>,
}

/// One part of a multipart upload.
#[derive(Debug, Clone)]
pub(crate) struct StoredPart {
    pub(crate) data: Data,
    pub(crate) etag: String,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub(crate) struct MultipartState {
    pub(crate) image_id: String,
    pub(crate) size: u64,
    pub(crate) part_size: u64,
    pub(crate) total_parts: u64,
    pub(crate) s3_compliant: bool,
    /// `sha256sum` announced per part number.
    pub(crate) announced: HashMap<u64, String>,
    pub(crate) parts: BTreeMap<u64, StoredPart>,
    /// In S3 mode: the object key and the S3 upload ID.
    pub(crate) s3: Option<(String, String)>,
}

impl MultipartState {
    /// Expected size of part `n` (from 1).
    pub(crate) fn part_len(&self, n: u64) -> u64 {
        let start = (n - 1) * self.part_size;
        self.part_size.min(self.size.saturating_sub(start))
    }
}

/// Everything the server knows.
#[derive(Debug)]
pub(crate) struct Db {
    id_prefix: u32,
    counter: u64,
    pub(crate) entities: BTreeMap<String, Entity>,
    pub(crate) collections: BTreeMap<String, Collection>,
    pub(crate) containers: BTreeMap<String, Container>,
    pub(crate) images: BTreeMap<String, Image>,
    pub(crate) blobs: HashMap<String, Data>,
    pub(crate) uploads: HashMap<String, SingleUpload>,
    pub(crate) multiparts: HashMap<String, MultipartState>,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            id_prefix: fastrand::u32(..),
            counter: 0,
            entities: BTreeMap::new(),
            collections: BTreeMap::new(),
            containers: BTreeMap::new(),
            images: BTreeMap::new(),
            blobs: HashMap::new(),
            uploads: HashMap::new(),
            multiparts: HashMap::new(),
        }
    }
}

/// A random lowercase hex string of `n` characters.
pub(crate) fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
        .collect()
}

impl Db {
    /// A new 24-digit hex ID (the shape of a MongoDB ObjectID), increasing
    /// so that maps keyed by ID iterate in creation order.
    pub(crate) fn new_id(&mut self) -> String {
        self.counter += 1;
        format!("{:08x}{:016x}", self.id_prefix, self.counter)
    }

    pub(crate) fn blob(&self, image_id: &str) -> Option<Data> {
        self.blobs.get(image_id).cloned()
    }

    pub(crate) fn image(&self, id: &str) -> Option<&Image> {
        self.images.get(id)
    }

    pub(crate) fn image_mut(&mut self, id: &str) -> Option<&mut Image> {
        self.images.get_mut(id)
    }

    pub(crate) fn entity_by_name(&self, name: &str) -> Option<&Entity> {
        self.entities.values().find(|e| e.name == name)
    }

    pub(crate) fn find_collection(&self, entity: &str, collection: &str) -> Option<&Collection> {
        let e = self.entity_by_name(entity)?;
        self.collections
            .values()
            .find(|c| c.entity == e.id && c.name == collection)
    }

    pub(crate) fn find_container(&self, path: &Path) -> Option<&Container> {
        let col = self.find_collection(&path.entity, &path.collection)?;
        self.containers
            .values()
            .find(|c| c.collection == col.id && c.name == path.container)
    }

    /// The image of a container for a tag or a hash (`sha256.…`,
    /// `sif.…`) and an architecture.
    pub(crate) fn find_image(&self, path: &Path, tag: &str, arch: Option<&str>) -> Option<&Image> {
        let container = self.find_container(path)?;
        let arch = arch.filter(|a| !a.is_empty());
        if tag.starts_with("sha256.") || tag.starts_with("sif.") {
            let images = container.images.as_deref().unwrap_or_default();
            return images
                .iter()
                .filter_map(|id| self.images.get(id))
                .find(|i| {
                    i.hash == tag
                        && match (arch, i.architecture.as_deref()) {
                            (Some(a), Some(b)) => a == b,
                            _ => true,
                        }
                });
        }
        let by_arch = arch
            .and_then(|a| container.arch_tags.as_ref()?.get(a)?.get(tag))
            .and_then(|id| self.images.get(id));
        if by_arch.is_some() {
            return by_arch;
        }
        let plain = container
            .image_tags
            .as_ref()?
            .get(tag)
            .and_then(|id| self.images.get(id))?;
        match (arch, plain.architecture.as_deref()) {
            (Some(a), Some(b)) if a != b => None,
            _ => Some(plain),
        }
    }

    pub(crate) fn create_entity(&mut self, mut body: Entity) -> Result<Entity, ApiError> {
        if body.name.is_empty() {
            return Err(err(400, "entity name is required"));
        }
        if self.entity_by_name(&body.name).is_some() {
            return Err(err(409, format!("entity {} already exists", body.name)));
        }
        body.id = self.new_id();
        body.created_at = GoTime::now_utc();
        body.updated_at = GoTime::ZERO;
        body.deleted_at = GoTime::ZERO;
        body.deleted = false;
        body.collections = Some(Vec::new());
        body.size = 0;
        self.entities.insert(body.id.clone(), body.clone());
        Ok(body)
    }

    pub(crate) fn create_collection(
        &mut self,
        mut body: Collection,
    ) -> Result<Collection, ApiError> {
        if body.name.is_empty() {
            return Err(err(400, "collection name is required"));
        }
        let Some(entity) = self.entities.get(&body.entity) else {
            return Err(err(400, format!("no entity with ID {:?}", body.entity)));
        };
        let entity_id = entity.id.clone();
        if self
            .collections
            .values()
            .any(|c| c.entity == entity_id && c.name == body.name)
        {
            return Err(err(409, format!("collection {} already exists", body.name)));
        }
        body.id = self.new_id();
        body.created_at = GoTime::now_utc();
        body.updated_at = GoTime::ZERO;
        body.deleted_at = GoTime::ZERO;
        body.deleted = false;
        body.containers = Some(Vec::new());
        body.size = 0;
        body.entity_name.clear();
        if let Some(e) = self.entities.get_mut(&entity_id) {
            e.collections
                .get_or_insert_with(Vec::new)
                .push(body.id.clone());
        }
        self.collections.insert(body.id.clone(), body.clone());
        Ok(self.present_collection(&body))
    }

    pub(crate) fn create_container(&mut self, mut body: Container) -> Result<Container, ApiError> {
        if body.name.is_empty() {
            return Err(err(400, "container name is required"));
        }
        if !self.collections.contains_key(&body.collection) {
            return Err(err(
                400,
                format!("no collection with ID {:?}", body.collection),
            ));
        }
        if self
            .containers
            .values()
            .any(|c| c.collection == body.collection && c.name == body.name)
        {
            return Err(err(409, format!("container {} already exists", body.name)));
        }
        body.id = self.new_id();
        body.created_at = GoTime::now_utc();
        body.updated_at = GoTime::ZERO;
        body.deleted_at = GoTime::ZERO;
        body.deleted = false;
        body.images = Some(Vec::new());
        body.image_tags = Some(BTreeMap::new());
        body.arch_tags = Some(BTreeMap::new());
        body.size = 0;
        body.download_count = 0;
        body.entity.clear();
        body.entity_name.clear();
        body.collection_name.clear();
        if let Some(c) = self.collections.get_mut(&body.collection) {
            c.containers
                .get_or_insert_with(Vec::new)
                .push(body.id.clone());
        }
        self.containers.insert(body.id.clone(), body.clone());
        Ok(self.present_container(&body))
    }

    pub(crate) fn create_image(&mut self, mut body: Image) -> Result<Image, ApiError> {
        if !self.containers.contains_key(&body.container) {
            return Err(err(
                400,
                format!("no container with ID {:?}", body.container),
            ));
        }
        if body.hash.is_empty() {
            return Err(err(400, "image hash is required"));
        }
        let container = &self.containers[&body.container];
        let exists = container
            .images
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.images.get(id))
            .any(|i| i.hash == body.hash && i.architecture == body.architecture);
        if exists {
            return Err(err(409, format!("image {} already exists", body.hash)));
        }
        body.architecture = body.architecture.filter(|a| !a.is_empty());
        body.id = self.new_id();
        body.created_at = GoTime::now_utc();
        body.updated_at = GoTime::ZERO;
        body.deleted_at = GoTime::ZERO;
        body.deleted = false;
        body.uploaded = false;
        body.size = 0;
        body.upload_state = None;
        for computed in [
            &mut body.entity,
            &mut body.entity_name,
            &mut body.collection,
            &mut body.collection_name,
            &mut body.container_name,
            &mut body.container_description,
        ] {
            computed.clear();
        }
        body.tags.clear();
        if let Some(c) = self.containers.get_mut(&body.container) {
            c.images.get_or_insert_with(Vec::new).push(body.id.clone());
        }
        self.images.insert(body.id.clone(), body.clone());
        Ok(self.present_image(&body))
    }

    /// Creates the entity, collection and container of `path` as needed;
    /// returns the container's ID.
    pub(crate) fn ensure_container(&mut self, path: &Path) -> String {
        if let Some(c) = self.find_container(path) {
            return c.id.clone();
        }
        let entity_id = match self.entity_by_name(&path.entity) {
            Some(e) => e.id.clone(),
            None => {
                let e = Entity {
                    name: path.entity.clone(),
                    description: "No description".into(),
                    ..Default::default()
                };
                self.create_entity(e).map(|e| e.id).unwrap_or_default()
            }
        };
        let collection_id = match self.find_collection(&path.entity, &path.collection) {
            Some(c) => c.id.clone(),
            None => {
                let c = Collection {
                    name: path.collection.clone(),
                    description: "No description".into(),
                    entity: entity_id,
                    ..Default::default()
                };
                self.create_collection(c).map(|c| c.id).unwrap_or_default()
            }
        };
        let c = Container {
            name: path.container.clone(),
            description: "No description".into(),
            collection: collection_id,
            ..Default::default()
        };
        self.create_container(c).map(|c| c.id).unwrap_or_default()
    }

    /// Adds an uploaded image with tags; returns its ID.
    pub(crate) fn seed_image(
        &mut self,
        path: &Path,
        tags: &[&str],
        arch: &str,
        hash: String,
        data: Data,
    ) -> String {
        let container_id = self.ensure_container(path);
        let existing = self.containers[&container_id]
            .images
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.images.get(id))
            .find(|i| i.hash == hash && i.architecture.as_deref() == Some(arch))
            .map(|i| i.id.clone());
        let id = match existing {
            Some(id) => id,
            None => {
                let image = Image {
                    hash,
                    description: "No description".into(),
                    container: container_id.clone(),
                    architecture: Some(arch.to_string()),
                    ..Default::default()
                };
                self.create_image(image).map(|i| i.id).unwrap_or_default()
            }
        };
        self.mark_uploaded(&id, data);
        for tag in tags {
            let _ = self.set_tag(&container_id, Some(arch), tag, &id);
        }
        id
    }

    /// Stores an image's bytes and marks it uploaded.
    pub(crate) fn mark_uploaded(&mut self, image_id: &str, data: Data) {
        let size = data.len() as i64;
        let Some(image) = self.images.get_mut(image_id) else {
            return;
        };
        let old = if image.uploaded { image.size } else { 0 };
        image.size = size;
        image.uploaded = true;
        image.updated_at = GoTime::now_utc();
        let container_id = image.container.clone();
        self.blobs.insert(image_id.to_string(), data);
        self.add_size(&container_id, size - old);
    }

    fn add_size(&mut self, container_id: &str, delta: i64) {
        let Some(c) = self.containers.get_mut(container_id) else {
            return;
        };
        c.size += delta;
        let col_id = c.collection.clone();
        let Some(col) = self.collections.get_mut(&col_id) else {
            return;
        };
        col.size += delta;
        let ent_id = col.entity.clone();
        if let Some(e) = self.entities.get_mut(&ent_id) {
            e.size += delta;
        }
    }

    /// Points a tag at an image: per architecture when `arch` is given
    /// (else the image's architecture, else amd64), and without
    /// architecture.
    pub(crate) fn set_tag(
        &mut self,
        container_id: &str,
        arch: Option<&str>,
        tag: &str,
        image_id: &str,
    ) -> Result<(), ApiError> {
        if tag.is_empty() {
            return Err(err(400, "tag is required"));
        }
        if !self.containers.contains_key(container_id) {
            return Err(err(404, format!("container {container_id} not found")));
        }
        let Some(image) = self.images.get_mut(image_id) else {
            return Err(err(400, format!("image {image_id} not found")));
        };
        if image.container != container_id {
            return Err(err(
                400,
                format!("image {image_id} is not in container {container_id}"),
            ));
        }
        let arch = match arch.filter(|a| !a.is_empty()) {
            Some(a) => {
                if image.architecture.is_none() {
                    image.architecture = Some(a.to_string());
                }
                a.to_string()
            }
            None => image
                .architecture
                .clone()
                .unwrap_or_else(|| DEFAULT_ARCH.to_string()),
        };
        let c = self
            .containers
            .get_mut(container_id)
            .expect("checked above");
        c.image_tags
            .get_or_insert_with(BTreeMap::new)
            .insert(tag.to_string(), image_id.to_string());
        c.arch_tags
            .get_or_insert_with(BTreeMap::new)
            .entry(arch)
            .or_default()
            .insert(tag.to_string(), image_id.to_string());
        c.updated_at = GoTime::now_utc();
        Ok(())
    }

    /// Removes an image, its tags and its bytes.
    pub(crate) fn delete_image(&mut self, image_id: &str) -> Option<Image> {
        let image = self.images.get(image_id)?.clone();
        let shown = self.present_image(&image);
        self.images.remove(image_id);
        let size = if image.uploaded { image.size } else { 0 };
        self.blobs.remove(image_id);
        if let Some(c) = self.containers.get_mut(&image.container) {
            if let Some(ids) = c.images.as_mut() {
                ids.retain(|i| i != image_id);
            }
            if let Some(tags) = c.image_tags.as_mut() {
                tags.retain(|_, id| id != image_id);
            }
            if let Some(arch_tags) = c.arch_tags.as_mut() {
                for tags in arch_tags.values_mut() {
                    tags.retain(|_, id| id != image_id);
                }
                arch_tags.retain(|_, tags| !tags.is_empty());
            }
        }
        self.add_size(&image.container, -size);
        Some(shown)
    }

    pub(crate) fn count_download(&mut self, image_id: &str) {
        let Some(image) = self.images.get(image_id) else {
            return;
        };
        if let Some(c) = self.containers.get_mut(&image.container.clone()) {
            c.download_count += 1;
        }
    }

    pub(crate) fn quota(&self) -> QuotaResponse {
        QuotaResponse {
            quota_total_bytes: QUOTA_TOTAL,
            quota_usage_bytes: self
                .images
                .values()
                .filter(|i| i.uploaded)
                .map(|i| i.size)
                .sum(),
        }
    }

    /// `<entity>/<collection>/<container>` of an image.
    pub(crate) fn image_path(&self, image: &Image) -> Option<Path> {
        let c = self.containers.get(&image.container)?;
        let col = self.collections.get(&c.collection)?;
        let e = self.entities.get(&col.entity)?;
        Some(Path::new(&e.name, &col.name, &c.name))
    }

    pub(crate) fn present_collection(&self, c: &Collection) -> Collection {
        let mut c = c.clone();
        if let Some(e) = self.entities.get(&c.entity) {
            c.entity_name = e.name.clone();
        }
        c
    }

    pub(crate) fn present_container(&self, c: &Container) -> Container {
        let mut c = c.clone();
        if let Some(col) = self.collections.get(&c.collection) {
            c.collection_name = col.name.clone();
            c.entity = col.entity.clone();
            if let Some(e) = self.entities.get(&col.entity) {
                c.entity_name = e.name.clone();
            }
        }
        c
    }

    pub(crate) fn present_image(&self, image: &Image) -> Image {
        let mut i = image.clone();
        if let Some(c) = self.containers.get(&i.container) {
            let c = self.present_container(c);
            i.container_name = c.name.clone();
            i.container_description = c.description.clone();
            i.container_stars = c.stars;
            i.container_downloads = c.download_count;
            i.collection = c.collection.clone();
            i.collection_name = c.collection_name.clone();
            i.entity = c.entity.clone();
            i.entity_name = c.entity_name.clone();
            let mut tags = BTreeSet::new();
            if let Some(t) = &c.image_tags {
                tags.extend(
                    t.iter()
                        .filter(|(_, id)| **id == i.id)
                        .map(|(t, _)| t.clone()),
                );
            }
            if let (Some(at), Some(arch)) = (&c.arch_tags, &i.architecture) {
                if let Some(t) = at.get(arch) {
                    tags.extend(
                        t.iter()
                            .filter(|(_, id)| **id == i.id)
                            .map(|(t, _)| t.clone()),
                    );
                }
            }
            i.tags = tags.into_iter().collect();
        }
        i
    }

    /// Case-insensitive substring search. With `arch` (a comma-separated
    /// list) only images of those architectures are returned; `signed`
    /// filters images by their `signed` flag.
    pub(crate) fn search(
        &self,
        value: &str,
        arch: Option<&str>,
        signed: Option<bool>,
    ) -> SearchResults {
        let needle = value.to_lowercase();
        let hit = |s: &str| s.to_lowercase().contains(&needle);
        let arches: Option<Vec<&str>> = arch.filter(|a| !a.is_empty()).map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect()
        });
        let images: Vec<Image> = self
            .images
            .values()
            .map(|i| self.present_image(i))
            .filter(|i| hit(&i.description) || hit(&i.container_name) || hit(&i.hash))
            .filter(|i| match &arches {
                Some(list) => i.architecture.as_deref().is_some_and(|a| list.contains(&a)),
                None => true,
            })
            .filter(|i| match signed {
                Some(true) => i.signed == Some(true),
                Some(false) => i.signed != Some(true),
                None => true,
            })
            .collect();
        if arches.is_some() {
            return SearchResults {
                entities: Some(Vec::new()),
                collections: Some(Vec::new()),
                containers: Some(Vec::new()),
                images: Some(images),
            };
        }
        SearchResults {
            entities: Some(
                self.entities
                    .values()
                    .filter(|e| hit(&e.name))
                    .cloned()
                    .collect(),
            ),
            collections: Some(
                self.collections
                    .values()
                    .filter(|c| hit(&c.name))
                    .map(|c| self.present_collection(c))
                    .collect(),
            ),
            containers: Some(
                self.containers
                    .values()
                    .filter(|c| hit(&c.name))
                    .map(|c| self.present_container(c))
                    .collect(),
            ),
            images: Some(images),
        }
    }
}
