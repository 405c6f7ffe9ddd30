//! Pushing images.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method};
use library_model::{
    AbortMultipartUploadRequest, CompleteMultipartUploadRequest, CompletedPart,
    MultipartUploadStartRequest, UploadImage, UploadImageComplete, UploadImagePart,
    UploadImagePartRequest, UploadImageRequest,
};
use library_transport::{Concurrency, MultipartUpload, NoProgress, PartInfo, PartTarget, Progress};
use url::Url;

use crate::client::Client;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::{API_VERSION_V2_ARCH_TAGS, API_VERSION_V2_UPLOAD};

/// Images larger than this are uploaded in parts (when the server can).
pub(crate) const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;

/// The most parts a multipart upload may have (the limit of S3, whose
/// presigned part URLs the protocol hands out). A plan with more, such as
/// parts of a few bytes, is refused before any part is sent.
pub(crate) const MAX_PARTS: u64 = 10_000;

/// The checksums of a file to push: its SHA-256 (which names the image),
/// and its MD5 when a single-piece upload may need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sums {
    pub(crate) sha256: [u8; 32],
    pub(crate) md5: Option<[u8; 16]>,
}

impl Sums {
    /// Reads `file` once for its SHA-256, and for its MD5 too when `md5`.
    pub(crate) async fn of(file: &Path, md5: bool) -> Result<Sums> {
        let path = file.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if md5 {
                library_transport::checksums(&path).map(|c| Sums {
                    sha256: c.sha256,
                    md5: Some(c.md5),
                })
            } else {
                library_transport::sha256_file(&path).map(|sha256| Sums { sha256, md5: None })
            }
        })
        .await
        .map_err(|e| Error::io(file, std::io::Error::other(e)))?
        .map_err(Error::from)
    }

    /// The SHA-256 as lower-case hex.
    pub(crate) fn sha256_hex(&self) -> String {
        library_transport::hex(&self.sha256)
    }
}

/// What to push: a container path, the image's architecture, its tags and
/// description.
///
/// ```
/// use library_client::Push;
/// let p = Push::new("alice/tools/samtools")
///     .arch("amd64")
///     .tags(["1.17", "latest"])
///     .description("samtools 1.17");
/// assert_eq!(p.tag_names(), ["1.17", "latest"]);
/// ```
#[derive(Clone)]
#[must_use]
pub struct Push {
    pub(crate) path: String,
    pub(crate) arch: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) description: String,
    pub(crate) concurrency: Concurrency,
    pub(crate) progress: Arc<dyn Progress>,
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("path", &self.path)
            .field("arch", &self.arch)
            .field("tags", &self.tags)
            .field("description", &self.description)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Push {
    /// Push to `entity/collection/container` (a `library://` prefix is
    /// accepted; tags go through [`Push::tags`], not into the path).
    pub fn new(path: impl Into<String>) -> Push {
        let path = path.into();
        let path = path
            .strip_prefix("library://")
            .map(str::to_string)
            .unwrap_or(path);
        Push {
            path,
            arch: None,
            tags: Vec::new(),
            description: String::new(),
            concurrency: Concurrency::default(),
            progress: Arc::new(NoProgress),
        }
    }

    /// The image's architecture (default: the primary architecture in the
    /// SIF file's header).
    pub fn arch(mut self, arch: impl Into<String>) -> Push {
        self.arch = Some(arch.into());
        self
    }

    /// The tags to set on the image (none by default).
    pub fn tags<I, S>(mut self, tags: I) -> Push
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The image's description.
    pub fn description(mut self, d: impl Into<String>) -> Push {
        self.description = d.into();
        self
    }

    /// Parts uploaded at once in a multipart upload: automatic up to 16 by
    /// default (more streams while they make the upload faster, fewer when
    /// the server refuses the load), or a fixed number.
    ///
    /// ```
    /// use library_client::{Concurrency, Push};
    /// let p = Push::new("alice/tools/samtools");
    /// assert_eq!(p.part_concurrency(), Concurrency::Auto { max: 16 });
    /// let p = p.concurrency(Concurrency::Fixed(4));
    /// assert_eq!(p.part_concurrency(), Concurrency::Fixed(4));
    /// ```
    pub fn concurrency(mut self, c: Concurrency) -> Push {
        self.concurrency = match c {
            Concurrency::Auto { max } => Concurrency::Auto { max: max.max(1) },
            Concurrency::Fixed(n) => Concurrency::Fixed(n.max(1)),
        };
        self
    }

    /// Report progress here (default: nowhere).
    pub fn progress(mut self, p: Arc<dyn Progress>) -> Push {
        self.progress = p;
        self
    }

    /// The container path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The architecture, when given.
    pub fn arch_name(&self) -> Option<&str> {
        self.arch.as_deref()
    }

    /// The tags.
    pub fn tag_names(&self) -> &[String] {
        &self.tags
    }

    /// The description.
    pub fn description_text(&self) -> &str {
        &self.description
    }

    /// Parts uploaded at once.
    pub fn part_concurrency(&self) -> Concurrency {
        self.concurrency
    }

    /// The progress sink.
    pub fn progress_sink(&self) -> Arc<dyn Progress> {
        self.progress.clone()
    }

    fn validate(&self) -> Result<()> {
        if self.path.contains(':') {
            return Err(Error::bad_request(format!(
                "push path {:?} must not contain tags: give them separately",
                self.path
            )));
        }
        if !library_ref::is_library_push_ref(&self.path) {
            return Err(Error::bad_request(format!(
                "push path {:?} is not entity/collection/container of lowercase letters, digits and single . _ - separators",
                self.path
            )));
        }
        for t in &self.tags {
            crate::api::check_tag(t)?;
        }
        if let Some(a) = &self.arch {
            if a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Error::bad_request(format!("invalid architecture {a:?}")));
            }
        }
        Ok(())
    }
}

