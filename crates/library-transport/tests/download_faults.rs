//! Ranged and single-stream downloads against a scripted server with faults.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use library_transport::{Destination, HttpClient, NoProgress, Progress, RangedDownload};
use sha2::{Digest, Sha256};
use support::*;

const SIZE: usize = 100_000;
const PART: u64 = 16_384;

fn job(server: &TestServer, size: usize) -> RangedDownload {
    RangedDownload::new(server.url("/blob?X-Amz-Signature=secret"), size as u64)
        .part_size(PART)
        .concurrency(3)
        .retry(fast_retry(3))
}

/// Serves `data`, but lets `fault` replace the answer for the n-th request
/// (0-based, counted per Range value).
fn faulty(
    data: Arc<Vec<u8>>,
    fault: impl Fn(&Seen, &[u8], usize) -> Option<Reply> + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let counts: Mutex<HashMap<Option<String>, usize>> = Mutex::new(HashMap::new());
    move |seen| {
        let n = {
            let mut c = counts.lock().unwrap();
            let e = c.entry(seen.range()).or_default();
            *e += 1;
            *e - 1
        };
        fault(seen, &data, n).unwrap_or_else(|| serve_range(&data, seen))
    }
}

fn is_part(seen: &Seen, start: u64) -> bool {
    seen.range().is_some_and(|r| parse_range(&r).0 == start)
}

struct Counter(AtomicU64, AtomicU64);
impl Progress for Counter {
    fn total(&self, b: u64) {
        self.0.store(b, Ordering::SeqCst);
    }
    fn increment(&self, b: u64) {
        self.1.fetch_add(b, Ordering::SeqCst);
    }
}

async fn ok_case(
    fault: impl Fn(&Seen, &[u8], usize) -> Option<Reply> + Send + Sync + 'static,
) -> TestServer {
    let data = Arc::new(data(SIZE, 1));
    let server = TestServer::start(faulty(data.clone(), fault)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let progress = Arc::new(Counter(AtomicU64::new(0), AtomicU64::new(0)));
    let got = client()
        .download_ranged(
            &job(&server, SIZE),
            Destination::new(&dest),
            progress.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        *data,
        "file must be byte-identical"
    );
    assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(&*data)));
    assert_eq!(progress.0.load(Ordering::SeqCst), SIZE as u64);
    assert_eq!(
        progress.1.load(Ordering::SeqCst),
        SIZE as u64,
        "no double counting"
    );
    assert_eq!(files_in(dir.path()), vec!["out.bin"]);
    server
}

