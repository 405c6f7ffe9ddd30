//! Pulls on the library path (a 303 to ranged parts, or a 200 stream)
//! under every fault of the matrix.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use library_client::{Downloader, Error, ErrorKind, Pull};
use library_e2e::scripted::{serve_bytes, Reply, Scripted, Seen, Step};
use library_e2e::*;
use library_testserver::{DownloadMode, Endpoint, Fault, FaultAction, Listener, TestServer};

/// Part size of these pulls; the image has 5 parts, the last one short.
const PART: u64 = 256 * 1024;
const SIZE: usize = 4 * PART as usize + 1000;
/// The part every persistent fault hits: the third.
const FAULTY: u64 = 2 * PART;

fn image() -> Vec<u8> {
    random_bytes(SIZE, 11)
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(PART),
    })
}

async fn server(mode: DownloadMode) -> TestServer {
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .download(mode)
        .start()
        .await
        .unwrap();
    s.add_image("e", "c", "k", &["latest"], "amd64", image());
    s
}

/// Ranged GETs of the image on the blob listener.
fn part_requests(s: &TestServer) -> Vec<Option<u64>> {
    s.requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob && r.method == "GET")
        .map(|r| {
            r.header("range")
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.split_once('-'))
                .and_then(|(a, _)| a.parse().ok())
        })
        .collect()
}

/// A fault that hits every try of the third part of one pull.
fn persistent(action: FaultAction) -> Fault {
    Fault::new(Endpoint::Blob, action)
        .range_start(FAULTY)
        .times(ATTEMPTS)
}

/// The whole check for a fault that makes a pull fail: a plain pull fails
/// as `expect` says and leaves nothing; a resumable pull (one part at a
/// time, so that exactly the first two parts are complete when the third
/// fails) fails the same way and keeps at most its partial file; the
/// resumed pull then fetches exactly the three missing parts and gives the
/// exact image.
async fn fails_then_resumes(
    s: &TestServer,
    what: &str,
    fault: impl Fn() -> Fault,
    expect: impl Fn(&Error) -> bool,
) {
    let c = client(&s.url());
    let d = DestDir::new();
    s.inject(fault());
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(expect(&e), "{what}: unexpected error {e} / {e:?}");
    d.assert_untouched(what);

    s.inject(fault());
    let one_at_a_time = pull().resume(true).downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    let e = c.download_image(&d.dest, &one_at_a_time).await.unwrap_err();
    assert!(
        expect(&e),
        "{what} (resumable): unexpected error {e} / {e:?}"
    );
    d.assert_untouched_resumable(what);

    s.clear_requests();
    let got = c
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    assert!(got.verified);
    d.assert_pulled(&image(), what);
    let mut fetched = part_requests(s);
    fetched.sort_unstable();
    assert_eq!(
        fetched,
        [Some(FAULTY), Some(3 * PART), Some(4 * PART)],
        "{what}: the resumed pull fetches the parts the partial file lacks"
    );
}

fn network(e: &Error) -> bool {
    e.is_network() && e.status().is_none() && !e.is_integrity()
}

fn invalid_response(e: &Error) -> bool {
    e.kind() == ErrorKind::InvalidResponse
        && transport_cause(e).is_some_and(|t| {
            t.part_number() == Some(3) && t.to_string().contains("invalid response")
        })
}

#[tokio::test]
async fn connection_refused_by_the_library() {
    let d = DestDir::new();
    let base = url::Url::parse(&format!("http://127.0.0.1:{}/", dead_port())).unwrap();
    let e = client(&base)
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert!(e.is_network(), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_connect()), "{e:?}");
    d.assert_untouched("connection refused");

    // The same destination, once the library answers.
    let s = server(DownloadMode::RedirectOtherListener).await;
    client(&s.url())
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "after connection refused");
}

/// A library whose 303 points at `target` (changeable), serving the image
/// record; `blob` answers the requests that reach its own `/blob`.
async fn redirecting_library(
    target: Arc<Mutex<String>>,
    blob: impl Fn(&Seen, &Bytes) -> Reply + Send + Sync + 'static,
) -> Scripted {
    let data = Bytes::from(image());
    let hash = format!("sha256.{}", sha256_hex(&data));
    Scripted::start(move |seen| {
        let p = seen.path.as_str();
        if p.starts_with("/v1/imagefile/") {
            Reply::status(303).header("location", target.lock().unwrap().as_str())
        } else if p.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({
                "id": "1", "hash": hash, "size": data.len(), "uploaded": true, "arch": "amd64"
            }))
        } else if p == "/blob" {
            blob(seen, &data)
        } else {
            Reply::status(404).json(&serde_json::json!({"error": {"code": 404, "message": "no"}}))
        }
    })
    .await
}

