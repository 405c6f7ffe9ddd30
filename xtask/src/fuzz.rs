//! `cargo xtask fuzz`: run cargo-fuzz targets for a bounded time.
//!
//! cargo-fuzz needs nightly-only compiler flags; the stable toolchain accepts
//! them with `RUSTC_BOOTSTRAP=1`, which is set for the fuzz build only.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub fn run(root: &Path, target: &str, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz(root)?;
    let targets = list_targets(root)?;
    let chosen: Vec<String> = if target == "all" {
        targets
    } else if targets.iter().any(|t| t == target) {
        vec![target.to_string()]
    } else {
        bail!(
            "unknown fuzz target {target:?}; known: {}",
            targets.join(", ")
        );
    };
    for t in &chosen {
        let corpus = root.join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        crate::run(
            root,
            Command::new("cargo")
                .args(["fuzz", "run", "--fuzz-dir", "fuzz", t])
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .env("RUSTC_BOOTSTRAP", "1"),
        )
        .with_context(|| format!("fuzz target {t} failed"))?;
        eprintln!("xtask: fuzz target {t}: no crash in {seconds} s");
    }
    Ok(())
}

fn list_targets(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join("fuzz/fuzz_targets"))? {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) == Some("rs") {
            out.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn ensure_cargo_fuzz(root: &Path) -> Result<()> {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        crate::run(
            root,
            Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    Ok(())
}
