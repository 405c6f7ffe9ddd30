//! Timeouts while sending a request: on progress of the body (the write
//! timeout), then on the wait for the headers once the body is sent (the
//! request timeout), never on the exchange as a whole.

mod support;

use std::time::Duration;

use library_transport::{Body, HttpClient};
use support::*;

fn put(url: url::Url, body: Body, len: u64) -> http::Request<Body> {
    http::Request::put(url.as_str())
        .header(http::header::CONTENT_LENGTH, len)
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn the_request_timeout_applies_once_the_body_is_sent() {
    // The server reads the whole body, then never answers.
    let server = TestServer::start(|_| Reply {
        head_delay: Some(Duration::from_secs(3600)),
        ..Reply::status(200)
    })
    .await;
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .request_timeout(Duration::from_millis(300))
        .write_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let data = data(1 << 20, 31);
    let len = data.len() as u64;
    let err = c
        .send(put(server.url("/up"), Body::bytes(data), len))
        .await
        .unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("waiting for the response headers"),
        "{err}"
    );
}

#[tokio::test]
async fn the_write_timeout_does_not_bound_the_wait_for_headers() {
    let server = TestServer::start(|_| Reply {
        head_delay: Some(Duration::from_millis(500)),
        ..Reply::status(200)
    })
    .await;
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .write_timeout(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let resp = c
        .send(put(server.url("/up"), Body::from("ten bytes!"), 10))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(server.seen()[0].body.as_ref(), b"ten bytes!");
}

#[tokio::test]
async fn a_body_the_connection_stops_taking_fails_after_the_write_timeout() {
    // Accepts connections and never reads from them: once the socket
    // buffers are full, no more of the body is taken.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    let accept = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            if held_tx.send(sock).is_err() {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let len = 64u64 << 20;
    std::fs::write(&path, data(len as usize, 32)).unwrap();
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .write_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let url = url::Url::parse(&format!("http://{addr}/up")).unwrap();
    let send = c.send(put(url, Body::file_range(&path, 0, len).unwrap(), len));
    let err = tokio::time::timeout(Duration::from_secs(120), send)
        .await
        .expect("a stalled body must fail, not hang")
        .unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("sending the request body"),
        "{err}"
    );
    assert!(held_rx.try_recv().is_ok(), "the client had connected");
    accept.abort();
}
