//! A TCP link with a rate cap per direction, to simulate a slow or dead
//! network between a client and a server.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use url::Url;

/// How often a capped direction forwards a slice of data: 50 slices a
/// second keep a rate of a few KB/s smooth.
const SLICES_PER_SECOND: u64 = 50;

/// The most bytes forwarded at once by a direction without a cap.
const UNCAPPED_SLICE: usize = 64 * 1024;

/// The settings of one direction of a [`ThrottledLink`].
///
/// ```
/// use library_testserver::LinkDirection;
/// let up = LinkDirection::new().rate(150_000);
/// assert_eq!(up.rate_limit(), Some(150_000));
/// assert!(!up.is_stalled());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkDirection {
    rate: Option<u64>,
    stalled: bool,
    stall_after: Option<u64>,
}

impl LinkDirection {
    /// No cap, not stalled: bytes go through as fast as they come.
    pub fn new() -> LinkDirection {
        LinkDirection::default()
    }

    /// Forwards at most `bytes_per_second` (at least 1), in small slices
    /// so that the flow is smooth.
    pub fn rate(mut self, bytes_per_second: u64) -> LinkDirection {
        self.rate = Some(bytes_per_second.max(1));
        self
    }

    /// Removes the rate cap.
    pub fn unlimited(mut self) -> LinkDirection {
        self.rate = None;
        self
    }

    /// Forwards nothing at all while `yes`: the sender's buffers fill up and
    /// its writes stop being accepted, as on a dead link. Connections stay
    /// open.
    pub fn stalled(mut self, yes: bool) -> LinkDirection {
        self.stalled = yes;
        self
    }

    /// Stalls (as [`stalled`](Self::stalled)) once this direction forwarded
    /// `bytes` in all, counted over every connection since the link
    /// started: a link that dies in the middle of a transfer.
    pub fn stall_after(mut self, bytes: u64) -> LinkDirection {
        self.stall_after = Some(bytes);
        self
    }

    /// The rate cap in bytes per second, if any.
    pub fn rate_limit(&self) -> Option<u64> {
        self.rate
    }

    /// Whether this direction forwards nothing.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }
}

/// Configures and starts a [`ThrottledLink`].
#[derive(Debug, Clone)]
pub struct ThrottledLinkBuilder {
    upstream: SocketAddr,
    up: LinkDirection,
    down: LinkDirection,
}

impl ThrottledLinkBuilder {
    /// The client-to-server direction (the uplink).
    pub fn up(mut self, d: LinkDirection) -> Self {
        self.up = d;
        self
    }

    /// The server-to-client direction (the downlink).
    pub fn down(mut self, d: LinkDirection) -> Self {
        self.down = d;
        self
    }

    /// Caps the client-to-server direction at `bytes_per_second`.
    pub fn up_rate(mut self, bytes_per_second: u64) -> Self {
        self.up = self.up.rate(bytes_per_second);
        self
    }

    /// Caps the server-to-client direction at `bytes_per_second`.
    pub fn down_rate(mut self, bytes_per_second: u64) -> Self {
        self.down = self.down.rate(bytes_per_second);
        self
    }

    /// Starts the link on a small runtime of its own (like
    /// [`TestServer`](crate::TestServer)), so that it works the same under
    /// any test runtime.
    pub async fn start(self) -> std::io::Result<ThrottledLink> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("library-testlink")
            .enable_all()
            .build()?;
        let mut link = self.start_on(runtime.handle())?;
        link.runtime = Some(runtime);
        Ok(link)
    }

    /// Starts the link on the runtime of `handle` (the caller's, say).
    /// Its tasks end when the link is dropped.
    pub fn start_on(self, handle: &tokio::runtime::Handle) -> std::io::Result<ThrottledLink> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _guard = handle.enter();
            TcpListener::from_std(listener)?
        };
        let (up, _) = watch::channel(self.up);
        let (down, _) = watch::channel(self.down);
        let shared = Arc::new(Shared {
            up,
            down,
            upstream: self.upstream,
            connections: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        let task = handle.spawn(accept_loop(listener, shared.clone()));
        Ok(ThrottledLink {
            addr,
            shared,
            task: Some(task),
            runtime: None,
        })
    }
}

