//! Filling a [`Destination`] from a local file: a reflink where the file
//! system can share the blocks, else a copy; either way the bytes that
//! land are hashed and checked before the rename.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::dest::Destination;
use crate::download::Downloaded;
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressGuard};

const BLOCK: usize = 1 << 20;

/// How [`Destination::fill_from_file`] produced the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalCopy {
    /// The file system shares the source's blocks (`FICLONE`); the clone
    /// was read back and hashed.
    Reflink,
    /// The bytes were copied, and hashed on the way.
    Copy,
}

impl Destination {
    /// Fills the destination from the local file `src` and renames it into
    /// place like a download: through a temporary file beside the
    /// destination, checked against the expected SHA-256 (a mismatch is an
    /// [`Error::DigestMismatch`] and leaves the destination as it was),
    /// never a hard link, so that a later change to either file never
    /// reaches the other. The blocks are shared (a reflink) where the file
    /// system allows it; the clone is then read back and hashed.
    ///
    /// ```no_run
    /// # async fn demo() -> library_transport::Result<()> {
    /// use library_transport::{Destination, NoProgress};
    /// let d = Destination::new("copy.sif").expect_sha256_hex(&"0".repeat(64))?;
    /// let (got, _how) = d.fill_from_file("cache/entry", std::sync::Arc::new(NoProgress)).await?;
    /// assert_eq!(got.parts_fetched, 0);
    /// # Ok(()) }
    /// ```
    pub async fn fill_from_file(
        mut self,
        src: impl AsRef<Path>,
        progress: Arc<dyn Progress>,
    ) -> Result<(Downloaded, LocalCopy)> {
        let src = src.as_ref().to_path_buf();
        let source = File::open(&src).map_err(|e| Error::io(&src, e))?;
        let size = source.metadata().map_err(|e| Error::io(&src, e))?.len();
        self.check_claim(Some(size), &src.display().to_string())?;
        self.open(None, None)?;
        let file = self.file();
        let temp = self.temp_path();
        let guard = ProgressGuard::new(progress.clone());
        progress.total(size);
        let (sha256, how) = tokio::task::spawn_blocking(move || {
            copy_hashing(&source, &src, &file, &temp, size, progress.as_ref())
        })
        .await
        .map_err(|e| Error::Internal(format!("copy task failed: {e}")))??;
        let path = self.commit(sha256).await?;
        guard.finish();
        Ok((
            Downloaded {
                path,
                size,
                sha256,
                parts_fetched: 0,
                streams: 0,
                retries: 0,
            },
            how,
        ))
    }
}

/// Reflinks or copies `source` into `file` (the temporary file `temp`),
/// returning the SHA-256 of what `file` now holds.
fn copy_hashing(
    source: &File,
    src: &Path,
    file: &File,
    temp: &Path,
    size: u64,
    progress: &dyn Progress,
) -> Result<([u8; 32], LocalCopy)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if rustix::fs::ioctl_ficlone(file, source).is_ok() {
        let mut at = 0u64;
        loop {
            let n = file.read_at(&mut buf, at).map_err(|e| Error::io(temp, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            at += n as u64;
            progress.increment(n as u64);
        }
        if at != size {
            return Err(Error::io(
                temp,
                std::io::Error::other(format!("the clone has {at} bytes, the source {size}")),
            ));
        }
        return Ok((h.finalize().into(), LocalCopy::Reflink));
    }
    let mut reader = source;
    let mut writer = file;
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::io(src, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        writer
            .write_all(&buf[..n])
            .map_err(|e| Error::io(temp, e))?;
        progress.increment(n as u64);
    }
    Ok((h.finalize().into(), LocalCopy::Copy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    /// The destination gets its own copy of the bytes (never a hard link),
    /// checked against the expected SHA-256; a source that does not match
    /// leaves the destination as it was and no temporary file.
    #[tokio::test]
    async fn a_copy_is_checked_and_is_its_own_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("entry"), dir.path().join("dest"));
        std::fs::write(&src, b"image bytes").unwrap();
        let want: [u8; 32] = Sha256::digest(b"image bytes").into();
        let (got, _) = Destination::new(&dest)
            .expect_sha256(want)
            .fill_from_file(&src, Arc::new(NoProgress))
            .await
            .unwrap();
        assert_eq!((got.size, got.sha256), (11, want));
        assert_eq!(std::fs::read(&dest).unwrap(), b"image bytes");
        assert_eq!(std::fs::metadata(&src).unwrap().nlink(), 1);

        std::fs::write(&src, b"image bytez").unwrap();
        let e = Destination::new(&dest)
            .expect_sha256(want)
            .fill_from_file(&src, Arc::new(NoProgress))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"image bytes");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "{names:?}");

        // Without replacing, an existing destination is refused.
        let e = Destination::new(&dest)
            .replace(false)
            .fill_from_file(&src, Arc::new(NoProgress))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{e:?}"
        );
    }
}
