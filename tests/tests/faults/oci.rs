//! Pulls and pushes on the OCI path: the library redirects to a registry
//! (the scripted one of this crate), which misbehaves.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use library_client::{Downloader, Error, ErrorKind, Pull, Push, Transfer, UploadKind};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::*;
use library_testserver::TestServer;

const PART: u64 = 256 * 1024;
const SIZE: usize = 4 * PART as usize + 1000;
const FAULTY: u64 = 2 * PART;

fn image() -> Vec<u8> {
    random_bytes(SIZE, 21)
}

struct Oci {
    reg: Registry,
    lib: TestServer,
}

/// A registry holding `e/c/k:latest` and a library naming it.
async fn setup() -> Oci {
    let reg = Registry::start(Some(REGISTRY_TOKEN)).await;
    reg.seed("e/c/k", "latest", "amd64", Bytes::from(image()), None);
    let lib = library_for(&reg.url()).await;
    Oci { reg, lib }
}

async fn library_for(registry: &url::Url) -> TestServer {
    TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(registry.clone(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap()
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(PART),
    })
}

/// Layer part requests (ranged GETs other than the probe), by range start.
fn parts(reg: &Registry) -> Vec<u64> {
    reg.log()
        .iter()
        .filter(|s| s.method == Method::GET && s.path.contains("/blobs/sha256:"))
        .filter_map(|s| s.range())
        .filter(|r| *r != (0, 0))
        .map(|r| r.0)
        .collect()
}

fn persistent(action: Action) -> RegFault {
    RegFault::new(Target::LayerPart, action)
        .range_start(FAULTY)
        .times(ATTEMPTS)
}

/// A plain pull fails as `expect` says and leaves nothing; a resumable
/// pull (one part at a time, so that exactly the first two parts are
/// complete when the third fails) fails and keeps at most its partial
/// file; the resumed pull fetches exactly the three missing parts and
/// gives the exact image.
async fn fails_then_resumes(
    o: &Oci,
    what: &str,
    fault: impl Fn() -> RegFault,
    expect: impl Fn(&Error) -> bool,
) {
    let c = client(&o.lib.url());
    let d = DestDir::new();
    o.reg.inject(fault());
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(expect(&e), "{what}: unexpected error {e} / {e:?}");
    d.assert_untouched(what);

    o.reg.inject(fault());
    let one_at_a_time = pull().resume(true).downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    let e = c.download_image(&d.dest, &one_at_a_time).await.unwrap_err();
    assert!(expect(&e), "{what} (resumable): {e} / {e:?}");
    d.assert_untouched_resumable(what);

    let before = parts(&o.reg).len();
    let got = c
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    assert_eq!(got.transfer, Transfer::Oci);
    d.assert_pulled(&image(), what);
    let mut fetched = parts(&o.reg)[before..].to_vec();
    fetched.sort_unstable();
    assert_eq!(
        fetched,
        [FAULTY, 3 * PART, 4 * PART],
        "{what}: the resumed pull fetches the parts the partial file lacks"
    );
}

fn network(e: &Error) -> bool {
    e.is_network() && e.status().is_none()
}

fn invalid_response(e: &Error) -> bool {
    e.kind() == ErrorKind::InvalidResponse
        && transport_cause(e).is_some_and(|t| {
            t.part_number() == Some(3) && t.to_string().contains("invalid response")
        })
}

#[tokio::test]
async fn connection_refused_by_the_registry() {
    let dead = url::Url::parse(&format!("http://127.0.0.1:{}/", dead_port())).unwrap();
    let lib = library_for(&dead).await;
    let c = client(&lib.url());
    let d = DestDir::new();
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(network(&e), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_connect()), "{e:?}");
    d.assert_untouched("registry refused");

    let dir = tempfile::tempdir().unwrap();
    let sif = sif_file(dir.path(), 10_000, 1);
    let e = c
        .upload_image(&sif, &Push::new("e/c/k").tags(["v1"]))
        .await
        .unwrap_err();
    assert!(network(&e), "{e:?}");

    let o = setup().await;
    client(&o.lib.url())
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "after the registry came back");
}

