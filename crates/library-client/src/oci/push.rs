//! Pushing a SIF image to a registry: blob, config, manifest, tags.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use http::{HeaderMap, Method, StatusCode};
use library_model::{
    Descriptor, ImageIndex, ImageManifest, Platform, SifConfig, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SIF_CONFIG, MEDIA_TYPE_SIF_LAYER,
};
use library_transport::headers::HeaderParseError;
use library_transport::{hex, redact_url, Progress};
use sha2::{Digest, Sha256};
use url::Url;

use super::registry::{location, status_error, valid_repository_name, valid_tag, OciRegistry};
use super::{OciPushed, DOCKER_CONTENT_DIGEST};
use crate::error::{Error, Result};
use crate::sif::read_sif_header;

/// Bytes per PATCH of a chunked upload.
pub(crate) const CHUNK_SIZE: u64 = 5 * 1024 * 1024;

/// Where the bytes of a blob come from.
enum Source {
    File { file: Arc<File>, path: PathBuf },
    Memory(Bytes),
}

impl Source {
    /// `len` bytes from `offset`.
    async fn read(&self, offset: u64, len: u64) -> Result<Bytes> {
        match self {
            Source::Memory(b) => Ok(b.slice(offset as usize..(offset + len) as usize)),
            Source::File { file, path } => {
                let (file, path) = (file.clone(), path.clone());
                tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len as usize];
                    file.read_exact_at(&mut buf, offset)
                        .map(|_| Bytes::from(buf))
                        .map_err(|e| Error::io(&path, e))
                })
                .await
                .map_err(|e| Error::io("<reader>", std::io::Error::other(e)))?
            }
        }
    }
}

/// Reads the `Range` header a registry gives about a chunked upload in
/// progress (`0-<last>`, the OCI distribution spec's form, without a
/// unit) into the number of bytes it holds, `last + 1`.
///
/// The value must be `0-` and decimal digits (no sign, no spaces):
/// anything else is [`HeaderParseError::Malformed`], and a `last` of
/// `u64::MAX` or beyond (whose successor no `u64` holds) is
/// [`HeaderParseError::IntRange`]. `0-0` gives 1, although registries
/// also send it for an empty upload: the caller decides what to trust.
///
/// ```
/// use library_client::oci::parse_upload_range;
/// assert_eq!(parse_upload_range("0-1023"), Ok(1024));
/// assert_eq!(parse_upload_range("0-0"), Ok(1));
/// assert!(parse_upload_range("bytes=0-1023").is_err());
/// assert!(parse_upload_range("0-18446744073709551615").is_err());
/// ```
pub fn parse_upload_range(value: &str) -> std::result::Result<u64, HeaderParseError> {
    let malformed = || HeaderParseError::Malformed(value.to_string());
    let last = value.strip_prefix("0-").ok_or_else(malformed)?;
    if last.is_empty() || !last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    last.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| HeaderParseError::IntRange(value.to_string()))
}

/// What the registry says about an upload in progress.
enum Resync {
    /// Continue from this offset at this URL.
    At(u64, Url),
    /// Start again.
    Restart,
}