/// How an image's bytes were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadKind {
    /// Not sent: the library already had the image.
    AlreadyPresent,
    /// In the body of `POST v1/imagefile/<id>`.
    V1,
    /// One PUT to a presigned URL.
    V2Single,
    /// Concurrent parts to presigned URLs.
    V2Multipart,
    /// To the OCI registry the library fronts.
    Oci,
}

/// A pushed image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushedImage {
    /// The image's ID in the library (empty on the OCI path).
    pub image_id: String,
    /// `sha256.<hex>` of the file.
    pub hash: String,
    /// The file's size.
    pub size: u64,
    /// The architecture the image was pushed as.
    pub arch: String,
    /// How the bytes were sent.
    pub upload: UploadKind,
    /// What the library answered to the completed upload, when it said
    /// anything (quota and container URL).
    pub complete: Option<UploadImageComplete>,
}

impl Client {
    /// Push the image file `file`.
    ///
    /// The file's MD5 and SHA-256 are computed in one read. When the
    /// library keeps its images in an OCI registry the image goes there;
    /// otherwise the entity, collection and container are found or
    /// created, the image record is found (by hash) or created, the bytes
    /// are sent unless the library already has them (v1 upload, v2
    /// presigned upload, or v2 multipart upload with concurrent parts over
    /// 64 MiB, by server version), and every tag is set (per architecture
    /// on servers that support it).
    ///
    /// A failed multipart upload is aborted on the server.
    ///
    /// ```no_run
    /// # async fn demo(client: library_client::Client) -> library_client::Result<()> {
    /// use library_client::Push;
    /// let pushed = client.upload_image("tool.sif", &Push::new("alice/tools/tool").tags(["v1"])).await?;
    /// println!("{} as {}", pushed.hash, pushed.arch);
    /// # Ok(()) }
    /// ```
    pub async fn upload_image(&self, file: impl AsRef<Path>, push: &Push) -> Result<PushedImage> {
        self.upload(file.as_ref(), push)
            .await
            .map_err(|e| self.scrub(e))
    }

    async fn upload(&self, file: &Path, push: &Push) -> Result<PushedImage> {
        push.validate()?;
        let meta = std::fs::metadata(file).map_err(|e| Error::io(file, e))?;
        if !meta.is_file() {
            return Err(Error::bad_request(format!(
                "{} is not a regular file",
                file.display()
            )));
        }
        let arch = match &push.arch {
            Some(a) => a.clone(),
            None => crate::sif::read_sif_header(file)?.arch,
        };
        let size = meta.len();
        // A file large enough for a multipart upload needs no MD5 (its
        // parts carry SHA-256s): one hash, not two, before the first byte.
        let sums = Sums::of(file, size <= MULTIPART_THRESHOLD).await?;
        if let Some(target) = self.oci_target(&push.path, true).await {
            return crate::oci::push_via_library(self, &target, file, &sums, size, &arch, push)
                .await;
        }
        self.upload_library(file, push, &arch, &sums, size).await
    }

