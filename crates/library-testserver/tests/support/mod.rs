//! A raw HTTP client for driving the test server, with no library client
//! in between.

#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

/// An answer: status, headers and as much of the body as arrived.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Set when the body broke off.
    pub body_error: Option<String>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error envelope with this code.
    pub fn assert_error(&self, code: u16) {
        assert_eq!(
            self.status,
            code,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert!(v["data"].is_null(), "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub token: Option<String>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            token: None,
        }
    }

    pub fn with_token(token: &str) -> Self {
        let mut h = Self::new();
        h.token = Some(token.to_string());
        h
    }

    /// Sends a request; `Err` when no answer came (connection closed).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Resp, String> {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        let mut body_error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        buf.extend_from_slice(&d);
                    }
                }
                Err(e) => {
                    body_error = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        Ok(Resp {
            status,
            headers,
            body: buf.into(),
            body_error,
        })
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.send(Method::GET, url, &[], Bytes::new())
            .await
            .unwrap()
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::GET, url, headers, Bytes::new())
            .await
            .unwrap()
    }

    pub async fn post_json(&self, url: &str, v: &Value) -> Resp {
        self.send(
            Method::POST,
            url,
            &[("content-type", "application/json")],
            serde_json::to_vec(v).unwrap(),
        )
        .await
        .unwrap()
    }

    pub async fn put_json(&self, url: &str, v: &Value) -> Resp {
        self.send(
            Method::PUT,
            url,
            &[("content-type", "application/json")],
            serde_json::to_vec(v).unwrap(),
        )
        .await
        .unwrap()
    }
}

pub fn u(base: &Url, path: &str) -> String {
    base.join(path).unwrap().to_string()
}

pub fn sha256_hex(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

pub fn md5_hex(b: &[u8]) -> String {
    format!("{:x}", md5::Md5::digest(b))
}

/// Deterministic test bytes.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Creates entity, collection, container and image through the API;
/// returns (container ID, image ID).
pub async fn create_chain(
    http: &Http,
    base: &Url,
    e: &str,
    c: &str,
    k: &str,
    hash: &str,
    arch: Option<&str>,
) -> (String, String) {
    let r = http
        .post_json(
            &u(base, "v1/entities"),
            &serde_json::json!({"name": e, "description": "No description"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let eid = r.data()["id"].as_str().unwrap().to_string();
    let r = http
        .post_json(
            &u(base, "v1/collections"),
            &serde_json::json!({"name": c, "description": "No description", "entity": eid}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cid = r.data()["id"].as_str().unwrap().to_string();
    let r = http
        .post_json(
            &u(base, "v1/containers"),
            &serde_json::json!({"name": k, "description": "No description", "collection": cid}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let kid = r.data()["id"].as_str().unwrap().to_string();
    let mut img =
        serde_json::json!({"hash": hash, "description": "No description", "container": kid});
    if let Some(a) = arch {
        img["arch"] = a.into();
    }
    let r = http.post_json(&u(base, "v1/images"), &img).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let iid = r.data()["id"].as_str().unwrap().to_string();
    (kid, iid)
}
