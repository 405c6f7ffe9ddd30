//! Safe destinations: a temporary file beside the target, renamed into
//! place only when complete and verified.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::util::{hex, parse_sha256_hex};

/// Where a download lands.
///
/// Bytes are written to a temporary file in the destination's directory
/// (so the final rename is atomic and never crosses file systems). When
/// the download is complete the file is flushed to disk (`fsync`), its
/// SHA-256 is checked against [`expect_sha256`](Self::expect_sha256) when
/// given, and it is renamed over the destination path. An existing file at
/// the destination is replaced atomically: readers see either the old or
/// the new file, never a mix (refusing to overwrite is the caller's
/// decision, made before the download).
///
/// On failure, or when the download future is dropped, the destination is
/// untouched and the temporary file is removed, unless
/// [`resumable`](Self::resumable) was asked: then the partial file
/// `.<name>.part` and a small sidecar `.<name>.part.json` (which records
/// the completed parts of a ranged download) are kept, and the next ranged
/// download of the same size and part size into the same path fetches only
/// the missing parts. A digest mismatch always removes the temporary file.
#[derive(Debug)]
pub struct Destination {
    path: PathBuf,
    resume: bool,
    expected: Option<[u8; 32]>,
    temp: Option<PathBuf>,
    file: Option<Arc<File>>,
    committed: bool,
}

/// What a resumable ranged download records beside its partial file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Sidecar {
    pub(crate) size: u64,
    pub(crate) part_size: u64,
    pub(crate) etag: Option<String>,
    pub(crate) done: Vec<u64>,
}

impl Destination {
    /// A destination at `path` (not resumable, no expected digest).
    pub fn new(path: impl Into<PathBuf>) -> Destination {
        Destination {
            path: path.into(),
            resume: false,
            expected: None,
            temp: None,
            file: None,
            committed: false,
        }
    }

    /// Keeps the partial file on failure so that a later download can
    /// continue from it (see the type's documentation).
    pub fn resumable(mut self, yes: bool) -> Destination {
        self.resume = yes;
        self
    }

    /// The SHA-256 the complete file must have; a mismatch fails the
    /// download with [`Error::DigestMismatch`].
    pub fn expect_sha256(mut self, digest: [u8; 32]) -> Destination {
        self.expected = Some(digest);
        self
    }

    /// [`expect_sha256`](Self::expect_sha256) from 64 hex digits.
    pub fn expect_sha256_hex(self, digest: &str) -> Result<Destination> {
        let d = parse_sha256_hex(digest).ok_or_else(|| {
            Error::InvalidRequest(format!("not a hex SHA-256 digest: {digest:?}"))
        })?;
        Ok(self.expect_sha256(d))
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the partial file a resumable destination uses:
    /// `.<name>.part` beside the destination.
    pub fn partial_path(&self) -> PathBuf {
        self.sibling(".part")
    }

    fn sidecar_path(&self) -> PathBuf {
        self.sibling(".part.json")
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".into());
        self.dir().join(format!(".{name}{suffix}"))
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Creates (or, when resuming, reopens) the temporary file. For a
    /// ranged download (`ranged = Some((part_size, etag))`) the file is
    /// sized to `size` and the indices of parts already complete are
    /// returned.
    pub(crate) fn open(
        &mut self,
        size: Option<u64>,
        ranged: Option<(u64, Option<&str>)>,
    ) -> Result<Vec<u64>> {
        if let Some(p) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !p.is_dir() {
                return Err(Error::io(
                    p,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
                ));
            }
        }
        let mut done = Vec::new();
        let (temp, file) = if self.resume {
            let temp = self.partial_path();
            if let (Some(size), Some((part_size, etag))) = (size, ranged) {
                if let Ok(text) = std::fs::read(self.sidecar_path()) {
                    if let Ok(sc) = serde_json::from_slice::<Sidecar>(&text) {
                        let len = std::fs::metadata(&temp).map(|m| m.len()).ok();
                        if sc.size == size
                            && sc.part_size == part_size
                            && sc.etag.as_deref() == etag
                            && len == Some(size)
                        {
                            done = sc.done;
                        }
                    }
                }
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(done.is_empty())
                .open(&temp)
                .map_err(|e| Error::io(&temp, e))?;
            if done.is_empty() {
                let _ = std::fs::remove_file(self.sidecar_path());
            }
            (temp, file)
        } else {
            let name = self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut tries = 0;
            loop {
                let temp = self
                    .dir()
                    .join(format!(".{name}.{:08x}.tmp", fastrand::u32(..)));
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&temp)
                {
                    Ok(f) => break (temp, f),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => {
                        tries += 1
                    }
                    Err(e) => return Err(Error::io(&temp, e)),
                }
            }
        };
        self.temp = Some(temp.clone());
        if let Some(size) = size {
            file.set_len(size).map_err(|e| Error::io(&temp, e))?;
        }
        self.file = Some(Arc::new(file));
        Ok(done)
    }

    pub(crate) fn file(&self) -> Arc<File> {
        self.file.clone().expect("destination opened")
    }

    pub(crate) fn temp_path(&self) -> PathBuf {
        self.temp.clone().expect("destination opened")
    }

    pub(crate) fn is_resumable(&self) -> bool {
        self.resume
    }

    /// Records the completed parts (resumable destinations only).
    pub(crate) async fn save_sidecar(&self, sc: Sidecar) -> Result<()> {
        if !self.resume {
            return Ok(());
        }
        let path = self.sidecar_path();
        tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("json.new");
            std::fs::write(&tmp, serde_json::to_vec(&sc).unwrap_or_default())
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| Error::io(&path, e))
        })
        .await
        .map_err(|e| Error::Internal(format!("sidecar writer failed: {e}")))?
    }

    /// Flushes, verifies `sha256` against the expected digest and renames
    /// the temporary file over the destination.
    pub(crate) async fn commit(mut self, sha256: [u8; 32]) -> Result<PathBuf> {
        let file = self.file();
        let temp = self.temp_path();
        if let Some(exp) = self.expected {
            if exp != sha256 {
                self.resume = false; // corrupt: never keep it
                let _ = std::fs::remove_file(self.sidecar_path());
                return Err(Error::DigestMismatch {
                    expected: hex(&exp),
                    actual: hex(&sha256),
                });
            }
        }
        let path = self.path.clone();
        let dir = self.dir();
        let t = temp.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            file.sync_all().map_err(|e| Error::io(&t, e))?;
            std::fs::rename(&t, &path).map_err(|e| Error::io(&path, e))?;
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("commit task failed: {e}")))??;
        self.committed = true;
        let _ = std::fs::remove_file(self.sidecar_path());
        Ok(self.path.clone())
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let Some(temp) = &self.temp else { return };
        if self.resume {
            tracing::debug!(partial = %temp.display(), "keeping partial download for resume");
        } else {
            let _ = std::fs::remove_file(temp);
        }
    }
}