#[tokio::test]
async fn connection_reset_mid_body() {
    let o = setup().await;
    o.reg
        .inject(RegFault::new(Target::LayerPart, Action::DropAfter(5000)).range_start(FAULTY));
    let d = DestDir::new();
    client(&o.lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    d.assert_pulled(&image(), "reset once");
    fails_then_resumes(
        &o,
        "reset every try",
        || persistent(Action::DropAfter(5000)),
        network,
    )
    .await;
}

#[tokio::test]
async fn a_part_answered_500_then_200() {
    let o = setup().await;
    o.reg
        .inject(RegFault::new(Target::LayerPart, Action::Status(500)).range_start(FAULTY));
    let d = DestDir::new();
    client(&o.lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    d.assert_pulled(&image(), "500 then 200");
    let p = parts(&o.reg);
    assert_eq!(p.iter().filter(|s| **s == FAULTY).count(), 2, "{p:?}");
    assert_eq!(p.len(), 6, "{p:?}");
}

#[tokio::test]
async fn a_503_on_every_try_gives_up_with_the_last_error() {
    let o = setup().await;
    o.reg.inject(
        RegFault::new(Target::LayerPart, Action::Status(500))
            .range_start(0)
            .times(ATTEMPTS - 1),
    );
    o.reg
        .inject(RegFault::new(Target::LayerPart, Action::Status(503)).range_start(0));
    let d = DestDir::new();
    let one = pull().downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(PART),
    });
    let e = client(&o.lib.url())
        .download_image(&d.dest, &one)
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{e}"
    );
    assert_eq!(parts(&o.reg), vec![0; ATTEMPTS]);
    d.assert_untouched("503 every try");
    fails_then_resumes(
        &o,
        "503 every try",
        || persistent(Action::Status(503)),
        |e| e.status() == Some(http::StatusCode::SERVICE_UNAVAILABLE),
    )
    .await;
}

#[tokio::test]
async fn short_and_long_bodies() {
    let o = setup().await;
    fails_then_resumes(&o, "short", || persistent(Action::Short), network).await;
    fails_then_resumes(&o, "long", || persistent(Action::Long), invalid_response).await;
}

#[tokio::test]
async fn a_wrong_content_range_and_the_whole_file_to_a_range() {
    let o = setup().await;
    fails_then_resumes(
        &o,
        "wrong range",
        || persistent(Action::WrongRange),
        invalid_response,
    )
    .await;
    fails_then_resumes(
        &o,
        "200 to a range",
        || persistent(Action::IgnoreRange),
        invalid_response,
    )
    .await;
}

#[tokio::test]
async fn a_body_stalled_past_the_read_timeout() {
    let o = setup().await;
    let c = client_builder(&o.lib.url())
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let d = DestDir::new();
    o.reg
        .inject(persistent(Action::Stall(1000, Duration::from_secs(3))));
    let started = std::time::Instant::now();
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(transport_cause(&e).is_some_and(|t| t.is_timeout()), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    d.assert_untouched("stalled");
    c.download_image(&d.dest, &pull()).await.unwrap();
    d.assert_pulled(&image(), "after the stall");
}

#[tokio::test]
async fn a_blob_with_the_wrong_digest() {
    // (Straight from a registry: library-client/tests/oci_fake_registry.rs.)
    let o = setup().await;
    let c = client(&o.lib.url());
    let d = DestDir::new();
    o.reg
        .inject(RegFault::new(Target::LayerPart, Action::Corrupt).range_start(FAULTY));
    let e = c
        .download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap_err();
    assert!(e.is_integrity(), "{e:?}");
    d.assert_untouched("corrupt layer, resumable");
    c.download_image(&d.dest, &pull().resume(true))
        .await
        .unwrap();
    d.assert_pulled(&image(), "after the corrupt layer");
}

#[tokio::test]
async fn a_manifest_or_config_with_the_wrong_digest() {
    let o = setup().await;
    let c = client(&o.lib.url());
    let d = DestDir::new();
    for (what, fault) in [
        (
            "manifest digest header",
            RegFault::new(Target::ManifestGet, Action::WrongDigest),
        ),
        (
            "manifest bytes",
            RegFault::new(Target::ManifestGet, Action::Corrupt),
        ),
        (
            "config bytes",
            RegFault::new(Target::ConfigGet, Action::Corrupt),
        ),
    ] {
        o.reg.inject(fault);
        let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
        assert!(e.is_integrity(), "{what}: {e:?}");
        d.assert_untouched(what);
    }
    assert!(parts(&o.reg).is_empty(), "no layer byte fetched");
}

fn patches(reg: &Registry) -> usize {
    reg.log()
        .iter()
        .filter(|s| s.method == Method::PATCH)
        .count()
}

fn manifest_puts(reg: &Registry) -> usize {
    reg.log()
        .iter()
        .filter(|s| s.method == Method::PUT && s.path.contains("/manifests/"))
        .count()
}

#[tokio::test]
async fn a_push_whose_chunk_fails_once_then_every_time() {
    let o = setup().await;
    let c = client(&o.lib.url());
    let dir = tempfile::tempdir().unwrap();
    let sif = sif_file(dir.path(), 200_000, 2);
    let want = std::fs::read(&sif).unwrap();

    o.reg
        .inject(RegFault::new(Target::Patch, Action::Status(500)));
    o.reg.inject(RegFault::new(Target::Patch, Action::Drop));
    let pushed = c
        .upload_image(&sif, &Push::new("e/c/p").tags(["v1"]))
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::Oci);
    assert_eq!(o.reg.blob(&sha256_digest(&want)).unwrap(), want);
    assert_eq!(o.reg.open_uploads(), 0, "no session left open");

    let sif = sif_file(dir.path(), 200_000, 3);
    let want = std::fs::read(&sif).unwrap();
    let before = (patches(&o.reg), manifest_puts(&o.reg));
    o.reg
        .inject(RegFault::new(Target::Patch, Action::Status(500)).times(ATTEMPTS - 1));
    o.reg
        .inject(RegFault::new(Target::Patch, Action::Status(503)).always());
    let e = c
        .upload_image(&sif, &Push::new("e/c/q").tags(["v1"]))
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{e}"
    );
    assert_eq!(
        patches(&o.reg) - before.0,
        ATTEMPTS,
        "one try and the retries"
    );
    assert_eq!(manifest_puts(&o.reg), before.1, "nothing tagged");
    assert!(o.reg.blob(&sha256_digest(&want)).is_none());
    assert_eq!(o.reg.open_uploads(), 0, "the failed session was cancelled");
    assert!(
        o.reg.log().iter().any(|s| s.method == Method::DELETE),
        "a DELETE of the session"
    );

    o.reg.clear_faults();
    c.upload_image(&sif, &Push::new("e/c/q").tags(["v1"]))
        .await
        .unwrap();
    assert_eq!(o.reg.blob(&sha256_digest(&want)).unwrap(), want);
}

