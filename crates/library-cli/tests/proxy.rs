//! `--proxy`: every request goes through the named proxy, whatever the
//! library's address, and a proxy that cannot be reached fails the command
//! without a direct attempt.

use std::path::Path;

use library_testserver::{DownloadMode, TestServer, ThrottledLink};

mod support;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn scs(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = support::command(dir);
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("scs-library runs")
}

#[test]
fn a_pull_goes_through_the_proxy_to_a_library_named_by_host() {
    let rt = runtime();
    let server = rt
        .block_on(
            TestServer::builder()
                .token("proxy-test-token")
                .download(DownloadMode::Stream)
                .start(),
        )
        .unwrap();
    let bytes: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    server.add_image(
        "alice",
        "tools",
        "hello",
        &["latest"],
        "amd64",
        bytes.clone(),
    );
    // A plain TCP forwarder to the server acts as the HTTP proxy: the server
    // routes requests in absolute form by their path.
    let link = rt
        .block_on(ThrottledLink::builder(server.library_addr()).start())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // `.invalid` never resolves: the pull can only work through the proxy.
    let out = scs(
        dir.path(),
        &[
            ("LIBRARY_URL", "http://library.invalid/"),
            ("LIBRARY_TOKEN", "proxy-test-token"),
        ],
        &[
            "--proxy",
            link.url().as_str(),
            "pull",
            "--arch",
            "amd64",
            "--concurrency",
            "1",
            "alice/tools/hello",
            "hello.sif",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read(dir.path().join("hello.sif")).unwrap(), bytes);
    let seen = server.requests();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(r.header("host"), Some("library.invalid"), "{r:?}");
    }
    assert!(link.connections() >= 1);
    assert!(link.bytes_down() >= bytes.len() as u64);
}

#[test]
fn an_unreachable_proxy_fails_without_a_direct_attempt() {
    let rt = runtime();
    let server = rt.block_on(TestServer::builder().start()).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let out = scs(
        dir.path(),
        &[("LIBRARY_URL", &url)],
        &["--proxy", &proxy, "--retries", "0", "version"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        server.requests().is_empty(),
        "no request went around the proxy"
    );
}

#[test]
fn a_malformed_proxy_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = scs(
        dir.path(),
        &[("LIBRARY_URL", "http://127.0.0.1:9/")],
        &["--proxy", "not a proxy url", "version"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("proxy"), "{stderr}");
}
