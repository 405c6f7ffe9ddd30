//! Zero configuration: `remote.yaml` files of Apptainer/SingularityCE in a
//! temporary HOME (or config dir), service discovery against the test
//! server, the precedence of the settings, and where the remote's token
//! goes — all asserted on the requests the servers received.

use std::path::{Path, PathBuf};

use library_testserver::{DownloadMode, Listener, RecordedRequest, TestServer, TestServerBuilder};
use serde_json::Value;

mod support;
use support::start;

const TOKEN: &str = "remote-token-3b9c1e";

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn code(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "exit code; output: {self:#?}");
        self
    }

    #[track_caller]
    fn one_error_line(&self) -> &Out {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "stderr: {:?}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    fn no_token(&self) -> &Out {
        assert!(
            !self.stdout.contains(TOKEN) && !self.stderr.contains(TOKEN),
            "token shown: {self:#?}"
        );
        self
    }
}

/// A working directory that is also HOME.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `~/.apptainer/remote.yaml` (mode 0600, as Apptainer keeps it).
    fn remote_yaml(&self, text: &str) -> PathBuf {
        write_yaml(&self.path(".apptainer"), text)
    }

    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut cmd = support::command(self.dir.path());
        cmd.args(args).envs(env.iter().copied());
        let out = cmd.output().expect("scs-library runs");
        Out {
            code: out.status.code().expect("exited normally"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn write_yaml(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("remote.yaml");
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

/// `host:port` of a server, as a remote's URI.
fn uri(s: &TestServer) -> String {
    let u = s.url();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

/// A remote entry as `apptainer remote login` writes it (plus Insecure:
/// the test server speaks http).
fn entry(name: &str, uri: &str, token: Option<&str>, system: bool) -> String {
    let token = token
        .map(|t| format!("    Token: {t}\n"))
        .unwrap_or_default();
    format!("  {name}:\n    URI: {uri}\n{token}    System: {system}\n    Exclusive: false\n    Insecure: true\n")
}

fn server(b: TestServerBuilder) -> TestServer {
    let s = start(b);
    s.add_image(
        "alice",
        "tools",
        "hello",
        &["v1"],
        "amd64",
        b"zero configuration".to_vec(),
    );
    s
}

fn auth(r: &RecordedRequest) -> Option<String> {
    r.header("authorization").map(str::to_string)
}

/// The requests of the library listener, discovery left out.
fn library_requests(s: &TestServer) -> Vec<RecordedRequest> {
    s.requests()
        .into_iter()
        .filter(|r| r.listener == Listener::Library && r.path != "/assets/config/config.prod.json")
        .collect()
}

const PULL: &[&str] = &["pull", "--arch", "amd64", "alice/tools/hello:v1"];

#[test]
fn user_remote_yaml_alone_pulls_with_its_token_kept_on_its_origin() {
    let s = server(TestServer::builder().token(TOKEN));
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nRemotes:\n{}",
        entry("mine", &uri(&s), Some(TOKEN), false)
    ));
    let out = home.run(
        &[],
        &["-vv", "pull", "--arch", "amd64", "alice/tools/hello:v1"],
    );
    out.code(0).no_token();
    assert!(
        out.stderr.contains("the Active remote"),
        "the rung is logged: {}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(home.path("hello_v1.sif")).unwrap(),
        b"zero configuration"
    );
    let reqs = s.requests();
    assert_eq!(reqs[0].path, "/assets/config/config.prod.json");
    assert_eq!(auth(&reqs[0]), None, "discovery carries no token");
    let lib: Vec<_> = reqs
        .iter()
        .filter(|r| r.listener == Listener::Library)
        .skip(1)
        .collect();
    assert!(!lib.is_empty());
    for r in lib {
        assert_eq!(
            auth(r).as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{}",
            r.path
        );
    }
    let blobs: Vec<_> = reqs
        .iter()
        .filter(|r| r.listener == Listener::Blob)
        .collect();
    assert!(
        !blobs.is_empty(),
        "the pull was redirected to the other origin"
    );
    for r in blobs {
        assert_eq!(
            auth(r),
            None,
            "no token to a presigned URL of another origin"
        );
    }
}

#[test]
fn a_same_origin_redirect_gets_the_token() {
    let s = server(
        TestServer::builder()
            .token(TOKEN)
            .download(DownloadMode::RedirectSameListener),
    );
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nRemotes:\n{}",
        entry("mine", &uri(&s), Some(TOKEN), false)
    ));
    home.run(&[], PULL).code(0);
    let blob: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/blobs/"))
        .collect();
    assert!(!blob.is_empty());
    assert!(blob.iter().all(|r| auth(r).is_some()));
}

