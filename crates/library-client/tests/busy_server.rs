//! Many pulls at once from a library server with a small pool of workers
//! (a request holds a worker until its answer has been sent in full): a
//! pull must never hold an unread body of that server while it waits for
//! another answer from it, or the pulls deadlock each other.

mod support;

use std::time::Duration;

use library_client::{Downloader, Pull, Transfer};
use library_testserver::{DownloadMode, TestServer};
use support::*;

const MIB: usize = 1024 * 1024;

/// Twenty pulls of one 16 MiB image against 4 workers; the image is
/// larger than what the socket buffers hold, so a worker sending it stays
/// busy until the client reads.
async fn twenty_pulls(mode: DownloadMode, downloader: Downloader) -> Vec<Transfer> {
    let server = TestServer::builder()
        .download(mode)
        .workers(4)
        .start()
        .await
        .unwrap();
    let bytes: Vec<u8> = (0..16 * MIB).map(|i| (i * 7 % 251) as u8).collect();
    server.add_image("hpc", "tools", "big", &["latest"], "amd64", bytes.clone());
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let pulls = (0..20).map(|i| {
        let client = client.clone();
        let dest = dir.path().join(format!("big-{i}.sif"));
        async move {
            let pull = Pull::new("hpc/tools/big")
                .arch("amd64")
                .downloader(downloader);
            let got = client.download_image(&dest, &pull).await;
            (dest, got)
        }
    });
    let all = tokio::time::timeout(Duration::from_secs(60), futures_join_all(pulls))
        .await
        .expect("20 pulls against 4 workers finish (no deadlock)");
    let mut transfers = Vec::new();
    for (dest, got) in all {
        let got = got.unwrap_or_else(|e| panic!("pull into {}: {e}", dest.display()));
        assert!(got.verified, "{}", dest.display());
        assert_eq!(got.size, bytes.len() as u64);
        assert!(std::fs::read(&dest).unwrap() == bytes, "{}", dest.display());
        transfers.push(got.transfer);
    }
    transfers
}

/// `join_all` without a dependency on `futures`.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("pull task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_streamed_pulls_with_default_settings_against_four_workers() {
    // Default settings: the 200 advertises ranges and the image is larger
    // than a part, so each pull switches to concurrent ranged parts.
    let t = twenty_pulls(DownloadMode::Stream, Downloader::default()).await;
    assert!(t.iter().all(|&t| t == Transfer::Ranged), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_streamed_pulls_at_concurrency_one_against_four_workers() {
    let one = Downloader {
        concurrency: library_client::Concurrency::Fixed(1),
        ..Downloader::default()
    };
    let t = twenty_pulls(DownloadMode::Stream, one).await;
    assert!(t.iter().all(|&t| t == Transfer::Stream), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_redirected_pulls_against_four_workers() {
    let t = twenty_pulls(DownloadMode::RedirectSameListener, Downloader::default()).await;
    assert!(t.iter().all(|&t| t == Transfer::Ranged), "{t:?}");
}
