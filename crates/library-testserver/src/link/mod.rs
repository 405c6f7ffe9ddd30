//! A TCP link with rate caps and a delay per direction, to simulate a
//! slow, far or dead network between a client and a server.

mod pump;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

use pump::DirectionState;

/// The settings of one direction of a [`ThrottledLink`].
///
/// ```
/// use std::time::Duration;
/// use library_testserver::LinkDirection;
/// let up = LinkDirection::new().rate(150_000);
/// assert_eq!(up.rate_limit(), Some(150_000));
/// assert!(!up.is_stalled());
/// // A far server whose uplink is shared by all its clients' streams:
/// let down = LinkDirection::new()
///     .delay(Duration::from_millis(25))
///     .total_rate(40_000_000);
/// assert_eq!(down.delay_time(), Duration::from_millis(25));
/// assert_eq!(down.total_rate_limit(), Some(40_000_000));
/// assert_eq!(down.rate_limit(), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkDirection {
    rate: Option<u64>,
    total_rate: Option<u64>,
    delay: Duration,
    window: Option<u64>,
    stalled: bool,
    stall_after: Option<u64>,
}

impl LinkDirection {
    /// No cap, not stalled: bytes go through as fast as they come.
    pub fn new() -> LinkDirection {
        LinkDirection::default()
    }

    /// Forwards at most `bytes_per_second` (at least 1) on each connection,
    /// in small slices so that the flow is smooth: a server or object store
    /// that caps every stream (nginx `limit_rate`), so that more streams
    /// add up to more.
    pub fn rate(mut self, bytes_per_second: u64) -> LinkDirection {
        self.rate = Some(bytes_per_second.max(1));
        self
    }

    /// Forwards at most `bytes_per_second` (at least 1) over all the
    /// connections of the link together: a server whose bandwidth is
    /// capped, so that more streams only share it. The connections that
    /// move data take turns slice by slice, so that each gets about an
    /// equal share. With [`rate`](Self::rate) as well, each connection
    /// keeps to both caps.
    pub fn total_rate(mut self, bytes_per_second: u64) -> LinkDirection {
        self.total_rate = Some(bytes_per_second.max(1));
        self
    }

    /// Delays every byte of this direction by `delay` (one way: the
    /// round-trip time a link adds is the delay up plus the delay down).
    /// The delay is a delay line, not a pause between slices: bytes keep
    /// flowing at the rate they come (or at the caps), each leaving `delay`
    /// after it arrived, so that throughput stays as it is and only
    /// latency is added. Up to 1024 slices (each at most 64 KiB) can be on
    /// their way at once on one connection; beyond that the link stops
    /// reading, as a full network would.
    pub fn delay(mut self, delay: Duration) -> LinkDirection {
        self.delay = delay;
        self
    }

    /// Keeps at most `bytes` (at least 1) of one connection in the delay
    /// line at once, as a TCP window bounds the bytes in flight: with a
    /// [`delay`](Self::delay), each connection then moves at most
    /// `bytes / delay` per second, so that one stream is slow on a long
    /// path and more streams add up. Read when a connection opens.
    ///
    /// ```
    /// use std::time::Duration;
    /// use library_testserver::LinkDirection;
    /// // 512 KiB per 20 ms: about 26 MB/s per connection.
    /// let down = LinkDirection::new()
    ///     .delay(Duration::from_millis(20))
    ///     .window(512 << 10);
    /// assert_eq!(down.window_size(), Some(512 << 10));
    /// ```
    pub fn window(mut self, bytes: u64) -> LinkDirection {
        self.window = Some(bytes.max(1));
        self
    }

    /// The bytes of one connection the delay line holds at most, if
    /// bounded.
    pub fn window_size(&self) -> Option<u64> {
        self.window
    }

    /// Removes both rate caps (the delay and stall settings stay).
    pub fn unlimited(mut self) -> LinkDirection {
        self.rate = None;
        self.total_rate = None;
        self
    }

