//! The library's JSON endpoints: version, objects, images, tags, search.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use library_model::{
    ArchImageTag, ArchTagMap, Collection, Container, Entity, Image, ImageTag, SearchResults,
    TagMap, VersionInfo,
};

use crate::client::Client;
use crate::envelope::Envelope;
use crate::error::{Error, Result};

/// The arguments of a search: `value` (at least 3 characters, matched
/// against the names of entities, collections, containers and images) and
/// optional filters. Every argument is sent as a query parameter.
///
/// ```
/// use library_client::SearchArgs;
/// let args = SearchArgs::new("alpine").arch("amd64").signed(true);
/// assert_eq!(args.get("signed"), Some("true"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct SearchArgs {
    args: BTreeMap<String, String>,
}

impl SearchArgs {
    /// Search for `value`.
    pub fn new(value: impl Into<String>) -> SearchArgs {
        SearchArgs::default().arg("value", value)
    }

    /// Arguments as the reference client takes them: a map whose `value`
    /// key is required.
    pub fn from_map<K: Into<String>, V: Into<String>>(
        map: impl IntoIterator<Item = (K, V)>,
    ) -> SearchArgs {
        SearchArgs {
            args: map.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// Only images of these architectures (comma-separated for several).
    pub fn arch(self, arch: impl Into<String>) -> SearchArgs {
        self.arg("arch", arch)
    }

    /// Only signed (or only unsigned) images.
    pub fn signed(self, signed: bool) -> SearchArgs {
        self.arg("signed", if signed { "true" } else { "false" })
    }

    /// Any other argument the server understands.
    pub fn arg(mut self, key: impl Into<String>, value: impl Into<String>) -> SearchArgs {
        self.args.insert(key.into(), value.into());
        self
    }

    /// The value of an argument.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args.get(key).map(String::as_str)
    }

    fn check(&self) -> Result<()> {
        match self.args.get("value") {
            None => Err(Error::bad_request(
                "search query ('value') must be specified",
            )),
            Some(v) if v.len() < 3 => Err(Error::bad_request(format!(
                "bad query {v:?}: search for at least 3 characters"
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// Reject a container path that is not 1 to 3 plain components: no empty
/// part, no `.` or `..`, no escapes or separators inside a part.
pub(crate) fn check_image_path(path: &str) -> Result<()> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 3 {
        return Err(Error::bad_request(format!(
            "image path {path:?} has more than 3 components (entity/collection/container)"
        )));
    }
    for p in &parts {
        if p.is_empty() || *p == "." || *p == ".." || !p.bytes().all(is_name_byte) {
            return Err(Error::bad_request(format!(
                "image path {path:?}: component {p:?} is not a name (letters, digits, . _ -)"
            )));
        }
    }
    Ok(())
}

/// Reject a tag that cannot be a tag: empty, or with separators or escapes.
pub(crate) fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty()
        || tag == "."
        || tag == ".."
        || !tag.bytes().all(|b| is_name_byte(b) || b == b'+')
    {
        return Err(Error::bad_request(format!(
            "invalid tag {tag:?} (letters, digits, . _ - +)"
        )));
    }
    Ok(())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Split `path:tag` and check both.
fn check_image_ref(image_ref: &str) -> Result<()> {
    let r = image_ref.strip_prefix("library://").unwrap_or(image_ref);
    match r.split_once(':') {
        Some((path, tag)) => {
            check_image_path(path)?;
            check_tag(tag)
        }
        None => check_image_path(r),
    }
}

use library_model::version_at_least;

impl Client {
    /// The server's version (`GET version`). Asked once per client: later
    /// calls answer from the cache.
    pub async fn get_version(&self) -> Result<VersionInfo> {
        let v = self
            .inner
            .version
            .get_or_try_init(|| async {
                let url = self.endpoint("version", &[])?;
                let v: Option<VersionInfo> = self
                    .library_json_opt(Method::GET, &url, crate::client::NO_BODY, "version")
                    .await?;
                Ok::<_, Error>(v.unwrap_or_default())
            })
            .await?;
        Ok(v.clone())
    }

    /// Whether the server's API version is at least `required` (semantic
    /// versioning, pre-releases ordered). Any failure to learn the version
    /// counts as "no": the client falls back to the oldest behaviour.
    pub async fn api_at_least(&self, required: &str) -> bool {
        match self.get_version().await {
            Ok(v) => version_at_least(&v.api_version, required),
            Err(e) => {
                tracing::debug!(error = %e, "server version unknown; using the oldest API");
                false
            }
        }
    }

    /// The image `image_ref` (`entity/collection/container:tag`, or
    /// `…:sha256.<hex>`) for `arch`.
    ///
    /// ```no_run
    /// # async fn demo(client: library_client::Client) -> library_client::Result<()> {
    /// let img = client.get_image("amd64", "alice/tools/samtools:1.17").await?;
    /// println!("{} {}", img.hash, img.size);
    /// # Ok(()) }
    /// ```
    pub async fn get_image(&self, arch: &str, image_ref: &str) -> Result<Image> {
        check_image_ref(image_ref)?;
        let r = image_ref.strip_prefix("library://").unwrap_or(image_ref);
        let url = self.endpoint(&format!("v1/images/{r}"), &[("arch", arch)])?;
        self.library_json(
            Method::GET,
            &url,
            crate::client::NO_BODY,
            &format!("image {r} (arch {arch})"),
        )
        .await
    }

    /// Delete the image `image_ref` of architecture `arch`; both are required.
    pub async fn delete_image(&self, image_ref: &str, arch: &str) -> Result<()> {
        if image_ref.is_empty() || arch.is_empty() {
            return Err(Error::bad_request(
                "deleting an image needs both a reference and an architecture",
            ));
        }
        check_image_ref(image_ref)?;
        let r = image_ref.strip_prefix("library://").unwrap_or(image_ref);
        let url = self.endpoint(&format!("v1/images/{r}"), &[("arch", arch)])?;
        let _: Option<serde_json::Value> = self
            .library_json_opt(
                Method::DELETE,
                &url,
                crate::client::NO_BODY,
                &format!("image {r} (arch {arch})"),
            )
            .await?;
        Ok(())
    }

    /// Search the library.
    ///
    /// ```no_run
    /// # async fn demo(client: library_client::Client) -> library_client::Result<()> {
    /// use library_client::SearchArgs;
    /// let found = client.search(&SearchArgs::new("samtools").arch("amd64")).await?;
    /// for image in found.images.iter().flatten() { println!("{}", image.hash); }
    /// # Ok(()) }
    /// ```
    pub async fn search(&self, args: &SearchArgs) -> Result<SearchResults> {
        args.check()?;
        let url = self.search_url(args)?;
        self.library_json(Method::GET, &url, crate::client::NO_BODY, "search")
            .await
    }

    pub(crate) fn search_url(&self, args: &SearchArgs) -> Result<url::Url> {
        let pairs: Vec<(&str, &str)> = args
            .args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.endpoint("v1/search", &pairs)
    }

    /// The entity (user or group) `name`.
    pub async fn get_entity(&self, name: &str) -> Result<Entity> {
        check_image_path(name)?;
        if name.contains('/') {
            return Err(Error::bad_request(format!(
                "entity name {name:?} contains '/'"
            )));
        }
        let url = self.endpoint(&format!("v1/entities/{name}"), &[])?;
        self.library_json(
            Method::GET,
            &url,
            crate::client::NO_BODY,
            &format!("entity {name}"),
        )
        .await
    }

    /// The collection `entity/collection`.
    pub async fn get_collection(&self, path: &str) -> Result<Collection> {
        check_parts(path, 2)?;
        let url = self.endpoint(&format!("v1/collections/{path}"), &[])?;
        self.library_json(
            Method::GET,
            &url,
            crate::client::NO_BODY,
            &format!("collection {path}"),
        )
        .await
    }

    /// The container `entity/collection/container`.
    pub async fn get_container(&self, path: &str) -> Result<Container> {
        check_parts(path, 3)?;
        let url = self.endpoint(&format!("v1/containers/{path}"), &[])?;
        self.library_json(
            Method::GET,
            &url,
            crate::client::NO_BODY,
            &format!("container {path}"),
        )
        .await
    }

    /// Create the entity `name`.
    pub async fn create_entity(&self, name: &str) -> Result<Entity> {
        check_parts(name, 1)?;
        let body = Entity {
            name: name.to_string(),
            description: "No description".to_string(),
            ..Entity::default()
        };
        self.create("v1/entities", &body, &format!("entity {name}"))
            .await
    }

    /// Create the collection `name` in the entity with ID `entity_id`.
    pub async fn create_collection(&self, name: &str, entity_id: &str) -> Result<Collection> {
        check_parts(name, 1)?;
        let body = Collection {
            name: name.to_string(),
            description: "No description".to_string(),
            entity: entity_id.to_string(),
            ..Collection::default()
        };
        self.create("v1/collections", &body, &format!("collection {name}"))
            .await
    }

    /// Create the container `name` in the collection with ID `collection_id`.
    pub async fn create_container(&self, name: &str, collection_id: &str) -> Result<Container> {
        check_parts(name, 1)?;
        let body = Container {
            name: name.to_string(),
            description: "No description".to_string(),
            collection: collection_id.to_string(),
            ..Container::default()
        };
        self.create("v1/containers", &body, &format!("container {name}"))
            .await
    }

    /// Create an image record with content hash `hash` (`sha256.<hex>`) in
    /// the container with ID `container_id`. The bytes are sent separately.
    pub async fn create_image(
        &self,
        hash: &str,
        container_id: &str,
        description: &str,
    ) -> Result<Image> {
        if !library_ref::is_image_hash(hash) {
            return Err(Error::bad_request(format!("{hash:?} is not an image hash")));
        }
        let body = Image {
            hash: hash.to_string(),
            description: description.to_string(),
            container: container_id.to_string(),
            ..Image::default()
        };
        self.create("v1/images", &body, &format!("image {hash}"))
            .await
    }

    async fn create<T>(&self, path: &str, body: &T, what: &str) -> Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let url = self.endpoint(path, &[])?;
        self.library_json(Method::POST, &url, Some(body), what)
            .await
    }

    /// The tags of a container, without architectures (`GET v1/tags/<id>`).
    pub async fn get_tags(&self, container_id: &str) -> Result<TagMap> {
        let url = self.endpoint(&format!("v1/tags/{}", check_id(container_id)?), &[])?;
        self.tag_request(Method::GET, &url, crate::client::NO_BODY)
            .await
    }

    /// Point `tag` at an image (`POST v1/tags/<id>`), for every architecture.
    pub async fn set_tag(&self, container_id: &str, tag: &str, image_id: &str) -> Result<()> {
        check_tag(tag)?;
        let url = self.endpoint(&format!("v1/tags/{}", check_id(container_id)?), &[])?;
        let body = ImageTag {
            tag: tag.to_string(),
            image_id: image_id.to_string(),
        };
        let _: Option<serde_json::Value> =
            self.tag_request(Method::POST, &url, Some(&body)).await?;
        Ok(())
    }

    /// The tags of a container per architecture (`GET v2/tags/<id>`).
    pub async fn get_arch_tags(&self, container_id: &str) -> Result<ArchTagMap> {
        let url = self.endpoint(&format!("v2/tags/{}", check_id(container_id)?), &[])?;
        self.tag_request(Method::GET, &url, crate::client::NO_BODY)
            .await
    }

    /// Point `tag` of architecture `arch` at an image (`POST v2/tags/<id>`).
    pub async fn set_tag_v2(
        &self,
        container_id: &str,
        arch: &str,
        tag: &str,
        image_id: &str,
    ) -> Result<()> {
        check_tag(tag)?;
        let url = self.endpoint(&format!("v2/tags/{}", check_id(container_id)?), &[])?;
        let body = ArchImageTag {
            arch: arch.to_string(),
            tag: tag.to_string(),
            image_id: image_id.to_string(),
        };
        let _: Option<serde_json::Value> =
            self.tag_request(Method::POST, &url, Some(&body)).await?;
        Ok(())
    }

    /// Tag endpoints accept 200 only.
    async fn tag_request<T, B>(&self, method: Method, url: &url::Url, body: Option<&B>) -> Result<T>
    where
        T: serde::de::DeserializeOwned + Default,
        B: serde::Serialize + ?Sized,
    {
        let resp = self.raw_json(method.clone(), url, body).await?;
        if resp.status != StatusCode::OK {
            // Judge it as a GET so that only 200 passes.
            resp.check(&Method::GET)
                .map_err(|e| self.scrub(Error::about("tags", e)))?;
        }
        Ok(resp
            .data_opt()
            .map_err(|e| self.scrub(e.into()))?
            .unwrap_or_default())
    }
}

/// `n` components of names, `/`-separated.
fn check_parts(path: &str, n: usize) -> Result<()> {
    check_image_path(path)?;
    if path.split('/').count() != n {
        return Err(Error::bad_request(format!(
            "{path:?} must have {n} component(s)"
        )));
    }
    Ok(())
}

/// IDs go into paths: keep them to plain names.
pub(crate) fn check_id(id: &str) -> Result<&str> {
    if id.is_empty() || !id.bytes().all(is_name_byte) || id == "." || id == ".." {
        return Err(Error::bad_request(format!("invalid ID {id:?}")));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors(file: &str) -> Vec<Value> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/vectors/");
        serde_json::from_str(&std::fs::read_to_string(format!("{p}{file}")).unwrap()).unwrap()
    }

    #[test]
    fn api_at_least_vectors() {
        for c in vectors("api_at_least.json") {
            let i = &c["input"];
            let server = i["server_api_version"].as_str().unwrap_or("");
            let ok = i.get("server_status").is_none_or(|s| s == 200);
            let got = ok && version_at_least(server, i["required"].as_str().unwrap());
            assert_eq!(
                got,
                c["expect"]["result"].as_bool().unwrap(),
                "{}",
                c["name"]
            );
        }
    }

    #[test]
    fn search_args_vectors() {
        let client = Client::new("http://127.0.0.1:9/", "").unwrap();
        for c in vectors("search_args.json") {
            let args = match c["input"]["args"].as_object() {
                Some(m) => SearchArgs::from_map(
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
                ),
                None => SearchArgs::default(),
            };
            let e = &c["expect"];
            match e.get("error").and_then(Value::as_str) {
                Some("ErrQueryValueMustBeSpecified") | Some("ErrBadRequest") => {
                    assert!(
                        matches!(args.check(), Err(Error::BadRequest(_))),
                        "{}",
                        c["name"]
                    );
                }
                Some(_) => assert!(args.check().is_ok(), "{}: the server's error", c["name"]),
                None => {
                    args.check().unwrap();
                    let url = client.search_url(&args).unwrap();
                    assert_eq!(url.path(), e["request_path"].as_str().unwrap());
                    assert_eq!(
                        url.query().unwrap(),
                        e["query"].as_str().unwrap(),
                        "{}",
                        c["name"]
                    );
                }
            }
        }
        let url = client.search_url(&SearchArgs::new("a b&c")).unwrap();
        assert_eq!(url.query(), Some("value=a+b%26c"));
    }

    #[test]
    fn paths_that_could_escape_are_refused() {
        for bad in ["..", "a/../b", "a/%2e%2e/b", "a//b", "a/b/c/d", "a/b c", ""] {
            assert!(check_image_path(bad).is_err(), "{bad}");
        }
        for bad in ["", "..", "a/b", "a%2fb", "a:b", "a,b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        check_image_path("alice/tools/samtools").unwrap();
        check_tag("sha256.0123abcd").unwrap();
    }
}
