//! What a destination refuses: replacing a file it was told not to (even
//! one that appears while the download runs), a size beyond its maximum,
//! and a size its file system has no room for.

mod support;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use library_transport::{Destination, Error, NoProgress, Progress, RangedDownload};
use support::*;

const SIZE: usize = 100_000;
const PART: u64 = 16_384;

fn job(server: &TestServer, size: u64) -> RangedDownload {
    RangedDownload::new(server.url("/blob?X-Amz-Signature=secret"), size)
        .part_size(PART)
        .concurrency(3)
        .retry(fast_retry(3))
}

/// Creates `path` (with `APPEARED`) the first time bytes land, as another
/// process might while the download runs.
struct Appear {
    path: PathBuf,
    done: AtomicBool,
}

const APPEARED: &[u8] = b"written by someone else meanwhile";

impl Appear {
    fn new(path: &Path) -> Arc<Appear> {
        Arc::new(Appear {
            path: path.to_path_buf(),
            done: AtomicBool::new(false),
        })
    }
}

impl Progress for Appear {
    fn increment(&self, _: u64) {
        if !self.done.swap(true, Ordering::SeqCst) {
            std::fs::write(&self.path, APPEARED).unwrap();
        }
    }
}

fn io_kind(e: &Error) -> Option<(ErrorKind, &Path)> {
    match e {
        Error::Io { path, source } => Some((source.kind(), path.as_path())),
        _ => None,
    }
}

async fn serving(data: Arc<Vec<u8>>) -> TestServer {
    TestServer::start(move |s| serve_range(&data, s)).await
}

#[tokio::test]
async fn a_file_appearing_during_a_ranged_download_is_not_replaced() {
    let data = Arc::new(data(SIZE, 1));
    let server = serving(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let err = client()
        .download_ranged(
            &job(&server, SIZE as u64),
            Destination::new(&dest).replace(false),
            Appear::new(&dest),
        )
        .await
        .unwrap_err();
    assert_eq!(
        io_kind(&err),
        Some((ErrorKind::AlreadyExists, dest.as_path())),
        "{err:?}"
    );
    assert!(err.to_string().contains("now exists"), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), APPEARED, "clobbered");
    assert_eq!(files_in(dir.path()), ["out.bin"], "temporary file left");
    // All parts were fetched: the file appeared after the pre-check.
    assert_eq!(server.seen().len(), SIZE.div_ceil(PART as usize));
}

#[tokio::test]
async fn a_file_appearing_during_a_stream_is_not_replaced() {
    let data = Arc::new(data(SIZE, 2));
    let server = serving(data).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let err = client()
        .download_stream(
            &server.url("/blob"),
            &http::HeaderMap::new(),
            Destination::new(&dest).replace(false),
            Appear::new(&dest),
        )
        .await
        .unwrap_err();
    assert_eq!(
        io_kind(&err),
        Some((ErrorKind::AlreadyExists, dest.as_path())),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), APPEARED, "clobbered");
    assert_eq!(files_in(dir.path()), ["out.bin"], "temporary file left");
}

#[tokio::test]
async fn with_replace_allowed_a_file_appearing_meanwhile_is_replaced() {
    let data = Arc::new(data(SIZE, 3));
    let server = serving(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    client()
        .download_ranged(
            &job(&server, SIZE as u64),
            Destination::new(&dest).replace(true),
            Appear::new(&dest),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(files_in(dir.path()), ["out.bin"]);
}

#[tokio::test]
async fn an_existing_destination_without_replace_is_refused_before_any_request() {
    let data = Arc::new(data(SIZE, 4));
    let server = serving(data).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    std::fs::write(&dest, b"old").unwrap();
    let c = client();
    let err = c
        .download_ranged(
            &job(&server, SIZE as u64),
            Destination::new(&dest).replace(false),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(io_kind(&err).map(|k| k.0), Some(ErrorKind::AlreadyExists));
    assert!(server.seen().is_empty(), "a part was asked for");
    let err = c
        .download_stream(
            &server.url("/blob"),
            &http::HeaderMap::new(),
            Destination::new(&dest).replace(false).resumable(true),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(io_kind(&err).map(|k| k.0), Some(ErrorKind::AlreadyExists));
    // The stream's GET is the one request.
    assert_eq!(server.seen().len(), 1);
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    assert_eq!(files_in(dir.path()), ["out.bin"]);
}

#[tokio::test]
async fn a_size_beyond_the_maximum_is_refused_before_anything() {
    let data = Arc::new(data(SIZE, 5));
    let server = serving(data).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let c = client();
    // A configured maximum.
    let err = c
        .download_ranged(
            &job(&server, SIZE as u64),
            Destination::new(&dest).max_size(SIZE as u64 - 1),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("100000 bytes") && msg.contains("99999"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "{msg}");
    // The default, 1 TiB, checked before the number of parts.
    let err = c
        .download_ranged(
            &job(&server, (1 << 40) + 1),
            Destination::new(&dest),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1099511627776 bytes"), "{err}");
    // Exactly the maximum is allowed (here it fails later, on the number
    // of parts).
    let err = c
        .download_ranged(
            &job(&server, SIZE as u64 + 1),
            Destination::new(&dest).max_size(SIZE as u64 + 1),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid response"), "{err}");
    let parts_asked = server.seen().len();
    assert!(parts_asked > 0);
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    assert!(!dest.exists());
}

#[tokio::test]
async fn a_stream_beyond_the_maximum_is_refused() {
    let data = Arc::new(data(SIZE, 6));
    let d2 = data.clone();
    let server = TestServer::start(move |s| {
        let r = Reply::status(200).body(Bytes::copy_from_slice(&d2));
        if s.path == "/sized" {
            r.header("content-length", SIZE)
        } else {
            r
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    for path in ["/sized", "/chunked"] {
        let err = client()
            .download_stream(
                &server.url(path),
                &http::HeaderMap::new(),
                Destination::new(&dest).max_size(SIZE as u64 - 1),
                Arc::new(NoProgress),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("99999"), "{path}: {err}");
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{path}");
    }
}

#[tokio::test]
async fn a_size_beyond_the_free_space_is_refused_before_any_part() {
    let data = Arc::new(data(SIZE, 7));
    let server = serving(data).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let size = u64::MAX / 2;
    // Parts large enough to stay under the parts limit.
    let j = RangedDownload::new(server.url("/blob"), size).part_size(1 << 42);
    let err = client()
        .download_ranged(
            &j,
            Destination::new(&dest).max_size(u64::MAX),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(
        io_kind(&err),
        Some((ErrorKind::StorageFull, dir.path())),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{size} bytes")) && msg.contains("free"),
        "{msg}"
    );
    assert!(server.seen().is_empty(), "a part was asked for");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}
