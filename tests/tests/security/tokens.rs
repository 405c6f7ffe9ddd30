//! The library's token goes only to the library's own scheme, host and
//! port; the registry the library names gets the token the library handed
//! out for it, never the library's own.
//!
//! Covered elsewhere: another port and another host get no token on a
//! redirect, a same-origin redirect does, presigned upload URLs on another
//! origin get none (library-client/tests/credentials.rs); the registry
//! sees only its token, a realm gets nothing, storage a registry redirects
//! to gets nothing (library-client/tests/oci_fake_registry.rs).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use library_client::{Client, Downloader, Pull, Push, Transfer, UploadKind};
use library_e2e::minilib::{Knobs, MiniLib};
use library_e2e::registry::Registry;
use library_e2e::scripted::{serve_bytes, Reply, Scripted};
use library_e2e::*;

const SIZE: usize = 600_000;

fn image() -> Bytes {
    Bytes::from(random_bytes(SIZE, 51))
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(200_000),
    })
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// An HTTPS library (its own CA) whose 303 points at `location`.
async fn https_library(pki: &Pki, location: Arc<Mutex<String>>) -> Scripted {
    let data = image();
    let hash = format!("sha256.{}", sha256_hex(&data));
    Scripted::start_tls(
        move |seen| {
            let p = seen.path.as_str();
            if p.starts_with("/v1/imagefile/") {
                Reply::status(303).header("location", location.lock().unwrap().as_str())
            } else if p.starts_with("/v1/images/") {
                Reply::status(200).data(serde_json::json!({
                    "id": "1", "hash": hash, "size": data.len(), "uploaded": true
                }))
            } else if p == "/blob" {
                serve_bytes(seen, &data)
            } else {
                Reply::status(404)
            }
        },
        pki.acceptor.clone(),
    )
    .await
}

fn https_client(pki: &Pki, base: &url::Url) -> Client {
    client_builder(base)
        .add_root_certificate_pem_file(&pki.ca_pem)
        .build()
        .unwrap()
}

#[tokio::test]
async fn never_from_https_to_http() {
    let pki = Pki::new();
    let plain = Scripted::start(|seen| serve_bytes(seen, &image())).await;
    let location = Arc::new(Mutex::new(String::new()));
    let lib = https_library(&pki, location.clone()).await;
    // An https library redirects to http (the plain listener).
    *location.lock().unwrap() = format!("http://127.0.0.1:{}/blob", plain.port());
    let c = https_client(&pki, &lib.url());
    let d = DestDir::new();
    c.download_image(&d.dest, &pull()).await.unwrap();
    d.assert_pulled(&image(), "https to http");
    let hits = plain.log();
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|s| s.authorization().is_none()),
        "token sent over http"
    );
    let lib_hits = lib.log();
    assert!(lib_hits
        .iter()
        .all(|s| s.authorization() == Some(bearer(LIBRARY_TOKEN).as_str())));

    // The writer path follows redirects itself: the same rule.
    let mut out = Vec::new();
    c.download_image_to_writer(&mut out, &pull()).await.unwrap();
    assert!(out == image());
    assert!(plain.log().iter().all(|s| s.authorization().is_none()));
}

#[tokio::test]
async fn the_same_https_origin_gets_the_token_and_http_on_that_port_does_not() {
    let pki = Pki::new();
    let location = Arc::new(Mutex::new(String::new()));
    let lib = https_library(&pki, location.clone()).await;
    let c = https_client(&pki, &lib.url());
    // Positive control: https on the same host and port.
    *location.lock().unwrap() = format!("https://127.0.0.1:{}/blob", lib.port());
    let d = DestDir::new();
    c.download_image(&d.dest, &pull()).await.unwrap();
    let blobs: Vec<_> = lib.hits("/blob");
    assert!(!blobs.is_empty());
    assert!(blobs
        .iter()
        .all(|s| s.authorization() == Some(bearer(LIBRARY_TOKEN).as_str())));

    // http on the very same host and port: the request is made in clear
    // (and fails against a TLS listener), but without the token. No
    // request can carry it, since none reaches the listener as http.
    *location.lock().unwrap() = format!("http://127.0.0.1:{}/blob", lib.port());
    let before = lib.hits("/blob").len();
    // A new destination: one that holds the image already is up to date.
    let d = DestDir::new();
    let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
    assert!(e.is_network(), "{e:?}");
    assert_eq!(
        lib.hits("/blob").len(),
        before,
        "no http request was understood"
    );
}

