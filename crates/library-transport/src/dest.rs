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
/// the completed parts of a ranged download, the validator the server gave
/// for the object, its `ETag` or else its `Last-Modified`, and the expected
/// SHA-256) are kept, and the next ranged download of the same size and
/// part size, expecting the same SHA-256, into the same path fetches only
/// the missing parts, on condition that the object is still the one the
/// validator names (see [`RangedDownload`](crate::RangedDownload)). A
/// sidecar that expected another SHA-256 is discarded without any request.
/// A digest mismatch always removes the temporary file.
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
    /// What the server said the object's version was when the parts came.
    #[serde(default)]
    pub(crate) validator: Option<Validator>,
    /// The hex SHA-256 the complete file was expected to have (filled in
    /// by [`Destination::save_sidecar`]).
    #[serde(default)]
    pub(crate) sha256: Option<String>,
    pub(crate) done: Vec<u64>,
}

/// A server's validator of an object's version: its `ETag`, or its
/// `Last-Modified` when it gives no `ETag`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Validator {
    /// An `ETag` value, quotes (and any `W/`) included.
    Etag(String),
    /// A `Last-Modified` value (an HTTP-date).
    LastModified(String),
}

/// What [`Destination::open`] found to continue from.
#[derive(Debug, Default)]
pub(crate) struct Resumed {
    /// The indices of the parts already complete.
    pub(crate) done: Vec<u64>,
    /// The validator those parts were fetched under.
    pub(crate) validator: Option<Validator>,
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
    /// sized to `size` and the parts already complete are returned, with
    /// the validator they were fetched under: only from a sidecar of the
    /// same size, part size and expected SHA-256 (and `etag`, when given).
    pub(crate) fn open(
        &mut self,
        size: Option<u64>,
        ranged: Option<(u64, Option<&str>)>,
    ) -> Result<Resumed> {
        if let Some(p) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !p.is_dir() {
                return Err(Error::io(
                    p,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
                ));
            }
        }
        let mut resumed = Resumed::default();
        let (temp, file) = if self.resume {
            let temp = self.partial_path();
            if let (Some(size), Some((part_size, etag))) = (size, ranged) {
                if let Ok(text) = std::fs::read(self.sidecar_path()) {
                    if let Ok(sc) = serde_json::from_slice::<Sidecar>(&text) {
                        let len = std::fs::metadata(&temp).map(|m| m.len()).ok();
                        // Parts of another image (the tag moved since) are
                        // never reused, and no request is made for them.
                        let same_image = sc.sha256 == self.expected.map(|d| hex(&d));
                        let same_version = match (etag, &sc.validator) {
                            (None, _) => true,
                            (Some(want), Some(Validator::Etag(had))) => want == had,
                            (Some(_), _) => false,
                        };
                        if sc.size == size
                            && sc.part_size == part_size
                            && same_image
                            && same_version
                            && len == Some(size)
                        {
                            resumed = Resumed {
                                done: sc.done,
                                validator: sc.validator,
                            };
                        } else {
                            tracing::debug!(
                                partial = %temp.display(),
                                same_image,
                                "the partial file does not fit this download; starting over"
                            );
                        }
                    }
                }
            }
            if resumed.done.is_empty() {
                resumed.validator = None;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(resumed.done.is_empty())
                .open(&temp)
                .map_err(|e| Error::io(&temp, e))?;
            if resumed.done.is_empty() {
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
        Ok(resumed)
    }

    /// Throws the temporary file (and a resumable destination's sidecar)
    /// away, so that the next [`open`](Self::open) starts from nothing.
    /// The next file is a new one: writes still under way into this one
    /// (through handles held elsewhere) never reach it.
    pub(crate) fn discard(&mut self) {
        self.file = None;
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
        if self.resume {
            let _ = std::fs::remove_file(self.sidecar_path());
        }
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

    /// Records the completed parts, with the SHA-256 the file is expected
    /// to have (resumable destinations only).
    pub(crate) async fn save_sidecar(&self, mut sc: Sidecar) -> Result<()> {
        if !self.resume {
            return Ok(());
        }
        sc.sha256 = self.expected.map(|d| hex(&d));
        let path = self.sidecar_path();
        tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("json.new");
            std::fs::write(&tmp, serde_json::to_vec(&sc).unwrap_or_default())
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| Error::io(&path, e))
        })
        .await
        .map_err(|e| Error::InvalidRequest(format!("sidecar writer failed: {e}")))?
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
        .map_err(|e| Error::InvalidRequest(format!("commit task failed: {e}")))??;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(validator: Option<Validator>) -> Sidecar {
        Sidecar {
            size: 10,
            part_size: 4,
            validator,
            sha256: None,
            done: vec![0, 2],
        }
    }

    /// A sidecar records the validator and the expected SHA-256, and is
    /// used again only by a download expecting the same SHA-256.
    #[tokio::test]
    async fn the_sidecar_records_the_validator_and_the_expected_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let etag = Validator::Etag("\"abc\"".into());
        let mut d = Destination::new(&path).resumable(true).expect_sha256(a);
        assert!(d.open(Some(10), Some((4, None))).unwrap().done.is_empty());
        d.save_sidecar(sidecar(Some(etag.clone()))).await.unwrap();
        drop(d);
        let text = std::fs::read(dir.path().join(".img.part.json")).unwrap();
        let saved: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(saved["validator"], serde_json::json!({"etag": "\"abc\""}));
        assert_eq!(saved["sha256"], serde_json::json!(hex(&a)));

        // The same image: the parts and their validator come back.
        let mut d = Destination::new(&path).resumable(true).expect_sha256(a);
        let r = d.open(Some(10), Some((4, None))).unwrap();
        assert_eq!((r.done, r.validator), (vec![0, 2], Some(etag.clone())));
        d.save_sidecar(sidecar(Some(Validator::LastModified("x".into()))))
            .await
            .unwrap();
        drop(d);

        // Another image (or an unknown one): nothing is reused, and the
        // sidecar is gone.
        for other in [Some(b), None] {
            let mut d = Destination::new(&path).resumable(true);
            if let Some(h) = other {
                d = d.expect_sha256(h);
            }
            let r = d.open(Some(10), Some((4, None))).unwrap();
            assert_eq!((r.done, r.validator), (vec![], None), "{other:?}");
            assert!(!dir.path().join(".img.part.json").exists());
            d.save_sidecar(sidecar(None)).await.unwrap();
            drop(d);
            // Put back a sidecar for `a` for the next round.
            let mut d = Destination::new(&path).resumable(true).expect_sha256(a);
            d.open(Some(10), Some((4, None))).unwrap();
            d.save_sidecar(sidecar(None)).await.unwrap();
        }

        // A caller's If-Match must be the recorded ETag.
        let mut d = Destination::new(&path).resumable(true).expect_sha256(a);
        d.save_sidecar(sidecar(Some(etag))).await.unwrap();
        let r = d.open(Some(10), Some((4, Some("\"other\"")))).unwrap();
        assert!(r.done.is_empty());
    }

    /// A sidecar written before validators and hashes were recorded
    /// (`"etag": null`, no `sha256`) is still read, and fits a download
    /// that expects no particular SHA-256.
    #[test]
    fn an_older_sidecar_still_reads() {
        let sc: Sidecar =
            serde_json::from_str(r#"{"size":10,"part_size":4,"etag":null,"done":[1]}"#).unwrap();
        assert_eq!((sc.validator, sc.sha256, sc.done), (None, None, vec![1]));
    }
}
