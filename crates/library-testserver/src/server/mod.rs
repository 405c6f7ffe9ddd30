//! The listeners, the routing and the endpoint handlers.

// Handlers return `Result<Reply, Reply>`: both sides are whole answers, and
// the error side is built at most once per request.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, RANGE};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use library_model::{
    version_at_least, AbortMultipartUploadRequest, ArchImageTag, Collection,
    CompleteMultipartUploadRequest, Container, Entity, Image, ImageTag, MultipartUpload,
    MultipartUploadStartRequest, UploadImage, UploadImageComplete, UploadImagePart,
    UploadImagePartRequest, UploadImageRequest, API_VERSION_V2_ARCH_TAGS, API_VERSION_V2_UPLOAD,
    OPTION_S3_COMPLIANT,
};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use url::Url;

use crate::body::{Payload, Reply, RespBody};
use crate::db::{random_hex, Db, MultipartState, Path, SingleUpload, StoredPart, DEFAULT_ARCH};
use crate::faults::{Endpoint, FaultAction, Faults};
use crate::range::ByteRange;
use crate::record::{Listener, RequestLog};
use crate::s3::S3Client;
use crate::store::{BoxError, Data, Received, Store, Want};
use crate::{Config, DownloadMode, Multipart, TestServer};

/// Largest JSON request body the server reads.
const JSON_BODY_LIMIT: usize = 16 << 20;

/// What the configured API version offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Api {
    pub(crate) v2_upload: bool,
    pub(crate) v2_tags: bool,
}

/// State shared by the listeners and the [`TestServer`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) api: Api,
    db: Mutex<Db>,
    pub(crate) store: Store,
    pub(crate) log: RequestLog,
    pub(crate) faults: Faults,
    pub(crate) library_url: Url,
    /// The base URL of the blob listener handed out in redirects and
    /// upload URLs (see [`TestServer::advertise_blob_url`]).
    blob_url: Mutex<Url>,
    pub(crate) s3: Option<S3Client>,
    /// The worker pool of the library listener, when it has one.
    workers: Option<Arc<tokio::sync::Semaphore>>,
    /// Requests in flight per listener.
    pub(crate) in_flight: Arc<crate::in_flight::InFlight>,
    /// Bytes of stored image data sent in answer bodies (whole images,
    /// ranges and blobs), counted as the frames go out.
    pub(crate) image_bytes_sent: Arc<std::sync::atomic::AtomicU64>,
}

