//! A shared image cache in Apptainer's layout.
//!
//! Entries are files `<dir>/cache/library/sha256.<hex>`, named by the
//! SHA-256 of the image: the same place and name as Apptainer's and
//! SingularityCE's library cache, so an image pulled by one tool is a hit
//! for the other. A pull through a [`Cache`] (see
//! [`Pull::cache`](crate::Pull::cache)) fetches no image byte when the
//! entry is there, and downloads each image once however many processes
//! ask for it at the same time: a per-hash advisory lock
//! (`.sha256.<hex>.lock` beside the entry, `flock(2)`) is taken before
//! downloading, and a second process waits for it and then finds the hit.
//! The lock is only an optimisation: an entry is always written to a
//! temporary file in the cache directory, checked against its hash and
//! renamed into place, so where locks do not reach other nodes the worst
//! case is a duplicate download, never a bad entry.
//!
//! The destination of a pull is produced from the entry by a reflink where
//! the file system allows it, else by a copy; either way its bytes are
//! hashed, and an entry that does not match its name is evicted and
//! downloaded again. It is never a hard link.

pub(crate) mod fill;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub(crate) use fill::{pull_through, up_to_date};

/// How a pull used the cache ([`PulledImage::cache`](crate::PulledImage::cache)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheUse {
    /// No cache was asked for (or the image has no SHA-256 to key it by).
    None,
    /// The destination already held the image (same size and SHA-256):
    /// nothing was fetched or written.
    UpToDate,
    /// The entry was in the cache: no image byte was fetched.
    Hit,
    /// The image was downloaded into the cache, then the destination was
    /// produced from the entry.
    Filled,
    /// The entry was found corrupt (its bytes do not match its name): it
    /// was evicted, and the image downloaded again.
    Refilled,
    /// The cache could not be used (`reason`), and the pull went on
    /// without it.
    Unusable {
        /// Why, naming the location.
        reason: String,
    },
}

/// A library image cache: a directory holding `cache/library/sha256.<hex>`
/// entries, as Apptainer's `$APPTAINER_CACHEDIR` does.
///
/// ```
/// let cache = library_client::Cache::new("/scratch/me/apptainer");
/// assert_eq!(
///     cache.entry_path(&"ab".repeat(32)),
///     std::path::Path::new("/scratch/me/apptainer/cache/library").join(format!("sha256.{}", "ab".repeat(32)))
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

/// One entry of a [`Cache`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheEntry {
    /// Its name, `sha256.<hex>`.
    pub hash: String,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written or used for a pull (its modification time).
    pub last_used: SystemTime,
    /// The `library://` references this tool pulled it as, when known.
    pub refs: Vec<String>,
}

/// What [`Cache::clean`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cleaned {
    /// The entries removed.
    pub removed: Vec<CacheEntry>,
    /// The entries kept because a pull holds their lock.
    pub locked: Vec<CacheEntry>,
}

/// Temporary files of fills older than this are removed by later pulls.
pub(crate) const STALE_TEMP: Duration = Duration::from_secs(24 * 60 * 60);