#[tokio::test]
async fn connection_refused_by_the_redirect_target() {
    let target = Arc::new(Mutex::new(format!("http://127.0.0.1:{}/blob", dead_port())));
    let lib = redirecting_library(target.clone(), serve_bytes).await;
    let c = client(&lib.url());
    let d = DestDir::new();
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(network(&e), "{e:?}");
    d.assert_untouched("redirect target refused");
    let e = c
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap_err();
    assert!(network(&e), "{e:?}");
    d.assert_untouched_resumable("redirect target refused");

    *target.lock().unwrap() = format!("{}blob", lib.url());
    c.download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "after the redirect target came back");
}

#[tokio::test]
async fn connection_reset_mid_body() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    // Once: retried, and the pull succeeds.
    s.inject(Fault::new(Endpoint::Blob, FaultAction::DropAfter(5000)).range_start(FAULTY));
    let d = DestDir::new();
    client(&s.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    d.assert_pulled(&image(), "reset once");
    // Every try: the pull fails as a network failure.
    fails_then_resumes(
        &s,
        "reset every try",
        || persistent(FaultAction::DropAfter(5000)),
        network,
    )
    .await;
}

#[tokio::test]
async fn a_dropped_connection_before_any_answer() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    fails_then_resumes(
        &s,
        "dropped connection",
        || persistent(FaultAction::DropConnection),
        network,
    )
    .await;
}

#[tokio::test]
async fn a_part_answered_500_then_200() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::Status(500)).range_start(FAULTY));
    let d = DestDir::new();
    let got = client(&s.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    assert!(got.verified);
    d.assert_pulled(&image(), "500 then 200");
    let parts = part_requests(&s);
    assert_eq!(
        parts.iter().filter(|p| **p == Some(FAULTY)).count(),
        2,
        "{parts:?}"
    );
    assert_eq!(parts.len(), 6, "five parts and one retry: {parts:?}");
}

#[tokio::test]
async fn a_503_on_every_try_gives_up_with_the_last_error() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    // The earlier tries get 500, the last one 503: the error is the last.
    s.inject(
        Fault::new(Endpoint::Blob, FaultAction::Status(500))
            .range_start(0)
            .times(ATTEMPTS - 1),
    );
    s.inject(Fault::new(Endpoint::Blob, FaultAction::Status(503)).range_start(0));
    let d = DestDir::new();
    let one_at_a_time = pull().downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    let e = client(&s.url())
        .download_image(&d.dest, &one_at_a_time)
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{e}"
    );
    assert!(e.to_string().contains("503"), "{e}");
    // A 5xx is a server error whatever the path; the part is named.
    assert_eq!(e.kind(), ErrorKind::Server, "{e:?}");
    assert!(matches!(&e, Error::Http { .. }), "{e:?}");
    assert!(e.to_string().contains("part 1"), "{e}");
    // One try and the configured retries, of the first part only.
    assert_eq!(part_requests(&s), vec![Some(0); ATTEMPTS]);
    d.assert_untouched("503 every try");

    fails_then_resumes(
        &s,
        "503 every try",
        || persistent(FaultAction::Status(503)),
        |e| e.status() == Some(http::StatusCode::SERVICE_UNAVAILABLE),
    )
    .await;
}

#[tokio::test]
async fn a_short_body() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::ShortBody).range_start(FAULTY));
    let d = DestDir::new();
    client(&s.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    d.assert_pulled(&image(), "short once");
    fails_then_resumes(
        &s,
        "short every try",
        || persistent(FaultAction::ShortBody),
        network,
    )
    .await;
}

#[tokio::test]
async fn a_longer_body() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    s.inject(Fault::new(Endpoint::Blob, FaultAction::LongBody).range_start(FAULTY));
    let d = DestDir::new();
    client(&s.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    d.assert_pulled(&image(), "long once");
    fails_then_resumes(
        &s,
        "long every try",
        || persistent(FaultAction::LongBody),
        invalid_response,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_content_range() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    fails_then_resumes(
        &s,
        "wrong Content-Range",
        || persistent(FaultAction::WrongContentRange),
        invalid_response,
    )
    .await;
}

#[tokio::test]
async fn the_whole_file_to_a_range_request() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    fails_then_resumes(
        &s,
        "200 to a range",
        || persistent(FaultAction::IgnoreRange),
        invalid_response,
    )
    .await;
}

