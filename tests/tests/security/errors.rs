//! No token in what a user sees: the Display and Debug of the errors of
//! failing operations, and the Debug output of every configuration value.
//!
//! Covered elsewhere: Debug of the client and builder
//! (library-client/tests/credentials.rs), of the registry handle
//! (library-client/src/oci/registry.rs), proxy credentials in the
//! transport builder (library-transport/src/client.rs).

use bytes::Bytes;
use library_client::oci::OciRegistry;
use library_client::{Client, Downloader, Error, HttpClient, Pull, Push};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::scripted::{Reply, Scripted};
use library_e2e::*;
use library_testserver::{Endpoint, Fault, FaultAction, TestServer};

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: 2,
        part_size: 100_000,
    })
}

fn assert_clean(e: &Error, secrets: &[&str], what: &str) {
    let shown = format!("{e}\n{e:?}");
    for s in secrets {
        assert!(!shown.contains(s), "{what}: a token in the error: {shown}");
    }
}

#[tokio::test]
async fn errors_of_failing_operations_show_no_token() {
    let secrets = [LIBRARY_TOKEN, REGISTRY_TOKEN];
    let mut errors: Vec<(String, Error)> = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.sif");
    std::fs::write(&file, random_bytes(50_000, 91)).unwrap();

    // The library refuses the token.
    let s = TestServer::builder()
        .token("another")
        .start()
        .await
        .unwrap();
    let c = client(&s.url());
    let d = DestDir::new();
    errors.push((
        "401 pull".into(),
        c.download_image(&d.dest, &pull()).await.unwrap_err(),
    ));
    errors.push((
        "401 get".into(),
        c.get_image("amd64", "e/c/k:latest").await.unwrap_err(),
    ));
    errors.push((
        "401 push".into(),
        c.upload_image(&file, &Push::new("e/c/k").arch("amd64"))
            .await
            .unwrap_err(),
    ));

    // Failing transfers with the token accepted.
    let s = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .start()
        .await
        .unwrap();
    s.add_image(
        "e",
        "c",
        "k",
        &["latest"],
        "amd64",
        random_bytes(300_000, 92),
    );
    let c = client(&s.url());
    s.inject(Fault::new(Endpoint::Blob, FaultAction::DropAfter(100)).always());
    errors.push((
        "reset".into(),
        c.download_image(&d.dest, &pull()).await.unwrap_err(),
    ));
    s.inject(Fault::new(Endpoint::UploadPut, FaultAction::Status(500)).always());
    errors.push((
        "500 upload".into(),
        c.upload_image(&file, &Push::new("e/c/k2").arch("amd64"))
            .await
            .unwrap_err(),
    ));
    let dead = url::Url::parse(&format!("http://127.0.0.1:{}/", dead_port())).unwrap();
    errors.push((
        "refused".into(),
        client(&dead)
            .download_image(&d.dest, &pull())
            .await
            .unwrap_err(),
    ));

    // The registry refuses its token, or fails.
    let reg = Registry::start(Some("registry-wants-another")).await;
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(reg.url(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let c = client(&lib.url());
    errors.push((
        "registry 401".into(),
        c.download_image(&d.dest, &pull()).await.unwrap_err(),
    ));
    let reg = Registry::start(Some(REGISTRY_TOKEN)).await;
    reg.seed(
        "e/c/k",
        "latest",
        "amd64",
        Bytes::from(random_bytes(300_000, 93)),
        None,
    );
    reg.inject(RegFault::new(Target::LayerPart, Action::Status(503)).always());
    let lib = TestServer::builder()
        .token(LIBRARY_TOKEN)
        .oci_registry(reg.url(), REGISTRY_TOKEN)
        .start()
        .await
        .unwrap();
    let c = client(&lib.url());
    errors.push((
        "registry 503".into(),
        c.download_image(&d.dest, &pull()).await.unwrap_err(),
    ));
    d.assert_untouched("failing operations");

    assert!(errors.len() >= 8);
    for (what, e) in &errors {
        assert_clean(e, &secrets, what);
    }
}

#[tokio::test]
async fn a_server_message_is_shown_but_the_client_adds_no_token() {
    // The server's own words reach the user; the client adds nothing of
    // its credentials around them.
    let lib = Scripted::start(|_| {
        Reply::status(403)
            .json(&serde_json::json!({"error": {"code": 403, "message": "quota exceeded"}}))
    })
    .await;
    let e = client(&lib.url())
        .get_image("amd64", "e/c/k:latest")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("quota exceeded"), "{e}");
    assert_eq!(e.status(), Some(http::StatusCode::FORBIDDEN));
    assert_clean(&e, &[LIBRARY_TOKEN], "403");
}

#[test]
fn debug_output_of_every_configuration_value_hides_tokens() {
    let builder = Client::builder()
        .base_url("https://library.example")
        .token(LIBRARY_TOKEN)
        .user_agent("ua")
        .proxy(format!("http://user:{LIBRARY_TOKEN}@proxy.example:3128"));
    let shown = format!("{builder:?}");
    assert!(!shown.contains(LIBRARY_TOKEN), "{shown}");
    let c = builder.build().unwrap();
    for shown in [
        format!("{c:?}"),
        format!("{:?}", c.http()),
        format!("{c:#?}"),
    ] {
        assert!(!shown.contains(LIBRARY_TOKEN), "{shown}");
    }
    let http = HttpClient::builder()
        .proxy(format!("http://user:{REGISTRY_TOKEN}@proxy.example:3128"))
        .build()
        .unwrap();
    let reg = OciRegistry::new(
        http.clone(),
        url::Url::parse("https://registry.example").unwrap(),
        Some(REGISTRY_TOKEN.to_string()),
    );
    for shown in [format!("{reg:?}"), format!("{http:?}"), format!("{reg:#?}")] {
        assert!(!shown.contains(REGISTRY_TOKEN), "{shown}");
    }
}
