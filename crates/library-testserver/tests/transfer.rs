//! Pulls (streamed and redirected, ranged) and pushes (v1, v2 single, v2
//! multipart), in memory and on disk.

mod support;

use std::sync::Arc;

use http::Method;
use library_testserver::{DownloadMode, Listener, Multipart, Storage, TestServer};
use serde_json::json;
use support::*;

/// Creates the chain for `bytes` and returns the image ID.
async fn new_image(s: &TestServer, http: &Http, bytes: &[u8]) -> String {
    let hash = format!("sha256.{}", sha256_hex(bytes));
    create_chain(http, &s.url(), "ent", "col", "img", &hash, Some("amd64"))
        .await
        .1
}

#[tokio::test]
async fn v1_upload_then_streamed_pull_with_ranges() {
    let s = TestServer::builder()
        .api_version("1.0.0")
        .download(DownloadMode::Stream)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = pattern(100_000);
    let iid = new_image(&s, &http, &bytes).await;

    // Wrong bytes are refused.
    let r = http
        .send(
            Method::POST,
            &u(&s.url(), &format!("v1/imagefile/{iid}")),
            &[],
            pattern(10),
        )
        .await
        .unwrap();
    r.assert_error(400);
    let r = http
        .send(
            Method::POST,
            &u(&s.url(), &format!("v1/imagefile/{iid}")),
            &[("content-type", "application/octet-stream")],
            bytes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(s.image_bytes(&iid).unwrap(), bytes);
    let rec = s.requests().pop().unwrap();
    assert_eq!(rec.body_len, 100_000);
    assert_eq!(rec.body.len(), 64 * 1024, "the log keeps the first 64 KiB");

    // Tag it and pull it.
    let kid = s.container("ent", "col", "img").unwrap().id;
    http.post_json(
        &u(&s.url(), &format!("v1/tags/{kid}")),
        &json!({"Tag": "latest", "ImageID": iid}),
    )
    .await;
    let pull = u(&s.url(), "v1/imagefile/ent/col/img:latest?arch=amd64");
    let r = http.get(&pull).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(&r.body[..], &bytes[..]);

    let r = http.get_with(&pull, &[("range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/100000"));
    assert_eq!(&r.body[..], &bytes[10..20]);
    let r = http.get_with(&pull, &[("range", "bytes=99990-")]).await;
    assert_eq!(&r.body[..], &bytes[99990..]);
    let r = http.get_with(&pull, &[("range", "bytes=-5")]).await;
    assert_eq!(r.header("content-range"), Some("bytes 99995-99999/100000"));
    let r = http.get_with(&pull, &[("range", "bytes=100000-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));

    // Missing tag or arch is a 404 envelope; downloads are counted.
    http.get(&u(&s.url(), "v1/imagefile/ent/col/img:nope?arch=amd64"))
        .await
        .assert_error(404);
    http.get(&u(&s.url(), "v1/imagefile/ent/col/img:latest?arch=arm64"))
        .await
        .assert_error(404);
    assert_eq!(s.container("ent", "col", "img").unwrap().download_count, 5);
    // The v2 upload API does not exist on a 1.0.0 server.
    http.post_json(
        &u(&s.url(), &format!("v2/imagefile/{iid}")),
        &json!({"filesize": 1}),
    )
    .await
    .assert_error(404);
}

#[tokio::test]
async fn an_image_not_uploaded_is_not_pulled() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    let iid = new_image(&s, &http, b"x").await;
    let kid = s.container("ent", "col", "img").unwrap().id;
    http.post_json(
        &u(&s.url(), &format!("v1/tags/{kid}")),
        &json!({"Tag": "latest", "ImageID": iid}),
    )
    .await;
    http.get(&u(&s.url(), "v1/imagefile/ent/col/img:latest?arch=amd64"))
        .await
        .assert_error(404);
}

#[tokio::test]
async fn redirect_to_the_other_listener_serves_ranges() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    let bytes = pattern(5000);
    let img = s.add_image("e", "c", "k", &["latest"], "amd64", bytes.clone());
    let r = http
        .get(&u(&s.url(), "v1/imagefile/e/c/k?arch=amd64"))
        .await;
    assert_eq!(r.status, 303);
    let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert_eq!(loc.port(), s.blob_url().port());
    assert_ne!(loc.port(), s.url().port());
    assert_eq!(loc.path(), format!("/blobs/{}", img.id));
    assert!(loc.query().unwrap().starts_with("sig="));

    let r = http
        .get_with(loc.as_str(), &[("range", "bytes=1000-2999")])
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 1000-2999/5000"));
    assert_eq!(r.header("content-length"), Some("2000"));
    assert_eq!(&r.body[..], &bytes[1000..3000]);
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(
        etag,
        format!("\"{}\"", img.hash.trim_start_matches("sha256."))
    );

    // Preconditions: If-Match and If-Range hold only for the current tag.
    let range = ("range", "bytes=1000-2999");
    let r = http
        .get_with(loc.as_str(), &[range, ("if-match", etag.as_str())])
        .await;
    assert_eq!(r.status, 206);
    let r = http
        .get_with(loc.as_str(), &[range, ("if-match", "\"other\"")])
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = http
        .get_with(loc.as_str(), &[range, ("if-range", etag.as_str())])
        .await;
    assert_eq!(r.status, 206);
    let r = http
        .get_with(loc.as_str(), &[range, ("if-range", "\"other\"")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], &bytes[..]);

    let r = http.get(loc.as_str()).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], &bytes[..]);
    let r = http
        .send(Method::HEAD, loc.as_str(), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("5000"));
    assert!(r.body.is_empty());
    let blob_reqs: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.listener == Listener::Blob)
        .collect();
    assert_eq!(blob_reqs.len(), 7);
    assert_eq!(s.container("e", "c", "k").unwrap().download_count, 1);
}

