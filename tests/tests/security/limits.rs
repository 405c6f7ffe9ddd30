//! Bounded buffering and sizes: a JSON body past the cap, an endless
//! error body, absurd image sizes and part counts are refused without
//! reading (or sending) more than a bounded amount.
//!
//! Covered elsewhere: the JSON cap of the transport on its own
//! (library-transport/tests/json.rs::buffered_bodies_are_capped).

use std::time::{Duration, Instant};

use bytes::Bytes;
use library_client::{Downloader, Error, ErrorKind, Pull, Push};
use library_e2e::minilib::{Knobs, MiniLib};
use library_e2e::registry::Registry;
use library_e2e::scripted::{Reply, Scripted, Step};
use library_e2e::*;
use library_testserver::TestServer;

const MIB: u64 = 1 << 20;

fn image() -> Bytes {
    Bytes::from(random_bytes(300_000, 71))
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(100_000),
    })
}

#[tokio::test]
async fn a_100_mib_json_body_is_refused_past_the_cap() {
    let lib = MiniLib::start(Knobs {
        huge_json: Some(100 * MIB),
        ..Knobs::default()
    })
    .await;
    let c = client(&lib.url());
    let started = Instant::now();
    let e = c.get_image("amd64", "e/c/k:latest").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e:?}");
    // The transport's error stays reachable as the cause.
    let cause =
        std::error::Error::source(&e).and_then(|s| s.downcast_ref::<library_transport::Error>());
    assert!(
        matches!(cause, Some(library_transport::Error::BodyTooLarge { limit, .. }) if *limit == 16 << 20),
        "{e:?}"
    );
    // The client stopped reading at the cap: the server got rid of a
    // little more than 16 MiB (socket buffers), not 100.
    lib.until_answers_ended().await;
    let sent = lib.bytes_sent();
    assert!(sent < 40 * MIB, "{} MiB sent", sent / MIB);
    assert!(started.elapsed() < Duration::from_secs(10));

    // The same through a pull, which asks for the image record.
    lib.knobs(|k| k.pull_location = Some("{base}blob".into()));
    let d = DestDir::new();
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    d.assert_untouched("huge image record");
}

#[tokio::test]
async fn an_endless_error_body_is_read_only_so_far() {
    // Every part is answered 500 with a body of 100 MiB.
    let lib = Scripted::start(|seen| {
        if seen.path.starts_with("/v1/imagefile/") {
            Reply::status(303).header("location", "/blob")
        } else if seen.path.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
        } else if seen.path == "/blob" {
            Reply::status(500)
                .header("content-type", "application/json")
                .steps(vec![Step::Repeat(Bytes::from(vec![b' '; 64 * 1024]), 1600)])
        } else {
            Reply::status(404)
        }
    })
    .await;
    let d = DestDir::new();
    let e = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        Some(http::StatusCode::INTERNAL_SERVER_ERROR),
        "{e}"
    );
    lib.until_answers_ended().await;
    let tries = lib.hits("/blob").len();
    let sent = lib.bytes_sent();
    assert!(
        sent < tries as u64 * 8 * MIB,
        "{} MiB sent for {tries} error answers",
        sent / MIB
    );
    d.assert_untouched("endless error body");
}

#[tokio::test]
async fn an_oversized_manifest_or_config_is_refused() {
    let reg = Registry::start(None).await;
    reg.seed("e/c/k", "latest", "amd64", image(), None);
    let lib = TestServer::builder()
        .oci_registry(reg.url(), "")
        .start()
        .await
        .unwrap();
    let c = client(&lib.url());
    let d = DestDir::new();
    let mut doc = b"{\"schemaVersion\":2,\"manifests\":[],\"x\":\"".to_vec();
    doc.resize(5 * MIB as usize, b'a');
    doc.extend_from_slice(b"\"}");
    reg.override_manifests(library_model::MEDIA_TYPE_OCI_INDEX, Bytes::from(doc));
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    d.assert_untouched("oversized manifest");
}

#[tokio::test]
async fn negative_and_zero_image_sizes_are_refused_before_any_transfer() {
    for size in [-1i64, 0, i64::MIN] {
        let lib = MiniLib::start(Knobs {
            image: image(),
            image_size: Some(size),
            pull_location: Some("{base}blob".into()),
            ..Knobs::default()
        })
        .await;
        let d = DestDir::new();
        let e = client(&lib.url())
            .download_image(&d.dest, &pull())
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!("size {size}")),
            "{size}: {e}"
        );
        assert!(
            lib.log().iter().all(|s| s.path != "/blob"),
            "{size}: fetched"
        );
        d.assert_untouched("bad size");
    }

    // The same sizes stated by a registry for the layer.
    for size in [-1i64, 0, i64::MIN] {
        let reg = Registry::start(None).await;
        reg.seed("e/c/k", "latest", "amd64", image(), Some(size));
        let lib = TestServer::builder()
            .oci_registry(reg.url(), "")
            .start()
            .await
            .unwrap();
        let d = DestDir::new();
        let e = client(&lib.url())
            .download_image(&d.dest, &pull())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("layer size"), "{size}: {e}");
        let layer = sha256_digest(&image());
        assert!(
            !reg.log().iter().any(|s| s.path.ends_with(&layer)),
            "{size}: the layer was fetched"
        );
        d.assert_untouched("bad layer size");
    }
}

