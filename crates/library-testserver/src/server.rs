//! The listeners, the routing and the endpoint handlers.

// Handlers return `Result<Reply, Reply>`: both sides are whole answers, and
// the error side is built at most once per request.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, RANGE};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use library_model::{
    AbortMultipartUploadRequest, ArchImageTag, Collection, CompleteMultipartUploadRequest,
    Container, Entity, Image, ImageTag, MultipartUpload, MultipartUploadStartRequest, UploadImage,
    UploadImageComplete, UploadImagePart, UploadImagePartRequest, UploadImageRequest,
    OPTION_S3_COMPLIANT,
};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use url::Url;

use crate::body::{Payload, Reply, RespBody};
use crate::db::{random_hex, Db, MultipartState, Path, SingleUpload, StoredPart, DEFAULT_ARCH};
use crate::faults::{Endpoint, FaultAction, Faults};
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
    pub(crate) blob_url: Url,
    pub(crate) s3: Option<S3Client>,
    /// The worker pool of the library listener, when it has one.
    workers: Option<Arc<tokio::sync::Semaphore>>,
}

impl Shared {
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Compares semantic versions well enough for the thresholds that matter:
/// `major.minor.patch[-pre.release]`, a release sorting after its
/// pre-releases and numeric identifiers comparing as numbers.
pub(crate) fn version_at_least(v: &str, min: &str) -> bool {
    fn parse(v: &str) -> Option<(Vec<u64>, Vec<String>)> {
        let v = v.trim().trim_start_matches('v');
        let v = v.split('+').next()?;
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, p.split('.').map(str::to_string).collect()),
            None => (v, Vec::new()),
        };
        let nums: Option<Vec<u64>> = core.split('.').map(|n| n.parse().ok()).collect();
        let nums = nums?;
        (nums.len() == 3).then_some((nums, pre))
    }
    let (Some((a, ap)), Some((b, bp))) = (parse(v), parse(min)) else {
        return false;
    };
    if a != b {
        return a > b;
    }
    match (ap.is_empty(), bp.is_empty()) {
        (true, _) => return true,
        (false, true) => return false,
        _ => {}
    }
    for (x, y) in ap.iter().zip(bp.iter()) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            _ => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord.is_gt();
        }
    }
    ap.len() >= bp.len()
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