#[tokio::test]
async fn redirect_to_the_same_listener() {
    let s = TestServer::builder()
        .download(DownloadMode::RedirectSameListener)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    s.add_image("e", "c", "k", &["v1"], "arm64", b"arm bytes".to_vec());
    let r = http
        .get(&u(&s.url(), "v1/imagefile/e/c/k:v1?arch=arm64"))
        .await;
    assert_eq!(r.status, 303);
    let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert_eq!(loc.origin(), s.url().origin());
    let r = http.get_with(loc.as_str(), &[("range", "bytes=4-8")]).await;
    assert_eq!(&r.body[..], b"bytes");
}

/// Starts a v2 single upload; returns the upload URL.
async fn start_single(s: &TestServer, http: &Http, iid: &str, bytes: &[u8]) -> url::Url {
    let r = http
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}")),
            &json!({"filesize": bytes.len(), "md5sum": md5_hex(bytes), "sha256sum": sha256_hex(bytes)}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    url::Url::parse(r.data()["uploadURL"].as_str().unwrap()).unwrap()
}

fn signed_headers(url: &url::Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "X-Amz-SignedHeaders")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn v2_single_upload_checks_length_and_digests() {
    let s = TestServer::builder()
        .api_version("2.0.0-alpha.1")
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = pattern(4096);
    let iid = new_image(&s, &http, &bytes).await;
    let url = start_single(&s, &http, &iid, &bytes).await;
    assert_eq!(url.port(), s.blob_url().port());
    assert_eq!(signed_headers(&url), "host");

    // Wrong length, then right length but wrong bytes.
    let r = http
        .send(Method::PUT, url.as_str(), &[], pattern(4095))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let mut wrong = bytes.clone();
    wrong[7] ^= 1;
    let r = http
        .send(Method::PUT, url.as_str(), &[], wrong)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("BadDigest"));
    // Completing before a good PUT fails.
    http.put_json(
        &u(&s.url(), &format!("v2/imagefile/{iid}/_complete")),
        &json!({}),
    )
    .await
    .assert_error(400);

    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("content-type", "application/octet-stream")],
            bytes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("etag").unwrap(),
        format!("\"{}\"", md5_hex(&bytes))
    );
    assert!(
        !s.find_image(
            "ent",
            "col",
            "img",
            &format!("sha256.{}", sha256_hex(&bytes)),
            "amd64"
        )
        .unwrap()
        .uploaded
    );

    let r = http
        .put_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_complete")),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let d = r.data();
    assert_eq!(d["quota"]["quotaUsage"], 4096);
    assert!(d["quota"]["quotaTotal"].as_i64().unwrap() > 4096);
    assert!(d["containerUrl"]
        .as_str()
        .unwrap()
        .ends_with("library/ent/col/img"));
    assert_eq!(s.image_bytes(&iid).unwrap(), bytes);
    let img = s
        .find_image(
            "ent",
            "col",
            "img",
            &format!("sha256.{}", sha256_hex(&bytes)),
            "amd64",
        )
        .unwrap();
    assert!(img.uploaded);
    assert_eq!(img.size, 4096);
}

