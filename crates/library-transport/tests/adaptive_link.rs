//! Adaptive concurrency end to end: a ranged download through a link that
//! caps each connection opens more streams than the fixed default.

mod support;

use std::sync::Arc;

use library_testserver::{LinkDirection, ThrottledLink};
use library_transport::{Concurrency, Destination, NoProgress, RangedDownload};
use sha2::{Digest, Sha256};
use support::*;

const SIZE: usize = 24 << 20;
const PART: u64 = 256 << 10;
const PER_CONNECTION: u64 = 4_000_000;

/// Downloads through a per-connection rate cap with `c`; returns the
/// streams the download ended with and the connections the link saw.
async fn pull_through_cap(c: Concurrency) -> (usize, u64) {
    let data = Arc::new(data(SIZE, 7));
    let d = data.clone();
    let server = TestServer::start(move |seen| serve_range(&d, seen)).await;
    let link = ThrottledLink::builder(server.addr)
        .down(LinkDirection::new().rate(PER_CONNECTION))
        .start()
        .await
        .unwrap();
    let url = link.url().join("/blob").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let job = RangedDownload::new(url, SIZE as u64)
        .part_size(PART)
        .streams(c)
        .retry(fast_retry(3));
    let got = client()
        .download_ranged(&job, Destination::new(&dest), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(&*data)));
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(got.retries, 0, "a rate cap refuses nothing");
    (got.streams, link.connections())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_opens_more_streams_against_a_per_connection_cap() {
    let (streams, _) = pull_through_cap(Concurrency::Fixed(3)).await;
    assert_eq!(streams, 3, "a fixed setting never changes");
    let (streams, connections) = pull_through_cap(Concurrency::Auto { max: 16 }).await;
    assert!(
        streams >= 8,
        "auto ended with only {streams} streams against a per-connection cap"
    );
    assert!(
        streams <= 16,
        "auto ended with {streams} streams, above the maximum"
    );
    // The streams were real connections, not just a number.
    assert!(
        connections >= streams as u64,
        "{streams} streams over only {connections} connections"
    );
}
