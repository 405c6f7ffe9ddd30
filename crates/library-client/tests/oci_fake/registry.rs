// The in-process OCI registry of the OCI tests (oci_fake_registry.rs,
// oci_cache.rs), included by each: one that can misbehave on request.

/// How the registry misbehaves.
#[derive(Debug, Clone, Default)]
struct Knobs {
    /// Requests must carry `Authorization: Bearer <token>`.
    token: Option<String>,
    /// Requests must carry some `Authorization` header (even `none`).
    any_authorization: bool,
    /// Sent as `WWW-Authenticate` with a 401.
    challenge: Option<String>,
    /// Blob GETs of more than 4 KiB serve one byte changed.
    corrupt_blobs: bool,
    /// Manifest GETs by digest answer this `Content-Type`.
    manifest_content_type: Option<String>,
    /// Blob GETs answer 307 to the storage listener.
    redirect_blobs: bool,
    /// Blob GETs ignore `Range` and answer 200 with the whole blob.
    ignore_range: bool,
    /// The next PATCHes fail with 500: `Some(true)` after keeping the first
    /// half of the chunk, `Some(false)` keeping nothing.
    fail_patches: Vec<(usize, bool)>,
    /// The `Range` an upload's status (`GET`) answers, instead of the
    /// bytes held.
    status_range: Option<String>,
}

#[derive(Debug, Clone)]
struct Seen {
    storage: bool,
    method: Method,
    path: String,
    query: String,
    authorization: Option<String>,
}

#[derive(Default)]
struct State {
    knobs: Knobs,
    blobs: HashMap<String, Bytes>,
    uploads: HashMap<String, Vec<u8>>,
    manifests: HashMap<(String, String), (String, Bytes)>,
    log: Vec<Seen>,
    next: u64,
    patches: usize,
}

struct Fake {
    url: Url,
    storage: Url,
    state: Arc<Mutex<State>>,
}

impl Fake {
    async fn start(knobs: Knobs) -> Fake {
        let state = Arc::new(Mutex::new(State {
            knobs,
            ..State::default()
        }));
        let reg = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sto = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", reg.local_addr().unwrap())).unwrap();
        let storage = Url::parse(&format!("http://{}/", sto.local_addr().unwrap())).unwrap();
        for (listener, is_storage) in [(reg, false), (sto, true)] {
            let ctx = Ctx {
                state: state.clone(),
                url: url.clone(),
                storage: storage.clone(),
                is_storage,
            };
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let ctx = ctx.clone();
                            async move { Ok::<_, Infallible>(ctx.handle(req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        }
        Fake {
            url,
            storage,
            state,
        }
    }

    fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.state.lock().unwrap().knobs)
    }

    fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }

    fn blob(&self, digest: &str) -> Option<Bytes> {
        self.state.lock().unwrap().blobs.get(digest).cloned()
    }

    fn registry(&self, token: Option<&str>) -> OciRegistry {
        OciRegistry::new(
            HttpClient::new().unwrap(),
            self.url.clone(),
            token.map(str::to_string),
        )
        .retry(fast_retry())
    }
}

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_max_retries(3).with_backoff(
        std::time::Duration::from_millis(2),
        std::time::Duration::from_millis(20),
    )
}

#[derive(Clone)]
struct Ctx {
    state: Arc<Mutex<State>>,
    url: Url,
    storage: Url,
    is_storage: bool,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(Full::new(body.into())).unwrap()
}

fn error(status: u16, code: &str, extra: &[(&str, String)]) -> Reply {
    let body = format!(
        r#"{{"errors":[{{"code":"{code}","message":"{}"}}]}}"#,
        code.to_lowercase()
    );
    let mut h = vec![("content-type", "application/json".to_string())];
    h.extend(extra.iter().cloned());
    reply(status, &h, body)
}