#[tokio::test]
async fn v2_single_upload_s3_compliant_checks_content_sha() {
    let s = TestServer::builder()
        .s3_compliant(true)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = pattern(1000);
    let iid = new_image(&s, &http, &bytes).await;
    let url = start_single(&s, &http, &iid, &bytes).await;
    assert_eq!(signed_headers(&url), "host;x-amz-content-sha256");
    let r = http
        .send(Method::PUT, url.as_str(), &[], bytes.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 403, "a signed header left out");
    let bad = sha256_hex(b"other");
    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("x-amz-content-sha256", &bad)],
            bytes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("XAmzContentSHA256Mismatch"));
    let good = sha256_hex(&bytes);
    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("x-amz-content-sha256", &good)],
            bytes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = http
        .put_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_complete")),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.image_bytes(&iid).unwrap(), bytes);
}

struct Started {
    upload_id: String,
    total_parts: u64,
    part_size: u64,
}

async fn start_multipart(
    s: &TestServer,
    http: &Http,
    iid: &str,
    size: usize,
    compliant: bool,
) -> Started {
    let r = http
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
            &json!({"filesize": size}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = r.data();
    assert_eq!(d["options"]["s3compliant"], compliant.to_string());
    Started {
        upload_id: d["uploadID"].as_str().unwrap().to_string(),
        total_parts: d["totalParts"].as_u64().unwrap(),
        part_size: d["partSize"].as_u64().unwrap(),
    }
}

/// Asks for part n's URL and PUTs it; returns the ETag.
async fn send_part(
    s: &TestServer,
    http: &Http,
    iid: &str,
    st: &Started,
    n: u64,
    bytes: &[u8],
    compliant: bool,
) -> String {
    let start = ((n - 1) * st.part_size) as usize;
    let end = (start + st.part_size as usize).min(bytes.len());
    let part = &bytes[start..end];
    let sha = if compliant {
        sha256_hex(part)
    } else {
        String::new()
    };
    let r = http
        .put_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
            &json!({"partSize": part.len(), "uploadID": st.upload_id, "partNumber": n, "sha256sum": sha}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let url = r.data()["presignedURL"].as_str().unwrap().to_string();
    let mut headers = vec![("content-type", "application/octet-stream")];
    if compliant {
        headers.push(("x-amz-content-sha256", &sha));
    }
    let r = http
        .send(Method::PUT, &url, &headers, part.to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.header("etag").unwrap().to_string()
}

async fn multipart_round(storage: Storage, compliant: bool) {
    let s = TestServer::builder()
        .storage(storage)
        .multipart(Multipart::Supported { part_size: 100_000 })
        .s3_compliant(compliant)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = Arc::new(pattern(250_001));
    let iid = new_image(&s, &http, &bytes).await;
    let st = Arc::new(start_multipart(&s, &http, &iid, bytes.len(), compliant).await);
    assert_eq!(st.total_parts, 3);
    assert_eq!(st.part_size, 100_000);

    // All parts at once.
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for n in (1..=3).rev() {
        let (s, http, iid, st, bytes) = (
            s.clone(),
            http.clone(),
            iid.clone(),
            st.clone(),
            bytes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            (
                n,
                send_part(&s, &http, &iid, &st, n, &bytes, compliant).await,
            )
        }));
    }
    let mut etags = Vec::new();
    for t in tasks {
        etags.push(t.await.unwrap());
    }
    etags.sort();
    for (n, etag) in &etags {
        let start = (*n as usize - 1) * 100_000;
        let end = (start + 100_000).min(bytes.len());
        assert_eq!(etag, &format!("\"{}\"", md5_hex(&bytes[start..end])));
    }
    let puts: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.listener == Listener::Blob && r.method == Method::PUT)
        .collect();
    assert_eq!(puts.len(), 3);
    assert!(puts.iter().all(|r| r.authorization().is_none()));

    let complete = u(&s.url(), &format!("v2/imagefile/{iid}/_multipart_complete"));
    let parts = |tokens: Vec<String>| {
        let list: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"partNumber": i + 1, "token": t}))
            .collect();
        json!({"uploadID": st.upload_id, "completedParts": list})
    };
    let mut tokens: Vec<String> = etags.iter().map(|(_, e)| e.clone()).collect();
    // Unquoted tokens, a missing part, or a wrong order are refused.
    let unquoted = tokens
        .iter()
        .map(|t| t.trim_matches('"').to_string())
        .collect();
    http.put_json(&complete, &parts(unquoted))
        .await
        .assert_error(400);
    http.put_json(&complete, &parts(tokens[..2].to_vec()))
        .await
        .assert_error(400);
    let mut swapped = parts(tokens.clone());
    swapped["completedParts"][0]["partNumber"] = json!(2);
    swapped["completedParts"][1]["partNumber"] = json!(1);
    http.put_json(&complete, &swapped).await.assert_error(400);

    let r = http
        .put_json(&complete, &parts(std::mem::take(&mut tokens)))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.data()["quota"]["quotaUsage"], 250_001);
    assert_eq!(s.image_bytes(&iid).unwrap(), *bytes);

    // Pull it back through the blob listener.
    let kid = s.container("ent", "col", "img").unwrap().id;
    http.post_json(
        &u(&s.url(), &format!("v2/tags/{kid}")),
        &json!({"Arch": "amd64", "Tag": "latest", "ImageID": iid}),
    )
    .await;
    let r = http
        .get(&u(&s.url(), "v1/imagefile/ent/col/img:latest?arch=amd64"))
        .await;
    let loc = r.header("location").unwrap().to_string();
    let r = http.get(&loc).await;
    assert_eq!(&r.body[..], &bytes[..]);
}

