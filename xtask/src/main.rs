//! Project tasks: `cargo xtask <command>`.
//!
//! - `ci`: format check, clippy with warnings denied, rustdoc without warnings, and `test`.
//! - `test`: start the real peer servers the tests need (on 127.0.0.1), run every
//!   test of the workspace including those that need the peers, stop the peers.
//! - `bench`: the benchmarks, each printing a table.
//! - `fuzz`: run a cargo-fuzz target for a given time.
//! - `demo`: the main job against the embedded test server.

mod bench;
mod demo;
mod fuzz;
mod peers;
mod soak;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project tasks for library-client")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// fmt --check, clippy -D warnings, rustdoc -D warnings, then `test`.
    Ci,
    /// Start the peer servers, run every test (including the ones that need peers), stop them.
    Test {
        /// Extra arguments passed to `cargo test` after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks and print their tables.
    Bench {
        /// Which benchmark: `ref`, `transport`, `cache`, `wan` or `all`.
        #[arg(default_value = "all")]
        which: String,
    },
    /// Run a fuzz target (cargo-fuzz, installed on first use) for a given time.
    Fuzz {
        /// Target name (see `fuzz/fuzz_targets/`), or `all`.
        #[arg(default_value = "all")]
        target: String,
        /// Seconds to run each target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Run the demo: push, search, pull and delete against the embedded test server.
    Demo,
    /// Soak: many concurrent pulls with injected faults; files checked, fds and RSS flat.
    Soak {
        /// Pulls in all.
        #[arg(long, default_value_t = 500)]
        pulls: usize,
        /// Pulls at once.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Share of part requests that get a (retryable) fault.
        #[arg(long, default_value_t = 0.05)]
        fault_rate: f64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = root();
    match cli.command {
        Cmd::Ci => ci(&root),
        Cmd::Test { args } => test(&root, &args),
        Cmd::Bench { which } => bench::run(&root, &which),
        Cmd::Fuzz { target, seconds } => fuzz::run(&root, &target, seconds),
        Cmd::Demo => demo::run(&root),
        Cmd::Soak {
            pulls,
            concurrency,
            fault_rate,
        } => soak::run(&root, pulls, concurrency, fault_rate),
    }
}

/// The workspace root (the parent of `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Run a command in the workspace root; fail with its status if it fails.
pub(crate) fn run(root: &Path, cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root);
    // The program and its arguments; not the environment (peer settings).
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("xtask: {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci(root: &Path) -> Result<()> {
    run(root, cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        root,
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        root,
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    test(root, &[])
}

/// The peers the test suite needs, with the settings each is started with.
const PEERS: &[peers::Peer] = &[
    peers::Peer {
        label: "nginx",
        script: "nginx",
        env: &[],
        rename: None,
    },
    peers::Peer {
        label: "oci-registry",
        script: "oci-registry",
        env: &[],
        rename: None,
    },
    // A second registry with token authentication (a token server beside
    // it); its variables are OCI_TOKREG_*.
    peers::Peer {
        label: "oci-registry-token",
        script: "oci-registry",
        env: &[
            ("OCI_REGISTRY_AUTH", "token"),
            ("OCI_REGISTRY_INSTANCE", "tokreg"),
        ],
        rename: None,
    },
    // moto checks the multipart flow but no signatures; its variables are S3_*.
    // A registry that wants Basic credentials itself (htpasswd); its
    // variables are OCI_BASIC_*.
    peers::Peer {
        label: "oci-registry-basic",
        script: "oci-registry",
        env: &[
            ("OCI_REGISTRY_AUTH", "htpasswd"),
            ("OCI_REGISTRY_INSTANCE", "basic"),
        ],
        rename: None,
    },
    // A registry in token mode whose token server wants Basic credentials;
    // its variables are OCI_TOKBASIC_*.
    peers::Peer {
        label: "oci-registry-tokbasic",
        script: "oci-registry",
        env: &[
            ("OCI_REGISTRY_AUTH", "token"),
            ("OCI_REGISTRY_INSTANCE", "tokbasic"),
            ("OCI_TOKEN_USER", "ci-robot"),
            ("OCI_TOKEN_PASS", "pw-5d2c9e71"),
        ],
        rename: None,
    },
    peers::Peer {
        label: "s3-moto",
        script: "s3",
        env: &[("S3_SERVER", "moto")],
        rename: None,
    },
    // s3s-fs checks SigV4 signatures of presigned URLs; its variables become S3S_*.
    peers::Peer {
        label: "s3s",
        script: "s3",
        env: &[("S3_SERVER", "s3s-fs")],
        rename: Some(("S3_", "S3S_")),
    },
];

fn test(root: &Path, extra: &[String]) -> Result<()> {
    let state = root.join("target/peers");
    let peers = peers::Peers::start(root, &state, PEERS)?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--", "--include-ignored"])
        .args(extra)
        .envs(&peers.env)
        .env("LIBRARY_PEERS", "1");
    let result = run(root, &mut cmd);
    drop(peers);
    result
}