pub(crate) async fn start(config: Config) -> std::io::Result<TestServer> {
    let runtime = OwnedRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("library-testserver")
            .enable_all()
            .build()?,
    ));
    let library = StdListener::bind((config.bind, config.port))?;
    let blob = StdListener::bind((config.bind, 0))?;
    library.set_nonblocking(true)?;
    blob.set_nonblocking(true)?;
    let library_addr = library.local_addr()?;
    let blob_addr = blob.local_addr()?;
    let api_version = config.api_version.clone().unwrap_or_default();
    let api = Api {
        v2_upload: version_at_least(&api_version, "2.0.0-alpha.1"),
        v2_tags: version_at_least(&api_version, "2.0.0-alpha.2"),
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
        workers,
        store: Store::new(&config.storage)?,
        config,
        api,
        db: Mutex::new(Db::default()),
        log: RequestLog::default(),
        faults: Faults::default(),
        library_url: base_url(library_addr),
        blob_url: base_url(blob_addr),
        s3,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (listener, which) in [(library, Listener::Library), (blob, Listener::Blob)] {
        let listener = {
            let _guard = runtime.get().enter();
            TcpListener::from_std(listener)?
        };
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
    let service = service_fn(move |req| handle(shared.clone(), which, req));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(TokioIo::new(sock), service).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The endpoints, parsed from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    EntityCreate,
    EntityGet(String),
    CollectionCreate,
    CollectionGet(String),
    ContainerCreate,
    ContainerGet(String),
    ImageCreate,
    ImageGet(String),
    ImageDelete(String),
    Search,
    TagsGet { v2: bool, container: String },
    TagsSet { v2: bool, container: String },
    Pull(String),
    UploadV1(String),
    UploadStart(String),
    UploadComplete(String),
    MultipartStart(String),
    MultipartPartUrl(String),
    MultipartComplete(String),
    MultipartAbort(String),
    OciRedirect,
    Blob(String),
    UploadPut(String),
    PartPut(String, u64),
    NotFound,
}

impl Route {
    fn parse(listener: Listener, method: &Method, path: &str) -> Route {
        let get = method == Method::GET;
        let post = method == Method::POST;
        let put = method == Method::PUT;
        if let Some(id) = path.strip_prefix("blobs/") {
            if get || method == Method::HEAD {
                return Route::Blob(id.to_string());
            }
            return Route::NotFound;
        }
        if let Some(rest) = path.strip_prefix("uploads/") {
            if !put {
                return Route::NotFound;
            }
            return match rest.split_once("/parts/") {
                Some((id, n)) => match n.parse::<u64>() {
                    Ok(n) => Route::PartPut(id.to_string(), n),
                    Err(_) => Route::NotFound,
                },
                None => Route::UploadPut(rest.to_string()),
            };
        }
        if listener == Listener::Blob {
            return Route::NotFound;
        }
        let s = |x: &str| x.to_string();
        match (method.clone(), path) {
            (Method::GET, "version") => return Route::Version,
            (Method::POST, "v1/entities") => return Route::EntityCreate,
            (Method::POST, "v1/collections") => return Route::CollectionCreate,
            (Method::POST, "v1/containers") => return Route::ContainerCreate,
            (Method::POST, "v1/images") => return Route::ImageCreate,
            (Method::GET, "v1/search") => return Route::Search,
            (Method::GET, "v1/oci-redirect") => return Route::OciRedirect,
            _ => {}
        }
        if let Some(r) = path.strip_prefix("v1/entities/") {
            if get {
                return Route::EntityGet(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/collections/") {
            if get {
                return Route::CollectionGet(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/containers/") {
            if get {
                return Route::ContainerGet(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/images/") {
            if get {
                return Route::ImageGet(s(r));
            }
            if method == Method::DELETE {
                return Route::ImageDelete(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/tags/") {
            let container = s(r);
            if get {
                return Route::TagsGet {
                    v2: false,
                    container,
                };
            }
            if post {
                return Route::TagsSet {
                    v2: false,
                    container,
                };
            }
        } else if let Some(r) = path.strip_prefix("v2/tags/") {
            let container = s(r);
            if get {
                return Route::TagsGet {
                    v2: true,
                    container,
                };
            }
            if post {
                return Route::TagsSet {
                    v2: true,
                    container,
                };
            }
        } else if let Some(r) = path.strip_prefix("v1/imagefile/") {
            if get {
                return Route::Pull(s(r));
            }
            if post {
                return Route::UploadV1(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v2/imagefile/") {
            return match (r.split_once('/'), post, put) {
                (None, true, _) => Route::UploadStart(s(r)),
                (Some((id, "_complete")), _, true) => Route::UploadComplete(s(id)),
                (Some((id, "_multipart")), true, _) => Route::MultipartStart(s(id)),
                (Some((id, "_multipart")), _, true) => Route::MultipartPartUrl(s(id)),
                (Some((id, "_multipart_complete")), _, true) => Route::MultipartComplete(s(id)),
                (Some((id, "_multipart_abort")), _, true) => Route::MultipartAbort(s(id)),
                _ => Route::NotFound,
            };
        }
        Route::NotFound
    }

    fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Route::Version => Endpoint::Version,
            Route::EntityCreate | Route::EntityGet(_) => Endpoint::Entities,
            Route::CollectionCreate | Route::CollectionGet(_) => Endpoint::Collections,
            Route::ContainerCreate | Route::ContainerGet(_) => Endpoint::Containers,
            Route::ImageCreate | Route::ImageGet(_) | Route::ImageDelete(_) => Endpoint::Images,
            Route::Search => Endpoint::Search,
            Route::TagsGet { .. } | Route::TagsSet { .. } => Endpoint::Tags,
            Route::Pull(_) => Endpoint::ImageFile,
            Route::UploadV1(_) => Endpoint::UploadV1,
            Route::UploadStart(_) => Endpoint::UploadStart,
            Route::UploadComplete(_) => Endpoint::UploadComplete,
            Route::MultipartStart(_) => Endpoint::MultipartStart,
            Route::MultipartPartUrl(_) => Endpoint::MultipartPartUrl,
            Route::MultipartComplete(_) => Endpoint::MultipartComplete,
            Route::MultipartAbort(_) => Endpoint::MultipartAbort,
            Route::OciRedirect => Endpoint::OciRedirect,
            Route::Blob(_) => Endpoint::Blob,
            Route::UploadPut(_) => Endpoint::UploadPut,
            Route::PartPut(..) => Endpoint::MultipartPartPut,
            Route::NotFound => return None,
        })
    }

    /// Endpoints whose request body is file data, streamed to storage.
    fn streams_body(&self) -> bool {
        matches!(
            self,
            Route::UploadV1(_) | Route::UploadPut(_) | Route::PartPut(..)
        )
    }

    /// Endpoints that work like presigned URLs: no library token.
    fn needs_token(&self) -> bool {
        !matches!(
            self,
            Route::Blob(_) | Route::UploadPut(_) | Route::PartPut(..) | Route::NotFound
        )
    }
}

/// Decodes `%XX` escapes of a path.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed `Range: bytes=…` header (one range only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `a-b` or `a-` (`None` end).
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

fn parse_range(headers: &HeaderMap) -> Option<RangeSpec> {
    let v = headers.get(RANGE)?.to_str().ok()?.trim();
    let spec = v.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(RangeSpec::Suffix(b.parse().ok()?));
    }
    let a: u64 = a.parse().ok()?;
    if b.is_empty() {
        return Some(RangeSpec::From(a, None));
    }
    let b: u64 = b.parse().ok()?;
    (b >= a).then_some(RangeSpec::From(a, Some(b)))
}

/// The first and last byte a range selects, or `None` when it cannot be
/// satisfied.
fn resolve_range(spec: RangeSpec, total: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From(a, _) if a >= total => None,
        RangeSpec::From(a, b) => Some((a, b.unwrap_or(total - 1).min(total - 1))),
        RangeSpec::Suffix(0) => None,
        RangeSpec::Suffix(_) if total == 0 => None,
        RangeSpec::Suffix(n) => Some((total.saturating_sub(n), total - 1)),
    }
}

fn range_start(headers: &HeaderMap) -> Option<u64> {
    match parse_range(headers)? {
        RangeSpec::From(a, _) => Some(a),
        RangeSpec::Suffix(_) => None,
    }
}

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
    let pool = match (&shared.workers, listener) {
        (Some(pool), Listener::Library) => Some(pool.clone()),
        _ => None,
    };
    let Some(pool) = pool else {
        return handle_request(shared, listener, req).await;
    };
    let worker = pool.acquire_owned().await?;
    let resp = handle_request(shared, listener, req).await?;
    Ok(resp.map(|body| crate::body::hold_until_sent(body, worker)))
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
    let fault = shared
        .faults
        .take(route.endpoint(), part, range_start(&ctx.headers));
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
        Route::NotFound => Err(Reply::error(404, "no such endpoint")),
    };
    result.unwrap_or_else(|r| r)
}

type Handled = Result<Reply, Reply>;

fn api_error((code, msg): (u16, String)) -> Reply {
    Reply::error(code, msg)
}

fn version(ctx: &Ctx) -> Reply {
    let cfg = &ctx.shared.config;
    let mut data = serde_json::json!({ "version": cfg.version });
    if let Some(v) = &cfg.api_version {
        data["apiVersion"] = serde_json::Value::String(v.clone());
    }
    Reply::raw_json(200, &serde_json::json!({ "data": data }))
}

fn create_entity(ctx: &Ctx) -> Handled {
    let body: Entity = ctx.json()?;
    let e = ctx.shared.db().create_entity(body).map_err(api_error)?;
    Ok(Reply::json(&e))
}

fn get_entity(ctx: &Ctx, name: &str) -> Handled {
    let db = ctx.shared.db();
    let e = db
        .entity_by_name(name)
        .ok_or_else(|| Reply::error(404, format!("entity {name} not found")))?;
    Ok(Reply::json(e))
}

fn create_collection(ctx: &Ctx) -> Handled {
    let body: Collection = ctx.json()?;
    let c = ctx.shared.db().create_collection(body).map_err(api_error)?;
    Ok(Reply::json(&c))
}

fn get_collection(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, format!("collection {r} not found"));
    let (e, c) = r.split_once('/').ok_or_else(not_found)?;
    let db = ctx.shared.db();
    let col = db.find_collection(e, c).ok_or_else(not_found)?;
    Ok(Reply::json(&db.present_collection(col)))
}

fn create_container(ctx: &Ctx) -> Handled {
    let body: Container = ctx.json()?;
    let c = ctx.shared.db().create_container(body).map_err(api_error)?;
    Ok(Reply::json(&c))
}

fn get_container(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, format!("container {r} not found"));
    let path = Path::parse(r).ok_or_else(not_found)?;
    let db = ctx.shared.db();
    let c = db.find_container(&path).ok_or_else(not_found)?;
    Ok(Reply::json(&db.present_container(c)))
}

fn create_image(ctx: &Ctx) -> Handled {
    let body: Image = ctx.json()?;
    let i = ctx.shared.db().create_image(body).map_err(api_error)?;
    Ok(Reply::json(&i))
}

fn get_image(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, format!("image {r} not found"));
    let (path, tag) = Path::parse_with_tag(r).ok_or_else(not_found)?;
    let arch = ctx.param("arch");
    let db = ctx.shared.db();
    let image = db
        .find_image(&path, &tag, arch.as_deref())
        .ok_or_else(not_found)?;
    Ok(Reply::json(&db.present_image(image)))
}

fn delete_image(ctx: &Ctx, r: &str) -> Handled {
    let arch = ctx
        .param("arch")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Reply::error(400, "arch is required"))?;
    let (path, tag) = Path::parse_with_tag(r)
        .filter(|_| r.contains(':'))
        .ok_or_else(|| Reply::error(400, format!("invalid image reference {r:?}")))?;
    let mut db = ctx.shared.db();
    let id = db
        .find_image(&path, &tag, Some(&arch))
        .map(|i| i.id.clone())
        .ok_or_else(|| Reply::error(404, format!("image {r} not found")))?;
    let image = db.delete_image(&id).expect("image exists");
    Ok(Reply::json(&image))
}