/// How long to wait before a failed chunk is sent again (after asking the
/// registry where the upload stands), as the retry policy decides; `None`
/// gives up. A 416 means the registry stands at another offset: the
/// resync that follows mends it, so it is sent again too.
fn chunk_retry(attempts: &mut library_transport::Attempts, e: &Error) -> Option<Duration> {
    match e {
        Error::Network { .. } | Error::Timeout { .. } | Error::InvalidResponse { .. } => {
            e.transport().and_then(|t| attempts.after_error(t))
        }
        Error::Oci {
            status: Some(StatusCode::RANGE_NOT_SATISFIABLE),
            ..
        } => attempts.again(),
        Error::Http { status, .. } => attempts.after_answer(*status, &HeaderMap::new()),
        Error::Oci {
            status: Some(s), ..
        } => attempts.after_answer(*s, &HeaderMap::new()),
        _ => None,
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

impl OciRegistry {
    /// Push the SIF image `file` to repository `name`, tagged with every
    /// tag of `tags`.
    ///
    /// The image's architecture is `arch`, or the primary architecture of
    /// its SIF header when `None`; the header also says whether the image
    /// is signed and encrypted (an image without a single primary system
    /// partition cannot be pushed: [`Error::Sif`]). Then:
    ///
    /// - the file's blob, `sha256:<hex>` of its bytes, is uploaded unless
    ///   the registry has it (`HEAD` answers 200 with that digest): `POST`
    ///   an upload, `PATCH` 5 MiB chunks read from the file by offset
    ///   (`Content-Range: start-end`, exact `Content-Length`) following each
    ///   new `Location`, then `PUT ...digest=`. The digest computed over
    ///   the bytes sent must be the file's. A failed chunk is retried: the
    ///   registry is asked where the upload stands and the chunk goes again
    ///   from there, or the upload starts over;
    /// - the config `{"architecture","os":"linux","rootfs","description","signed","encrypted"}`
    ///   is uploaded the same way (unless present);
    /// - the manifest (that config and the one SIF layer) is put under
    ///   `sha256.<hex>`;
    /// - for every tag, an index holding that one manifest with its
    ///   platform is put under the tag.
    ///
    /// Progress gets the file size, then increments as chunks land, then
    /// finish (or abort).
    #[allow(clippy::too_many_arguments)]
    pub async fn push(
        &self,
        name: &str,
        file: &Path,
        arch: Option<&str>,
        tags: &[String],
        description: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<OciPushed> {
        check_push_args(name, arch, tags)?;
        let meta = std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
        if !meta.is_file() {
            return Err(Error::bad_request(format!(
                "{} is not a regular file",
                file.display()
            )));
        }
        let (header_arch, signed, encrypted) = facts(file)?;
        let path = file.to_path_buf();
        let sha = tokio::task::spawn_blocking(move || library_transport::sha256_file(&path))
            .await
            .map_err(|e| Error::io(file, std::io::Error::other(e)))??;
        let arch = arch.map_or(header_arch, str::to_string);
        self.push_prepared(
            name,
            file,
            meta.len(),
            sha,
            &arch,
            (signed, encrypted),
            tags,
            description,
            progress,
        )
        .await
    }

    /// [`push`](Self::push) once the file's size, SHA-256, architecture
    /// and header facts are known. The registry token is masked in errors.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn push_prepared(
        &self,
        name: &str,
        file: &Path,
        size: u64,
        sha256: [u8; 32],
        arch: &str,
        facts: (bool, bool),
        tags: &[String],
        description: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<OciPushed> {
        self.push_prepared_unmasked(
            name,
            file,
            size,
            sha256,
            arch,
            facts,
            tags,
            description,
            progress,
        )
        .await
        .map_err(|e| self.scrub(e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_prepared_unmasked(
        &self,
        name: &str,
        file: &Path,
        size: u64,
        sha256: [u8; 32],
        arch: &str,
        (signed, encrypted): (bool, bool),
        tags: &[String],
        description: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<OciPushed> {
        check_push_args(name, Some(arch), tags)?;
        let scope = format!("repository:{name}:pull,push");
        let layer_digest = format!("sha256:{}", hex(&sha256));
        let mut blobs_uploaded = 0u32;

        progress.total(size);
        if self.blob_exists(name, &layer_digest, &scope).await {
            tracing::info!(digest = %layer_digest, "the registry has this image; not sending it");
            progress.increment(size);
            progress.finish();
        } else {
            let f = File::open(file).map_err(|e| Error::io(file, e))?;
            let source = Source::File {
                file: Arc::new(f),
                path: file.to_path_buf(),
            };
            let sent = self
                .upload_blob(name, &source, size, &layer_digest, &scope, Some(&*progress))
                .await;
            match sent {
                Ok(()) => progress.finish(),
                Err(e) => {
                    progress.abort();
                    return Err(e);
                }
            }
            blobs_uploaded += 1;
        }

        let config = SifConfig {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            rootfs: layer_digest.clone(),
            description: description.to_string(),
            signed,
            encrypted,
        };
        let config_bytes = Bytes::from(serde_json::to_vec(&config).expect("a config encodes"));
        let config_digest = sha256_digest(&config_bytes);
        if !self.blob_exists(name, &config_digest, &scope).await {
            let len = config_bytes.len() as u64;
            self.upload_blob(
                name,
                &Source::Memory(config_bytes.clone()),
                len,
                &config_digest,
                &scope,
                None,
            )
            .await?;
            blobs_uploaded += 1;
        }

        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: MEDIA_TYPE_SIF_CONFIG.to_string(),
                digest: config_digest,
                size: config_bytes.len() as i64,
                annotations: None,
                platform: None,
            },
            layers: vec![Descriptor {
                media_type: MEDIA_TYPE_SIF_LAYER.to_string(),
                digest: layer_digest.clone(),
                size: size as i64,
                annotations: None,
                platform: None,
            }],
            annotations: None,
        };
        let manifest_bytes =
            Bytes::from(serde_json::to_vec(&manifest).expect("a manifest encodes"));
        let manifest_digest = sha256_digest(&manifest_bytes);
        let hash_tag = format!("sha256.{}", hex(&sha256));
        self.put_manifest(
            name,
            &hash_tag,
            MEDIA_TYPE_OCI_MANIFEST,
            manifest_bytes.clone(),
            &manifest_digest,
            &scope,
        )
        .await?;

        if !tags.is_empty() {
            let index = ImageIndex {
                schema_version: 2,
                media_type: MEDIA_TYPE_OCI_INDEX.to_string(),
                manifests: vec![Descriptor {
                    media_type: MEDIA_TYPE_OCI_MANIFEST.to_string(),
                    digest: manifest_digest.clone(),
                    size: manifest_bytes.len() as i64,
                    annotations: None,
                    platform: Some(Platform {
                        architecture: arch.to_string(),
                        os: "linux".to_string(),
                    }),
                }],
                annotations: None,
            };
            let index_bytes = Bytes::from(serde_json::to_vec(&index).expect("an index encodes"));
            let index_digest = sha256_digest(&index_bytes);
            for tag in tags {
                tracing::debug!(%name, %tag, "tagging");
                self.put_manifest(
                    name,
                    tag,
                    MEDIA_TYPE_OCI_INDEX,
                    index_bytes.clone(),
                    &index_digest,
                    &scope,
                )
                .await?;
            }
        }
        Ok(OciPushed {
            manifest_digest,
            layer_digest,
            size,
            blobs_uploaded,
            config,
        })
    }

    /// `HEAD blobs/<digest>`: true when the registry answers 200 with that
    /// digest. Any failure counts as "not there" (the upload then says
    /// what is wrong).
    async fn blob_exists(&self, name: &str, digest: &str, scope: &str) -> bool {
        let Ok(url) = self.v2(name, &format!("blobs/{digest}")) else {
            return false;
        };
        match self
            .send(Method::HEAD, &url, &HeaderMap::new(), None, scope)
            .await
        {
            Ok(resp) => {
                let found = resp.status() == StatusCode::OK
                    && resp
                        .headers()
                        .get(DOCKER_CONTENT_DIGEST)
                        .and_then(|v| v.to_str().ok())
                        == Some(digest);
                tracing::debug!(%digest, status = %resp.status(), found, "blob check");
                found
            }
            Err(e) => {
                tracing::debug!(%digest, error = %e, "blob check failed");
                false
            }
        }
    }

    /// Chunked upload of `size` bytes from `source`, which must have
    /// `digest`. An upload session that is given up (the upload failed, or
    /// starts over) is cancelled with a `DELETE`, so that the registry does
    /// not keep its bytes until it expires them.
    async fn upload_blob(
        &self,
        name: &str,
        source: &Source,
        size: u64,
        digest: &str,
        scope: &str,
        progress: Option<&dyn Progress>,
    ) -> Result<()> {
        let mut open = None;
        let r = self
            .upload_blob_sessions(name, source, size, digest, scope, progress, &mut open)
            .await;
        if r.is_err() {
            if let Some(loc) = open {
                self.cancel_upload(&loc, scope).await;
            }
        }
        r
    }

    /// `DELETE <upload>`: give an upload session up (best effort).
    async fn cancel_upload(&self, loc: &Url, scope: &str) {
        match self
            .send(Method::DELETE, loc, &HeaderMap::new(), None, scope)
            .await
        {
            Ok(resp) => {
                tracing::debug!(status = %resp.status(), "upload session cancelled");
                resp.into_body().drain(64 * 1024).await;
            }
            Err(e) => tracing::debug!(error = %e, "cancelling the upload session failed"),
        }
    }

    /// [`upload_blob`](Self::upload_blob), keeping in `open` the location
    /// of the session in progress (`None` once it is closed).
    #[allow(clippy::too_many_arguments)]
    async fn upload_blob_sessions(
        &self,
        name: &str,
        source: &Source,
        size: u64,
        digest: &str,
        scope: &str,
        progress: Option<&dyn Progress>,
        open: &mut Option<Url>,
    ) -> Result<()> {
        let mut reported = 0u64;
        let mut restarts = 0u32;
        'upload: loop {
            if let Some(old) = open.take() {
                self.cancel_upload(&old, scope).await;
            }
            let mut loc = self.start_upload(name, scope).await?;
            *open = Some(loc.clone());
            let mut hasher = Sha256::new();
            let mut offset = 0u64;
            while offset < size {
                let len = CHUNK_SIZE.min(size - offset);
                let chunk = source.read(offset, len).await?;
                let mut sent = 0u64;
                // A chunk is sent again after asking the registry where
                // the upload stands, so repeating the PATCH is safe.
                let mut attempts = library_transport::Attempts::repeatable(&self.retry);
                while sent < len {
                    let part = chunk.slice(sent as usize..);
                    match self.patch(&loc, part, offset + sent, scope).await {
                        Ok(next) => {
                            loc = next;
                            *open = Some(loc.clone());
                            sent = len;
                        }
                        Err(e) => {
                            let Some(d) = chunk_retry(&mut attempts, &e) else {
                                return Err(e);
                            };
                            let attempt = attempts.retries();
                            tracing::debug!(offset, attempt, error = %e, delay_ms = d.as_millis() as u64, "chunk failed; asking the registry where the upload stands");
                            tokio::time::sleep(d).await;
                            match self.upload_status(&loc, scope).await? {
                                Resync::At(at, next)
                                    if at >= offset && at <= offset + len && at > 0 =>
                                {
                                    loc = next;
                                    *open = Some(loc.clone());
                                    sent = at - offset;
                                }
                                _ => {
                                    restarts += 1;
                                    if restarts > self.retry.max_retries {
                                        return Err(e);
                                    }
                                    tracing::debug!(restarts, "starting the upload over");
                                    continue 'upload;
                                }
                            }
                        }
                    }
                }
                hasher.update(&chunk);
                offset += len;
                if let Some(p) = progress {
                    if offset > reported {
                        p.increment(offset - reported);
                        reported = offset;
                    }
                }
            }
            let actual = format!("sha256:{}", hex(&hasher.finalize()));
            if actual != digest {
                return Err(Error::DigestMismatch {
                    expected: digest.to_string(),
                    actual,
                });
            }
            self.finish_upload(&loc, digest, scope).await?;
            *open = None;
            return Ok(());
        }
    }

    /// `POST blobs/uploads/`: the URL of a new upload.
    async fn start_upload(&self, name: &str, scope: &str) -> Result<Url> {
        let url = self.v2(name, "blobs/uploads/")?;
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
        let resp = self.send(Method::POST, &url, &h, None, scope).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(resp, &format!("repository {name}")).await);
        }
        let next = location(&resp, &url)?;
        resp.into_body().drain(64 * 1024).await;
        Ok(next)
    }

    /// One `PATCH` of `data` at `offset`; the URL to continue at.
    async fn patch(&self, loc: &Url, data: Bytes, offset: u64, scope: &str) -> Result<Url> {
        let len = data.len() as u64;
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(
            "content-range",
            HeaderValue::from_str(&format!("{offset}-{}", offset + len - 1)).expect("ascii"),
        );
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        let resp = self.send(Method::PATCH, loc, &h, Some(data), scope).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(resp, "").await);
        }
        let next = location(&resp, loc)?;
        resp.into_body().drain(64 * 1024).await;
        Ok(next)
    }

    /// `GET` on an upload: where the registry stands (`Range: 0-<last>`).
    /// A `Range` with a number no offset can be is an invalid response;
    /// anything else unusable starts the upload over.
    async fn upload_status(&self, loc: &Url, scope: &str) -> Result<Resync> {
        let resp = match self
            .send(Method::GET, loc, &HeaderMap::new(), None, scope)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "upload status unavailable");
                return Ok(Resync::Restart);
            }
        };
        if resp.status() != StatusCode::NO_CONTENT {
            tracing::debug!(status = %resp.status(), "upload status refused");
            return Ok(Resync::Restart);
        }
        let held = match resp.headers().get(RANGE).map(|v| v.to_str()) {
            Some(Ok(r)) => match parse_upload_range(r) {
                Ok(n) => Some(n),
                Err(e @ HeaderParseError::IntRange(_)) => {
                    return Err(Error::from(library_transport::Error::InvalidResponse {
                        url: redact_url(loc),
                        reason: format!("upload status Range: {e}"),
                    }));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "upload status Range unusable");
                    None
                }
            },
            _ => None,
        };
        let next = location(&resp, loc).ok();
        Ok(match (held, next) {
            // `0-0` is either nothing or one byte: start over to be sure.
            (Some(held), Some(next)) if held > 1 => Resync::At(held, next),
            _ => Resync::Restart,
        })
    }

    /// `PUT <upload>?digest=`: close the upload.
    async fn finish_upload(&self, loc: &Url, digest: &str, scope: &str) -> Result<()> {
        let mut url = loc.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
        let resp = self.send(Method::PUT, &url, &h, None, scope).await?;
        if !matches!(
            resp.status(),
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK
        ) {
            return Err(status_error(resp, "").await);
        }
        check_digest_header(&resp, digest, &url)?;
        resp.into_body().drain(64 * 1024).await;
        Ok(())
    }

    /// `PUT manifests/<reference>` of a document with its media type.
    async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: Bytes,
        digest: &str,
        scope: &str,
    ) -> Result<()> {
        let url = self.v2(name, &format!("manifests/{reference}"))?;
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).expect("media types are valid headers"),
        );
        h.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
        let resp = self.send(Method::PUT, &url, &h, Some(body), scope).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &format!("{name}:{reference}")).await);
        }
        check_digest_header(&resp, digest, &url)?;
        resp.into_body().drain(64 * 1024).await;
        Ok(())
    }
}

