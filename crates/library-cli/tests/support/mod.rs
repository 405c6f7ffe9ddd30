//! What the tests of `scs-library` share: the binary with a clean
//! environment, and a test server started from a synchronous test.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

use library_testserver::{TestServer, TestServerBuilder};

/// The `scs-library` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_scs-library");

/// Every variable of the environment that changes what `scs-library` does.
const VARS: &[&str] = &[
    "LIBRARY_URL",
    "LIBRARY_TOKEN",
    "LIBRARY_TOKEN_FILE",
    "LIBRARY_RETRIES",
    "LIBRARY_CONNECT_TIMEOUT",
    "LIBRARY_IDLE_TIMEOUT",
    "LIBRARY_TIMEOUT",
    "RUST_LOG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "APPTAINER_CACHEDIR",
    "SINGULARITY_CACHEDIR",
    "APPTAINER_DISABLE_CACHE",
    "SINGULARITY_DISABLE_CACHE",
    "APPTAINER_CONFIGDIR",
];

/// `scs-library` run in `dir`, with none of the variables it reads set
/// and no standard input: a test sets what it needs. The image cache is
/// off (`APPTAINER_DISABLE_CACHE=1`), so that no test reads or fills the
/// user's cache; [`command_with_cache`] turns it on.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).stdin(Stdio::null());
    for var in VARS {
        cmd.env_remove(var);
    }
    // Apptainer's and SingularityCE's variables, the user's remote.yaml and
    // the machine's system remote.yaml never reach a test: HOME is the
    // test's directory, and no system directory is read.
    for (var, _) in std::env::vars_os() {
        let v = var.to_string_lossy();
        if v.starts_with("APPTAINER_") || v.starts_with("SINGULARITY_") {
            cmd.env_remove(&var);
        }
    }
    cmd.env("HOME", dir).env("LIBRARY_SYSTEM_CONFIG_DIRS", "");
    cmd.env("APPTAINER_DISABLE_CACHE", "1");
    cmd
}

/// [`command`] with the image cache on, in `cache_dir` (as
/// `APPTAINER_CACHEDIR`).
pub fn command_with_cache(dir: &Path, cache_dir: &Path) -> Command {
    let mut cmd = command(dir);
    cmd.env_remove("APPTAINER_DISABLE_CACHE")
        .env("APPTAINER_CACHEDIR", cache_dir);
    cmd
}

/// Starts a test server from a synchronous test (the server runs on a
/// runtime of its own).
pub fn start(builder: TestServerBuilder) -> TestServer {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(builder.start())
        .expect("test server starts")
}