#[tokio::test]
async fn a_registry_on_the_librarys_origin_gets_only_its_own_token() {
    // The library and its registry share one host and port.
    for registry_token in [Some(REGISTRY_TOKEN), None] {
        let own = Arc::new(Mutex::new(String::new()));
        let o = own.clone();
        let t = registry_token.unwrap_or("").to_string();
        let reg = Registry::start_with(registry_token, move |seen| {
            (seen.path == "/v1/oci-redirect").then(|| {
                Reply::status(200).json(&serde_json::json!({
                    "token": t, "url": o.lock().unwrap().as_str(), "name": "e/c/k"
                }))
            })
        })
        .await;
        *own.lock().unwrap() = reg.url().to_string();
        reg.seed("e/c/k", "latest", "amd64", image(), None);
        let c = client(&reg.url());
        let d = DestDir::new();
        let got = c.download_image(&d.dest, &pull()).await.unwrap();
        assert_eq!(got.transfer, Transfer::Oci);
        d.assert_pulled(&image(), "same-origin registry");
        let dir = tempfile::tempdir().unwrap();
        let sif = dir.path().join("x.sif");
        let mut bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sif/amd64.sif"),
        )
        .unwrap();
        bytes.extend(random_bytes(10_000, 52));
        std::fs::write(&sif, &bytes).unwrap();
        let pushed = c
            .upload_image(&sif, &Push::new("e/c/k").tags(["v2"]))
            .await
            .unwrap();
        assert_eq!(pushed.upload, UploadKind::Oci);

        let log = reg.log();
        for s in &log {
            let want = if s.path == "/v1/oci-redirect" {
                Some(bearer(LIBRARY_TOKEN))
            } else {
                registry_token.map(bearer)
            };
            assert_eq!(
                s.authorization().map(str::to_string),
                want,
                "{} {} ({registry_token:?})",
                s.method,
                s.path
            );
        }
        assert!(log.iter().any(|s| s.path.starts_with("/v2/")));
    }
}

#[tokio::test]
async fn presigned_urls_on_the_librarys_own_origin_get_no_token() {
    let dir = tempfile::tempdir().unwrap();
    // A single upload, then a multipart one (five parts of 16 MiB).
    let small = dir.path().join("small.sif");
    std::fs::write(&small, random_bytes(100_000, 53)).unwrap();
    let big = dir.path().join("big.sif");
    let big_len = (64u64 << 20) + 10;
    std::fs::write(&big, random_bytes(big_len as usize, 54)).unwrap();
    let lib = MiniLib::start(Knobs {
        push_mode: true,
        multipart: Some(serde_json::json!({
            "uploadID": "up1", "totalParts": 5, "partSize": 16 << 20, "options": {"s3compliant": "false"}
        })),
        ..Knobs::default()
    })
    .await;
    let c = client(&lib.url());
    let push = Push::new("e/c/k").arch("amd64");
    assert_eq!(
        c.upload_image(&small, &push).await.unwrap().upload,
        UploadKind::V2Single
    );
    assert_eq!(
        c.upload_image(&big, &push).await.unwrap().upload,
        UploadKind::V2Multipart
    );
    let log = lib.log();
    let presigned: Vec<_> = log
        .iter()
        .filter(|s| s.path == "/upload/put" || s.path.starts_with("/part/"))
        .collect();
    assert_eq!(presigned.len(), 6, "one single upload and five parts");
    assert!(
        presigned.iter().all(|s| s.authorization().is_none()),
        "token sent to a presigned URL"
    );
    // Everything else went to the library with its token.
    assert!(log
        .iter()
        .filter(|s| !presigned.iter().any(|p| p.path == s.path))
        .all(|s| s.authorization() == Some(bearer(LIBRARY_TOKEN).as_str())));
}