fn search(ctx: &Ctx) -> Handled {
    let value = ctx.param("value").unwrap_or_default();
    if value.chars().count() < 3 {
        return Err(Reply::error(
            400,
            "search value must be at least 3 characters",
        ));
    }
    let signed = match ctx.param("signed").as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => return Err(Reply::error(400, format!("invalid signed value {other:?}"))),
    };
    let arch = ctx.param("arch");
    let results = ctx.shared.db().search(&value, arch.as_deref(), signed);
    Ok(Reply::json(&results))
}

fn get_tags(ctx: &Ctx, v2: bool, container: &str) -> Handled {
    if v2 && !ctx.shared.api.v2_tags {
        return Err(Reply::error(404, "this server has no v2 tags"));
    }
    let db = ctx.shared.db();
    let c = db
        .containers
        .get(container)
        .ok_or_else(|| Reply::error(404, format!("container {container} not found")))?;
    Ok(if v2 {
        Reply::json(&c.arch_tags.clone().unwrap_or_default())
    } else {
        Reply::json(&c.image_tags.clone().unwrap_or_default())
    })
}

fn set_tag(ctx: &Ctx, v2: bool, container: &str) -> Handled {
    let mut db;
    if v2 {
        if !ctx.shared.api.v2_tags {
            return Err(Reply::error(404, "this server has no v2 tags"));
        }
        let body: ArchImageTag = ctx.json()?;
        if body.arch.is_empty() {
            return Err(Reply::error(400, "Arch is required"));
        }
        db = ctx.shared.db();
        db.set_tag(container, Some(&body.arch), &body.tag, &body.image_id)
            .map_err(api_error)?;
    } else {
        let body: ImageTag = ctx.json()?;
        db = ctx.shared.db();
        db.set_tag(container, None, &body.tag, &body.image_id)
            .map_err(api_error)?;
    }
    let c = &db.containers[container];
    Ok(if v2 {
        Reply::json(&c.arch_tags.clone().unwrap_or_default())
    } else {
        Reply::json(&c.image_tags.clone().unwrap_or_default())
    })
}