struct Shared {
    up: watch::Sender<LinkDirection>,
    down: watch::Sender<LinkDirection>,
    upstream: SocketAddr,
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A TCP proxy on `127.0.0.1` that forwards every connection to an
/// upstream address, with a rate cap per direction and a switch that stalls
/// a direction completely: a slow or dead uplink or downlink in a test.
/// Settings can be changed while connections are open. Dropping the link
/// stops it and closes its connections.
///
/// Point a client at [`url`](Self::url) instead of the server (or use the
/// link as the client's HTTP proxy, so that every request whatever its host
/// goes through it to one listener).
///
/// ```
/// use library_testserver::{LinkDirection, TestServer, ThrottledLink};
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let server = TestServer::start().await?;
///     // Uploads crawl at 150 KB/s; downloads are not capped.
///     let link = ThrottledLink::builder(server.library_addr())
///         .up(LinkDirection::new().rate(150_000))
///         .start()
///         .await?;
///     assert_ne!(link.url(), server.url());
///     // A client built with `base_url(link.url())` now talks to the server
///     // through the slow link. Later, the uplink dies:
///     link.stall(true);
///     assert!(link.up_settings().is_stalled());
///     Ok(())
/// }
/// ```
pub struct ThrottledLink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for ThrottledLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottledLink")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("up", &*self.shared.up.borrow())
            .field("down", &*self.shared.down.borrow())
            .finish_non_exhaustive()
    }
}

impl ThrottledLink {
    /// A builder for a link to `upstream`, with neither direction capped.
    pub fn builder(upstream: SocketAddr) -> ThrottledLinkBuilder {
        ThrottledLinkBuilder {
            upstream,
            up: LinkDirection::new(),
            down: LinkDirection::new(),
        }
    }

    /// The address the link listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/` of the link.
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("socket address makes a valid URL")
    }

    /// Stalls the client-to-server direction (`true`) or lets it flow
    /// again at its rate (`false`, which also drops a
    /// [`stall_after`](LinkDirection::stall_after) limit), on open
    /// connections too.
    pub fn stall(&self, yes: bool) {
        self.shared.up.send_modify(|d| {
            d.stalled = yes;
            if !yes {
                d.stall_after = None;
            }
        });
    }

    /// Replaces the settings of the client-to-server direction.
    pub fn set_up(&self, d: LinkDirection) {
        self.shared.up.send_replace(d);
    }

    /// Replaces the settings of the server-to-client direction.
    pub fn set_down(&self, d: LinkDirection) {
        self.shared.down.send_replace(d);
    }

    /// The settings of the client-to-server direction.
    pub fn up_settings(&self) -> LinkDirection {
        self.shared.up.borrow().clone()
    }

    /// The settings of the server-to-client direction.
    pub fn down_settings(&self) -> LinkDirection {
        self.shared.down.borrow().clone()
    }

    /// How many connections the link accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from clients to the server so far.
    pub fn bytes_up(&self) -> u64 {
        self.shared.bytes_up.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from the server to clients so far.
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(Ordering::Relaxed)
    }
}

impl Drop for ThrottledLink {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it ends them.
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                conns.spawn(async move {
                    if let Err(e) = forward(client, shared).await {
                        tracing::debug!(error = %e, "throttled link: connection ended");
                    }
                });
            }
            // Reap finished connections so that the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn forward(client: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let server = TcpStream::connect(shared.upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = pump(client_r, server_w, &shared.up, &shared.bytes_up);
    let down = pump(server_r, client_w, &shared.down, &shared.bytes_down);
    // Each direction runs until its sender closes; a failure of one ends
    // the connection.
    tokio::try_join!(up, down)?;
    Ok(())
}

/// Copies `from` to `to` under the settings of `dir`, with a token bucket
/// refilled at the rate cap (bursts of one slice at most).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    settings: &watch::Sender<LinkDirection>,
    counter: &AtomicU64,
) -> std::io::Result<()> {
    let mut dir = settings.subscribe();
    let mut buf = vec![0u8; UNCAPPED_SLICE];
    // When the next byte may go out.
    let mut allowed_at = Instant::now();
    loop {
        // While stalled, do not even read: the sender's buffers fill.
        let now = dir
            .wait_for(|d| !d.stalled)
            .await
            .map(|d| (*d).clone())
            .unwrap_or_default();
        let mut slice = match now.rate {
            Some(rate) => ((rate / SLICES_PER_SECOND).max(1) as usize).min(UNCAPPED_SLICE),
            None => UNCAPPED_SLICE,
        };
        if let Some(limit) = now.stall_after {
            let left = limit.saturating_sub(counter.load(Ordering::Relaxed));
            if left == 0 {
                settings.send_if_modified(|d| {
                    let newly = !d.stalled && d.stall_after == Some(limit);
                    d.stalled |= newly;
                    newly
                });
                continue;
            }
            slice = slice.min(left.min(UNCAPPED_SLICE as u64) as usize);
        }
        let n = from.read(&mut buf[..slice]).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(rate) = now.rate {
            allowed_at = allowed_at.max(Instant::now())
                + Duration::from_nanos(n as u64 * 1_000_000_000 / rate);
            tokio::time::sleep_until(allowed_at).await;
        }
    }
}
