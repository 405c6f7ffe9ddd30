//! The OCI path against a real registry (Debian's docker-registry,
//! distribution 2.8), started by `cargo xtask test` (or by hand with
//! `scripts/peers/start-oci-registry.sh`), which sets `OCI_REGISTRY_URL`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use library_client::model::{
    ImageIndex, ImageManifest, SifConfig, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_SIF_CONFIG, MEDIA_TYPE_SIF_LAYER,
};
use library_client::oci::{OciPushed, OciRegistry};
use library_client::{Downloader, Error, HttpClient, NoProgress, Progress};
use library_transport::Body;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

fn registry_url() -> Url {
    let v = std::env::var("OCI_REGISTRY_URL").unwrap_or_else(|_| {
        panic!(
            "OCI_REGISTRY_URL is not set: these tests need a running OCI registry. \
             Run `cargo xtask test`, or start one with \
             `bash scripts/peers/start-oci-registry.sh DIR` and source DIR/oci-registry.env"
        )
    });
    Url::parse(&v).expect("OCI_REGISTRY_URL is a URL")
}

fn registry() -> OciRegistry {
    OciRegistry::new(HttpClient::new().unwrap(), registry_url(), None)
}

/// A repository prefix unique to this test run (blobs are linked per
/// repository, so every run starts from an empty repository).
fn repo(name: &str) -> String {
    use std::sync::OnceLock;
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| format!("run{:016x}", fastrand::u64(..)));
    format!("test/{run}/{name}")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sif")
}

fn expected() -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_sha256(path: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A raw GET with an optional Accept: status, headers, body.
async fn raw_get(url: &Url, accept: Option<&str>) -> (StatusCode, HeaderMap, Bytes) {
    let http = HttpClient::new().unwrap();
    let mut req = http::Request::builder()
        .method(Method::GET)
        .uri(url.as_str());
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let resp = http.send(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.bytes_limited(256 << 20).await.unwrap();
    (status, headers, body)
}

/// A raw PUT of a manifest document.
async fn raw_put_manifest(url: &Url, media_type: &str, body: Vec<u8>) -> StatusCode {
    let http = HttpClient::new().unwrap();
    let req = http::Request::builder()
        .method(Method::PUT)
        .uri(url.as_str())
        .header(CONTENT_TYPE, media_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Body::bytes(body))
        .unwrap();
    let resp = http.send(req).await.unwrap();
    let s = resp.status();
    let _ = resp.bytes_limited(1 << 20).await;
    s
}

/// Counts what a transfer reports.
#[derive(Default)]
struct Count {
    total: AtomicU64,
    done: AtomicU64,
    finished: AtomicU64,
    aborted: AtomicU64,
}

impl Progress for Count {
    fn total(&self, b: u64) {
        self.total.store(b, Ordering::SeqCst);
    }
    fn increment(&self, b: u64) {
        self.done.fetch_add(b, Ordering::SeqCst);
    }
    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
    fn abort(&self) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }
}

/// The config fields a push should have recorded.
#[derive(Clone, Copy)]
struct Want<'a> {
    arch: &'a str,
    signed: bool,
    encrypted: bool,
    description: &'a str,
}