fn pull(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, "requested image was not found");
    let (path, tag) = Path::parse_with_tag(r).ok_or_else(not_found)?;
    let arch = ctx
        .param("arch")
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_ARCH.to_string());
    let (id, hash, data) = {
        let mut db = ctx.shared.db();
        let image = db
            .find_image(&path, &tag, Some(&arch))
            .filter(|i| i.uploaded)
            .ok_or_else(not_found)?;
        let (id, hash) = (image.id.clone(), image.hash.clone());
        let data = db.blob(&id).ok_or_else(not_found)?;
        db.count_download(&id);
        (id, hash, data)
    };
    let base = match ctx.shared.config.download {
        DownloadMode::Stream => return Ok(serve_data(ctx, data, &hash)),
        DownloadMode::RedirectSameListener => &ctx.shared.library_url,
        DownloadMode::RedirectOtherListener => &ctx.shared.blob_url,
    };
    let location = format!("{base}blobs/{id}?sig={}", random_hex(32));
    Ok(Reply::empty(303).header("location", location))
}

fn blob(ctx: &Ctx, id: &str) -> Handled {
    let (hash, data) = {
        let db = ctx.shared.db();
        let data = db
            .blob(id)
            .ok_or_else(|| Reply::error(404, format!("blob {id} not found")))?;
        (
            db.image(id).map(|i| i.hash.clone()).unwrap_or_default(),
            data,
        )
    };
    Ok(serve_data(ctx, data, &hash))
}

/// Answers a download of stored bytes: 200 with everything, or 206 / 416
/// for a `Range` request, with the range faults applied.
fn serve_data(ctx: &Ctx, data: Data, hash: &str) -> Reply {
    let total = data.len();
    let etag = format!("\"{}\"", hash.strip_prefix("sha256.").unwrap_or(hash));
    let whole = |data: Data| {
        Reply::new(
            200,
            Payload::Data {
                data,
                start: 0,
                len: total,
            },
        )
    };
    // Preconditions as RFC 9110 has them: an If-Match that names no
    // current tag fails with 412; an If-Range that is not the current tag
    // turns a range request into one for the whole object.
    let is_current = |v: &str| v.split(',').any(|t| t.trim() == "*" || t.trim() == etag);
    if let Some(want) = ctx.header("if-match") {
        if !is_current(want) {
            return Reply::error(412, format!("If-Match {want}: the object is now {etag}"))
                .header("etag", etag);
        }
    }
    let range = match ctx.header("if-range") {
        Some(v) if v.trim() != etag => None,
        _ => parse_range(&ctx.headers),
    };
    let reply = match range {
        None => whole(data),
        Some(spec) => match resolve_range(spec, total) {
            None => Reply::error(416, "requested range not satisfiable")
                .header("content-range", format!("bytes */{total}")),
            Some(_) if ctx.fault == Some(FaultAction::IgnoreRange) => whole(data),
            Some((a, b)) => {
                let claimed = if ctx.fault == Some(FaultAction::WrongContentRange) {
                    if b + 1 < total {
                        format!("bytes {}-{}/{total}", a + 1, b + 1)
                    } else if a > 0 {
                        format!("bytes {}-{}/{total}", a - 1, b - 1)
                    } else {
                        format!("bytes {a}-{b}/{}", total + 1)
                    }
                } else {
                    format!("bytes {a}-{b}/{total}")
                };
                Reply::new(
                    206,
                    Payload::Data {
                        data,
                        start: a,
                        len: b - a + 1,
                    },
                )
                .header("content-range", claimed)
            }
        },
    };
    reply
        .header("accept-ranges", "bytes")
        .header("etag", etag)
        .header("content-type", "application/octet-stream")
}

