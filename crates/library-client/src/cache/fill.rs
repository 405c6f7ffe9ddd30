//! A pull through the cache: the hit, the locked fill, the eviction of a
//! corrupt entry, and the destination produced from the entry.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use library_transport::{Destination, Downloaded, NoProgress, Progress};
use rustix::fs::{flock, FlockOperation};

use super::{Cache, CacheUse, STALE_TEMP};
use crate::error::{Error, Result};

/// A pull's destination and how it is to be produced.
pub(crate) struct Target<'a> {
    pub(crate) dest: &'a Path,
    pub(crate) replace: bool,
    pub(crate) max_size: u64,
    pub(crate) progress: Arc<dyn Progress>,
}

/// A held advisory lock; released when dropped (or when the process dies:
/// the kernel releases it).
pub(crate) struct EntryLock {
    _file: File,
}

fn open_lock(path: &Path) -> Option<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no lock file; going on without the lock");
            None
        }
    }
}

/// The exclusive lock at `path` if no one holds it now; `None` when it is
/// held. A lock file that cannot be made gives an unlocked pass.
pub(crate) fn try_lock_exclusive(path: &Path) -> Option<Option<EntryLock>> {
    let Some(file) = open_lock(path) else {
        return Some(None);
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Some(Some(EntryLock { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => None,
        Err(_) => Some(None),
    }
}

/// Waits for the lock at `path` (shared or exclusive), saying so through
/// `progress` once. The wait ends when the future is dropped. `None` when
/// the file system has no locks: then the pull goes on without one.
async fn lock(
    path: &Path,
    exclusive: bool,
    progress: &dyn Progress,
    what: &str,
) -> Option<EntryLock> {
    match lock_until(path, exclusive, progress, what, None).await {
        Locked::Held(l) => Some(l),
        Locked::Appeared | Locked::Unlocked => None,
    }
}

/// What [`lock_until`] ended with.
enum Locked {
    Held(EntryLock),
    /// The file waited for appeared first.
    Appeared,
    /// No lock on this file system.
    Unlocked,
}

/// [`lock`], except that the wait also ends when `appears` exists (an
/// entry another process has filled: then there is no need to wait for
/// the lock, which the readers of that entry may hold for a while).
async fn lock_until(
    path: &Path,
    exclusive: bool,
    progress: &dyn Progress,
    what: &str,
    appears: Option<&Path>,
) -> Locked {
    let Some(file) = open_lock(path) else {
        return Locked::Unlocked;
    };
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    let mut delay = Duration::from_millis(5);
    let mut told = false;
    loop {
        match flock(&file, op) {
            Ok(()) => return Locked::Held(EntryLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                if appears.is_some_and(Path::is_file) {
                    return Locked::Appeared;
                }
                if !told {
                    told = true;
                    tracing::info!(entry = what, "waiting for another pull of the same image");
                    progress.message(&format!(
                        "waiting for another pull of {what} to fill the cache"
                    ));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot lock; going on without the lock");
                return Locked::Unlocked;
            }
        }
    }
}

/// Removes the temporary files of fills (`.sha256.<hex>.<random>.tmp`)
/// in `dir` last modified more than `age` ago: those of pulls that were
/// killed.
pub(crate) fn remove_stale_temps(dir: &Path, age: Duration) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for item in rd.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(".sha256.") && name.ends_with(".tmp")) {
            continue;
        }
        let Ok(modified) = item.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if now.duration_since(modified).unwrap_or_default() > age {
            match std::fs::remove_file(item.path()) {
                Ok(()) => {
                    tracing::info!(path = %item.path().display(), "removed a temporary file left by an earlier pull")
                }
                Err(e) => {
                    tracing::debug!(path = %item.path().display(), error = %e, "cannot remove an old temporary file")
                }
            }
        }
    }
}

/// Whether `dest` already holds the image of `size` bytes and hex SHA-256
/// `hex`.
pub(crate) async fn up_to_date(dest: &Path, size: u64, hex: &str) -> bool {
    let Ok(meta) = std::fs::metadata(dest) else {
        return false;
    };
    if !meta.is_file() || meta.len() != size {
        return false;
    }
    let path = dest.to_path_buf();
    let want = hex.to_ascii_lowercase();
    tokio::task::spawn_blocking(move || {
        library_transport::sha256_file(&path)
            .map(|d| library_transport::hex(&d) == want)
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Produces the destination from `entry`, checked against `hex`.
async fn produce(
    t: &Target<'_>,
    hex: &str,
    entry: &Path,
    progress: Arc<dyn Progress>,
) -> std::result::Result<Downloaded, library_transport::Error> {
    let d = Destination::new(t.dest)
        .replace(t.replace)
        .max_size(t.max_size)
        .expect_sha256_hex(hex)?;
    let (got, how) = d.fill_from_file(entry, progress).await?;
    tracing::debug!(entry = %entry.display(), dest = %got.path.display(), ?how, "destination produced from the cache");
    Ok(got)
}

fn is_gone(e: &library_transport::Error) -> bool {
    matches!(e, library_transport::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Pulls the image whose SHA-256 is `hex` into `t.dest` through `cache`:
/// from the entry when it is there, else after `fetch` has downloaded it
/// to the path it is given (the entry's own path: the download's
/// temporary file is in the cache directory, and it is renamed into place
/// only when verified). One process at a time fetches a given hash; the
/// others wait and then use the entry.
pub(crate) async fn pull_through<F, Fut>(
    cache: &Cache,
    hex: &str,
    reference: &str,
    t: &Target<'_>,
    fetch: F,
) -> Result<(Downloaded, CacheUse)>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let hex = hex.to_ascii_lowercase();
    let entry = cache.entry_path(&hex);
    let lock_path = cache.lock_path(&hex);
    let name = format!("sha256.{hex}");
    remove_stale_temps(&cache.library_dir(), STALE_TEMP);
    let mut fetch = Some(fetch);
    let mut evicted = false;
    let mut filled = false;
    // Each round either uses the entry, evicts it, or fills it; a few
    // rounds cover a fill by another process and one eviction.
    for _ in 0..6 {
        if entry.is_file() {
            let _shared = lock(&lock_path, false, t.progress.as_ref(), &name).await;
            let sink: Arc<dyn Progress> = if filled {
                Arc::new(NoProgress)
            } else {
                t.progress.clone()
            };
            match produce(t, &hex, &entry, sink).await {
                Ok(got) => {
                    touch(&entry);
                    cache.record_ref(&hex, reference);
                    let used = match (evicted, filled) {
                        (true, _) => CacheUse::Refilled,
                        (false, true) => CacheUse::Filled,
                        (false, false) => CacheUse::Hit,
                    };
                    return Ok((got, used));
                }
                Err(library_transport::Error::DigestMismatch { actual, .. }) => {
                    tracing::warn!(entry = %entry.display(), %actual, "the cached image does not match its hash; evicting it");
                    let _ = std::fs::remove_file(&entry);
                    evicted = true;
                }
                Err(e) if is_gone(&e) => {} // cleaned meanwhile
                Err(e) => return Err(Error::from(e)),
            }
        }
        let locked = lock_until(&lock_path, true, t.progress.as_ref(), &name, Some(&entry)).await;
        if matches!(locked, Locked::Appeared) || entry.is_file() {
            continue; // another process filled it while this one waited
        }
        let Some(f) = fetch.take() else {
            return Err(Error::DigestMismatch {
                expected: format!("sha256:{hex}"),
                actual: "a cache entry that changed after it was verified".into(),
            });
        };
        f(entry.clone()).await?;
        // Apptainer's mode for its entries.
        let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o700));
        filled = true;
        drop(locked);
    }
    Err(Error::Internal(format!(
        "the cache entry {} kept changing while it was used",
        entry.display()
    )))
}

/// Records a use of the entry as its modification time (what `cache list`
/// shows as last use, and what `cache clean --older-than` and Apptainer's
/// `cache clean --days` go by).
fn touch(entry: &Path) {
    if let Ok(f) = File::options().write(true).open(entry) {
        let _ = f.set_modified(SystemTime::now());
    }
}
