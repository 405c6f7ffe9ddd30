//! The demo of `cargo xtask demo`, run end to end: the same steps
//! (included from xtask) drive the `scs-library` binary built for this test
//! against the test server, here started in process (`cargo xtask demo`
//! starts the same server as a program of its own).

#[path = "../../../xtask/src/demo.rs"]
#[allow(dead_code)]
mod demo;

use std::path::Path;

use library_testserver::{Storage, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_end_to_end() {
    let store = tempfile::tempdir().unwrap();
    let token = "demo-test-token-7c1e";
    let server = TestServer::builder()
        .storage(Storage::Dir(store.path().to_path_buf()))
        .token(token)
        .start()
        .await
        .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture = root.join(demo::FIXTURE);
    let cli = Path::new(env!("CARGO_BIN_EXE_scs-library")).to_path_buf();
    let url = server.url().to_string();
    let result = tokio::task::spawn_blocking(move || demo::run_steps(&cli, &url, token, &fixture))
        .await
        .unwrap();
    if let Err(e) = result {
        panic!("the demo failed: {e:#}");
    }
    // Every step reached the server, with the token.
    let reqs = server.requests();
    assert!(reqs.iter().any(|r| r.method == "DELETE"));
    assert!(reqs
        .iter()
        .filter(|r| r.path.starts_with("/v1/"))
        .all(|r| r.authorization() == Some(&format!("Bearer {token}")[..])));
}