#[tokio::test]
async fn corrupt_bytes_fail_the_digest_and_a_resume_starts_over() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    let c = client(&s.url());
    let d = DestDir::new();
    s.inject(Fault::new(Endpoint::Blob, FaultAction::CorruptBody).range_start(FAULTY));
    let e = c
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap_err();
    assert!(e.is_integrity(), "{e:?}");
    // A corrupt file is never kept, even for resuming.
    d.assert_untouched("corrupt, resumable");
    s.clear_requests();
    c.download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "after corrupt");
    assert_eq!(part_requests(&s).len(), 5, "everything fetched again");
}

#[tokio::test]
async fn a_server_silent_before_the_headers() {
    let s = server(DownloadMode::RedirectOtherListener).await;
    let c = client_builder(&s.url())
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let d = DestDir::new();
    s.inject(
        Fault::new(Endpoint::Blob, FaultAction::Delay(Duration::from_secs(2)))
            .range_start(FAULTY)
            .times(ATTEMPTS),
    );
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_timeout()), "{e:?}");
    d.assert_untouched("silent server");
}

#[tokio::test]
async fn a_body_stalled_past_the_read_timeout() {
    // The third part sends 1000 bytes and then nothing for 3 s, on every
    // try while `stall` is set.
    let stall = Arc::new(Mutex::new(true));
    let st = stall.clone();
    let target = Arc::new(Mutex::new(String::new()));
    let lib = redirecting_library(target.clone(), move |seen, data| {
        if seen.range_start() == Some(FAULTY) && *st.lock().unwrap() {
            let part = data.slice(FAULTY as usize..(FAULTY + PART) as usize);
            return Reply::status(206)
                .header(
                    "content-range",
                    format!("bytes {FAULTY}-{}/{}", FAULTY + PART - 1, data.len()),
                )
                .header("content-length", PART.to_string())
                .steps(vec![
                    Step::Data(part.slice(..1000)),
                    Step::Sleep(Duration::from_secs(3)),
                    Step::Data(part.slice(1000..)),
                ]);
        }
        serve_bytes(seen, data)
    })
    .await;
    *target.lock().unwrap() = format!("{}blob", lib.url());
    let c = client_builder(&lib.url())
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let d = DestDir::new();
    let started = std::time::Instant::now();
    let e = c
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_timeout()), "{e:?}");
    assert!(e.is_network(), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after the read timeouts, not after the stall: {:?}",
        started.elapsed()
    );
    let tries = lib
        .hits("/blob")
        .iter()
        .filter(|s| s.range_start() == Some(FAULTY))
        .count();
    assert_eq!(tries, ATTEMPTS);
    d.assert_untouched_resumable("stalled body");

    *stall.lock().unwrap() = false;
    c.download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "after the stall");
}

/// `GET v1/imagefile/…` requests seen by the library.
fn imagefile_requests(s: &TestServer) -> usize {
    s.requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.path.starts_with("/v1/imagefile/"))
        .count()
}