#[tokio::test]
async fn multipart_in_memory() {
    multipart_round(Storage::Memory, false).await;
}

#[tokio::test]
async fn multipart_on_disk_s3_compliant() {
    let dir = tempfile::tempdir().unwrap();
    multipart_round(Storage::Dir(dir.path().to_path_buf()), true).await;
}

#[tokio::test]
async fn disk_storage_keeps_bytes_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::builder()
        .storage(Storage::Dir(dir.path().to_path_buf()))
        .download(DownloadMode::Stream)
        .start()
        .await
        .unwrap();
    let bytes = pattern(3 << 20);
    let img = s.add_image("e", "c", "k", &["latest"], "amd64", bytes.clone());
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let r = Http::new()
        .get(&u(&s.url(), "v1/imagefile/e/c/k:latest?arch=amd64"))
        .await;
    assert_eq!(r.body.len(), bytes.len());
    assert!(r.body[..] == bytes[..]);
    let r = Http::new()
        .get_with(
            &u(&s.url(), "v1/imagefile/e/c/k:latest?arch=amd64"),
            &[("range", "bytes=2097152-2097161")],
        )
        .await;
    assert_eq!(&r.body[..], &bytes[2097152..2097162]);
    assert_eq!(s.image_bytes(&img.id).unwrap(), bytes);
    drop(s);
}

