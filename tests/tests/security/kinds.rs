//! One cause, one kind: the same failure met on different paths (a JSON
//! request, a streamed pull, a pull to a writer, ranged parts, the OCI
//! registry) gives the same error kind, hence the same exit code.

use bytes::Bytes;
use http::StatusCode;
use library_client::{Downloader, Error, ErrorKind, Pull};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::scripted::{Reply, Scripted};
use library_e2e::*;
use library_testserver::TestServer;

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(100_000),
    })
}

/// What a caller can tell of an error without its kind.
fn class(e: &Error) -> (bool, bool, bool, bool, bool, Option<StatusCode>) {
    (
        e.is_not_found(),
        e.is_unauthorized(),
        e.is_bad_request(),
        e.is_integrity(),
        e.is_network(),
        e.status(),
    )
}

fn assert_same(errors: &[(&str, Error)], kind: ErrorKind) {
    let (first, e0) = &errors[0];
    for (what, e) in errors {
        assert_eq!(e.kind(), kind, "{what}: {e:?}");
        assert_eq!(class(e), class(e0), "{what} vs {first}: {e:?} / {e0:?}");
    }
}

#[tokio::test]
async fn a_refused_redirect_is_an_invalid_response_on_every_path() {
    let lib = Scripted::start(|seen| {
        if seen.path == "/v1/oci-redirect" {
            Reply::status(404)
        } else if seen.path.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
        } else {
            Reply::status(303).header("location", "file:///etc/passwd")
        }
    })
    .await;
    let c = client(&lib.url());
    let d = DestDir::new();
    let to_file = c.download_image(&d.dest, &pull()).await.unwrap_err();
    let mut out = Vec::new();
    let to_writer = c
        .download_image_to_writer(&mut out, &pull())
        .await
        .unwrap_err();

    let reg = Registry::start(Some(REGISTRY_TOKEN)).await;
    reg.seed(
        "e/c/k",
        "latest",
        "amd64",
        Bytes::from(random_bytes(300_000, 71)),
        None,
    );
    reg.redirect_blobs("file:///etc/passwd");
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(reg.url(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let registry = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert_same(
        &[
            ("pull to a file", to_file),
            ("pull to a writer", to_writer),
            ("registry blob", registry),
        ],
        ErrorKind::InvalidResponse,
    );
    d.assert_untouched("refused redirects");
}

#[tokio::test]
async fn a_5xx_is_a_server_error_on_every_path() {
    // Every answer of the library is 503, except what leads to the parts.
    let lib = Scripted::start(|seen| {
        if seen.path == "/v1/oci-redirect" {
            Reply::status(404)
        } else {
            Reply::status(503)
        }
    })
    .await;
    let c = client(&lib.url());
    let d = DestDir::new();
    let json = c.get_image("amd64", "e/c/k:latest").await.unwrap_err();
    let stream = c.download_image(&d.dest, &pull()).await.unwrap_err();
    let mut out = Vec::new();
    let writer = c
        .download_image_to_writer(&mut out, &pull())
        .await
        .unwrap_err();

    let parts = Scripted::start(|seen| {
        if seen.path == "/v1/oci-redirect" {
            Reply::status(404)
        } else if seen.path.starts_with("/v1/imagefile/") {
            Reply::status(303).header("location", "/blob")
        } else if seen.path.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
        } else {
            Reply::status(503)
        }
    })
    .await;
    let ranged = client(&parts.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();

    let reg = Registry::start(Some(REGISTRY_TOKEN)).await;
    reg.seed(
        "e/c/k",
        "latest",
        "amd64",
        Bytes::from(random_bytes(300_000, 72)),
        None,
    );
    reg.inject(RegFault::new(Target::LayerPart, Action::Status(503)).always());
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(reg.url(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let registry = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();

    for (what, e) in [
        ("json", &json),
        ("stream", &stream),
        ("writer", &writer),
        ("ranged", &ranged),
    ] {
        assert!(matches!(e, Error::Http { .. }), "{what}: {e:?}");
    }
    assert_same(
        &[
            ("JSON request", json),
            ("streamed pull", stream),
            ("pull to a writer", writer),
            ("ranged part", ranged),
            ("registry part", registry),
        ],
        ErrorKind::Server,
    );
    d.assert_untouched("5xx");
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error_on_every_path() {
    let dead = url::Url::parse(&format!("http://127.0.0.1:{}/", dead_port())).unwrap();
    let c = client(&dead);
    let d = DestDir::new();
    let json = c.get_image("amd64", "e/c/k:latest").await.unwrap_err();
    let pull_file = c.download_image(&d.dest, &pull()).await.unwrap_err();
    let mut out = Vec::new();
    let writer = c
        .download_image_to_writer(&mut out, &pull())
        .await
        .unwrap_err();
    let lib = Scripted::start(move |seen| {
        if seen.path == "/v1/oci-redirect" {
            Reply::status(200)
                .json(&serde_json::json!({"token": "", "url": dead.as_str(), "name": "e/c/k"}))
        } else {
            Reply::status(404)
        }
    })
    .await;
    let registry = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert_same(
        &[
            ("JSON request", json),
            ("pull", pull_file),
            ("pull to a writer", writer),
            ("registry", registry),
        ],
        ErrorKind::Network,
    );
}
