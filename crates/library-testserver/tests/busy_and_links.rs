//! A server that refuses downloads above N in flight, and a link in the
//! data path of pulls and pushes through an advertised blob URL.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use library_testserver::{LinkDirection, Listener, TestServer, ThrottledLink};
use serde_json::json;
use support::*;

#[tokio::test]
async fn downloads_above_the_limit_get_503_at_once() {
    const ADMITTED: usize = 2;
    const REFUSED: usize = 3;
    const SIZE: usize = 16 << 20;
    let s = TestServer::builder()
        .refuse_downloads_above(ADMITTED)
        .start()
        .await
        .unwrap();
    assert_eq!(s.download_limit(), Some(ADMITTED));
    let bytes = pattern(SIZE);
    let image = s.add_image("ent", "col", "img", &["latest"], "amd64", bytes.clone());
    // Each download crawls through the link at 1 MiB/s, so that they
    // overlap (the socket buffers take a few MiB; the rest waits).
    let link = ThrottledLink::builder(s.blob_addr())
        .down(LinkDirection::new().rate(1 << 20))
        .start()
        .await
        .unwrap();
    let url = format!("{}blobs/{}", link.url(), image.id);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let get = |range: Option<&str>| {
        let mut req = Request::builder().method(Method::GET).uri(&url);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        client.request(req.body(Full::new(Bytes::new())).unwrap())
    };
    // The admitted ones: their answers start, their bodies are on their way.
    let whole = get(None).await.unwrap();
    let half = format!("bytes=0-{}", SIZE / 2 - 1);
    let ranged = get(Some(&half)).await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(ranged.status(), 206);
    // The rest are refused at once, whole or ranged.
    for i in 0..REFUSED {
        let r = get((i % 2 == 1).then_some("bytes=0-99")).await.unwrap();
        assert_eq!(r.status(), 503, "request {i} above the limit");
        assert!(r.headers().get("retry-after").is_none());
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert!(!body.is_empty());
    }
    assert_eq!(s.busy_answers(), REFUSED as u64);
    // The admitted ones arrive whole, now at full speed.
    link.set_down(LinkDirection::new());
    let (whole, ranged) = tokio::join!(whole.into_body().collect(), ranged.into_body().collect());
    assert!(
        whole.unwrap().to_bytes() == bytes[..],
        "whole download differs"
    );
    assert!(
        ranged.unwrap().to_bytes() == bytes[..SIZE / 2],
        "ranged download differs"
    );
    // Sent in full, they no longer count: the next download is admitted.
    let r = get(Some("bytes=0-99")).await.unwrap();
    assert_eq!(r.status(), 206);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert!(body == bytes[..100]);
    assert_eq!(s.busy_answers(), REFUSED as u64);
    assert!(s.peak_in_flight(Listener::Blob) > ADMITTED);
}

#[tokio::test]
async fn through_a_slow_link_a_download_counts_until_its_client_has_nearly_all_of_it() {
    // One download at a time, 1 MiB through a link of 4 MB/s (a quarter
    // of a second). The server must not see it as sent while most of it
    // is still on its way: the socket buffers between the server and the
    // link's cap hold little, as on a real path.
    const SIZE: usize = 1 << 20;
    let s = TestServer::builder()
        .refuse_downloads_above(1)
        .start()
        .await
        .unwrap();
    let bytes = pattern(SIZE);
    let image = s.add_image("ent", "col", "img", &["latest"], "amd64", bytes.clone());
    let link = ThrottledLink::builder(s.blob_addr())
        .down(LinkDirection::new().rate(4_000_000))
        .start()
        .await
        .unwrap();
    let url = format!("{}blobs/{}", link.url(), image.id);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let get = || {
        let req = Request::builder().method(Method::GET).uri(&url);
        client.request(req.body(Full::new(Bytes::new())).unwrap())
    };
    let first = get().await.unwrap();
    assert_eq!(first.status(), 200);
    // Read the first two thirds of it.
    let mut body = first.into_body();
    let mut got = Vec::with_capacity(SIZE);
    while got.len() < SIZE * 2 / 3 {
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            got.extend_from_slice(&data);
        }
    }
    let second = get().await.unwrap();
    assert_eq!(
        second.status(),
        503,
        "a second download was admitted while the first had {} of {SIZE} bytes left to deliver",
        SIZE - got.len()
    );
    got.extend_from_slice(&body.collect().await.unwrap().to_bytes());
    assert!(got == bytes[..], "the download differs");
    assert_eq!(s.busy_answers(), 1);
}

#[tokio::test]
async fn without_a_limit_no_download_is_refused() {
    let s = TestServer::start().await.unwrap();
    assert_eq!(s.download_limit(), None);
    let bytes = pattern(100_000);
    let image = s.add_image("ent", "col", "img", &["latest"], "amd64", bytes.clone());
    let http = Http::new();
    let url = u(&s.blob_url(), &format!("blobs/{}", image.id));
    let answers = futures_join(&http, &url, 8).await;
    for r in answers {
        assert_eq!(r.status, 200);
        assert!(r.body == bytes[..]);
    }
    assert_eq!(s.busy_answers(), 0);
}

async fn futures_join(http: &Http, url: &str, n: usize) -> Vec<Resp> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_string());
            tokio::spawn(async move { http.get(&url).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn pulls_and_pushes_go_through_a_link_in_front_of_the_blob_listener() {
    let s = TestServer::start().await.unwrap();
    let link = ThrottledLink::builder(s.blob_addr())
        .round_trip_time(Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    assert_eq!(s.blob_url().port(), Some(s.blob_addr().port()));
    s.advertise_blob_url(link.url());
    assert_eq!(s.blob_url(), link.url());
    let http = Http::new();

    // A pull: redirected to the link, which carries the bytes.
    let bytes = pattern(1 << 20);
    s.add_image("ent", "col", "img", &["latest"], "amd64", bytes.clone());
    let r = http
        .get(&u(&s.url(), "v1/imagefile/ent/col/img:latest?arch=amd64"))
        .await;
    assert_eq!(r.status, 303);
    let location = r.header("location").unwrap().to_string();
    assert!(location.starts_with(link.url().as_str()), "{location}");
    let r = http.get(&location).await;
    assert_eq!(r.status, 200);
    assert!(r.body == bytes[..], "pulled bytes differ");
    assert!(link.bytes_down() >= bytes.len() as u64);

    // A multipart push: the part URLs lead through the link too.
    let push = pattern(300_000);
    let hash = format!("sha256.{}", sha256_hex(&push));
    let (_, iid) = create_chain(
        &http,
        &s.url(),
        "pushed",
        "col",
        "new",
        &hash,
        Some("amd64"),
    )
    .await;
    let r = http
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
            &json!({"filesize": push.len()}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let upload_id = r.data()["uploadID"].as_str().unwrap().to_string();
    let r = http
        .put_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}/_multipart")),
            &json!({"partSize": push.len(), "uploadID": upload_id, "partNumber": 1, "sha256sum": ""}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let part_url = r.data()["presignedURL"].as_str().unwrap().to_string();
    assert!(part_url.starts_with(link.url().as_str()), "{part_url}");
    let before = link.bytes_up();
    let r = http
        .send(
            Method::PUT,
            &part_url,
            &[("content-type", "application/octet-stream")],
            push.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(link.bytes_up() - before >= push.len() as u64);
}
