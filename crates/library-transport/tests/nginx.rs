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

/// Removes a file once `after` bytes have landed (between two parts of a
/// download that fetches one part at a time).
struct RemoveAfter {
    after: u64,
    landed: std::sync::atomic::AtomicU64,
    file: PathBuf,
}

impl library_transport::Progress for RemoveAfter {
    fn increment(&self, bytes: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        let before = self.landed.fetch_add(bytes, SeqCst);
        if before < self.after && before + bytes >= self.after {
            std::fs::remove_file(&self.file).unwrap();
        }
    }
}

#[tokio::test]
#[ignore = "needs nginx: run cargo xtask test"]
async fn a_resume_after_the_file_changed_starts_over() {
    let (base, root) = nginx();
    let client = support::client();
    let part = 64 << 10;
    let size = 5 * part + 123;
    let file = root.join("transport-changed.bin");
    let old = support::data(size as usize, 1);
    std::fs::write(&file, &old).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("img");
    let job = RangedDownload::new(base.join("transport-changed.bin").unwrap(), size)
        .part_size(part)
        .retry(support::fast_retry(1));
    // The file goes away after two parts: the third is a 404, and the
    // first two stay in the partial file.
    let err = client
        .download_ranged(
            &job.clone().concurrency(1),
            Destination::new(&dest).resumable(true),
            Arc::new(RemoveAfter {
                after: 2 * part,
                landed: 0.into(),
                file: file.clone(),
            }),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(out.path().join(".img.part").exists());

    // Other bytes of the same size, with another modification time (and
    // so another ETag).
    let new = support::data(size as usize, 2);
    std::fs::write(&file, &new).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let got = client
        .download_ranged(
            &job,
            Destination::new(&dest).resumable(true),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert!(std::fs::read(&dest).unwrap() == new, "not the new bytes");
    assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(&new)));
    assert_eq!(got.parts_fetched, 6, "everything fetched again");
    assert_eq!(support::files_in(out.path()), vec!["img"]);
    std::fs::remove_file(&file).unwrap();
}