/// A `Docker-Content-Digest` in an answer, when present, must be `digest`.
fn check_digest_header(resp: &library_transport::Response, digest: &str, url: &Url) -> Result<()> {
    match resp
        .headers()
        .get(DOCKER_CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
    {
        Some(got) if got != digest => {
            tracing::debug!(url = %redact_url(url), %got, %digest, "registry states another digest");
            Err(Error::DigestMismatch {
                expected: digest.to_string(),
                actual: got.to_string(),
            })
        }
        _ => Ok(()),
    }
}

fn check_push_args(name: &str, arch: Option<&str>, tags: &[String]) -> Result<()> {
    if !valid_repository_name(name) {
        return Err(Error::bad_request(format!(
            "invalid repository name {name:?}"
        )));
    }
    if let Some(t) = tags.iter().find(|t| !valid_tag(t)) {
        return Err(Error::bad_request(format!("invalid tag {t:?}")));
    }
    if let Some(a) = arch {
        if a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::bad_request(format!("invalid architecture {a:?}")));
        }
    }
    Ok(())
}

/// The header facts of the SIF file at `path`: arch, signed, encrypted.
pub(crate) fn facts(path: &Path) -> Result<(String, bool, bool)> {
    read_sif_header(path)?
        .oci_facts()
        .map_err(|source| Error::Sif {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_upload_range("0-0"), Ok(1));
        assert_eq!(parse_upload_range("0-5242879"), Ok(5 << 20));
        assert_eq!(parse_upload_range("0-007"), Ok(8));
        assert_eq!(parse_upload_range("0-18446744073709551614"), Ok(u64::MAX));
        for big in ["0-18446744073709551615", "0-99999999999999999999999"] {
            assert_eq!(
                parse_upload_range(big),
                Err(HeaderParseError::IntRange(big.into()))
            );
        }
        for bad in [
            "",
            "0-",
            "0",
            "1-5",
            "0-+5",
            "0--1",
            "0- 5",
            " 0-5",
            "0-5 ",
            "bytes=0-5",
            "0-5-6",
            "0-５",
        ] {
            assert_eq!(
                parse_upload_range(bad),
                Err(HeaderParseError::Malformed(bad.into())),
                "{bad:?}"
            );
        }
    }
}