/// Reads back, with raw HTTP, everything a push of `file` as `name` with
/// `tag` left in the registry, and checks every field.
async fn check_pushed(name: &str, tag: &str, file: &Path, pushed: &OciPushed, want: &Want<'_>) {
    let Want {
        arch,
        signed,
        encrypted,
        description,
    } = *want;
    let base = registry_url();
    let file_bytes = std::fs::read(file).unwrap();
    let layer_digest = format!("sha256:{}", sha256_hex(&file_bytes));
    assert_eq!(pushed.layer_digest, layer_digest);
    assert_eq!(pushed.size, file_bytes.len() as u64);

    // The tag names an index of one manifest with its platform.
    let url = base.join(&format!("v2/{name}/manifests/{tag}")).unwrap();
    let (status, headers, body) = raw_get(&url, Some(MEDIA_TYPE_OCI_INDEX)).await;
    assert_eq!(status, StatusCode::OK, "{name}:{tag}");
    assert_eq!(headers[CONTENT_TYPE], MEDIA_TYPE_OCI_INDEX);
    let index_digest = format!("sha256:{}", sha256_hex(&body));
    assert_eq!(headers["docker-content-digest"], index_digest.as_str());
    let raw: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(raw["schemaVersion"], 2);
    assert_eq!(raw["mediaType"], MEDIA_TYPE_OCI_INDEX);
    let index: ImageIndex = serde_json::from_slice(&body).unwrap();
    assert_eq!(index.manifests.len(), 1);
    let m = &index.manifests[0];
    assert_eq!(m.media_type, MEDIA_TYPE_OCI_MANIFEST);
    assert_eq!(m.digest, pushed.manifest_digest);
    let platform = m.platform.as_ref().expect("platform");
    assert_eq!(platform.architecture, arch);
    assert_eq!(platform.os, "linux");

    // The manifest, under sha256.<hex> and by digest.
    let hash_tag = format!("sha256.{}", &layer_digest["sha256:".len()..]);
    for reference in [hash_tag.as_str(), pushed.manifest_digest.as_str()] {
        let url = base
            .join(&format!("v2/{name}/manifests/{reference}"))
            .unwrap();
        let (status, headers, body) = raw_get(&url, Some(MEDIA_TYPE_OCI_MANIFEST)).await;
        assert_eq!(status, StatusCode::OK, "{name}:{reference}");
        assert_eq!(headers[CONTENT_TYPE], MEDIA_TYPE_OCI_MANIFEST);
        assert_eq!(
            headers["docker-content-digest"],
            pushed.manifest_digest.as_str()
        );
        assert_eq!(
            format!("sha256:{}", sha256_hex(&body)),
            pushed.manifest_digest
        );
        assert_eq!(m.size, body.len() as i64);
        let raw: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(raw["schemaVersion"], 2);
        let manifest: ImageManifest = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            manifest.media_type.as_deref(),
            Some(MEDIA_TYPE_OCI_MANIFEST)
        );
        assert_eq!(manifest.config.media_type, MEDIA_TYPE_SIF_CONFIG);
        assert_eq!(manifest.layers.len(), 1);
        let layer = &manifest.layers[0];
        assert_eq!(layer.media_type, MEDIA_TYPE_SIF_LAYER);
        assert_eq!(layer.digest, layer_digest);
        assert_eq!(layer.size, file_bytes.len() as i64);

        // The config blob.
        let url = base
            .join(&format!("v2/{name}/blobs/{}", manifest.config.digest))
            .unwrap();
        let (status, _, config_bytes) = raw_get(&url, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            format!("sha256:{}", sha256_hex(&config_bytes)),
            manifest.config.digest
        );
        assert_eq!(manifest.config.size, config_bytes.len() as i64);
        let raw: Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(raw["architecture"], arch);
        assert_eq!(raw["os"], "linux");
        assert_eq!(raw["rootfs"], layer_digest.as_str());
        assert_eq!(raw["signed"], signed);
        assert_eq!(raw["encrypted"], encrypted);
        if description.is_empty() {
            assert!(raw.get("description").is_none());
        } else {
            assert_eq!(raw["description"], description);
        }
        let config: SifConfig = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(config, pushed.config);
    }

    // The layer blob is the file, byte for byte.
    let url = base
        .join(&format!("v2/{name}/blobs/{layer_digest}"))
        .unwrap();
    let (status, _, blob) = raw_get(&url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        blob == file_bytes,
        "{name}: layer blob differs from the file"
    );
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn every_pushable_fixture_round_trips() {
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let mut pushed_some = 0;
    for c in expected() {
        if !c["reference_error"].is_null() {
            continue;
        }
        let file = c["file"].as_str().unwrap();
        let path = fixtures().join(file);
        let stem = file.trim_end_matches(".sif");
        let name = repo(&format!("fixtures/{stem}"));
        let arch = c["primary_arch"].as_str().unwrap();
        let signed = c["signed"].as_bool().unwrap();
        let encrypted = c["encrypted"].as_bool().unwrap();
        let description = format!("fixture {file}");
        let progress = Arc::new(Count::default());
        let pushed = reg
            .push(
                &name,
                &path,
                None,
                &["v1".to_string(), "latest".to_string()],
                &description,
                progress.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(pushed.blobs_uploaded, 2, "{file}");
        assert_eq!(
            pushed.layer_digest,
            format!("sha256:{}", c["sha256"].as_str().unwrap())
        );
        assert_eq!(
            progress.total.load(Ordering::SeqCst),
            c["size"].as_u64().unwrap()
        );
        assert_eq!(
            progress.done.load(Ordering::SeqCst),
            c["size"].as_u64().unwrap()
        );
        assert_eq!(progress.finished.load(Ordering::SeqCst), 1);
        for tag in ["v1", "latest"] {
            check_pushed(
                &name,
                tag,
                &path,
                &pushed,
                &Want {
                    arch,
                    signed,
                    encrypted,
                    description: &description,
                },
            )
            .await;
        }

        // Pull back, with and without the architecture, by tag and by hash.
        let hash_tag = format!("sha256.{}", c["sha256"].as_str().unwrap());
        for (tag, want_arch) in [
            ("v1", Some(arch)),
            ("latest", None),
            (hash_tag.as_str(), Some(arch)),
        ] {
            let dest = dir
                .path()
                .join(format!("{stem}-{}.sif", want_arch.unwrap_or("any")));
            let got = reg
                .pull(
                    &name,
                    tag,
                    want_arch,
                    &dest,
                    Downloader::default(),
                    false,
                    Arc::new(NoProgress),
                )
                .await
                .unwrap_or_else(|e| panic!("{file} {tag}: {e}"));
            assert_eq!(got.path, dest);
            assert_eq!(got.size, c["size"].as_u64().unwrap());
            assert_eq!(got.digest, pushed.layer_digest);
            assert_eq!(got.config, pushed.config);
            assert_eq!(
                std::fs::read(&dest).unwrap(),
                std::fs::read(&path).unwrap(),
                "{file}"
            );
        }
        pushed_some += 1;
    }
    assert_eq!(pushed_some, 5);
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn images_without_one_primary_partition_are_refused_before_any_upload() {
    let reg = registry();
    for file in [
        "no-primary.sif",
        "system-not-primary.sif",
        "truncated-100.sif",
    ] {
        let path = fixtures().join(file);
        let name = repo("refused");
        let e = reg
            .push(&name, &path, None, &["v1".into()], "", Arc::new(NoProgress))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Sif { .. }), "{file}: {e}");
        // Nothing went to the registry.
        let digest = format!("sha256:{}", file_sha256(&path));
        let url = registry_url()
            .join(&format!("v2/{name}/blobs/{digest}"))
            .unwrap();
        let (status, _, _) = raw_get(&url, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{file}");
    }
}

const BIG: Want<'static> = Want {
    arch: "amd64",
    signed: false,
    encrypted: false,
    description: "100 MiB",
};

