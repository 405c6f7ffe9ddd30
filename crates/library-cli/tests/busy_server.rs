//! `scs-library pull` as an HPC site runs it: many processes at once
//! against a small on-site library server whose worker pool is smaller
//! than the number of pulls; and what a pull says when the library states
//! no SHA-256 to verify against.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use library_testserver::{DownloadMode, TestServer};
use support::start;

mod support;
use serde_json::Value;

const MIB: usize = 1024 * 1024;

fn command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = support::command(dir);
    cmd.args(args).env("LIBRARY_URL", url);
    cmd
}

/// Waits for every child until `deadline`; the ones still running then
/// are killed and reported.
fn wait_all(
    children: Vec<(usize, Child)>,
    deadline: Duration,
) -> Vec<(usize, std::process::Output)> {
    let until = Instant::now() + deadline;
    let mut running = children;
    let mut done = Vec::new();
    while !running.is_empty() && Instant::now() < until {
        let mut still = Vec::new();
        for (i, mut c) in running {
            match c.try_wait().unwrap() {
                Some(_) => done.push((i, c.wait_with_output().unwrap())),
                None => still.push((i, c)),
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(50));
    }
    let hung: Vec<usize> = running.iter().map(|(i, _)| *i).collect();
    for (_, mut c) in running {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(
        hung.is_empty(),
        "{} of the pulls still running after {deadline:?}: {hung:?}",
        hung.len()
    );
    done
}

fn twenty_pulls(extra: &[&str]) {
    let server = start(
        TestServer::builder()
            .download(DownloadMode::Stream)
            .workers(4),
    );
    let bytes: Vec<u8> = (0..16 * MIB).map(|i| (i * 31 % 241) as u8).collect();
    server.add_image("hpc", "tools", "big", &["latest"], "amd64", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let children: Vec<(usize, Child)> = (0..20)
        .map(|i| {
            let dest = format!("big-{i}.sif");
            let mut args = vec!["pull", "--json", "--arch", "amd64"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["hpc/tools/big", &dest]);
            let child = command(dir.path(), &url, &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("scs-library starts");
            (i, child)
        })
        .collect();
    let done = wait_all(children, Duration::from_secs(60));
    assert_eq!(done.len(), 20);
    for (i, out) in done {
        assert_eq!(
            out.status.code(),
            Some(0),
            "pull {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: Value = serde_json::from_slice(&out.stdout).expect("JSON result");
        assert_eq!(j["verified"], true, "pull {i}: {j}");
        let got = std::fs::read(dir.path().join(format!("big-{i}.sif"))).unwrap();
        assert!(got == bytes, "pull {i}: the file differs from the image");
    }
}

#[test]
fn twenty_pulls_at_once_with_default_settings_against_four_workers() {
    twenty_pulls(&[]);
}

#[test]
fn twenty_pulls_at_once_with_one_stream_each_against_four_workers() {
    twenty_pulls(&["--concurrency", "1"]);
}

#[test]
fn a_pull_without_a_hash_to_verify_against_says_so() {
    let server = start(TestServer::builder().download(DownloadMode::Stream));
    let bytes = b"an image from before hashes were SHA-256".to_vec();
    let img = server.add_image("alice", "tools", "old", &["latest"], "amd64", bytes.clone());
    assert!(server.set_image_hash(&img.id, "sif.0b6a31c2-8f0e-4c2d-9a7b-5e4f3d2c1b0a"));
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();

    let out = command(
        dir.path(),
        &url,
        &["pull", "--arch", "amd64", "alice/tools/old", "old.sif"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not verified (the library states no hash)"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: the library states no SHA-256 for library://alice/tools/old:latest: the image was not verified"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.path().join("old.sif")).unwrap(), bytes);

    let out = command(
        dir.path(),
        &url,
        &[
            "pull",
            "--json",
            "--force",
            "--arch",
            "amd64",
            "alice/tools/old",
            "old.sif",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["verified"], false, "{j}");
}