    async fn upload_library(
        &self,
        file: &Path,
        push: &Push,
        arch: &str,
        sums: &Sums,
        size: u64,
    ) -> Result<PushedImage> {
        let hash = format!("sha256.{}", sums.sha256_hex());
        let mut parts = push.path.splitn(3, '/');
        let (e, c, k) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let entity = match self.get_entity(e).await {
            Ok(x) => x,
            Err(Error::NotFound { .. }) => self.create_entity(e).await?,
            Err(err) => return Err(err),
        };
        let collection_path = format!("{e}/{c}");
        let collection = match self.get_collection(&collection_path).await {
            Ok(x) => x,
            Err(Error::NotFound { .. }) => self.create_collection(c, &entity.id).await?,
            Err(err) => return Err(err),
        };
        let container = match self.get_container(&push.path).await {
            Ok(x) => x,
            Err(Error::NotFound { .. }) => self.create_container(k, &collection.id).await?,
            Err(err) => return Err(err),
        };
        let image_ref = format!("{}:{hash}", push.path);
        let image = match self.get_image(arch, &image_ref).await {
            Ok(x) => x,
            Err(Error::NotFound { .. }) => {
                self.create_image(&hash, &container.id, &push.description)
                    .await?
            }
            Err(err) => return Err(err),
        };
        // The ID goes into upload paths: it must be one plain segment.
        crate::api::check_id(&image.id)?;
        let (upload, complete) = if image.is_uploaded() {
            tracing::info!(image = %image.id, "the library already has this image; not sending it");
            (UploadKind::AlreadyPresent, None)
        } else {
            self.upload_bytes(file, &image.id, sums, size, push).await?
        };
        if self.api_at_least(API_VERSION_V2_ARCH_TAGS).await {
            for t in &push.tags {
                self.set_tag_v2(&container.id, arch, t, &image.id).await?;
            }
        } else {
            for t in &push.tags {
                self.set_tag(&container.id, t, &image.id).await?;
            }
        }
        Ok(PushedImage {
            image_id: image.id,
            hash,
            size,
            arch: arch.to_string(),
            upload,
            complete,
        })
    }

    async fn upload_bytes(
        &self,
        file: &Path,
        image_id: &str,
        sums: &Sums,
        size: u64,
        push: &Push,
    ) -> Result<(UploadKind, Option<UploadImageComplete>)> {
        if !self.api_at_least(API_VERSION_V2_UPLOAD).await {
            self.upload_v1(file, image_id, size, push).await?;
            return Ok((UploadKind::V1, None));
        }
        if size > MULTIPART_THRESHOLD {
            match self.upload_multipart(file, image_id, size, push).await {
                Ok(done) => return Ok((UploadKind::V2Multipart, done)),
                Err(MultipartError::NotSupported) => {
                    tracing::debug!("the library has no multipart upload; sending in one piece")
                }
                Err(MultipartError::Failed(e)) => return Err(e),
            }
        }
        let done = self
            .upload_v2_single(file, image_id, sums, size, push)
            .await?;
        Ok((UploadKind::V2Single, done))
    }

    async fn upload_v1(&self, file: &Path, image_id: &str, size: u64, push: &Push) -> Result<()> {
        let url = self.endpoint(&format!("v1/imagefile/{image_id}"), &[])?;
        push.progress.total(size);
        let mut headers = self.auth_headers();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let r = self
            .put_or_post_file(Method::POST, &url, &headers, file, size)
            .await;
        match &r {
            Ok(()) => {
                push.progress.increment(size);
                push.progress.finish();
            }
            Err(_) => push.progress.abort(),
        }
        r
    }

