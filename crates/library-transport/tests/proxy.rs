//! Proxies from HTTP_PROXY / HTTPS_PROXY / NO_PROXY (given through
//! `proxy_from_vars`, which reads them exactly as from the environment,
//! so the tests need not mutate the process environment).

mod support;

use std::collections::HashMap;

use library_transport::{Body, HttpClient};
use support::*;

fn vars(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| m.get(k).cloned()
}

async fn get_text(c: &HttpClient, url: &url::Url) -> String {
    let req = http::Request::get(url.as_str())
        .body(Body::empty())
        .unwrap();
    let r = c.send(req).await.unwrap();
    String::from_utf8(r.bytes_limited(1 << 20).await.unwrap().to_vec()).unwrap()
}

async fn direct() -> TestServer {
    TestServer::start(|_| Reply::status(200).body("direct")).await
}

#[tokio::test]
async fn http_proxy_sees_the_request() {
    let (server, proxy) = (direct().await, TestProxy::start().await);
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[("HTTP_PROXY", proxy.url())]))
        .build()
        .unwrap();
    let url = server.url("/v1/images/x?arch=amd64");
    assert_eq!(get_text(&c, &url).await, "from-proxy");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0,
        format!("GET {url} HTTP/1.1"),
        "absolute-form request"
    );
    assert_eq!(seen[0].1, None);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn lower_case_variable_and_credentials() {
    let (server, proxy) = (direct().await, TestProxy::start().await);
    let with_auth = format!("http://user:pa%20ss@{}", proxy.addr);
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[("http_proxy", with_auth)]))
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "from-proxy");
    let auth = proxy.seen()[0].1.clone().expect("Proxy-Authorization sent");
    // base64("user:pa ss")
    assert_eq!(auth, "Basic dXNlcjpwYSBzcw==");
}

#[tokio::test]
async fn no_proxy_naming_the_host_goes_direct() {
    let (server, proxy) = (direct().await, TestProxy::start().await);
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[
            ("HTTP_PROXY", proxy.url()),
            ("NO_PROXY", "example.org, 127.0.0.1".to_string()),
        ]))
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "direct");
    assert!(
        proxy.seen().is_empty(),
        "the proxy must not see the request"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn all_proxy_applies_and_https_proxy_does_not_catch_http() {
    let (server, proxy) = (direct().await, TestProxy::start().await);
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[("HTTPS_PROXY", proxy.url())]))
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "direct");
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[("ALL_PROXY", proxy.url())]))
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "from-proxy");
}

#[tokio::test]
async fn cgi_environment_ignores_http_proxy() {
    let (server, proxy) = (direct().await, TestProxy::start().await);
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[
            ("HTTP_PROXY", proxy.url()),
            ("REQUEST_METHOD", "GET".into()),
        ]))
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "direct");
}

#[tokio::test]
async fn explicit_settings_override_the_environment() {
    let (server, proxy) = (direct().await, TestProxy::start().await);
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .proxy(proxy.url())
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "from-proxy");
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .proxy(proxy.url())
        .no_proxy("127.0.0.0/8")
        .build()
        .unwrap();
    assert_eq!(get_text(&c, &server.url("/")).await, "direct");
}

#[tokio::test]
async fn unreachable_proxy_is_a_connect_error() {
    let server = direct().await;
    let c = HttpClient::builder()
        .proxy_from_vars(vars(&[("HTTP_PROXY", "http://127.0.0.1:9".into())]))
        .build()
        .unwrap();
    let req = http::Request::get(server.url("/").as_str())
        .body(Body::empty())
        .unwrap();
    let e = c.send(req).await.unwrap_err();
    assert!(e.is_connect() && e.is_retryable(), "{e}");
}
