//! The image cache from the command line: which cache a pull uses
//! (`--no-cache`, `APPTAINER_DISABLE_CACHE`, `APPTAINER_CACHEDIR` and their
//! `SINGULARITY_` forms), what a pull says about it, and
//! `scs-library cache list|clean|dir`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use library_client::{Cache, CacheEntry, CacheUse, PulledImage};
use serde::Serialize;

use crate::cli::Global;
use crate::errors::CliError;
use crate::output::{self, out, Table};

/// `cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// The `cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the cached images: hash, size, last use, and the references this tool pulled them as
    List,
    /// Remove cached images (all, or those not used for a while); an image a pull is filling is kept
    #[command(after_help = "Examples:
  scs-library cache clean
  scs-library cache clean --older-than 30d")]
    Clean {
        /// Only images last used longer ago than this: a number with s, m, h, d or w (a plain number is days)
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Option<Duration>,
    },
    /// Print the cache directory (what APPTAINER_CACHEDIR names)
    Dir,
}

/// `30d`, `12h`, `90m`, `45s`, `2w`, or a plain number of days.
fn parse_age(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "d"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not an age such as 30d, 12h or 90m"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h, d or w")),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Go's `strconv.ParseBool`, as Apptainer reads `APPTAINER_DISABLE_CACHE`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether the environment disables the cache: `APPTAINER_DISABLE_CACHE`,
/// else `SINGULARITY_DISABLE_CACHE` (empty counts as unset). A value that
/// is not a boolean is a usage error naming the variable.
fn disabled_by_env() -> Result<bool, CliError> {
    for var in ["APPTAINER_DISABLE_CACHE", "SINGULARITY_DISABLE_CACHE"] {
        let Ok(v) = std::env::var(var) else { continue };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        return parse_bool(v).ok_or_else(|| {
            CliError::usage(
                format!("{var}={v:?} is not a boolean"),
                format!("set {var} to true or false (or 1 or 0), or unset it"),
            )
        });
    }
    Ok(false)
}

/// The cache a pull goes through: none with `--no-cache` or when the
/// environment disables it, else Apptainer's location.
pub fn for_pull(no_cache: bool) -> Result<Option<Cache>, CliError> {
    let disabled = disabled_by_env()?;
    if no_cache || disabled {
        return Ok(None);
    }
    Ok(Cache::default_location())
}

/// Tells the user what the cache did for a pull, on stderr: a warning for
/// a cache that could not be used or an entry that was corrupt.
pub fn report(pulled: &PulledImage, quiet: bool) {
    match &pulled.cache {
        CacheUse::Unusable { reason } => {
            eprintln!("warning: cache disabled: {reason}; pulling without it")
        }
        CacheUse::Refilled => eprintln!(
            "warning: the cached image sha256.{} did not match its hash: it was evicted and downloaded again",
            pulled.sha256
        ),
        CacheUse::Hit if !quiet => eprintln!("using the cached image sha256.{}", pulled.sha256),
        _ => {}
    }
}

/// How a pull used the cache, as `pull --json` says it.
pub fn use_name(u: &CacheUse) -> &'static str {
    match u {
        CacheUse::None => "none",
        CacheUse::UpToDate => "up-to-date",
        CacheUse::Hit => "hit",
        CacheUse::Filled => "filled",
        CacheUse::Refilled => "refilled",
        CacheUse::Unusable { .. } => "unusable",
        _ => "other",
    }
}

fn location() -> Result<Cache, CliError> {
    Cache::default_location().ok_or_else(|| {
        CliError::usage(
            "no cache location: neither APPTAINER_CACHEDIR nor HOME is set",
            "set APPTAINER_CACHEDIR",
        )
    })
}

#[derive(Debug, Serialize)]
struct EntryJson {
    hash: String,
    path: PathBuf,
    size: u64,
    last_used: String,
    refs: Vec<String>,
}

fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn shown_time(t: SystemTime) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from(t)
        .format(&fmt)
        .unwrap_or_default()
}

fn to_json(e: &CacheEntry) -> EntryJson {
    EntryJson {
        hash: e.hash.clone(),
        path: e.path.clone(),
        size: e.size,
        last_used: rfc3339(e.last_used),
        refs: e.refs.clone(),
    }
}

fn table(entries: &[CacheEntry]) -> String {
    let mut t = Table::new(["HASH", "SIZE", "LAST USED", "PULLED AS"]);
    for e in entries {
        t.row(vec![
            output::short_hash(&e.hash),
            output::size(e.size),
            shown_time(e.last_used),
            if e.refs.is_empty() {
                "-".to_string()
            } else {
                e.refs.join(", ")
            },
        ]);
    }
    t.render()
}

/// `cache list|clean|dir`.
pub fn run(g: &Global, a: &CacheArgs) -> Result<(), CliError> {
    let cache = location()?;
    let io = |doing: &str, e: std::io::Error| {
        CliError::other(
            format!("{doing} {}: {e}", cache.library_dir().display()),
            "check the cache directory (APPTAINER_CACHEDIR) and its permissions",
        )
    };
    match &a.command {
        CacheCommand::Dir => {
            if g.json {
                output::json(&serde_json::json!({
                    "dir": cache.dir(),
                    "library": cache.library_dir(),
                }));
            } else {
                out(&cache.dir().display().to_string());
            }
        }
        CacheCommand::List => {
            let entries = cache.entries().map_err(|e| io("reading", e))?;
            if g.json {
                output::json(&entries.iter().map(to_json).collect::<Vec<_>>());
            } else if entries.is_empty() {
                if !g.quiet {
                    out(&format!(
                        "no cached images in {}",
                        cache.library_dir().display()
                    ));
                }
            } else {
                out(&table(&entries));
            }
        }
        CacheCommand::Clean { older_than } => {
            let done = cache.clean(*older_than).map_err(|e| io("cleaning", e))?;
            if g.json {
                output::json(&serde_json::json!({
                    "removed": done.removed.iter().map(to_json).collect::<Vec<_>>(),
                    "kept_locked": done.locked.iter().map(to_json).collect::<Vec<_>>(),
                }));
            } else if !g.quiet {
                let freed: u64 = done.removed.iter().map(|e| e.size).sum();
                out(&format!(
                    "removed {} cached image(s), {}",
                    done.removed.len(),
                    output::size(freed)
                ));
                for e in &done.locked {
                    out(&format!("kept {} (a pull is using it)", e.hash));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_booleans() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("7"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("3y").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("99999999999999999999w").is_err());
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
