//! A destination that cannot take the image: a full file system (a 1 MiB
//! tmpfs, when this process may mount one: as root, which CI is), or
//! else a directory that refuses new files; and a writer that fails, for
//! `download_image_to_writer`.

use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use library_client::{Downloader, Error, Pull};
use library_e2e::registry::Registry;
use library_e2e::*;
use library_testserver::{DownloadMode, TestServer};

/// Three times the size of the tmpfs.
const SIZE: usize = 3 << 20;
const TMPFS: u64 = 1 << 20;

fn image() -> Vec<u8> {
    random_bytes(SIZE, 41)
}

fn pull(concurrency: usize) -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(concurrency),
        part_size: Some(512 * 1024),
    })
}

async fn library(mode: DownloadMode) -> TestServer {
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .download(mode)
        .start()
        .await
        .unwrap();
    s.add_image("e", "c", "k", &["latest"], "amd64", image());
    s
}

/// A destination that fails to take the image, and how it fails.
enum Full {
    Tmpfs(Tmpfs),
    ReadOnly(tempfile::TempDir),
}

impl Full {
    /// `None` when neither works: root without the right to mount, whom
    /// a read-only directory does not stop.
    fn new() -> Option<Full> {
        if let Some(t) = Tmpfs::mount(TMPFS) {
            return Some(Full::Tmpfs(t));
        }
        eprintln!("cannot mount a tmpfs: using a read-only directory");
        let d = tempfile::tempdir().unwrap();
        set_mode(d.path(), 0o555);
        let refused = std::fs::write(d.path().join("probe"), b"x").is_err();
        set_mode(d.path(), 0o755);
        if !refused {
            eprintln!("SKIPPED: a read-only directory does not stop this process either");
            return None;
        }
        Some(Full::ReadOnly(d))
    }

    fn dir(&self) -> &std::path::Path {
        match self {
            Full::Tmpfs(t) => t.path(),
            Full::ReadOnly(d) => d.path(),
        }
    }

    /// Puts the previous image at the destination, then makes the
    /// directory refuse more (read-only case).
    fn prepare(&self) -> std::path::PathBuf {
        let dest = self.dir().join("image.sif");
        std::fs::write(&dest, PREVIOUS).unwrap();
        if let Full::ReadOnly(d) = self {
            set_mode(d.path(), 0o555);
        }
        dest
    }

    fn expected_kind(&self) -> ErrorKind {
        match self {
            Full::Tmpfs(_) => ErrorKind::StorageFull,
            Full::ReadOnly(_) => ErrorKind::PermissionDenied,
        }
    }

    /// Makes room (a bigger tmpfs, or a writable directory).
    fn make_room(&self) {
        match self {
            Full::Tmpfs(t) => t.resize(4 * SIZE as u64),
            Full::ReadOnly(d) => set_mode(d.path(), 0o755),
        }
    }

    fn untouched(&self, dest: &std::path::Path, resumable: bool, what: &str) {
        assert_eq!(std::fs::read(dest).unwrap(), PREVIOUS, "{what}");
        for n in listing(self.dir()) {
            let ok = n == "image.sif" || (resumable && n.starts_with(".image.sif.part"));
            assert!(ok, "{what}: left behind {n}");
        }
    }
}

impl Drop for Full {
    fn drop(&mut self) {
        if let Full::ReadOnly(d) = self {
            set_mode(d.path(), 0o755);
        }
    }
}