impl Cache {
    /// The cache in `dir` (what `$APPTAINER_CACHEDIR` names): entries are
    /// in `dir/cache/library`.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// Where Apptainer keeps its cache: `$APPTAINER_CACHEDIR`, else
    /// `$SINGULARITY_CACHEDIR`, else the user configuration directory
    /// (`$APPTAINER_CONFIGDIR`, else `$SINGULARITY_CONFIGDIR`, else
    /// `~/.apptainer`, as for `remote.yaml`), so that entries are
    /// in `~/.apptainer/cache/library`. `None` when no home directory is
    /// known. Empty values count as unset.
    pub fn default_location() -> Option<Cache> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = var("APPTAINER_CACHEDIR").or_else(|| var("SINGULARITY_CACHEDIR")) {
            return Some(Cache::new(d));
        }
        if let Some(d) = var("APPTAINER_CONFIGDIR").or_else(|| var("SINGULARITY_CONFIGDIR")) {
            return Some(Cache::new(d));
        }
        var("HOME").map(|h| Cache::new(PathBuf::from(h).join(".apptainer")))
    }

    /// The directory this cache was made with.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of library entries, `dir/cache/library`.
    pub fn library_dir(&self) -> PathBuf {
        self.dir.join("cache").join("library")
    }

    /// The file of the entry for the image whose SHA-256 is `hex`.
    pub fn entry_path(&self, hex: &str) -> PathBuf {
        self.library_dir().join(format!("sha256.{hex}"))
    }

    pub(crate) fn lock_path(&self, hex: &str) -> PathBuf {
        self.library_dir().join(format!(".sha256.{hex}.lock"))
    }

    /// What this tool knows beside Apptainer's layout (the references an
    /// entry was pulled as), in a directory Apptainer does not look in.
    fn refs_path(&self, hex: &str) -> PathBuf {
        self.dir
            .join("cache")
            .join("scs-library")
            .join("refs")
            .join(format!("sha256.{hex}"))
    }

    /// Creates the directories (mode 0700, as Apptainer does, for those it
    /// creates) and checks that entries can be written; the error says
    /// why the cache cannot be used.
    pub(crate) fn prepare(&self) -> std::result::Result<(), String> {
        use std::os::unix::fs::DirBuilderExt;
        let lib = self.library_dir();
        let unwritable = |e: &dyn std::fmt::Display| {
            format!("cache location {} is not writable: {e}", self.dir.display())
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&lib)
            .map_err(|e| unwritable(&e))?;
        let probe = lib.join(format!(".probe.{:08x}", fastrand_u32()));
        File::create(&probe).map_err(|e| unwritable(&e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    /// Records that the entry `hex` was pulled as `reference` (best effort).
    pub(crate) fn record_ref(&self, hex: &str, reference: &str) {
        use std::io::Write;
        let path = self.refs_path(hex);
        if read_refs(&path).iter().any(|r| r == reference) {
            return;
        }
        if let Some(p) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(p);
        }
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{reference}\n").as_bytes()));
        if let Err(e) = r {
            tracing::debug!(path = %path.display(), error = %e, "cannot record the reference");
        }
    }

    /// The entries, by name. A cache directory that does not exist has
    /// none.
    pub fn entries(&self) -> std::io::Result<Vec<CacheEntry>> {
        let lib = self.library_dir();
        let rd = match std::fs::read_dir(&lib) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for item in rd {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_prefix("sha256.") else {
                continue;
            };
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            out.push(CacheEntry {
                refs: read_refs(&self.refs_path(hex)),
                hash: name,
                path: item.path(),
                size: meta.len(),
                last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| a.hash.cmp(&b.hash));
        Ok(out)
    }

    /// Removes the entries (only those last used more than `older_than`
    /// ago, when given), never one whose lock a pull holds. Temporary
    /// files of fills older than a day go too.
    pub fn clean(&self, older_than: Option<Duration>) -> std::io::Result<Cleaned> {
        let now = SystemTime::now();
        let mut done = Cleaned::default();
        for entry in self.entries()? {
            let age = now.duration_since(entry.last_used).unwrap_or_default();
            if older_than.is_some_and(|min| age < min) {
                continue;
            }
            let hex = entry.hash.trim_start_matches("sha256.").to_string();
            let Some(lock) = fill::try_lock_exclusive(&self.lock_path(&hex)) else {
                done.locked.push(entry);
                continue;
            };
            match std::fs::remove_file(&entry.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let _ = std::fs::remove_file(self.refs_path(&hex));
            drop(lock);
            done.removed.push(entry);
        }
        fill::remove_stale_temps(&self.library_dir(), STALE_TEMP);
        Ok(done)
    }
}

fn read_refs(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut refs: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !refs.iter().any(|r| r == line) {
            refs.push(line.to_string());
        }
    }
    refs
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u32
}
