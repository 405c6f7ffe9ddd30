//! Every fault action, and how faults are matched and counted.

mod support;

use std::time::{Duration, Instant};

use http::Method;
use library_testserver::{Endpoint, Fault, FaultAction, Multipart, TestServer};
use serde_json::json;
use support::*;

/// A server with one 10 000-byte image; returns it and the blob URL.
async fn server_with_blob() -> (TestServer, String, Vec<u8>) {
    let s = TestServer::start().await.unwrap();
    let bytes = pattern(10_000);
    let img = s.add_image("e", "c", "k", &["latest"], "amd64", bytes.clone());
    let url = format!("{}blobs/{}?sig=abc", s.blob_url(), img.id);
    (s, url, bytes)
}

#[tokio::test]
async fn status_applies_once_then_the_endpoint_recovers() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    s.inject(Fault::new(Endpoint::Version, FaultAction::Status(503)));
    http.get(&u(&s.url(), "version")).await.assert_error(503);
    assert_eq!(http.get(&u(&s.url(), "version")).await.status, 200);
    // Other endpoints are untouched by a fault for another endpoint.
    s.inject(Fault::new(Endpoint::Search, FaultAction::Status(500)));
    assert_eq!(http.get(&u(&s.url(), "version")).await.status, 200);
    http.get(&u(&s.url(), "v1/search?value=abc"))
        .await
        .assert_error(500);
}

#[tokio::test]
async fn times_and_always() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    s.inject(Fault::new(Endpoint::Version, FaultAction::Status(502)).times(2));
    http.get(&u(&s.url(), "version")).await.assert_error(502);
    http.get(&u(&s.url(), "version")).await.assert_error(502);
    assert_eq!(http.get(&u(&s.url(), "version")).await.status, 200);
    s.inject(Fault::new(Endpoint::Any, FaultAction::Status(500)).always());
    for _ in 0..3 {
        http.get(&u(&s.url(), "v1/entities/x"))
            .await
            .assert_error(500);
    }
}

#[tokio::test]
async fn drop_connection_gives_no_answer() {
    let s = TestServer::start().await.unwrap();
    s.inject(Fault::new(Endpoint::Entities, FaultAction::DropConnection));
    let r = Http::new()
        .send(Method::GET, &u(&s.url(), "v1/entities/x"), &[], "")
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(s.requests().len(), 1, "the request is still logged");
}

#[tokio::test]
async fn drop_after_cuts_the_body() {
    let (s, url, bytes) = server_with_blob().await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::DropAfter(1234)));
    let r = Http::new().get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert!(r.body_error.is_some());
    assert_eq!(&r.body[..], &bytes[..1234]);
    // The next request is whole again.
    let r = Http::new().get(&url).await;
    assert!(r.body_error.is_none());
    assert_eq!(r.body.len(), 10_000);
}

#[tokio::test]
async fn short_body_lacks_one_byte() {
    let (s, url, bytes) = server_with_blob().await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::ShortBody));
    let r = Http::new()
        .get_with(&url, &[("range", "bytes=0-999")])
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert!(r.body_error.is_some());
    assert_eq!(&r.body[..], &bytes[..999]);
}

#[tokio::test]
async fn long_body_sends_more_than_the_range() {
    let (s, url, bytes) = server_with_blob().await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::LongBody));
    let r = Http::new()
        .get_with(&url, &[("range", "bytes=100-199")])
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/10000"));
    assert!(r.body.len() > 100);
    assert_eq!(&r.body[..100], &bytes[100..200]);
    assert!(r.body_error.is_none());
}

