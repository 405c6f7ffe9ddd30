//! The automatic number of streams of a pull, end to end: through a link
//! that caps each connection it opens many; against a server whose whole
//! bandwidth is capped, or that refuses load with 503, it stays at few.
//!
//! The image bytes (the redirected ranged download) go through a
//! [`ThrottledLink`] in front of the server's blob listener; the library
//! API goes straight to the server.

mod support;

use library_client::{Concurrency, Downloader, Pull, Transfer};
use library_testserver::{LinkDirection, TestServer, TestServerBuilder, ThrottledLink};
use library_transport::Controller;

const MIB: u64 = 1 << 20;

/// What one pull did.
struct Outcome {
    streams: usize,
    retries: u64,
    peak_connections: u64,
    refused: u64,
}

/// Pulls an image of `size` bytes in 1 MiB parts with automatic streams
/// from a server built by `builder`, through a link in front of its blob
/// listener with downlink `down`.
///
/// One pull at a time: each measures rates, which pulls running side by
/// side on a small machine would blur.
async fn pull(builder: TestServerBuilder, down: LinkDirection, size: u64) -> Outcome {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = builder.start().await.unwrap();
    let link = ThrottledLink::builder(server.blob_addr())
        .down(down)
        .start()
        .await
        .unwrap();
    server.advertise_blob_url(link.url());
    let bytes = image_bytes(size as usize);
    server.add_image("e", "c", "big", &["v1"], "amd64", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("big.sif");
    let pull = Pull::new("e/c/big")
        .tag("v1")
        .arch("amd64")
        .downloader(Downloader {
            concurrency: Concurrency::Auto { max: 16 },
            part_size: Some(MIB),
        });
    let got = support::client(&server)
        .download_image(&dest, &pull)
        .await
        .unwrap();
    assert_eq!(got.transfer, Transfer::Ranged);
    assert!(got.verified);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    Outcome {
        streams: got.streams,
        retries: got.retries,
        peak_connections: link.peak_connections(),
        refused: server.busy_answers(),
    }
}

/// Pseudo-random bytes (an image the server cannot compress or dedupe).
fn image_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fastrand::Rng::with_seed(9).fill(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_connection_cap_gets_many_streams() {
    // 4 MB/s per connection: every stream added brings 4 MB/s more.
    let o = pull(
        TestServer::builder(),
        LinkDirection::new().rate(4_000_000),
        32 * MIB,
    )
    .await;
    assert!(
        o.streams >= 8,
        "only {} streams against a per-connection cap",
        o.streams
    );
    assert!(o.streams <= 16);
    assert!(
        o.peak_connections >= o.streams as u64,
        "{} streams but at most {} connections at once",
        o.streams,
        o.peak_connections
    );
    assert_eq!(o.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_cap_keeps_few_streams() {
    // 16 MB/s for all connections together: more streams add nothing.
    let o = pull(
        TestServer::builder(),
        LinkDirection::new().total_rate(16_000_000),
        32 * MIB,
    )
    .await;
    assert!(
        o.streams <= Controller::START,
        "{} streams against a server whose bandwidth is capped",
        o.streams
    );
    assert_eq!(o.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_load_gets_fewer_streams_and_no_storm() {
    // At most 3 downloads at once; each connection would give 4 MB/s more.
    let o = pull(
        TestServer::builder().refuse_downloads_above(3),
        LinkDirection::new().rate(4_000_000),
        32 * MIB,
    )
    .await;
    assert!(
        o.streams <= 3,
        "{} streams against a server that serves 3",
        o.streams
    );
    // Refused parts wait for a free stream instead of asking again at
    // once: a handful of 503s, not one per part.
    assert!(o.refused >= 1, "the limit was never reached");
    assert!(
        o.refused <= 8,
        "{} answers 503: a storm of retries",
        o.refused
    );
    assert_eq!(o.retries, o.refused);
}
