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
    replace: bool,
    max_size: u64,
}

/// The largest download a [`Destination`] takes unless told otherwise
/// (see [`Destination::max_size`]): 1 TiB.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 1 << 40;

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
            replace: true,
            max_size: DEFAULT_MAX_IMAGE_SIZE,
        }
    }

    /// Whether the final rename may replace a file already at the
    /// destination (default: yes, atomically).
    ///
    /// With `false` the download fails, before any request, when the
    /// destination exists, and the final rename itself refuses to replace
    /// (`renameat2` with `RENAME_NOREPLACE`, or a hard link and an unlink
    /// where the kernel or the file system lacks it): a file that appears
    /// under the destination name while the download runs is never
    /// clobbered. Either way the error is an [`Error::Io`] naming the
    /// destination, of kind [`std::io::ErrorKind::AlreadyExists`], and the
    /// temporary file is removed (or kept, when resumable).
    pub fn replace(mut self, yes: bool) -> Destination {
        self.replace = yes;
        self
    }

    /// The largest size this destination takes (default
    /// [`DEFAULT_MAX_IMAGE_SIZE`], 1 TiB). A size the server claims beyond
    /// it is refused before any file is created or any part requested, and
    /// so is a size the destination's file system has no room for.
    pub fn max_size(mut self, bytes: u64) -> Destination {
        self.max_size = bytes;
        self
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
        .map_err(|e| Error::Internal(format!("sidecar writer failed: {e}")))?
    }

    /// Checks, before anything is created or requested, that the
    /// destination may be written (it does not exist, unless replacing is
    /// allowed) and that `size`, the size the server claims (fetched from
    /// `url`), is not beyond the maximum.
    pub(crate) fn check_claim(&self, size: Option<u64>, url: &str) -> Result<()> {
        if !self.replace && std::fs::symlink_metadata(&self.path).is_ok() {
            return Err(Error::io(
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the destination exists and is not to be replaced",
                ),
            ));
        }
        match size {
            Some(size) if size > self.max_size => Err(Error::InvalidRequest(format!(
                "{url}: the size {size} bytes is more than the largest allowed, {} bytes",
                self.max_size
            ))),
            _ => Ok(()),
        }
    }

    /// The error for a body found larger than the maximum while it streams.
    pub(crate) fn check_streamed(&self, so_far: u64, url: &str) -> Result<()> {
        if so_far > self.max_size {
            return Err(Error::InvalidRequest(format!(
                "{url}: the body is more than the largest allowed, {} bytes",
                self.max_size
            )));
        }
        Ok(())
    }

    /// Checks that the destination's file system has room for `size`
    /// bytes (what a resumable destination's partial file already holds
    /// counts as room).
    pub(crate) fn check_room(&self, size: u64) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mut needed = size;
        if self.resume {
            if let Ok(m) = std::fs::metadata(self.partial_path()) {
                needed = needed.saturating_sub(m.blocks().saturating_mul(512));
            }
        }
        check_free_space(&self.dir(), needed)
    }

    /// Flushes, verifies `sha256` against the expected digest and renames
    /// the temporary file to the destination (over an existing file only
    /// when [`replace`](Self::replace) allows it), then flushes the
    /// directory so that the rename itself is on disk.
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
        let replace = self.replace;
        let t = temp.clone();
        let (renamed, r) = tokio::task::spawn_blocking(move || {
            if let Err(e) = file.sync_all() {
                return (false, Err(Error::io(&t, e)));
            }
            put_in_place(&t, &path, &dir, replace, sync_dir)
        })
        .await
        .map_err(|e| Error::Internal(format!("commit task failed: {e}")))?;
        if renamed {
            self.committed = true;
            let _ = std::fs::remove_file(self.sidecar_path());
        }
        r?;
        Ok(self.path.clone())
    }
}

/// Fails with a storage-full [`Error::Io`] naming `dir` when its file
/// system has fewer than `needed` bytes available to this process. A file
/// system that cannot say (`statvfs` fails, or reports no blocks at all)
/// is not checked: the writes themselves then report a full disk.
pub(crate) fn check_free_space(dir: &Path, needed: u64) -> Result<()> {
    let Ok(st) = rustix::fs::statvfs(dir) else {
        return Ok(());
    };
    if st.f_blocks == 0 {
        return Ok(());
    }
    let unit = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    let free = st.f_bavail.saturating_mul(unit);
    if needed > free {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("not enough space: {needed} bytes needed, {free} bytes free"),
            ),
        ));
    }
    Ok(())
}

