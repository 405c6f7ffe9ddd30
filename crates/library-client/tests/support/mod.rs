//! Shared helpers of the client's end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use library_client::Client;
use library_testserver::{RecordedRequest, TestServer};
use sha2::{Digest, Sha256};

pub const TOKEN: &str = "test-token-5f2a";
pub const UA: &str = "library-client-tests/1.0";

/// A client of `server` with the test token and user agent.
pub fn client(server: &TestServer) -> Client {
    Client::builder()
        .base_url(server.url().as_str())
        .token(TOKEN)
        .user_agent(UA)
        .retry(
            library_client::RetryConfig::default()
                .with_max_retries(3)
                .with_backoff(
                    std::time::Duration::from_millis(5),
                    std::time::Duration::from_millis(50),
                ),
        )
        .build()
        .unwrap()
}

/// A file of `len` pseudo-random bytes (deterministic per `seed`).
pub fn random_file(dir: &Path, name: &str, len: u64, seed: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    path
}

pub fn sha256_hex(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

/// The requests whose path ends with or contains `needle`.
pub fn matching<'a>(
    reqs: &'a [RecordedRequest],
    method: &str,
    needle: &str,
) -> Vec<&'a RecordedRequest> {
    reqs.iter()
        .filter(|r| r.method.as_str() == method && r.path.contains(needle))
        .collect()
}

/// Files in `dir` other than `keep`.
pub fn stray_files(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}
