//! References that could escape their place in a URL path (`..`,
//! `%2e%2e`, `/` inside a part, `?` or `#`) are refused before any
//! request; so are IDs from the server that would.

use std::sync::Arc;

use library_client::oci::OciRegistry;
use library_client::{Downloader, HttpClient, NoProgress, Push};
use library_e2e::minilib::{Knobs, MiniLib};
use library_e2e::registry::Registry;
use library_e2e::*;
use library_testserver::TestServer;

const BAD_PATHS: &[&str] = &[
    "e/../k",
    "../c/k",
    "e/c/..",
    "e/./k",
    "e/%2e%2e/k",
    "e/c/%2E%2E",
    "e/%2e/k",
    "e/c%2f..%2fk/k",
    "e//k",
    "/e/c/k",
    "e/c/k/",
    "e/c/k/x",
    "e\\..\\k/c/k",
    "e/c/k?x=1",
    "e/c/k#x",
    "e/c/k%3Flatest",
];

const BAD_TAGS: &[&str] = &[
    "..", ".", "../x", "a/b", "%2e%2e", "a%2fb", "x?y", "x#y", "", "a b",
];

#[tokio::test]
async fn library_references_are_checked_before_any_request() {
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .start()
        .await
        .unwrap();
    let c = client(&s.url());
    let d = DestDir::new();
    let pull = |p: &str| {
        library_client::Pull::new(p)
            .arch("amd64")
            .downloader(Downloader::default())
    };
    for p in BAD_PATHS {
        let e = c.download_image(&d.dest, &pull(p)).await.unwrap_err();
        assert!(e.is_bad_request(), "pull {p:?}: {e}");
        let mut w = Vec::new();
        let e = c
            .download_image_to_writer(&mut w, &pull(p))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "pull to writer {p:?}: {e}");
        let e = c
            .get_image("amd64", &format!("{p}:latest"))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "get_image {p:?}: {e}");
        let e = c
            .delete_image(&format!("{p}:latest"), "amd64")
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "delete_image {p:?}: {e}");
        let e = c.get_container(p).await.unwrap_err();
        assert!(e.is_bad_request(), "get_container {p:?}: {e}");
    }
    for t in BAD_TAGS {
        let e = c
            .download_image(&d.dest, &pull("e/c/k").tag(*t))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "tag {t:?}: {e}");
        let e = c
            .get_image("amd64", &format!("e/c/k:{t}"))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "get_image tag {t:?}: {e}");
    }
    for name in ["..", "%2e%2e", "e/x", "e?x", "."] {
        let e = c.get_entity(name).await.unwrap_err();
        assert!(e.is_bad_request(), "entity {name:?}: {e}");
    }
    for name in ["e/..", "../c", "e/%2e%2e", "e/c/k"] {
        let e = c.get_collection(name).await.unwrap_err();
        assert!(e.is_bad_request(), "collection {name:?}: {e}");
    }
    d.assert_untouched("bad references");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.sif");
    std::fs::write(&file, b"bytes").unwrap();
    for p in BAD_PATHS.iter().chain(&["e/c"]) {
        let e = c
            .upload_image(&file, &Push::new(*p).arch("amd64"))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "push {p:?}: {e}");
    }
    for t in BAD_TAGS {
        let e = c
            .upload_image(&file, &Push::new("e/c/k").arch("amd64").tags([*t]))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "push tag {t:?}: {e}");
    }
    for a in ["../x", "amd64/..", "%2e%2e", "a?b", ""] {
        let e = c
            .upload_image(&file, &Push::new("e/c/k").arch(a))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "push arch {a:?}: {e}");
    }
    assert!(
        s.requests().is_empty(),
        "requests were sent: {:?}",
        s.requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn registry_names_and_tags_are_checked_before_any_request() {
    let reg = Registry::start(None).await;
    let oci = OciRegistry::new(HttpClient::new().unwrap(), reg.url(), None);
    let d = DestDir::new();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sif/amd64.sif");
    // (More than three components is a valid repository name.)
    let names = BAD_PATHS.iter().filter(|p| **p != "e/c/k/x");
    for name in names.chain(&["E/c/k", "e/c/k:tag"]) {
        let e = oci
            .pull(
                name,
                "latest",
                None,
                &d.dest,
                Downloader::default(),
                false,
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "pull {name:?}: {e}");
        let e = oci
            .push(name, &file, None, &[], "", Arc::new(NoProgress))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "push {name:?}: {e}");
    }
    for t in BAD_TAGS {
        let e = oci
            .pull(
                "e/c/k",
                t,
                None,
                &d.dest,
                Downloader::default(),
                false,
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "pull tag {t:?}: {e}");
        let e = oci
            .push(
                "e/c/k",
                &file,
                None,
                &[t.to_string()],
                "",
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "push tag {t:?}: {e}");
    }
    assert!(reg.log().is_empty(), "{:?}", reg.log());
    d.assert_untouched("bad registry references");
}

#[tokio::test]
async fn a_mapped_name_from_the_library_that_escapes_is_refused() {
    // The library maps the name to one that climbs out of `v2/`.
    let reg = Registry::start(None).await;
    for mapped in ["../../admin", "e/%2e%2e/k", "e/c/k/../../x"] {
        let m = mapped.to_string();
        let base = reg.url().to_string();
        let lib = library_e2e::scripted::Scripted::start(move |seen| {
            if seen.path == "/v1/oci-redirect" {
                library_e2e::scripted::Reply::status(200)
                    .json(&serde_json::json!({"token": "", "url": base, "name": m}))
            } else {
                library_e2e::scripted::Reply::status(404)
            }
        })
        .await;
        let d = DestDir::new();
        let e = client(&lib.url())
            .download_image(&d.dest, &library_client::Pull::new("e/c/k").arch("amd64"))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "{mapped}: {e}");
        d.assert_untouched(mapped);
    }
    assert!(reg.log().is_empty(), "{:?}", reg.log());
}

/// Every request of a push went to a path the protocol names.
fn paths_expected(lib: &MiniLib) -> Vec<String> {
    let ok = |p: &str| {
        p == "/version"
            || p.starts_with("/v1/oci-redirect")
            || p.starts_with("/v1/entities/")
            || p.starts_with("/v1/collections/")
            || p.starts_with("/v1/containers/")
            || p.starts_with("/v1/images")
            || p.starts_with("/v2/imagefile/img1")
            || p.starts_with("/v2/tags/cont1")
            || p == "/upload/put"
    };
    lib.log()
        .into_iter()
        .map(|s| s.path)
        .filter(|p| !ok(p))
        .collect()
}

#[tokio::test]
async fn server_ids_that_would_escape_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.sif");
    std::fs::write(&file, random_bytes(10_000, 81)).unwrap();
    for (image_id, container_id) in [
        ("../../../admin/wipe", "cont1"),
        ("%2e%2e/%2e%2e/admin", "cont1"),
        ("img1", "../../admin"),
        ("img1?x=", "cont1"),
    ] {
        let lib = MiniLib::start(Knobs {
            push_mode: true,
            image_id: image_id.into(),
            container_id: container_id.into(),
            ..Knobs::default()
        })
        .await;
        let r = client(&lib.url())
            .upload_image(&file, &Push::new("e/c/k").arch("amd64").tags(["v1"]))
            .await;
        let stray = paths_expected(&lib);
        assert!(
            stray.is_empty(),
            "{image_id} / {container_id}: requests to {stray:?}"
        );
        let e = r.unwrap_err();
        assert!(e.is_bad_request(), "{image_id} / {container_id}: {e}");
    }
}
