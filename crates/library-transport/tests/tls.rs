//! TLS: a private CA is refused by default and accepted once added; an
//! HTTPS request through a CONNECT proxy.

mod support;

use std::sync::Arc;

use library_transport::{Body, Error, HttpClient, RootSource};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;

struct Pki {
    _dir: tempfile::TempDir,
    ca_pem: std::path::PathBuf,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "transport test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki {
        _dir: dir,
        ca_pem,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
    }
}

async fn https_server(p: &Pki) -> (TestServer, url::Url) {
    let s = TestServer::start_with(
        |_| Reply::status(200).body("secure"),
        Some(p.acceptor.clone()),
    )
    .await;
    let u = url::Url::parse(&format!("https://127.0.0.1:{}/x", s.addr.port())).unwrap();
    (s, u)
}

async fn get(c: &HttpClient, u: &url::Url) -> Result<String, Error> {
    let r = c
        .send(http::Request::get(u.as_str()).body(Body::empty()).unwrap())
        .await?;
    Ok(String::from_utf8(r.bytes_limited(1000).await?.to_vec()).unwrap())
}

#[tokio::test]
async fn private_ca_refused_by_default_and_accepted_when_added() {
    let p = pki();
    let (_s, u) = https_server(&p).await;
    let c = HttpClient::builder().no_proxy_from_env().build().unwrap();
    let e = get(&c, &u).await.unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(!e.is_retryable());

    let c = HttpClient::builder()
        .no_proxy_from_env()
        .add_root_certificate_pem_file(&p.ca_pem)
        .build()
        .unwrap();
    assert_eq!(get(&c, &u).await.unwrap(), "secure");

    let c = HttpClient::builder()
        .no_proxy_from_env()
        .root_certificates(RootSource::None)
        .add_root_certificate_pem_file(&p.ca_pem)
        .build()
        .unwrap();
    assert_eq!(get(&c, &u).await.unwrap(), "secure");
}

#[tokio::test]
async fn accepting_invalid_certificates_is_explicit() {
    let p = pki();
    let (_s, u) = https_server(&p).await;
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert_eq!(get(&c, &u).await.unwrap(), "secure");
}

#[tokio::test]
async fn https_through_a_connect_proxy() {
    let p = pki();
    let (s, u) = https_server(&p).await;
    let proxy = TestProxy::start().await;
    let c = HttpClient::builder()
        .proxy_from_vars(|k| (k == "HTTPS_PROXY").then(|| proxy.url()))
        .add_root_certificate_pem_file(&p.ca_pem)
        .build()
        .unwrap();
    assert_eq!(get(&c, &u).await.unwrap(), "secure");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .0
            .starts_with(&format!("CONNECT 127.0.0.1:{} ", s.addr.port())),
        "{:?}",
        seen
    );
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn bad_ca_files_fail_the_build_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-cert.pem");
    std::fs::write(&bad, "hello, no certificate here\n").unwrap();
    let e = HttpClient::builder()
        .add_root_certificate_pem_file(&bad)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("not-a-cert.pem"), "{e}");
    let missing = dir.path().join("missing.pem");
    let e = HttpClient::builder()
        .add_root_certificate_pem_file(&missing)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = HttpClient::builder()
        .root_certificates(RootSource::None)
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("no trusted root certificates"),
        "{e}"
    );
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let p = pki();
    // The same certificate, offering h2 first.
    let mut cfg = (**p.acceptor.config()).clone();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let tls = acceptor.accept(sock).await.unwrap();
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let body = format!("{:?}", req.version());
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(body)),
                        ))
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    let u = url::Url::parse(&format!("https://127.0.0.1:{}/", addr.port())).unwrap();
    let c = HttpClient::builder()
        .no_proxy_from_env()
        .add_root_certificate_pem_file(&p.ca_pem)
        .build()
        .unwrap();
    let r = c
        .send(http::Request::get(u.as_str()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.bytes_limited(100).await.unwrap(), "HTTP/2.0");
    server.abort();
}
