//! A scripted library: just the endpoints of one pull and one push, with
//! knobs for the answers a hostile or broken library could give (where
//! its 303 points, the image size, the IDs, the upload URLs, the
//! multipart plan, a huge JSON body).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use url::Url;

use crate::scripted::{serve_bytes, Reply, Scripted, Seen, Step};
use crate::sha256_hex;

/// The answers of a [`MiniLib`]. `{base}` in a URL knob is replaced by the
/// library's own base URL (with its trailing `/`), `{n}` by a part number.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// The image served for pulls (and whose record `v1/images` gives).
    pub image: Bytes,
    /// The `id` of the image record (pushes use it in upload paths).
    pub image_id: String,
    /// The `id` of the container (tags use it in their path).
    pub container_id: String,
    /// The `size` of the image record, instead of the image's length.
    pub image_size: Option<i64>,
    /// Where `GET v1/imagefile` redirects (303); `None` streams the image.
    pub pull_location: Option<String>,
    /// The `uploadURL` of a v2 single upload.
    pub upload_url: String,
    /// The answer (`data`) to the start of a multipart upload; `None`
    /// answers 404 (no multipart).
    pub multipart: Option<serde_json::Value>,
    /// The `presignedURL` of multipart part `{n}`.
    pub part_url: String,
    /// `v1/images/…` answers this many bytes of a JSON body that never
    /// closes its string, instead of the record.
    pub huge_json: Option<u64>,
    /// Before pushes, `GET v1/images/<ref>` answers 404 (the image is new).
    pub push_mode: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            image: Bytes::new(),
            image_id: "img1".into(),
            container_id: "cont1".into(),
            image_size: None,
            pull_location: None,
            upload_url: "{base}upload/put?X-Amz-Signature=0123abcd".into(),
            multipart: None,
            part_url: "{base}part/{n}?X-Amz-Signature=0123abcd".into(),
            huge_json: None,
            push_mode: false,
        }
    }
}

/// A running scripted library.
pub struct MiniLib {
    server: Scripted,
    knobs: Arc<Mutex<Knobs>>,
}

impl MiniLib {
    /// Starts a library answering per `knobs`.
    pub async fn start(knobs: Knobs) -> MiniLib {
        let knobs = Arc::new(Mutex::new(knobs));
        let base = Arc::new(Mutex::new(String::new()));
        let (k, b) = (knobs.clone(), base.clone());
        let server = Scripted::start(move |seen| {
            let knobs = k.lock().unwrap().clone();
            handle(&knobs, &b.lock().unwrap(), seen)
        })
        .await;
        *base.lock().unwrap() = server.url().to_string();
        MiniLib { server, knobs }
    }

    /// The base URL.
    pub fn url(&self) -> Url {
        self.server.url()
    }

    /// Every request seen.
    pub fn log(&self) -> Vec<Seen> {
        self.server.log()
    }

    /// The requests whose path contains `needle`.
    pub fn hits(&self, needle: &str) -> Vec<Seen> {
        self.server.hits(needle)
    }

    /// Body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.server.bytes_sent()
    }

    /// Waits until every answer body is done with (see
    /// [`Scripted::until_answers_ended`]).
    pub async fn until_answers_ended(&self) {
        self.server.until_answers_ended().await
    }

    /// Changes the knobs.
    pub fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.knobs.lock().unwrap())
    }
}

fn envelope_error(status: u16, message: &str) -> Reply {
    Reply::status(status)
        .json(&serde_json::json!({"data": null, "error": {"code": status, "message": message}}))
}

fn handle(k: &Knobs, base: &str, seen: &Seen) -> Reply {
    let p = seen.path.as_str();
    let m = seen.method.as_str();
    let url = |t: &str| t.replace("{base}", base);
    let hash = format!("sha256.{}", sha256_hex(&k.image));
    let record = || {
        serde_json::json!({
            "id": k.image_id, "hash": hash, "uploaded": true, "arch": "amd64",
            "size": k.image_size.unwrap_or(k.image.len() as i64),
        })
    };
    match (m, p) {
        ("GET", "/version") => Reply::status(200)
            .data(serde_json::json!({"version": "mini", "apiVersion": "2.0.0-alpha.2"})),
        ("GET", "/v1/oci-redirect") => envelope_error(404, "no registry"),
        ("GET", p) if p.starts_with("/v1/entities/") => {
            Reply::status(200).data(serde_json::json!({"id": "ent1", "name": "e"}))
        }
        ("GET", p) if p.starts_with("/v1/collections/") => {
            Reply::status(200).data(serde_json::json!({"id": "col1", "name": "c"}))
        }
        ("GET", p) if p.starts_with("/v1/containers/") => {
            Reply::status(200).data(serde_json::json!({"id": k.container_id, "name": "k"}))
        }
        ("GET", p) if p.starts_with("/v1/images/") => {
            if let Some(n) = k.huge_json {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                return Reply::status(200)
                    .header("content-type", "application/json")
                    .steps(vec![
                        Step::Data(Bytes::from_static(b"{\"data\":{\"id\":\"")),
                        Step::Repeat(chunk, n / (64 * 1024)),
                    ]);
            }
            if k.push_mode {
                envelope_error(404, "no such image")
            } else {
                Reply::status(200).data(record())
            }
        }
        ("POST", "/v1/images") => {
            let mut r = record();
            r["uploaded"] = false.into();
            Reply::status(200).data(r)
        }
        ("GET", p) if p.starts_with("/v1/imagefile/") => match &k.pull_location {
            Some(l) => Reply::status(303).header("location", url(l)),
            None => Reply::status(200).body(k.image.clone()),
        },
        ("GET", "/blob") => serve_bytes(seen, &k.image),
        ("PUT", p) if p.ends_with("/_complete") || p.ends_with("/_multipart_complete") => {
            Reply::status(200).json(&serde_json::json!({"data": null}))
        }
        ("PUT", p) if p.ends_with("/_multipart_abort") => Reply::status(200).body("aborted"),
        ("POST", p) if p.ends_with("/_multipart") => match &k.multipart {
            Some(d) => Reply::status(200).data(d.clone()),
            None => envelope_error(404, "no multipart"),
        },
        ("PUT", p) if p.ends_with("/_multipart") => {
            let n = seen
                .json()
                .and_then(|j| j["partNumber"].as_i64())
                .unwrap_or(0);
            let u = url(&k.part_url).replace("{n}", &n.to_string());
            Reply::status(200).data(serde_json::json!({"presignedURL": u}))
        }
        ("POST", p) if p.starts_with("/v2/imagefile/") => {
            Reply::status(200).data(serde_json::json!({"uploadURL": url(&k.upload_url)}))
        }
        ("PUT", "/upload/put") => Reply::status(200),
        ("PUT", p) if p.starts_with("/part/") => {
            let n = p.trim_start_matches("/part/");
            Reply::status(200).header("etag", format!("\"etag-{n}\""))
        }
        ("POST", p) if p.starts_with("/v1/tags/") || p.starts_with("/v2/tags/") => {
            Reply::status(200).json(&serde_json::json!({"data": null}))
        }
        _ => envelope_error(404, "no such endpoint"),
    }
}
