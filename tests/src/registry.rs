//! A small OCI distribution registry for the OCI path, on the scripted
//! server, with queued faults per kind of request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use library_model::{
    Descriptor, ImageIndex, ImageManifest, Platform, SifConfig, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_SIF_CONFIG, MEDIA_TYPE_SIF_LAYER,
};
use url::Url;

use crate::scripted::{Reply, Scripted, Seen, Step};
use crate::sha256_digest;

/// Which registry requests a [`RegFault`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The first `GET` of the layer (`Range: bytes=0-0`), which finds
    /// where the blob is served.
    LayerProbe,
    /// A ranged `GET` of a layer part (any `Range` but the probe's).
    LayerPart,
    /// A `GET` of a blob without `Range` (the config blob).
    ConfigGet,
    /// A `GET` of a manifest or index.
    ManifestGet,
    /// `HEAD` of a blob.
    BlobHead,
    /// `POST blobs/uploads/`.
    UploadStart,
    /// A `PATCH` of an upload.
    Patch,
    /// The closing `PUT …?digest=`.
    UploadFinish,
    /// `PUT manifests/<ref>`.
    ManifestPut,
}

/// What a faulted request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// This status, with an OCI error body.
    Status(u16),
    /// The connection is closed without an answer.
    Drop,
    /// The normal status and headers, this many body bytes, then the
    /// connection is cut.
    DropAfter(usize),
    /// One byte less than `Content-Length`, then the connection is cut.
    Short,
    /// 1000 bytes more than asked (with a `Content-Length` saying so).
    Long,
    /// A `Content-Range` naming the range one byte further on.
    WrongRange,
    /// `200` with the whole blob to a range request.
    IgnoreRange,
    /// Wait before answering.
    Delay(Duration),
    /// Send this many bytes, then stay silent for this long, then the rest.
    Stall(usize, Duration),
    /// One byte of the body flipped.
    Corrupt,
    /// A `Docker-Content-Digest` that is not the digest of what is served
    /// or stored.
    WrongDigest,
}

/// A queued registry fault.
#[derive(Debug, Clone)]
pub struct RegFault {
    target: Target,
    action: Action,
    remaining: Option<usize>,
    range_start: Option<u64>,
}

impl RegFault {
    /// A fault for the next request of kind `target`.
    pub fn new(target: Target, action: Action) -> RegFault {
        RegFault {
            target,
            action,
            remaining: Some(1),
            range_start: None,
        }
    }

    /// For the next `n` matching requests.
    pub fn times(mut self, n: usize) -> RegFault {
        self.remaining = Some(n);
        self
    }

    /// For every matching request.
    pub fn always(mut self) -> RegFault {
        self.remaining = None;
        self
    }

    /// Only for ranged requests starting at `offset`.
    pub fn range_start(mut self, offset: u64) -> RegFault {
        self.range_start = Some(offset);
        self
    }
}

/// What a seeded image is made of.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// `sha256:<hex>` of the SIF bytes.
    pub layer_digest: String,
    /// `sha256:<hex>` of the config blob.
    pub config_digest: String,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
}

#[derive(Default)]
struct State {
    token: Option<String>,
    blobs: HashMap<String, Bytes>,
    uploads: HashMap<String, Vec<u8>>,
    manifests: HashMap<(String, String), (String, Bytes)>,
    faults: Vec<RegFault>,
    /// Where blob GETs are redirected to (a `Location` value), if set.
    blob_location: Option<String>,
    /// Manifests answer this instead of their real bytes (for size tests).
    manifest_override: Option<(String, Bytes)>,
    next: u64,
}

/// A running registry.
pub struct Registry {
    server: Scripted,
    state: Arc<Mutex<State>>,
}

impl Registry {
    /// Starts a registry; with `token`, every request must carry
    /// `Authorization: Bearer <token>`.
    pub async fn start(token: Option<&str>) -> Registry {
        Self::start_with(token, |_| None).await
    }

    /// Starts a registry that lets `other` answer first: requests for which
    /// it gives a reply never reach the registry (to put a library on the
    /// registry's own origin).
    pub async fn start_with(
        token: Option<&str>,
        other: impl Fn(&Seen) -> Option<Reply> + Send + Sync + 'static,
    ) -> Registry {
        let state = Arc::new(Mutex::new(State {
            token: token.map(str::to_string),
            ..State::default()
        }));
        let st = state.clone();
        let server =
            Scripted::start(move |seen| other(seen).unwrap_or_else(|| handle(&st, seen))).await;
        Registry { server, state }
    }

    /// The registry's base URL.
    pub fn url(&self) -> Url {
        self.server.url()
    }

    /// Upload sessions started and neither finished nor cancelled.
    pub fn open_uploads(&self) -> usize {
        self.state.lock().unwrap().uploads.len()
    }