fn sha256(b: &[u8]) -> String {
    let hex: String = Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Serves `data` for a GET/HEAD, honouring `Range: bytes=a-b`.
fn serve_bytes(method: &Method, headers: &HeaderMap, digest: &str, data: &[u8]) -> Reply {
    let total = data.len();
    let mut h = vec![
        ("docker-content-digest", digest.to_string()),
        ("accept-ranges", "bytes".to_string()),
        ("content-type", "application/octet-stream".to_string()),
    ];
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    let (status, body) = match range {
        Some((a, b)) if a < total => {
            let b = b.min(total - 1);
            h.push(("content-range", format!("bytes {a}-{b}/{total}")));
            (206, Bytes::copy_from_slice(&data[a..=b]))
        }
        Some(_) => return reply(416, &[], ""),
        None => (200, Bytes::copy_from_slice(data)),
    };
    if *method == Method::HEAD {
        h.push(("content-length", body.len().to_string()));
        return reply(status, &h, Bytes::new());
    }
    reply(status, &h, body)
}

impl Ctx {
    async fn handle(self, req: Request<Incoming>) -> Reply {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or("").to_string();
        let authorization = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut st = self.state.lock().unwrap();
        st.log.push(Seen {
            storage: self.is_storage,
            method: parts.method.clone(),
            path: path.clone(),
            query: query.clone(),
            authorization: authorization.clone(),
        });
        if self.is_storage {
            let digest = path.trim_start_matches("/storage/");
            return match st.blobs.get(digest) {
                Some(b) => serve_bytes(&parts.method, &parts.headers, digest, b),
                None => error(404, "BLOB_UNKNOWN", &[]),
            };
        }
        if path == "/token" {
            let token = st.knobs.token.clone().unwrap_or_default();
            return reply(200, &[], format!(r#"{{"access_token":"{token}"}}"#));
        }
        let k = st.knobs.clone();
        let challenge: Vec<(&str, String)> = k
            .challenge
            .iter()
            .map(|c| ("www-authenticate", c.clone()))
            .collect();
        if let Some(t) = &k.token {
            if authorization.as_deref() != Some(format!("Bearer {t}").as_str()) {
                return error(401, "UNAUTHORIZED", &challenge);
            }
        } else if k.any_authorization && authorization.is_none() {
            return error(401, "UNAUTHORIZED", &challenge);
        }
        if path == "/v2/" {
            return reply(200, &[], "{}");
        }
        let rest = path.strip_prefix("/v2/").unwrap_or("");
        let m = &parts.method;
        if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
            let here = |id: &str, st: &State| -> Vec<(&str, String)> {
                let len = st.uploads.get(id).map_or(0, |u| u.len());
                vec![
                    (
                        "location",
                        format!("{}v2/{name}/blobs/uploads/{id}?_state=s{len}", self.url),
                    ),
                    ("range", format!("0-{}", len.saturating_sub(1))),
                    ("docker-upload-uuid", id.to_string()),
                ]
            };
            if id.is_empty() && *m == Method::POST {
                st.next += 1;
                let id = format!("u{}", st.next);
                st.uploads.insert(id.clone(), Vec::new());
                // A relative Location here; absolute ones afterwards.
                let h = vec![
                    (
                        "location",
                        format!("/v2/{name}/blobs/uploads/{id}?_state=s0"),
                    ),
                    ("range", "0-0".to_string()),
                ];
                return reply(202, &h, "");
            }
            if !st.uploads.contains_key(id) {
                return error(404, "BLOB_UPLOAD_UNKNOWN", &[]);
            }
            match *m {
                Method::PATCH => {
                    st.patches += 1;
                    let n = st.patches;
                    let have = st.uploads[id].len();
                    let range = parts
                        .headers
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let want = format!("{have}-{}", have + body.len() - 1);
                    if range != want {
                        return error(416, "BLOB_UPLOAD_INVALID", &[]);
                    }
                    let declared = parts
                        .headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<usize>().ok());
                    if declared != Some(body.len()) {
                        return error(400, "SIZE_INVALID", &[]);
                    }
                    if let Some(i) = st.knobs.fail_patches.iter().position(|(at, _)| *at == n) {
                        let (_, keep_half) = st.knobs.fail_patches.remove(i);
                        if keep_half {
                            let half = body.len() / 2;
                            st.uploads
                                .get_mut(id)
                                .unwrap()
                                .extend_from_slice(&body[..half]);
                        }
                        return error(500, "UNKNOWN", &[]);
                    }
                    st.uploads.get_mut(id).unwrap().extend_from_slice(&body);
                    reply(202, &here(id, &st), "")
                }
                Method::GET => {
                    let mut h = here(id, &st);
                    if let Some(r) = &st.knobs.status_range {
                        h.retain(|(k, _)| *k != "range");
                        h.push(("range", r.clone()));
                    }
                    reply(204, &h, "")
                }
                Method::PUT => {
                    let digest = query
                        .split('&')
                        .find_map(|p| p.strip_prefix("digest="))
                        .unwrap_or("")
                        .replace("%3A", ":");
                    let mut data = st.uploads.remove(id).unwrap();
                    data.extend_from_slice(&body);
                    if sha256(&data) != digest {
                        return error(400, "DIGEST_INVALID", &[]);
                    }
                    st.blobs.insert(digest.clone(), Bytes::from(data));
                    reply(201, &[("docker-content-digest", digest)], "")
                }
                _ => error(405, "UNSUPPORTED", &[]),
            }
        } else if let Some((_, digest)) = rest.split_once("/blobs/") {
            let Some(data) = st.blobs.get(digest).cloned() else {
                return error(404, "BLOB_UNKNOWN", &[]);
            };
            if *m == Method::GET && k.redirect_blobs {
                let to = format!("{}storage/{digest}?sig=x", self.storage);
                return reply(307, &[("location", to)], "");
            }
            let mut data = data.to_vec();
            if k.corrupt_blobs && data.len() > 4096 {
                let mid = data.len() / 2;
                data[mid] ^= 0xff;
            }
            let mut headers = parts.headers.clone();
            if k.ignore_range {
                headers.remove("range");
            }
            serve_bytes(m, &headers, digest, &data)
        } else if let Some((name, reference)) = rest.split_once("/manifests/") {
            let key = (name.to_string(), reference.to_string());
            if *m == Method::PUT {
                let ct = parts
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let d = sha256(&body);
                st.manifests.insert(key, (ct.clone(), body.clone()));
                st.manifests
                    .insert((name.to_string(), d.clone()), (ct, body));
                return reply(201, &[("docker-content-digest", d)], "");
            }
            let Some((ct, doc)) = st.manifests.get(&key).cloned() else {
                return error(404, "MANIFEST_UNKNOWN", &[]);
            };
            let accept = parts
                .headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !accept.split(',').any(|a| a.trim() == ct) {
                return error(404, "MANIFEST_UNKNOWN", &[]);
            }
            let shown = match (&k.manifest_content_type, reference.starts_with("sha256:")) {
                (Some(other), true) => other.clone(),
                _ => ct,
            };
            let h = vec![
                ("content-type", shown),
                ("docker-content-digest", sha256(&doc)),
            ];
            reply(200, &h, doc)
        } else {
            error(404, "NAME_UNKNOWN", &[])
        }
    }
}

const LIBRARY_TOKEN: &str = "library-secret-7d1";
const REGISTRY_TOKEN: &str = "registry-token-c09";

/// A fake registry that wants `REGISTRY_TOKEN`, a test library in front of
/// it that wants `LIBRARY_TOKEN`, and a client of that library.
async fn library_before_registry() -> (Fake, library_testserver::TestServer, Client) {
    let fake = Fake::start(Knobs {
        token: Some(REGISTRY_TOKEN.into()),
        ..Knobs::default()
    })
    .await;
    let server = library_testserver::TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(fake.url.clone(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let client = Client::builder()
        .base_url(server.url().as_str())
        .token(LIBRARY_TOKEN)
        .retry(fast_retry())
        .build()
        .unwrap();
    (fake, server, client)
}
