//! The OCI path against a small in-process registry that can misbehave:
//! a wrong blob, a 401 asking for any `Authorization`, a token realm, a
//! wrong manifest `Content-Type`, a redirect of blobs to storage on another
//! origin, failing chunk uploads. Also the whole path through the library
//! (`library-testserver` redirecting to this registry).

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use library_client::oci::OciRegistry;
use library_client::{
    Client, Downloader, Error, HttpClient, NoProgress, Pull, Push, RetryConfig, Transfer,
    UploadKind,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use url::Url;

include!("oci_fake/registry.rs");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sif")
        .join(name)
}

/// amd64.sif followed by `extra` pseudo-random bytes.
fn big_sif(dir: &Path, extra: usize, seed: u64) -> PathBuf {
    let mut bytes = std::fs::read(fixture("amd64.sif")).unwrap();
    let start = bytes.len();
    bytes.resize(start + extra, 0);
    fastrand::Rng::with_seed(seed).fill(&mut bytes[start..]);
    let path = dir.join(format!("big-{seed}.sif"));
    std::fs::write(&path, &bytes).unwrap();
    path
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

async fn pull(
    reg: &OciRegistry,
    tag: &str,
    arch: Option<&str>,
    dest: &Path,
    resume: bool,
) -> library_client::Result<library_client::oci::OciPulled> {
    let d = Downloader {
        concurrency: library_client::Concurrency::Fixed(3),
        part_size: Some(16 * 1024),
    };
    reg.pull(
        "alice/tools/hello",
        tag,
        arch,
        dest,
        d,
        resume,
        Arc::new(NoProgress),
    )
    .await
}

async fn push(reg: &OciRegistry, file: &Path) -> library_client::oci::OciPushed {
    reg.push(
        "alice/tools/hello",
        file,
        None,
        &["v1".into()],
        "",
        Arc::new(NoProgress),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_wrong_blob_leaves_no_file() {
    let fake = Fake::start(Knobs::default()).await;
    let reg = fake.registry(None);
    let dir = tempfile::tempdir().unwrap();
    let src = big_sif(dir.path(), 100_000, 1);
    push(&reg, &src).await;
    fake.knobs(|k| k.corrupt_blobs = true);

    for resume in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("image.sif");
        let e = pull(&reg, "v1", Some("amd64"), &dest, resume)
            .await
            .unwrap_err();
        assert!(e.is_integrity(), "{e}");
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
    }

    // A file already at the destination stays as it was.
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("image.sif");
    std::fs::write(&dest, b"old").unwrap();
    let e = pull(&reg, "v1", Some("amd64"), &dest, false)
        .await
        .unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    assert_eq!(listing(out.path()), ["image.sif"]);

    // Served correctly again, the same pull works and replaces it.
    fake.knobs(|k| k.corrupt_blobs = false);
    let got = pull(&reg, "v1", Some("amd64"), &dest, false).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());
    assert_eq!(got.size, std::fs::metadata(&src).unwrap().len());
    assert_eq!(listing(out.path()), ["image.sif"]);
}

#[tokio::test]
async fn a_blob_served_whole_is_taken_as_one_stream() {
    let fake = Fake::start(Knobs::default()).await;
    let reg = fake.registry(None);
    let dir = tempfile::tempdir().unwrap();
    let src = big_sif(dir.path(), 100_000, 5);
    push(&reg, &src).await;
    fake.knobs(|k| k.ignore_range = true);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("x.sif");
    let got = pull(&reg, "v1", Some("amd64"), &dest, false).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());
    assert_eq!(got.size, std::fs::metadata(&src).unwrap().len());
    let gets = fake
        .log()
        .iter()
        .filter(|s| s.method == Method::GET && s.path.contains("/blobs/sha256:"))
        .count();
    assert_eq!(gets, 2, "the config, then the layer once");
    // And a wrong blob served whole still leaves nothing.
    fake.knobs(|k| k.corrupt_blobs = true);
    let e = pull(&reg, "v1", Some("amd64"), &out.path().join("y.sif"), false)
        .await
        .unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert_eq!(listing(out.path()), ["x.sif"]);
}