/// Renames `temp` to `path` (refusing to replace an existing file unless
/// `replace`), then flushes `dir` with `sync_dir`. Returns whether the
/// rename happened, and the first failure.
fn put_in_place(
    temp: &Path,
    path: &Path,
    dir: &Path,
    replace: bool,
    sync_dir: fn(&Path) -> std::io::Result<()>,
) -> (bool, Result<()>) {
    let renamed = if replace {
        std::fs::rename(temp, path)
    } else {
        rename_noreplace(temp, path)
    };
    if let Err(e) = renamed {
        let e = if e.kind() == std::io::ErrorKind::AlreadyExists {
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the destination now exists (created while the download ran); it was not replaced",
            )
        } else {
            e
        };
        return (false, Err(Error::io(path, e)));
    }
    (true, sync_dir(dir).map_err(|e| Error::io(dir, e)))
}

/// Flushes a directory, so that a rename in it survives a crash. A file
/// system that cannot sync directories at all (`EINVAL`) is not an error.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r,
    }
}

/// Renames `from` to `to` unless `to` exists (then fails with
/// [`std::io::ErrorKind::AlreadyExists`] and changes nothing):
/// `renameat2(RENAME_NOREPLACE)` where the kernel and the file system have
/// it, else a hard link to `to` (which fails when `to` exists) and the
/// removal of `from`. On a file system without hard links either, `to` is
/// checked just before a plain rename.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == Errno::INVAL || e == Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    link_then_unlink(from, to)
}

/// The fallback of [`rename_noreplace`].
fn link_then_unlink(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(from) {
                tracing::debug!(path = %from.display(), error = %e, "cannot remove the temporary name");
            }
            Ok(())
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::Unsupported
                || matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EOPNOTSUPP)) =>
        {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(from, to)
        }
        Err(e) => Err(e),
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

    use std::io::ErrorKind;

    fn io_of(e: &Error) -> (ErrorKind, &Path) {
        match e {
            Error::Io { path, source } => (source.kind(), path.as_path()),
            e => panic!("not an I/O error: {e:?}"),
        }
    }

    #[test]
    fn free_space_beyond_the_file_system_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_free_space(dir.path(), u64::MAX / 2).unwrap_err();
        assert_eq!(io_of(&e), (ErrorKind::StorageFull, dir.path()));
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{} bytes needed", u64::MAX / 2)),
            "{msg}"
        );
        assert!(msg.contains("bytes free"), "{msg}");
        check_free_space(dir.path(), 1).unwrap();
    }

    #[test]
    fn a_failed_directory_sync_is_reported_after_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, path) = (dir.path().join(".x.tmp"), dir.path().join("x"));
        std::fs::write(&temp, b"new").unwrap();
        fn failing(_: &Path) -> std::io::Result<()> {
            Err(std::io::Error::other("injected fsync failure"))
        }
        let (renamed, r) = put_in_place(&temp, &path, dir.path(), false, failing);
        assert!(renamed);
        let e = r.unwrap_err();
        assert_eq!(io_of(&e), (ErrorKind::Other, dir.path()));
        assert!(e.to_string().contains("injected fsync failure"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // The real one succeeds on an ordinary directory.
        sync_dir(dir.path()).unwrap();
    }

    #[test]
    fn no_replace_refuses_an_existing_file_with_either_method() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, path) = (dir.path().join(".x.tmp"), dir.path().join("x"));
        type Rename = fn(&Path, &Path) -> std::io::Result<()>;
        for (what, f) in [
            ("renameat2", rename_noreplace as Rename),
            ("link", link_then_unlink as Rename),
        ] {
            std::fs::write(&temp, b"new").unwrap();
            std::fs::write(&path, b"old").unwrap();
            let e = f(&temp, &path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{what}: {e}");
            assert_eq!(std::fs::read(&path).unwrap(), b"old", "{what}");
            assert_eq!(std::fs::read(&temp).unwrap(), b"new", "{what}");
            std::fs::remove_file(&path).unwrap();
            f(&temp, &path).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new", "{what}");
            assert!(!temp.exists(), "{what}: the temporary name is left");
        }
        // Through put_in_place: the error names the destination.
        std::fs::write(&temp, b"new").unwrap();
        let (renamed, r) = put_in_place(&temp, &path, dir.path(), false, sync_dir);
        assert!(!renamed);
        let e = r.unwrap_err();
        assert_eq!(io_of(&e), (ErrorKind::AlreadyExists, path.as_path()));
        assert!(e.to_string().contains("now exists"), "{e}");
        // Replacing is allowed when asked.
        let (renamed, r) = put_in_place(&temp, &path, dir.path(), true, sync_dir);
        assert!(renamed && r.is_ok());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
