//! The `scs-library` binary, run as a user runs it, against an in-process
//! test server: output (tables and `--json`), exit codes, files on disk.

use std::path::{Path, PathBuf};

use library_testserver::{
    DownloadMode, Endpoint, Fault, FaultAction, TestServer, TestServerBuilder,
};
use serde_json::Value;

mod support;
use support::start;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sif/amd64.sif")
}

/// What one run printed and how it ended.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    fn code(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "exit code; output: {self:#?}");
        self
    }

    /// A failure prints exactly one line, starting with `error: `.
    #[track_caller]
    fn one_error_line(&self) -> &Out {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "stderr: {:?}", self.stderr);
        self
    }
}

/// `scs-library` with a clean environment: only what `env` sets.
fn scs(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = support::command(dir);
    cmd.args(args).envs(env.iter().copied());
    let out = cmd.output().expect("scs-library runs");
    Out {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A test server and a working directory, with `scs-library` pointed at it.
struct Env {
    server: TestServer,
    dir: tempfile::TempDir,
    url: String,
    token: Option<String>,
}

impl Env {
    fn new() -> Env {
        Env::with(TestServer::builder())
    }

    fn with(builder: TestServerBuilder) -> Env {
        let server = start(builder);
        let url = server.url().to_string();
        Env {
            server,
            dir: tempfile::tempdir().unwrap(),
            url,
            token: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut env = vec![("LIBRARY_URL", self.url.as_str())];
        if let Some(t) = &self.token {
            env.push(("LIBRARY_TOKEN", t.as_str()));
        }
        scs(self.dir.path(), &env, args)
    }

    fn seed(&self, tags: &[&str], arch: &str, bytes: &[u8]) -> library_client::model::Image {
        self.server
            .add_image("alice", "tools", "hello", tags, arch, bytes.to_vec())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A port nothing listens on.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/")
}

#[test]
fn push_then_pull_is_byte_identical() {
    let env = Env::new();
    let fixture = fixture();
    let original = std::fs::read(&fixture).unwrap();
    let f = fixture.to_str().unwrap();

    let out = env.run(&["push", f, "alice/tools/hello:v1,latest"]);
    out.code(0);
    assert!(out.stdout.starts_with("pushed "), "{}", out.stdout);
    assert!(out
        .stdout
        .contains("library://alice/tools/hello:v1,latest (amd64)"));
    assert!(out.stdout.contains("36.0 KiB"), "{}", out.stdout);
    let image = env
        .server
        .find_image("alice", "tools", "hello", "v1", "amd64")
        .expect("pushed image");
    assert_eq!(image.hash, format!("sha256.{}", sha256_hex(&original)));
    assert!(env
        .server
        .find_image("alice", "tools", "hello", "latest", "amd64")
        .is_some());

    // Default destination: <container>_<tag>.sif in the working directory.
    let out = env.run(&["pull", "--arch", "amd64", "alice/tools/hello:v1"]);
    out.code(0);
    assert!(
        out.stdout.trim_end().ends_with(", verified"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("not verified"), "{}", out.stdout);
    assert_eq!(std::fs::read(env.path("hello_v1.sif")).unwrap(), original);

    // Four streams of 8 KiB parts, library:// prefix, JSON result.
    let out = env.run(&[
        "pull",
        "--json",
        "--arch",
        "amd64",
        "--concurrency",
        "4",
        "--part-size",
        "8K",
        "library://alice/tools/hello:latest",
        "copy.sif",
    ]);
    out.code(0);
    let j = out.json();
    assert_eq!(j["size"], original.len() as u64);
    assert_eq!(j["sha256"], sha256_hex(&original));
    assert_eq!(j["verified"], true);
    assert_eq!(j["transfer"], "ranged");
    assert_eq!(j["reference"], "library://alice/tools/hello:latest");
    assert_eq!(std::fs::read(env.path("copy.sif")).unwrap(), original);
    let ranged = env
        .server
        .requests()
        .iter()
        .filter(|r| r.headers.contains_key("range"))
        .count();
    assert!(
        ranged >= 5,
        "36 KiB in 8 KiB parts is 5 ranged requests, saw {ranged}"
    );

    // A directory as destination gets the default name inside it.
    std::fs::create_dir(env.path("into")).unwrap();
    env.run(&[
        "pull",
        "-q",
        "--arch",
        "amd64",
        "alice/tools/hello:v1",
        "into",
    ])
    .code(0);
    assert_eq!(
        std::fs::read(env.path("into/hello_v1.sif")).unwrap(),
        original
    );

    // Pushing the same file again: the library already has it.
    let out = env.run(&["push", "--json", f, "alice/tools/hello:v2"]);
    out.code(0);
    let j = out.json();
    assert_eq!(j["upload"], "already-present");
    assert_eq!(j["tags"], serde_json::json!(["v2"]));
    assert_eq!(j["arch"], "amd64");
    assert_eq!(j["hash"], image.hash.as_str());
}

#[test]
fn push_options_and_default_tag() {
    let env = Env::new();
    let f = fixture();
    let out = env.run(&[
        "push",
        "--json",
        "--arch",
        "arm64",
        "--description",
        "a small test image",
        f.to_str().unwrap(),
        "library://alice/tools/other",
    ]);
    out.code(0);
    let j = out.json();
    assert_eq!(j["arch"], "arm64");
    assert_eq!(j["tags"], serde_json::json!(["latest"]));
    let img = env
        .server
        .find_image("alice", "tools", "other", "latest", "arm64")
        .expect("tagged latest for arm64");
    assert_eq!(img.description, "a small test image");

    // Missing file and bad references are usage errors, before any request.
    env.server.clear_requests();
    env.run(&["push", "nope.sif", "alice/tools/other"])
        .code(2)
        .one_error_line();
    env.run(&["push", f.to_str().unwrap(), "tools/other:v1"])
        .code(2)
        .one_error_line();
    env.run(&["push", f.to_str().unwrap(), "alice/tools/Other"])
        .code(2)
        .one_error_line();
    assert!(env.server.requests().is_empty());
}

#[test]
fn pull_never_overwrites_without_force() {
    let env = Env::new();
    let bytes = b"new image bytes".repeat(100);
    env.seed(&["v1"], "amd64", &bytes);
    let dest = env.path("hello_v1.sif");
    std::fs::write(&dest, b"precious").unwrap();

    let out = env.run(&["pull", "--arch", "amd64", "alice/tools/hello:v1"]);
    out.code(2).one_error_line();
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    // Only where the image is and its record are asked for (to see
    // whether the file there already holds it); no image byte is fetched.
    assert_eq!(env.server.image_bytes_sent(), 0);
    assert!(
        env.server
            .requests()
            .iter()
            .all(|r| r.path.starts_with("/v1/images/") || r.path == "/v1/oci-redirect"),
        "{:?}",
        env.server.requests()
    );
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

    let out = env.run(&["pull", "--force", "--arch", "amd64", "alice/tools/hello:v1"]);
    out.code(0);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
}

#[test]
fn not_found_is_3() {
    let env = Env::new();
    env.seed(&["v1"], "amd64", b"bytes");
    let out = env.run(&["pull", "--arch", "amd64", "alice/tools/hello:nope"]);
    out.code(3).one_error_line();
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    assert!(!env.path("hello_nope.sif").exists());
    env.run(&["pull", "--arch", "arm64", "alice/tools/hello:v1"])
        .code(3)
        .one_error_line();
    env.run(&["image", "--arch", "amd64", "alice/tools/missing:v1"])
        .code(3)
        .one_error_line();
    env.run(&["delete", "--arch", "amd64", "alice/tools/hello:nope"])
        .code(3)
        .one_error_line();
    env.run(&["tags", "alice/tools/missing"])
        .code(3)
        .one_error_line();
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn wrong_token_is_4_and_right_token_works() {
    let mut env = Env::with(TestServer::builder().token("the-right-token"));
    env.seed(&["v1"], "amd64", b"bytes");
    env.token = Some("a-wrong-token".into());
    let out = env.run(&["image", "--arch", "amd64", "alice/tools/hello:v1"]);
    out.code(4).one_error_line();
    assert!(out.stderr.contains("token"), "{}", out.stderr);
    env.run(&["pull", "--arch", "amd64", "alice/tools/hello:v1"])
        .code(4);
    assert!(!env.path("hello_v1.sif").exists());
    env.token = None;
    env.run(&["search", "hello"]).code(4).one_error_line();
    env.token = Some("the-right-token".into());
    env.run(&["image", "--arch", "amd64", "alice/tools/hello:v1"])
        .code(0);
}

#[test]
fn token_sources_flag_file_and_env() {
    let env = Env::with(TestServer::builder().token("tok-123"));
    env.seed(&["v1"], "amd64", b"bytes");
    let url = env.url.as_str();
    let d = env.dir.path();
    let args = ["image", "--arch", "amd64", "alice/tools/hello:v1"];
    scs(
        d,
        &[("LIBRARY_URL", url), ("LIBRARY_TOKEN", "tok-123")],
        &args,
    )
    .code(0);
    std::fs::write(env.path("token"), "tok-123\n").unwrap();
    let file = env.path("token");
    let file = file.to_str().unwrap();
    scs(
        d,
        &[("LIBRARY_URL", url), ("LIBRARY_TOKEN_FILE", file)],
        &args,
    )
    .code(0);
    let mut with_flag = vec!["--token-file", file];
    with_flag.extend(args);
    // The flag wins over the environment.
    scs(
        d,
        &[("LIBRARY_URL", url), ("LIBRARY_TOKEN", "wrong")],
        &with_flag,
    )
    .code(0);
    let mut with_token = vec!["--token", "tok-123", "--url", url];
    with_token.extend(args);
    scs(
        d,
        &[
            ("LIBRARY_URL", "http://127.0.0.1:1/"),
            ("LIBRARY_TOKEN", "x"),
        ],
        &with_token,
    )
    .code(0);
    // An unreadable token file is a usage error.
    let out = scs(
        d,
        &[
            ("LIBRARY_URL", url),
            ("LIBRARY_TOKEN_FILE", "/nonexistent/token"),
        ],
        &args,
    );
    out.code(2).one_error_line();
}

#[test]
fn token_never_printed() {
    let secret = "s3cr3t-t0ken-value";
    let mut env = Env::with(TestServer::builder().token(secret));
    env.token = Some(secret.into());
    let f = fixture();
    let f = f.to_str().unwrap();
    let runs = [
        env.run(&["-vv", "version"]),
        env.run(&["-vv", "push", f, "alice/tools/hello:v1"]),
        env.run(&["-vv", "pull", "--arch", "amd64", "alice/tools/hello:v1"]),
        env.run(&["-vv", "search", "--json", "hello"]),
        env.run(&["-vv", "tags", "alice/tools/hello"]),
        env.run(&[
            "-vv",
            "image",
            "--json",
            "--arch",
            "amd64",
            "alice/tools/hello:v1",
        ]),
        env.run(&["-vv", "image", "--arch", "amd64", "alice/tools/hello:none"]),
        env.run(&["-vv", "delete", "--arch", "amd64", "alice/tools/hello:v1"]),
        scs(
            env.dir.path(),
            &[],
            &["-vv", "--url", &env.url, "--token", secret, "version"],
        ),
        scs(
            env.dir.path(),
            &[("LIBRARY_TOKEN", secret)],
            &["-vv", "--url", &closed_port_url(), "version"],
        ),
    ];
    for (i, r) in runs.iter().enumerate() {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "run {i} printed the token: {r:#?}"
        );
    }
    assert_eq!(runs[0].code, 0, "{:#?}", runs[0]);
    assert_eq!(runs[1].code, 0, "{:#?}", runs[1]);
    assert_eq!(runs[2].code, 0, "{:#?}", runs[2]);
    // -vv logs something on stderr.
    assert!(runs[2].stderr.contains("DEBUG") || runs[2].stderr.contains("TRACE"));
    assert_eq!(runs[6].code, 3);
    assert_eq!(runs[9].code, 5);
}

#[test]
fn unreachable_server_is_5() {
    let dir = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let out = scs(dir.path(), &[("LIBRARY_URL", &url)], &["version"]);
    out.code(5).one_error_line();
    assert!(out.stderr.contains("--url"), "{}", out.stderr);
    let out = scs(
        dir.path(),
        &[("LIBRARY_URL", &url)],
        &["pull", "--arch", "amd64", "alice/tools/hello:v1"],
    );
    out.code(5).one_error_line();
    assert!(!dir.path().join("hello_v1.sif").exists());
    scs(dir.path(), &[("LIBRARY_URL", &url)], &["search", "hello"]).code(5);
}

#[test]
fn server_error_is_5_and_corruption_is_6() {
    let env = Env::with(TestServer::builder().download(DownloadMode::RedirectOtherListener));
    env.seed(&["v1"], "amd64", &vec![7u8; 50_000]);
    env.server
        .inject(Fault::new(Endpoint::Images, FaultAction::Status(500)).always());
    let image_requests = |env: &Env| {
        env.server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v1/images/"))
            .count()
    };
    env.run(&["image", "--arch", "amd64", "alice/tools/hello:v1"])
        .code(5)
        .one_error_line();
    assert_eq!(image_requests(&env), 6, "one try and 5 retries by default");
    env.server.clear_requests();
    env.run(&[
        "--retries",
        "1",
        "image",
        "--arch",
        "amd64",
        "alice/tools/hello:v1",
    ])
    .code(5)
    .one_error_line();
    assert_eq!(image_requests(&env), 2, "--retries 1");
    env.server.clear_requests();
    let out = scs(
        env.dir.path(),
        &[("LIBRARY_URL", &env.url), ("LIBRARY_RETRIES", "0")],
        &["image", "--arch", "amd64", "alice/tools/hello:v1"],
    );
    out.code(5).one_error_line();
    assert_eq!(image_requests(&env), 1, "LIBRARY_RETRIES=0");
    let out = scs(
        env.dir.path(),
        &[("LIBRARY_URL", &env.url), ("LIBRARY_RETRIES", "many")],
        &["image", "alice/tools/hello:v1"],
    );
    out.code(2);
    assert!(out.stderr.contains("LIBRARY_RETRIES"), "{}", out.stderr);

    let env = Env::with(TestServer::builder().download(DownloadMode::Stream));
    env.seed(&["v1"], "amd64", &vec![7u8; 50_000]);
    env.server
        .inject(Fault::new(Endpoint::ImageFile, FaultAction::CorruptBody).always());
    env.server
        .inject(Fault::new(Endpoint::Blob, FaultAction::CorruptBody).always());
    let out = env.run(&["pull", "--arch", "amd64", "alice/tools/hello:v1"]);
    out.code(6).one_error_line();
    assert!(out.stderr.contains("digest"), "{}", out.stderr);
    assert!(!env.path("hello_v1.sif").exists());
}

#[test]
fn ref_command_needs_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let closed = closed_port_url();
    let env = [("LIBRARY_URL", closed.as_str())];
    let d = dir.path();

    let out = scs(d, &env, &["ref", "library://alice/tools/samtools:1.17"]);
    out.code(0);
    assert!(out.stdout.contains("Entity"), "{}", out.stdout);
    assert!(out.stdout.contains("alice"));
    assert!(out.stdout.contains("samtools"));

    let out = scs(
        d,
        &env,
        &["ref", "--json", "alice/tools/samtools:1.17,latest"],
    );
    out.code(0);
    let j = out.json();
    assert_eq!(j["valid"], true);
    assert_eq!(j["pull"], false);
    assert_eq!(j["push"], true);
    assert_eq!(j["entity"], "alice");
    assert_eq!(j["collection"], "tools");
    assert_eq!(j["container"], "samtools");
    assert_eq!(j["tags"], serde_json::json!(["1.17", "latest"]));
    assert_eq!(j["canonical"], "library:alice/tools/samtools:1.17,latest");

    let out = scs(
        d,
        &env,
        &["ref", "--json", "library://example.org:8443/a/b/c:t"],
    );
    out.code(0);
    assert_eq!(out.json()["host"], "example.org:8443");

    scs(d, &env, &["ref", "--pull", "a/b/c:x,y"])
        .code(2)
        .one_error_line();
    scs(d, &env, &["ref", "--push", "alpine"]).code(2);
    scs(d, &env, &["ref", "alpine"]).code(0);
    for bad in [
        "Alpine",
        "a/b/c/d",
        "docker://alpine",
        "a/b/c:",
        "a//b",
        "a/b?c=d",
    ] {
        let out = scs(d, &env, &["ref", bad]);
        out.code(2);
        assert!(
            out.stdout.contains("Valid") && out.stdout.contains("no"),
            "{bad}: {out:?}"
        );
        let out = scs(d, &env, &["ref", "--json", bad]);
        out.code(2);
        assert_eq!(out.json()["valid"], false, "{bad}");
    }
}

#[test]
fn version_shows_both_sides() {
    let env = Env::with(
        TestServer::builder()
            .api_version("2.0.0-alpha.1")
            .version("9.8.7"),
    );
    let out = env.run(&["version"]);
    out.code(0);
    assert!(out.stdout.contains("9.8.7"), "{}", out.stdout);
    assert!(out.stdout.contains("2.0.0-alpha.1"));
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")));
    let j = env.run(&["version", "--json"]).json();
    assert_eq!(j["server"]["version"], "9.8.7");
    assert_eq!(j["server"]["apiVersion"], "2.0.0-alpha.1");
    assert_eq!(j["client"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(j["server"]["url"], env.url.as_str());

    let out = scs(env.dir.path(), &[], &["--version"]);
    out.code(0);
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn search_tables_json_and_filters() {
    let env = Env::new();
    let img = env.seed(&["v1"], "amd64", b"hello bytes");
    env.server.add_image(
        "bob",
        "misc",
        "world",
        &["latest"],
        "arm64",
        b"world".to_vec(),
    );

    let out = env.run(&["search", "hello"]);
    out.code(0);
    assert!(
        out.stdout.contains("library://alice/tools/hello"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("bob"), "{}", out.stdout);
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("IMAGE"))
        .expect("images table");
    assert!(header.contains("ARCH") && header.contains("SIZE"));

    let j = env.run(&["search", "--json", "hello"]).json();
    let images = j["image"].as_array().expect("images");
    assert!(images.iter().any(|i| i["hash"] == img.hash.as_str()));

    env.server.clear_requests();
    env.run(&["search", "--arch", "arm64", "--signed", "hello"])
        .code(0);
    let q = env
        .server
        .requests()
        .into_iter()
        .find(|r| r.path.contains("search"))
        .expect("search request");
    let query = q.query.unwrap_or_default();
    assert!(query.contains("arch=arm64"), "{query}");
    assert!(query.contains("signed=true"), "{query}");

    let out = env.run(&["search", "zzzzzz"]);
    out.code(0);
    assert!(out.stdout.contains("No results"));

    env.server.clear_requests();
    env.run(&["search", "ab"]).code(2).one_error_line();
    assert!(env.server.requests().is_empty());
}

#[test]
fn tags_v1_and_per_arch() {
    let env = Env::new();
    let img = env.seed(&["v1", "latest"], "amd64", b"bytes");
    let out = env.run(&["tags", "alice/tools/hello"]);
    out.code(0);
    assert!(out.stdout.contains("per architecture"), "{}", out.stdout);
    assert!(out.stdout.contains("any architecture"));
    assert!(out
        .stdout
        .lines()
        .any(|l| l.starts_with("v1") && l.contains("amd64") && l.contains(&img.id)));
    let j = env
        .run(&["tags", "--json", "library://alice/tools/hello"])
        .json();
    assert_eq!(j["tags"]["v1"], img.id.as_str());
    assert_eq!(j["tags"]["latest"], img.id.as_str());
    assert_eq!(j["arch_tags"]["amd64"]["v1"], img.id.as_str());
    assert_eq!(j["container"], "library://alice/tools/hello");

    // A server without tags per architecture: v1 tags only.
    let env = Env::with(TestServer::builder().api_version("1.0.0"));
    let img = env.seed(&["v1"], "amd64", b"bytes");
    let out = env.run(&["tags", "alice/tools/hello"]);
    out.code(0);
    assert!(!out.stdout.contains("per architecture"), "{}", out.stdout);
    let j = env.run(&["tags", "--json", "alice/tools/hello"]).json();
    assert_eq!(j["tags"]["v1"], img.id.as_str());
    assert!(j["arch_tags"].is_null());

    env.run(&["tags", "alice/tools/hello:v1"])
        .code(2)
        .one_error_line();
    env.run(&["tags", "tools/hello"]).code(2).one_error_line();
}

#[test]
fn image_record() {
    let env = Env::new();
    let bytes = vec![1u8; 3000];
    let img = env.seed(&["v1"], "arm64", &bytes);
    let out = env.run(&["image", "--arch", "arm64", "alice/tools/hello:v1"]);
    out.code(0);
    assert!(out.stdout.contains(&img.hash), "{}", out.stdout);
    assert!(
        out.stdout.contains("2.9 KiB (3000 bytes)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("arm64"));
    let j = env
        .run(&["image", "--json", "--arch", "arm64", "alice/tools/hello:v1"])
        .json();
    assert_eq!(j["hash"], img.hash.as_str());
    assert_eq!(j["size"], 3000);
    assert_eq!(j["arch"], "arm64");
    assert_eq!(j["id"], img.id.as_str());
    // By hash instead of tag.
    let by_hash = format!("alice/tools/hello:{}", img.hash);
    let j = env
        .run(&["image", "--json", "--arch", "arm64", &by_hash])
        .json();
    assert_eq!(j["id"], img.id.as_str());
}

#[test]
fn delete_image() {
    let env = Env::new();
    env.seed(&["v1"], "amd64", b"bytes");
    env.run(&["delete", "alice/tools/hello:v1"]).code(2);
    env.run(&["delete", "--arch", "amd64", "alice/tools/hello"])
        .code(2)
        .one_error_line();
    assert!(env
        .server
        .find_image("alice", "tools", "hello", "v1", "amd64")
        .is_some());
    let out = env.run(&[
        "delete",
        "--json",
        "--arch",
        "amd64",
        "alice/tools/hello:v1",
    ]);
    out.code(0);
    let j = out.json();
    assert_eq!(j["deleted"], "library://alice/tools/hello:v1");
    assert_eq!(j["arch"], "amd64");
    assert!(env
        .server
        .find_image("alice", "tools", "hello", "v1", "amd64")
        .is_none());
    env.run(&["image", "--arch", "amd64", "alice/tools/hello:v1"])
        .code(3);

    let img = env.seed(&["v2"], "amd64", b"other");
    let out = env.run(&["delete", "--arch", "amd64", "alice/tools/hello:v2"]);
    out.code(0);
    assert_eq!(
        out.stdout.trim(),
        "deleted library://alice/tools/hello:v2 (amd64)"
    );
    assert!(
        env.server.image_bytes(&img.id).is_none()
            || env
                .server
                .find_image("alice", "tools", "hello", "v2", "amd64")
                .is_none()
    );
}

#[test]
fn references_with_a_host() {
    let env = Env::new();
    let bytes = b"hosted".to_vec();
    env.seed(&["v1"], "amd64", &bytes);
    let port = env.server.url().port().unwrap();
    let ours = format!("library://127.0.0.1:{port}/alice/tools/hello:v1");
    env.run(&["pull", "--arch", "amd64", &ours]).code(0);
    assert_eq!(std::fs::read(env.path("hello_v1.sif")).unwrap(), bytes);

    env.server.clear_requests();
    let out = env.run(&[
        "pull",
        "--arch",
        "amd64",
        "library://other.example.org/alice/tools/hello:v1",
        "x.sif",
    ]);
    out.code(2).one_error_line();
    assert!(out.stderr.contains("other.example.org"), "{}", out.stderr);
    assert!(out.stderr.contains("--url"), "{}", out.stderr);
    assert!(env.server.requests().is_empty());
    assert!(!env.path("x.sif").exists());
}

#[test]
fn usage_errors_are_2() {
    let env = Env::new();
    for args in [
        &["pull"][..],
        &["pull", "a/b/c", "--part-size", "0"],
        &["pull", "a/b/c", "--part-size", "5X"],
        &["pull", "a/b/c", "--concurrency", "0"],
        &["pull", "a/b/c", "--concurrency", "fast"],
        &["pull", "a/b/c", "--max-concurrency", "0"],
        &["push", "f.sif", "a/b/c", "--concurrency", "many"],
        &["frobnicate"],
        &["pull", "a/b/c:x,y"],
        &["pull", "A/b/c"],
        &["image", "a/b/c/d"],
        &["completions", "tcsh"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
    }
    assert!(env.server.requests().is_empty());
    let help = env.run(&["--help"]);
    help.code(0);
    for code in [
        "Exit codes",
        "not found",
        "unauthorized",
        "integrity",
        "LIBRARY_URL",
    ] {
        assert!(help.stdout.contains(code), "help lacks {code:?}");
    }
}

#[test]
fn quiet_and_json_outputs() {
    let env = Env::new();
    env.seed(&["v1"], "amd64", b"quiet bytes");
    let out = env.run(&["pull", "-q", "--arch", "amd64", "alice/tools/hello:v1"]);
    out.code(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = env.run(&[
        "pull",
        "--json",
        "--arch",
        "amd64",
        "alice/tools/hello:v1",
        "j.sif",
    ]);
    out.code(0);
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    assert_eq!(out.json()["size"], 11);
}

#[test]
fn completions_for_shells() {
    let dir = tempfile::tempdir().unwrap();
    let bash = scs(dir.path(), &[], &["completions", "bash"]);
    bash.code(0);
    assert!(bash.stdout.contains("complete -F"), "{}", bash.stdout);
    assert!(bash.stdout.contains("scs-library"));
    assert!(bash.stdout.contains("pull"));
    let zsh = scs(dir.path(), &[], &["completions", "zsh"]);
    zsh.code(0);
    assert!(zsh.stdout.starts_with("#compdef scs-library"));
    let fish = scs(dir.path(), &[], &["completions", "fish"]);
    fish.code(0);
    assert!(fish.stdout.contains("complete -c scs-library"));
}