#[tokio::test]
async fn multipart_part_checks_and_abort() {
    let s = TestServer::builder()
        .multipart(Multipart::Supported { part_size: 1000 })
        .s3_compliant(true)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = pattern(2500);
    let iid = new_image(&s, &http, &bytes).await;
    let st = start_multipart(&s, &http, &iid, bytes.len(), true).await;
    assert_eq!(st.total_parts, 3);
    let part_url = u(&s.url(), &format!("v2/imagefile/{iid}/_multipart"));
    // No sha256sum in S3-compliant mode, wrong partSize, part out of range.
    http.put_json(
        &part_url,
        &json!({"partSize": 1000, "uploadID": st.upload_id, "partNumber": 1, "sha256sum": ""}),
    )
    .await
    .assert_error(400);
    http.put_json(
        &part_url,
        &json!({"partSize": 1000, "uploadID": st.upload_id, "partNumber": 3, "sha256sum": "ab"}),
    )
    .await
    .assert_error(400);
    http.put_json(
        &part_url,
        &json!({"partSize": 1000, "uploadID": st.upload_id, "partNumber": 4, "sha256sum": "ab"}),
    )
    .await
    .assert_error(400);
    http.put_json(
        &part_url,
        &json!({"partSize": 1000, "uploadID": "nope", "partNumber": 1, "sha256sum": "ab"}),
    )
    .await
    .assert_error(404);

    let sha = sha256_hex(&bytes[..1000]);
    let r = http
        .put_json(
            &part_url,
            &json!({"partSize": 1000, "uploadID": st.upload_id, "partNumber": 1, "sha256sum": sha}),
        )
        .await;
    let url = url::Url::parse(r.data()["presignedURL"].as_str().unwrap()).unwrap();
    assert_eq!(url.port(), s.blob_url().port());
    assert_eq!(signed_headers(&url), "host;x-amz-content-sha256");
    // Wrong length; header differing from the announced sum; right.
    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("x-amz-content-sha256", &sha)],
            bytes[..999].to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let other = sha256_hex(b"x");
    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("x-amz-content-sha256", &other)],
            bytes[..1000].to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("x-amz-content-sha256", &sha)],
            bytes[..1000].to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    let abort = u(&s.url(), &format!("v2/imagefile/{iid}/_multipart_abort"));
    let r = http
        .put_json(&abort, &json!({"uploadID": st.upload_id}))
        .await;
    assert_eq!(r.status, 200);
    let r = http
        .send(
            Method::PUT,
            url.as_str(),
            &[("x-amz-content-sha256", &sha)],
            bytes[..1000].to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404, "parts of an aborted upload are refused");
    http.put_json(
        &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart_complete")),
        &json!({"uploadID": st.upload_id, "completedParts": []}),
    )
    .await
    .assert_error(404);
    http.put_json(&abort, &json!({"uploadID": st.upload_id}))
        .await
        .assert_error(404);
}

#[tokio::test]
async fn multipart_not_supported_is_404() {
    let s = TestServer::builder()
        .multipart(Multipart::NotSupported)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let iid = new_image(&s, &http, b"abc").await;
    http.post_json(
        &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
        &json!({"filesize": 3}),
    )
    .await
    .assert_error(404);
    // The single upload still works.
    let url = start_single(&s, &http, &iid, b"abc").await;
    assert_eq!(
        http.send(Method::PUT, url.as_str(), &[], "abc")
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn large_parts_move_quickly() {
    let s = TestServer::builder()
        .multipart(Multipart::Supported {
            part_size: 16 << 20,
        })
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let bytes = pattern(48 << 20);
    let iid = new_image(&s, &http, &bytes).await;
    let st = start_multipart(&s, &http, &iid, bytes.len(), false).await;
    let t = std::time::Instant::now();
    let mut tokens = Vec::new();
    for n in 1..=st.total_parts {
        tokens.push(send_part(&s, &http, &iid, &st, n, &bytes, false).await);
    }
    let list: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"partNumber": i + 1, "token": t}))
        .collect();
    let r = http
        .put_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart_complete")),
            &json!({"uploadID": st.upload_id, "completedParts": list}),
        )
        .await;
    assert_eq!(r.status, 200);
    let loc = format!("{}blobs/{iid}?sig=x", s.blob_url());
    let r = http.get(&loc).await;
    assert_eq!(r.body.len(), bytes.len());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        t.elapsed()
    );
}