    /// Send a whole file as a request body to the library itself, again
    /// while the outcome may be retried for `method`.
    async fn put_or_post_file(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        file: &Path,
        size: u64,
    ) -> Result<()> {
        let resp = self
            .inner
            .http
            .send_with_retry(&self.inner.retry, || {
                let body = library_transport::Body::file_range(file, 0, size)?;
                let mut req =
                    library_transport::new_request(method.clone(), url, &HeaderMap::new(), body)?;
                req.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, size.into());
                req.headers_mut().extend(headers.clone());
                Ok(req)
            })
            .await?;
        let status = resp.status();
        if status.is_success() {
            resp.into_body().drain(64 * 1024).await;
            return Ok(());
        }
        Err(crate::client::status_error(resp).await)
    }

    async fn upload_v2_single(
        &self,
        file: &Path,
        image_id: &str,
        sums: &Sums,
        size: u64,
        push: &Push,
    ) -> Result<Option<UploadImageComplete>> {
        let url = self.endpoint(&format!("v2/imagefile/{image_id}"), &[])?;
        let md5 = match sums.md5 {
            Some(m) => m,
            // A large file whose server has no multipart upload after all.
            None => Sums::of(file, true).await?.md5.unwrap_or_default(),
        };
        let req = UploadImageRequest {
            size: size as i64,
            md5_checksum: library_transport::hex(&md5),
            sha256_checksum: sums.sha256_hex(),
        };
        let answer: UploadImage = self
            .library_json(Method::POST, &url, Some(&req), "image upload")
            .await?;
        if answer.upload_url.is_empty() {
            return Err(Error::invalid_response(
                library_transport::redact_url(&url),
                "the library gave no upload URL",
            ));
        }
        let target = Url::parse(&answer.upload_url).map_err(|e| {
            Error::invalid_response(
                library_transport::redact_url(&url),
                format!("the library gave an invalid upload URL: {e}"),
            )
        })?;
        check_presigned(&url, &target)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if crate::presigned::remote_sha256_support(target.as_str()) {
            headers.insert(
                "x-amz-content-sha256",
                HeaderValue::from_str(&sums.sha256_hex()).expect("hex is a valid header"),
            );
        }
        push.progress.total(size);
        let put = self
            .inner
            .http
            .put_file_range(&target, &headers, file, 0, size, &self.inner.retry)
            .await;
        match put {
            Ok(_) => {
                push.progress.increment(size);
                push.progress.finish();
            }
            Err(e) => {
                push.progress.abort();
                return Err(e.into());
            }
        }
        let url = self.endpoint(&format!("v2/imagefile/{image_id}/_complete"), &[])?;
        let done: Option<UploadImageComplete> = self
            .library_json_opt(
                Method::PUT,
                &url,
                Some(&library_model::UploadImageCompleteRequest {}),
                "image upload completion",
            )
            .await?;
        Ok(done)
    }

    async fn upload_multipart(
        &self,
        file: &Path,
        image_id: &str,
        size: u64,
        push: &Push,
    ) -> std::result::Result<Option<UploadImageComplete>, MultipartError> {
        let url = self.endpoint(&format!("v2/imagefile/{image_id}/_multipart"), &[])?;
        let start = self
            .raw_json(
                Method::POST,
                &url,
                Some(&MultipartUploadStartRequest { size: size as i64 }),
            )
            .await?;
        if start.status == http::StatusCode::NOT_FOUND {
            return Err(MultipartError::NotSupported);
        }
        start
            .check(&Method::POST)
            .map_err(|e| Error::about("multipart upload", e))?;
        let mp: library_model::MultipartUpload = start.data().map_err(Error::from)?;
        let part_size = u64::try_from(mp.part_size).unwrap_or(0);
        let expected_parts = if part_size == 0 {
            0
        } else {
            size.div_ceil(part_size)
        };
        if part_size == 0
            || mp.total_parts < 1
            || expected_parts != mp.total_parts as u64
            || expected_parts > MAX_PARTS
        {
            let e = Error::invalid_response(
                library_transport::redact_url(&url),
                format!(
                    "the library asks for {} parts of {} bytes for a file of {size} bytes",
                    mp.total_parts, mp.part_size
                ),
            );
            self.abort_multipart(image_id, &mp.upload_id).await;
            return Err(e.into());
        }
        let s3_compliant = mp.is_s3_compliant();
        let job = MultipartUpload::new(file, size, part_size)
            .streams(push.concurrency)
            .retry(self.inner.retry.clone())
            .part_sha256(s3_compliant);
        let client = self.clone();
        let upload_id = mp.upload_id.clone();
        let image = image_id.to_string();
        push.progress.total(size);
        let parts = self
            .inner
            .http
            .upload_parts(&job, push.progress.clone(), move |part: PartInfo| {
                let client = client.clone();
                let upload_id = upload_id.clone();
                let image = image.clone();
                async move { client.part_target(&image, &upload_id, part).await }
            })
            .await;
        let parts = match parts {
            Ok(p) => p.parts,
            Err(e) => {
                self.abort_multipart(image_id, &mp.upload_id).await;
                return Err(Error::from(e).into());
            }
        };
        let url = self.endpoint(&format!("v2/imagefile/{image_id}/_multipart_complete"), &[])?;
        let req = CompleteMultipartUploadRequest {
            upload_id: mp.upload_id.clone(),
            completed_parts: Some(
                parts
                    .iter()
                    .map(|p| CompletedPart {
                        part_number: p.number as i64,
                        token: p.etag.clone(),
                    })
                    .collect(),
            ),
        };
        let done: Option<UploadImageComplete> = self
            .library_json_opt(Method::PUT, &url, Some(&req), "multipart upload completion")
            .await?;
        Ok(done)
    }

    /// Ask the library where part `part` goes.
    async fn part_target(
        &self,
        image_id: &str,
        upload_id: &str,
        part: PartInfo,
    ) -> library_transport::Result<PartTarget> {
        let url = self
            .endpoint(&format!("v2/imagefile/{image_id}/_multipart"), &[])
            .map_err(|e| library_transport::Error::InvalidRequest(e.to_string()))?;
        let sha = part.sha256.map(|d| library_transport::hex(&d));
        let req = UploadImagePartRequest {
            part_size: part.len as i64,
            upload_id: upload_id.to_string(),
            part_number: part.number as i64,
            sha256_checksum: sha.clone().unwrap_or_default(),
        };
        let resp = self
            .inner
            .http
            .request_json(Method::PUT, &url, &self.auth_headers(), Some(&req))
            .await?;
        resp.check(&Method::PUT)?;
        let answer: UploadImagePart = resp.data()?;
        let target = Url::parse(&answer.presigned_url).map_err(|e| {
            library_transport::Error::InvalidResponse {
                url: resp.url.clone(),
                reason: format!("invalid presigned URL for part {}: {e}", part.number),
            }
        })?;
        if !matches!(target.scheme(), "http" | "https") {
            return Err(library_transport::Error::InvalidResponse {
                url: resp.url.clone(),
                reason: format!("presigned URL for part {} is not http(s)", part.number),
            });
        }
        let mut t = PartTarget::new(target);
        t.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(hex) = sha {
            t.headers.insert(
                "x-amz-content-sha256",
                HeaderValue::from_str(&hex).expect("hex is a valid header"),
            );
        }
        Ok(t)
    }

    async fn abort_multipart(&self, image_id: &str, upload_id: &str) {
        let Ok(url) = self.endpoint(&format!("v2/imagefile/{image_id}/_multipart_abort"), &[])
        else {
            return;
        };
        let req = AbortMultipartUploadRequest {
            upload_id: upload_id.to_string(),
        };
        match self.raw_json(Method::PUT, &url, Some(&req)).await {
            Ok(r) if r.status.is_success() => tracing::info!(upload_id, "multipart upload aborted"),
            Ok(r) => {
                tracing::warn!(status = %r.status, upload_id, "aborting the multipart upload failed")
            }
            Err(e) => tracing::warn!(error = %e, upload_id, "aborting the multipart upload failed"),
        }
    }
}

/// A presigned URL (given in the answer of `endpoint`) must be http(s);
/// it never gets the library's token.
fn check_presigned(endpoint: &Url, url: &Url) -> Result<()> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(Error::invalid_response(
            library_transport::redact_url(endpoint),
            format!(
                "the library gave a {:?} upload URL; only http and https are used",
                url.scheme()
            ),
        ))
    }
}

enum MultipartError {
    NotSupported,
    Failed(Error),
}

impl From<Error> for MultipartError {
    fn from(e: Error) -> Self {
        MultipartError::Failed(e)
    }
}

impl From<library_transport::Error> for MultipartError {
    fn from(e: library_transport::Error) -> Self {
        MultipartError::Failed(e.into())
    }
}