#[test]
fn system_remote_yaml_alone() {
    let s = server(TestServer::builder());
    let home = Home::new();
    let etc = home.path("etc-apptainer");
    write_yaml(
        &etc,
        &format!(
            "Active: site\nRemotes:\n{}",
            entry("site", &uri(&s), None, true)
        ),
    );
    let out = home.run(
        &[("LIBRARY_SYSTEM_CONFIG_DIRS", etc.to_str().unwrap())],
        PULL,
    );
    out.code(0);
    assert!(library_requests(&s).iter().all(|r| auth(r).is_none()));
    assert!(library_requests(&s)
        .iter()
        .any(|r| r.path.starts_with("/v1/images/")));
}

#[test]
fn user_and_system_merged_token_kept_exclusive_wins() {
    let site = server(TestServer::builder().token(TOKEN));
    let other = server(TestServer::builder());
    let home = Home::new();
    // The user's entry mirrors the system one (System: true) with an old
    // URI and the token; the user's Active names another remote.
    home.remote_yaml(&format!(
        "Active: other\nRemotes:\n{}{}",
        entry("site", "old.invalid:1", Some(TOKEN), true),
        entry("other", &uri(&other), None, false)
    ));
    let etc = home.path("etc");
    write_yaml(
        &etc,
        &format!("Active: site\nRemotes:\n  site:\n    URI: {}\n    System: true\n    Exclusive: true\n    Insecure: true\n", uri(&site)),
    );
    home.run(
        &[("LIBRARY_SYSTEM_CONFIG_DIRS", etc.to_str().unwrap())],
        PULL,
    )
    .code(0)
    .no_token();
    assert!(
        other.requests().is_empty(),
        "the exclusive system remote wins"
    );
    let lib = library_requests(&site);
    assert!(lib
        .iter()
        .any(|r| r.path.starts_with("/v1/images/") && auth(r).is_some()));
}

/// With no Active remote the default library is used: seen through a
/// proxy that refuses, so nothing leaves the machine.
fn assert_default_library(home: &Home) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = format!("http://127.0.0.1:{port}");
    let out = home.run(&[], &["--retries", "0", "--proxy", &proxy, "version"]);
    out.code(5).one_error_line();
    assert!(out.stderr.contains("library.sylabs.io"), "{}", out.stderr);
}

#[test]
fn missing_active_and_empty_file_mean_the_default_library() {
    let s = server(TestServer::builder());
    let home = Home::new();
    home.remote_yaml(&format!(
        "Remotes:\n{}",
        entry("mine", &uri(&s), Some(TOKEN), false)
    ));
    assert_default_library(&home);
    home.remote_yaml("");
    assert_default_library(&home);
    assert!(s.requests().is_empty());
}

#[test]
fn active_naming_a_missing_remote_is_a_usage_error() {
    let home = Home::new();
    let f = home.remote_yaml("Active: gone\nRemotes:\n  here:\n    URI: h.invalid\n");
    let out = home.run(&[], PULL);
    out.code(2).one_error_line();
    assert!(
        out.stderr.contains("\"gone\" is not a remote"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&f.display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_keys_are_a_warning_not_an_error() {
    let s = server(TestServer::builder());
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nSomethingNew: 1\nRemotes:\n{}    Later: x\n",
        entry("mine", &uri(&s), None, false)
    ));
    let out = home.run(&[], PULL);
    out.code(0);
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("\"SomethingNew\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("\"Later\""), "{}", out.stderr);
}

