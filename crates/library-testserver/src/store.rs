//! Where image bytes and uploaded parts live: in memory or in files.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::record::RECORDED_BODY_LIMIT;
use crate::Storage;

/// Chunk size for reading files and hashing.
pub(crate) const CHUNK: usize = 256 * 1024;

/// A file that is removed when the last handle to it goes away.
#[derive(Debug)]
pub(crate) struct OwnedFile(PathBuf);

impl OwnedFile {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stored bytes: an image, an uploaded file or one part.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    Mem(Bytes),
    File { file: Arc<OwnedFile>, len: u64 },
}

impl Data {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Data::Mem(b) => b.len() as u64,
            Data::File { len, .. } => *len,
        }
    }

    /// Reads `len` bytes at `offset` (blocking for files).
    pub(crate) fn reader(&self) -> io::Result<DataReader> {
        Ok(match self {
            Data::Mem(b) => DataReader::Mem(b.clone()),
            Data::File { file, .. } => DataReader::File {
                file: File::open(file.path())?,
                _keep: file.clone(),
            },
        })
    }

    /// The whole content (blocking for files).
    pub(crate) fn read_all(&self) -> io::Result<Vec<u8>> {
        match self {
            Data::Mem(b) => Ok(b.to_vec()),
            Data::File { file, .. } => std::fs::read(file.path()),
        }
    }
}

/// Sequential or positioned reads of [`Data`].
pub(crate) enum DataReader {
    Mem(Bytes),
    File {
        file: File,
        // Keeps the file from being removed while it is read.
        _keep: Arc<OwnedFile>,
    },
}

impl DataReader {
    /// Up to `max` bytes at `offset`; empty at the end.
    pub(crate) fn read_at(&mut self, offset: u64, max: usize) -> io::Result<Bytes> {
        match self {
            DataReader::Mem(b) => {
                let start = (offset as usize).min(b.len());
                let end = start.saturating_add(max).min(b.len());
                Ok(b.slice(start..end))
            }
            DataReader::File { file: f, .. } => {
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = BytesMut::zeroed(max);
                let mut filled = 0;
                while filled < max {
                    let n = f.read(&mut buf[filled..])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
                Ok(buf.freeze())
            }
        }
    }
}

/// What was received from a request body.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) len: u64,
    pub(crate) md5: Option<String>,
    pub(crate) sha256: Option<String>,
    pub(crate) data: Data,
    /// The first bytes, for the request log.
    pub(crate) head: Bytes,
}

/// An error while receiving a body: the client went away, or the disk
/// failed.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which digests to compute while receiving.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Want {
    pub(crate) md5: bool,
    pub(crate) sha256: bool,
}

enum Sink {
    Mem(Vec<u8>),
    File(BufWriter<File>, OwnedFile),
}

/// Creates [`Data`] in memory or in the storage directory.
#[derive(Debug)]
pub(crate) struct Store {
    dir: Option<PathBuf>,
    counter: AtomicU64,
    tag: u32,
}

impl Store {
    pub(crate) fn new(storage: &Storage) -> io::Result<Store> {
        let dir = match storage {
            Storage::Memory => None,
            Storage::Dir(d) => {
                std::fs::create_dir_all(d)?;
                Some(d.clone())
            }
        };
        Ok(Store {
            dir,
            counter: AtomicU64::new(0),
            tag: fastrand::u32(..),
        })
    }

    fn new_file(&self) -> io::Result<Option<(File, OwnedFile)>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("blob-{:08x}-{n:06}.bin", self.tag));
        let file = File::create(&path)?;
        Ok(Some((file, OwnedFile(path))))
    }

    fn sink(&self, hint: u64) -> io::Result<Sink> {
        Ok(match self.new_file()? {
            Some((f, owned)) => Sink::File(BufWriter::with_capacity(1 << 20, f), owned),
            None => Sink::Mem(Vec::with_capacity(hint.min(1 << 30) as usize)),
        })
    }

    /// Stores bytes (blocking for files).
    pub(crate) fn put(&self, bytes: Vec<u8>) -> io::Result<Data> {
        match self.new_file()? {
            None => Ok(Data::Mem(Bytes::from(bytes))),
            Some((mut f, owned)) => {
                f.write_all(&bytes)?;
                Ok(Data::File {
                    file: Arc::new(owned),
                    len: bytes.len() as u64,
                })
            }
        }
    }

    /// Receives a request body into a new [`Data`], computing the wanted
    /// digests on a blocking thread as the bytes arrive.
    pub(crate) async fn receive(
        &self,
        mut body: Incoming,
        want: Want,
        hint: u64,
    ) -> Result<Received, BoxError> {
        let sink = self.sink(hint)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let worker = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut md5 = want.md5.then(Md5::new);
            let mut sha = want.sha256.then(Sha256::new);
            let mut sink = sink;
            let mut len = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                len += chunk.len() as u64;
                if let Some(h) = md5.as_mut() {
                    h.update(&chunk);
                }
                if let Some(h) = sha.as_mut() {
                    h.update(&chunk);
                }
                match &mut sink {
                    Sink::Mem(v) => v.extend_from_slice(&chunk),
                    Sink::File(w, _) => w.write_all(&chunk)?,
                }
            }
            let data = match sink {
                Sink::Mem(v) => Data::Mem(Bytes::from(v)),
                Sink::File(mut w, owned) => {
                    w.flush()?;
                    Data::File {
                        file: Arc::new(owned),
                        len,
                    }
                }
            };
            Ok((
                len,
                md5.map(|h| format!("{:x}", h.finalize())),
                sha.map(|h| format!("{:x}", h.finalize())),
                data,
            ))
        });
        let mut head = BytesMut::new();
        let mut failure: Option<BoxError> = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(chunk) = frame.into_data() {
                        if head.len() < RECORDED_BODY_LIMIT {
                            let take = (RECORDED_BODY_LIMIT - head.len()).min(chunk.len());
                            head.extend_from_slice(&chunk[..take]);
                        }
                        if tx.send(chunk).await.is_err() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    failure = Some(Box::new(e));
                    break;
                }
            }
        }
        drop(tx);
        let (len, md5, sha256, data) = worker.await??;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Received {
            len,
            md5,
            sha256,
            data,
            head: head.freeze(),
        })
    }

    /// Concatenates parts into a new [`Data`] and returns it with its
    /// SHA-256 (hex).
    pub(crate) async fn assemble(&self, parts: Vec<Data>) -> io::Result<(Data, String)> {
        let total: u64 = parts.iter().map(Data::len).sum();
        let sink = self.sink(total)?;
        tokio::task::spawn_blocking(move || {
            let mut sha = Sha256::new();
            let mut sink = sink;
            for part in &parts {
                let mut r = part.reader()?;
                let mut off = 0u64;
                loop {
                    let chunk = r.read_at(off, CHUNK * 4)?;
                    if chunk.is_empty() {
                        break;
                    }
                    off += chunk.len() as u64;
                    sha.update(&chunk);
                    match &mut sink {
                        Sink::Mem(v) => v.extend_from_slice(&chunk),
                        Sink::File(w, _) => w.write_all(&chunk)?,
                    }
                }
            }
            let data = match sink {
                Sink::Mem(v) => Data::Mem(Bytes::from(v)),
                Sink::File(mut w, owned) => {
                    w.flush()?;
                    Data::File {
                        file: Arc::new(owned),
                        len: total,
                    }
                }
            };
            Ok((data, format!("{:x}", sha.finalize())))
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// Hex SHA-256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}
