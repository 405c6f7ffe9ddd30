//! Cancellation mid-transfer: the pull's future is dropped (or its task
//! aborted) while parts are in flight. Nothing is left behind: no
//! temporary file, the destination untouched; a resumable pull keeps its
//! partial file and a later pull completes it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use library_client::{Downloader, Pull, Push};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::scripted::{Reply, Scripted, Step};
use library_e2e::*;
use library_testserver::{Endpoint, Fault, FaultAction, Listener, Multipart, TestServer};

const PART: u64 = 256 * 1024;
const SIZE: usize = 4 * PART as usize + 1000;
const FAULTY: u64 = 2 * PART;

fn image() -> Vec<u8> {
    random_bytes(SIZE, 31)
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(PART),
    })
}

/// Waits (at most 5 s) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits (at most 20 s) until no task of this test's runtime is alive: all
/// the work a dropped client left behind (part tasks, connections) has
/// ended. The test server runs on a runtime of its own.
async fn until_no_task_is_left() {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..2000 {
        if metrics.num_alive_tasks() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} tasks still alive", metrics.num_alive_tasks());
}

/// A temporary file of a pull exists beside the destination.
fn has_temp(d: &DestDir) -> bool {
    listing(d.path()).iter().any(|n| n != "image.sif")
}

async fn library() -> TestServer {
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .start()
        .await
        .unwrap();
    s.add_image("e", "c", "k", &["latest"], "amd64", image());
    s
}

fn part_in_flight(s: &TestServer) -> bool {
    s.requests().iter().any(|r| {
        r.listener == Listener::Blob
            && r.header("range")
                .is_some_and(|v| v.starts_with(&format!("bytes={FAULTY}-")))
    })
}

#[tokio::test]
async fn dropping_a_ranged_pull_leaves_nothing() {
    let s = library().await;
    let c = client(&s.url());
    let d = DestDir::new();
    s.inject(
        Fault::new(Endpoint::Blob, FaultAction::Delay(Duration::from_secs(10))).range_start(FAULTY),
    );
    let p = pull();
    let mut fut = Box::pin(c.download_image(&d.dest, &p));
    // Run the pull until the third part is in flight, then drop it.
    tokio::select! {
        r = &mut fut => panic!("the pull ended: {r:?}"),
        _ = until("part 3 in flight", || part_in_flight(&s)) => {}
    }
    assert!(has_temp(&d), "the pull writes a temporary file");
    drop(fut);
    d.assert_untouched("dropped ranged pull");
    // Nothing reappears once the in-flight work winds down.
    drop(c);
    until_no_task_is_left().await;
    d.assert_untouched("dropped ranged pull, later");
}

#[tokio::test]
async fn aborting_a_resumable_pull_keeps_its_partial_file_for_the_next_one() {
    let s = library().await;
    let c = client(&s.url());
    let d = DestDir::new();
    s.inject(
        Fault::new(Endpoint::Blob, FaultAction::Delay(Duration::from_secs(10))).range_start(FAULTY),
    );
    // One part at a time: parts 1 and 2 are complete (and recorded) before
    // part 3 is asked for.
    let one_at_a_time = pull().resume(true).downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    let task = {
        let (c, dest) = (c.clone(), d.dest.clone());
        tokio::spawn(async move { c.download_image(&dest, &one_at_a_time).await })
    };
    until("part 3 in flight", || part_in_flight(&s)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    d.assert_untouched_resumable("aborted resumable pull");
    assert!(listing(d.path()).contains(&".image.sif.part".to_string()));

    s.clear_requests();
    c.download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "resumed after the abort");
    let mut fetched: Vec<String> = s
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob)
        .map(|r| r.header("range").unwrap_or_default().to_string())
        .collect();
    fetched.sort();
    let mut missing: Vec<String> = (2..5)
        .map(|i| {
            let last = ((i + 1) * PART).min(SIZE as u64) - 1;
            format!("bytes={}-{last}", i * PART)
        })
        .collect();
    missing.sort();
    assert_eq!(
        fetched, missing,
        "the resumed pull fetches the parts the partial file lacks"
    );
}