#[tokio::test]
async fn a_401_without_credentials_is_retried_with_authorization_none() {
    for challenge in [None, Some("Basic realm=\"test-realm\"".to_string())] {
        let fake = Fake::start(Knobs {
            any_authorization: true,
            challenge: challenge.clone(),
            ..Knobs::default()
        })
        .await;
        let reg = fake.registry(None);
        let dir = tempfile::tempdir().unwrap();
        let pushed = push(&reg, &fixture("amd64.sif")).await;
        let dest = dir.path().join("x.sif");
        let got = pull(&reg, "v1", None, &dest, false).await.unwrap();
        assert_eq!(got.digest, pushed.layer_digest);
        let log = fake.log();
        // Every request went out bare first, then once more with `none`.
        let bare = log.iter().filter(|s| s.authorization.is_none()).count();
        let none = log
            .iter()
            .filter(|s| s.authorization.as_deref() == Some("none"))
            .count();
        assert!(bare > 0 && none > 0, "{challenge:?}: {log:#?}");
        assert!(
            log.iter()
                .all(|s| s.authorization.is_none() || s.authorization.as_deref() == Some("none")),
            "{log:#?}"
        );
    }
}

#[tokio::test]
async fn a_token_is_fetched_from_the_bearer_realm() {
    let fake = Fake::start(Knobs::default()).await;
    let realm = format!("{}token", fake.url);
    fake.knobs(|k| {
        k.token = Some("from-realm".into());
        k.challenge = Some(format!(
            r#"Bearer realm="{realm}",service="fake-registry",scope="repository:alice/tools/hello:pull,push""#
        ));
    });
    // A stale token from elsewhere: refused, then replaced by the realm's.
    let reg = fake.registry(Some("stale"));
    let dir = tempfile::tempdir().unwrap();
    push(&reg, &fixture("arm64.sif")).await;
    let dest = dir.path().join("x.sif");
    pull(&reg, "v1", Some("arm64"), &dest, false).await.unwrap();
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(fixture("arm64.sif")).unwrap()
    );
    let log = fake.log();
    let tokens: Vec<&Seen> = log.iter().filter(|s| s.path == "/token").collect();
    assert_eq!(tokens.len(), 1, "the realm's token is kept: {log:#?}");
    assert!(
        tokens[0].authorization.is_none(),
        "nothing is sent to the realm"
    );
    assert!(tokens[0].query.contains("service=fake-registry"));
    assert!(tokens[0]
        .query
        .contains("scope=repository%3Aalice%2Ftools%2Fhello%3Apull%2Cpush"));
    let stale = log
        .iter()
        .filter(|s| s.authorization.as_deref() == Some("Bearer stale"))
        .count();
    assert_eq!(stale, 1);
}

