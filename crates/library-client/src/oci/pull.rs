//! Pulling a SIF image from a registry: index, manifest, config, layer.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE, RANGE};
use http::{HeaderMap, Method, StatusCode};
use library_model::{
    Descriptor, ImageIndex, ImageManifest, SifConfig, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SIF_CONFIG, MEDIA_TYPE_SIF_LAYER,
};
use library_transport::{redact_url, Destination, Downloaded, Progress, RangedDownload, Response};

use super::registry::{status_error, valid_repository_name, valid_tag, OciRegistry};
use super::{digest_of, parse_digest, OciPulled, DOCKER_CONTENT_DIGEST};
use crate::error::{Error, Result};
use crate::pull::Downloader;

/// Largest manifest or index accepted (the registry's own limit).
const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;
/// A SIF image's layer, as its manifest and config describe it.
#[derive(Debug, Clone)]
pub(crate) struct SifLayer {
    /// `sha256:<hex>`.
    pub(crate) digest: String,
    pub(crate) sha256: [u8; 32],
    pub(crate) size: u64,
    pub(crate) config: SifConfig,
    /// The token scope of its repository.
    pub(crate) scope: String,
}

/// Largest config blob accepted.
const CONFIG_LIMIT: usize = 1024 * 1024;

/// A manifest document as fetched: its media type, digest and bytes.
struct Fetched {
    content_type: String,
    digest: String,
    bytes: Bytes,
}

/// The media type of a `Content-Type` value (parameters dropped).
fn media_type(v: &str) -> &str {
    v.split(';').next().unwrap_or_default().trim()
}

fn oci(message: String) -> Error {
    Error::Oci {
        message,
        status: None,
    }
}