#[tokio::test]
async fn the_same_faults_on_a_streamed_pull() {
    // The library serves the bytes itself (200); one stream, no ranges.
    let s = server(DownloadMode::Stream).await;
    let c = client(&s.url());
    let stream = Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    // A body that fails after the answer began: without ranges the stream
    // starts over, from a new request. Once: the pull succeeds. On every
    // try: it fails, changes nothing, and the next pull succeeds.
    for (what, action) in [
        ("reset", FaultAction::DropAfter(5000)),
        ("short", FaultAction::ShortBody),
    ] {
        let d = DestDir::new();
        s.clear_requests();
        s.inject(Fault::new(Endpoint::ImageFile, action));
        c.download_image(&d.dest, &stream).await.unwrap();
        d.assert_pulled(&image(), what);
        assert_eq!(imagefile_requests(&s), 2, "{what}: cut once, then whole");

        let d = DestDir::new();
        s.clear_requests();
        s.inject(Fault::new(Endpoint::ImageFile, action).times(ATTEMPTS));
        let e = c.download_image(&d.dest, &stream).await.unwrap_err();
        assert!(e.is_network(), "{what}: {e:?}");
        assert_eq!(imagefile_requests(&s), ATTEMPTS, "{what}");
        d.assert_untouched(what);
        c.download_image(&d.dest, &stream).await.unwrap();
        d.assert_pulled(&image(), what);
    }
    // A request answered 503 or closed without an answer is sent again.
    for (what, action) in [
        ("503", FaultAction::Status(503)),
        ("dropped", FaultAction::DropConnection),
    ] {
        let d = DestDir::new();
        s.clear_requests();
        s.inject(Fault::new(Endpoint::ImageFile, action));
        c.download_image(&d.dest, &stream).await.unwrap();
        d.assert_pulled(&image(), what);
        assert_eq!(
            imagefile_requests(&s),
            2,
            "{what}: one failed, one answered"
        );
    }
    // A stream started over reports each byte once, and ends with one
    // finish; given up, with one abort.
    let size = image().len() as u64;
    let p = Arc::new(RecordedProgress::default());
    s.inject(Fault::new(
        Endpoint::ImageFile,
        FaultAction::DropAfter(5000),
    ));
    let d = DestDir::new();
    c.download_image(&d.dest, &stream.clone().progress(p.clone()))
        .await
        .unwrap();
    assert_eq!(p.outcome(), (size, 1, 0));
    assert!(p.totals.lock().unwrap().iter().all(|&t| t == size));
    let p = Arc::new(RecordedProgress::default());
    s.inject(Fault::new(Endpoint::ImageFile, FaultAction::DropAfter(5000)).times(ATTEMPTS));
    let d = DestDir::new();
    c.download_image(&d.dest, &stream.clone().progress(p.clone()))
        .await
        .unwrap_err();
    assert_eq!(p.outcome(), (5000, 0, 1));

    // A 503 on every try: the last answer is the error, nothing changes.
    let d = DestDir::new();
    s.clear_requests();
    s.inject(Fault::new(Endpoint::ImageFile, FaultAction::Status(503)).times(ATTEMPTS));
    let e = c.download_image(&d.dest, &stream).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(503), "{e}");
    assert_eq!(imagefile_requests(&s), ATTEMPTS);
    d.assert_untouched("503 every try");
    // A body longer than its Content-Length promised, and corrupt bytes,
    // are caught by the image hash.
    let d = DestDir::new();
    s.inject(Fault::new(Endpoint::ImageFile, FaultAction::CorruptBody));
    let e = c.download_image(&d.dest, &stream).await.unwrap_err();
    assert!(e.is_integrity(), "{e:?}");
    d.assert_untouched("corrupt stream");
}

/// The range starts of the ranged GETs of the image, on either listener.
fn ranged_gets(s: &TestServer) -> Vec<u64> {
    let mut starts: Vec<u64> = s
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .filter_map(|r| {
            r.header("range")?
                .strip_prefix("bytes=")?
                .split_once('-')?
                .0
                .parse()
                .ok()
        })
        .collect();
    starts.sort_unstable();
    starts
}

/// A resumable pull fails at its third part (the first two are kept),
/// then the tag moves to another image of the same size: the next pull
/// must give exactly the new image, verified, having fetched all of it
/// (the kept parts are of the old one), whether the library redirects to
/// its blob listener or serves the ranges itself.
#[tokio::test]
async fn a_resume_after_the_tag_moved_to_another_image_of_the_same_size() {
    for (mode, endpoint) in [
        (DownloadMode::RedirectOtherListener, Endpoint::Blob),
        (DownloadMode::Stream, Endpoint::ImageFile),
    ] {
        let what = format!("{mode:?}");
        let s = server(mode).await;
        let c = client(&s.url());
        let d = DestDir::new();
        s.inject(
            Fault::new(endpoint, FaultAction::Status(503))
                .range_start(FAULTY)
                .times(ATTEMPTS),
        );
        let one_at_a_time = pull().resume(true).downloader(Downloader {
            concurrency: library_client::Concurrency::Fixed(1),
            part_size: Some(PART),
        });
        let e = c.download_image(&d.dest, &one_at_a_time).await.unwrap_err();
        assert_eq!(
            e.status(),
            Some(http::StatusCode::SERVICE_UNAVAILABLE),
            "{what}: {e}"
        );
        d.assert_untouched_resumable(&what);
        assert_eq!(ranged_gets(&s), [0, PART, FAULTY, FAULTY, FAULTY], "{what}");

        let new = random_bytes(SIZE, 12);
        s.add_image("e", "c", "k", &["latest"], "amd64", new.clone());
        s.clear_requests();
        let got = c
            .download_image(&d.dest, &pull().resume(true))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(got.verified, "{what}");
        assert_eq!(got.sha256, sha256_hex(&new), "{what}");
        d.assert_pulled(&new, &what);
        assert_eq!(
            ranged_gets(&s),
            [0, PART, 2 * PART, 3 * PART, 4 * PART],
            "{what}: every part of the new image, once"
        );
    }
}