/// Registry log-in credentials (`OciRegistry::basic_auth`) are sent only
/// when asked for: not with the first request, not to a realm over plain
/// http on another host, and to a realm on the registry's own host only
/// after its challenge.
#[tokio::test]
async fn registry_credentials_go_only_where_they_are_asked_for() {
    use library_client::oci::OciRegistry;
    const PASSWORD: &str = "pw-registry-7c1e";

    // A realm on another host name (`localhost`, where the registry is
    // `127.0.0.1`), over plain http.
    let far_realm =
        Scripted::start(|_| Reply::status(200).json(&serde_json::json!({"token": "t"}))).await;
    let far = format!("http://localhost:{}/token", far_realm.port());
    let reg = Scripted::start(move |_| {
        Reply::status(401).header(
            "www-authenticate",
            format!("Bearer realm=\"{far}\",service=\"s\""),
        )
    })
    .await;
    let r = OciRegistry::new(library_client::HttpClient::new().unwrap(), reg.url(), None)
        .basic_auth("robot", PASSWORD)
        .retry(fast_retry(0));
    let d = DestDir::new();
    let e = r
        .pull(
            "e/c/k",
            "v1",
            None,
            &d.dest,
            Downloader::default(),
            false,
            Arc::new(library_client::NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("credentials not sent"), "{e}");
    assert!(
        far_realm.log().is_empty(),
        "the far realm was not contacted"
    );
    assert!(
        reg.log().iter().all(|s| s.authorization().is_none()),
        "the registry got no credentials before asking for Basic"
    );

    // A realm on the registry's own host: after the challenge, and only
    // there, Basic credentials.
    let near_realm =
        Scripted::start(|_| Reply::status(200).json(&serde_json::json!({"token": "granted"})))
            .await;
    let near = format!("http://127.0.0.1:{}/token", near_realm.port());
    let reg = Scripted::start(move |seen| match seen.authorization() {
        Some("Bearer granted") => Reply::status(404).json(&serde_json::json!({
            "errors": [{"code": "MANIFEST_UNKNOWN", "message": "no such tag"}]
        })),
        _ => Reply::status(401).header(
            "www-authenticate",
            format!("Bearer realm=\"{near}\",service=\"s\",scope=\"repository:e/c/k:pull\""),
        ),
    })
    .await;
    let r = OciRegistry::new(library_client::HttpClient::new().unwrap(), reg.url(), None)
        .basic_auth("robot", PASSWORD)
        .retry(fast_retry(0));
    let e = r
        .pull(
            "e/c/k",
            "v1",
            None,
            &d.dest,
            Downloader::default(),
            false,
            Arc::new(library_client::NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let realm_auth: Vec<_> = near_realm
        .log()
        .iter()
        .map(|s| s.authorization().unwrap_or("").to_string())
        .collect();
    assert_eq!(realm_auth.len(), 1);
    assert!(realm_auth[0].starts_with("Basic "), "{realm_auth:?}");
    let seen: Vec<_> = reg
        .log()
        .iter()
        .map(|s| s.authorization().map(str::to_string))
        .collect();
    assert_eq!(seen[0], None, "nothing before the challenge");
    assert!(seen.len() > 1, "{seen:?}");
    assert!(
        seen[1..]
            .iter()
            .all(|a| a.as_deref() == Some("Bearer granted")),
        "then only the token, never the password: {seen:?}"
    );
}