impl OciRegistry {
    /// Pull the SIF image `name:tag` into the file `dest`.
    ///
    /// `tag` is a tag or a manifest digest (`sha256:<hex>`). The tag
    /// usually names an index (one manifest per architecture): with `arch`
    /// the first image manifest for that architecture is chosen; without,
    /// the index must hold exactly one. A tag naming a manifest directly
    /// is accepted too. The manifest is fetched by digest and checked (its
    /// `Content-Type`, its `Docker-Content-Digest` against the bytes), then
    /// its config (media type, digest, architecture, rootfs) and its single
    /// SIF layer. The layer is downloaded in concurrent ranged parts per
    /// `downloader` (following a redirect to storage, without the token
    /// when it leaves the registry's origin; a blob served whole, without
    /// ranges, is read as one stream) into a temporary file beside
    /// `dest`, which is renamed into place only when its SHA-256 equals the
    /// layer digest: a failed pull leaves nothing under `dest` (with
    /// `resume`, the partial file is kept to continue from next time).
    ///
    /// Errors: [`Error::NotFound`] for a missing tag, or an architecture
    /// the index does not have (the message lists those it has);
    /// [`Error::UnexpectedArchitecture`] when the config's architecture is
    /// not `arch`; [`Error::DigestMismatch`] for content that does not match
    /// its digest; [`Error::Oci`] for anything else the registry answers
    /// that is not a usable SIF image.
    #[allow(clippy::too_many_arguments)]
    pub async fn pull(
        &self,
        name: &str,
        tag: &str,
        arch: Option<&str>,
        dest: &Path,
        downloader: Downloader,
        resume: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<OciPulled> {
        self.pull_unmasked(name, tag, arch, dest, downloader, resume, progress)
            .await
            .map_err(|e| self.scrub(e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_unmasked(
        &self,
        name: &str,
        tag: &str,
        arch: Option<&str>,
        dest: &Path,
        downloader: Downloader,
        resume: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<OciPulled> {
        downloader.check()?;
        let layer = self.resolve_layer(name, tag, arch).await?;
        let got = self
            .fetch_layer(
                name,
                &layer,
                dest,
                downloader,
                resume,
                self.replace,
                progress,
            )
            .await?;
        let digest = format!("sha256:{}", got.sha256_hex());
        Ok(OciPulled {
            path: got.path,
            size: got.size,
            digest,
            config: layer.config,
        })
    }

    /// The manifest, config and SIF layer of `name:tag` (for `arch`),
    /// checked; nothing of the layer is fetched. A name or tag that is not
    /// one (a name that climbs out of `v2/`, say) is refused before any request.
    pub(crate) async fn resolve_layer(
        &self,
        name: &str,
        tag: &str,
        arch: Option<&str>,
    ) -> Result<SifLayer> {
        if !valid_repository_name(name) {
            return Err(Error::bad_request(format!(
                "invalid repository name {name:?}"
            )));
        }
        if !valid_tag(tag) && parse_digest(tag).is_none() {
            return Err(Error::bad_request(format!("invalid tag or digest {tag:?}")));
        }
        let arch = arch.filter(|a| !a.is_empty());
        let scope = format!("repository:{name}:pull");
        let manifest = self.resolve_manifest(name, tag, arch, &scope).await?;

        if manifest.config.media_type != MEDIA_TYPE_SIF_CONFIG {
            return Err(oci(format!(
                "{name}:{tag} is not a SIF image: config media type {:?}, want {MEDIA_TYPE_SIF_CONFIG:?}",
                manifest.config.media_type
            )));
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(oci(format!(
                "{name}:{tag}: a SIF image has exactly one layer, this one has {}",
                manifest.layers.len()
            )));
        };
        if layer.media_type != MEDIA_TYPE_SIF_LAYER {
            return Err(oci(format!(
                "{name}:{tag}: layer media type {:?}, want {MEDIA_TYPE_SIF_LAYER:?}",
                layer.media_type
            )));
        }
        let layer_sha = match parse_digest(&layer.digest) {
            Some(("sha256", hex)) => library_transport::parse_sha256_hex(hex),
            _ => None,
        }
        .ok_or_else(|| {
            oci(format!(
                "{name}:{tag}: layer digest {:?} is not a sha256 digest",
                layer.digest
            ))
        })?;
        let size = u64::try_from(layer.size)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| oci(format!("{name}:{tag}: layer size {}", layer.size)))?;

        let config = self.fetch_config(name, &manifest.config, &scope).await?;
        if let Some(want) = arch {
            if config.architecture != want {
                return Err(Error::UnexpectedArchitecture {
                    expected: want.to_string(),
                    actual: config.architecture,
                });
            }
        }
        if config.rootfs != layer.digest {
            tracing::debug!(rootfs = %config.rootfs, layer = %layer.digest, "config rootfs differs from the layer digest");
        }

        Ok(SifLayer {
            digest: layer.digest.clone(),
            sha256: layer_sha,
            size,
            config,
            scope,
        })
    }

    /// Downloads the SIF layer `layer` of `name` into `dest`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch_layer(
        &self,
        name: &str,
        layer: &SifLayer,
        dest: &Path,
        downloader: Downloader,
        resume: bool,
        replace: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<Downloaded> {
        let (scope, size, layer_sha) = (&layer.scope, layer.size, layer.sha256);
        // Find where the blob is really served (a registry may redirect to
        // storage), and get any token the registry wants, before the parts go.
        let blob = self.v2(name, &format!("blobs/{}", layer.digest))?;
        let mut probe = HeaderMap::new();
        probe.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
        // Each hop is retried like a part: a passing 5xx here must not
        // fail the pull.
        let (source, resp) = self.get_following(&blob, &probe, scope).await?;
        let d = Destination::new(dest)
            .resumable(resume)
            .replace(replace)
            .max_size(self.max_size)
            .expect_sha256(layer_sha);
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => resp.into_body().drain(64 * 1024).await,
            StatusCode::OK => {
                // No ranges here: the whole blob is already coming; take it
                // as one stream.
                tracing::debug!(from = %redact_url(&source), size, "the blob is served whole; one stream");
                if resp.content_length().is_some_and(|n| n != size) {
                    return Err(oci(format!(
                        "{}: the blob has {} bytes, the manifest says {size}",
                        redact_url(&source),
                        resp.content_length().unwrap_or_default()
                    )));
                }
                progress.total(size);
                return Ok(self.http.download_response(resp, d, progress).await?);
            }
            _ => return Err(status_error(resp, &format!("blob {} of {name}", layer.digest)).await),
        }

        let job = RangedDownload::new(source.clone(), size)
            .headers(self.auth_headers_for(&source))
            .part_size(downloader.part_size_for(size))
            .streams(downloader.concurrency)
            .retry(self.retry.clone());
        tracing::debug!(from = %redact_url(&source), size, "downloading the SIF layer");
        Ok(self.http.download_ranged(&job, d, progress).await?)
    }

    /// The image manifest for `name:tag` (and `arch`), through the index
    /// when the tag names one.
    async fn resolve_manifest(
        &self,
        name: &str,
        tag: &str,
        arch: Option<&str>,
        scope: &str,
    ) -> Result<ImageManifest> {
        let what = format!("image {name}:{tag} in the OCI registry");
        let first = match self
            .get_manifest(name, tag, MEDIA_TYPE_OCI_INDEX, scope)
            .await?
        {
            Some(f) => f,
            // A registry that will not serve a manifest as an index answers
            // 404: ask for the tag as a manifest.
            None => self
                .get_manifest(name, tag, MEDIA_TYPE_OCI_MANIFEST, scope)
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: what.clone(),
                    message: None,
                })?,
        };
        let fetched = match first.content_type.as_str() {
            MEDIA_TYPE_OCI_INDEX => {
                let index: ImageIndex = serde_json::from_slice(&first.bytes).map_err(|e| {
                    oci(format!("{name}:{tag}: cannot decode the image index: {e}"))
                })?;
                let digest = choose_manifest(&index, arch, name, tag)?;
                let m = self
                    .get_manifest(name, &digest, MEDIA_TYPE_OCI_MANIFEST, scope)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        what: format!("manifest {digest} of {name}:{tag}"),
                        message: None,
                    })?;
                if m.digest != digest {
                    return Err(Error::DigestMismatch {
                        expected: digest,
                        actual: m.digest,
                    });
                }
                m
            }
            _ => first,
        };
        if fetched.content_type != MEDIA_TYPE_OCI_MANIFEST {
            return Err(oci(format!(
                "{name}:{tag}: unexpected content type: got {:?}, want {MEDIA_TYPE_OCI_MANIFEST:?}",
                fetched.content_type
            )));
        }
        serde_json::from_slice(&fetched.bytes).map_err(|e| {
            oci(format!(
                "{name}:{tag}: cannot decode the image manifest: {e}"
            ))
        })
    }

    /// GET `manifests/<reference>` with `Accept: accept`. `None` for a 404.
    /// The answer's media type must be `accept`, or (for an index request)
    /// an image manifest; its `Docker-Content-Digest` must be a valid
    /// digest of its bytes.
    async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        accept: &str,
        scope: &str,
    ) -> Result<Option<Fetched>> {
        let url = self.v2(name, &format!("manifests/{reference}"))?;
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            HeaderValue::from_str(accept).expect("media types are valid headers"),
        );
        let resp = self.send(Method::GET, &url, &h, None, scope).await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                resp.into_body().drain(64 * 1024).await;
                return Ok(None);
            }
            _ => {
                return Err(status_error(resp, &format!("{name}:{reference}")).await);
            }
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| media_type(v).to_string())
            .unwrap_or_default();
        let acceptable = content_type == accept
            || (accept == MEDIA_TYPE_OCI_INDEX && content_type == MEDIA_TYPE_OCI_MANIFEST);
        if !acceptable {
            return Err(oci(format!(
                "{name}:{reference}: unexpected content type: got {content_type:?}, want {accept:?}"
            )));
        }
        let header_digest = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some((alg, _)) = parse_digest(&header_digest) else {
            return Err(oci(format!(
                "{name}:{reference}: invalid Docker-Content-Digest {header_digest:?}"
            )));
        };
        let bytes = read_limited(resp, MANIFEST_LIMIT).await?;
        let actual = digest_of(alg, &bytes);
        if actual != header_digest {
            return Err(Error::DigestMismatch {
                expected: header_digest,
                actual,
            });
        }
        Ok(Some(Fetched {
            content_type,
            digest: header_digest,
            bytes,
        }))
    }

    /// Fetch, verify and decode the config blob of a SIF image.
    async fn fetch_config(&self, name: &str, desc: &Descriptor, scope: &str) -> Result<SifConfig> {
        let Some((alg, _)) = parse_digest(&desc.digest) else {
            return Err(oci(format!(
                "{name}: config digest {:?} is not a valid digest",
                desc.digest
            )));
        };
        let url = self.v2(name, &format!("blobs/{}", desc.digest))?;
        let (_, resp) = self.get_following(&url, &HeaderMap::new(), scope).await?;
        if resp.status() != StatusCode::OK {
            return Err(
                status_error(resp, &format!("config blob {} of {name}", desc.digest)).await,
            );
        }
        let bytes = read_limited(resp, CONFIG_LIMIT).await?;
        let actual = digest_of(alg, &bytes);
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                expected: desc.digest.clone(),
                actual,
            });
        }
        let config: SifConfig = serde_json::from_slice(&bytes)
            .map_err(|e| oci(format!("{name}: invalid image config: {e}")))?;
        if config.architecture.is_empty() {
            return Err(oci(format!(
                "{name}: invalid image config: architecture not present"
            )));
        }
        if parse_digest(&config.rootfs).is_none() {
            return Err(oci(format!(
                "{name}: invalid image config: rootfs {:?} is not a valid digest",
                config.rootfs
            )));
        }
        Ok(config)
    }
}