#[test]
fn bad_yaml_names_file_and_line() {
    let home = Home::new();
    let f = home.remote_yaml("Active: a\nRemotes:\n  a:\n    URI: [x\n");
    let out = home.run(&[], PULL);
    out.code(2).one_error_line();
    assert!(
        out.stderr.contains(&f.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line "), "{}", out.stderr);
}

#[test]
fn precedence_of_every_rung() {
    let remote = server(TestServer::builder().token(TOKEN));
    let x = server(TestServer::builder());
    let y = server(TestServer::builder());
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nRemotes:\n{}{}",
        entry("mine", &uri(&remote), Some(TOKEN), false),
        entry("second", &uri(&y), Some("second-token"), false)
    ));
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}")
    };
    let xu = x.url().to_string();
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "--url",
            vec!["--url", &xu],
            vec![("LIBRARY_URL", &closed), ("APPTAINER_LIBRARY", &closed)],
        ),
        (
            "LIBRARY_URL",
            vec![],
            vec![("LIBRARY_URL", &xu), ("APPTAINER_LIBRARY", &closed)],
        ),
        (
            "APPTAINER_LIBRARY",
            vec![],
            vec![("APPTAINER_LIBRARY", &xu), ("SINGULARITY_LIBRARY", &closed)],
        ),
        (
            "SINGULARITY_LIBRARY",
            vec![],
            vec![("SINGULARITY_LIBRARY", &xu)],
        ),
    ];
    for (rung, flags, env) in cases {
        x.clear_requests();
        remote.clear_requests();
        let mut args = flags.clone();
        args.extend_from_slice(&[
            "-v",
            "pull",
            "--force",
            "--arch",
            "amd64",
            "alice/tools/hello:v1",
        ]);
        let out = home.run(&env, &args);
        out.code(0).no_token();
        assert!(out.stderr.contains(rung), "{rung}: {}", out.stderr);
        let got = library_requests(&x);
        assert!(
            got.iter().any(|r| r.path.starts_with("/v1/images/")),
            "{rung}"
        );
        assert!(
            got.iter().all(|r| auth(r).is_none()),
            "{rung}: the remote's token stays home"
        );
        assert!(library_requests(&remote).is_empty(), "{rung}");
    }
    // --remote NAME beats Active, with that remote's own token.
    home.run(
        &[],
        &[
            "--remote",
            "second",
            "pull",
            "--force",
            "--arch",
            "amd64",
            "alice/tools/hello:v1",
        ],
    )
    .code(0);
    let got = library_requests(&y);
    assert!(got.iter().any(|r| r.path.starts_with("/v1/images/")));
    assert!(got
        .iter()
        .all(|r| auth(r).as_deref() == Some("Bearer second-token")));
    // Active, with its token.
    remote.clear_requests();
    home.run(
        &[],
        &["pull", "--force", "--arch", "amd64", "alice/tools/hello:v1"],
    )
    .code(0);
    assert!(library_requests(&remote).iter().all(|r| auth(r).is_some()));
    // --url naming exactly the active remote's library: its token is used.
    remote.clear_requests();
    let ru = remote.url().to_string();
    home.run(
        &[],
        &[
            "--url",
            &ru,
            "pull",
            "--force",
            "--arch",
            "amd64",
            "alice/tools/hello:v1",
        ],
    )
    .code(0);
    let got = library_requests(&remote);
    assert!(!got.is_empty() && got.iter().all(|r| auth(r).is_some()));
    // An explicit token wins over the remote's.
    remote.clear_requests();
    home.run(
        &[("LIBRARY_TOKEN", "explicit")],
        &["pull", "--force", "--arch", "amd64", "alice/tools/hello:v1"],
    )
    .code(4);
    assert!(library_requests(&remote)
        .iter()
        .all(|r| auth(r).as_deref() == Some("Bearer explicit")));
}

#[test]
fn library_host_refs_pull_from_that_host_without_the_token() {
    let remote = server(TestServer::builder().token(TOKEN));
    let other = server(TestServer::builder());
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nRemotes:\n{}",
        entry("mine", &uri(&remote), Some(TOKEN), false)
    ));
    let nohttps = [("APPTAINER_NOHTTPS", "1")];
    let r = format!("library://{}/alice/tools/hello:v1", uri(&other));
    home.run(&nohttps, &["pull", "--arch", "amd64", &r])
        .code(0)
        .no_token();
    let got = library_requests(&other);
    assert!(got.iter().any(|r| r.path.starts_with("/v1/images/")));
    assert!(
        got.iter().all(|r| auth(r).is_none()),
        "no token to another host"
    );
    assert!(remote.requests().iter().all(|r| auth(r).is_none()));
    // The active remote's own host: its token goes along.
    let r = format!("library://{}/alice/tools/hello:v1", uri(&remote));
    home.run(
        &[("SINGULARITY_NO_HTTPS", "true")],
        &["pull", "--force", "--arch", "amd64", &r],
    )
    .code(0);
    assert!(library_requests(&remote).iter().any(|r| auth(r).is_some()));
    // --url with a ref host that differs: usage error, nothing sent.
    other.clear_requests();
    let ru = remote.url().to_string();
    let r = format!("library://{}/alice/tools/hello:v1", uri(&other));
    home.run(
        &nohttps,
        &["--url", &ru, "pull", "--arch", "amd64", &r, "y.sif"],
    )
    .code(2)
    .one_error_line();
    assert!(other.requests().is_empty());
    // A bad boolean names its variable.
    let out = home.run(
        &[("APPTAINER_NOHTTPS", "maybe")],
        &["pull", "--arch", "amd64", &r, "z.sif"],
    );
    out.code(2).one_error_line();
    assert!(out.stderr.contains("APPTAINER_NOHTTPS"), "{}", out.stderr);
}

