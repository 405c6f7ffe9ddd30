//! `--ca-file`: a library behind TLS with a private CA is refused without
//! it and reached with it.

use library_e2e::Pki;
use library_testserver::TestServer;

mod support;

/// Terminates TLS on 127.0.0.1 and forwards each connection to `upstream`.
async fn tls_front(pki: &Pki, upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = pki.acceptor.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

fn scs(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = support::command(dir);
    cmd.args(args).output().expect("scs-library runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_only_with_ca_file() {
    let server = TestServer::builder()
        .version("tls-check-1.0")
        .start()
        .await
        .unwrap();
    let pki = Pki::new();
    let front = tls_front(&pki, server.library_addr()).await;
    let url = format!("https://127.0.0.1:{}/", front.port());
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca_pem.to_str().unwrap().to_string();
    let (url2, dir2) = (url.clone(), dir.path().to_path_buf());

    let without = tokio::task::spawn_blocking(move || {
        scs(
            &dir2,
            &["--url", &url2, "--retries", "0", "--json", "version"],
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("certificate"),
        "says the certificate is not trusted: {stderr}"
    );
    assert!(
        server.requests().is_empty(),
        "nothing reached the library without trust"
    );

    let dir2 = dir.path().to_path_buf();
    let with = tokio::task::spawn_blocking(move || {
        scs(
            &dir2,
            &["--url", &url, "--ca-file", &ca, "--json", "version"],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        with.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let stdout = String::from_utf8_lossy(&with.stdout);
    assert!(stdout.contains("tls-check-1.0"), "{stdout}");
    assert_eq!(server.requests().len(), 1, "GET version through TLS");
}