/// amd64.sif with `extra` random bytes appended: still a valid SIF header.
fn big_sif(dir: &Path, extra: usize) -> PathBuf {
    let mut bytes = std::fs::read(fixtures().join("amd64.sif")).unwrap();
    let start = bytes.len();
    bytes.resize(start + extra, 0);
    fastrand::Rng::with_seed(0x51f).fill(&mut bytes[start..]);
    let path = dir.join("big.sif");
    std::fs::write(&path, &bytes).unwrap();
    path
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn a_100_mib_image_round_trips_and_a_repush_sends_no_blob() {
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let path = big_sif(dir.path(), 100 << 20);
    let size = std::fs::metadata(&path).unwrap().len();
    let name = repo("big");
    let progress = Arc::new(Count::default());
    let t = std::time::Instant::now();
    let pushed = reg
        .push(
            &name,
            &path,
            Some("amd64"),
            &["big".into()],
            "100 MiB",
            progress.clone(),
        )
        .await
        .unwrap();
    eprintln!("pushed {size} bytes in {:?}", t.elapsed());
    assert_eq!(pushed.blobs_uploaded, 2);
    assert_eq!(progress.total.load(Ordering::SeqCst), size);
    assert_eq!(progress.done.load(Ordering::SeqCst), size);
    assert_eq!(progress.finished.load(Ordering::SeqCst), 1);
    assert_eq!(progress.aborted.load(Ordering::SeqCst), 0);
    check_pushed(&name, "big", &path, &pushed, &BIG).await;

    let dest = dir.path().join("pulled.sif");
    let progress = Arc::new(Count::default());
    let t = std::time::Instant::now();
    let got = reg
        .pull(
            &name,
            "big",
            Some("amd64"),
            &dest,
            Downloader {
                concurrency: library_client::Concurrency::Fixed(4),
                part_size: Some(8 << 20),
            },
            false,
            progress.clone(),
        )
        .await
        .unwrap();
    eprintln!("pulled {size} bytes in {:?}", t.elapsed());
    assert_eq!(got.size, size);
    assert_eq!(file_sha256(&dest), file_sha256(&path));
    assert_eq!(progress.total.load(Ordering::SeqCst), size);
    assert_eq!(progress.done.load(Ordering::SeqCst), size);

    // Again: the registry has both blobs; only the manifests are put.
    let again = reg
        .push(
            &name,
            &path,
            Some("amd64"),
            &["big".into(), "again".into()],
            "100 MiB",
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(again.blobs_uploaded, 0);
    assert_eq!(again.manifest_digest, pushed.manifest_digest);
    check_pushed(&name, "again", &path, &again, &BIG).await;
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn pulling_with_an_architecture_chooses_it_from_the_index() {
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let name = repo("multi");
    let amd = fixtures().join("amd64.sif");
    let arm = fixtures().join("arm64.sif");
    let p_amd = reg
        .push(&name, &amd, None, &["amd".into()], "", Arc::new(NoProgress))
        .await
        .unwrap();
    let p_arm = reg
        .push(&name, &arm, None, &["arm".into()], "", Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(p_arm.config.architecture, "arm64");

    // Each tag's index holds one manifest; build one holding both.
    let base = registry_url();
    let mut manifests = Vec::new();
    for tag in ["amd", "arm"] {
        let url = base.join(&format!("v2/{name}/manifests/{tag}")).unwrap();
        let (_, _, body) = raw_get(&url, Some(MEDIA_TYPE_OCI_INDEX)).await;
        let idx: ImageIndex = serde_json::from_slice(&body).unwrap();
        manifests.extend(idx.manifests);
    }
    let both = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": manifests,
    });
    let url = base.join(&format!("v2/{name}/manifests/multi")).unwrap();
    let status = raw_put_manifest(
        &url,
        MEDIA_TYPE_OCI_INDEX,
        serde_json::to_vec(&both).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    for (arch, file, pushed) in [("arm64", &arm, &p_arm), ("amd64", &amd, &p_amd)] {
        let dest = dir.path().join(format!("{arch}.sif"));
        let got = reg
            .pull(
                &name,
                "multi",
                Some(arch),
                &dest,
                Downloader::default(),
                false,
                Arc::new(NoProgress),
            )
            .await
            .unwrap();
        assert_eq!(got.config.architecture, arch);
        assert_eq!(got.digest, pushed.layer_digest);
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(file).unwrap());
    }

    // A missing architecture: a clear error naming it and those there are.
    let dest = dir.path().join("none.sif");
    let e = reg
        .pull(
            &name,
            "multi",
            Some("riscv64"),
            &dest,
            Downloader::default(),
            false,
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("riscv64") && text.contains("amd64, arm64"),
        "{text}"
    );
    assert!(!dest.exists());
    let e = reg
        .pull(
            &name,
            "amd",
            Some("arm64"),
            &dest,
            Downloader::default(),
            false,
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("arm64"), "{e}");
    // No architecture with two manifests: ambiguous.
    let e = reg
        .pull(
            &name,
            "multi",
            None,
            &dest,
            Downloader::default(),
            false,
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("give an architecture"), "{e}");
    // A tag naming a manifest directly: its config decides.
    let hash_tag = format!("sha256.{}", &p_amd.layer_digest["sha256:".len()..]);
    let e = reg
        .pull(
            &name,
            &hash_tag,
            Some("arm64"),
            &dest,
            Downloader::default(),
            false,
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnexpectedArchitecture { expected, actual } if expected == "arm64" && actual == "amd64"),
        "{e}"
    );
    assert!(!dest.exists());
    let missing = reg
        .pull(
            &name,
            "no-such-tag",
            None,
            &dest,
            Downloader::default(),
            false,
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn an_explicit_arch_overrides_the_header() {
    let reg = registry();
    let name = repo("override");
    let pushed = reg
        .push(
            &name,
            &fixtures().join("amd64-signed.sif"),
            Some("ppc64le"),
            &["x".into()],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(pushed.config.architecture, "ppc64le");
    assert!(pushed.config.signed);
    check_pushed(
        &name,
        "x",
        &fixtures().join("amd64-signed.sif"),
        &pushed,
        &Want {
            arch: "ppc64le",
            signed: true,
            encrypted: false,
            description: "",
        },
    )
    .await;
}

// ---- a registry in token mode (distribution's `auth: token`) ---------------

fn token_registry_url() -> Url {
    let v = std::env::var("OCI_TOKREG_REGISTRY_URL").unwrap_or_else(|_| {
        panic!(
            "OCI_TOKREG_REGISTRY_URL is not set: these tests need a registry in token mode. \
             Run `cargo xtask test`, or start one with `OCI_REGISTRY_AUTH=token \
             OCI_REGISTRY_INSTANCE=tokreg bash scripts/peers/start-oci-registry.sh DIR` \
             and source DIR/oci-registry-tokreg.env"
        )
    });
    Url::parse(&v).expect("OCI_TOKREG_REGISTRY_URL is a URL")
}

/// A token signed by the registry's issuer for `scope`.
fn mint(scope: &str) -> String {
    let cmd = std::env::var("OCI_TOKREG_TOKEN_MINT").expect("OCI_TOKREG_TOKEN_MINT is set");
    let mut words = cmd.split_whitespace();
    let out = std::process::Command::new(words.next().unwrap())
        .args(words)
        .arg(scope)
        .output()
        .expect("running the token minter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn a_token_mode_registry_is_reached_through_its_realm() {
    let base = token_registry_url();
    let name = repo("tok/realm");
    // Without credentials the registry refuses and names its realm.
    let url = base.join(&format!("v2/{name}/tags/list")).unwrap();
    let (status, headers, _) = raw_get(&url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer realm="));

    // No token at all: every request gets one from the realm.
    let reg = OciRegistry::new(HttpClient::new().unwrap(), base.clone(), None);
    let pushed = reg
        .push(
            &name,
            &fixtures().join("arm64.sif"),
            None,
            &["v1".into()],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(pushed.blobs_uploaded, 2);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.sif");
    let fresh = OciRegistry::new(HttpClient::new().unwrap(), base.clone(), None);
    fresh
        .pull(
            &name,
            "v1",
            Some("arm64"),
            &dest,
            Downloader::default(),
            false,
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(fixtures().join("arm64.sif")).unwrap()
    );

    // A pull-only token cannot push: the registry's insufficient_scope
    // challenge leads to a token for push from the realm.
    let name2 = repo("tok/scope");
    let reg = OciRegistry::new(
        HttpClient::new().unwrap(),
        base.clone(),
        Some(mint(&format!("repository:{name2}:pull"))),
    );
    let pushed = reg
        .push(
            &name2,
            &fixtures().join("amd64.sif"),
            None,
            &["v1".into()],
            "",
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(pushed.blobs_uploaded, 2);
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn the_library_hands_out_the_registry_and_its_token() {
    use library_client::{Client, Pull, Push, Transfer, UploadKind};

    let base = token_registry_url();
    let path = "alice/tools/hello";
    let token = mint(&format!("repository:{path}:pull,push"));
    let server = library_testserver::TestServer::builder()
        .token("library-secret")
        .oci_registry(base.clone(), token)
        .start()
        .await
        .unwrap();
    let client = Client::builder()
        .base_url(server.url().as_str())
        .token("library-secret")
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = big_sif(dir.path(), 12 << 20);
    let pushed = client
        .upload_image(
            &src,
            &Push::new(path).tags(["v1"]).description("via the library"),
        )
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::Oci);
    let dest = dir.path().join("pulled.sif");
    let pulled = client
        .download_image(&dest, &Pull::new(path).tag("v1").arch("amd64"))
        .await
        .unwrap();
    assert_eq!(pulled.transfer, Transfer::Oci);
    assert!(pulled.verified);
    assert_eq!(file_sha256(&dest), file_sha256(&src));
    assert_eq!(pulled.sha256, file_sha256(&src));
}

// ---- registries that want a log-in (Basic credentials) ---------------------

/// `(registry URL, user, password)` from the variables of the peer
/// `OCI_<WORD>_…` (`cargo xtask test` starts both).
fn login_registry(word: &str, user_var: &str, pass_var: &str) -> (Url, String, String) {
    let var = |k: &str| {
        let name = format!("OCI_{word}_{k}");
        std::env::var(&name).unwrap_or_else(|_| {
            panic!("{name} is not set: these tests need the registries `cargo xtask test` starts")
        })
    };
    (
        Url::parse(&var("REGISTRY_URL")).unwrap(),
        var(user_var),
        var(pass_var),
    )
}

/// Push then pull `arm64.sif` with `reg`; the pulled file must be the same.
async fn push_and_pull(reg: &OciRegistry, name: &str) -> library_client::Result<()> {
    let src = fixtures().join("arm64.sif");
    reg.push(name, &src, None, &["v1".into()], "", Arc::new(NoProgress))
        .await?;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.sif");
    reg.pull(
        name,
        "v1",
        Some("arm64"),
        &dest,
        Downloader::default(),
        false,
        Arc::new(NoProgress),
    )
    .await?;
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&src).unwrap());
    Ok(())
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn a_registry_wanting_basic_credentials_gets_them() {
    let (base, user, pass) = login_registry("BASIC", "HTPASSWD_USER", "HTPASSWD_PASS");
    let name = repo("basic/img");
    let reg =
        OciRegistry::new(HttpClient::new().unwrap(), base.clone(), None).basic_auth(&user, &pass);
    push_and_pull(&reg, &name).await.unwrap();
    assert!(!format!("{reg:?}").contains(&pass));

    // Without credentials, or with a wrong password: unauthorized, and the
    // password is not in the error.
    let anonymous = OciRegistry::new(HttpClient::new().unwrap(), base.clone(), None);
    let e = push_and_pull(&anonymous, &name).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    let wrong = OciRegistry::new(HttpClient::new().unwrap(), base, None)
        .basic_auth(&user, "not-the-password");
    let e = push_and_pull(&wrong, &name).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(!format!("{e}{e:?}").contains("not-the-password"));
}

#[tokio::test]
#[ignore = "needs an OCI registry: run cargo xtask test"]
async fn a_token_realm_wanting_basic_credentials_gets_them() {
    let (base, user, pass) = login_registry("TOKBASIC", "TOKEN_USER", "TOKEN_PASS");
    let name = repo("tokbasic/img");
    let reg =
        OciRegistry::new(HttpClient::new().unwrap(), base.clone(), None).basic_auth(&user, &pass);
    push_and_pull(&reg, &name).await.unwrap();

    // The realm refuses a wrong password, and that refusal is the error.
    let wrong = OciRegistry::new(HttpClient::new().unwrap(), base.clone(), None)
        .basic_auth(&user, "not-the-password");
    let e = push_and_pull(&wrong, &name).await.unwrap_err();
    let shown = format!("{e}");
    assert!(shown.contains("/token"), "the realm is named: {shown}");
    assert!(!format!("{e}{e:?}").contains("not-the-password"));

    // Without credentials the realm gives no token: unauthorized.
    let anonymous = OciRegistry::new(HttpClient::new().unwrap(), base, None);
    let e = push_and_pull(&anonymous, &name).await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED), "{e:?}");
}
