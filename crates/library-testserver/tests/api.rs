//! The JSON endpoints: version, objects, images, search, tags, delete,
//! token, OCI redirect, and the request log.

mod support;

use http::Method;
use library_testserver::{Listener, TestServer};
use serde_json::json;
use support::*;

#[tokio::test]
async fn version_answers_per_api_version() {
    for v in ["1.0.0", "2.0.0-alpha.1", "2.0.0-alpha.2"] {
        let s = TestServer::builder().api_version(v).start().await.unwrap();
        let r = Http::new().get(&u(&s.url(), "version")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.data()["apiVersion"], v);
        assert_eq!(
            r.data()["version"],
            format!("testserver-{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(r.json().get("error").is_none());
    }
    let s = TestServer::start().await.unwrap();
    let r = Http::new().get(&u(&s.url(), "version")).await;
    assert_eq!(r.data()["apiVersion"], "2.0.0-alpha.2");

    let s = TestServer::builder()
        .no_api_version()
        .version("custom-9")
        .start()
        .await
        .unwrap();
    let r = Http::new().get(&u(&s.url(), "version")).await;
    assert_eq!(r.data(), json!({"version": "custom-9"}));
}

#[tokio::test]
async fn objects_are_created_and_read_back() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    let base = s.url();
    assert_eq!(base.as_str(), format!("http://{}/", s.library_addr()));

    http.get(&u(&base, "v1/entities/alice"))
        .await
        .assert_error(404);
    http.get(&u(&base, "v1/collections/alice/tools"))
        .await
        .assert_error(404);
    http.get(&u(&base, "v1/containers/alice/tools/hello"))
        .await
        .assert_error(404);

    let hash = format!("sha256.{}", sha256_hex(b"hello"));
    let (kid, iid) = create_chain(
        &http,
        &base,
        "alice",
        "tools",
        "hello",
        &hash,
        Some("arm64"),
    )
    .await;
    assert_eq!(kid.len(), 24);
    assert!(kid.chars().all(|c| c.is_ascii_hexdigit()));

    let e = http.get(&u(&base, "v1/entities/alice")).await;
    assert_eq!(e.status, 200);
    let e = e.data();
    assert_eq!(e["name"], "alice");
    assert_eq!(e["description"], "No description");
    assert_eq!(e["deleted"], false);
    assert_ne!(e["createdAt"], "0001-01-01T00:00:00Z");
    assert_eq!(e["updatedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(e["collections"].as_array().unwrap().len(), 1);

    let c = http
        .get(&u(&base, "v1/collections/alice/tools"))
        .await
        .data();
    assert_eq!(c["entity"], e["id"]);
    assert_eq!(c["entityName"], "alice");
    assert_eq!(c["containers"], json!([kid]));

    let k = http
        .get(&u(&base, "v1/containers/alice/tools/hello"))
        .await
        .data();
    assert_eq!(k["id"], kid.as_str());
    assert_eq!(k["collection"], c["id"]);
    assert_eq!(k["collectionName"], "tools");
    assert_eq!(k["entityName"], "alice");
    assert_eq!(k["images"], json!([iid]));
    assert_eq!(k["imageTags"], json!({}));

    // Images by hash, with and without a matching arch.
    let path = format!("v1/images/alice/tools/hello:{hash}?arch=arm64");
    let i = http.get(&u(&base, &path)).await;
    assert_eq!(i.status, 200);
    let i = i.data();
    assert_eq!(i["id"], iid.as_str());
    assert_eq!(i["uploaded"], false);
    assert_eq!(i["arch"], "arm64");
    assert_eq!(i["containerName"], "hello");
    assert_eq!(i["entityName"], "alice");
    let other = format!("v1/images/alice/tools/hello:{hash}?arch=amd64");
    http.get(&u(&base, &other)).await.assert_error(404);
    http.get(&u(&base, "v1/images/alice/tools/hello:latest?arch=arm64"))
        .await
        .assert_error(404);

    // Duplicates and bad parents.
    let r = http
        .post_json(&u(&base, "v1/entities"), &json!({"name": "alice"}))
        .await;
    r.assert_error(409);
    let r = http
        .post_json(
            &u(&base, "v1/collections"),
            &json!({"name": "x", "entity": "nope"}),
        )
        .await;
    r.assert_error(400);
    let r = http
        .send(Method::POST, &u(&base, "v1/images"), &[], "not json")
        .await
        .unwrap();
    r.assert_error(400);

    // The accessors see the same objects.
    let k2 = s.container("alice", "tools", "hello").unwrap();
    assert_eq!(k2.id, kid);
    assert!(s
        .find_image("alice", "tools", "hello", &hash, "arm64")
        .is_some());
}

#[tokio::test]
async fn seeded_images_and_short_paths() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    let img = s.add_image(
        "library",
        "default",
        "alpine",
        &["latest", "3.20"],
        "amd64",
        b"alpine!".to_vec(),
    );
    assert_eq!(img.hash, format!("sha256.{}", sha256_hex(b"alpine!")));
    assert_eq!(img.size, 7);
    assert!(img.uploaded);
    assert_eq!(img.tags, vec!["3.20".to_string(), "latest".to_string()]);
    // A one-component path means library/default/<name>.
    let r = http
        .get(&u(&s.url(), "v1/images/alpine:3.20?arch=amd64"))
        .await;
    assert_eq!(r.data()["id"], img.id.as_str());
    let r = http
        .get(&u(&s.url(), "v1/containers/library/default/alpine"))
        .await;
    assert_eq!(r.data()["imageTags"]["latest"], img.id.as_str());
    assert_eq!(r.data()["archTags"]["amd64"]["3.20"], img.id.as_str());
    assert_eq!(s.image_bytes(&img.id).unwrap(), b"alpine!");
}

#[tokio::test]
async fn tags_v1_and_v2_stay_coherent() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    let base = s.url();
    let h1 = format!("sha256.{}", sha256_hex(b"one"));
    let (kid, i1) = create_chain(&http, &base, "e1", "c1", "k1", &h1, Some("amd64")).await;
    let h2 = format!("sha256.{}", sha256_hex(b"two"));
    let r = http
        .post_json(
            &u(&base, "v1/images"),
            &json!({"hash": h2, "container": kid}),
        )
        .await;
    let i2 = r.data()["id"].as_str().unwrap().to_string();
    assert!(r.data().get("arch").is_none());

    let r = http
        .post_json(
            &u(&base, &format!("v1/tags/{kid}")),
            &json!({"Tag": "latest", "ImageID": i1}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = http
        .post_json(
            &u(&base, &format!("v2/tags/{kid}")),
            &json!({"Arch": "arm64", "Tag": "latest", "ImageID": i2}),
        )
        .await;
    assert_eq!(r.status, 200);
    let v1 = http.get(&u(&base, &format!("v1/tags/{kid}"))).await;
    assert_eq!(v1.status, 200);
    // The last tag set wins in the map without architecture.
    assert_eq!(v1.data(), json!({"latest": i2}));
    let v2 = http.get(&u(&base, &format!("v2/tags/{kid}"))).await;
    assert_eq!(
        v2.data(),
        json!({"amd64": {"latest": i1}, "arm64": {"latest": i2}})
    );
    // Lookups by tag go per architecture.
    let r = http
        .get(&u(&base, "v1/images/e1/c1/k1:latest?arch=amd64"))
        .await;
    assert_eq!(r.data()["id"], i1.as_str());
    let r = http
        .get(&u(&base, "v1/images/e1/c1/k1:latest?arch=arm64"))
        .await;
    assert_eq!(r.data()["id"], i2.as_str());
    assert_eq!(
        r.data()["arch"],
        "arm64",
        "a v2 tag gives an image its arch"
    );

    // Errors.
    http.post_json(
        &u(&base, "v1/tags/nope"),
        &json!({"Tag": "x", "ImageID": i1}),
    )
    .await
    .assert_error(404);
    http.post_json(
        &u(&base, &format!("v1/tags/{kid}")),
        &json!({"Tag": "x", "ImageID": "nope"}),
    )
    .await
    .assert_error(400);

    // A server before 2.0.0-alpha.2 has no v2 tags; v1 tags still record the arch.
    let s = TestServer::builder()
        .api_version("2.0.0-alpha.1")
        .start()
        .await
        .unwrap();
    let base = s.url();
    let (kid, i1) = create_chain(&http, &base, "e1", "c1", "k1", &h1, Some("ppc64le")).await;
    http.get(&u(&base, &format!("v2/tags/{kid}")))
        .await
        .assert_error(404);
    http.post_json(
        &u(&base, &format!("v2/tags/{kid}")),
        &json!({"Arch": "amd64", "Tag": "latest", "ImageID": i1}),
    )
    .await
    .assert_error(404);
    let r = http
        .post_json(
            &u(&base, &format!("v1/tags/{kid}")),
            &json!({"Tag": "v1", "ImageID": i1}),
        )
        .await;
    assert_eq!(r.status, 200);
    let k = s.container("e1", "c1", "k1").unwrap();
    assert_eq!(k.image_tags.unwrap()["v1"], i1);
    assert_eq!(k.arch_tags.unwrap()["ppc64le"]["v1"], i1);
}

#[tokio::test]
async fn search_matches_names_and_filters_images() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    s.add_image(
        "searcher",
        "tools",
        "bwa",
        &["latest"],
        "amd64",
        b"a".to_vec(),
    );
    s.add_image(
        "searcher",
        "tools",
        "bwa",
        &["latest"],
        "arm64",
        b"b".to_vec(),
    );
    s.add_image(
        "other",
        "misc",
        "samtools",
        &["latest"],
        "amd64",
        b"c".to_vec(),
    );

    http.get(&u(&s.url(), "v1/search?value=bw"))
        .await
        .assert_error(400);
    http.get(&u(&s.url(), "v1/search")).await.assert_error(400);

    let r = http.get(&u(&s.url(), "v1/search?value=TOOLS")).await;
    assert_eq!(r.status, 200);
    let d = r.data();
    assert_eq!(d["entity"], json!([]));
    assert_eq!(d["collection"].as_array().unwrap().len(), 1);
    assert_eq!(d["collection"][0]["name"], "tools");
    assert_eq!(d["container"][0]["name"], "samtools");
    assert_eq!(d["image"].as_array().unwrap().len(), 1);

    let r = http.get(&u(&s.url(), "v1/search?value=sear")).await;
    assert_eq!(r.data()["entity"][0]["name"], "searcher");

    let r = http
        .get(&u(&s.url(), "v1/search?value=bwa&arch=arm64"))
        .await;
    let d = r.data();
    assert_eq!(d["image"].as_array().unwrap().len(), 1);
    assert_eq!(d["image"][0]["arch"], "arm64");
    assert_eq!(
        d["container"],
        json!([]),
        "arch restricts results to images"
    );

    let r = http
        .get(&u(
            &s.url(),
            "v1/search?value=bwa&arch=arm64,amd64&signed=false",
        ))
        .await;
    assert_eq!(r.data()["image"].as_array().unwrap().len(), 2);
    let r = http
        .get(&u(&s.url(), "v1/search?value=bwa&signed=true"))
        .await;
    assert_eq!(r.data()["image"], json!([]));
}

#[tokio::test]
async fn delete_removes_image_and_tags() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    let img = s.add_image(
        "e",
        "c",
        "k",
        &["latest", "old"],
        "amd64",
        b"bytes".to_vec(),
    );
    s.add_image("e", "c", "k", &["latest"], "arm64", b"other".to_vec());
    http.send(
        Method::DELETE,
        &u(&s.url(), "v1/images/e/c/k:latest"),
        &[],
        "",
    )
    .await
    .unwrap()
    .assert_error(400);
    http.send(
        Method::DELETE,
        &u(&s.url(), "v1/images/e/c/k:nope?arch=amd64"),
        &[],
        "",
    )
    .await
    .unwrap()
    .assert_error(404);
    let r = http
        .send(
            Method::DELETE,
            &u(&s.url(), "v1/images/e/c/k:latest?arch=amd64"),
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["id"], img.id.as_str());
    assert!(s.find_image("e", "c", "k", "latest", "amd64").is_none());
    assert!(s.find_image("e", "c", "k", "latest", "arm64").is_some());
    assert!(s.image_bytes(&img.id).is_none());
    let k = s.container("e", "c", "k").unwrap();
    assert!(!k.images.unwrap().contains(&img.id));
    assert!(!k.arch_tags.unwrap().contains_key("amd64"));
}

#[tokio::test]
async fn token_is_required_on_library_endpoints_only() {
    let s = TestServer::builder()
        .token("s3cret")
        .api_version("2.0.0-alpha.2")
        .start()
        .await
        .unwrap();
    let img = s.add_image("e", "c", "k", &["latest"], "amd64", b"data".to_vec());
    let anon = Http::new();
    let wrong = Http::with_token("other");
    let good = Http::with_token("s3cret");
    for path in [
        "version",
        "v1/entities/e",
        "v1/containers/e/c/k",
        "v1/images/e/c/k:latest?arch=amd64",
        "v1/search?value=abc",
        "v1/imagefile/e/c/k:latest?arch=amd64",
    ] {
        anon.get(&u(&s.url(), path)).await.assert_error(401);
        wrong.get(&u(&s.url(), path)).await.assert_error(401);
        let r = good.get(&u(&s.url(), path)).await;
        assert!(r.status == 200 || r.status == 303, "{path}: {}", r.status);
    }
    anon.post_json(&u(&s.url(), "v1/entities"), &json!({"name": "x"}))
        .await
        .assert_error(401);

    // The redirect target needs no token (same or other listener).
    let r = good
        .get(&u(&s.url(), "v1/imagefile/e/c/k:latest?arch=amd64"))
        .await;
    let loc = r.header("location").unwrap().to_string();
    let r = anon.get(&loc).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"data");
    let same = format!("{}blobs/{}?sig=x", s.url(), img.id);
    assert_eq!(anon.get(&same).await.status, 200);

    // Nor do the presigned-style upload URLs.
    let hash = format!("sha256.{}", sha256_hex(b"new"));
    let r = good
        .post_json(
            &u(&s.url(), "v1/images"),
            &json!({"hash": hash, "container": s.container("e", "c", "k").unwrap().id}),
        )
        .await;
    let iid = r.data()["id"].as_str().unwrap().to_string();
    let r = good
        .post_json(
            &u(&s.url(), &format!("v2/imagefile/{iid}")),
            &json!({"filesize": 3, "md5sum": md5_hex(b"new"), "sha256sum": sha256_hex(b"new")}),
        )
        .await;
    let url = r.data()["uploadURL"].as_str().unwrap().to_string();
    let r = anon.send(Method::PUT, &url, &[], "new").await.unwrap();
    assert_eq!(r.status, 200);
    let last = s.requests().pop().unwrap();
    assert_eq!(last.authorization(), None);
    assert_eq!(last.listener, Listener::Blob);
}