/// Read a body of at most `limit` bytes.
async fn read_limited(resp: Response, limit: usize) -> Result<Bytes> {
    let url = resp.url().to_string();
    resp.bytes_limited(limit).await.map_err(|e| match e {
        library_transport::Error::BodyTooLarge { .. } => {
            oci(format!("{url}: answer larger than {limit} bytes"))
        }
        e => e.into(),
    })
}

/// The digest of the manifest to use from `index`.
fn choose_manifest(
    index: &ImageIndex,
    arch: Option<&str>,
    name: &str,
    tag: &str,
) -> Result<String> {
    let images: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|m| m.media_type == MEDIA_TYPE_OCI_MANIFEST)
        .collect();
    let available = || {
        let v: Vec<&str> = images
            .iter()
            .map(|m| {
                m.platform
                    .as_ref()
                    .map_or("(no platform)", |p| p.architecture.as_str())
            })
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let chosen = match arch {
        None => match index.manifests.as_slice() {
            [one] if one.media_type == MEDIA_TYPE_OCI_MANIFEST => one,
            _ => {
                return Err(Error::bad_request(format!(
                    "{name}:{tag} holds {} manifests (architectures: {}): give an architecture",
                    index.manifests.len(),
                    available()
                )))
            }
        },
        Some(a) => images
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.architecture == a))
            .copied()
            .ok_or_else(|| Error::NotFound {
                what: format!("image {name}:{tag} for architecture {a}"),
                message: Some(format!(
                    "no matching OS/architecture ({a}) found; the index has: {}",
                    available()
                )),
            })?,
    };
    if parse_digest(&chosen.digest).is_none() {
        return Err(oci(format!(
            "{name}:{tag}: the index names an invalid manifest digest {:?}",
            chosen.digest
        )));
    }
    Ok(chosen.digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use library_model::Platform;

    fn desc(arch: &str, mt: &str, n: u8) -> Descriptor {
        Descriptor {
            media_type: mt.to_string(),
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size: 10,
            annotations: None,
            platform: Some(Platform {
                architecture: arch.to_string(),
                os: "linux".to_string(),
            }),
        }
    }

    #[test]
    fn manifest_choice() {
        let idx = ImageIndex {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_INDEX.into(),
            manifests: vec![
                desc("arm64", MEDIA_TYPE_OCI_INDEX, 1),
                desc("amd64", MEDIA_TYPE_OCI_MANIFEST, 2),
                desc("arm64", MEDIA_TYPE_OCI_MANIFEST, 3),
                desc("arm64", MEDIA_TYPE_OCI_MANIFEST, 4),
            ],
            annotations: None,
        };
        let d = choose_manifest(&idx, Some("arm64"), "a/b", "t").unwrap();
        assert_eq!(d, format!("sha256:{}", "03".repeat(32)));
        let e = choose_manifest(&idx, Some("riscv64"), "a/b", "t").unwrap_err();
        assert!(e.is_not_found());
        let text = e.to_string();
        assert!(
            text.contains("riscv64") && text.contains("amd64, arm64, arm64"),
            "{text}"
        );
        assert!(choose_manifest(&idx, None, "a/b", "t").is_err());
        let one = ImageIndex {
            manifests: vec![desc("amd64", MEDIA_TYPE_OCI_MANIFEST, 5)],
            ..idx
        };
        assert!(choose_manifest(&one, None, "a/b", "t").is_ok());
    }

    #[test]
    fn content_type_parameters_are_ignored() {
        assert_eq!(media_type("application/x; charset=utf-8"), "application/x");
        assert_eq!(media_type(" application/x "), "application/x");
    }
}
