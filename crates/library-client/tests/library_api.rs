//! Every operation against the in-process library server, under each API
//! version, with the requests the server saw.

mod support;

use library_client::{Error, Pull, Push, SearchArgs, UploadKind};
use library_testserver::{Listener, TestServer};
use support::*;

const VERSIONS: [&str; 3] = ["1.0.0", "2.0.0-alpha.1", "2.0.0-alpha.2"];

#[tokio::test]
async fn every_operation_under_each_api_version() {
    for api in VERSIONS {
        let server = TestServer::builder()
            .api_version(api)
            .token(TOKEN)
            .start()
            .await
            .unwrap();
        let client = client(&server);
        let dir = tempfile::tempdir().unwrap();
        let file = random_file(dir.path(), "img.sif", 300_000, 7);
        let sha = sha256_hex(&file);

        // Version, cached.
        let v = client.get_version().await.unwrap();
        assert_eq!(v.api_version, api);
        assert!(client.api_at_least("1.0.0").await);
        assert_eq!(
            client
                .api_at_least(library_client::API_VERSION_V2_UPLOAD)
                .await,
            api != "1.0.0",
            "{api}"
        );
        assert_eq!(
            client
                .api_at_least(library_client::API_VERSION_V2_ARCH_TAGS)
                .await,
            api == "2.0.0-alpha.2",
            "{api}"
        );

        // Push: find-or-create chain, upload by version, tags by version.
        let pushed = client
            .upload_image(
                &file,
                &Push::new("alice/tools/samtools")
                    .arch("amd64")
                    .tags(["1.17", "latest"])
                    .description("samtools"),
            )
            .await
            .unwrap();
        assert_eq!(pushed.hash, format!("sha256.{sha}"));
        assert_eq!(pushed.size, 300_000);
        let expect_upload = if api == "1.0.0" {
            UploadKind::V1
        } else {
            UploadKind::V2Single
        };
        assert_eq!(pushed.upload, expect_upload, "{api}");

        let reqs = server.requests();
        assert_eq!(
            matching(&reqs, "GET", "version").len(),
            1,
            "{api}: version asked once per client"
        );
        for r in reqs.iter().filter(|r| r.listener == Listener::Library) {
            assert_eq!(
                r.authorization(),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{api}: {} {}",
                r.method,
                r.path
            );
            assert_eq!(
                r.header("user-agent"),
                Some(UA),
                "{api}: {} {}",
                r.method,
                r.path
            );
        }
        for r in reqs.iter().filter(|r| r.listener == Listener::Blob) {
            assert_eq!(
                r.authorization(),
                None,
                "{api}: the token went to {} {}",
                r.method,
                r.path
            );
        }
        let e = matching(&reqs, "POST", "v1/entities");
        assert_eq!(e.len(), 1);
        let body = e[0].json().unwrap();
        assert_eq!(body["name"], "alice");
        assert_eq!(body["description"], "No description");
        let c = matching(&reqs, "POST", "v1/collections");
        assert_eq!(c[0].json().unwrap()["name"], "tools");
        assert!(!c[0].json().unwrap()["entity"].as_str().unwrap().is_empty());
        let k = matching(&reqs, "POST", "v1/containers");
        assert_eq!(k[0].json().unwrap()["name"], "samtools");
        let lookup = matching(
            &reqs,
            "GET",
            &format!("v1/images/alice/tools/samtools:sha256.{sha}"),
        );
        assert_eq!(lookup.len(), 1, "{api}");
        assert_eq!(lookup[0].query.as_deref(), Some("arch=amd64"));
        let img = matching(&reqs, "POST", "v1/images");
        let body = img[0].json().unwrap();
        assert_eq!(body["hash"], format!("sha256.{sha}"));
        assert_eq!(body["description"], "samtools");
        let id = pushed.image_id.clone();
        if api == "1.0.0" {
            let up = matching(&reqs, "POST", &format!("v1/imagefile/{id}"));
            assert_eq!(up.len(), 1);
            assert_eq!(up[0].body_len, 300_000);
            let tags = matching(&reqs, "POST", "v1/tags/");
            assert_eq!(tags.len(), 2);
            assert_eq!(tags[0].json().unwrap()["Tag"], "1.17");
            assert_eq!(tags[0].json().unwrap()["ImageID"], id.as_str());
            assert!(matching(&reqs, "POST", "v2/").is_empty());
        } else {
            let start = matching(&reqs, "POST", &format!("v2/imagefile/{id}"));
            assert_eq!(start.len(), 1);
            let b = start[0].json().unwrap();
            assert_eq!(b["filesize"], 300_000);
            assert_eq!(b["sha256sum"], sha.as_str());
            assert_eq!(b["md5sum"].as_str().unwrap().len(), 32);
            let put: Vec<_> = reqs
                .iter()
                .filter(|r| r.listener == Listener::Blob && r.method == "PUT")
                .collect();
            assert_eq!(put.len(), 1);
            assert_eq!(put[0].body_len, 300_000);
            assert_eq!(
                put[0].header("content-type"),
                Some("application/octet-stream")
            );
            assert_eq!(
                matching(&reqs, "PUT", &format!("v2/imagefile/{id}/_complete")).len(),
                1
            );
            if api == "2.0.0-alpha.2" {
                let tags = matching(&reqs, "POST", "v2/tags/");
                assert_eq!(tags.len(), 2);
                let b = tags[1].json().unwrap();
                assert_eq!(
                    (b["Arch"].as_str(), b["Tag"].as_str(), b["ImageID"].as_str()),
                    (Some("amd64"), Some("latest"), Some(id.as_str()))
                );
                assert!(matching(&reqs, "POST", "v1/tags/").is_empty());
            } else {
                assert_eq!(matching(&reqs, "POST", "v1/tags/").len(), 2);
                assert!(matching(&reqs, "POST", "v2/tags/").is_empty());
            }
        }

        // Objects, image, tags.
        let entity = client.get_entity("alice").await.unwrap();
        assert_eq!(entity.name, "alice");
        let container = client.get_container("alice/tools/samtools").await.unwrap();
        assert_eq!(
            client.get_collection("alice/tools").await.unwrap().name,
            "tools"
        );
        let image = client
            .get_image("amd64", "alice/tools/samtools:1.17")
            .await
            .unwrap();
        assert_eq!(image.hash, pushed.hash);
        assert_eq!(image.size, 300_000);
        assert!(image.is_uploaded());
        let tags = client.get_tags(&container.id).await.unwrap();
        assert_eq!(tags.get("latest"), Some(&id), "{api}");
        match client.get_arch_tags(&container.id).await {
            Ok(t) => {
                assert_ne!(api, "1.0.0");
                if api == "2.0.0-alpha.2" {
                    assert_eq!(t["amd64"]["1.17"], id);
                }
            }
            Err(e) => assert!(e.is_not_found() && api != "2.0.0-alpha.2", "{api}: {e}"),
        }

        // Search.
        server.clear_requests();
        // Images get an architecture through arch tags (v2); filter by it there.
        let (args, query) = if api == "2.0.0-alpha.2" {
            (
                SearchArgs::new("samtools").arch("amd64"),
                "arch=amd64&value=samtools",
            )
        } else {
            (SearchArgs::new("samtools"), "value=samtools")
        };
        let found = client.search(&args).await.unwrap();
        assert!(
            found
                .images
                .as_ref()
                .is_some_and(|v| v.iter().any(|i| i.id == id)),
            "{api}: {found:?}"
        );
        let s = server.requests();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].query.as_deref(), Some(query));
        assert!(client
            .search(&SearchArgs::new("ab"))
            .await
            .unwrap_err()
            .is_bad_request());
        assert_eq!(
            server.requests().len(),
            1,
            "a too-short search sends nothing"
        );

        // Pull back, then delete.
        let out = dir.path().join("out.sif");
        let pulled = client
            .download_image(
                &out,
                &Pull::new("alice/tools/samtools")
                    .tag("latest")
                    .arch("amd64"),
            )
            .await
            .unwrap();
        assert_eq!(sha256_hex(&out), sha);
        assert!(pulled.verified);
        client
            .delete_image("alice/tools/samtools:1.17", "amd64")
            .await
            .unwrap();
        let d = server.requests();
        let del = matching(&d, "DELETE", "v1/images/alice/tools/samtools:1.17");
        assert_eq!(del.len(), 1);
        assert_eq!(del[0].query.as_deref(), Some("arch=amd64"));
        let gone = client
            .get_image("amd64", "alice/tools/samtools:1.17")
            .await
            .unwrap_err();
        assert!(matches!(gone, Error::NotFound { .. }), "{gone}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn errors_are_typed() {
    let server = TestServer::builder().token(TOKEN).start().await.unwrap();
    let bad = library_client::Client::builder()
        .base_url(server.url().as_str())
        .token("wrong")
        .build()
        .unwrap();
    let e = bad.get_entity("alice").await.unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    assert!(matches!(e, Error::Unauthorized { .. }));
    let anon = library_client::Client::new(server.url().as_str(), "").unwrap();
    assert!(anon
        .get_entity("alice")
        .await
        .unwrap_err()
        .is_unauthorized());
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.authorization() != Some("Bearer ")),
        "an empty token sends no header"
    );
    assert!(server.requests().last().unwrap().authorization().is_none());

    let client = client(&server);
    let e = client.get_entity("nobody").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("nobody"), "{e}");
    assert!(client
        .delete_image("", "amd64")
        .await
        .unwrap_err()
        .is_bad_request());
    assert!(client
        .delete_image("a/b/c:t", "")
        .await
        .unwrap_err()
        .is_bad_request());
    let n = server.requests().len();
    for bad_path in ["../etc/passwd", "a/%2e%2e/b", "a/b/c/d", "a//b"] {
        let e = client
            .get_image("amd64", &format!("{bad_path}:latest"))
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "{bad_path}: {e}");
    }
    assert_eq!(
        server.requests().len(),
        n,
        "invalid references send nothing"
    );
}

#[tokio::test]
async fn a_legacy_server_without_api_version_gets_the_oldest_protocol() {
    let server = TestServer::builder()
        .no_api_version()
        .start()
        .await
        .unwrap();
    let client = client(&server);
    assert!(
        !client
            .api_at_least(library_client::API_VERSION_V2_UPLOAD)
            .await
    );
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "a.sif", 1000, 1);
    let pushed = client
        .upload_image(&file, &Push::new("e/c/k").arch("arm64").tags(["x"]))
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::V1);
}