    /// Forwards nothing at all while `yes`: the sender's buffers fill up and
    /// its writes stop being accepted, as on a dead link. Connections stay
    /// open.
    pub fn stalled(mut self, yes: bool) -> LinkDirection {
        self.stalled = yes;
        self
    }

    /// Stalls (as [`stalled`](Self::stalled)) once this direction took in
    /// `bytes` in all, counted over every connection since the link
    /// started: a link that dies in the middle of a transfer. (Bytes in the
    /// delay line when it stalls still arrive.)
    pub fn stall_after(mut self, bytes: u64) -> LinkDirection {
        self.stall_after = Some(bytes);
        self
    }

    /// The rate cap of each connection in bytes per second, if any.
    pub fn rate_limit(&self) -> Option<u64> {
        self.rate
    }

    /// The cap of all connections together in bytes per second, if any.
    pub fn total_rate_limit(&self) -> Option<u64> {
        self.total_rate
    }

    /// The one-way delay added to every byte (zero by default).
    pub fn delay_time(&self) -> Duration {
        self.delay
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

    /// Adds `rtt` of round-trip time: half of it as the
    /// [`delay`](LinkDirection::delay) of each direction.
    pub fn round_trip_time(mut self, rtt: Duration) -> Self {
        self.up = self.up.delay(rtt / 2);
        self.down = self.down.delay(rtt - rtt / 2);
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
        let listener = {
            let _guard = handle.enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            // Accepted connections inherit the buffer of the listener.
            socket.set_recv_buffer_size(SOCKET_BUFFER)?;
            socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
            socket.listen(1024)?
        };
        let addr = listener.local_addr()?;
        let (up, _) = watch::channel(self.up);
        let (down, _) = watch::channel(self.down);
        let shared = Arc::new(Shared {
            up,
            down,
            upstream: self.upstream,
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            up_state: DirectionState::default(),
            down_state: DirectionState::default(),
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
    /// Connections open now, and the most open at once.
    open: AtomicU64,
    peak: AtomicU64,
    up_state: DirectionState,
    down_state: DirectionState,
}

/// Counts a connection as open until dropped (its task ended or aborted).
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: Arc<Shared>) -> Open {
        let now = shared.open.fetch_add(1, Ordering::Relaxed) + 1;
        shared.peak.fetch_max(now, Ordering::Relaxed);
        Open(shared)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP proxy on `127.0.0.1` that forwards every connection to an
/// upstream address, with per direction a rate cap of each connection, a
/// cap of all connections together, a delay, and a switch that stalls the
/// direction completely: a slow, far, crowded or dead uplink or downlink in
/// a test. Settings can be changed while connections are open (a delay
/// change applies to bytes read from then on). Dropping the link stops it
/// and closes its connections.
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

    /// How many connections are open now.
    pub fn open_connections(&self) -> u64 {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// The most connections that were open at the same time so far (a
    /// connection counts from its accept until both its directions ended).
    pub fn peak_connections(&self) -> u64 {
        self.shared.peak.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from clients to the server so far (written to the
    /// server: bytes still in the delay line are not counted yet).
    pub fn bytes_up(&self) -> u64 {
        self.shared.up_state.forwarded.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from the server to clients so far (written to the
    /// clients).
    pub fn bytes_down(&self) -> u64 {
        self.shared.down_state.forwarded.load(Ordering::Relaxed)
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
                let open = Open::new(shared.clone());
                let shared = shared.clone();
                conns.spawn(async move {
                    let _open = open;
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

/// The receive buffer of both sockets of a link connection. A real path
/// holds only the bytes in flight; loopback sockets would otherwise take
/// several MiB at once, so that a server would see a large answer as sent
/// long before its client got it.
const SOCKET_BUFFER: u32 = 64 * 1024;

async fn forward(client: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let socket = if shared.upstream.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    let server = socket.connect(shared.upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = pump::pump(client_r, server_w, &shared.up, &shared.up_state);
    let down = pump::pump(server_r, client_w, &shared.down, &shared.down_state);
    // Each direction runs until its sender closes; a failure of one ends
    // the connection.
    tokio::try_join!(up, down)?;
    Ok(())
}
