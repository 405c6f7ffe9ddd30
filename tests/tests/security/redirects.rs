//! Redirects: only http(s) targets are followed, and never without bound.

use bytes::Bytes;
use library_client::{Downloader, ErrorKind, Pull, Push, Transfer};
use library_e2e::minilib::{Knobs, MiniLib};
use library_e2e::registry::Registry;
use library_e2e::scripted::{Reply, Scripted};
use library_e2e::*;
use library_testserver::TestServer;

fn image() -> Bytes {
    Bytes::from(random_bytes(300_000, 61))
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(100_000),
    })
}

const NOT_HTTP: &[&str] = &[
    "file:///etc/passwd",
    "ftp://127.0.0.1/image.sif",
    "gopher://127.0.0.1:70/x",
    "data:text/plain,hello",
];

#[tokio::test]
async fn a_pull_redirected_to_a_non_http_url_is_refused() {
    for location in NOT_HTTP {
        let lib = MiniLib::start(Knobs {
            image: image(),
            pull_location: Some(location.to_string()),
            ..Knobs::default()
        })
        .await;
        let c = client(&lib.url());
        let d = DestDir::new();
        let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
        assert!(e.to_string().contains("refused"), "{location}: {e}");
        d.assert_untouched(location);
        // Nothing was asked after the redirect (not even the image size).
        let last = lib.log().last().unwrap().path.clone();
        assert!(
            last.starts_with("/v1/imagefile/"),
            "{location}: then {last}"
        );

        let mut out = Vec::new();
        let e = c
            .download_image_to_writer(&mut out, &pull())
            .await
            .unwrap_err();
        // A refused redirect is an unusable answer on every path.
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{location}: {e}");
        assert!(out.is_empty());
    }
}

#[tokio::test]
async fn redirects_are_bounded() {
    // Every request to the library is sent on to /loop, which sends on to
    // itself.
    let lib = Scripted::start(|seen| {
        if seen.path.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
        } else if seen.path == "/v1/oci-redirect" {
            Reply::status(404)
        } else {
            Reply::status(302).header("location", "/loop")
        }
    })
    .await;
    let c = client(&lib.url());
    let mut out = Vec::new();
    let e = c
        .download_image_to_writer(&mut out, &pull())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("too many redirects"), "{e}");
    let followed = lib.hits("/loop").len();
    assert!((1..=5).contains(&followed), "followed {followed} redirects");

    // A ranged pull follows the library's 303 once; a part answered with
    // another redirect is an error, not followed.
    let lib = Scripted::start(|seen| {
        if seen.path.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
        } else if seen.path.starts_with("/v1/imagefile/") {
            Reply::status(303).header("location", "/loop")
        } else if seen.path == "/loop" {
            Reply::status(303).header("location", "/elsewhere")
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
    assert_eq!(e.status(), Some(http::StatusCode::SEE_OTHER), "{e}");
    assert!(
        lib.hits("/loop").len() <= 2,
        "one request per part in flight"
    );
    assert!(lib.hits("/elsewhere").is_empty());
    d.assert_untouched("redirected part");
}

#[tokio::test]
async fn registry_redirects_are_bounded_and_http_only() {
    let reg = Registry::start(None).await;
    reg.seed("e/c/k", "latest", "amd64", image(), None);
    let lib = TestServer::builder()
        .oci_registry(reg.url(), "")
        .start()
        .await
        .unwrap();
    let c = client(&lib.url());
    // Blobs redirect to themselves, forever.
    reg.redirect_blobs(&format!("{}v2/e/c/k/blobs/{{digest}}", reg.url()));
    let d = DestDir::new();
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(e.to_string().contains("too many redirects"), "{e}");
    let blob_gets = reg
        .log()
        .iter()
        .filter(|s| s.path.contains("/blobs/sha256:"))
        .count();
    assert!(blob_gets <= 6, "{blob_gets} blob requests");
    d.assert_untouched("registry redirect loop");

    for location in NOT_HTTP {
        reg.redirect_blobs(location);
        let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
        assert!(e.to_string().contains("not http"), "{location}: {e}");
        d.assert_untouched(location);
    }
}

#[tokio::test]
async fn a_registry_url_that_is_not_http_means_no_registry() {
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(url::Url::parse("file:///var/lib/registry/").unwrap(), "x")
        .start()
        .await
        .unwrap();
    lib.add_image("e", "c", "k", &["latest"], "amd64", image().to_vec());
    let d = DestDir::new();
    let got = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap();
    assert_ne!(got.transfer, Transfer::Oci);
    d.assert_pulled(&image(), "file:// registry");
}

#[tokio::test]
async fn upload_urls_that_are_not_http_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.sif");
    std::fs::write(&small, random_bytes(10_000, 62)).unwrap();
    for location in NOT_HTTP {
        let lib = MiniLib::start(Knobs {
            push_mode: true,
            upload_url: location.to_string(),
            ..Knobs::default()
        })
        .await;
        let e = client(&lib.url())
            .upload_image(&small, &Push::new("e/c/k").arch("amd64"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{location}: {e}");
        assert!(!lib.log().iter().any(|s| s.path.ends_with("/_complete")));
    }

    // A multipart part URL that is not http(s): the upload is aborted.
    let big = dir.path().join("big.sif");
    std::fs::write(&big, random_bytes((64 << 20) + 10, 63)).unwrap();
    let lib = MiniLib::start(Knobs {
        push_mode: true,
        multipart: Some(
            serde_json::json!({"uploadID": "u", "totalParts": 5, "partSize": 16 << 20}),
        ),
        part_url: "file:///etc/passwd".into(),
        ..Knobs::default()
    })
    .await;
    let e = client(&lib.url())
        .upload_image(&big, &Push::new("e/c/k").arch("amd64"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not http"), "{e}");
    let log = lib.log();
    assert_eq!(
        log.iter()
            .filter(|s| s.path.ends_with("_multipart_abort"))
            .count(),
        1
    );
    assert!(!log.iter().any(|s| s.path.ends_with("_multipart_complete")));
}
