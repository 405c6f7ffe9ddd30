//! Real peer servers for the tests (nginx, an OCI registry, S3), started on
//! 127.0.0.1 by the scripts in `scripts/peers/` and stopped by the PIDs those
//! scripts recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The peers that were started, with the environment their scripts wrote.
pub struct Peers {
    state: PathBuf,
    scripts: PathBuf,
    /// Variables from every started peer's `NAME.env` file.
    pub env: BTreeMap<String, String>,
}

impl Peers {
    /// Start each named peer (`scripts/peers/start-NAME.sh STATE_DIR`).
    pub fn start(root: &Path, state: &Path, names: &[(&str, &[(&str, &str)])]) -> Result<Peers> {
        std::fs::create_dir_all(state)?;
        let mut peers = Peers {
            state: state.to_path_buf(),
            scripts: root.join("scripts/peers"),
            env: BTreeMap::new(),
        };
        for (name, vars) in names {
            let script = peers.scripts.join(format!("start-{name}.sh"));
            eprintln!("xtask: starting peer {name}");
            let status = Command::new("bash")
                .arg(&script)
                .arg(state)
                .envs(vars.iter().copied())
                .stdout(std::process::Stdio::null())
                .status()
                .with_context(|| format!("running {}", script.display()))?;
            if !status.success() {
                peers.stop();
                bail!(
                    "peer {name} did not start ({status}); see {}",
                    state.display()
                );
            }
        }
        // Every script leaves NAME.env files of KEY=VALUE lines.
        for entry in std::fs::read_dir(state)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("env") {
                let text = std::fs::read_to_string(&path)?;
                for line in text.lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        let v = v.trim_matches(|c| c == '\'' || c == '"');
                        peers.env.insert(k.trim().to_string(), v.to_string());
                    }
                }
            }
        }
        Ok(peers)
    }

    /// Stop every peer started from this state directory, by recorded PID.
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(self.scripts.join("stop.sh"))
            .arg(&self.state)
            .status();
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop();
    }
}
