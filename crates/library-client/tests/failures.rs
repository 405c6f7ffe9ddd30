//! Failures leave nothing behind: the destination is untouched, no
//! temporary file remains, a failed multipart upload is aborted.

mod support;

use library_client::{Downloader, Error, Pull, Push};
use library_testserver::{Endpoint, Fault, FaultAction, Listener, TestServer};
use support::*;

fn image() -> Vec<u8> {
    (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(31) % 256) as u8)
        .collect()
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(400_000),
    })
}

async fn setup() -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    let server = TestServer::start().await.unwrap();
    server.add_image("e", "c", "k", &["latest"], "amd64", image());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("k.sif");
    std::fs::write(&dest, b"previous contents").unwrap();
    (server, dir, dest)
}

fn untouched(dir: &tempfile::TempDir, dest: &std::path::Path) {
    assert_eq!(std::fs::read(dest).unwrap(), b"previous contents");
    assert!(
        stray_files(dir.path(), &["k.sif"]).is_empty(),
        "left behind: {:?}",
        stray_files(dir.path(), &["k.sif"])
    );
}

#[tokio::test]
async fn a_server_error_on_every_try_leaves_the_destination_untouched() {
    let (server, dir, dest) = setup().await;
    server.inject(Fault::new(Endpoint::Blob, FaultAction::Status(503)).always());
    let e = client(&server)
        .download_image(&dest, &pull())
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "{e}"
    );
    untouched(&dir, &dest);
}

#[tokio::test]
async fn corrupt_bytes_fail_the_integrity_check() {
    let (server, dir, dest) = setup().await;
    server.inject(
        Fault::new(Endpoint::Blob, FaultAction::CorruptBody)
            .range_start(400_000)
            .always(),
    );
    let e = client(&server)
        .download_image(&dest, &pull())
        .await
        .unwrap_err();
    assert!(e.is_integrity(), "{e}");
    untouched(&dir, &dest);
}

#[tokio::test]
async fn a_missing_image_is_not_found_and_changes_nothing() {
    let (server, dir, dest) = setup().await;
    let e = client(&server)
        .download_image(&dest, &Pull::new("e/c/nope").arch("amd64"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    untouched(&dir, &dest);
}

#[tokio::test]
async fn a_transient_error_is_retried() {
    let (server, _dir, dest) = setup().await;
    server.inject(Fault::new(Endpoint::Blob, FaultAction::Status(500)).range_start(800_000));
    server.inject(Fault::new(Endpoint::Blob, FaultAction::DropAfter(1000)).range_start(1_200_000));
    client(&server)
        .download_image(&dest, &pull())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), image());
}

#[tokio::test]
async fn a_resumed_pull_fetches_only_what_is_missing() {
    let (server, dir, dest) = setup().await;
    // Part 5 fails on every try of the first pull (1 + 3 retries).
    server.inject(
        Fault::new(Endpoint::Blob, FaultAction::Status(500))
            .range_start(1_600_000)
            .times(4),
    );
    let c = client(&server);
    // One part at a time: parts 1-4 are complete when part 5 fails.
    let one_at_a_time = pull().resume(true).downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        part_size: Some(400_000),
    });
    c.download_image(&dest, &one_at_a_time).await.unwrap_err();
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous contents");
    assert!(
        !stray_files(dir.path(), &["k.sif"]).is_empty(),
        "the partial file is kept for resuming"
    );
    server.clear_requests();
    c.download_image(&dest, &pull().resume(true)).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), image());
    let requests = server.requests();
    let fetched: Vec<Option<&str>> = requests
        .iter()
        .filter(|r| r.path.contains("blobs/") && r.method == "GET")
        .map(|r| r.header("range"))
        .collect();
    assert_eq!(
        fetched,
        [Some("bytes=1600000-1999999")],
        "resume fetches only part 5"
    );
    assert!(stray_files(dir.path(), &["k.sif"]).is_empty());
}

#[tokio::test]
async fn a_multipart_part_failing_every_retry_aborts_the_upload() {
    let server = TestServer::start().await.unwrap();
    server.inject(
        Fault::new(Endpoint::MultipartPartPut, FaultAction::Status(500))
            .part(2)
            .always(),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "big.sif", 64 * 1024 * 1024 + 1, 4);
    let e = client(&server)
        .upload_image(&file, &Push::new("e/c/big").arch("amd64"))
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::INTERNAL_SERVER_ERROR),
        "{e}"
    );
    let reqs = server.requests();
    let part2 = reqs
        .iter()
        .filter(|r| r.listener == Listener::Blob && r.path.ends_with("/parts/2"))
        .count();
    assert_eq!(part2, 4, "one try and three retries");
    let abort = matching(&reqs, "PUT", "_multipart_abort");
    assert_eq!(abort.len(), 1);
    let start = matching(&reqs, "POST", "_multipart");
    let upload_id = reqs
        .iter()
        .find(|r| r.path.ends_with("_multipart") && r.method == "PUT")
        .unwrap()
        .json()
        .unwrap()["uploadID"]
        .clone();
    assert_eq!(abort[0].json().unwrap()["uploadID"], upload_id);
    assert_eq!(start.len(), 1);
    assert!(matching(&reqs, "PUT", "_multipart_complete").is_empty());
    assert!(server
        .find_image("e", "c", "big", "latest", "amd64")
        .is_none());
}

#[tokio::test]
async fn without_multipart_support_a_big_image_goes_in_one_piece() {
    let server = TestServer::builder()
        .multipart(library_testserver::Multipart::NotSupported)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "big.sif", 64 * 1024 * 1024 + 1, 5);
    let pushed = client(&server)
        .upload_image(&file, &Push::new("e/c/big").arch("amd64"))
        .await
        .unwrap();
    assert_eq!(pushed.upload, library_client::UploadKind::V2Single);
    assert_eq!(
        server.image_bytes(&pushed.image_id).unwrap().len() as u64,
        64 * 1024 * 1024 + 1
    );
    // The MD5 is left out of the first read of a file this large; the
    // single-piece upload still announces the right one.
    let sums = library_transport::checksums(&file).unwrap();
    let reqs = server.requests();
    let upload = matching(&reqs, "POST", &format!("v2/imagefile/{}", pushed.image_id));
    let upload = upload
        .iter()
        .find(|r| !r.path.contains("_multipart"))
        .expect("the single-piece upload request");
    assert_eq!(upload.json().unwrap()["md5sum"], sums.md5_hex());
}
