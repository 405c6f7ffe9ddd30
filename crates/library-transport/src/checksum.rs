//! File checksums: MD5 and SHA-256 in one read, on two threads.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc::sync_channel;

use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::util::hex;

const BLOCK: usize = 1 << 20;

/// The MD5 and SHA-256 of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checksums {
    /// The file's size in bytes.
    pub size: u64,
    /// MD5 digest.
    pub md5: [u8; 16],
    /// SHA-256 digest.
    pub sha256: [u8; 32],
}

impl Checksums {
    /// MD5 as lower-case hex.
    pub fn md5_hex(&self) -> String {
        hex(&self.md5)
    }

    /// SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Computes MD5 and SHA-256 of the file at `path` in a single read, on
/// two threads at once: the calling thread reads 1 MiB blocks, hands each
/// to an MD5 thread and hashes it with SHA-256 itself (at most a few
/// blocks are buffered). This blocks; from async code call it inside
/// `tokio::task::spawn_blocking`.
///
/// ```no_run
/// let c = library_transport::checksums(std::path::Path::new("image.sif"))?;
/// println!("{} {}", c.md5_hex(), c.sha256_hex());
/// # Ok::<(), library_transport::Error>(())
/// ```
pub fn checksums(path: &Path) -> Result<Checksums> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    // MD5 is the slower hash (about a third of SHA-256's speed with SHA-NI),
    // so it gets a thread of its own; this thread reads and does SHA-256.
    let (mtx, mrx) = sync_channel::<Bytes>(4);
    std::thread::scope(|s| {
        let md5 = s.spawn(move || {
            let mut h = Md5::new();
            for b in mrx {
                h.update(&b);
            }
            <[u8; 16]>::from(h.finalize())
        });
        let mut sha = Sha256::new();
        let mut size = 0u64;
        let read = (|| -> std::io::Result<()> {
            loop {
                let mut buf = vec![0u8; BLOCK];
                let mut n = 0;
                while n < BLOCK {
                    match file.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                size += n as u64;
                let b = Bytes::from(buf);
                if mtx.send(b.clone()).is_err() {
                    return Ok(());
                }
                sha.update(&b);
                if n < BLOCK {
                    return Ok(());
                }
            }
        })();
        drop(mtx);
        let md5 = md5.join().expect("md5 thread");
        read.map_err(|e| Error::io(path, e))?;
        Ok(Checksums {
            size,
            md5,
            sha256: sha.finalize().into(),
        })
    })
}

/// The SHA-256 of the file at `path` (blocking).
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}
