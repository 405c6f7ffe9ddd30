//! No token in what a user sees: the Display and Debug of the errors of
//! failing operations, and the Debug output of every configuration value.
//!
//! Covered elsewhere: Debug of the client and builder
//! (library-client/tests/credentials.rs), of the registry handle
//! (library-client/src/oci/registry.rs), proxy credentials in the
//! transport builder (library-transport/src/client.rs).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use library_client::oci::OciRegistry;
use library_client::{Client, Downloader, Error, HttpClient, Pull, Push};
use library_e2e::registry::{Action, RegFault, Registry, Target};
use library_e2e::scripted::{Reply, Scripted, Seen};
use library_e2e::*;
use library_testserver::{Endpoint, Fault, FaultAction, TestServer};

fn pull() -> Pull {
    Pull::new("e/c/k").arch("amd64").downloader(Downloader {
        concurrency: library_client::Concurrency::Fixed(2),
        part_size: Some(100_000),
    })
}

/// Display and Debug of the error and of every error in its source chain.
fn everything_shown(e: &Error) -> String {
    let mut shown = format!("{e}\n{e:?}");
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        shown.push_str(&format!("\n{c}\n{c:?}"));
        cur = c.source();
    }
    shown
}

fn assert_clean(e: &Error, secrets: &[&str], what: &str) {
    let shown = everything_shown(e);
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

    assert_eq!(errors.len(), 8);
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

/// What an echoing server sent back: every error body it wrote.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<String>>>);

impl Sent {
    /// The request's `Authorization`, recorded as sent.
    fn echo(&self, seen: &Seen) -> String {
        let auth = seen.authorization().unwrap_or("").to_string();
        self.0.lock().unwrap().push(auth.clone());
        auth
    }

    fn contains(&self, token: &str) -> bool {
        self.0.lock().unwrap().iter().any(|b| b.contains(token))
    }
}

/// A library error body (or a registry one) quoting `auth`.
fn echo_body(status: u16, auth: &str) -> Reply {
    Reply::status(status).json(&serde_json::json!({
        "error": {"code": status, "message": format!("you sent {auth}")},
        "errors": [{"code": "DENIED", "message": format!("you sent {auth}")}],
    }))
}

/// The token was in what the server sent back, and is nowhere in the error.
fn assert_masked(e: &Error, sent: &Sent, token: &str, what: &str) {
    assert!(sent.contains(token), "{what}: the server echoed no token");
    let shown = everything_shown(e);
    assert!(
        !shown.contains(token),
        "{what}: a token in the error: {shown}"
    );
    if shown.contains("you sent") {
        // The server's words are shown, with the token masked.
        assert!(
            shown.contains("you sent Bearer <redacted>"),
            "{what}: {shown}"
        );
    }
}

const STATUSES: [u16; 6] = [400, 401, 403, 404, 409, 500];

#[tokio::test]
async fn a_token_echoed_into_a_library_json_answer_is_masked() {
    for status in STATUSES {
        let sent = Sent::default();
        let s = sent.clone();
        let lib = Scripted::start(move |seen| echo_body(status, &s.echo(seen))).await;
        let e = client(&lib.url())
            .get_image("amd64", "e/c/k:latest")
            .await
            .unwrap_err();
        assert_masked(&e, &sent, LIBRARY_TOKEN, &format!("JSON {status}"));
    }
    // Quoted by the JSON decoder: a field of the wrong type holding the token.
    let sent = Sent::default();
    let s = sent.clone();
    let lib = Scripted::start(move |seen| {
        Reply::status(200).data(serde_json::json!({"id": "1", "size": s.echo(seen)}))
    })
    .await;
    let e = client(&lib.url())
        .get_image("amd64", "e/c/k:latest")
        .await
        .unwrap_err();
    assert_masked(&e, &sent, LIBRARY_TOKEN, "undecodable JSON");
}

#[tokio::test]
async fn a_token_echoed_into_a_ranged_part_answer_is_masked() {
    for status in [400, 401, 403, 404, 416, 503] {
        let sent = Sent::default();
        let s = sent.clone();
        let lib = Scripted::start(move |seen| {
            if seen.path == "/v1/oci-redirect" {
                Reply::status(404)
            } else if seen.path.starts_with("/v1/imagefile/") {
                // Same origin: the parts get the library's token.
                Reply::status(303).header("location", "/blob")
            } else if seen.path.starts_with("/v1/images/") {
                Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
            } else {
                echo_body(status, &s.echo(seen))
            }
        })
        .await;
        let d = DestDir::new();
        let e = client(&lib.url())
            .download_image(&d.dest, &pull())
            .await
            .unwrap_err();
        assert_masked(&e, &sent, LIBRARY_TOKEN, &format!("part {status}"));
        d.assert_untouched("part error");
    }
    // A part answer whose Content-Range quotes the token.
    let sent = Sent::default();
    let s = sent.clone();
    let lib = Scripted::start(move |seen| {
        if seen.path == "/v1/oci-redirect" {
            Reply::status(404)
        } else if seen.path.starts_with("/v1/imagefile/") {
            Reply::status(303).header("location", "/blob")
        } else if seen.path.starts_with("/v1/images/") {
            Reply::status(200).data(serde_json::json!({"id": "1", "size": 300_000, "hash": ""}))
        } else {
            Reply::status(206)
                .header("content-range", format!("bytes {}", s.echo(seen)))
                .body(vec![0u8; 100_000])
        }
    })
    .await;
    let d = DestDir::new();
    let e = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert_masked(&e, &sent, LIBRARY_TOKEN, "part Content-Range");
}

#[tokio::test]
async fn a_token_echoed_into_a_streamed_pull_answer_is_masked() {
    for status in STATUSES {
        let sent = Sent::default();
        let s = sent.clone();
        let lib = Scripted::start(move |seen| {
            if seen.path == "/v1/oci-redirect" {
                Reply::status(404)
            } else {
                echo_body(status, &s.echo(seen))
            }
        })
        .await;
        let c = client(&lib.url());
        let d = DestDir::new();
        let e = c.download_image(&d.dest, &pull()).await.unwrap_err();
        assert_masked(&e, &sent, LIBRARY_TOKEN, &format!("stream {status}"));
        let mut out = Vec::new();
        let e = c
            .download_image_to_writer(&mut out, &pull())
            .await
            .unwrap_err();
        assert_masked(&e, &sent, LIBRARY_TOKEN, &format!("writer {status}"));
    }
}

#[tokio::test]
async fn a_token_echoed_into_a_registry_answer_is_masked() {
    for status in STATUSES {
        let sent = Sent::default();
        let s = sent.clone();
        let reg = Scripted::start(move |seen| {
            let auth = s.echo(seen);
            if status == 401 {
                // No challenge: nothing to try but the token given.
                echo_body(401, &auth)
            } else {
                echo_body(status, &auth)
            }
        })
        .await;
        let base = reg.url().to_string();
        let lib = Scripted::start(move |seen| {
            if seen.path == "/v1/oci-redirect" {
                Reply::status(200).json(
                    &serde_json::json!({"token": REGISTRY_TOKEN, "url": base, "name": "e/c/k"}),
                )
            } else {
                Reply::status(404)
            }
        })
        .await;
        let d = DestDir::new();
        let e = client(&lib.url())
            .download_image(&d.dest, &pull())
            .await
            .unwrap_err();
        assert_masked(&e, &sent, REGISTRY_TOKEN, &format!("registry {status}"));
        assert_clean(&e, &[LIBRARY_TOKEN], "registry");
    }
    // A manifest the decoder quotes.
    let sent = Sent::default();
    let s = sent.clone();
    let reg = Scripted::start(move |seen| {
        Reply::status(200)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(&serde_json::json!({"schemaVersion": s.echo(seen)})).unwrap())
    })
    .await;
    let base = reg.url().to_string();
    let lib = Scripted::start(move |seen| {
        if seen.path == "/v1/oci-redirect" {
            Reply::status(200)
                .json(&serde_json::json!({"token": REGISTRY_TOKEN, "url": base, "name": "e/c/k"}))
        } else {
            Reply::status(404)
        }
    })
    .await;
    let d = DestDir::new();
    let e = client(&lib.url())
        .download_image(&d.dest, &pull())
        .await
        .unwrap_err();
    assert_masked(&e, &sent, REGISTRY_TOKEN, "undecodable manifest");
}
