//! The OCI path: SIF images kept in an OCI distribution registry.
//!
//! A library can front an OCI registry: asked `GET v1/oci-redirect`, it
//! answers the registry's URL, a token for it, and the repository name an
//! image path maps to. [`Client::download_image`](crate::Client::download_image)
//! and [`Client::upload_image`](crate::Client::upload_image) then move the
//! image through that registry (and use the library's own endpoints when
//! the library has no registry).
//!
//! [`OciRegistry`] is that registry client, usable directly against any
//! registry. A SIF image there is an OCI artifact: a manifest whose config
//! is a [`SifConfig`] (media type
//! [`MEDIA_TYPE_SIF_CONFIG`](library_model::MEDIA_TYPE_SIF_CONFIG)) and
//! whose single layer is the SIF file (media type
//! [`MEDIA_TYPE_SIF_LAYER`](library_model::MEDIA_TYPE_SIF_LAYER)), stored
//! under the tag `sha256.<hex of the file>`; each user tag names an index
//! holding that manifest with its platform.

use std::fmt;
use std::path::{Path, PathBuf};

use http::Method;
use library_model::{OciRedirect, SifConfig};
use library_transport::NO_BODY;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use url::Url;

use crate::client::Client;
use crate::error::Result;
use crate::pull::{Pull, PulledImage, Transfer};
use crate::push::{Push, PushedImage, UploadKind};

mod auth;
mod pull;
mod push;
mod registry;

pub use auth::{parse_www_authenticate, AuthChallenge, AuthHeaderError, AuthScheme};
pub use push::parse_upload_range;
pub use registry::OciRegistry;

/// The header in which a registry states the digest of what it serves or
/// stored.
pub(crate) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A SIF image pulled from a registry, in place under its destination name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OciPulled {
    /// Where the image is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its digest, `sha256:<hex>`: the layer digest, which the bytes were
    /// checked against.
    pub digest: String,
    /// The image's config as the registry holds it.
    pub config: SifConfig,
}

/// A SIF image pushed to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OciPushed {
    /// Digest of the image manifest (what the tags' indexes point to).
    pub manifest_digest: String,
    /// Digest of the SIF file, `sha256:<hex>` (the layer).
    pub layer_digest: String,
    /// Size of the SIF file.
    pub size: u64,
    /// Blobs sent (the SIF file and its config); 0 when the registry had
    /// both and only the manifests were put.
    pub blobs_uploaded: u32,
    /// The config pushed with the image.
    pub config: SifConfig,
}

/// Splits a digest `<algorithm>:<hex>` with a supported algorithm
/// (sha256, sha384, sha512) and lower-case hex of the right length.
pub(crate) fn parse_digest(s: &str) -> Option<(&'static str, &str)> {
    let (alg, hex) = s.split_once(':')?;
    let (alg, len) = match alg {
        "sha256" => ("sha256", 64),
        "sha384" => ("sha384", 96),
        "sha512" => ("sha512", 128),
        _ => return None,
    };
    let ok = hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some((alg, hex))
}

/// The digest of `bytes` with the algorithm `alg` (one [`parse_digest`]
/// accepts).
pub(crate) fn digest_of(alg: &str, bytes: &[u8]) -> String {
    let hex = match alg {
        "sha384" => library_transport::hex(&Sha384::digest(bytes)),
        "sha512" => library_transport::hex(&Sha512::digest(bytes)),
        _ => library_transport::hex(&Sha256::digest(bytes)),
    };
    format!("{alg}:{hex}")
}

/// Where the library keeps its images as OCI artifacts: what
/// `v1/oci-redirect` answered.
#[derive(Clone)]
pub(crate) struct OciTarget {
    /// The registry's base URL.
    pub(crate) registry: Url,
    /// The registry token (never the library's).
    pub(crate) token: Option<String>,
    /// The repository name in the registry.
    pub(crate) name: String,
}

impl fmt::Debug for OciTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OciTarget")
            .field("registry", &self.registry.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("name", &self.name)
            .finish()
    }
}

impl OciTarget {
    fn registry(&self, client: &Client) -> OciRegistry {
        OciRegistry::new(
            client.inner.http.clone(),
            self.registry.clone(),
            self.token.clone(),
        )
        .retry(client.inner.retry.clone())
    }
}