async fn failing_case(
    fault: impl Fn(&Seen, &[u8], usize) -> Option<Reply> + Send + Sync + 'static,
    client: HttpClient,
) -> library_transport::Error {
    let data = Arc::new(data(SIZE, 2));
    let server = TestServer::start(faulty(data, fault)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    std::fs::write(&dest, b"old contents").unwrap();
    let err = client
        .download_ranged(
            &job(&server, SIZE),
            Destination::new(&dest),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        b"old contents",
        "destination untouched"
    );
    assert_eq!(
        files_in(dir.path()),
        vec!["out.bin"],
        "no temporary file left"
    );
    let msg = err.to_string();
    assert!(!msg.contains("secret"), "query string leaked: {msg}");
    err
}

#[tokio::test]
async fn plain_download_is_byte_identical() {
    let server = ok_case(|_, _, _| None).await;
    let parts = SIZE.div_ceil(PART as usize);
    assert_eq!(server.seen().len(), parts);
    assert!(server.max_in_flight.load(Ordering::SeqCst) <= 3);
}

#[tokio::test]
async fn part_answered_500_then_200_is_retried() {
    let server = ok_case(|s, _, n| (is_part(s, PART) && n == 0).then(|| Reply::status(500))).await;
    let hits = server.seen().iter().filter(|s| is_part(s, PART)).count();
    assert_eq!(hits, 2);
}

#[tokio::test]
async fn connection_dropped_mid_part_is_retried() {
    ok_case(|s, d, n| {
        (is_part(s, 2 * PART) && n == 0).then(|| {
            let mut r = serve_range(d, s);
            let full = r.chunks[0].clone();
            r.chunks = vec![full.slice(..1000)];
            r.cut = true;
            r
        })
    })
    .await;
}

#[tokio::test]
async fn short_and_long_bodies_are_retried() {
    ok_case(|s, d, n| {
        if n > 0 {
            return None;
        }
        let (a, _) = parse_range(&s.range()?);
        let mut r = serve_range(d, s);
        if a == 0 {
            // short body, honest Content-Length
            r.chunks[0] = r.chunks[0].slice(..100);
            r.headers.retain(|(k, _)| k != "content-length");
            r = r.header("content-length", 100);
        } else if a == PART {
            // long body without Content-Length (chunked)
            let mut v = r.chunks[0].to_vec();
            v.extend_from_slice(b"extra");
            r.chunks = vec![Bytes::from(v)];
            r.headers.retain(|(k, _)| k != "content-length");
        } else if a == 2 * PART {
            // short body without Content-Length (chunked)
            r.chunks[0] = r.chunks[0].slice(..10);
            r.headers.retain(|(k, _)| k != "content-length");
        }
        Some(r)
    })
    .await;
}

#[tokio::test]
async fn wrong_content_range_is_retried() {
    ok_case(|s, d, n| {
        (is_part(s, PART) && n == 0).then(|| {
            let mut r = serve_range(d, s);
            r.headers.retain(|(k, _)| k != "content-range");
            r.header("content-range", format!("bytes 0-{}/{}", PART - 1, SIZE))
        })
    })
    .await;
}

#[tokio::test]
async fn wrong_content_range_every_time_fails_cleanly() {
    let err = failing_case(
        |s, d, _| {
            is_part(s, PART).then(|| {
                let mut r = serve_range(d, s);
                r.headers.retain(|(k, _)| k != "content-range");
                r.header("content-range", "bytes 1-2/3")
            })
        },
        client(),
    )
    .await;
    assert_eq!(err.part_number(), Some(2));
    assert!(err.to_string().contains("Content-Range"), "{err}");
}

#[tokio::test]
async fn whole_file_200_to_a_range_request_fails_cleanly() {
    let err = failing_case(
        |s, d, _| {
            let _ = s;
            Some(Reply::status(200).body(Bytes::copy_from_slice(d)))
        },
        client(),
    )
    .await;
    assert!(err.to_string().contains("ignored Range"), "{err}");
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let data = Arc::new(data(SIZE, 3));
    let server = TestServer::start(faulty(data, |_, _, _| Some(Reply::status(404)))).await;
    let dir = tempfile::tempdir().unwrap();
    let err = client()
        .download_ranged(
            &job(&server, SIZE).concurrency(1),
            Destination::new(dir.path().join("x")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(server.seen().len(), 1, "a 404 must not be retried");
}

#[tokio::test]
async fn server_slower_than_read_timeout_fails_cleanly() {
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .read_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = failing_case(
        |s, d, _| {
            is_part(s, 0).then(|| {
                let mut r = serve_range(d, s);
                let full = r.chunks[0].clone();
                r.chunks = vec![full.slice(..10), full.slice(10..)];
                r.chunk_delay = Some(Duration::from_millis(600));
                r
            })
        },
        c,
    )
    .await;
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn headers_slower_than_request_timeout_fail() {
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let server = TestServer::start(|_| Reply {
        head_delay: Some(Duration::from_millis(500)),
        ..Reply::status(200)
    })
    .await;
    let req = http::Request::get(server.url("/").as_str())
        .body(library_transport::Body::empty())
        .unwrap();
    let err = c.send(req).await.unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err}");
}

#[tokio::test]
async fn digest_mismatch_removes_the_temp_file() {
    let data = Arc::new(data(SIZE, 4));
    let server = TestServer::start(faulty(data, |_, _, _| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::new(dir.path().join("x"))
        .expect_sha256([0u8; 32])
        .resumable(true);
    let err = client()
        .download_ranged(&job(&server, SIZE), dest, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(err, library_transport::Error::DigestMismatch { .. }),
        "{err}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn expected_digest_accepts_the_right_file() {
    let data = Arc::new(data(SIZE, 5));
    let sha: [u8; 32] = Sha256::digest(&*data).into();
    let server = TestServer::start(faulty(data.clone(), |_, _, _| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let got = client()
        .download_ranged(
            &job(&server, SIZE),
            Destination::new(dir.path().join("x")).expect_sha256(sha),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(got.sha256, sha);
}

#[tokio::test]
async fn resume_fetches_only_missing_parts() {
    let data = Arc::new(data(SIZE, 6));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = fail.clone();
    let server = TestServer::start(faulty(data.clone(), move |s, _, _| {
        (f2.load(Ordering::SeqCst) && is_part(s, 3 * PART)).then(|| Reply::status(403))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.sif");
    let dest = || Destination::new(&path).resumable(true);
    let err = client()
        .download_ranged(
            &job(&server, SIZE).concurrency(1),
            dest(),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
    assert!(!path.exists());
    assert!(
        dir.path().join(".img.sif.part").exists(),
        "{:?}",
        files_in(dir.path())
    );
    let first = server.seen().len();
    assert_eq!(first, 4, "parts 1-3 fetched, part 4 failed");

    fail.store(false, Ordering::SeqCst);
    let got = client()
        .download_ranged(&job(&server, SIZE), dest(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *data);
    assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(&*data)));
    let parts = SIZE.div_ceil(PART as usize) as u64;
    assert_eq!(got.parts_fetched, parts - 3);
    let again: Vec<_> = server.seen()[first..]
        .iter()
        .map(|s| parse_range(&s.range().unwrap()).0)
        .collect();
    assert!(
        again.iter().all(|&a| a >= 3 * PART),
        "refetched a complete part: {again:?}"
    );
    assert_eq!(files_in(dir.path()), vec!["img.sif"]);
}

#[tokio::test]
async fn dropping_the_future_cancels_and_cleans_up() {
    let data = Arc::new(data(SIZE, 7));
    let server = TestServer::start(faulty(data, |s, d, _| {
        let mut r = serve_range(d, s);
        r.head_delay = Some(Duration::from_secs(30));
        Some(r)
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (c, j) = (client(), job(&server, SIZE));
    let fut = c.download_ranged(
        &j,
        Destination::new(dir.path().join("x")),
        Arc::new(NoProgress),
    );
    assert!(tokio::time::timeout(Duration::from_millis(200), fut)
        .await
        .is_err());
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test]
async fn zero_size_gives_an_empty_file_without_requests() {
    let server = TestServer::start(|_| Reply::status(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let got = client()
        .download_ranged(
            &job(&server, 0),
            Destination::new(dir.path().join("e")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("e")).unwrap().len(), 0);
    assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(b"")));
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn single_part_accepts_200_for_the_whole_file() {
    let data = Arc::new(data(1000, 8));
    let d2 = data.clone();
    let server =
        TestServer::start(move |_| Reply::status(200).body(Bytes::copy_from_slice(&d2))).await;
    let dir = tempfile::tempdir().unwrap();
    client()
        .download_ranged(
            &job(&server, 1000),
            Destination::new(dir.path().join("x")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), *data);
}

#[tokio::test]
async fn single_stream_download_checks_length() {
    let data = Arc::new(data(SIZE, 9));
    let d2 = data.clone();
    let server = TestServer::start(move |s| {
        if s.path == "/short" {
            Reply::status(200)
                .header("content-length", SIZE)
                .body(Bytes::copy_from_slice(&d2[..10]))
        } else {
            Reply::status(200).body(Bytes::copy_from_slice(&d2))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let got = c
        .download_stream(
            &server.url("/ok"),
            &http::HeaderMap::new(),
            Destination::new(dir.path().join("a")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), *data);
    assert_eq!(got.size, SIZE as u64);
    let err = c
        .download_stream(
            &server.url("/short"),
            &http::HeaderMap::new(),
            Destination::new(dir.path().join("b")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(!dir.path().join("b").exists(), "{err}");
    assert_eq!(files_in(dir.path()), vec!["a"]);

    // Any AsyncWrite.
    let req = http::Request::get(server.url("/ok").as_str())
        .body(library_transport::Body::empty())
        .unwrap();
    let resp = c.send(req).await.unwrap();
    let mut out = Vec::new();
    let (n, sha) = library_transport::copy_response(resp, &mut out, &NoProgress)
        .await
        .unwrap();
    assert_eq!(n, SIZE as u64);
    assert_eq!(out, *data);
    assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&*data)));
}

#[derive(Default)]
struct Events(Mutex<Vec<&'static str>>);
impl Progress for Events {
    fn total(&self, _: u64) {
        self.0.lock().unwrap().push("total");
    }
    fn finish(&self) {
        self.0.lock().unwrap().push("finish");
    }
    fn abort(&self) {
        self.0.lock().unwrap().push("abort");
    }
}

#[tokio::test]
async fn progress_ends_with_finish_or_abort_even_when_dropped() {
    let data = Arc::new(data(SIZE, 10));
    let ok = TestServer::start(faulty(data.clone(), |_, _, _| None)).await;
    let slow = TestServer::start(faulty(data, |s, d, _| {
        let mut r = serve_range(d, s);
        r.head_delay = Some(Duration::from_secs(30));
        Some(r)
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client();

    let ev = Arc::new(Events::default());
    c.download_ranged(
        &job(&ok, SIZE),
        Destination::new(dir.path().join("a")),
        ev.clone(),
    )
    .await
    .unwrap();
    assert_eq!(*ev.0.lock().unwrap(), ["total", "finish"]);

    let ev = Arc::new(Events::default());
    let bad = Destination::new(dir.path().join("b")).expect_sha256([1; 32]);
    c.download_ranged(&job(&ok, SIZE), bad, ev.clone())
        .await
        .unwrap_err();
    assert_eq!(*ev.0.lock().unwrap(), ["total", "abort"]);

    let ev = Arc::new(Events::default());
    let j = job(&slow, SIZE);
    let fut = c.download_ranged(&j, Destination::new(dir.path().join("c")), ev.clone());
    assert!(tokio::time::timeout(Duration::from_millis(100), fut)
        .await
        .is_err());
    assert_eq!(*ev.0.lock().unwrap(), ["total", "abort"]);
}

#[tokio::test]
async fn resume_with_other_part_size_starts_over() {
    let data = Arc::new(data(SIZE, 12));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = fail.clone();
    let server = TestServer::start(faulty(data.clone(), move |s, _, _| {
        (f2.load(Ordering::SeqCst) && is_part(s, 2 * PART)).then(|| Reply::status(403))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    let j = job(&server, SIZE).concurrency(1);
    client()
        .download_ranged(
            &j,
            Destination::new(&path).resumable(true),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    fail.store(false, Ordering::SeqCst);
    let before = server.seen().len();
    let j = j.part_size(PART / 2);
    let got = client()
        .download_ranged(
            &j,
            Destination::new(&path).resumable(true),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *data);
    let all = SIZE.div_ceil(PART as usize / 2) as u64;
    assert_eq!(got.parts_fetched, all);
    assert_eq!((server.seen().len() - before) as u64, all);
    assert_eq!(files_in(dir.path()), vec!["img"]);
}

/// How a replaceable object names its version.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Names {
    /// No validator at all.
    Nothing,
    /// `ETag: "v<n>"`.
    Etag,
    /// `Last-Modified: <a date that grows with n>`.
    LastModified,
}

/// An object that can be replaced by other bytes, version by version.
struct Object {
    data: Arc<Vec<u8>>,
    version: u32,
}

impl Names {
    /// The response header naming version `n`, and the request header
    /// that asks for it.
    fn headers(self, n: u32) -> Option<(&'static str, String, &'static str)> {
        match self {
            Names::Nothing => None,
            Names::Etag => Some(("etag", format!("\"v{n}\""), "if-match")),
            Names::LastModified => Some((
                "last-modified",
                format!("Wed, {:02} Oct 2025 07:28:00 GMT", n),
                "if-unmodified-since",
            )),
        }
    }
}

/// Serves `obj` with its validator; part 4 answers 403 while `fail` is
/// set. With `honour`, a request whose precondition names another version
/// answers 412 (a later version always has a later date, so "not equal"
/// is "modified since").
fn versioned(
    obj: Arc<Mutex<Object>>,
    names: Names,
    honour: bool,
    fail: Arc<std::sync::atomic::AtomicBool>,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |seen| {
        let o = obj.lock().unwrap();
        if fail.load(Ordering::SeqCst) && is_part(seen, 3 * PART) {
            return Reply::status(403);
        }
        let Some((name, value, condition)) = names.headers(o.version) else {
            return serve_range(&o.data, seen);
        };
        if let Some(asked) = seen.headers.get(condition) {
            if honour && asked.to_str().unwrap() != value {
                return Reply::status(412).header(name, value);
            }
        }
        serve_range(&o.data, seen).header(name, value)
    }
}

/// The precondition a request carried, if any.
fn precondition(seen: &Seen) -> Option<String> {
    ["if-match", "if-unmodified-since", "if-range"]
        .iter()
        .find_map(|h| seen.headers.get(*h))
        .map(|v| v.to_str().unwrap().to_string())
}

/// A resumable download fails at part 4 (parts 1-3 are kept), the object
/// is then replaced by other bytes of the same size, and the resumed
/// download must give exactly the new bytes: with a validator the
/// server honours (412), one it ignores (the answers name another
/// version), as ETag or as Last-Modified.
#[tokio::test]
async fn resume_after_the_object_changed_starts_over() {
    for (names, honour) in [
        (Names::Etag, true),
        (Names::Etag, false),
        (Names::LastModified, true),
        (Names::LastModified, false),
    ] {
        let what = format!("{names:?}, honoured: {honour}");
        let obj = Arc::new(Mutex::new(Object {
            data: Arc::new(data(SIZE, 20)),
            version: 1,
        }));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let server = TestServer::start(versioned(obj.clone(), names, honour, fail.clone())).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let dest = || Destination::new(&path).resumable(true);
        let err = client()
            .download_ranged(
                &job(&server, SIZE).concurrency(1),
                dest(),
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN), "{what}");
        assert!(dir.path().join(".img.part").exists(), "{what}");

        let new = Arc::new(data(SIZE, 21));
        *obj.lock().unwrap() = Object {
            data: new.clone(),
            version: 2,
        };
        fail.store(false, Ordering::SeqCst);
        let old = names.headers(1).unwrap().1;
        let before = server.seen().len();
        let progress = Arc::new(Counter(AtomicU64::new(0), AtomicU64::new(0)));
        let got = client()
            .download_ranged(&job(&server, SIZE), dest(), progress.clone())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            std::fs::read(&path).unwrap() == *new,
            "{what}: not the new bytes"
        );
        assert_eq!(
            got.sha256,
            <[u8; 32]>::from(Sha256::digest(&*new)),
            "{what}"
        );
        let parts = SIZE.div_ceil(PART as usize) as u64;
        assert_eq!(got.parts_fetched, parts, "{what}: everything fetched again");
        assert_eq!(
            progress.1.load(Ordering::SeqCst),
            SIZE as u64,
            "{what}: bytes counted once"
        );
        // Some requests asked for the old version (all of them for missing
        // parts); then every part was asked for once, never for the old
        // version again.
        let seen = server.seen()[before..].to_vec();
        let (for_old, fresh): (Vec<_>, Vec<_>) = seen
            .iter()
            .partition(|s| precondition(s).as_deref() == Some(old.as_str()));
        assert!(!for_old.is_empty(), "{what}: {seen:?}");
        assert!(
            for_old.iter().all(|s| !is_part(s, 0)),
            "{what}: parts kept were asked for: {for_old:?}"
        );
        let mut starts: Vec<u64> = fresh
            .iter()
            .map(|s| parse_range(&s.range().unwrap()).0)
            .collect();
        starts.sort_unstable();
        let all: Vec<u64> = (0..parts).map(|i| i * PART).collect();
        assert_eq!(starts, all, "{what}");
        assert_eq!(files_in(dir.path()), vec!["img"], "{what}");
    }
}

/// A sidecar made for one expected SHA-256 is not used by a download that
/// expects another (the tag moved to another image): it starts over
/// without asking for the old parts, even from a server that names no
/// version at all.
#[tokio::test]
async fn resume_expecting_another_digest_starts_over_without_asking() {
    let old = Arc::new(data(SIZE, 22));
    let obj = Arc::new(Mutex::new(Object {
        data: old.clone(),
        version: 1,
    }));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let server =
        TestServer::start(versioned(obj.clone(), Names::Nothing, false, fail.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    client()
        .download_ranged(
            &job(&server, SIZE).concurrency(1),
            Destination::new(&path)
                .resumable(true)
                .expect_sha256(Sha256::digest(&*old).into()),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(dir.path().join(".img.part").exists());

    let new = Arc::new(data(SIZE, 23));
    *obj.lock().unwrap() = Object {
        data: new.clone(),
        version: 2,
    };
    fail.store(false, Ordering::SeqCst);
    let before = server.seen().len();
    let got = client()
        .download_ranged(
            &job(&server, SIZE),
            Destination::new(&path)
                .resumable(true)
                .expect_sha256(Sha256::digest(&*new).into()),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == *new, "not the new bytes");
    let parts = SIZE.div_ceil(PART as usize) as u64;
    assert_eq!(got.parts_fetched, parts);
    let seen = server.seen()[before..].to_vec();
    assert_eq!(seen.len() as u64, parts, "one request per part: {seen:?}");
    assert!(seen.iter().all(|s| precondition(s).is_none()), "{seen:?}");
    assert_eq!(files_in(dir.path()), vec!["img"]);
}

/// The sidecar of an interrupted download names the version the parts
/// came from and the SHA-256 the file must have; the resumed download asks
/// for the missing parts on that condition.
#[tokio::test]
async fn the_sidecar_records_the_validator_and_the_expected_digest() {
    let bytes = Arc::new(data(SIZE, 24));
    let sha: [u8; 32] = Sha256::digest(&*bytes).into();
    let obj = Arc::new(Mutex::new(Object {
        data: bytes.clone(),
        version: 7,
    }));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let server = TestServer::start(versioned(obj, Names::Etag, true, fail.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    let dest = || Destination::new(&path).resumable(true).expect_sha256(sha);
    client()
        .download_ranged(
            &job(&server, SIZE).concurrency(1),
            dest(),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    let text = std::fs::read(dir.path().join(".img.part.json")).unwrap();
    let sidecar: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(sidecar["validator"], serde_json::json!({"etag": "\"v7\""}));
    assert_eq!(
        sidecar["sha256"],
        serde_json::json!(library_transport::hex(&sha))
    );
    assert_eq!(sidecar["done"], serde_json::json!([0, 1, 2]));
    // The first part request carried no condition (nothing known yet);
    // the second and third asked for "v7".
    let seen = server.seen();
    assert_eq!(precondition(&seen[0]), None);
    assert_eq!(precondition(&seen[1]).as_deref(), Some("\"v7\""));

    fail.store(false, Ordering::SeqCst);
    let before = server.seen().len();
    let got = client()
        .download_ranged(&job(&server, SIZE), dest(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(got.sha256, sha);
    let parts = SIZE.div_ceil(PART as usize) as u64;
    assert_eq!(got.parts_fetched, parts - 3);
    let resumed = server.seen()[before..].to_vec();
    assert_eq!(resumed.len() as u64, parts - 3);
    assert!(
        resumed
            .iter()
            .all(|s| precondition(s).as_deref() == Some("\"v7\"")),
        "{resumed:?}"
    );
}

/// A caller that asks for one version with `if_match` gets
/// [`Error::Changed`] when the object is another, not the other's bytes,
/// and nothing is left behind.
#[tokio::test]
async fn a_change_under_the_callers_if_match_fails_cleanly() {
    let obj = Arc::new(Mutex::new(Object {
        data: Arc::new(data(SIZE, 25)),
        version: 2,
    }));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = TestServer::start(versioned(obj, Names::Etag, true, fail)).await;
    let dir = tempfile::tempdir().unwrap();
    let err = client()
        .download_ranged(
            &job(&server, SIZE).concurrency(1).if_match("\"v1\""),
            Destination::new(dir.path().join("img")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(err.is_changed(), "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("412"), "{err}");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    // The 412 is final: no retry, no start over.
    assert_eq!(server.seen().len(), 1, "{:?}", server.seen());
}
