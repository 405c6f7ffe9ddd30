//! Pushes through a slow or dead uplink: an upload may take as long as it
//! needs while it progresses, and fails soon once it stops progressing.
//!
//! The client uses a [`ThrottledLink`] in front of the library listener as
//! its HTTP proxy, so that every request (the API calls and the upload to
//! the presigned-style URL of the other listener) crosses the slow link.

mod support;

use std::time::Duration;

use library_client::{Client, Push, UploadKind};
use library_testserver::{LinkDirection, TestServer, ThrottledLink};
use support::{matching, random_file, TOKEN, UA};

/// A client of `server` that reaches it only through `link`.
fn client_through(
    server: &TestServer,
    link: &ThrottledLink,
    retries: u32,
    tune: impl FnOnce(library_client::ClientBuilder) -> library_client::ClientBuilder,
) -> Client {
    let b = Client::builder()
        .base_url(server.url().as_str())
        .token(TOKEN)
        .user_agent(UA)
        .proxy(link.url().as_str())
        .no_proxy("")
        .retry(
            library_client::RetryConfig::default()
                .with_max_retries(retries)
                .with_backoff(Duration::from_millis(5), Duration::from_millis(50)),
        );
    tune(b).build().unwrap()
}

/// Pushes a file of `len` bytes through an uplink of `uplink` bytes per
/// second with the given request timeout, and checks that it went in one
/// upload request, whole.
async fn push_through_slow_uplink(len: u64, uplink: u64, request_timeout: Duration) {
    let server = TestServer::start().await.unwrap();
    let link = ThrottledLink::builder(server.library_addr())
        .up(LinkDirection::new().rate(uplink))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "slow.sif", len, 21);
    let client = client_through(&server, &link, 3, |b| b.request_timeout(request_timeout));
    let pushed = client
        .upload_image(&file, &Push::new("e/c/slow").arch("amd64"))
        .await
        .unwrap();
    assert_eq!(pushed.upload, UploadKind::V2Single);
    let reqs = server.requests();
    let puts = matching(&reqs, "PUT", "/uploads/");
    assert_eq!(puts.len(), 1, "one upload request, no retry");
    assert_eq!(puts[0].body_len, len);
    assert_eq!(
        server.image_bytes(&pushed.image_id).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert!(
        link.bytes_up() > len,
        "the upload went through the link ({} bytes)",
        link.bytes_up()
    );
}

/// 32 MiB at 2 MB/s take about 17 s, more than three times the 5 s
/// request timeout, which once covered the whole upload (the request was
/// cut at 5 s and sent again from the start, until the retries ran out).
/// The request timeout now starts once the body is handed over; what the
/// socket buffers still hold then (at most a few MiB on loopback, about 2 s
/// at this rate) drains within it.
#[tokio::test]
async fn a_push_slower_than_the_request_timeout_succeeds_on_the_first_try() {
    push_through_slow_uplink(32 << 20, 2_000_000, Duration::from_secs(5)).await;
}

/// 12 MiB at 150 KB/s take about 84 s, over the default 60 s request
/// timeout (slow: it runs alongside the other tests).
#[tokio::test]
async fn a_12_mib_push_through_a_150_kb_s_uplink_succeeds_on_the_first_try() {
    push_through_slow_uplink(12 << 20, 150_000, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_push_through_a_stalled_uplink_fails_after_the_write_timeout() {
    let server = TestServer::start().await.unwrap();
    // The API calls go through; the upload dies after its first MiB.
    let link = ThrottledLink::builder(server.library_addr())
        .up(LinkDirection::new().stall_after(1 << 20))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = random_file(dir.path(), "stalled.sif", 12 << 20, 22);
    // Only the write timeout can end the upload: the wait for headers is
    // longer than the guard below.
    let client = client_through(&server, &link, 0, |b| {
        b.write_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(600))
    });
    let spec = Push::new("e/c/stalled").arch("amd64");
    let push = client.upload_image(&file, &spec);
    let e = tokio::time::timeout(Duration::from_secs(120), push)
        .await
        .expect("the stalled upload must fail, not hang")
        .unwrap_err();
    assert!(link.up_settings().is_stalled());
    assert!(e.is_timeout(), "expected a timeout, got {e:?}");
    assert!(e.to_string().contains("sending the request body"), "{e}");
    let reqs = server.requests();
    assert_eq!(matching(&reqs, "PUT", "/uploads/").len(), 1, "no retry");
    assert!(matching(&reqs, "PUT", "_complete").is_empty());
    let image = server.find_image("e", "c", "stalled", "latest", "amd64");
    assert!(image.as_ref().is_none_or(|i| !i.uploaded), "{image:?}");
}