#[tokio::test]
async fn oci_redirect_is_404_unless_configured() {
    let s = TestServer::start().await.unwrap();
    let http = Http::new();
    http.get(&u(
        &s.url(),
        "v1/oci-redirect?namespace=alpine&mapped=1&accessTypes=pull",
    ))
    .await
    .assert_error(404);

    let reg = url::Url::parse("http://127.0.0.1:5000/").unwrap();
    let s = TestServer::builder()
        .oci_registry(reg.clone(), "regtoken")
        .start()
        .await
        .unwrap();
    let r = http
        .get(&u(
            &s.url(),
            "v1/oci-redirect?namespace=alpine&mapped=1&accessTypes=pull,push",
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"token": "regtoken", "url": reg.as_str(), "name": "library/default/alpine"})
    );
    let r = http
        .get(&u(&s.url(), "v1/oci-redirect?namespace=a/b/c&mapped=1"))
        .await;
    assert_eq!(r.json()["name"], "a/b/c");
}

#[tokio::test]
async fn request_log_records_everything() {
    let s = TestServer::start().await.unwrap();
    let http = Http::with_token("tok");
    let r = http
        .send(
            Method::POST,
            &u(&s.url(), "v1/entities?x=1"),
            &[
                ("user-agent", "probe/1.0"),
                ("content-type", "application/json"),
            ],
            r#"{"name":"logged"}"#,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    http.get(&u(&s.url(), "v1/search?value=log%20ged&arch=amd64"))
        .await;
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    let first = &reqs[0];
    assert_eq!(first.listener, Listener::Library);
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.path, "/v1/entities");
    assert_eq!(first.query.as_deref(), Some("x=1"));
    assert_eq!(first.header("User-Agent"), Some("probe/1.0"));
    assert_eq!(first.authorization(), Some("Bearer tok"));
    assert_eq!(first.json(), Some(json!({"name": "logged"})));
    assert_eq!(first.body_len, 17);
    let second = &reqs[1];
    assert_eq!(second.method, Method::GET);
    assert_eq!(second.query_param("value").as_deref(), Some("log ged"));
    assert!(second.body.is_empty());
    assert_eq!(second.json(), None);

    s.clear_requests();
    assert!(s.requests().is_empty());
    http.get(&u(&s.blob_url(), "version"))
        .await
        .assert_error(404);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].listener, Listener::Blob);
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_library_listens_on_a_given_port() {
    let port = free_port();
    let s = TestServer::builder().port(port).start().await.unwrap();
    assert_eq!(s.url().port(), Some(port));
    assert_ne!(s.blob_url().port(), Some(port));
    let r = Http::new().get(&u(&s.url(), "version")).await;
    assert_eq!(r.status, 200);
    // The port is taken now: a second server cannot start on it.
    let e = TestServer::builder().port(port).start().await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
}

#[test]
fn the_binary_takes_a_port() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_library-testserver"))
        .args(["--dir"])
        .arg(dir.path())
        .args(["--port", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(line.trim(), format!("LIBRARY_URL=http://127.0.0.1:{port}/"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_library-testserver"))
        .args(["--dir"])
        .arg(dir.path())
        .args(["--port", "http"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a port number"));
}
