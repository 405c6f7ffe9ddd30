//! Shared helpers of the cross-crate reliability and security tests: a
//! scripted HTTP server, a small OCI registry with faults, destinations
//! that fail, TLS material, log capture and file checks.

pub mod minilib;
pub mod registry;
pub mod scripted;
pub mod server_process;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use library_client::{Client, RetryConfig};
use sha2::{Digest, Sha256};

/// The library token every test uses.
pub const LIBRARY_TOKEN: &str = "lib-tok-3f9a61c0e2";
/// The registry token the library hands out.
pub const REGISTRY_TOKEN: &str = "reg-tok-88d1b7a4c5";

/// Retries in tests: `n` retries with millisecond backoff.
pub fn fast_retry(n: u32) -> RetryConfig {
    RetryConfig::default()
        .with_max_retries(n)
        .with_backoff(Duration::from_millis(2), Duration::from_millis(20))
}

/// The number of tries a part gets with [`fast_retry`]`(RETRIES)`.
pub const RETRIES: u32 = 2;
/// One try and [`RETRIES`] retries.
pub const ATTEMPTS: usize = 1 + RETRIES as usize;

/// The transport error behind a client error, found in its cause chain.
pub fn transport_cause(e: &library_client::Error) -> Option<&library_transport::Error> {
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<library_transport::Error>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

/// A client of `base` with the library token, fast retries and short
/// timeouts.
pub fn client(base: &url::Url) -> Client {
    client_builder(base).build().unwrap()
}

/// The builder of [`client`], to add settings.
pub fn client_builder(base: &url::Url) -> library_client::ClientBuilder {
    Client::builder()
        .base_url(base.as_str())
        .token(LIBRARY_TOKEN)
        .retry(fast_retry(RETRIES))
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(5))
}

/// `n` pseudo-random bytes, the same for the same seed.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fastrand::Rng::with_seed(seed).fill(&mut v);
    v
}

/// A SIF image in `dir`: the amd64 fixture with `extra` pseudo-random
/// bytes appended (a different image for each seed).
pub fn sif_file(dir: &Path, extra: usize, seed: u64) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sif/amd64.sif");
    let mut bytes = std::fs::read(fixture).unwrap();
    bytes.extend(random_bytes(extra, seed));
    let path = dir.join(format!("img-{seed}.sif"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A [`library_client::Progress`] that records what it is told.
#[derive(Debug, Default)]
pub struct RecordedProgress {
    /// Values given to `total`.
    pub totals: Mutex<Vec<u64>>,
    /// The sum of the increments.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Calls to `finish`.
    pub finished: std::sync::atomic::AtomicUsize,
    /// Calls to `abort`.
    pub aborted: std::sync::atomic::AtomicUsize,
}

impl library_client::Progress for RecordedProgress {
    fn total(&self, bytes: u64) {
        self.totals.lock().unwrap().push(bytes);
    }
    fn increment(&self, bytes: u64) {
        self.bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::SeqCst);
    }
    fn finish(&self) {
        self.finished
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn abort(&self) {
        self.aborted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl RecordedProgress {
    /// (bytes reported, finish calls, abort calls).
    pub fn outcome(&self) -> (u64, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.bytes.load(SeqCst),
            self.finished.load(SeqCst),
            self.aborted.load(SeqCst),
        )
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(b: &[u8]) -> String {
    library_transport::hex(&Sha256::digest(b))
}

/// `sha256:<hex>`.
pub fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(b))
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What a destination directory holds before a pull: `dest` with known
/// contents, nothing else.
pub struct DestDir {
    /// The directory (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The destination path inside it.
    pub dest: PathBuf,
}

/// What an existing destination holds before a failing pull.
pub const PREVIOUS: &[u8] = b"the previous image, which a failed pull must not touch";

impl DestDir {
    /// A directory holding `image.sif` with [`PREVIOUS`] in it.
    pub fn new() -> DestDir {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.sif");
        std::fs::write(&dest, PREVIOUS).unwrap();
        DestDir { dir, dest }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The destination still holds [`PREVIOUS`] and nothing else is in the
    /// directory.
    pub fn assert_untouched(&self, what: &str) {
        assert_eq!(
            std::fs::read(&self.dest).unwrap(),
            PREVIOUS,
            "{what}: destination changed"
        );
        assert_eq!(
            listing(self.path()),
            ["image.sif"],
            "{what}: files left behind"
        );
    }

    /// The destination still holds [`PREVIOUS`]; besides it only the
    /// partial file of a resumable pull (and its sidecar) may remain.
    pub fn assert_untouched_resumable(&self, what: &str) {
        assert_eq!(
            std::fs::read(&self.dest).unwrap(),
            PREVIOUS,
            "{what}: destination changed"
        );
        for name in listing(self.path()) {
            assert!(
                ["image.sif", ".image.sif.part", ".image.sif.part.json"].contains(&name.as_str()),
                "{what}: unexpected file {name}"
            );
        }
    }

    /// The destination holds exactly `want` and nothing else is left.
    pub fn assert_pulled(&self, want: &[u8], what: &str) {
        let got = std::fs::read(&self.dest).unwrap();
        assert!(got == want, "{what}: pulled file differs");
        assert_eq!(
            listing(self.path()),
            ["image.sif"],
            "{what}: files left behind"
        );
    }
}

impl Default for DestDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A small tmpfs mounted on a temporary directory, unmounted when
/// dropped. `None` when mounting is not allowed (not root).
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes, if this process may.
    pub fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Changes its size (to make room after a "disk full").
    pub fn resize(&self, bytes: u64) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// A private CA and a server certificate for 127.0.0.1 and localhost.
pub struct Pki {
    _dir: tempfile::TempDir,
    /// The CA certificate, PEM, for the client to trust.
    pub ca_pem: PathBuf,
    /// The server side.
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl Pki {
    /// Makes a fresh CA and server certificate.
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "e2e test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(leaf.der().to_vec())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(
                    rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
                ),
            )
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Pki {
            _dir: dir,
            ca_pem,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Collects formatted log output in memory (a `MakeWriter` for
/// `tracing_subscriber::fmt`).
#[derive(Clone, Default)]
pub struct LogSink(pub Arc<Mutex<Vec<u8>>>);

impl LogSink {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of this process in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
