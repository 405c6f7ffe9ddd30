//! The OCI path through the image cache: the SIF layer digest keys the
//! entry, a second pull fetches no blob, and an entry laid down under the
//! layer digest is a hit.

// The shared fake registry has knobs and records these tests do not use.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use library_client::oci::OciRegistry;
use library_client::{Cache, CacheUse, Client, HttpClient, Pull, Push, RetryConfig, Transfer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use url::Url;

include!("oci_fake/registry.rs");

/// GETs of the layer `hex` the registry saw (either listener).
fn blob_gets(fake: &Fake, hex: &str) -> usize {
    let layer = format!("sha256:{hex}");
    fake.log()
        .iter()
        .filter(|s| s.method == Method::GET && s.path.ends_with(&layer))
        .count()
}

#[tokio::test]
async fn the_layer_digest_keys_the_cache() {
    let (fake, _server, client) = library_before_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sif/amd64.sif"))
            .unwrap();
    let start = bytes.len();
    bytes.resize(start + 200_000, 0);
    fastrand::Rng::with_seed(9).fill(&mut bytes[start..]);
    let src = dir.path().join("src.sif");
    std::fs::write(&src, &bytes).unwrap();
    let pushed = client
        .upload_image(&src, &Push::new("alice/tools/hello").tags(["v1"]))
        .await
        .unwrap();
    let hex = pushed.hash.strip_prefix("sha256.").unwrap().to_string();
    let cache = Cache::new(dir.path().join("cache"));
    let pull = Pull::new("alice/tools/hello")
        .tag("v1")
        .arch("amd64")
        .cache(cache.clone());

    // Cold: the blob is fetched into the entry named by the layer digest.
    let first = client
        .download_image(dir.path().join("a.sif"), &pull)
        .await
        .unwrap();
    assert_eq!(
        (first.transfer, &first.cache),
        (Transfer::Oci, &CacheUse::Filled)
    );
    assert_eq!(std::fs::read(cache.entry_path(&hex)).unwrap(), bytes);
    let fetched = blob_gets(&fake, &hex);
    assert!(fetched > 0);

    // Warm: no blob request at all.
    let second = client
        .download_image(dir.path().join("b.sif"), &pull)
        .await
        .unwrap();
    assert_eq!(second.cache, CacheUse::Hit);
    assert_eq!(second.sha256, hex);
    assert_eq!(std::fs::read(dir.path().join("b.sif")).unwrap(), bytes);
    assert_eq!(blob_gets(&fake, &hex), fetched, "a hit fetches no blob");

    // A second cache with the entry laid down by hand (Apptainer's
    // layout): a hit too.
    let other = Cache::new(dir.path().join("other"));
    std::fs::create_dir_all(other.library_dir()).unwrap();
    std::fs::write(other.entry_path(&hex), &bytes).unwrap();
    let third = client
        .download_image(dir.path().join("c.sif"), &pull.clone().cache(other))
        .await
        .unwrap();
    assert_eq!(third.cache, CacheUse::Hit);
    assert_eq!(blob_gets(&fake, &hex), fetched);
    assert_eq!(std::fs::read(dir.path().join("c.sif")).unwrap(), bytes);

    // Onto an identical destination: up to date, nothing fetched.
    let again = client
        .download_image(
            dir.path().join("c.sif"),
            &pull.clone().replace_existing(false),
        )
        .await
        .unwrap();
    assert_eq!(again.cache, CacheUse::UpToDate);
    assert_eq!(blob_gets(&fake, &hex), fetched);
}