#[tokio::test]
async fn a_refused_token_without_a_realm_is_unauthorized() {
    let fake = Fake::start(Knobs {
        token: Some("right".into()),
        ..Knobs::default()
    })
    .await;
    let e = fake
        .registry(Some("wrong"))
        .push(
            "alice/tools/hello",
            &fixture("amd64.sif"),
            None,
            &[],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    let pushed = fake
        .registry(Some("right"))
        .push(
            "alice/tools/hello",
            &fixture("amd64.sif"),
            None,
            &[],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(pushed.blobs_uploaded, 2);
}

#[tokio::test]
async fn a_manifest_with_the_wrong_content_type_is_refused() {
    let fake = Fake::start(Knobs::default()).await;
    let reg = fake.registry(None);
    push(&reg, &fixture("amd64.sif")).await;
    fake.knobs(|k| {
        k.manifest_content_type =
            Some("application/vnd.docker.distribution.manifest.v2+json".into())
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.sif");
    let e = pull(&reg, "v1", Some("amd64"), &dest, false)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Oci { .. }), "{e}");
    assert!(e.to_string().contains("content type"), "{e}");
    assert!(listing(dir.path()).is_empty());
}

#[tokio::test]
async fn blobs_redirected_to_storage_get_no_token() {
    let fake = Fake::start(Knobs {
        token: Some("reg-token".into()),
        redirect_blobs: true,
        ..Knobs::default()
    })
    .await;
    let reg = fake.registry(Some("reg-token"));
    let dir = tempfile::tempdir().unwrap();
    let src = big_sif(dir.path(), 200_000, 2);
    let pushed = push(&reg, &src).await;
    let dest = dir.path().join("x.sif");
    let got = pull(&reg, "v1", None, &dest, false).await.unwrap();
    assert_eq!(got.digest, pushed.layer_digest);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());
    let log = fake.log();
    let storage: Vec<&Seen> = log.iter().filter(|s| s.storage).collect();
    // The config, the probe and the parts of the layer.
    assert!(storage.len() > 10, "{storage:#?}");
    assert!(
        storage.iter().all(|s| s.authorization.is_none()),
        "{storage:#?}"
    );
    assert!(log
        .iter()
        .filter(|s| !s.storage)
        .all(|s| s.authorization.as_deref() == Some("Bearer reg-token")));
    assert_ne!(fake.storage.port(), fake.url.port());
}

#[tokio::test]
async fn failed_chunks_resume_where_the_registry_stands() {
    let dir = tempfile::tempdir().unwrap();
    // 12 MiB and a bit: three chunks.
    let src = big_sif(dir.path(), 12 << 20, 3);
    let want = std::fs::read(&src).unwrap();
    // The second PATCH keeps half its chunk and fails; the fourth keeps
    // nothing and fails (it is the retry of the third chunk... or any).
    let fake = Fake::start(Knobs {
        fail_patches: vec![(2, true), (4, false)],
        ..Knobs::default()
    })
    .await;
    let reg = fake.registry(None);
    let pushed = push(&reg, &src).await;
    assert_eq!(fake.blob(&pushed.layer_digest).unwrap(), want);
    let log = fake.log();
    let status_checks = log
        .iter()
        .filter(|s| s.method == Method::GET && s.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(status_checks, 2, "{log:#?}");
    let posts = log.iter().filter(|s| s.method == Method::POST).count();
    assert_eq!(posts, 2, "one POST for the image, one for the config");

    // A failure of the very first chunk starts the upload over.
    let fake = Fake::start(Knobs {
        fail_patches: vec![(1, false)],
        ..Knobs::default()
    })
    .await;
    let reg = fake.registry(None);
    let pushed = push(&reg, &src).await;
    assert_eq!(fake.blob(&pushed.layer_digest).unwrap(), want);
    let posts = fake
        .log()
        .iter()
        .filter(|s| s.method == Method::POST)
        .count();
    assert_eq!(posts, 3, "the image upload was started twice");
}

/// A registry that answers an upload's status with a `Range` whose end
/// is the largest number there is (so `end + 1` does not exist): a clear
/// invalid-response error naming the value, not a panic, and no retry on
/// its word.
#[tokio::test]
async fn an_upload_status_range_at_the_largest_number_is_an_invalid_response() {
    let dir = tempfile::tempdir().unwrap();
    let src = big_sif(dir.path(), 100_000, 4);
    for range in ["0-18446744073709551615", "0-99999999999999999999999"] {
        let fake = Fake::start(Knobs {
            fail_patches: vec![(1, true)],
            status_range: Some(range.into()),
            ..Knobs::default()
        })
        .await;
        let reg = fake.registry(None);
        let e = reg
            .push(
                "alice/tools/hello",
                &src,
                None,
                &["v1".into()],
                "",
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("invalid response"), "{range}: {msg}");
        assert!(msg.contains(range), "{range}: {msg}");
        assert!(!e.is_network(), "{range}: {e:?}");
        let log = fake.log();
        let status_checks = log
            .iter()
            .filter(|s| s.method == Method::GET && s.path.contains("/blobs/uploads/"))
            .count();
        assert_eq!(status_checks, 1, "{range}: {log:#?}");
        let patches = log.iter().filter(|s| s.method == Method::PATCH).count();
        assert_eq!(patches, 1, "{range}: nothing sent after the status");
    }
}

#[tokio::test]
async fn pushes_are_checked_before_anything_is_sent() {
    let fake = Fake::start(Knobs::default()).await;
    let reg = fake.registry(None);
    for (name, tags) in [("Alice/x", vec![]), ("a/b", vec!["bad tag".to_string()])] {
        let e = reg
            .push(
                name,
                &fixture("amd64.sif"),
                None,
                &tags,
                "",
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        assert!(e.is_bad_request(), "{e}");
    }
    let e = reg
        .push(
            "a/b",
            &fixture("no-primary.sif"),
            None,
            &[],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Sif { .. }), "{e}");
    assert!(fake.log().is_empty());
}

// ---- through the library ----------------------------------------------------

#[tokio::test]
async fn the_library_redirects_pulls_and_pushes_to_its_registry() {
    let (fake, server, client) = library_before_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let src = big_sif(dir.path(), 300_000, 4);

    let pushed = client
        .upload_image(
            &src,
            &Push::new("alice/tools/hello")
                .tags(["v1", "latest"])
                .description("hi"),
        )
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::Oci);
    assert_eq!(pushed.arch, "amd64");
    let hex = pushed.hash.strip_prefix("sha256.").unwrap().to_string();
    assert_eq!(
        fake.blob(&format!("sha256:{hex}")).unwrap(),
        std::fs::read(&src).unwrap()
    );

    let dest = dir.path().join("pulled.sif");
    let pulled = client
        .download_image(
            &dest,
            &Pull::new("alice/tools/hello").tag("v1").arch("amd64"),
        )
        .await
        .unwrap();
    assert_eq!(pulled.transfer, Transfer::Oci);
    assert!(pulled.verified);
    assert_eq!(pulled.sha256, hex);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());

    // An architecture the registry does not have is the pull's error (no
    // fallback to the library's own endpoints).
    let e = client
        .download_image(
            dir.path().join("no.sif"),
            &Pull::new("alice/tools/hello").tag("v1").arch("arm64"),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("arm64"), "{e}");

    // The library's token went to the library only; the registry saw its own.
    let log = fake.log();
    assert!(!log.is_empty());
    for s in &log {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {REGISTRY_TOKEN}").as_str()),
            "{s:?}"
        );
    }
    let reqs = server.requests();
    let redirects: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/v1/oci-redirect")
        .collect();
    assert_eq!(redirects.len(), 3, "{reqs:#?}");
    for r in &redirects {
        assert_eq!(
            r.authorization(),
            Some(format!("Bearer {LIBRARY_TOKEN}").as_str())
        );
        assert_eq!(
            r.query_param("namespace").as_deref(),
            Some("alice/tools/hello")
        );
        assert_eq!(r.query_param("mapped").as_deref(), Some("1"));
    }
    assert_eq!(
        redirects[0].query_param("accessTypes").as_deref(),
        Some("pull,push")
    );
    assert_eq!(
        redirects[1].query_param("accessTypes").as_deref(),
        Some("pull")
    );
    // Nothing but the redirect probe reached the library.
    assert!(
        reqs.iter().all(|r| r.path == "/v1/oci-redirect"),
        "{reqs:#?}"
    );
}