#[tokio::test]
async fn dropping_a_streamed_pull_leaves_nothing() {
    // The library streams the image itself and stalls halfway.
    let data = Bytes::from(image());
    let hash = format!("sha256.{}", sha256_hex(&data));
    let lib = Scripted::start(move |seen| {
        if seen.path.starts_with("/v1/imagefile/") {
            let half = data.len() / 2;
            Reply::status(200)
                .header("content-length", data.len().to_string())
                .steps(vec![
                    Step::Data(data.slice(..half)),
                    Step::Sleep(Duration::from_secs(10)),
                    Step::Data(data.slice(half..)),
                ])
        } else if seen.path.starts_with("/v1/images/") {
            Reply::status(200)
                .data(serde_json::json!({"id": "1", "hash": hash, "size": data.len()}))
        } else {
            Reply::status(404)
        }
    })
    .await;
    let c = client(&lib.url());
    let d = DestDir::new();
    let stream = pull().downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    let mut fut = Box::pin(c.download_image(&d.dest, &stream));
    tokio::select! {
        r = &mut fut => panic!("the pull ended: {r:?}"),
        _ = until("part of the stream written", || {
            listing(d.path()).iter().filter(|n| *n != "image.sif").any(|n| {
                std::fs::metadata(d.path().join(n)).is_ok_and(|m| m.len() > 0)
            })
        }) => {}
    }
    drop(fut);
    d.assert_untouched("dropped stream");
}

#[tokio::test]
async fn dropping_an_oci_pull_leaves_nothing() {
    let reg = Registry::start(Some(REGISTRY_TOKEN)).await;
    reg.seed("e/c/k", "latest", "amd64", Bytes::from(image()), None);
    reg.inject(
        RegFault::new(Target::LayerPart, Action::Delay(Duration::from_secs(10)))
            .range_start(FAULTY),
    );
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(reg.url(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let c = client(&lib.url());
    let d = DestDir::new();
    let in_flight = || reg.log().iter().any(|s| s.range_start() == Some(FAULTY));
    let p = pull();
    let mut fut = Box::pin(c.download_image(&d.dest, &p));
    tokio::select! {
        r = &mut fut => panic!("the pull ended: {r:?}"),
        _ = until("layer part 3 in flight", in_flight) => {}
    }
    assert!(has_temp(&d));
    drop(fut);
    d.assert_untouched("dropped OCI pull");
    c.download_image(&d.dest, &pull()).await.unwrap();
    d.assert_pulled(&image(), "after the dropped OCI pull");
}

#[tokio::test]
async fn dropping_a_multipart_push_completes_nothing() {
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .multipart(Multipart::Supported {
            part_size: 16 << 20,
        })
        .start()
        .await
        .unwrap();
    s.inject(
        Fault::new(
            Endpoint::MultipartPartPut,
            FaultAction::Delay(Duration::from_secs(10)),
        )
        .part(2),
    );
    let dir = tempfile::tempdir().unwrap();
    let bytes = random_bytes((64 << 20) + 100, 32);
    let path = dir.path().join("big.sif");
    std::fs::write(&path, &bytes).unwrap();
    let c = client(&s.url());
    let push = Push::new("e/c/big").arch("amd64").tags(["v1"]);
    let s = Arc::new(s);
    let part2 = {
        let s = s.clone();
        move || {
            s.requests()
                .iter()
                .any(|r| r.listener == Listener::Blob && r.path.ends_with("/parts/2"))
        }
    };
    let mut fut = Box::pin(c.upload_image(&path, &push));
    tokio::select! {
        r = &mut fut => panic!("the push ended: {r:?}"),
        _ = until("part 2 in flight", part2) => {}
    }
    drop(fut);
    // Whatever the dropped push left running has ended.
    drop(c);
    until_no_task_is_left().await;
    let reqs = s.requests();
    assert!(!reqs.iter().any(|r| r.path.ends_with("_multipart_complete")));
    assert!(s.find_image("e", "c", "big", "v1", "amd64").is_none());
    // The file pushed is untouched, and a new push goes through.
    assert!(std::fs::read(&path).unwrap() == bytes);
    let c = client(&s.url());
    c.upload_image(&path, &push).await.unwrap();
    let img = s.find_image("e", "c", "big", "v1", "amd64").unwrap();
    assert!(s.image_bytes(&img.id).unwrap() == bytes);
}
