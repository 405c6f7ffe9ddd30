//! `--connect-timeout`, `--idle-timeout` and `--timeout` (and their
//! environment variables): bad values are usage errors that name their
//! source, and each setting bounds what it says.

use std::path::Path;
use std::time::{Duration, Instant};

use library_testserver::{
    DownloadMode, Endpoint, Fault, FaultAction, LinkDirection, TestServer, TestServerBuilder,
    ThrottledLink,
};

mod support;

fn start(builder: TestServerBuilder) -> (tokio::runtime::Runtime, TestServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(builder.start()).expect("test server starts");
    (rt, server)
}

fn scs(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = support::command(dir);
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("scs-library runs")
}

#[test]
fn bad_timeouts_are_usage_errors_naming_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9/";
    for (env, args, named) in [
        (
            vec![],
            vec!["--idle-timeout", "abc"],
            "--idle-timeout \"abc\"",
        ),
        (
            vec![],
            vec!["--connect-timeout", "0"],
            "--connect-timeout \"0\"",
        ),
        (vec![], vec!["--timeout=-3"], "--timeout \"-3\""),
        (
            vec![("LIBRARY_TIMEOUT", "soon")],
            vec![],
            "LIBRARY_TIMEOUT=\"soon\"",
        ),
        (
            vec![("LIBRARY_IDLE_TIMEOUT", "inf")],
            vec![],
            "LIBRARY_IDLE_TIMEOUT=\"inf\"",
        ),
    ] {
        let mut env = env;
        env.push(("LIBRARY_URL", url));
        let mut all = args.clone();
        all.push("version");
        let out = scs(dir.path(), &env, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(named), "{named}: {stderr}");
        assert!(stderr.contains("not a number of seconds"), "{stderr}");
    }
}

#[test]
fn the_timeout_bounds_the_wait_for_an_answer() {
    let (_rt, server) = start(TestServer::builder());
    server.inject(
        Fault::new(
            Endpoint::Version,
            FaultAction::Delay(Duration::from_secs(20)),
        )
        .always(),
    );
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let started = Instant::now();
    let out = scs(
        dir.path(),
        &[("LIBRARY_URL", &url)],
        &["--timeout", "0.5", "--retries", "0", "version"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("waiting for the response headers"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "ended by the 0.5 s timeout, not by the 20 s delay"
    );
    // The same through the environment.
    let out = scs(
        dir.path(),
        &[("LIBRARY_URL", &url), ("LIBRARY_TIMEOUT", "0.5")],
        &["--retries", "0", "version"],
    );
    assert_eq!(out.status.code(), Some(5));
}

#[test]
fn the_idle_timeout_ends_a_download_that_stopped_moving() {
    let (rt, server) = start(TestServer::builder().download(DownloadMode::Stream));
    let bytes: Vec<u8> = (0..4 << 20).map(|i| (i % 249) as u8).collect();
    server.add_image("alice", "tools", "big", &["latest"], "amd64", bytes);
    // Everything the server sends stops after 1 MiB: the image stream dies
    // in the middle.
    let link = rt
        .block_on(
            ThrottledLink::builder(server.library_addr())
                .down(LinkDirection::new().stall_after(1 << 20))
                .start(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let proxy = link.url().to_string();
    let started = Instant::now();
    let out = scs(
        dir.path(),
        &[("LIBRARY_URL", &url)],
        &[
            "--proxy",
            &proxy,
            "--idle-timeout",
            "1",
            "--retries",
            "0",
            "pull",
            "--arch",
            "amd64",
            "--concurrency",
            "1",
            "alice/tools/big",
            "big.sif",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("time"), "a timeout: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ended by the 1 s idle timeout, not the 60 s default"
    );
    assert!(link.down_settings().is_stalled());
    assert!(!dir.path().join("big.sif").exists());
}
