//! Push then pull, byte-identical, across sizes and download modes; a
//! second push sends nothing; tags per architecture.

mod support;

use library_client::{Downloader, Pull, Push, Transfer, UploadKind};
use library_testserver::{DownloadMode, Listener, Multipart, Storage, TestServer};
use support::*;

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_is_byte_identical_at_every_size() {
    let store = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .storage(Storage::Dir(store.path().to_path_buf()))
        .multipart(Multipart::Supported {
            part_size: 16 * MIB,
        })
        .s3_compliant(true)
        .start()
        .await
        .unwrap();
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [1, 5 * MIB, 64 * MIB + 1, 200 * MIB]
        .into_iter()
        .enumerate()
    {
        let name = format!("img{i}");
        let file = random_file(dir.path(), &format!("{name}.sif"), size, i as u64);
        let want = sha256_hex(&file);
        server.clear_requests();
        let pushed = client
            .upload_image(
                &file,
                &Push::new(format!("e/c/{name}")).arch("amd64").tags(["v1"]),
            )
            .await
            .unwrap_or_else(|e| panic!("push of {size} bytes: {e}"));
        let expect = if size > 64 * MIB {
            UploadKind::V2Multipart
        } else {
            UploadKind::V2Single
        };
        assert_eq!(pushed.upload, expect, "{size}");
        if expect == UploadKind::V2Multipart {
            let reqs = server.requests();
            let parts: Vec<_> = reqs
                .iter()
                .filter(|r| r.listener == Listener::Blob && r.method == "PUT")
                .collect();
            assert_eq!(parts.len() as u64, size.div_ceil(16 * MIB), "{size}");
            assert_eq!(matching(&reqs, "PUT", "_multipart_complete").len(), 1);
            assert!(parts.iter().all(|p| p
                .header("x-amz-content-sha256")
                .is_some_and(|h| h.len() == 64)));
        } else {
            // The presigned URL signs x-amz-content-sha256: the header is sent.
            let reqs = server.requests();
            let put: Vec<_> = reqs
                .iter()
                .filter(|r| r.listener == Listener::Blob && r.method == "PUT")
                .collect();
            assert_eq!(put.len(), 1);
            assert_eq!(put[0].header("x-amz-content-sha256"), Some(want.as_str()));
        }
        let out = dir.path().join(format!("{name}.out"));
        let pulled = client
            .download_image(
                &out,
                &Pull::new(format!("e/c/{name}"))
                    .tag("v1")
                    .arch("amd64")
                    .downloader(Downloader {
                        concurrency: library_client::Concurrency::Fixed(4),
                        part_size: Some(5 * MIB),
                    }),
            )
            .await
            .unwrap_or_else(|e| panic!("pull of {size} bytes: {e}"));
        assert_eq!(pulled.size, size);
        assert_eq!(pulled.sha256, want);
        assert!(pulled.verified);
        assert_eq!(pulled.transfer, Transfer::Ranged);
        assert_eq!(sha256_hex(&out), want, "{size}");
        std::fs::remove_file(&out).unwrap();
        std::fs::remove_file(&file).unwrap();
    }
}

#[tokio::test]
async fn a_second_push_sends_nothing() {
    let server = TestServer::start().await.unwrap();
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "a.sif", 100_000, 3);
    let first = client
        .upload_image(&file, &Push::new("e/c/k").arch("amd64").tags(["a"]))
        .await
        .unwrap();
    assert_eq!(first.upload, UploadKind::V2Single);
    server.clear_requests();
    let second = client
        .upload_image(&file, &Push::new("e/c/k").arch("amd64").tags(["b"]))
        .await
        .unwrap();
    assert_eq!(second.upload, UploadKind::AlreadyPresent);
    assert_eq!(second.image_id, first.image_id);
    let reqs = server.requests();
    assert!(
        reqs.iter().all(|r| r.listener == Listener::Library),
        "no bytes sent"
    );
    assert!(matching(&reqs, "POST", "imagefile").is_empty());
    assert!(
        matching(&reqs, "POST", "v1/images").is_empty(),
        "the image record is reused"
    );
    assert_eq!(
        matching(&reqs, "POST", "v2/tags/").len(),
        1,
        "the new tag is still set"
    );
    let k = server.container("e", "c", "k").unwrap();
    assert_eq!(k.arch_tags.unwrap()["amd64"].len(), 2);
}

