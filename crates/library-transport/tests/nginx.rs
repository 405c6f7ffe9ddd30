//! Byte-identical ranged downloads from a real nginx (started by
//! `cargo xtask test`, or by `scripts/peers/start-nginx.sh STATE_DIR`
//! with its `nginx.env` sourced).

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use library_transport::{Destination, NoProgress, RangedDownload};
use sha2::{Digest, Sha256};

fn nginx() -> (url::Url, PathBuf) {
    let url = std::env::var("NGINX_URL")
        .expect("NGINX_URL is not set: run `cargo xtask test`, or start scripts/peers/start-nginx.sh and source its nginx.env");
    let root = std::env::var("NGINX_ROOT").expect("NGINX_ROOT is not set (see NGINX_URL)");
    (url::Url::parse(&url).unwrap(), PathBuf::from(root))
}

#[tokio::test]
#[ignore = "needs nginx: run cargo xtask test"]
async fn byte_identical_at_every_size_part_size_and_concurrency() {
    let (base, root) = nginx();
    let client = support::client();
    let out = tempfile::tempdir().unwrap();
    for part in [64 << 10, 5 << 20u64] {
        for size in [0, 1, part - 1, part, part + 1, 3 * part + 7] {
            let name = format!("transport-{part}-{size}.bin");
            let data = support::data(size as usize, size ^ part);
            std::fs::write(root.join(&name), &data).unwrap();
            let sha: [u8; 32] = Sha256::digest(&data).into();
            for conc in [1, 4, 8] {
                let dest = out.path().join(format!("{name}.{conc}"));
                let job = RangedDownload::new(base.join(&name).unwrap(), size)
                    .part_size(part)
                    .concurrency(conc);
                let got = client
                    .download_ranged(
                        &job,
                        Destination::new(&dest).expect_sha256(sha),
                        Arc::new(NoProgress),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("size {size} part {part} concurrency {conc}: {e}"));
                assert_eq!(got.sha256, sha);
                assert!(
                    std::fs::read(&dest).unwrap() == data,
                    "size {size} part {part} concurrency {conc}"
                );
                std::fs::remove_file(&dest).unwrap();
            }
            std::fs::remove_file(root.join(&name)).unwrap();
        }
    }
    assert!(
        support::files_in(out.path()).is_empty(),
        "no temporary files left"
    );
}

#[tokio::test]
#[ignore = "needs nginx: run cargo xtask test"]
async fn single_stream_and_etag_guard() {
    let (base, root) = nginx();
    let client = support::client();
    let data = support::data(300_000, 99);
    std::fs::write(root.join("transport-stream.bin"), &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = base.join("transport-stream.bin").unwrap();
    let got = client
        .download_stream(
            &url,
            &http::HeaderMap::new(),
            Destination::new(out.path().join("s")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    // A stale ETag: nginx answers 412 to If-Match, which is final.
    let job = RangedDownload::new(url, data.len() as u64)
        .part_size(64 << 10)
        .if_match("\"stale\"")
        .retry(support::fast_retry(1));
    let err = client
        .download_ranged(
            &job,
            Destination::new(out.path().join("e")),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(err.is_changed(), "{err:?}");
    assert!(err.to_string().contains("412"), "{err}");
    assert!(!out.path().join("e").exists());
    std::fs::remove_file(root.join("transport-stream.bin")).unwrap();
}
