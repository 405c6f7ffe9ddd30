//! Real S3 mode: presigned URLs of an S3 server, and the few S3 calls the
//! server makes itself (bucket creation, multipart create, complete and
//! abort, and reading objects back), all through SigV4 presigned URLs.
//!
//! Signing `x-amz-content-sha256` puts the header into the signed headers
//! with an `UNSIGNED-PAYLOAD` payload hash (the way `rusty-s3` signs); an S3
//! server that expects the header's value as the payload hash of a
//! presigned URL rejects such URLs.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rusty_s3::actions::CreateMultipartUpload;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;

use crate::store::{BoxError, Data, Store, Want};
use crate::S3Backend;

/// How long presigned URLs stay valid.
const EXPIRES: Duration = Duration::from_secs(3600);

/// The largest error or XML answer read from S3.
const SMALL_BODY: usize = 1 << 20;

/// A connection to the configured S3 server.
pub(crate) struct S3Client {
    backend: S3Backend,
    bucket: Bucket,
    credentials: Credentials,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn io_err(e: impl Into<BoxError>) -> std::io::Error {
    std::io::Error::other(e.into())
}

impl S3Client {
    /// Prepares the client and creates the bucket when it is missing.
    pub(crate) async fn connect(backend: S3Backend) -> std::io::Result<S3Client> {
        if backend.endpoint.scheme() != "http" {
            return Err(io_err("the S3 endpoint must be an http:// URL"));
        }
        let bucket = Bucket::new(
            backend.endpoint.clone(),
            UrlStyle::Path,
            backend.bucket.clone(),
            backend.region.clone(),
        )
        .map_err(io_err)?;
        let credentials = Credentials::new(backend.access_key.clone(), backend.secret_key.clone());
        let client = S3Client {
            backend,
            bucket,
            credentials,
            http: Client::builder(TokioExecutor::new()).build_http(),
        };
        let url = client
            .bucket
            .create_bucket(&client.credentials)
            .sign(EXPIRES);
        let (status, body) = client
            .call(Method::PUT, url, Bytes::new())
            .await
            .map_err(io_err)?;
        if !(status.is_success() || status == StatusCode::CONFLICT) {
            return Err(io_err(format!(
                "creating bucket {}: {status}: {body}",
                client.backend.bucket
            )));
        }
        Ok(client)
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, BoxError> {
        let mut req = Request::builder().method(method.clone()).uri(url.as_str());
        if method != Method::GET {
            // Some S3 servers insist on a length even for empty bodies.
            req = req.header(http::header::CONTENT_LENGTH, body.len());
        }
        let req = req.body(Full::new(body))?;
        Ok(self.http.request(req).await?)
    }

    /// Sends a request and reads a small answer as text.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Bytes,
    ) -> Result<(StatusCode, String), BoxError> {
        let resp = self.request(method, url, body).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(chunk) = frame?.into_data() {
                if text.len() < SMALL_BODY {
                    text.extend_from_slice(&chunk);
                }
            }
        }
        Ok((status, String::from_utf8_lossy(&text).into_owned()))
    }

    fn sign_sha(&self, sha256: &str) -> Option<String> {
        (self.backend.sign_content_sha256 && !sha256.is_empty())
            .then(|| sha256.to_ascii_lowercase())
    }

    /// A presigned `PutObject` URL for `key`.
    pub(crate) fn presign_put(&self, key: &str, sha256: &str) -> String {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        if let Some(sha) = self.sign_sha(sha256) {
            action.headers_mut().insert("x-amz-content-sha256", sha);
        }
        action.sign(EXPIRES).to_string()
    }

    /// A presigned `UploadPart` URL for part `n`.
    pub(crate) fn presign_part(&self, key: &str, upload_id: &str, n: u64, sha256: &str) -> String {
        let part = u16::try_from(n).unwrap_or(u16::MAX);
        let mut action = self
            .bucket
            .upload_part(Some(&self.credentials), key, part, upload_id);
        if let Some(sha) = self.sign_sha(sha256) {
            action.headers_mut().insert("x-amz-content-sha256", sha);
        }
        action.sign(EXPIRES).to_string()
    }

    /// `CreateMultipartUpload`; returns S3's upload ID.
    pub(crate) async fn create_multipart(&self, key: &str) -> Result<String, BoxError> {
        let url = self
            .bucket
            .create_multipart_upload(Some(&self.credentials), key)
            .sign(EXPIRES);
        let (status, body) = self.call(Method::POST, url, Bytes::new()).await?;
        if !status.is_success() {
            return Err(format!("{status}: {body}").into());
        }
        let parsed = CreateMultipartUpload::parse_response(&body)?;
        Ok(parsed.upload_id().to_string())
    }

    /// `CompleteMultipartUpload` with the parts' ETags in order.
    pub(crate) async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), BoxError> {
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(EXPIRES);
        let body = action.body();
        let (status, answer) = self.call(Method::POST, url, Bytes::from(body)).await?;
        // S3 may answer 200 and still report an error in the body.
        if !status.is_success() || answer.contains("<Error>") {
            return Err(format!("{status}: {answer}").into());
        }
        Ok(())
    }

    /// `AbortMultipartUpload`.
    pub(crate) async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BoxError> {
        let url = self
            .bucket
            .abort_multipart_upload(Some(&self.credentials), key, upload_id)
            .sign(EXPIRES);
        let (status, body) = self.call(Method::DELETE, url, Bytes::new()).await?;
        if !status.is_success() {
            return Err(format!("{status}: {body}").into());
        }
        Ok(())
    }

    /// Reads an object back into the server's storage; returns it with its
    /// SHA-256 (hex).
    pub(crate) async fn fetch(&self, key: &str, store: &Store) -> Result<(Data, String), BoxError> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(EXPIRES);
        let resp = self.request(Method::GET, url, Bytes::new()).await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(format!("GET object: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        let hint = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        let received = store
            .receive(
                resp.into_body(),
                Want {
                    md5: false,
                    sha256: true,
                },
                hint,
            )
            .await?;
        Ok((received.data, received.sha256.unwrap_or_default()))
    }
}
