//! JSON helpers: status rules, envelope decoding and error shapes.

mod support;

use http::{HeaderMap, Method, StatusCode};
use library_transport::{JsonResponse, NO_BODY};
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
async fn status_rules_and_envelopes() {
    let s = server().await;
    let c = client();
    let h = HeaderMap::new();
    let t: Thing = c
        .json(Method::GET, &s.url("/ok"), &h, NO_BODY)
        .await
        .unwrap();
    assert_eq!(t.name, "a");
    let t: Thing = c
        .json(Method::POST, &s.url("/created"), &h, NO_BODY)
        .await
        .unwrap();
    assert_eq!(t.name, "b");
    // GET does not accept 201.
    let e = c
        .json::<Thing, _>(Method::GET, &s.url("/created"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::CREATED));
    // Empty 2xx bodies where the caller allows them.
    let none: Option<Thing> = c
        .json_opt(Method::PUT, &s.url("/empty"), &h, NO_BODY)
        .await
        .unwrap();
    assert!(none.is_none());
    let none: Option<Thing> = c
        .json_opt(Method::PUT, &s.url("/nocontent"), &h, NO_BODY)
        .await
        .unwrap();
    assert!(none.is_none());
    let e = c
        .json::<Thing, _>(Method::GET, &s.url("/empty"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert!(matches!(e, library_transport::Error::Decode { .. }), "{e}");
}

#[tokio::test]
async fn error_shapes_become_typed_errors() {
    let s = server().await;
    let c = client();
    let h = HeaderMap::new();
    let e = c
        .json::<Thing, _>(Method::GET, &s.url("/missing"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    assert!(e.to_string().contains("no such entity"), "{e}");
    let e = c
        .json::<Thing, _>(Method::GET, &s.url("/unauth"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert!(e.is_unauthorized());
    assert!(e.to_string().contains("Not Authorized"), "{e}");
    let e = c
        .json::<Thing, _>(Method::POST, &s.url("/conflict"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::PRECONDITION_FAILED));
    assert!(e.to_string().contains("already exists"), "{e}");
    let e = c
        .json::<Thing, _>(Method::GET, &s.url("/oci"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("repository name not known"), "{e}");
    let e = c
        .json::<Thing, _>(Method::DELETE, &s.url("/bare"), &h, NO_BODY)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(e.is_retryable());
    match e {
        library_transport::Error::Status { code, message, .. } => {
            assert_eq!(code, None);
            assert_eq!(message, None);
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn decode_errors_name_the_endpoint_and_hide_the_query() {
    let s = server().await;
    let c = client();
    let url = s.url("/garbage?token=secret");
    let e = c
        .json::<Thing, _>(Method::GET, &url, &HeaderMap::new(), NO_BODY)
        .await
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
        .json(
            Method::POST,
            &s.url("/echo"),
            &h,
            Some(&serde_json::json!({"filesize": 3})),
        )
        .await
        .unwrap();
    assert_eq!(t.name, r#"{"filesize":3}"#);
    let seen = &s.seen()[0];
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["authorization"], "Bearer tok");
    assert_eq!(seen.headers["user-agent"], "transport-test/1");
}

#[test]
fn check_applies_method_rules() {
    let r = |status: u16| JsonResponse {
        status: StatusCode::from_u16(status).unwrap(),
        headers: HeaderMap::new(),
        body: Default::default(),
        url: "http://h/x".into(),
    };
    assert!(r(200).check(&Method::GET).is_ok());
    assert!(r(201).check(&Method::POST).is_ok());
    assert!(r(204).check(&Method::PUT).is_ok());
    assert!(r(204).check(&Method::DELETE).is_err());
    assert!(r(404).check(&Method::PUT).unwrap_err().is_not_found());
    assert!(r(401).check(&Method::POST).unwrap_err().is_unauthorized());
}
