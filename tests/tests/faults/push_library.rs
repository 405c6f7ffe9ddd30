//! Pushes on the library path (v2 single upload and multipart) under the
//! faults of the matrix that apply to an upload.

use std::time::Duration;

use library_client::{ErrorKind, Push, UploadKind};
use library_e2e::*;
use library_testserver::{Endpoint, Fault, FaultAction, Listener, Multipart, TestServer};

/// Multipart uploads start above 64 MiB.
const BIG: usize = 64 * 1024 * 1024 + 4096;
const MP_PART: u64 = 16 * 1024 * 1024;

async fn server() -> TestServer {
    TestServer::builder()
        .token(LIBRARY_TOKEN)
        .multipart(Multipart::Supported { part_size: MP_PART })
        .start()
        .await
        .unwrap()
}

fn file(dir: &std::path::Path, name: &str, len: usize, seed: u64) -> (std::path::PathBuf, Vec<u8>) {
    let bytes = random_bytes(len, seed);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn push(path: &str) -> Push {
    Push::new(path).arch("amd64").tags(["v1"])
}

fn count(s: &TestServer, method: &str, needle: &str) -> usize {
    s.requests()
        .iter()
        .filter(|r| r.method == method && r.path.contains(needle))
        .count()
}

fn single_puts(s: &TestServer) -> usize {
    s.requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob && r.method == "PUT")
        .count()
}

/// The image is stored with exactly `bytes` and tagged `v1`.
fn stored(s: &TestServer, name: &str, bytes: &[u8]) {
    let img = s
        .find_image("e", "c", name, "v1", "amd64")
        .expect("image tagged");
    assert!(img.uploaded);
    assert!(
        s.image_bytes(&img.id).unwrap() == bytes,
        "stored bytes differ"
    );
}

/// No image with these bytes is marked uploaded.
fn not_stored(s: &TestServer, name: &str, bytes: &[u8]) {
    let hash = format!("sha256.{}", sha256_hex(bytes));
    if let Some(img) = s.find_image("e", "c", name, &hash, "amd64") {
        assert!(!img.uploaded, "a failed upload is marked uploaded");
    }
    assert!(s.find_image("e", "c", name, "v1", "amd64").is_none());
}

#[tokio::test]
async fn connection_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = file(dir.path(), "a.sif", 10_000, 1);
    let base = url::Url::parse(&format!("http://127.0.0.1:{}/", dead_port())).unwrap();
    let e = client(&base)
        .upload_image(&path, &push("e/c/a"))
        .await
        .unwrap_err();
    assert!(e.is_network(), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_connect()), "{e:?}");
}

#[tokio::test]
async fn an_upload_answered_500_then_200() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = file(dir.path(), "a.sif", 300_000, 2);
    s.inject(Fault::new(Endpoint::UploadPut, FaultAction::Status(500)));
    let pushed = client(&s.url())
        .upload_image(&path, &push("e/c/a"))
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::V2Single);
    assert_eq!(single_puts(&s), 2);
    stored(&s, "a", &bytes);
}

#[tokio::test]
async fn an_upload_answered_503_on_every_try() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = file(dir.path(), "a.sif", 300_000, 3);
    s.inject(Fault::new(Endpoint::UploadPut, FaultAction::Status(500)).times(ATTEMPTS - 1));
    s.inject(Fault::new(Endpoint::UploadPut, FaultAction::Status(503)));
    let c = client(&s.url());
    let e = c.upload_image(&path, &push("e/c/a")).await.unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{e}"
    );
    assert_eq!(single_puts(&s), ATTEMPTS, "one try and the retries");
    assert_eq!(
        count(&s, "PUT", "/_complete"),
        0,
        "a failed upload is not completed"
    );
    not_stored(&s, "a", &bytes);
    // Pushed again, it goes through.
    c.upload_image(&path, &push("e/c/a")).await.unwrap();
    stored(&s, "a", &bytes);
}

#[tokio::test]
async fn an_upload_cut_mid_body() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = file(dir.path(), "a.sif", 300_000, 4);
    let c = client(&s.url());
    s.inject(Fault::new(Endpoint::UploadPut, FaultAction::DropConnection));
    c.upload_image(&path, &push("e/c/a")).await.unwrap();
    stored(&s, "a", &bytes);

    let (path, bytes) = file(dir.path(), "b.sif", 300_000, 5);
    s.inject(Fault::new(Endpoint::UploadPut, FaultAction::DropConnection).always());
    let e = c.upload_image(&path, &push("e/c/b")).await.unwrap_err();
    assert!(e.is_network(), "{e:?}");
    not_stored(&s, "b", &bytes);
}

#[tokio::test]
async fn an_upload_past_the_request_timeout() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = file(dir.path(), "a.sif", 300_000, 6);
    let c = client_builder(&s.url())
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    s.inject(Fault::new(
        Endpoint::UploadPut,
        FaultAction::Delay(Duration::from_secs(2)),
    ));
    c.upload_image(&path, &push("e/c/a")).await.unwrap();
    stored(&s, "a", &bytes);

    s.inject(
        Fault::new(
            Endpoint::UploadPut,
            FaultAction::Delay(Duration::from_secs(2)),
        )
        .times(ATTEMPTS),
    );
    let (path, bytes) = file(dir.path(), "b.sif", 300_000, 7);
    let e = c.upload_image(&path, &push("e/c/b")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_timeout()), "{e:?}");
    not_stored(&s, "b", &bytes);
}

#[tokio::test]
async fn a_multipart_part_answered_500_then_200() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = file(dir.path(), "big.sif", BIG, 8);
    s.inject(Fault::new(Endpoint::MultipartPartPut, FaultAction::Status(500)).part(3));
    s.inject(Fault::new(Endpoint::MultipartPartPut, FaultAction::DropConnection).part(2));
    let pushed = client(&s.url())
        .upload_image(&path, &push("e/c/big"))
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::V2Multipart);
    let parts: Vec<String> = s
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob && r.method == "PUT")
        .map(|r| r.path.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(parts.len(), 5 + 2, "five parts and two retries: {parts:?}");
    assert_eq!(count(&s, "PUT", "_multipart_complete"), 1);
    assert_eq!(count(&s, "PUT", "_multipart_abort"), 0);
    stored(&s, "big", &bytes);
}

#[tokio::test]
async fn a_multipart_part_url_failing_every_retry_aborts() {
    // (A part's PUT failing every retry: library-client/tests/failures.rs.)
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = file(dir.path(), "big.sif", BIG, 9);
    s.inject(
        Fault::new(Endpoint::MultipartPartUrl, FaultAction::Status(503))
            .part(4)
            .always(),
    );
    let e = client(&s.url())
        .upload_image(&path, &push("e/c/big"))
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{e}"
    );
    let asked_for_4 = s
        .requests()
        .iter()
        .filter(|r| {
            r.method == "PUT"
                && r.path.ends_with("/_multipart")
                && r.json().is_some_and(|j| j["partNumber"] == 4)
        })
        .count();
    assert_eq!(asked_for_4, ATTEMPTS);
    assert_eq!(count(&s, "PUT", "_multipart_abort"), 1);
    assert_eq!(count(&s, "PUT", "_multipart_complete"), 0);
    not_stored(&s, "big", &bytes);
}
