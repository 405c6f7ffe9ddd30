//! Faults that once got through: an OCI layer probe that was not retried,
//! a stated size that made the download allocate one flag per part, and a
//! library or registry echoing its token into an error. Each test states
//! the behaviour and would fail if it regressed.

use bytes::Bytes;
use library_client::{Downloader, Pull, Transfer};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::scripted::{Reply, Scripted};
use library_e2e::*;
use library_testserver::TestServer;

fn image() -> Bytes {
    Bytes::from(random_bytes(600_000, 111))
}

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(100_000),
    })
}

async fn oci(size: Option<i64>) -> (Registry, TestServer) {
    let reg = Registry::start(None).await;
    reg.seed("e/c/k", "latest", "amd64", image(), size);
    let lib = TestServer::builder()
        .oci_registry(reg.url(), "")
        .start()
        .await
        .unwrap();
    (reg, lib)
}

/// library-client/src/oci/pull.rs, `OciRegistry::pull`: the first GET of
/// the layer (`Range: bytes=0-0`, to find where the blob is served) is
/// sent once; a transient 5xx there fails the whole pull, where a part
/// would have been retried.
#[tokio::test]
async fn a_transient_error_on_the_first_layer_request_is_retried() {
    let (reg, lib) = oci(None).await;
    reg.inject(RegFault::new(Target::LayerProbe, Action::Status(503)));
    let d = DestDir::new();
    let got = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_or_else(|e| panic!("one 503 on the layer's first request fails the pull: {e}"));
    assert_eq!(got.transfer, Transfer::Oci);
    d.assert_pulled(&image(), "probe 503 once");
}

/// library-client (every error carrying a server message): a server that
/// quotes the request's `Authorization` back in its error message puts
/// the token into the error's Display and Debug. The client knows its
/// tokens and could mask them in server messages.
#[tokio::test]
async fn a_token_echoed_by_the_server_is_masked_in_errors() {
    let lib = Scripted::start(|seen| {
        let auth = seen.authorization().unwrap_or("").to_string();
        Reply::status(403).json(&serde_json::json!({
            "error": {"code": 403, "message": format!("{auth} may not do this")}
        }))
    })
    .await;
    let e = client(&lib.url())
        .get_image("amd64", "e/c/k:latest")
        .await
        .unwrap_err();
    let shown = format!("{e}\n{e:?}");
    assert!(!shown.contains(LIBRARY_TOKEN), "{shown}");
}

/// library-client/src/oci (`OciRegistry::pull` and `push`, used directly):
/// the registry token was masked only by `Client`, so a registry quoting
/// `Authorization` back put its token into errors of `OciRegistry`.
#[tokio::test]
async fn a_registry_echoing_its_token_is_masked_in_errors() {
    let reg = Scripted::start(|seen| {
        let auth = seen.authorization().unwrap_or("").to_string();
        Reply::status(403).json(&serde_json::json!({
            "errors": [{"code": "DENIED", "message": format!("{auth} may not do this")}]
        }))
    })
    .await;
    let r = library_client::oci::OciRegistry::new(
        library_client::HttpClient::new().unwrap(),
        reg.url(),
        Some(REGISTRY_TOKEN.to_string()),
    )
    .retry(fast_retry(0));
    let d = DestDir::new();
    let e = r
        .pull(
            "e/c/k",
            "latest",
            Some("amd64"),
            &d.dest,
            Downloader::default(),
            false,
            std::sync::Arc::new(library_client::NoProgress),
        )
        .await
        .unwrap_err();
    let shown = format!("{e}\n{e:?}");
    assert!(shown.contains("may not do this"), "{shown}");
    assert!(!shown.contains(REGISTRY_TOKEN), "pull: {shown}");

    let dir = tempfile::tempdir().unwrap();
    let sif = sif_file(dir.path(), 10_000, 1);
    let e = r
        .push(
            "e/c/k",
            &sif,
            Some("amd64"),
            &["v1".to_string()],
            "",
            std::sync::Arc::new(library_client::NoProgress),
        )
        .await
        .unwrap_err();
    let shown = format!("{e}\n{e:?}");
    assert!(shown.contains("may not do this"), "{shown}");
    assert!(!shown.contains(REGISTRY_TOKEN), "push: {shown}");
}

/// library-transport/src/download.rs, `download_ranged`: the part
/// bookkeeping is a `Vec<bool>` of one entry per part (`is_done`, and the
/// hasher's `complete`), allocated after the destination is sized. A
/// registry (or library) stating a size of 2^62 bytes, on a file system
/// that takes such a sparse file (tmpfs, XFS, btrfs), makes it allocate
/// terabytes and abort the process. It should be refused (a largest
/// image size, or a largest number of parts) before anything is opened.
///
/// Run in a child process, since the failure is an abort.
#[test]
fn an_absurd_layer_size_is_refused_not_allocated() {
    if let Some(dir) = std::env::var_os("E2E_HUGE_CHILD") {
        return child(std::path::Path::new(&dir));
    }
    // The parent owns the mount, so that it is undone even if the child
    // aborts.
    let t = Tmpfs::mount(1 << 20).expect("needs a tmpfs (root)");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_absurd_layer_size_is_refused_not_allocated",
            "--nocapture",
        ])
        .env("E2E_HUGE_CHILD", t.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", out.status);
}

fn child(dir: &std::path::Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (reg, lib) = oci(Some(1 << 62)).await;
        let dest = dir.join("image.sif");
        let e = client(&lib.url())
            .download_image(&dest, &pull())
            .await
            .unwrap_err();
        assert!(e.status().is_none(), "{e}");
        assert!(listing(dir).is_empty(), "{:?}", listing(dir));
        let layer = sha256_digest(&image());
        let parts = reg
            .log()
            .iter()
            .filter(|s| s.path.ends_with(&layer) && s.range() != Some((0, 0)))
            .count();
        assert_eq!(parts, 0, "parts requested for an absurd size");
    });
}
