//! `cargo xtask soak`: many concurrent pulls against the in-process test
//! server with faults injected into a share of the part requests; checks
//! every file and that open file descriptors and memory stay flat. Runs
//! the `library-soak` binary of the `library-e2e` crate in release mode.

use std::path::Path;

use anyhow::{bail, Result};

pub fn run(root: &Path, pulls: usize, concurrency: usize, fault_rate: f64) -> Result<()> {
    if pulls == 0 || concurrency == 0 || !(0.0..1.0).contains(&fault_rate) {
        bail!("need --pulls >= 1, --concurrency >= 1 and 0 <= --fault-rate < 1");
    }
    crate::run(
        root,
        crate::cargo()
            .args([
                "run",
                "--release",
                "-p",
                "library-e2e",
                "--bin",
                "library-soak",
                "--",
            ])
            .args(["--pulls", &pulls.to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--fault-rate", &fault_rate.to_string()]),
    )
}