/// Checks an image's `sha256.<hex>` hash against the SHA-256 of its bytes
/// (other hash kinds are not checked).
fn hash_matches(image_hash: &str, sha256: &str) -> bool {
    match image_hash.strip_prefix("sha256.") {
        Some(h) => h.eq_ignore_ascii_case(sha256),
        None => true,
    }
}

async fn upload_v1(ctx: &mut Ctx, id: &str) -> Handled {
    let hash = ctx
        .shared
        .db()
        .image(id)
        .map(|i| i.hash.clone())
        .ok_or_else(|| Reply::error(404, format!("image {id} not found")))?;
    let Some(expected) = ctx.content_length() else {
        return Err(Reply::error(411, "Content-Length is required"));
    };
    let r = ctx
        .receive(
            Want {
                md5: false,
                sha256: true,
            },
            expected,
        )
        .await?;
    if r.len != expected {
        return Err(Reply::error(400, "body length differs from Content-Length"));
    }
    let sha = r.sha256.unwrap_or_default();
    if !hash_matches(&hash, &sha) {
        return Err(Reply::error(
            400,
            format!("uploaded file has sha256 {sha}, image hash is {hash}"),
        ));
    }
    ctx.shared.db().mark_uploaded(id, r.data);
    Ok(Reply::empty(200))
}

fn complete_answer(db: &Db, base: &Url, image_id: &str) -> Reply {
    let container_url = db
        .image(image_id)
        .and_then(|i| db.image_path(i))
        .map(|p| {
            format!(
                "{base}library/{}/{}/{}",
                p.entity, p.collection, p.container
            )
        })
        .unwrap_or_default();
    Reply::json(&UploadImageComplete {
        quota: db.quota(),
        container_url,
    })
}

/// A presigned-style URL on the blob listener.
fn presigned(base: &Url, path: &str, sign_sha256: bool, extra: &[(&str, String)]) -> String {
    let mut url = base.join(path).expect("relative path joins");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
        q.append_pair("X-Amz-Expires", "3600");
        q.append_pair(
            "X-Amz-SignedHeaders",
            if sign_sha256 {
                "host;x-amz-content-sha256"
            } else {
                "host"
            },
        );
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        q.append_pair("X-Amz-Signature", &random_hex(64));
    }
    url.to_string()
}

fn v2_available(ctx: &Ctx) -> Result<(), Reply> {
    if ctx.shared.api.v2_upload {
        Ok(())
    } else {
        Err(Reply::error(404, "this server has no v2 upload API"))
    }
}

fn image_hash(ctx: &Ctx, id: &str) -> Result<String, Reply> {
    ctx.shared
        .db()
        .image(id)
        .map(|i| i.hash.clone())
        .ok_or_else(|| Reply::error(404, format!("image {id} not found")))
}

async fn upload_start(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    image_hash(ctx, id)?;
    let body: UploadImageRequest = ctx.json()?;
    if body.size < 0 {
        return Err(Reply::error(400, "filesize must not be negative"));
    }
    let upload_id = random_hex(32);
    let (url, s3_key) = match &ctx.shared.s3 {
        Some(s3) => {
            let key = format!("images/{id}/{upload_id}");
            (s3.presign_put(&key, &body.sha256_checksum), Some(key))
        }
        None => (
            presigned(
                &ctx.shared.blob_url,
                &format!("uploads/{upload_id}"),
                ctx.shared.config.s3_compliant,
                &[],
            ),
            None,
        ),
    };
    ctx.shared.db().uploads.insert(
        upload_id,
        SingleUpload {
            image_id: id.to_string(),
            size: body.size as u64,
            md5: body.md5_checksum,
            sha256: body.sha256_checksum,
            sign_sha256: ctx.shared.config.s3_compliant,
            data: None,
            s3_key,
        },
    );
    Ok(Reply::json(&UploadImage { upload_url: url }))
}

/// Checks `x-amz-content-sha256` when it is signed: present, and equal to
/// `expected` when that is known.
fn check_signed_sha(ctx: &Ctx, expected: Option<&str>) -> Result<Option<String>, Reply> {
    let Some(sent) = ctx.header("x-amz-content-sha256") else {
        return Err(Reply::s3_error(
            403,
            "SignatureDoesNotMatch",
            "x-amz-content-sha256 is signed but was not sent",
        ));
    };
    if let Some(e) = expected {
        if !e.eq_ignore_ascii_case(sent) {
            return Err(Reply::s3_error(
                400,
                "XAmzContentSHA256Mismatch",
                "x-amz-content-sha256 differs from the announced sha256sum",
            ));
        }
    }
    Ok(Some(sent.to_ascii_lowercase()))
}