#[tokio::test]
async fn a_size_larger_than_what_is_served_fails_cleanly() {
    // The record says 256 MiB; the server has 300 kB. (Below the largest
    // image the client takes by default, 1 TiB, and the free space of the
    // destination, the size is believed until the parts disagree.)
    let lib = MiniLib::start(Knobs {
        image: image(),
        image_size: Some(1 << 28),
        pull_location: Some("{base}blob".into()),
        ..Knobs::default()
    })
    .await;
    let d = DestDir::new();
    let e = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid response"), "{e}");
    let parts = lib.hits("/blob").len();
    assert!(parts <= 2 * ATTEMPTS, "{parts} part requests");
    d.assert_untouched("256 MiB claimed");
}

#[tokio::test]
async fn a_size_needing_too_many_parts_is_refused_before_any_part() {
    // 1 TiB in parts of 100 kB is eleven million parts: refused before a
    // file is created or a part is asked for.
    let lib = MiniLib::start(Knobs {
        image: image(),
        image_size: Some(1 << 40),
        pull_location: Some("{base}blob".into()),
        ..Knobs::default()
    })
    .await;
    let d = DestDir::new();
    let e = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("parts"), "{e}");
    assert_eq!(lib.hits("/blob").len(), 0, "no part was asked for");
    d.assert_untouched("1 TiB claimed");
}

#[tokio::test]
async fn a_size_beyond_the_largest_image_is_refused_before_any_part() {
    // Just over the default of 1 TiB (checked before the number of parts),
    // and the real size against a smaller configured maximum.
    for (claim, max) in [(Some((1i64 << 40) + 1), None), (None, Some(200_000))] {
        let lib = MiniLib::start(Knobs {
            image: image(),
            image_size: claim,
            pull_location: Some("{base}blob".into()),
            ..Knobs::default()
        })
        .await;
        let d = DestDir::new();
        let p = match max {
            Some(m) => pull().max_image_size(m),
            None => pull(),
        };
        let e = client(&lib.url())
            .download_image(&d.dest, &p)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("largest allowed"), "{claim:?}: {e}");
        assert_eq!(
            lib.hits("/blob").len(),
            0,
            "{claim:?}: a part was asked for"
        );
        d.assert_untouched("beyond the largest image");
    }
}

#[tokio::test]
async fn a_size_beyond_the_free_space_is_refused_before_any_part() {
    // 8 EiB: no file system here has that much room.
    let size = i64::MAX;
    let lib = MiniLib::start(Knobs {
        image: image(),
        image_size: Some(size),
        pull_location: Some("{base}blob".into()),
        ..Knobs::default()
    })
    .await;
    let d = DestDir::new();
    let p = pull().max_image_size(u64::MAX).downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(1 << 42),
    });
    let e = client(&lib.url())
        .download_image(&d.dest, &p)
        .await
        .unwrap_err();
    match &e {
        Error::Io { path, source } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{e}");
            assert_eq!(path, d.path(), "{e}");
        }
        e => panic!("not a storage error: {e:?}"),
    }
    assert!(
        e.to_string().contains(&format!("{size} bytes needed")),
        "{e}"
    );
    assert_eq!(lib.hits("/blob").len(), 0, "a part was asked for");
    d.assert_untouched("more than the free space");
}

async fn multipart_plan(plan: serde_json::Value) -> (MiniLib, Error) {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.sif");
    std::fs::write(&big, random_bytes((64 << 20) + 10, 72)).unwrap();
    let lib = MiniLib::start(Knobs {
        push_mode: true,
        multipart: Some(plan),
        ..Knobs::default()
    })
    .await;
    let e = client(&lib.url())
        .upload_image(&big, &Push::new("e/c/k").arch("amd64"))
        .await
        .unwrap_err();
    (lib, e)
}

fn no_part_sent(lib: &MiniLib, what: &str) {
    let log = lib.log();
    let asked = log
        .iter()
        .filter(|s| s.method == "PUT" && s.path.ends_with("/_multipart"))
        .count();
    assert_eq!(asked, 0, "{what}: part URLs asked");
    assert!(!log.iter().any(|s| s.path.starts_with("/part/")), "{what}");
    assert_eq!(
        log.iter()
            .filter(|s| s.path.ends_with("_multipart_abort"))
            .count(),
        1,
        "{what}: the upload is aborted"
    );
}

#[tokio::test]
async fn absurd_part_plans_are_refused_before_any_part() {
    let size = (64u64 << 20) + 10;
    for (what, plan) in [
        (
            "a billion parts",
            serde_json::json!({"uploadID": "u", "totalParts": 1_000_000_000i64, "partSize": 16 << 20}),
        ),
        (
            "zero parts",
            serde_json::json!({"uploadID": "u", "totalParts": 0, "partSize": 16 << 20}),
        ),
        (
            "negative part size",
            serde_json::json!({"uploadID": "u", "totalParts": 5, "partSize": -1}),
        ),
        (
            "zero part size",
            serde_json::json!({"uploadID": "u", "totalParts": 5, "partSize": 0}),
        ),
    ] {
        let (lib, e) = multipart_plan(plan).await;
        assert!(e.to_string().contains("parts of"), "{what}: {e}");
        no_part_sent(&lib, what);
    }
    // One-byte parts, consistent with the size: 67 million requests.
    let (lib, e) =
        multipart_plan(serde_json::json!({"uploadID": "u", "totalParts": size, "partSize": 1}))
            .await;
    assert!(e.to_string().contains("parts"), "one-byte parts: {e}");
    no_part_sent(&lib, "one-byte parts");
}
