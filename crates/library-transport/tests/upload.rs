//! Range PUT and multipart uploads against the scripted server.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use library_transport::{MultipartUpload, NoProgress, PartInfo, PartTarget, Progress};
use sha2::{Digest, Sha256};
use support::*;

fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    f
}

#[tokio::test]
async fn put_file_range_sends_exact_bytes() {
    let data = data(1_000_000, 11);
    let f = file_with(&data);
    let server = TestServer::start(|_| Reply::status(200).header("etag", "\"abc\"")).await;
    let mut headers = http::HeaderMap::new();
    headers.insert("x-amz-content-sha256", "deadbeef".parse().unwrap());
    let h = client()
        .put_file_range(
            &server.url("/up?sig=1"),
            &headers,
            f.path(),
            1000,
            300_000,
            &fast_retry(0),
        )
        .await
        .unwrap();
    assert_eq!(h.get("etag").unwrap(), "\"abc\"");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, http::Method::PUT);
    assert_eq!(seen[0].body.as_ref(), &data[1000..301_000]);
    assert_eq!(seen[0].headers["content-length"], "300000");
    assert_eq!(seen[0].headers["content-type"], "application/octet-stream");
    assert_eq!(seen[0].headers["x-amz-content-sha256"], "deadbeef");
}

#[tokio::test]
async fn put_file_range_retries_5xx_but_not_403() {
    let data = data(5000, 12);
    let f = file_with(&data);
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    let server = TestServer::start(move |s| {
        if s.path == "/forbidden" {
            return Reply::status(403).body(r#"{"message":"signature expired"}"#);
        }
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    })
    .await;
    let c = client();
    c.put_file_range(
        &server.url("/ok"),
        &http::HeaderMap::new(),
        f.path(),
        0,
        5000,
        &fast_retry(2),
    )
    .await
    .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body.as_ref(), &data[..]);
    let err = c
        .put_file_range(
            &server.url("/forbidden"),
            &http::HeaderMap::new(),
            f.path(),
            0,
            5000,
            &fast_retry(2),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
    assert!(err.to_string().contains("signature expired"), "{err}");
    assert_eq!(server.seen().len(), 3);
}

struct Sum(AtomicU64);
impl Progress for Sum {
    fn increment(&self, b: u64) {
        self.0.fetch_add(b, Ordering::SeqCst);
    }
}

/// Part bodies by part number.
type Bodies = Arc<Mutex<HashMap<u64, Vec<u8>>>>;

/// A server that records each part body by its `part` query value, fails
/// the listed parts as scripted, answers slowly so uploads overlap, and
/// returns an ETag derived from the part number.
fn part_server(fail: HashMap<u64, usize>) -> (impl Fn(&Seen) -> Reply + Send + Sync, Bodies) {
    let bodies = Arc::new(Mutex::new(HashMap::new()));
    let b2 = bodies.clone();
    let counts = Mutex::new(HashMap::<u64, usize>::new());
    let h = move |s: &Seen| {
        let n: u64 = s
            .query
            .as_deref()
            .unwrap()
            .strip_prefix("part=")
            .unwrap()
            .parse()
            .unwrap();
        let k = {
            let mut c = counts.lock().unwrap();
            let e = c.entry(n).or_default();
            *e += 1;
            *e
        };
        if k <= *fail.get(&n).unwrap_or(&0) {
            return Reply::status(500);
        }
        b2.lock().unwrap().insert(n, s.body.to_vec());
        Reply {
            head_delay: Some(Duration::from_millis(30)),
            ..Reply::status(200).header("etag", format!("\"etag-{n}\""))
        }
    };
    (h, bodies)
}

fn target(
    base: url::Url,
) -> impl Fn(PartInfo) -> std::future::Ready<library_transport::Result<PartTarget>> + Send + Sync + 'static
{
    move |p: PartInfo| {
        let mut u = base.clone();
        u.set_query(Some(&format!("part={}", p.number)));
        let mut t = PartTarget::new(u);
        if let Some(sha) = p.sha256 {
            t.headers.insert(
                "x-amz-content-sha256",
                library_transport::hex(&sha).parse().unwrap(),
            );
        }
        std::future::ready(Ok(t))
    }
}

#[tokio::test]
async fn multipart_uploads_concurrently_and_returns_etags_in_order() {
    let data = data(1_000_003, 13);
    let f = file_with(&data);
    let (h, bodies) = part_server(HashMap::from([(3, 1)]));
    let server = TestServer::start(h).await;
    let job = MultipartUpload::new(f.path(), data.len() as u64, 100_000)
        .concurrency(4)
        .retry(fast_retry(3))
        .part_sha256(true);
    assert_eq!(job.total_parts(), 11);
    let progress = Arc::new(Sum(AtomicU64::new(0)));
    let up = client()
        .upload_parts(&job, progress.clone(), target(server.url("/part")))
        .await
        .unwrap();
    // Part 3 failed once and went again; four streams throughout.
    assert_eq!(up.retries, 1);
    assert_eq!(up.streams, 4);
    let parts = up.parts;
    let numbers: Vec<u64> = parts.iter().map(|p| p.number).collect();
    assert_eq!(numbers, (1..=11).collect::<Vec<_>>());
    for p in &parts {
        assert_eq!(p.etag, format!("\"etag-{}\"", p.number));
    }
    let bodies = bodies.lock().unwrap();
    let mut joined = Vec::new();
    for n in 1..=11 {
        joined.extend_from_slice(&bodies[&n]);
    }
    assert_eq!(joined, data, "parts reassemble to the file");
    assert!(
        server.max_in_flight.load(Ordering::SeqCst) > 1,
        "parts must overlap"
    );
    assert!(server.max_in_flight.load(Ordering::SeqCst) <= 4);
    // Part 3 failed once and was retried.
    let tries = server
        .seen()
        .iter()
        .filter(|s| s.query.as_deref() == Some("part=3"))
        .count();
    assert_eq!(tries, 2);
    // S3-compliant mode: each part carried its own SHA-256.
    for s in server.seen() {
        let n: usize = s.query.as_deref().unwrap()[5..].parse().unwrap();
        let off = (n - 1) * 100_000;
        let end = (off + 100_000).min(data.len());
        let want = library_transport::hex(&Sha256::digest(&data[off..end]));
        assert_eq!(s.headers["x-amz-content-sha256"], want.as_str());
    }
    assert_eq!(
        progress.0.load(Ordering::SeqCst),
        data.len() as u64,
        "retried bytes counted once"
    );
}

#[tokio::test]
async fn multipart_failing_part_names_the_part() {
    let data = data(500_000, 14);
    let f = file_with(&data);
    let (h, _) = part_server(HashMap::from([(4, usize::MAX)]));
    let server = TestServer::start(h).await;
    let job = MultipartUpload::new(f.path(), data.len() as u64, 100_000)
        .concurrency(2)
        .retry(fast_retry(2));
    let err = client()
        .upload_parts(&job, Arc::new(NoProgress), target(server.url("/part")))
        .await
        .unwrap_err();
    assert_eq!(err.part_number(), Some(4), "{err}");
    assert!(err.to_string().starts_with("part 4:"), "{err}");
    let tries = server
        .seen()
        .iter()
        .filter(|s| s.query.as_deref() == Some("part=4"))
        .count();
    assert_eq!(tries, 3, "one try and two retries");
}

#[tokio::test]
async fn multipart_target_errors_stop_the_upload() {
    let data = data(300_000, 15);
    let f = file_with(&data);
    let server = TestServer::start(|_| Reply::status(200).header("etag", "x")).await;
    let job = MultipartUpload::new(f.path(), data.len() as u64, 100_000).retry(fast_retry(2));
    let err = client()
        .upload_parts(&job, Arc::new(NoProgress), |p: PartInfo| async move {
            if p.number == 2 {
                Err(library_transport::Error::InvalidRequest(
                    "no presigned URL".into(),
                ))
            } else {
                Ok(PartTarget::new(
                    url::Url::parse("http://127.0.0.1:9/never").unwrap(),
                ))
            }
        })
        .await
        .unwrap_err();
    // Either part 2's own error, or a connection error of another part.
    assert!(err.part_number().is_some(), "{err}");
    drop(server);
}

#[tokio::test]
async fn upload_file_range_posts_with_progress() {
    let data = data(700_000, 16);
    let f = file_with(&data);
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    let server = TestServer::start(move |_| match n2.fetch_add(1, Ordering::SeqCst) {
        // Refused after the body was sent: the server may have acted on
        // it, so a POST is not sent again.
        0 => Reply::status(502),
        // "Not now": the server did not act, so the POST is sent again.
        1 => Reply::status(503),
        _ => Reply::status(200),
    })
    .await;
    let up = library_transport::FileRangeUpload::new(
        http::Method::POST,
        server.url("/v1/imagefile/123"),
        f.path(),
        0,
        data.len() as u64,
    )
    .retry(fast_retry(2));
    let err = client()
        .upload_file_range(&up, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::BAD_GATEWAY), "{err}");
    assert_eq!(
        server.seen().len(),
        1,
        "a POST answered 502 is not repeated"
    );

    let progress = Arc::new(Sum(AtomicU64::new(0)));
    client()
        .upload_file_range(&up, progress.clone())
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "the POST answered 503 is sent once more");
    assert_eq!(seen[2].method, http::Method::POST);
    assert_eq!(seen[2].body.as_ref(), &data[..]);
    assert_eq!(
        progress.0.load(Ordering::SeqCst),
        data.len() as u64,
        "no double counting"
    );
    // A range past the end of the file is refused before sending.
    let bad = library_transport::FileRangeUpload::new(
        http::Method::PUT,
        server.url("/x"),
        f.path(),
        1,
        data.len() as u64,
    );
    assert!(client()
        .upload_file_range(&bad, Arc::new(NoProgress))
        .await
        .is_err());
    assert_eq!(server.seen().len(), 3);
}