impl Shared {
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The advertised base URL of the blob listener.
    pub(crate) fn blob_url(&self) -> Url {
        self.blob_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_blob_url(&self, url: Url) {
        *self.blob_url.lock().unwrap_or_else(|e| e.into_inner()) = url;
    }
}

fn base_url(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/")).expect("socket address makes a valid URL")
}

/// A runtime that is shut down without blocking when dropped, so that it
/// can be dropped inside another runtime.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("runtime present until taken")
    }

    fn take(mut self) -> tokio::runtime::Runtime {
        self.0.take().expect("runtime present until taken")
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The send buffer of every connection of a server that refuses load.
const SEND_BUFFER_WHEN_REFUSING: u32 = 32 * 1024;

/// The most bytes a connection of a server that refuses load buffers
/// before its socket takes them.
const WRITE_BUFFER_WHEN_REFUSING: usize = 32 * 1024;

/// A listener on `addr`, whose connections get `send_buffer` when given.
/// Must run inside the server's runtime.
fn listen(addr: SocketAddr, send_buffer: Option<u32>) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if let Some(n) = send_buffer {
        // Accepted connections inherit it.
        socket.set_send_buffer_size(n)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

pub(crate) async fn start(config: Config) -> std::io::Result<TestServer> {
    let runtime = OwnedRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("library-testserver")
            .enable_all()
            .build()?,
    ));
    // A server that refuses load must see an answer in flight until its
    // client has (nearly) all of it, as on a real network, not until the
    // kernel took it into a buffer of several MiB.
    let send_buffer = config.busy_above.map(|_| SEND_BUFFER_WHEN_REFUSING);
    let (library, blob) = {
        let _guard = runtime.get().enter();
        (
            listen(SocketAddr::new(config.bind, config.port), send_buffer)?,
            listen(SocketAddr::new(config.bind, 0), send_buffer)?,
        )
    };
    let library_addr = library.local_addr()?;
    let blob_addr = blob.local_addr()?;
    let api_version = config.api_version.clone().unwrap_or_default();
    let api = Api {
        v2_upload: version_at_least(&api_version, API_VERSION_V2_UPLOAD),
        v2_tags: version_at_least(&api_version, API_VERSION_V2_ARCH_TAGS),
    };
    let s3 = match &config.s3 {
        Some(backend) => {
            let backend = backend.clone();
            let client = runtime
                .get()
                .spawn(async move { S3Client::connect(backend).await })
                .await
                .map_err(std::io::Error::other)??;
            Some(client)
        }
        None => None,
    };
    let workers = config
        .workers
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
    let shared = Arc::new(Shared {
        image_bytes_sent: Arc::default(),
        workers,
        in_flight: Default::default(),
        store: Store::new(&config.storage)?,
        config,
        api,
        db: Mutex::new(Db::default()),
        log: RequestLog::default(),
        faults: Faults::default(),
        library_url: base_url(library_addr),
        blob_url: Mutex::new(base_url(blob_addr)),
        s3,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (listener, which) in [(library, Listener::Library), (blob, Listener::Blob)] {
        tasks.push(runtime.get().spawn(accept_loop(
            listener,
            which,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    tracing::debug!(%library_addr, %blob_addr, "library test server started");
    Ok(TestServer {
        shared,
        runtime: Some(runtime.take()),
        library_addr,
        blob_addr,
        stop: stop_tx,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    which: Listener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve_connection(sock, which, shared.clone()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }
}

async fn serve_connection(sock: tokio::net::TcpStream, which: Listener, shared: Arc<Shared>) {
    let refuses_load = shared.config.busy_above.is_some();
    let service = service_fn(move |req| handle(shared.clone(), which, req));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if refuses_load {
        // What the connection buffers is sent as far as the server can
        // tell: kept small, the download counts while its client reads.
        builder.http1().max_buf_size(WRITE_BUFFER_WHEN_REFUSING);
    }
    if let Err(e) = builder.serve_connection(TokioIo::new(sock), service).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

pub(crate) mod discovery;
mod download;
mod library;
mod routes;
mod upload;

use download::*;
use library::*;
use routes::*;
use upload::*;

/// Reads a whole (small) body.
async fn read_body(mut body: Incoming, limit: usize) -> Result<(Bytes, u64), BoxError> {
    let mut buf = BytesMut::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(chunk) = frame?.into_data() {
            len += chunk.len() as u64;
            if buf.len() < limit {
                let take = (limit - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk[..take]);
            }
        }
    }
    Ok((buf.freeze(), len))
}

/// One request being handled.
struct Ctx {
    shared: Arc<Shared>,
    headers: HeaderMap,
    query: Option<String>,
    /// The body of a JSON request.
    body: Bytes,
    /// The body of a streaming request, until it is read.
    incoming: Option<Incoming>,
    seq: u64,
    fault: Option<FaultAction>,
}

impl Ctx {
    fn param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, Reply> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Reply::error(400, format!("invalid JSON body: {e}")))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// Reads and drops the rest of a streaming body, recording its start.
    async fn drain(&mut self) {
        if let Some(body) = self.incoming.take() {
            if let Ok((head, len)) = read_body(body, crate::record::RECORDED_BODY_LIMIT).await {
                self.shared.log.set_body(self.seq, head, len);
            }
        }
    }

    /// Streams the body into storage.
    async fn receive(&mut self, want: Want, hint: u64) -> Result<Received, Reply> {
        let Some(body) = self.incoming.take() else {
            return Err(Reply::error(500, "request body already read"));
        };
        match self.shared.store.receive(body, want, hint).await {
            Ok(r) => {
                self.shared.log.set_body(self.seq, r.head.clone(), r.len);
                Ok(r)
            }
            Err(e) => Err(Reply::error(400, format!("reading the body failed: {e}"))),
        }
    }
}

/// Takes a worker for the request, when the listener has a pool: the
/// request waits, unread, until one is free, and holds it until its answer
/// has been sent (see [`crate::TestServerBuilder::workers`]).
async fn handle(
    shared: Arc<Shared>,
    listener: Listener,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, BoxError> {
    let entered = shared.in_flight.enter(listener);
    let pool = match (&shared.workers, listener) {
        (Some(pool), Listener::Library) => Some(pool.clone()),
        _ => None,
    };
    let resp = match pool {
        None => handle_request(shared, listener, req).await?,
        Some(pool) => {
            let worker = pool.acquire_owned().await?;
            let resp = handle_request(shared, listener, req).await?;
            resp.map(|body| crate::body::hold_until_sent(body, worker))
        }
    };
    Ok(resp.map(|body| crate::in_flight::counted_until_sent(body, entered)))
}

async fn handle_request(
    shared: Arc<Shared>,
    listener: Listener,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, BoxError> {
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let seq = shared.log.start(
        listener,
        &parts.method,
        &raw_path,
        query.as_deref(),
        &parts.headers,
    );
    let path = percent_decode(raw_path.trim_start_matches('/'));
    let route = Route::parse(listener, &parts.method, &path);
    tracing::debug!(?listener, method = %parts.method, path = %raw_path, ?route, "request");
    let mut ctx = Ctx {
        shared: shared.clone(),
        headers: parts.headers,
        query,
        body: Bytes::new(),
        incoming: None,
        seq,
        fault: None,
    };
    if route.streams_body() {
        ctx.incoming = Some(body);
    } else {
        let (b, len) = read_body(body, JSON_BODY_LIMIT).await?;
        shared.log.set_body(seq, b.clone(), len);
        ctx.body = b;
    }
    let part = match &route {
        Route::PartPut(_, n) => Some(*n),
        Route::MultipartPartUrl(_) => serde_json::from_slice::<serde_json::Value>(&ctx.body)
            .ok()
            .and_then(|v| v.get("partNumber").and_then(|n| n.as_u64())),
        _ => None,
    };
    let fault = shared.faults.take(
        route.endpoint(),
        part,
        requested_range(&ctx.headers).and_then(ByteRange::start),
    );
    if let Some(action) = fault {
        tracing::debug!(?action, "injecting fault");
    }
    ctx.fault = fault;
    match fault {
        Some(FaultAction::DropConnection) => {
            return Err("connection dropped by an injected fault".into());
        }
        Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultAction::Status(code)) => {
            ctx.drain().await;
            return Ok(Reply::error(code, "injected fault").into_response(None));
        }
        _ => {}
    }
    let mut reply = if route.needs_token() && !authorized(&shared, &ctx.headers) {
        Reply::error(
            401,
            "authentication required: missing or invalid bearer token",
        )
        .header("www-authenticate", "Bearer")
    } else {
        dispatch(&mut ctx, route).await
    };
    ctx.drain().await;
    if parts.method == Method::HEAD {
        reply.head_only = true;
    }
    Ok(reply.into_response(fault))
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = &shared.config.token else {
        return true;
    };
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"))
}

async fn dispatch(ctx: &mut Ctx, route: Route) -> Reply {
    let result = match route {
        Route::Version => Ok(version(ctx)),
        Route::EntityCreate => create_entity(ctx),
        Route::EntityGet(name) => get_entity(ctx, &name),
        Route::CollectionCreate => create_collection(ctx),
        Route::CollectionGet(r) => get_collection(ctx, &r),
        Route::ContainerCreate => create_container(ctx),
        Route::ContainerGet(r) => get_container(ctx, &r),
        Route::ImageCreate => create_image(ctx),
        Route::ImageGet(r) => get_image(ctx, &r),
        Route::ImageDelete(r) => delete_image(ctx, &r),
        Route::Search => search(ctx),
        Route::TagsGet { v2, container } => get_tags(ctx, v2, &container),
        Route::TagsSet { v2, container } => set_tag(ctx, v2, &container),
        Route::Pull(r) => pull(ctx, &r),
        Route::Blob(id) => blob(ctx, &id),
        Route::UploadV1(id) => upload_v1(ctx, &id).await,
        Route::UploadStart(id) => upload_start(ctx, &id).await,
        Route::UploadPut(id) => upload_put(ctx, &id).await,
        Route::UploadComplete(id) => upload_complete(ctx, &id).await,
        Route::MultipartStart(id) => multipart_start(ctx, &id).await,
        Route::MultipartPartUrl(id) => multipart_part_url(ctx, &id).await,
        Route::PartPut(id, n) => part_put(ctx, &id, n).await,
        Route::MultipartComplete(id) => multipart_complete(ctx, &id).await,
        Route::MultipartAbort(id) => multipart_abort(ctx, &id).await,
        Route::OciRedirect => Ok(oci_redirect(ctx)),
        Route::Discovery => Ok(discovery::config(ctx)),
        Route::TokenStatus => Ok(discovery::token_status(ctx)),
        Route::UserCurrent => Ok(discovery::current_user(ctx)),
        Route::NotFound => Err(Reply::error(404, "no such endpoint")),
    };
    result.unwrap_or_else(|r| r)
}

type Handled = Result<Reply, Reply>;

fn api_error((code, msg): (u16, String)) -> Reply {
    Reply::error(code, msg)
}