async fn upload_put(ctx: &mut Ctx, upload_id: &str) -> Handled {
    let upload = ctx
        .shared
        .db()
        .uploads
        .get(upload_id)
        .cloned()
        .ok_or_else(|| Reply::s3_error(404, "NoSuchUpload", "unknown upload"))?;
    if ctx.content_length() != Some(upload.size) {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            &format!(
                "Content-Length must be {} (got {:?})",
                upload.size,
                ctx.header("content-length")
            ),
        ));
    }
    let signed_sha = if upload.sign_sha256 {
        check_signed_sha(ctx, None)?
    } else {
        None
    };
    let r = ctx
        .receive(
            Want {
                md5: true,
                sha256: true,
            },
            upload.size,
        )
        .await?;
    let md5 = r.md5.clone().unwrap_or_default();
    let sha = r.sha256.clone().unwrap_or_default();
    if r.len != upload.size {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            "body length differs",
        ));
    }
    if let Some(sent) = signed_sha {
        if sent != sha {
            return Err(Reply::s3_error(
                400,
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 differs from x-amz-content-sha256",
            ));
        }
    }
    if !upload.md5.is_empty() && !upload.md5.eq_ignore_ascii_case(&md5) {
        return Err(Reply::s3_error(400, "BadDigest", "md5 differs from md5sum"));
    }
    if !upload.sha256.is_empty() && !upload.sha256.eq_ignore_ascii_case(&sha) {
        return Err(Reply::s3_error(
            400,
            "BadDigest",
            "sha256 differs from sha256sum",
        ));
    }
    let mut db = ctx.shared.db();
    let Some(u) = db.uploads.get_mut(upload_id) else {
        return Err(Reply::s3_error(404, "NoSuchUpload", "unknown upload"));
    };
    u.data = Some(r.data);
    u.sha256 = sha;
    Ok(Reply::empty(200).header("etag", format!("\"{md5}\"")))
}

async fn upload_complete(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let hash = image_hash(ctx, id)?;
    let pending = {
        let db = ctx.shared.db();
        db.uploads
            .iter()
            .filter(|(_, u)| u.image_id == id && (u.data.is_some() || u.s3_key.is_some()))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect::<Vec<_>>()
    };
    let (data, sha) = if let Some(s3) = &ctx.shared.s3 {
        let Some((_, u)) = pending.into_iter().next() else {
            return Err(Reply::error(400, "no upload was started for this image"));
        };
        let key = u.s3_key.clone().unwrap_or_default();
        let (data, sha) = s3
            .fetch(&key, &ctx.shared.store)
            .await
            .map_err(|e| Reply::error(400, format!("reading the object back from S3: {e}")))?;
        if data.len() != u.size {
            return Err(Reply::error(400, "the stored object has the wrong size"));
        }
        (data, sha)
    } else {
        let Some((_, u)) = pending.into_iter().find(|(_, u)| u.data.is_some()) else {
            return Err(Reply::error(400, "no file was uploaded for this image"));
        };
        (u.data.clone().unwrap_or(Data::Mem(Bytes::new())), u.sha256)
    };
    if !hash_matches(&hash, &sha) {
        return Err(Reply::error(
            400,
            format!("uploaded file has sha256 {sha}, image hash is {hash}"),
        ));
    }
    let mut db = ctx.shared.db();
    db.uploads.retain(|_, u| u.image_id != id);
    db.mark_uploaded(id, data);
    Ok(complete_answer(&db, &ctx.shared.library_url, id))
}

async fn multipart_start(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let part_size = match ctx.shared.config.multipart {
        Multipart::Supported { part_size } => part_size.max(1),
        Multipart::NotSupported => {
            return Err(Reply::error(404, "multipart upload is not supported"))
        }
    };
    image_hash(ctx, id)?;
    let body: MultipartUploadStartRequest = ctx.json()?;
    if body.size < 0 {
        return Err(Reply::error(400, "filesize must not be negative"));
    }
    let size = body.size as u64;
    let total_parts = size.div_ceil(part_size).max(1);
    let upload_id = random_hex(32);
    let s3 = match &ctx.shared.s3 {
        Some(s3) => {
            let key = format!("images/{id}/{upload_id}");
            let s3_id = s3
                .create_multipart(&key)
                .await
                .map_err(|e| Reply::error(500, format!("S3 CreateMultipartUpload: {e}")))?;
            Some((key, s3_id))
        }
        None => None,
    };
    let s3_compliant = ctx.shared.config.s3_compliant;
    ctx.shared.db().multiparts.insert(
        upload_id.clone(),
        MultipartState {
            image_id: id.to_string(),
            size,
            part_size,
            total_parts,
            s3_compliant,
            announced: Default::default(),
            parts: BTreeMap::new(),
            s3,
        },
    );
    let options = BTreeMap::from([(OPTION_S3_COMPLIANT.to_string(), s3_compliant.to_string())]);
    Ok(Reply::json(&MultipartUpload {
        upload_id,
        total_parts: total_parts as i64,
        part_size: part_size as i64,
        options: Some(options),
    }))
}