#[test]
fn discovery_failures_are_one_line_and_say_what_to_do() {
    let s = start(TestServer::builder());
    let not_json = start(TestServer::builder().discovery_body("<html>no</html>"));
    let no_lib =
        start(TestServer::builder().discovery_body(r#"{"tokenAPI":{"uri":"http://t.invalid"}}"#));
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("127.0.0.1:{port}")
    };
    let blob = format!("127.0.0.1:{}", s.blob_url().port().unwrap());
    let cases = [
        (closed.as_str(), true, 5, "remote list"),
        (blob.as_str(), true, 5, "404"),
        (&uri(&not_json), true, 5, "JSON"),
        (&uri(&no_lib), true, 5, "libraryAPI"),
        ("cloud.apptainer.org", false, 2, "no-default-remote"),
    ];
    for (u, insecure, code, says) in cases {
        let home = Home::new();
        home.remote_yaml(&format!(
            "Active: r\nRemotes:\n  r:\n    URI: {u}\n    Token: {TOKEN}\n    Insecure: {insecure}\n"
        ));
        let out = home.run(
            &[],
            &[
                "--retries",
                "0",
                "pull",
                "--arch",
                "amd64",
                "alice/tools/hello:v1",
            ],
        );
        out.code(code).one_error_line().no_token();
        assert!(out.stderr.contains(says), "{u}: {}", out.stderr);
        assert!(out.stderr.contains("--url"), "{u}: {}", out.stderr);
    }
}

#[test]
fn apptainer_variables() {
    let s = server(TestServer::builder());
    let home = Home::new();
    // APPTAINER_CONFIGDIR is read instead of ~/.apptainer.
    home.remote_yaml("Active: broken\nRemotes: {}\n");
    let cfg = home.path("cfg");
    write_yaml(
        &cfg,
        &format!(
            "Active: mine\nRemotes:\n{}",
            entry("mine", &uri(&s), None, false)
        ),
    );
    let c = cfg.to_str().unwrap();
    home.run(
        &[
            ("APPTAINER_CONFIGDIR", c),
            ("SINGULARITY_CONFIGDIR", "/nonexistent"),
        ],
        PULL,
    )
    .code(0);
    // PULL_ARCH, DOWNLOAD_CONCURRENCY and DOWNLOAD_PART_SIZE apply when the flags are absent.
    s.clear_requests();
    let env = [
        ("APPTAINER_CONFIGDIR", c),
        ("APPTAINER_PULL_ARCH", "arm64"),
        ("SINGULARITY_PULL_ARCH", "ppc64le"),
    ];
    home.run(&env, &["pull", "alice/tools/hello:v1", "a.sif"])
        .code(3);
    assert!(s
        .requests()
        .iter()
        .any(|r| r.query.as_deref().is_some_and(|q| q.contains("arch=arm64"))));
    for (var, value) in [
        ("APPTAINER_DOWNLOAD_CONCURRENCY", "zero"),
        ("SINGULARITY_DOWNLOAD_CONCURRENCY", "0"),
        ("APPTAINER_DOWNLOAD_PART_SIZE", "5X"),
    ] {
        let out = home.run(
            &[("APPTAINER_CONFIGDIR", c), (var, value)],
            &["pull", "--arch", "amd64", "alice/tools/hello:v1", "b.sif"],
        );
        out.code(2).one_error_line();
        assert!(out.stderr.contains(var), "{}", out.stderr);
        assert!(!home.path("b.sif").exists());
    }
    let out = home.run(
        &[
            ("APPTAINER_CONFIGDIR", c),
            ("APPTAINER_DOWNLOAD_CONCURRENCY", "2"),
            ("APPTAINER_DOWNLOAD_PART_SIZE", "4"),
        ],
        &["pull", "--arch", "amd64", "alice/tools/hello:v1", "c.sif"],
    );
    out.code(0);
    assert_eq!(
        std::fs::read(home.path("c.sif")).unwrap(),
        b"zero configuration"
    );
    // `auto` is a value of the variable too.
    let out = home.run(
        &[
            ("APPTAINER_CONFIGDIR", c),
            ("APPTAINER_DOWNLOAD_CONCURRENCY", "auto"),
        ],
        &["pull", "--arch", "amd64", "alice/tools/hello:v1", "d.sif"],
    );
    out.code(0);
    assert!(home.path("d.sif").exists());
}

#[test]
fn remote_list_shows_the_merged_remotes_never_tokens() {
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nRemotes:\n{}{}",
        entry("mine", "lib.example.org:8443", Some(TOKEN), false),
        entry("bare", "bare.example.org", None, false)
    ));
    let etc = home.path("etc");
    write_yaml(&etc, "Active: site\nRemotes:\n  site:\n    URI: site.example.org\n    System: true\n    Exclusive: false\n");
    let sys = [("LIBRARY_SYSTEM_CONFIG_DIRS", etc.to_str().unwrap())];
    let out = home.run(&sys, &["remote", "list"]);
    out.code(0).no_token();
    for s in [
        "NAME",
        "URI",
        "ACTIVE",
        "mine",
        "lib.example.org:8443",
        "site",
        "bare",
        "set",
    ] {
        assert!(out.stdout.contains(s), "{s}: {}", out.stdout);
    }
    let out = home.run(&sys, &["remote", "list", "--json"]);
    out.code(0).no_token();
    let v = out.json();
    assert_eq!(v["active"], "mine");
    let rows = v["remotes"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mine = rows.iter().find(|r| r["name"] == "mine").unwrap();
    assert_eq!(
        (
            mine["active"].as_bool(),
            mine["token"].as_bool(),
            mine["insecure"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    let site = rows.iter().find(|r| r["name"] == "site").unwrap();
    assert_eq!(
        (site["system"].as_bool(), site["token"].as_bool()),
        (Some(true), Some(false))
    );
}

#[test]
fn remote_status_checks_services_user_and_token() {
    let s = start(TestServer::builder().token(TOKEN));
    let home = Home::new();
    home.remote_yaml(&format!(
        "Active: mine\nRemotes:\n{}{}",
        entry("mine", &uri(&s), Some(TOKEN), false),
        entry("stale", &uri(&s), Some("stale-token"), false)
    ));
    let out = home.run(&[], &["remote", "status"]);
    out.code(0).no_token();
    for w in ["SERVICE", "library", "OK", "testuser", "valid"] {
        assert!(out.stdout.contains(w), "{w}: {}", out.stdout);
    }
    let v = home.run(&[], &["remote", "status", "--json"]).json();
    assert_eq!(v["token"], "valid");
    assert_eq!(v["user"], "testuser <testuser@example.org>");
    assert!(v["services"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "OK"));
    let token_checks: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/token-status")
        .collect();
    assert!(token_checks
        .iter()
        .all(|r| auth(r).as_deref() == Some(format!("Bearer {TOKEN}").as_str())));
    // A token the server refuses: exit 4.
    let out = home.run(&[], &["remote", "status", "stale"]);
    out.code(4).no_token();
    assert!(out.stdout.contains("invalid"), "{}", out.stdout);
    // A library without rbac/users/current: "unknown", not an error.
    let h = start(TestServer::builder().no_current_user());
    let home2 = Home::new();
    home2.remote_yaml(&format!(
        "Active: h\nRemotes:\n{}",
        entry("h", &uri(&h), Some(TOKEN), false)
    ));
    let v = home2.run(&[], &["remote", "status", "--json"]);
    v.code(0);
    assert_eq!(v.json()["user"], "unknown");
    // Unreachable: exit 5.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    home2.remote_yaml(&format!(
        "Active: h\nRemotes:\n{}",
        entry("h", &format!("127.0.0.1:{port}"), None, false)
    ));
    home2
        .run(&[], &["--retries", "0", "remote", "status"])
        .code(5)
        .one_error_line();
}

#[test]
fn an_explicit_url_works_whatever_remote_yaml_holds() {
    let x = server(TestServer::builder());
    let home = Home::new();
    home.remote_yaml("Active: a\nRemotes:\n  a:\n    URI: [broken\n");
    let xu = x.url().to_string();
    home.run(
        &[],
        &[
            "--url",
            &xu,
            "pull",
            "--arch",
            "amd64",
            "alice/tools/hello:v1",
        ],
    )
    .code(0);
    // An unreachable active remote holding a token: the explicit URL is
    // used, without the token.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    home.remote_yaml(&format!(
        "Active: a\nRemotes:\n{}",
        entry("a", &format!("127.0.0.1:{port}"), Some(TOKEN), false)
    ));
    x.clear_requests();
    home.run(
        &[("LIBRARY_URL", &xu)],
        &["pull", "--force", "--arch", "amd64", "alice/tools/hello:v1"],
    )
    .code(0)
    .no_token();
    assert!(library_requests(&x).iter().all(|r| auth(r).is_none()));
}
