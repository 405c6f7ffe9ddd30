//! Single requests (the library's JSON API and the pull's first GET) are
//! sent again after a failure that may be retried for their method, and
//! only then: a GET after a 502 or a dropped connection, a POST only when
//! the server says it did not act (503, 429) or was never reached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use library_client::{Client, Error, RetryConfig, SearchArgs};
use library_e2e::scripted::{Reply, Scripted};
use library_e2e::*;
use library_testserver::{Endpoint, Fault, FaultAction, TestServer};

async fn server() -> TestServer {
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .start()
        .await
        .unwrap();
    s.add_image("e", "c", "k", &["latest"], "amd64", random_bytes(1000, 5));
    s
}

/// Requests with `method` whose path starts with `prefix`.
fn seen(s: &TestServer, method: Method, prefix: &str) -> usize {
    s.requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .count()
}

#[tokio::test]
async fn a_search_answered_502_then_dropped_is_sent_again() {
    let s = server().await;
    s.add_image("e", "c", "kite", &["latest"], "amd64", random_bytes(10, 6));
    s.inject(Fault::new(Endpoint::Search, FaultAction::Status(502)));
    s.inject(Fault::new(Endpoint::Search, FaultAction::DropConnection));
    let found = client(&s.url())
        .search(&SearchArgs::new("kite"))
        .await
        .unwrap();
    assert_eq!(found.containers.map(|c| c.len()), Some(1));
    assert_eq!(seen(&s, Method::GET, "/v1/search"), 3);
}

#[tokio::test]
async fn retries_used_up_give_the_last_answer() {
    let s = server().await;
    s.inject(Fault::new(Endpoint::Entities, FaultAction::Status(500)).always());
    let e = client(&s.url()).get_entity("e").await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(500), "{e}");
    assert!(e.to_string().contains("injected fault"), "{e}");
    assert_eq!(seen(&s, Method::GET, "/v1/entities/"), ATTEMPTS);
}

#[tokio::test]
async fn a_get_answered_404_is_not_sent_again() {
    let s = server().await;
    let e = client(&s.url()).get_entity("nobody").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(seen(&s, Method::GET, "/v1/entities/"), 1);
}

#[tokio::test]
async fn a_post_is_sent_again_only_when_the_server_did_not_act() {
    let s = server().await;
    let c = client(&s.url());

    // 503: the server says it did not act; the POST goes again.
    s.inject(Fault::new(Endpoint::Entities, FaultAction::Status(503)));
    let made = c.create_entity("fresh").await.unwrap();
    assert_eq!(made.name, "fresh");
    assert_eq!(seen(&s, Method::POST, "/v1/entities"), 2);

    // 500 and a connection closed after the request: the server may have
    // acted, so the POST is not repeated.
    for (what, action) in [
        ("500", FaultAction::Status(500)),
        ("dropped", FaultAction::DropConnection),
    ] {
        s.clear_requests();
        s.inject(Fault::new(Endpoint::Entities, action));
        let e = c.create_entity(&format!("other-{what}")).await.unwrap_err();
        assert_eq!(seen(&s, Method::POST, "/v1/entities"), 1, "{what}: {e}");
    }
}

#[tokio::test]
async fn a_pull_whose_first_get_fails_once_succeeds() {
    let s = server().await;
    let bytes = random_bytes(1000, 5);
    for action in [FaultAction::Status(502), FaultAction::DropConnection] {
        s.clear_requests();
        s.inject(Fault::new(Endpoint::ImageFile, action));
        let d = DestDir::new();
        client(&s.url())
            .download_image(&d.dest, &library_client::Pull::new("e/c/k").arch("amd64"))
            .await
            .unwrap();
        d.assert_pulled(&bytes, "first GET failed once");
        assert_eq!(seen(&s, Method::GET, "/v1/imagefile/"), 2, "{action:?}");
    }
}

#[tokio::test]
async fn a_connection_refused_is_tried_again_for_a_post() {
    // Nothing listens: the POST never reached a server, so it is retried.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let started = Instant::now();
    let c = Client::builder()
        .base_url(&closed)
        .token(LIBRARY_TOKEN)
        .retry(
            RetryConfig::default()
                .with_max_retries(3)
                .with_backoff(Duration::from_millis(40), Duration::from_millis(40)),
        )
        .build()
        .unwrap();
    let e = c.create_entity("x").await.unwrap_err();
    assert!(e.is_network(), "{e:?}");
    // Three waits of 40 ms between four tries.
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let srv = Scripted::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(503).header("retry-after", "1")
        } else {
            Reply::status(200).data(serde_json::json!({"version": "v9", "apiVersion": "2.0.0"}))
        }
    })
    .await;
    let c = Client::builder()
        .base_url(srv.url().as_str())
        .retry(
            RetryConfig::default()
                .with_max_retries(2)
                .with_backoff(Duration::from_millis(1), Duration::from_secs(5)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let v = c.get_version().await.unwrap();
    assert_eq!(v.version, "v9");
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}, less than Retry-After",
        started.elapsed()
    );
}
