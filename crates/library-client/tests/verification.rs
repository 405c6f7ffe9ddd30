//! A pull is verified against the image record's hash, and the record is
//! required: one that cannot be fetched fails the pull (nothing written),
//! never turning into an unverified success. Only a record that truly
//! states no SHA-256 gives `verified: false`.

mod support;

use library_client::{Downloader, Pull, Transfer};
use library_testserver::{DownloadMode, Endpoint, Fault, FaultAction, TestServer};
use support::*;

const MIB: usize = 1024 * 1024;

fn image(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 % 253) as u8).collect()
}

fn one_stream() -> Downloader {
    Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        ..Downloader::default()
    }
}

async fn server(mode: DownloadMode) -> TestServer {
    TestServer::builder().download(mode).start().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_cannot_be_fetched_fails_the_pull_on_every_path() {
    for (mode, downloader) in [
        (DownloadMode::Stream, one_stream()),
        (DownloadMode::Stream, Downloader::default()),
        (DownloadMode::RedirectOtherListener, Downloader::default()),
    ] {
        for status in [500u16, 401, 403] {
            let server = server(mode).await;
            server.add_image("e", "c", "img", &["latest"], "amd64", image(6 * MIB));
            server.inject(Fault::new(Endpoint::Images, FaultAction::Status(status)).always());
            let client = client(&server);
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("img.sif");
            let pull = Pull::new("e/c/img").arch("amd64").downloader(downloader);
            let err = client
                .download_image(&dest, &pull)
                .await
                .expect_err("no record, no pull");
            assert_eq!(
                err.status().map(|s| s.as_u16()),
                Some(status),
                "{mode:?} {downloader:?}: {err}"
            );
            assert!(!dest.exists(), "{mode:?}: nothing under the destination");
            assert!(stray_files(dir.path(), &[]).is_empty());
            // No image byte was asked for: the record comes first.
            let reqs = server.requests();
            assert!(
                matching(&reqs, "GET", "v1/imagefile").is_empty(),
                "{mode:?}: {reqs:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_record_is_not_found() {
    let server = server(DownloadMode::Stream).await;
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .download_image(
            dir.path().join("x.sif"),
            &Pull::new("e/c/none").arch("amd64"),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_a_sha256_hash_gives_an_unverified_pull() {
    for (mode, downloader, transfer) in [
        (DownloadMode::Stream, one_stream(), Transfer::Stream),
        (
            DownloadMode::Stream,
            Downloader::default(),
            Transfer::Ranged,
        ),
        (
            DownloadMode::RedirectOtherListener,
            Downloader::default(),
            Transfer::Ranged,
        ),
    ] {
        let server = server(mode).await;
        let bytes = image(6 * MIB);
        let img = server.add_image("e", "c", "old", &["latest"], "amd64", bytes.clone());
        assert!(server.set_image_hash(&img.id, "sif.7f1c3a6e-5c0b-4e4b-9d1d-2f3a4b5c6d7e"));
        let client = client(&server);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("old.sif");
        let pull = Pull::new("e/c/old").arch("amd64").downloader(downloader);
        let got = client.download_image(&dest, &pull).await.unwrap();
        assert!(!got.verified, "{mode:?}: nothing to verify against");
        assert_eq!(got.transfer, transfer, "{mode:?}");
        assert!(std::fs::read(&dest).unwrap() == bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_hash_in_the_record_fails_the_streamed_pull() {
    let server = server(DownloadMode::Stream).await;
    let img = server.add_image("e", "c", "img", &["latest"], "amd64", image(MIB));
    assert!(server.set_image_hash(&img.id, format!("sha256.{}", "ab".repeat(32))));
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("img.sif");
    let pull = Pull::new("e/c/img").arch("amd64").downloader(one_stream());
    let err = client.download_image(&dest, &pull).await.unwrap_err();
    assert!(err.is_integrity(), "{err}");
    assert!(!dest.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_pull_needs_the_record_too() {
    let server = server(DownloadMode::Stream).await;
    server.add_image("e", "c", "img", &["latest"], "amd64", image(MIB));
    server.inject(Fault::new(Endpoint::Images, FaultAction::Status(500)).always());
    let client = client(&server);
    let mut out = Vec::new();
    let err = client
        .download_image_to_writer(&mut out, &Pull::new("e/c/img").arch("amd64"))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500), "{err}");
    assert!(out.is_empty(), "no byte written without a record");
}