#[tokio::test]
async fn a_short_name_is_mapped_by_the_library() {
    let fake = Fake::start(Knobs::default()).await;
    let server = library_testserver::TestServer::builder()
        .oci_registry(fake.url.clone(), "")
        .start()
        .await
        .unwrap();
    // Seed the registry under the full name the library maps to.
    let direct = fake.registry(None);
    direct
        .push(
            "library/default/alpine",
            &fixture("amd64.sif"),
            None,
            &["latest".into()],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    let client = Client::builder()
        .base_url(server.url().as_str())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("alpine.sif");
    let got = client
        .download_image(&dest, &Pull::new("alpine").arch("amd64"))
        .await
        .unwrap();
    assert_eq!(got.transfer, Transfer::Oci);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(fixture("amd64.sif")).unwrap()
    );
    // No token from the redirect: none is sent to the registry.
    assert!(fake.log().iter().all(|s| s.authorization.is_none()));
}

#[tokio::test]
async fn a_library_without_a_registry_is_used_directly() {
    let server = library_testserver::TestServer::builder()
        .token(LIBRARY_TOKEN)
        .start()
        .await
        .unwrap();
    server.add_image(
        "alice",
        "tools",
        "hello",
        &["v1"],
        "amd64",
        b"SIF bytes".to_vec(),
    );
    let client = Client::builder()
        .base_url(server.url().as_str())
        .token(LIBRARY_TOKEN)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.sif");
    let got = client
        .download_image(
            &dest,
            &Pull::new("alice/tools/hello").tag("v1").arch("amd64"),
        )
        .await
        .unwrap();
    assert_ne!(got.transfer, Transfer::Oci);
    assert_eq!(std::fs::read(&dest).unwrap(), b"SIF bytes");
}