#[tokio::test]
async fn a_push_the_registry_stores_under_another_digest() {
    let o = setup().await;
    let c = client(&o.lib.url());
    let dir = tempfile::tempdir().unwrap();
    let sif = sif_file(dir.path(), 50_000, 4);
    for fault in [
        RegFault::new(Target::UploadFinish, Action::WrongDigest),
        RegFault::new(Target::ManifestPut, Action::WrongDigest),
    ] {
        o.reg.inject(fault);
        let e = c
            .upload_image(&sif, &Push::new("e/c/w").tags(["v1"]))
            .await
            .unwrap_err();
        assert!(e.is_integrity(), "{e:?}");
    }
    let tagged = o
        .reg
        .log()
        .iter()
        .any(|s| s.method == Method::PUT && s.path.ends_with("/manifests/v1"));
    assert!(!tagged, "nothing tagged after a digest mismatch");
}

fn manifest_gets(reg: &Registry) -> usize {
    reg.log()
        .iter()
        .filter(|s| s.method == Method::GET && s.path.contains("/manifests/"))
        .count()
}

#[tokio::test]
async fn manifest_requests_failing_once_are_sent_again() {
    let o = setup().await;
    let c = client(&o.lib.url());
    let d = DestDir::new();
    c.download_image(&d.dest, &pull()).await.unwrap();
    let clean = manifest_gets(&o.reg);

    let d = DestDir::new();
    o.reg
        .inject(RegFault::new(Target::ManifestGet, Action::Status(502)));
    o.reg
        .inject(RegFault::new(Target::ManifestGet, Action::Drop));
    c.download_image(&d.dest, &pull()).await.unwrap();
    d.assert_pulled(&image(), "manifest GET failed twice");
    assert_eq!(manifest_gets(&o.reg), 2 * clean + 2);

    let dir = tempfile::tempdir().unwrap();
    let sif = sif_file(dir.path(), 50_000, 7);
    o.reg
        .inject(RegFault::new(Target::ManifestPut, Action::Status(503)));
    let before = manifest_puts(&o.reg);
    c.upload_image(&sif, &Push::new("e/c/m").tags(["v1"]))
        .await
        .unwrap();
    let puts = manifest_puts(&o.reg) - before;
    let d = DestDir::new();
    c.download_image(&d.dest, &Pull::new("e/c/m").tag("v1").arch("amd64"))
        .await
        .unwrap();
    d.assert_pulled(&std::fs::read(&sif).unwrap(), "pushed after a 503");
    // The faulted push made one PUT more than a clean push: the retried one.
    let d2 = tempfile::tempdir().unwrap();
    let sif2 = sif_file(d2.path(), 50_000, 8);
    let before = manifest_puts(&o.reg);
    c.upload_image(&sif2, &Push::new("e/c/n").tags(["v1"]))
        .await
        .unwrap();
    assert_eq!(puts, manifest_puts(&o.reg) - before + 1);
}