impl Client {
    /// Ask the library for its OCI registry
    /// (`GET v1/oci-redirect?accessTypes=pull[,push]&mapped=1&namespace=<ns>`,
    /// with the library's token). `None` on any failure: the library has
    /// no registry, and its own endpoints are used.
    pub(crate) async fn oci_target(&self, namespace: &str, push: bool) -> Option<OciTarget> {
        let access = if push { "pull,push" } else { "pull" };
        let url = self
            .endpoint(
                "v1/oci-redirect",
                &[
                    ("accessTypes", access),
                    ("mapped", "1"),
                    ("namespace", namespace),
                ],
            )
            .ok()?;
        let resp = match self.raw_json(Method::GET, &url, NO_BODY).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "no OCI registry (redirect request failed)");
                return None;
            }
        };
        if resp.status != http::StatusCode::OK {
            tracing::debug!(status = %resp.status, "no OCI registry (redirect refused)");
            return None;
        }
        let answer: OciRedirect = match resp.decode() {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "no OCI registry (redirect answer not understood)");
                return None;
            }
        };
        let registry = match Url::parse(&answer.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            _ => {
                tracing::debug!("no OCI registry (redirect gives no usable URL)");
                return None;
            }
        };
        let name = if answer.name.is_empty() {
            namespace.to_string()
        } else {
            if answer.name != namespace {
                tracing::debug!(from = namespace, to = %answer.name, "OCI name mapped");
            }
            answer.name
        };
        tracing::debug!(registry = %library_transport::redact_url(&registry), %name, "using the library's OCI registry");
        Some(OciTarget {
            registry,
            token: (!answer.token.is_empty()).then_some(answer.token),
            name,
        })
    }
}

/// Pull through the registry the library redirected to.
pub(crate) async fn pull_via_library(
    client: &Client,
    target: &OciTarget,
    pull: &Pull,
    dest: &Path,
) -> Result<PulledImage> {
    let registry = target
        .registry(client)
        .replace_existing(pull.replace)
        .max_image_size(pull.max_size);
    let r = async {
        let layer = registry
            .resolve_layer(&target.name, &pull.tag, Some(&pull.arch))
            .await?;
        let hex = library_transport::hex(&layer.sha256);
        if crate::cache::up_to_date(dest, layer.size, &hex).await {
            return Ok(crate::pull::up_to_date_image(dest, layer.size, hex));
        }
        let reference = format!("library://{}:{}", pull.path, pull.tag);
        let layer = &layer;
        let registry = &registry;
        crate::pull::through_cache(pull, &hex, &reference, dest, |at, p| async move {
            let got = registry
                .fetch_layer(
                    &target.name,
                    layer,
                    &at,
                    p.downloader,
                    p.resume,
                    p.replace,
                    p.progress.clone(),
                )
                .await?;
            Ok(PulledImage {
                path: got.path,
                size: got.size,
                sha256: library_transport::hex(&got.sha256),
                verified: true,
                transfer: Transfer::Oci,
                cache: crate::CacheUse::None,
                streams: got.streams,
                retries: got.retries,
            })
        })
        .await
    }
    .await;
    r.map_err(|e| registry.scrub(e))
}

/// Push through the registry the library redirected to. `sums` and `size`
/// are the file's, `arch` the architecture to record (given, or the
/// header's).
pub(crate) async fn push_via_library(
    client: &Client,
    target: &OciTarget,
    file: &Path,
    sums: &crate::push::Sums,
    size: u64,
    arch: &str,
    push: &Push,
) -> Result<PushedImage> {
    let (_, signed, encrypted) = push::facts(file)?;
    let done = target
        .registry(client)
        .push_prepared(
            &target.name,
            file,
            size,
            sums.sha256,
            arch,
            (signed, encrypted),
            &push.tags,
            &push.description,
            push.progress.clone(),
        )
        .await?;
    Ok(PushedImage {
        image_id: String::new(),
        hash: format!("sha256.{}", sums.sha256_hex()),
        size: done.size,
        arch: arch.to_string(),
        upload: UploadKind::Oci,
        complete: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = digest_of("sha256", b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(parse_digest(&d).is_some());
        assert!(parse_digest(&d.to_uppercase()).is_none());
        assert!(parse_digest("sha256:abc").is_none());
        assert!(parse_digest("md5:d41d8cd98f00b204e9800998ecf8427e").is_none());
        let d = digest_of("sha512", b"x");
        assert_eq!(parse_digest(&d).map(|x| x.0), Some("sha512"));
    }
}
