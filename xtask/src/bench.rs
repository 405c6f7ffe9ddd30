//! `cargo xtask bench`: every benchmark prints a table.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

pub fn run(root: &Path, which: &str) -> Result<()> {
    match which {
        "ref" => bench_ref(root),
        "all" => bench_ref(root),
        other => bail!("unknown benchmark {other:?}: expected ref or all"),
    }
}

/// ns per call of the `library-ref` validators (criterion).
fn bench_ref(root: &Path) -> Result<()> {
    crate::run(
        root,
        Command::new("cargo").args(["bench", "-p", "library-ref", "--bench", "validators"]),
    )
}