fn set_mode(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn io_kind(e: &Error) -> Option<ErrorKind> {
    match e {
        Error::Io { source, .. } => Some(source.kind()),
        _ => None,
    }
}

async fn full_then_room(s_url: &url::Url, concurrency: usize, what: &str) {
    let Some(full) = Full::new() else { return };
    let dest = full.prepare();
    let c = client(s_url);
    let e = c
        .download_image(&dest, &pull(concurrency))
        .await
        .unwrap_err();
    assert_eq!(io_kind(&e), Some(full.expected_kind()), "{what}: {e:?}");
    assert!(!e.is_network() && e.status().is_none(), "{what}: {e:?}");
    full.untouched(&dest, false, what);

    let e = c
        .download_image(&dest, &pull(concurrency).resume(true))
        .await
        .unwrap_err();
    assert_eq!(io_kind(&e), Some(full.expected_kind()), "{what}: {e:?}");
    full.untouched(&dest, true, what);

    full.make_room();
    c.download_image(&dest, &pull(concurrency).resume(true))
        .await
        .unwrap();
    assert!(
        std::fs::read(&dest).unwrap() == image(),
        "{what}: pulled file differs"
    );
    assert_eq!(listing(full.dir()), ["image.sif"], "{what}");
}

#[tokio::test]
async fn a_full_disk_under_a_ranged_pull() {
    let s = library(DownloadMode::RedirectOtherListener).await;
    full_then_room(&s.url(), 3, "ranged").await;
}

#[tokio::test]
async fn a_full_disk_under_a_streamed_pull() {
    let s = library(DownloadMode::Stream).await;
    full_then_room(&s.url(), 1, "stream").await;
}

#[tokio::test]
async fn a_full_disk_under_an_oci_pull() {
    let reg = Registry::start(None).await;
    reg.seed("e/c/k", "latest", "amd64", Bytes::from(image()), None);
    let lib = TestServer::builder()
        .oci_registry(reg.url(), "")
        .start()
        .await
        .unwrap();
    full_then_room(&lib.url(), 3, "oci").await;
}

/// A writer that takes `room` bytes and then fails as a full disk does.
struct FailingWriter {
    room: usize,
    got: Vec<u8>,
}

impl tokio::io::AsyncWrite for FailingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let left = self.room - self.got.len();
        if left == 0 {
            return Poll::Ready(Err(std::io::Error::from(ErrorKind::StorageFull)));
        }
        let n = left.min(buf.len());
        self.got.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_writer_that_fails() {
    for mode in [DownloadMode::Stream, DownloadMode::RedirectOtherListener] {
        let s = library(mode).await;
        let c = client(&s.url());
        let mut w = FailingWriter {
            room: 100_000,
            got: Vec::new(),
        };
        let e = c
            .download_image_to_writer(&mut w, &pull(1))
            .await
            .unwrap_err();
        assert_eq!(io_kind(&e), Some(ErrorKind::StorageFull), "{mode:?}: {e:?}");
        assert!(!e.is_network(), "{e:?}");
        assert_eq!(w.got.len(), 100_000);
        assert!(w.got[..] == image()[..100_000]);
        // With room, the same call gives the image.
        let mut ok = FailingWriter {
            room: SIZE,
            got: Vec::new(),
        };
        let n = c.download_image_to_writer(&mut ok, &pull(1)).await.unwrap();
        assert_eq!(n as usize, SIZE);
        assert!(ok.got == image());
    }
}

/// Creates the destination the first time bytes land, as another process
/// might while the pull runs.
struct Appear {
    path: std::path::PathBuf,
    done: std::sync::atomic::AtomicBool,
}

const APPEARED: &[u8] = b"created under the destination name while the pull ran";

impl library_transport::Progress for Appear {
    fn increment(&self, _: u64) {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::fs::write(&self.path, APPEARED).unwrap();
        }
    }
}

#[tokio::test]
async fn a_destination_appearing_during_the_pull_is_not_replaced() {
    for mode in [DownloadMode::Stream, DownloadMode::RedirectOtherListener] {
        let s = library(mode).await;
        let c = client(&s.url());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.sif");
        let appear = || {
            std::sync::Arc::new(Appear {
                path: dest.clone(),
                done: false.into(),
            })
        };
        let concurrency = if mode == DownloadMode::Stream { 1 } else { 3 };
        let e = c
            .download_image(
                &dest,
                &pull(concurrency).replace_existing(false).progress(appear()),
            )
            .await
            .unwrap_err();
        match &e {
            Error::Io { path, source } => {
                assert_eq!(source.kind(), ErrorKind::AlreadyExists, "{mode:?}: {e}");
                assert_eq!(path, &dest, "{mode:?}: {e}");
            }
            e => panic!("{mode:?}: {e:?}"),
        }
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            APPEARED,
            "{mode:?}: clobbered"
        );
        assert_eq!(listing(dir.path()), ["image.sif"], "{mode:?}");

        // Replacing allowed (the default): the pulled image wins.
        std::fs::remove_file(&dest).unwrap();
        c.download_image(&dest, &pull(concurrency).progress(appear()))
            .await
            .unwrap();
        assert!(std::fs::read(&dest).unwrap() == image(), "{mode:?}");
        assert_eq!(listing(dir.path()), ["image.sif"], "{mode:?}");
    }
}
