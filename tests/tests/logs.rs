//! No token and no presigned signature in the logs: every event of the
//! process, at TRACE level, is captured while pulls and pushes run on the
//! library path and the OCI path (and fail), and searched for them.

use std::time::Duration;

use bytes::Bytes;
use library_client::{Downloader, Pull, Push};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::*;
use library_testserver::{Endpoint, Fault, FaultAction, Listener, Multipart, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_logs() {
    let sink = LogSink::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(sink.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = DestDir::new();
    let pull = Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(3),
        part_size: Some(256 * 1024),
    });

    // The library path: push (single and multipart), pull, a failed pull.
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .multipart(Multipart::Supported {
            part_size: 16 << 20,
        })
        .start()
        .await
        .unwrap();
    let c = client(&s.url());
    let small = dir.path().join("small.sif");
    let small_bytes = random_bytes(1_000_000, 101);
    std::fs::write(&small, &small_bytes).unwrap();
    let big = dir.path().join("big.sif");
    std::fs::write(&big, random_bytes((64 << 20) + 1, 102)).unwrap();
    c.upload_image(&small, &Push::new("e/c/k").arch("amd64").tags(["latest"]))
        .await
        .unwrap();
    c.upload_image(&big, &Push::new("e/c/big").arch("amd64"))
        .await
        .unwrap();
    s.inject(Fault::new(Endpoint::Blob, FaultAction::Status(500)));
    c.download_image(&d.dest, &pull).await.unwrap();
    assert!(std::fs::read(&d.dest).unwrap() == small_bytes);
    // A destination that already holds the image is up to date: remove it,
    // so that the failing pulls below really download.
    std::fs::remove_file(&d.dest).unwrap();
    s.inject(Fault::new(Endpoint::Blob, FaultAction::DropAfter(10)).always());
    c.download_image(&d.dest, &pull).await.unwrap_err();
    let bad = client_builder(&s.url())
        .token("not-the-token")
        .build()
        .unwrap();
    bad.download_image(&d.dest, &pull).await.unwrap_err();

    // The signatures of the presigned URLs the server handed out.
    let signatures: Vec<String> = s
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob)
        .filter_map(|r| r.query.clone())
        .flat_map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| k.to_ascii_lowercase().contains("sig"))
                .map(|(_, v)| v.to_string())
                .collect::<Vec<_>>()
        })
        .filter(|v| v.len() >= 8)
        .collect();
    assert!(!signatures.is_empty(), "the server hands out signed URLs");

    drop((c, bad));

    // The OCI path: push and pull through the library, a failing part.
    let reg = Registry::start(Some(REGISTRY_TOKEN)).await;
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(reg.url(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let c = client(&lib.url());
    let sif = dir.path().join("x.sif");
    let mut sif_bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sif/amd64.sif"),
    )
    .unwrap();
    sif_bytes.extend(random_bytes(700_000, 103));
    std::fs::write(&sif, &sif_bytes).unwrap();
    c.upload_image(&sif, &Push::new("e/c/k").tags(["latest"]))
        .await
        .unwrap();
    reg.inject(RegFault::new(Target::LayerPart, Action::Status(503)));
    c.download_image(&d.dest, &pull).await.unwrap();
    assert!(std::fs::read(&d.dest).unwrap() == sif_bytes);
    std::fs::remove_file(&d.dest).unwrap();
    reg.inject(RegFault::new(Target::LayerPart, Action::Drop).always());
    c.download_image(&d.dest, &pull).await.unwrap_err();
    reg.seed("e/c/z", "latest", "amd64", Bytes::from_static(b"z"), None);

    // Every event is in: the clients are gone and so is all the work they
    // had running (part tasks cut short by a failure, connections). What
    // is left on this runtime is the registry's accept loop; the library
    // test server runs on a runtime of its own.
    drop(c);
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while metrics.num_alive_tasks() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} tasks still alive",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = sink.text();
    // The capture works: the client's and the transport's events are there.
    assert!(
        text.contains("library request"),
        "no client events captured"
    );
    assert!(
        text.contains("registry request"),
        "no registry events captured"
    );
    assert!(text.contains("retrying"), "no retry events captured");
    assert!(
        text.lines().count() > 100,
        "only {} lines",
        text.lines().count()
    );
    for secret in [LIBRARY_TOKEN, REGISTRY_TOKEN, "not-the-token"] {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("a token in the logs: {line}");
        }
    }
    for sig in &signatures {
        if let Some(line) = text.lines().find(|l| l.contains(sig.as_str())) {
            panic!("a presigned URL's signature in the logs: {line}");
        }
    }
}
