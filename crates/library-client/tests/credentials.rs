//! The library's token goes to the library and to a redirect target on
//! the library's own origin, and nowhere else.

mod support;

use library_client::{Client, Downloader, Pull, Push};
use library_testserver::{DownloadMode, Listener, TestServer};
use support::*;

fn bytes() -> Vec<u8> {
    (0..1_500_000u32).map(|i| (i % 253) as u8).collect()
}

#[tokio::test]
async fn token_reaches_a_same_origin_redirect_target() {
    let server = TestServer::builder()
        .token(TOKEN)
        .download(DownloadMode::RedirectSameListener)
        .start()
        .await
        .unwrap();
    server.add_image("e", "c", "k", &["latest"], "amd64", bytes());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.sif");
    client(&server)
        .download_image(
            &out,
            &Pull::new("e/c/k").arch("amd64").downloader(Downloader {
                concurrency: library_client::Concurrency::Fixed(2),
                part_size: Some(500_000),
            }),
        )
        .await
        .unwrap();
    let blobs: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("blobs/"))
        .collect();
    assert_eq!(blobs.len(), 3);
    for r in &blobs {
        assert_eq!(r.listener, Listener::Library);
        assert_eq!(r.authorization(), Some(format!("Bearer {TOKEN}").as_str()));
    }
}

#[tokio::test]
async fn token_never_reaches_another_port() {
    let server = TestServer::builder()
        .token(TOKEN)
        .download(DownloadMode::RedirectOtherListener)
        .start()
        .await
        .unwrap();
    server.add_image("e", "c", "k", &["latest"], "amd64", bytes());
    let dir = tempfile::tempdir().unwrap();
    client(&server)
        .download_image(dir.path().join("k.sif"), &Pull::new("e/c/k").arch("amd64"))
        .await
        .unwrap();
    let reqs = server.requests();
    let blobs: Vec<_> = reqs
        .iter()
        .filter(|r| r.listener == Listener::Blob)
        .collect();
    assert!(!blobs.is_empty());
    assert!(
        blobs.iter().all(|r| r.authorization().is_none()),
        "token sent to another port"
    );
}

#[tokio::test]
async fn token_never_reaches_another_host() {
    // The client knows the library as `localhost`; the server redirects to
    // 127.0.0.1 on the same port: another host, so no token.
    let server = TestServer::builder()
        .download(DownloadMode::RedirectSameListener)
        .start()
        .await
        .unwrap();
    server.add_image("e", "c", "k", &["latest"], "amd64", bytes());
    let base = format!("http://localhost:{}/", server.library_addr().port());
    let client = Client::builder()
        .base_url(base)
        .token(TOKEN)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    client
        .download_image(dir.path().join("k.sif"), &Pull::new("e/c/k").arch("amd64"))
        .await
        .unwrap();
    let reqs = server.requests();
    let library: Vec<_> = reqs.iter().filter(|r| r.path.contains("v1/")).collect();
    assert!(library
        .iter()
        .all(|r| r.authorization() == Some(format!("Bearer {TOKEN}").as_str())));
    let blobs: Vec<_> = reqs.iter().filter(|r| r.path.contains("blobs/")).collect();
    assert!(!blobs.is_empty());
    assert!(
        blobs.iter().all(|r| r.authorization().is_none()),
        "token sent to another host"
    );
}

#[tokio::test]
async fn token_never_reaches_presigned_upload_urls() {
    let server = TestServer::builder().token(TOKEN).start().await.unwrap();
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let small = random_file(dir.path(), "s.sif", 10_000, 1);
    let big = random_file(dir.path(), "b.sif", 64 * 1024 * 1024 + 5, 2);
    client
        .upload_image(&small, &Push::new("e/c/s").arch("amd64"))
        .await
        .unwrap();
    client
        .upload_image(&big, &Push::new("e/c/b").arch("amd64"))
        .await
        .unwrap();
    let reqs = server.requests();
    let puts: Vec<_> = reqs
        .iter()
        .filter(|r| r.listener == Listener::Blob)
        .collect();
    assert!(puts.len() >= 2);
    assert!(
        puts.iter().all(|r| r.authorization().is_none()),
        "token sent to a presigned URL"
    );
}

#[tokio::test]
async fn debug_output_hides_the_token() {
    let c = Client::builder()
        .base_url("http://127.0.0.1:9")
        .token("s3cr3t-value")
        .build()
        .unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert!(!format!("{:?}", Client::builder().token("s3cr3t-value")).contains("s3cr3t"));
}