#[tokio::test]
async fn wrong_content_range_and_ignore_range() {
    let (s, url, bytes) = server_with_blob().await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::WrongContentRange));
    let r = Http::new()
        .get_with(&url, &[("range", "bytes=100-199")])
        .await;
    assert_eq!(r.status, 206);
    assert_ne!(r.header("content-range"), Some("bytes 100-199/10000"));
    assert_eq!(&r.body[..], &bytes[100..200]);

    s.inject(Fault::new(Endpoint::Blob, FaultAction::IgnoreRange));
    let r = Http::new()
        .get_with(&url, &[("range", "bytes=100-199")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(&r.body[..], &bytes[..]);
}

#[tokio::test]
async fn delay_waits_before_answering() {
    let s = TestServer::start().await.unwrap();
    s.inject(Fault::new(
        Endpoint::Version,
        FaultAction::Delay(Duration::from_millis(300)),
    ));
    let t = Instant::now();
    let r = Http::new().get(&u(&s.url(), "version")).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn corrupt_body_flips_one_byte() {
    let (s, url, bytes) = server_with_blob().await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::CorruptBody));
    let r = Http::new().get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), bytes.len());
    let diffs: Vec<usize> = (0..bytes.len())
        .filter(|&i| r.body[i] != bytes[i])
        .collect();
    assert_eq!(diffs, vec![5000]);
}

#[tokio::test]
async fn range_start_selects_one_part_of_a_download() {
    let (s, url, _) = server_with_blob().await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::Status(500)).range_start(5000));
    let http = Http::new();
    assert_eq!(
        http.get_with(&url, &[("range", "bytes=0-4999")])
            .await
            .status,
        206
    );
    http.get_with(&url, &[("range", "bytes=5000-9999")])
        .await
        .assert_error(500);
    assert_eq!(
        http.get_with(&url, &[("range", "bytes=5000-9999")])
            .await
            .status,
        206
    );
}

#[tokio::test]
async fn faults_on_the_pull_request_itself() {
    let s = TestServer::builder()
        .download(library_testserver::DownloadMode::Stream)
        .start()
        .await
        .unwrap();
    let bytes = pattern(3000);
    s.add_image("e", "c", "k", &["latest"], "amd64", bytes.clone());
    s.inject(Fault::new(Endpoint::ImageFile, FaultAction::DropAfter(10)));
    let r = Http::new()
        .get(&u(&s.url(), "v1/imagefile/e/c/k:latest?arch=amd64"))
        .await;
    assert!(r.body_error.is_some());
    assert_eq!(&r.body[..], &bytes[..10]);
}

#[tokio::test]
async fn part_selects_one_multipart_part() {
    let s = TestServer::builder()
        .multipart(Multipart::Supported { part_size: 100 })
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = pattern(300);
    let hash = format!("sha256.{}", sha256_hex(&bytes));
    let (_, iid) = create_chain(&http, &s.url(), "e", "c", "k", &hash, None).await;
    let r = http
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
            &json!({"filesize": 300}),
        )
        .await;
    let upload_id = r.data()["uploadID"].as_str().unwrap().to_string();
    s.inject(Fault::new(Endpoint::MultipartPartPut, FaultAction::Status(500)).part(2));
    s.inject(Fault::new(Endpoint::MultipartPartUrl, FaultAction::Status(503)).part(3));
    let part_url = u(&s.url(), &format!("v2/imagefile/{iid}/_multipart"));
    let mut statuses = Vec::new();
    for n in 1..=3u64 {
        let r = http
            .put_json(
                &part_url,
                &json!({"partSize": 100, "uploadID": upload_id, "partNumber": n, "sha256sum": ""}),
            )
            .await;
        if r.status != 200 {
            statuses.push((n, "url", r.status));
            continue;
        }
        let url = r.data()["presignedURL"].as_str().unwrap().to_string();
        let start = (n as usize - 1) * 100;
        let r = http
            .send(Method::PUT, &url, &[], bytes[start..start + 100].to_vec())
            .await
            .unwrap();
        statuses.push((n, "put", r.status));
    }
    assert_eq!(
        statuses,
        vec![(1, "put", 200), (2, "put", 500), (3, "url", 503)]
    );
    // The faulted part PUT's body was read and logged before the answer.
    let failed = s
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/parts/2"))
        .unwrap();
    assert_eq!(failed.body_len, 100);
}
