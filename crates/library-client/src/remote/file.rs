//! Reading `remote.yaml` files and merging the user's with the system's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigPaths, Remote, Remotes, FILE_NAME};
use crate::error::{Error, Result};

/// The schema of Apptainer's `remote.yaml` (its Go field names). Unknown
/// keys are kept in `extra` so that they can be warned about.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(rename = "Active", default)]
    active: Option<String>,
    #[serde(rename = "Remotes", default)]
    remotes: Option<BTreeMap<String, Option<FileRemote>>>,
    #[serde(rename = "Credentials", default)]
    _credentials: Option<yaml_serde::Value>,
    #[serde(flatten)]
    extra: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct FileRemote {
    #[serde(rename = "URI", default)]
    uri: Option<String>,
    #[serde(rename = "Token", default)]
    token: Option<String>,
    #[serde(rename = "System", default)]
    system: Option<bool>,
    #[serde(rename = "Exclusive", default)]
    exclusive: Option<bool>,
    #[serde(rename = "Insecure", default)]
    insecure: Option<bool>,
    #[serde(rename = "Keyservers", default)]
    _keyservers: Option<yaml_serde::Value>,
    #[serde(flatten)]
    extra: BTreeMap<String, yaml_serde::Value>,
}

/// One file, parsed.
struct Parsed {
    path: PathBuf,
    active: Option<String>,
    remotes: BTreeMap<String, Remote>,
}

pub(super) fn load(paths: &ConfigPaths) -> Result<Remotes> {
    let mut warnings = Vec::new();
    let user = first_file(&paths.user_dirs)
        .map(|p| read(&p, true, &mut warnings))
        .transpose()?;
    let system = first_file(&paths.system_dirs)
        .map(|p| read(&p, false, &mut warnings))
        .transpose()?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut out = Remotes {
        user_file: user.as_ref().map(|u| u.path.clone()),
        system_file: system.as_ref().map(|s| s.path.clone()),
        warnings,
        ..Remotes::default()
    };
    match (user, system) {
        (None, None) => {}
        (Some(one), None) | (None, Some(one)) => {
            out.active = one.active;
            out.remotes = one.remotes;
        }
        (Some(user), Some(system)) => {
            let (active, remotes) = merge(user, system);
            out.active = active;
            out.remotes = remotes;
        }
    }
    tracing::debug!(
        user_file = ?out.user_file,
        system_file = ?out.system_file,
        active = ?out.active,
        remotes = out.remotes.len(),
        "remotes read"
    );
    Ok(out)
}

/// Apptainer's `SyncFrom` of the system file into the user's.
fn merge(user: Parsed, system: Parsed) -> (Option<String>, BTreeMap<String, Remote>) {
    let mut active = user.active;
    let mut remotes = user.remotes;
    for (name, sys) in system.remotes {
        match remotes.get_mut(&name) {
            Some(mine) if !mine.system => {
                tracing::debug!("{name} defined both globally and individually, using individual");
            }
            Some(mine) => {
                mine.uri = sys.uri.clone();
                mine.exclusive = sys.exclusive;
            }
            None => {
                remotes.insert(
                    name.clone(),
                    Remote {
                        token: None,
                        system: true,
                        ..sys.clone()
                    },
                );
            }
        }
        if sys.exclusive {
            active = Some(name);
        }
    }
    if active.is_none() {
        active = system.active;
    }
    (active, remotes)
}

fn first_file(dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(FILE_NAME))
        .find(|p| std::fs::metadata(p).is_ok())
}

fn read(path: &Path, is_user: bool, warnings: &mut Vec<String>) -> Result<Parsed> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if is_user {
        check_mode(path, warnings);
    }
    let shown = path.display();
    let empty = matches!(
        yaml_serde::from_str::<yaml_serde::Value>(&text),
        Ok(yaml_serde::Value::Null)
    );
    let cfg: FileConfig = if empty {
        FileConfig::default()
    } else {
        yaml_serde::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(", line {} column {}", l.line(), l.column()))
                .unwrap_or_default();
            Error::Config(format!("{shown}{at}: not a valid remote.yaml: {e}"))
        })?
    };
    for k in cfg.extra.keys() {
        warnings.push(format!("{shown}: unknown key {k:?} ignored"));
    }
    let mut remotes = BTreeMap::new();
    for (name, r) in cfg.remotes.unwrap_or_default() {
        let r = r.unwrap_or_default();
        for k in r.extra.keys() {
            warnings.push(format!(
                "{shown}: unknown key {k:?} of remote {name:?} ignored"
            ));
        }
        let remote = Remote {
            name: name.clone(),
            uri: r.uri.unwrap_or_default().trim().to_string(),
            token: r
                .token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            system: r.system.unwrap_or(false),
            exclusive: r.exclusive.unwrap_or(false),
            insecure: r.insecure.unwrap_or(false),
        };
        remotes.insert(name, remote);
    }
    Ok(Parsed {
        path: path.to_path_buf(),
        active: cfg.active.filter(|a| !a.trim().is_empty()),
        remotes,
    })
}

/// A user file others may read gets a warning: it holds tokens.
#[cfg(unix)]
fn check_mode(path: &Path, warnings: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "{} may be read by others than its owner (mode {mode:04o}) and holds access tokens: chmod 600 it",
                path.display()
            ));
        }
    }
}

#[cfg(not(unix))]
fn check_mode(_: &Path, _: &mut Vec<String>) {}