fn multipart_state(ctx: &Ctx, upload_id: &str, image_id: &str) -> Result<MultipartState, Reply> {
    let db = ctx.shared.db();
    let state = db
        .multiparts
        .get(upload_id)
        .ok_or_else(|| Reply::error(404, format!("upload {upload_id} not found")))?;
    if state.image_id != image_id {
        return Err(Reply::error(
            400,
            format!("upload {upload_id} is not for image {image_id}"),
        ));
    }
    Ok(state.clone())
}

async fn multipart_part_url(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let body: UploadImagePartRequest = ctx.json()?;
    let state = multipart_state(ctx, &body.upload_id, id)?;
    let n = body.part_number;
    if n < 1 || n as u64 > state.total_parts {
        return Err(Reply::error(
            400,
            format!("partNumber {n} is not in 1..={}", state.total_parts),
        ));
    }
    let n = n as u64;
    let expected = state.part_len(n);
    if body.part_size != expected as i64 {
        return Err(Reply::error(
            400,
            format!(
                "partSize of part {n} must be {expected}, not {}",
                body.part_size
            ),
        ));
    }
    if state.s3_compliant && body.sha256_checksum.is_empty() {
        return Err(Reply::error(
            400,
            "sha256sum is required for every part of an S3-compliant upload",
        ));
    }
    let url = match (&ctx.shared.s3, &state.s3) {
        (Some(s3), Some((key, s3_id))) => s3.presign_part(key, s3_id, n, &body.sha256_checksum),
        _ => presigned(
            &ctx.shared.blob_url,
            &format!("uploads/{}/parts/{n}", body.upload_id),
            state.s3_compliant,
            &[
                ("partNumber", n.to_string()),
                ("uploadId", body.upload_id.clone()),
            ],
        ),
    };
    if let Some(s) = ctx.shared.db().multiparts.get_mut(&body.upload_id) {
        s.announced
            .insert(n, body.sha256_checksum.to_ascii_lowercase());
    }
    Ok(Reply::json(&UploadImagePart { presigned_url: url }))
}

async fn part_put(ctx: &mut Ctx, upload_id: &str, n: u64) -> Handled {
    let state = ctx
        .shared
        .db()
        .multiparts
        .get(upload_id)
        .cloned()
        .ok_or_else(|| Reply::s3_error(404, "NoSuchUpload", "unknown upload"))?;
    if n < 1 || n > state.total_parts {
        return Err(Reply::s3_error(
            400,
            "InvalidArgument",
            "part number out of range",
        ));
    }
    let expected = state.part_len(n);
    if ctx.content_length() != Some(expected) {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            &format!(
                "Content-Length of part {n} must be {expected} (got {:?})",
                ctx.header("content-length")
            ),
        ));
    }
    let signed_sha = if state.s3_compliant {
        let announced = state.announced.get(&n).map(String::as_str);
        check_signed_sha(ctx, announced)?
    } else {
        None
    };
    let r = ctx
        .receive(
            Want {
                md5: true,
                sha256: signed_sha.is_some(),
            },
            expected,
        )
        .await?;
    if r.len != expected {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            "body length differs",
        ));
    }
    if let (Some(sent), Some(sha)) = (signed_sha, r.sha256.as_deref()) {
        if sent != sha {
            return Err(Reply::s3_error(
                400,
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 differs from x-amz-content-sha256",
            ));
        }
    }
    let etag = format!("\"{}\"", r.md5.unwrap_or_default());
    let mut db = ctx.shared.db();
    let Some(state) = db.multiparts.get_mut(upload_id) else {
        return Err(Reply::s3_error(404, "NoSuchUpload", "upload was aborted"));
    };
    state.parts.insert(
        n,
        StoredPart {
            data: r.data,
            etag: etag.clone(),
        },
    );
    Ok(Reply::empty(200).header("etag", etag))
}

