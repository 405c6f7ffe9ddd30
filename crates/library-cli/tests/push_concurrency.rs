//! `push --concurrency N`: a multipart push has at most N parts in flight,
//! and reaches N when there are enough parts to send; by default the
//! number is found while the push runs, up to `--max-concurrency`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use library_testserver::{Endpoint, Fault, FaultAction, Listener, Multipart, TestServer};
use sha2::{Digest, Sha256};

mod support;

const MIB: u64 = 1 << 20;

/// The amd64 fixture followed by pseudo-random bytes of `seed`: a valid
/// SIF just over the size where pushes go multipart (64 MiB). Each push
/// needs other bytes: the library skips the upload of an image it holds.
fn big_sif(dir: &Path, seed: u64) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sif/amd64.sif");
    let mut bytes = std::fs::read(fixture).unwrap();
    let start = bytes.len();
    bytes.resize(65 * MIB as usize, 0);
    fastrand::Rng::with_seed(seed).fill(&mut bytes[start..]);
    let path = dir.join(format!("big-{seed}.sif"));
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// Pushes `file` with `extra` arguments and returns the most part uploads
/// the server handled at once.
fn push(server: &TestServer, dir: &Path, file: &Path, tag: &str, extra: &[&str]) -> usize {
    // Every part waits a little on the server, so that parts sent together
    // are in flight together.
    server.inject(
        Fault::new(
            Endpoint::MultipartPartPut,
            FaultAction::Delay(Duration::from_millis(200)),
        )
        .always(),
    );
    server.reset_peaks();
    let reference = format!("alice/tools/big:{tag}");
    let out = support::command(dir)
        .args(["--url", server.url().as_str(), "push"])
        .args(extra)
        .arg(file)
        .arg(&reference)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let parts = server
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob && r.path.contains("/parts/"))
        .count();
    assert_eq!(parts, 13, "65 MiB in 5 MiB parts");
    let image = server
        .find_image("alice", "tools", "big", tag, "amd64")
        .expect("the pushed image");
    let original = std::fs::read(file).unwrap();
    assert_eq!(
        image.hash,
        format!("sha256.{:x}", Sha256::digest(&original))
    );
    assert_eq!(server.image_bytes(&image.id).unwrap(), original);
    server.clear_requests();
    server.peak_in_flight(Listener::Blob)
}

#[test]
fn push_concurrency_bounds_the_parts_in_flight() {
    let server = support::start(
        TestServer::builder().multipart(Multipart::Supported { part_size: 5 * MIB }),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let one = ["--concurrency", "1"];
    assert_eq!(push(&server, d, &big_sif(d, 1), "one", &one), 1);
    let three = ["--concurrency", "3"];
    assert_eq!(push(&server, d, &big_sif(d, 3), "three", &three), 3);
    let capped = ["--max-concurrency", "2"];
    assert_eq!(push(&server, d, &big_sif(d, 2), "capped", &capped), 2);
    // The default is automatic: parts that each wait on the server go
    // faster with more streams, so it opens more than it starts with.
    let auto = push(&server, d, &big_sif(d, 4), "default", &[]);
    assert!(
        (5..=13).contains(&auto),
        "the automatic default had {auto} parts in flight at most"
    );
}