    /// Every request seen.
    pub fn log(&self) -> Vec<Seen> {
        self.server.log()
    }

    /// Queues a fault.
    pub fn inject(&self, f: RegFault) {
        self.state.lock().unwrap().faults.push(f);
    }

    /// Forgets every queued fault.
    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Blob GETs answer `307` to this `Location` from now on.
    pub fn redirect_blobs(&self, location: &str) {
        self.state.lock().unwrap().blob_location = Some(location.to_string());
    }

    /// Every manifest GET answers this document with this media type, and
    /// its true digest in `Docker-Content-Digest`.
    pub fn override_manifests(&self, media_type: &str, doc: Bytes) {
        self.state.lock().unwrap().manifest_override = Some((media_type.to_string(), doc));
    }

    /// The stored blob with `digest`.
    pub fn blob(&self, digest: &str) -> Option<Bytes> {
        self.state.lock().unwrap().blobs.get(digest).cloned()
    }

    /// Stores a SIF image under `name:tag` for `arch`: the layer, its
    /// config, a manifest under `sha256.<hex>` and an index under `tag`,
    /// as a push would. `layer_size` overrides the size the manifest states.
    pub fn seed(
        &self,
        name: &str,
        tag: &str,
        arch: &str,
        layer: Bytes,
        layer_size: Option<i64>,
    ) -> Seeded {
        let layer_digest = sha256_digest(&layer);
        let config = SifConfig {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            rootfs: layer_digest.clone(),
            description: String::new(),
            signed: false,
            encrypted: false,
        };
        let config_bytes = Bytes::from(serde_json::to_vec(&config).unwrap());
        let config_digest = sha256_digest(&config_bytes);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: MEDIA_TYPE_SIF_CONFIG.to_string(),
                digest: config_digest.clone(),
                size: config_bytes.len() as i64,
                annotations: None,
                platform: None,
            },
            layers: vec![Descriptor {
                media_type: MEDIA_TYPE_SIF_LAYER.to_string(),
                digest: layer_digest.clone(),
                size: layer_size.unwrap_or(layer.len() as i64),
                annotations: None,
                platform: None,
            }],
            annotations: None,
        };
        let manifest_bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
        let manifest_digest = sha256_digest(&manifest_bytes);
        let index = ImageIndex {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_INDEX.to_string(),
            manifests: vec![Descriptor {
                media_type: MEDIA_TYPE_OCI_MANIFEST.to_string(),
                digest: manifest_digest.clone(),
                size: manifest_bytes.len() as i64,
                annotations: None,
                platform: Some(Platform {
                    architecture: arch.to_string(),
                    os: "linux".to_string(),
                }),
            }],
            annotations: None,
        };
        let index_bytes = Bytes::from(serde_json::to_vec(&index).unwrap());
        let mut st = self.state.lock().unwrap();
        st.blobs.insert(layer_digest.clone(), layer);
        st.blobs.insert(config_digest.clone(), config_bytes);
        let m = (MEDIA_TYPE_OCI_MANIFEST.to_string(), manifest_bytes);
        let hash_tag = format!("sha256.{}", &layer_digest["sha256:".len()..]);
        st.manifests.insert((name.to_string(), hash_tag), m.clone());
        st.manifests
            .insert((name.to_string(), manifest_digest.clone()), m);
        st.manifests.insert(
            (name.to_string(), tag.to_string()),
            (MEDIA_TYPE_OCI_INDEX.to_string(), index_bytes),
        );
        Seeded {
            layer_digest,
            config_digest,
            manifest_digest,
        }
    }
}

fn oci_error(status: u16, code: &str) -> Reply {
    Reply::status(status).json(&serde_json::json!({
        "errors": [{"code": code, "message": code.to_lowercase()}]
    }))
}

/// Takes one use of the first fault matching `target` (and the range).
fn take_fault(st: &mut State, target: Target, range: Option<u64>) -> Option<Action> {
    let i = st.faults.iter().position(|f| {
        f.target == target
            && f.remaining != Some(0)
            && (f.range_start.is_none() || f.range_start == range)
    })?;
    let action = st.faults[i].action;
    if let Some(n) = st.faults[i].remaining.as_mut() {
        *n -= 1;
        if *n == 0 {
            st.faults.remove(i);
        }
    }
    Some(action)
}