async fn multipart_complete(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let hash = image_hash(ctx, id)?;
    let body: CompleteMultipartUploadRequest = ctx.json()?;
    let state = multipart_state(ctx, &body.upload_id, id)?;
    let listed = body.completed_parts.unwrap_or_default();
    if listed.len() as u64 != state.total_parts {
        return Err(Reply::error(
            400,
            format!(
                "InvalidPart: {} parts listed, the upload has {}",
                listed.len(),
                state.total_parts
            ),
        ));
    }
    for (i, p) in listed.iter().enumerate() {
        if p.part_number != i as i64 + 1 {
            return Err(Reply::error(
                400,
                "InvalidPartOrder: parts must be listed in ascending order",
            ));
        }
    }
    let (data, sha) = if let (Some(s3), Some((key, s3_id))) = (&ctx.shared.s3, &state.s3) {
        let etags: Vec<String> = listed.iter().map(|p| p.token.clone()).collect();
        s3.complete_multipart(key, s3_id, &etags)
            .await
            .map_err(|e| Reply::error(400, format!("S3 CompleteMultipartUpload: {e}")))?;
        s3.fetch(key, &ctx.shared.store)
            .await
            .map_err(|e| Reply::error(400, format!("reading the object back from S3: {e}")))?
    } else {
        let mut parts = Vec::new();
        for p in &listed {
            let n = p.part_number as u64;
            let Some(stored) = state.parts.get(&n) else {
                return Err(Reply::error(
                    400,
                    format!("InvalidPart: part {n} was not uploaded"),
                ));
            };
            if stored.etag != p.token {
                return Err(Reply::error(
                    400,
                    format!(
                        "InvalidPart: token {:?} of part {n} differs from its ETag {:?}",
                        p.token, stored.etag
                    ),
                ));
            }
            parts.push(stored.data.clone());
        }
        ctx.shared
            .store
            .assemble(parts)
            .await
            .map_err(|e| Reply::error(500, format!("assembling the parts: {e}")))?
    };
    if data.len() != state.size {
        return Err(Reply::error(
            400,
            format!(
                "assembled {} bytes, filesize was {}",
                data.len(),
                state.size
            ),
        ));
    }
    if !hash_matches(&hash, &sha) {
        return Err(Reply::error(
            400,
            format!("uploaded file has sha256 {sha}, image hash is {hash}"),
        ));
    }
    let mut db = ctx.shared.db();
    db.multiparts.remove(&body.upload_id);
    db.mark_uploaded(id, data);
    Ok(complete_answer(&db, &ctx.shared.library_url, id))
}

async fn multipart_abort(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let body: AbortMultipartUploadRequest = ctx.json()?;
    let state = multipart_state(ctx, &body.upload_id, id)?;
    if let (Some(s3), Some((key, s3_id))) = (&ctx.shared.s3, &state.s3) {
        if let Err(e) = s3.abort_multipart(key, s3_id).await {
            tracing::debug!(error = %e, "S3 AbortMultipartUpload failed");
        }
    }
    ctx.shared.db().multiparts.remove(&body.upload_id);
    Ok(Reply::raw_json(200, &serde_json::json!({ "data": null })))
}

fn oci_redirect(ctx: &Ctx) -> Reply {
    let Some((url, token)) = &ctx.shared.config.oci else {
        return Reply::error(404, "this library has no OCI registry");
    };
    let namespace = ctx.param("namespace").unwrap_or_default();
    let name = match Path::parse(&namespace) {
        Some(p) => format!("{}/{}/{}", p.entity, p.collection, p.container),
        None => namespace,
    };
    Reply::raw_json(
        200,
        &serde_json::json!({ "token": token, "url": url.as_str(), "name": name }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_like_semver() {
        assert!(version_at_least("2.0.0-alpha.2", "2.0.0-alpha.1"));
        assert!(version_at_least("2.0.0-alpha.2", "2.0.0-alpha.2"));
        assert!(!version_at_least("2.0.0-alpha.1", "2.0.0-alpha.2"));
        assert!(version_at_least("2.0.0", "2.0.0-alpha.2"));
        assert!(!version_at_least("1.0.0", "2.0.0-alpha.1"));
        assert!(version_at_least("2.1.3", "2.0.0-alpha.2"));
        assert!(version_at_least("2.0.0-beta", "2.0.0-alpha.2"));
        assert!(!version_at_least("", "2.0.0-alpha.1"));
        assert!(!version_at_least("garbage", "2.0.0-alpha.1"));
    }

    #[test]
    fn routes() {
        let r = |m: Method, p: &str| Route::parse(Listener::Library, &m, p);
        assert_eq!(r(Method::GET, "version"), Route::Version);
        assert_eq!(
            r(Method::PUT, "v2/imagefile/abc/_multipart_complete"),
            Route::MultipartComplete("abc".into())
        );
        assert_eq!(
            r(Method::PUT, "uploads/u1/parts/3"),
            Route::PartPut("u1".into(), 3)
        );
        assert_eq!(
            Route::parse(Listener::Blob, &Method::GET, "version"),
            Route::NotFound
        );
        assert_eq!(percent_decode("a%3Ab%2"), "a:b%2");
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(RANGE, v.parse().unwrap());
            parse_range(&m)
        };
        assert_eq!(h("bytes=0-9"), Some(RangeSpec::From(0, Some(9))));
        assert_eq!(h("bytes=5-"), Some(RangeSpec::From(5, None)));
        assert_eq!(h("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(h("bytes=0-1,4-5"), None);
        assert_eq!(
            resolve_range(RangeSpec::From(8, Some(20)), 10),
            Some((8, 9))
        );
        assert_eq!(resolve_range(RangeSpec::From(10, None), 10), None);
        assert_eq!(resolve_range(RangeSpec::Suffix(3), 10), Some((7, 9)));
    }
}
