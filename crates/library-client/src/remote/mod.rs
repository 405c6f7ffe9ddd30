//! The remotes of Apptainer and SingularityCE: their `remote.yaml` files
//! (read, merged as Apptainer merges them, never written) and the service
//! discovery that turns a remote's URI into a library base URL.
//!
//! Reading needs no network; [`discover`] asks the remote's
//! `/assets/config/config.prod.json` through an [`HttpClient`](crate::HttpClient),
//! so proxies, CA files, timeouts and retries apply.
//!
//! ```no_run
//! # async fn demo() -> library_client::Result<()> {
//! use library_client::remote::{self, ConfigPaths, Remotes};
//!
//! let remotes = Remotes::load(&ConfigPaths::from_env())?;
//! if let Some(r) = remotes.active_remote()? {
//!     let http = library_client::HttpClient::new()?;
//!     let services = remote::discover(&http, &Default::default(), r).await?;
//!     println!("{} serves its library at {}", r.name, services.library);
//! }
//! # Ok(()) }
//! ```

mod discovery;
mod file;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use discovery::{discover, endpoint_url, same_origin, Services, NO_LIBRARY_URI};

use crate::error::{Error, Result};

/// The name of the file in each configuration directory.
pub const FILE_NAME: &str = "remote.yaml";

/// Environment variable replacing the system configuration directories
/// (`:`-separated; empty for none), for installations with another
/// `SYSCONFDIR` and for tests.
pub const ENV_SYSTEM_DIRS: &str = "LIBRARY_SYSTEM_CONFIG_DIRS";

/// The system directories probed, in order, when [`ENV_SYSTEM_DIRS`] is unset:
/// distribution packages use `/etc`, source builds `/usr/local/etc`.
pub const SYSTEM_DIRS: [&str; 4] = [
    "/etc/apptainer",
    "/usr/local/etc/apptainer",
    "/etc/singularity",
    "/usr/local/etc/singularity",
];

/// Where the `remote.yaml` files are looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigPaths {
    /// User configuration directories; the first holding a `remote.yaml` is read.
    pub user_dirs: Vec<PathBuf>,
    /// System configuration directories; the first holding a `remote.yaml` is read.
    pub system_dirs: Vec<PathBuf>,
}

impl ConfigPaths {
    /// The directories the process environment names: see [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> ConfigPaths {
        ConfigPaths::from_lookup(|k| std::env::var(k).ok())
    }

    /// The directories `lookup` (an environment) names: `$APPTAINER_CONFIGDIR`,
    /// else `$SINGULARITY_CONFIGDIR`, else `$HOME/.apptainer` then
    /// `$HOME/.singularity`; the system directories of [`ENV_SYSTEM_DIRS`],
    /// else [`SYSTEM_DIRS`]. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ConfigPaths {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let user_dirs = if let Some(d) = get("APPTAINER_CONFIGDIR") {
            vec![PathBuf::from(d)]
        } else if let Some(d) = get("SINGULARITY_CONFIGDIR") {
            vec![PathBuf::from(d)]
        } else if let Some(h) = get("HOME") {
            let h = PathBuf::from(h);
            vec![h.join(".apptainer"), h.join(".singularity")]
        } else {
            Vec::new()
        };
        let system_dirs = match lookup(ENV_SYSTEM_DIRS) {
            Some(v) => v
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => SYSTEM_DIRS.iter().map(PathBuf::from).collect(),
        };
        ConfigPaths {
            user_dirs,
            system_dirs,
        }
    }
}

/// One remote: an endpoint URI (a host with an optional port and path, no
/// scheme) and the library token `remote login` stored for it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remote {
    /// Its name, the key under `Remotes`.
    pub name: String,
    /// `URI`: `host[:port][/path]` (a scheme is accepted too).
    pub uri: String,
    /// `Token`: the library access token, when logged in.
    pub token: Option<String>,
    /// `System`: defined by (or mirroring) the system file.
    pub system: bool,
    /// `Exclusive`: the administrator made it the only remote.
    pub exclusive: bool,
    /// `Insecure`: discovery over plain http.
    pub insecure: bool,
}

impl Remote {
    /// A remote with this name and URI, no token, not system, exclusive nor insecure.
    pub fn new(name: impl Into<String>, uri: impl Into<String>) -> Remote {
        Remote {
            name: name.into(),
            uri: uri.into(),
            token: None,
            system: false,
            exclusive: false,
            insecure: false,
        }
    }

    /// The same remote with a token (an empty one means none).
    pub fn with_token(mut self, token: impl Into<String>) -> Remote {
        let t = token.into();
        self.token = (!t.is_empty()).then_some(t);
        self
    }

    /// The same remote, discovered over http when `yes`.
    pub fn with_insecure(mut self, yes: bool) -> Remote {
        self.insecure = yes;
        self
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("uri", &self.uri)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("system", &self.system)
            .field("exclusive", &self.exclusive)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The remotes of the user and system files, merged.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Remotes {
    /// `Active`: the remote in use, when one is named.
    pub active: Option<String>,
    /// The remotes by name.
    pub remotes: BTreeMap<String, Remote>,
    /// The user file read, if any.
    pub user_file: Option<PathBuf>,
    /// The system file read, if any.
    pub system_file: Option<PathBuf>,
    /// What was accepted but looks wrong (unknown keys, a file others may
    /// read): also logged as warnings; a tool should show them.
    pub warnings: Vec<String>,
}

impl Remotes {
    /// Read and merge the files `paths` names. Missing files are no error
    /// (no file at all gives no remotes); a file that cannot be read or
    /// parsed is, naming the file and the line.
    ///
    /// The merge is Apptainer's: a system remote missing from the user file
    /// is added (without token); a user entry with `System: true` takes
    /// `URI` and `Exclusive` from the system file and keeps its `Token`;
    /// a user entry with `System: false` wins over the system one of the
    /// same name; an `Exclusive` system remote becomes the active one; an
    /// empty user `Active` takes the system's.
    pub fn load(paths: &ConfigPaths) -> Result<Remotes> {
        file::load(paths)
    }

    /// The remote called `name`.
    pub fn get(&self, name: &str) -> Result<&Remote> {
        self.remotes.get(name).ok_or_else(|| {
            Error::Config(format!(
                "{name:?} is not a remote{} (known: {})",
                self.files_shown(),
                self.names()
            ))
        })
    }

    /// The `Active` remote; `None` when no remote is active. An `Active`
    /// naming no remote is an error.
    pub fn active_remote(&self) -> Result<Option<&Remote>> {
        match &self.active {
            None => Ok(None),
            Some(n) => self.get(n).map(Some),
        }
    }

    fn names(&self) -> String {
        if self.remotes.is_empty() {
            return "none".into();
        }
        self.remotes.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    fn files_shown(&self) -> String {
        let files: Vec<String> = [&self.user_file, &self.system_file]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        if files.is_empty() {
            String::new()
        } else {
            format!(" in {}", files.join(" or "))
        }
    }
}
