//! Real S3 mode, against the S3 server named by `S3_ENDPOINT` (with
//! `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`, `S3_REGION`), as the
//! project's peer scripts start it. Ignored by plain `cargo test`; `cargo xtask test` runs them.

mod support;

use std::sync::Arc;

use http::Method;
use library_testserver::{Multipart, S3Backend, TestServer};
use serde_json::json;
use support::*;

fn backend(bucket: &str, sign_sha: bool) -> Option<S3Backend> {
    let endpoint = std::env::var("S3_ENDPOINT")
        .expect("S3_ENDPOINT is not set: run `cargo xtask test`, which starts the S3 peers");
    let mut b = S3Backend::new(
        url::Url::parse(&endpoint).unwrap(),
        bucket,
        std::env::var("S3_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into()),
        std::env::var("S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testsecret".into()),
    );
    if let Ok(r) = std::env::var("S3_REGION") {
        b.region = r;
    }
    b.sign_content_sha256 = sign_sha;
    Some(b)
}

fn signed_headers(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-SignedHeaders")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn single_upload(sign_sha: bool) {
    let Some(b) = backend("testserver-single", sign_sha) else {
        unreachable!("backend() panics when S3_ENDPOINT is unset");
    };
    let endpoint = b.endpoint.clone();
    let s = TestServer::builder().s3(b).start().await.unwrap();
    let http = Http::new();
    let bytes = pattern(300_000);
    let hash = format!("sha256.{}", sha256_hex(&bytes));
    let (_, iid) = create_chain(&http, &s.url(), "e", "c", "k", &hash, Some("amd64")).await;
    let r = http
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}")),
            &json!({"filesize": bytes.len(), "md5sum": md5_hex(&bytes), "sha256sum": sha256_hex(&bytes)}),
        )
        .await;
    let url = r.data()["uploadURL"].as_str().unwrap().to_string();
    assert!(url.starts_with(endpoint.as_str()), "{url}");
    let signed = signed_headers(&url);
    let mut headers = vec![("content-type", "application/octet-stream")];
    let sha = sha256_hex(&bytes);
    if sign_sha {
        assert_eq!(signed, "host;x-amz-content-sha256");
        headers.push(("x-amz-content-sha256", &sha));
    } else {
        assert_eq!(signed, "host");
    }
    let r = http
        .send(Method::PUT, &url, &headers, bytes.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("etag").unwrap(),
        format!("\"{}\"", md5_hex(&bytes))
    );
    let r = http
        .put_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_complete")),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.image_bytes(&iid).unwrap(), bytes);
}

#[tokio::test]
#[ignore = "needs an S3 peer: run cargo xtask test"]
async fn s3_single_upload_host_signed() {
    single_upload(false).await;
}

#[tokio::test]
#[ignore = "needs an S3 peer: run cargo xtask test"]
async fn s3_single_upload_with_signed_content_sha() {
    single_upload(true).await;
}

#[tokio::test]
#[ignore = "needs an S3 peer: run cargo xtask test"]
async fn s3_multipart_upload() {
    let Some(b) = backend("testserver-multi", false) else {
        unreachable!("backend() panics when S3_ENDPOINT is unset");
    };
    let s = Arc::new(
        TestServer::builder()
            .s3(b)
            .s3_compliant(true)
            .multipart(Multipart::Supported { part_size: 5 << 20 })
            .start()
            .await
            .unwrap(),
    );
    let http = Http::new();
    let bytes = Arc::new(pattern((11 << 20) + 7));
    let hash = format!("sha256.{}", sha256_hex(&bytes));
    let (_, iid) = create_chain(&http, &s.url(), "e", "c", "k", &hash, Some("amd64")).await;
    let r = http
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
            &json!({"filesize": bytes.len()}),
        )
        .await;
    let d = r.data();
    assert_eq!(d["totalParts"], 3);
    let upload_id = d["uploadID"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for n in 1..=3u64 {
        let (s, http, bytes, iid, upload_id) = (
            s.clone(),
            http.clone(),
            bytes.clone(),
            iid.clone(),
            upload_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let start = (n as usize - 1) * (5 << 20);
            let end = (start + (5 << 20)).min(bytes.len());
            let part = bytes[start..end].to_vec();
            let sha = sha256_hex(&part);
            let r = http
                .put_json(
                    &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
                    &json!({"partSize": part.len(), "uploadID": upload_id, "partNumber": n, "sha256sum": sha}),
                )
                .await;
            let url = r.data()["presignedURL"].as_str().unwrap().to_string();
            let r = http
                .send(Method::PUT, &url, &[("x-amz-content-sha256", &sha)], part.clone())
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let etag = r.header("etag").unwrap().to_string();
            assert_eq!(etag, format!("\"{}\"", md5_hex(&part)));
            etag
        }));
    }
    let mut etags = Vec::new();
    for t in tasks {
        etags.push(t.await.unwrap());
    }
    let complete = u(&s.url(), &format!("v2/imagefile/{iid}/_multipart_complete"));
    let body = |tokens: &[String]| {
        let parts: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"partNumber": i + 1, "token": t}))
            .collect();
        json!({"uploadID": upload_id, "completedParts": parts})
    };
    // A wrong ETag is refused by S3 (s3s-fs accepts it, unlike AWS).
    if std::env::var("S3_SERVER").as_deref() != Ok("s3s-fs") {
        let mut wrong = etags.clone();
        wrong[1] = "\"00000000000000000000000000000000\"".into();
        http.put_json(&complete, &body(&wrong))
            .await
            .assert_error(400);
    }
    let r = http.put_json(&complete, &body(&etags)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.image_bytes(&iid).unwrap(), *bytes);
}
