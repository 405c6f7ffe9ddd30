//! JSON requests: bodies out, buffered answers back, error messages read.

mod support;

use http::{HeaderMap, Method, StatusCode};
use library_transport::NO_BODY;
use support::*;

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Thing {
    name: String,
}

async fn server() -> TestServer {
    TestServer::start(|s| match s.path.as_str() {
        "/ok" => Reply::status(200).body(r#"{"data":{"name":"a"}}"#),
        "/created" => Reply::status(201).body(r#"{"data":{"name":"b"}}"#),
        "/empty" => Reply::status(200),
        "/nocontent" => Reply::status(204),
        "/missing" => {
            Reply::status(404).body(r#"{"error":{"code":404,"message":"no such entity"}}"#)
        }
        "/unauth" => Reply::status(401).body(
            r#"{"errors":[{"code":401,"detail":"Not Authorized","title":"x"}],"status":"error"}"#,
        ),
        "/conflict" => {
            Reply::status(412).body(r#"{"message":"already exists","errors":{"name":"taken"}}"#)
        }
        "/oci" => Reply::status(400)
            .body(r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}"#),
        "/bare" => Reply::status(500).body("<html>oops</html>"),
        "/garbage" => Reply::status(200).body("{not json"),
        "/big" => Reply::status(200).body(vec![b' '; 2000]),
        "/echo" => Reply::status(200).body(format!(
            r#"{{"data":{{"name":{}}}}}"#,
            serde_json::to_string(&String::from_utf8_lossy(&s.body)).unwrap()
        )),
        _ => Reply::status(418),
    })
    .await
}

#[tokio::test]
async fn answers_are_buffered_unjudged() {
    let s = server().await;
    let c = client();
    let h = HeaderMap::new();
    let r = c
        .request_json(Method::GET, &s.url("/missing?token=secret"), &h, NO_BODY)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.url.ends_with("/missing"), "{}", r.url);
    assert_eq!(
        library_transport::error_message(&r.body),
        (Some(404), Some("no such entity".into()))
    );
    let r = c
        .request_json(Method::GET, &s.url("/oci"), &h, NO_BODY)
        .await
        .unwrap();
    assert_eq!(
        library_transport::error_message(&r.body).1.as_deref(),
        Some("repository name not known")
    );
    let r = c
        .request_json(Method::GET, &s.url("/bare"), &h, NO_BODY)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(library_transport::error_message(&r.body), (None, None));
}

#[tokio::test]
async fn decode_errors_name_the_endpoint_and_hide_the_query() {
    let s = server().await;
    let c = client();
    let url = s.url("/garbage?token=secret");
    let e = c
        .request_json(Method::GET, &url, &HeaderMap::new(), NO_BODY)
        .await
        .unwrap()
        .decode::<Thing>()
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, library_transport::Error::Decode { .. }));
    assert!(m.contains("/garbage") && !m.contains("secret"), "{m}");
}

#[tokio::test]
async fn buffered_bodies_are_capped() {
    let s = server().await;
    let c = library_transport::HttpClient::builder()
        .no_proxy_from_env()
        .json_body_limit(1000)
        .build()
        .unwrap();
    let e = c
        .request_json(Method::GET, &s.url("/big"), &HeaderMap::new(), NO_BODY)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            library_transport::Error::BodyTooLarge { limit: 1000, .. }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn request_bodies_and_headers_are_sent() {
    let s = server().await;
    let c = library_transport::HttpClient::builder()
        .no_proxy_from_env()
        .user_agent("transport-test/1")
        .build()
        .unwrap();
    let mut h = HeaderMap::new();
    h.insert("authorization", "Bearer tok".parse().unwrap());
    let t: Thing = c
        .request_json(
            Method::POST,
            &s.url("/echo"),
            &h,
            Some(&serde_json::json!({"filesize": 3})),
        )
        .await
        .unwrap()
        .decode::<serde_json::Value>()
        .map(|v| serde_json::from_value(v["data"].clone()).unwrap())
        .unwrap();
    assert_eq!(t.name, r#"{"filesize":3}"#);
    let seen = &s.seen()[0];
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["authorization"], "Bearer tok");
    assert_eq!(seen.headers["user-agent"], "transport-test/1");
}
