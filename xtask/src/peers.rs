//! Real peer servers for the tests (nginx, an OCI registry, S3), started on
//! 127.0.0.1 by the scripts in `scripts/peers/` and stopped by the PIDs those
//! scripts recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// One peer server to start.
pub struct Peer {
    /// Its name, and the directory under the state directory it runs in.
    pub label: &'static str,
    /// `scripts/peers/start-SCRIPT.sh`.
    pub script: &'static str,
    /// Settings passed to the script.
    pub env: &'static [(&'static str, &'static str)],
    /// Rename the variables it exports that start with the first prefix
    /// to start with the second (two peers of one kind export the same names).
    pub rename: Option<(&'static str, &'static str)>,
}

/// The peers that were started, with the environment their scripts wrote.
pub struct Peers {
    state: PathBuf,
    scripts: PathBuf,
    /// Variables from every started peer's `NAME.env` file.
    pub env: BTreeMap<String, String>,
}

impl Peers {
    /// Start each peer: `scripts/peers/start-SCRIPT.sh STATE_DIR/LABEL`
    /// with the given environment.
    pub fn start(root: &Path, state: &Path, peers_wanted: &[Peer]) -> Result<Peers> {
        std::fs::create_dir_all(state)?;
        let mut peers = Peers {
            state: state.to_path_buf(),
            scripts: root.join("scripts/peers"),
            env: BTreeMap::new(),
        };
        for peer in peers_wanted {
            let name = peer.label;
            let script = peers.scripts.join(format!("start-{}.sh", peer.script));
            let dir = state.join(name);
            eprintln!("xtask: starting peer {name}");
            let status = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .envs(peer.env.iter().copied())
                .stdout(std::process::Stdio::null())
                .status()
                .with_context(|| format!("running {}", script.display()))?;
            if !status.success() {
                peers.stop();
                bail!(
                    "peer {name} did not start ({status}); see {}",
                    dir.display()
                );
            }
            // Every script leaves NAME.env files of KEY=VALUE lines.
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.extension().and_then(|e| e.to_str()) == Some("env") {
                    let text = std::fs::read_to_string(&path)?;
                    for line in text.lines() {
                        if let Some((k, v)) = line.split_once('=') {
                            let v = v.trim_matches(|c| c == '\'' || c == '"');
                            let k = k.trim();
                            let k = match peer.rename {
                                Some((from, to)) if k.starts_with(from) => {
                                    format!("{to}{}", &k[from.len()..])
                                }
                                _ => k.to_string(),
                            };
                            peers.env.insert(k, v.to_string());
                        }
                    }
                }
            }
        }
        Ok(peers)
    }

    /// Stop every peer started under this state directory, by recorded PID.
    pub fn stop(&self) {
        let Ok(entries) = std::fs::read_dir(&self.state) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                let _ = Command::new("bash")
                    .arg(self.scripts.join("stop.sh"))
                    .arg(entry.path())
                    .status();
            }
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop();
    }
}