/// Serves a blob (or a part of it) with `action` applied.
fn blob_reply(seen: &Seen, digest: &str, data: &Bytes, action: Option<Action>) -> Reply {
    let total = data.len() as u64;
    let range = seen.range().filter(|(a, _)| *a < total);
    let (a, b) = range.unwrap_or((0, total.saturating_sub(1)));
    let b = b.min(total.saturating_sub(1));
    let slice = if total == 0 {
        Bytes::new()
    } else {
        data.slice(a as usize..=b as usize)
    };
    let base = |status: u16| {
        let r = Reply::status(status)
            .header("docker-content-digest", digest)
            .header("accept-ranges", "bytes")
            .header("content-type", "application/octet-stream");
        if status == 206 {
            r.header("content-range", format!("bytes {a}-{b}/{total}"))
        } else {
            r
        }
    };
    let status = if range.is_some() { 206 } else { 200 };
    let len = slice.len();
    match action {
        None => {
            if seen.range().is_some() && range.is_none() {
                return Reply::status(416).header("content-range", format!("bytes */{total}"));
            }
            base(status).body(slice)
        }
        Some(Action::Status(c)) => oci_error(c, "UNAVAILABLE"),
        Some(Action::Drop) => Reply::drop_connection(),
        Some(Action::DropAfter(n)) => base(status)
            .header("content-length", len.to_string())
            .steps(vec![
                Step::Data(slice.slice(..n.min(len))),
                Step::Sleep(Duration::from_millis(20)),
                Step::Fail,
            ]),
        Some(Action::Short) => base(status)
            .header("content-length", len.to_string())
            .steps(vec![
                Step::Data(slice.slice(..len.saturating_sub(1))),
                Step::Sleep(Duration::from_millis(20)),
                Step::Fail,
            ]),
        Some(Action::Long) => {
            let mut v = slice.to_vec();
            v.extend(std::iter::repeat_n(0x5a, 1000));
            base(status).body(v)
        }
        Some(Action::WrongRange) => Reply::status(206)
            .header("docker-content-digest", digest)
            .header(
                "content-range",
                format!("bytes {}-{}/{total}", a + 1, b + 1),
            )
            .body(slice),
        Some(Action::IgnoreRange) => Reply::status(200)
            .header("docker-content-digest", digest)
            .body(data.clone()),
        Some(Action::Delay(d)) => base(status).body(slice).delayed(d),
        Some(Action::Stall(n, d)) => {
            let n = n.min(len);
            base(status)
                .header("content-length", len.to_string())
                .steps(vec![
                    Step::Data(slice.slice(..n)),
                    Step::Sleep(d),
                    Step::Data(slice.slice(n..)),
                ])
        }
        Some(Action::Corrupt) => {
            let mut v = slice.to_vec();
            if !v.is_empty() {
                let mid = v.len() / 2;
                v[mid] ^= 0xff;
            }
            base(status).body(v)
        }
        Some(Action::WrongDigest) => Reply::status(status)
            .header("docker-content-digest", sha256_digest(b"something else"))
            .body(slice),
    }
}

