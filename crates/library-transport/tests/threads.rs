//! Many ranged downloads in one process do not mean many threads: the
//! hashing of each download runs on the runtime's blocking pool, and only
//! while there is something to hash.
//!
//! This file holds a single test, so that its process runs nothing else
//! while the threads are counted.

mod support;

use std::sync::Arc;

use library_transport::{Destination, NoProgress, RangedDownload};
use sha2::{Digest, Sha256};
use support::*;

const DOWNLOADS: usize = 32;
const BLOCKING_THREADS: usize = 4;
const PART: u64 = 16_384;
const SIZE: usize = 3 * PART as usize + 100;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn concurrent_ranged_downloads_stay_within_the_blocking_pool() {
    if !std::path::Path::new("/proc/self/task").is_dir() {
        eprintln!("SKIPPED: no /proc/self/task to count threads with");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = Arc::new(data(SIZE, 1));
        // Every first part is held until all downloads have asked for one:
        // then each has its file open and its hashing set up.
        let (open, hold) = tokio::sync::watch::channel(false);
        let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
        let d2 = data.clone();
        let server = TestServer::start(move |s| {
            let _ = arrived_tx.send(());
            let mut r = serve_range(&d2, s);
            r.hold = Some(hold.clone());
            r
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let c = client();
        let before = threads();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..DOWNLOADS {
            let (c, url, dest) = (
                c.clone(),
                server.url("/blob"),
                dir.path().join(format!("{i}.bin")),
            );
            set.spawn(async move {
                let job = RangedDownload::new(url, SIZE as u64)
                    .part_size(PART)
                    .concurrency(1)
                    .retry(fast_retry(0));
                c.download_ranged(&job, Destination::new(dest), Arc::new(NoProgress))
                    .await
            });
        }
        for _ in 0..DOWNLOADS {
            arrived.recv().await.unwrap();
        }
        let during = threads();
        open.send(true).unwrap();
        let sha: [u8; 32] = Sha256::digest(&*data).into();
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap().unwrap().sha256, sha);
        }
        let after = threads();
        assert!(
            during <= before + BLOCKING_THREADS,
            "{DOWNLOADS} downloads in flight: {during} threads, {before} before"
        );
        assert!(
            after <= before + BLOCKING_THREADS,
            "{DOWNLOADS} downloads done: {after} threads, {before} before"
        );
        for i in 0..DOWNLOADS {
            assert_eq!(
                std::fs::read(dir.path().join(format!("{i}.bin"))).unwrap(),
                *data
            );
        }
    });
}
