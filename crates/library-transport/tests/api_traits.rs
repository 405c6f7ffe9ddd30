//! The public types are thread-safe and the operations' futures can be
//! spawned on a multi-threaded runtime.

use std::sync::Arc;

use library_transport::*;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>(_: &T) {}

#[test]
fn types_are_send_and_sync() {
    send_sync::<HttpClient>();
    send_sync::<Error>();
    send_sync::<Destination>();
    send_sync::<RangedDownload>();
    send_sync::<MultipartUpload>();
    send_sync::<Response>();
}

#[tokio::test]
async fn futures_are_send() {
    let client = HttpClient::builder().no_proxy_from_env().build().unwrap();
    let url = url::Url::parse("http://127.0.0.1:9/x").unwrap();
    let job = RangedDownload::new(url.clone(), 10);
    let dir = tempfile::tempdir().unwrap();
    let f = client.download_ranged(
        &job,
        Destination::new(dir.path().join("x")),
        Arc::new(NoProgress),
    );
    send(&f);
    let h = http::HeaderMap::new();
    let f = client.request_json(http::Method::GET, &url, &h, NO_BODY);
    send(&f);
    let retry = RetryConfig::none();
    let f = client.put_file_range(&url, &h, dir.path(), 0, 0, &retry);
    send(&f);
    let up = MultipartUpload::new(dir.path().join("x"), 0, 1);
    let f = client.upload_parts(&up, Arc::new(NoProgress), |_p| async {
        Err::<PartTarget, _>(Error::InvalidRequest("unused".into()))
    });
    send(&f);
    let f = client.download_stream(
        &url,
        &h,
        Destination::new(dir.path().join("y")),
        Arc::new(NoProgress),
    );
    send(&f);
}