fn handle(state: &Arc<Mutex<State>>, seen: &Seen) -> Reply {
    let mut st = state.lock().unwrap();
    if seen.path == "/token" {
        let t = st.token.clone().unwrap_or_default();
        return Reply::status(200).json(&serde_json::json!({ "token": t }));
    }
    if let Some(t) = &st.token {
        if seen.authorization() != Some(format!("Bearer {t}").as_str()) {
            return oci_error(401, "UNAUTHORIZED");
        }
    }
    if seen.path == "/v2/" {
        return Reply::status(200).json(&serde_json::json!({}));
    }
    let rest = seen.path.strip_prefix("/v2/").unwrap_or("");
    let m = &seen.method;
    if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
        let loc = |id: &str, len: usize| {
            (
                format!("/v2/{name}/blobs/uploads/{id}"),
                format!("0-{}", len.saturating_sub(1)),
            )
        };
        if id.is_empty() && *m == Method::POST {
            let delay = match pre_fault(&mut st, Target::UploadStart) {
                Ok(d) => d,
                Err(r) => return r,
            };
            st.next += 1;
            let id = format!("u{}", st.next);
            st.uploads.insert(id.clone(), Vec::new());
            let (l, r) = loc(&id, 0);
            return delayed(
                Reply::status(202).header("location", l).header("range", r),
                delay,
            );
        }
        if !st.uploads.contains_key(id) {
            return oci_error(404, "BLOB_UPLOAD_UNKNOWN");
        }
        return match *m {
            Method::PATCH => {
                let delay = match pre_fault(&mut st, Target::Patch) {
                    Ok(d) => d,
                    Err(r) => return r,
                };
                st.uploads
                    .get_mut(id)
                    .unwrap()
                    .extend_from_slice(&seen.body);
                let (l, r) = loc(id, st.uploads[id].len());
                delayed(
                    Reply::status(202).header("location", l).header("range", r),
                    delay,
                )
            }
            Method::GET => {
                let (l, r) = loc(id, st.uploads[id].len());
                Reply::status(204).header("location", l).header("range", r)
            }
            Method::PUT => {
                let fault = take_fault(&mut st, Target::UploadFinish, None);
                if let Some(a) = fault.filter(|a| *a != Action::WrongDigest) {
                    return simple_fault(a);
                }
                let digest =
                    url::form_urlencoded::parse(seen.query.as_deref().unwrap_or("").as_bytes())
                        .find(|(k, _)| k == "digest")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                let mut data = st.uploads.remove(id).unwrap();
                data.extend_from_slice(&seen.body);
                if sha256_digest(&data) != digest {
                    return oci_error(400, "DIGEST_INVALID");
                }
                st.blobs.insert(digest.clone(), Bytes::from(data));
                let shown = if fault == Some(Action::WrongDigest) {
                    sha256_digest(b"something else")
                } else {
                    digest
                };
                Reply::status(201).header("docker-content-digest", shown)
            }
            Method::DELETE => {
                st.uploads.remove(id);
                Reply::status(204)
            }
            _ => oci_error(405, "UNSUPPORTED"),
        };
    }
    if let Some((_, digest)) = rest.split_once("/blobs/") {
        let target = match (m, seen.range()) {
            (&Method::HEAD, _) => Target::BlobHead,
            (_, Some((0, 0))) => Target::LayerProbe,
            (_, Some(_)) => Target::LayerPart,
            (_, None) => Target::ConfigGet,
        };
        let fault = take_fault(&mut st, target, seen.range_start());
        let Some(data) = st.blobs.get(digest).cloned() else {
            return oci_error(404, "BLOB_UNKNOWN");
        };
        if *m == Method::HEAD {
            if let Some(a) = fault {
                return simple_fault(a);
            }
            return Reply::status(200)
                .header("docker-content-digest", digest)
                .header("content-length", data.len().to_string());
        }
        if let Some(loc) = &st.blob_location {
            return Reply::status(307).header("location", loc.replace("{digest}", digest));
        }
        return blob_reply(seen, digest, &data, fault);
    }
    if let Some((name, reference)) = rest.split_once("/manifests/") {
        let key = (name.to_string(), reference.to_string());
        if *m == Method::PUT {
            let fault = take_fault(&mut st, Target::ManifestPut, None);
            if let Some(a) = fault.filter(|a| *a != Action::WrongDigest) {
                return simple_fault(a);
            }
            let ct = seen.header("content-type").unwrap_or("").to_string();
            let d = sha256_digest(&seen.body);
            st.manifests.insert(key, (ct.clone(), seen.body.clone()));
            st.manifests
                .insert((name.to_string(), d.clone()), (ct, seen.body.clone()));
            let shown = if fault == Some(Action::WrongDigest) {
                sha256_digest(b"something else")
            } else {
                d
            };
            return Reply::status(201).header("docker-content-digest", shown);
        }
        let fault = take_fault(&mut st, Target::ManifestGet, None);
        let found = match &st.manifest_override {
            Some(o) => Some(o.clone()),
            None => st.manifests.get(&key).cloned(),
        };
        let Some((ct, doc)) = found else {
            return oci_error(404, "MANIFEST_UNKNOWN");
        };
        let accept = seen.header("accept").unwrap_or("");
        if st.manifest_override.is_none() && !accept.split(',').any(|a| a.trim() == ct) {
            return oci_error(404, "MANIFEST_UNKNOWN");
        }
        let digest = sha256_digest(&doc);
        let ok = Reply::status(200).header("content-type", &ct);
        return match fault {
            None => ok.header("docker-content-digest", digest).body(doc),
            Some(Action::Corrupt) => {
                let mut v = doc.to_vec();
                let mid = v.len() / 2;
                v[mid] ^= 0x01;
                ok.header("docker-content-digest", digest).body(v)
            }
            Some(Action::WrongDigest) => ok
                .header("docker-content-digest", sha256_digest(b"something else"))
                .body(doc),
            Some(Action::Delay(d)) => ok
                .header("docker-content-digest", digest)
                .body(doc)
                .delayed(d),
            Some(a) => simple_fault(a),
        };
    }
    oci_error(404, "NAME_UNKNOWN")
}

/// The answer of a fault on a request without a body to serve: a status
/// or a dropped connection (every other action drops it too).
fn simple_fault(a: Action) -> Reply {
    match a {
        Action::Status(c) => oci_error(c, "UNAVAILABLE"),
        _ => Reply::drop_connection(),
    }
}

/// Takes a fault for `target`: a delay to apply to the normal answer, or
/// the answer that replaces it.
fn pre_fault(st: &mut State, target: Target) -> Result<Option<Duration>, Reply> {
    match take_fault(st, target, None) {
        None => Ok(None),
        Some(Action::Delay(d)) => Ok(Some(d)),
        Some(a) => Err(simple_fault(a)),
    }
}

fn delayed(r: Reply, d: Option<Duration>) -> Reply {
    match d {
        Some(d) => r.delayed(d),
        None => r,
    }
}
