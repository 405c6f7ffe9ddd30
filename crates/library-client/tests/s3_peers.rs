//! Pushes through real presigned URLs of real S3 servers, started by the
//! project's peer scripts (`cargo xtask test`): moto (checks the multipart
//! flow, part ETags and sizes, not signatures) and s3s-fs (checks SigV4
//! signatures of presigned URLs). The test server hands out the URLs and
//! verifies the stored object's SHA-256 before it completes an upload;
//! the image is then pulled back and compared.

mod support;

use library_client::{Pull, Push, UploadKind};
use library_testserver::{Multipart, S3Backend, TestServer};
use support::*;

const MIB: u64 = 1024 * 1024;

/// The S3 server whose variables start with `prefix` (`S3_` for moto,
/// `S3S_` for s3s-fs).
fn backend(prefix: &str, sign_sha: bool) -> S3Backend {
    let var = |k: &str| {
        std::env::var(format!("{prefix}{k}")).unwrap_or_else(|_| {
            panic!("{prefix}{k} is not set: run `cargo xtask test`, which starts the S3 peers")
        })
    };
    let mut b = S3Backend::new(
        url::Url::parse(&var("ENDPOINT")).unwrap(),
        "test-bucket",
        var("ACCESS_KEY_ID"),
        var("SECRET_ACCESS_KEY"),
    );
    b.region = var("REGION");
    b.sign_content_sha256 = sign_sha;
    b
}

async fn push_and_pull(b: S3Backend, size: u64, expect: UploadKind) {
    let server = TestServer::builder()
        .s3(b)
        .multipart(Multipart::Supported {
            part_size: 16 * MIB,
        })
        .start()
        .await
        .unwrap();
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "img.sif", size, size);
    let pushed = client
        .upload_image(&file, &Push::new("e/c/k").arch("amd64").tags(["v1"]))
        .await
        .unwrap_or_else(|e| panic!("push of {size} bytes: {e}"));
    assert_eq!(pushed.upload, expect);
    // The library's token never went to S3: the requests the test server
    // saw are all on its own listener.
    let out = dir.path().join("out.sif");
    client
        .download_image(&out, &Pull::new("e/c/k").tag("v1").arch("amd64"))
        .await
        .unwrap();
    assert_eq!(sha256_hex(&out), sha256_hex(&file));
}

#[tokio::test]
#[ignore = "needs the moto S3 peer: run cargo xtask test"]
async fn moto_single_presigned_upload() {
    push_and_pull(backend("S3_", false), 3 * MIB + 7, UploadKind::V2Single).await;
}

#[tokio::test]
#[ignore = "needs the moto S3 peer: run cargo xtask test"]
async fn moto_single_presigned_upload_signing_the_content_sha256() {
    push_and_pull(backend("S3_", true), 3 * MIB + 7, UploadKind::V2Single).await;
}

#[tokio::test]
#[ignore = "needs the moto S3 peer: run cargo xtask test"]
async fn moto_multipart_presigned_upload() {
    push_and_pull(backend("S3_", false), 64 * MIB + 1, UploadKind::V2Multipart).await;
}

#[tokio::test]
#[ignore = "needs the moto S3 peer: run cargo xtask test"]
async fn moto_multipart_presigned_upload_signing_the_content_sha256() {
    push_and_pull(backend("S3_", true), 64 * MIB + 1, UploadKind::V2Multipart).await;
}

#[tokio::test]
#[ignore = "needs the s3s-fs S3 peer: run cargo xtask test"]
async fn s3s_single_presigned_upload() {
    push_and_pull(backend("S3S_", false), 3 * MIB + 7, UploadKind::V2Single).await;
}

#[tokio::test]
#[ignore = "needs the s3s-fs S3 peer: run cargo xtask test"]
async fn s3s_multipart_presigned_upload() {
    push_and_pull(
        backend("S3S_", false),
        64 * MIB + 1,
        UploadKind::V2Multipart,
    )
    .await;
}