#[tokio::test]
async fn tags_are_per_architecture_on_v2_and_plain_on_v1() {
    for api in ["2.0.0-alpha.2", "2.0.0-alpha.1"] {
        let server = TestServer::builder()
            .api_version(api)
            .start()
            .await
            .unwrap();
        let client = client(&server);
        let dir = tempfile::tempdir().unwrap();
        let amd = random_file(dir.path(), "amd.sif", 2000, 10);
        let arm = random_file(dir.path(), "arm.sif", 2000, 11);
        client
            .upload_image(&amd, &Push::new("e/c/k").arch("amd64").tags(["latest"]))
            .await
            .unwrap();
        client
            .upload_image(&arm, &Push::new("e/c/k").arch("arm64").tags(["latest"]))
            .await
            .unwrap();
        let k = client.get_container("e/c/k").await.unwrap();
        if api == "2.0.0-alpha.2" {
            let t = client.get_arch_tags(&k.id).await.unwrap();
            assert_ne!(
                t["amd64"]["latest"], t["arm64"]["latest"],
                "one latest per architecture"
            );
            for (arch, file) in [("amd64", &amd), ("arm64", &arm)] {
                let out = dir.path().join(format!("{arch}.out"));
                client
                    .download_image(&out, &Pull::new("e/c/k").arch(arch))
                    .await
                    .unwrap();
                assert_eq!(sha256_hex(&out), sha256_hex(file), "{arch}");
            }
        } else {
            // v1 tags: the last push wins for every architecture.
            let t = client.get_tags(&k.id).await.unwrap();
            let img = client
                .get_image("arm64", &format!("e/c/k:sha256.{}", sha256_hex(&arm)))
                .await
                .unwrap();
            assert_eq!(t["latest"], img.id);
        }
    }
}

#[tokio::test]
async fn every_download_mode_gives_the_same_file() {
    for mode in [
        DownloadMode::Stream,
        DownloadMode::RedirectSameListener,
        DownloadMode::RedirectOtherListener,
    ] {
        let server = TestServer::builder().download(mode).start().await.unwrap();
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        server.add_image("e", "c", "k", &["latest"], "amd64", bytes.clone());
        let client = client(&server);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k.sif");
        let got = client
            .download_image(
                &out,
                &Pull::new("e/c/k").arch("amd64").downloader(Downloader {
                    concurrency: library_client::Concurrency::Fixed(3),
                    part_size: Some(1 << 20),
                }),
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), bytes, "{mode:?}");
        assert!(got.verified);
        // A library that streams with Accept-Ranges is read in parts too.
        assert_eq!(got.transfer, Transfer::Ranged, "{mode:?}");
        // One stream when a single stream is asked for.
        std::fs::remove_file(&out).unwrap();
        let one = client
            .download_image(
                &out,
                &Pull::new("e/c/k").arch("amd64").downloader(Downloader {
                    concurrency: library_client::Concurrency::Fixed(1),
                    part_size: Some(1 << 20),
                }),
            )
            .await
            .unwrap();
        let expect = if mode == DownloadMode::Stream {
            Transfer::Stream
        } else {
            Transfer::Ranged
        };
        assert_eq!(one.transfer, expect, "{mode:?}");
        assert_eq!(std::fs::read(&out).unwrap(), bytes, "{mode:?}");
        // The writer variant.
        let mut buf = Vec::new();
        let n = client
            .download_image_to_writer(&mut buf, &Pull::new("e/c/k").arch("amd64"))
            .await
            .unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(buf, bytes, "{mode:?}");
    }
}

#[tokio::test]
async fn a_store_that_is_not_s3_compliant_gets_no_part_checksums() {
    let server = TestServer::builder()
        .multipart(Multipart::Supported {
            part_size: 32 * MIB,
        })
        .s3_compliant(false)
        .start()
        .await
        .unwrap();
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "big.sif", 64 * MIB + 10, 21);
    let pushed = client
        .upload_image(&file, &Push::new("e/c/big").arch("amd64"))
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::V2Multipart);
    let reqs = server.requests();
    let urls: Vec<_> = reqs
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/_multipart"))
        .collect();
    assert_eq!(urls.len(), 3);
    assert!(urls.iter().all(|r| r.json().unwrap()["sha256sum"] == ""));
    let puts: Vec<_> = reqs
        .iter()
        .filter(|r| r.listener == Listener::Blob && r.method == "PUT")
        .collect();
    assert!(puts
        .iter()
        .all(|r| r.header("x-amz-content-sha256").is_none()));
    assert_eq!(
        sha256_hex(&file),
        library_transport_hex(&server.image_bytes(&pushed.image_id).unwrap())
    );
}

fn library_transport_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
