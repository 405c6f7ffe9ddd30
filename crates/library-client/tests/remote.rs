//! Remotes: real `remote.yaml` files in temporary directories, merged as
//! Apptainer merges them, and service discovery against the test server.

use std::path::{Path, PathBuf};

use library_client::remote::{self, ConfigPaths, Remote, Remotes};
use library_client::{ErrorKind, HttpClient, RetryConfig};
use library_testserver::TestServer;

struct Dirs {
    _tmp: tempfile::TempDir,
    user: PathBuf,
    system: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("user");
    let system = tmp.path().join("etc");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::create_dir_all(&system).unwrap();
    Dirs {
        user,
        system,
        _tmp: tmp,
    }
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("remote.yaml");
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

fn paths(d: &Dirs) -> ConfigPaths {
    ConfigPaths {
        user_dirs: vec![d.user.clone()],
        system_dirs: vec![d.system.clone()],
    }
}

fn no_retry() -> RetryConfig {
    RetryConfig::default().with_max_retries(0)
}

#[test]
fn user_file_only() {
    let d = dirs();
    write(
        &d.user,
        "Active: mine\nRemotes:\n  mine:\n    URI: lib.example.org:8443\n    Token: tok-1\n    System: false\n    Exclusive: false\n",
    );
    let r = Remotes::load(&paths(&d)).unwrap();
    let a = r.active_remote().unwrap().unwrap();
    assert_eq!(a.name, "mine");
    assert_eq!(a.uri, "lib.example.org:8443");
    assert_eq!(a.token.as_deref(), Some("tok-1"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.system_file, None);
    assert!(!format!("{a:?}").contains("tok-1"), "Debug hides the token");
}

#[test]
fn system_file_only() {
    let d = dirs();
    write(
        &d.system,
        "Active: SylabsCloud\nRemotes:\n  SylabsCloud:\n    URI: cloud.sylabs.io\n    System: true\n    Exclusive: false\n",
    );
    let r = Remotes::load(&paths(&d)).unwrap();
    let a = r.active_remote().unwrap().unwrap();
    assert_eq!(
        (a.name.as_str(), a.uri.as_str()),
        ("SylabsCloud", "cloud.sylabs.io")
    );
    assert!(a.system && a.token.is_none());
    assert_eq!(r.user_file, None);
}

#[test]
fn merged_keeps_the_user_token_and_exclusive_wins() {
    let d = dirs();
    // As `remote login` writes it: the whole merged config, System: true.
    write(
        &d.user,
        "Active: other\nRemotes:\n  corp:\n    URI: old.corp.example\n    Token: corp-token\n    System: true\n    Exclusive: false\n  other:\n    URI: other.example\n    Token: other-token\n    System: false\n    Exclusive: false\n",
    );
    write(
        &d.system,
        "Active: corp\nRemotes:\n  corp:\n    URI: lib.corp.example\n    System: true\n    Exclusive: true\n  extra:\n    URI: extra.example\n    System: true\n    Exclusive: false\n",
    );
    let r = Remotes::load(&paths(&d)).unwrap();
    assert_eq!(
        r.active.as_deref(),
        Some("corp"),
        "the exclusive system remote is active"
    );
    let corp = r.get("corp").unwrap();
    assert_eq!(corp.uri, "lib.corp.example", "URI from the system file");
    assert_eq!(corp.token.as_deref(), Some("corp-token"), "token kept");
    assert!(corp.exclusive);
    let extra = r.get("extra").unwrap();
    assert!(extra.system && extra.token.is_none());
    assert_eq!(
        r.get("other").unwrap().token.as_deref(),
        Some("other-token")
    );
}

#[test]
fn user_entry_not_system_wins_over_the_system_one() {
    let d = dirs();
    write(
        &d.user,
        "Remotes:\n  corp:\n    URI: mine.example\n    Token: t\n    System: false\n    Exclusive: false\n",
    );
    write(
        &d.system,
        "Active: corp\nRemotes:\n  corp:\n    URI: lib.corp.example\n    System: true\n    Exclusive: false\n",
    );
    let r = Remotes::load(&paths(&d)).unwrap();
    assert_eq!(
        r.active.as_deref(),
        Some("corp"),
        "empty user Active takes the system's"
    );
    assert_eq!(r.get("corp").unwrap().uri, "mine.example");
}

#[test]
fn missing_active_means_no_active_remote() {
    let d = dirs();
    write(&d.user, "Remotes:\n  a:\n    URI: a.example\n");
    let r = Remotes::load(&paths(&d)).unwrap();
    assert_eq!(r.active_remote().unwrap(), None);
    assert_eq!(r.remotes.len(), 1);
}

#[test]
fn active_naming_a_missing_remote_is_an_error() {
    let d = dirs();
    let f = write(
        &d.user,
        "Active: gone\nRemotes:\n  a:\n    URI: a.example\n",
    );
    let r = Remotes::load(&paths(&d)).unwrap();
    let e = r.active_remote().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let m = e.to_string();
    assert!(m.contains("\"gone\" is not a remote"), "{m}");
    assert!(m.contains(&f.display().to_string()), "{m}");
    assert!(m.contains("known: a"), "{m}");
}

#[test]
fn unknown_keys_are_accepted_with_a_warning() {
    let d = dirs();
    write(
        &d.user,
        "Active: a\nFutureKey: 1\nRemotes:\n  a:\n    URI: a.example\n    Token: t\n    NewField: x\n    Keyservers:\n      - {URI: https://keys.example, Skip: false}\nCredentials:\n  - {URI: docker://r.example, Auth: Basic x}\n",
    );
    let r = Remotes::load(&paths(&d)).unwrap();
    assert_eq!(
        r.active_remote().unwrap().unwrap().token.as_deref(),
        Some("t")
    );
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings.iter().any(|w| w.contains("\"FutureKey\"")));
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("\"NewField\" of remote \"a\"")));
}

#[test]
fn bad_yaml_names_the_file_and_the_line() {
    let d = dirs();
    let f = write(&d.user, "Active: a\nRemotes:\n  a:\n    URI: [unclosed\n");
    let e = Remotes::load(&paths(&d)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let m = e.to_string();
    assert!(m.contains(&f.display().to_string()), "{m}");
    assert!(m.contains("line 5") || m.contains("line 4"), "{m}");
    // A value of the wrong type is an error with its line too.
    write(&d.user, "Active: a\nRemotes:\n  a:\n    System: maybe\n");
    let m = Remotes::load(&paths(&d)).unwrap_err().to_string();
    assert!(m.contains("line 4"), "{m}");
}

#[test]
fn empty_file_and_comments_only_are_no_remotes() {
    let d = dirs();
    write(&d.user, "");
    let r = Remotes::load(&paths(&d)).unwrap();
    assert!(r.remotes.is_empty() && r.active.is_none());
    assert!(r.user_file.is_some());
    write(&d.user, "# nothing yet\n");
    assert!(Remotes::load(&paths(&d)).unwrap().remotes.is_empty());
}

#[cfg(unix)]
#[test]
fn a_file_others_may_read_gets_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let d = dirs();
    let f = write(
        &d.user,
        "Active: a\nRemotes:\n  a:\n    URI: a.example\n    Token: t\n",
    );
    assert!(Remotes::load(&paths(&d)).unwrap().warnings.is_empty());
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = Remotes::load(&paths(&d)).unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("0644") && r.warnings[0].contains("chmod 600"));
    // Read, never written or chmodded.
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn config_dirs_follow_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let p = ConfigPaths::from_lookup(env(&[
        ("APPTAINER_CONFIGDIR", "/a"),
        ("SINGULARITY_CONFIGDIR", "/s"),
        ("HOME", "/h"),
    ]));
    assert_eq!(p.user_dirs, [PathBuf::from("/a")]);
    let p = ConfigPaths::from_lookup(env(&[("SINGULARITY_CONFIGDIR", "/s"), ("HOME", "/h")]));
    assert_eq!(p.user_dirs, [PathBuf::from("/s")]);
    let p = ConfigPaths::from_lookup(env(&[("APPTAINER_CONFIGDIR", ""), ("HOME", "/h")]));
    assert_eq!(
        p.user_dirs,
        [
            PathBuf::from("/h/.apptainer"),
            PathBuf::from("/h/.singularity")
        ]
    );
    assert_eq!(p.system_dirs.len(), 4);
    assert_eq!(p.system_dirs[0], PathBuf::from("/etc/apptainer"));
    let p = ConfigPaths::from_lookup(env(&[(remote::ENV_SYSTEM_DIRS, "/x:/y")]));
    assert_eq!(p.system_dirs, [PathBuf::from("/x"), PathBuf::from("/y")]);
    assert!(p.user_dirs.is_empty());
}

#[test]
fn legacy_singularity_dir_is_read_when_there_is_no_apptainer_one() {
    let tmp = tempfile::tempdir().unwrap();
    let sing = tmp.path().join(".singularity");
    std::fs::create_dir_all(&sing).unwrap();
    write(&sing, "Active: s\nRemotes:\n  s:\n    URI: s.example\n");
    let home = tmp.path().to_string_lossy().into_owned();
    let p = ConfigPaths::from_lookup(move |k| match k {
        "HOME" => Some(home.clone()),
        remote::ENV_SYSTEM_DIRS => Some(String::new()),
        _ => None,
    });
    let r = Remotes::load(&p).unwrap();
    assert_eq!(r.active.as_deref(), Some("s"));
}

#[test]
fn endpoint_urls() {
    let u = |uri: &str, insecure| {
        remote::endpoint_url(&Remote::new("r", uri).with_insecure(insecure)).map(|u| u.to_string())
    };
    assert_eq!(
        u("cloud.sylabs.io", false).unwrap(),
        "https://cloud.sylabs.io/"
    );
    assert_eq!(u("127.0.0.1:8080", true).unwrap(), "http://127.0.0.1:8080/");
    assert_eq!(u("host:8443/sub", false).unwrap(), "https://host:8443/sub/");
    assert_eq!(u("https://h.example", true).unwrap(), "https://h.example/");
    assert!(u("", false).is_err());
    assert!(u("ftp://h", false).is_err());
}

#[test]
fn same_origin_is_scheme_host_and_port() {
    let o = |a: &str, b: &str| remote::same_origin(&a.parse().unwrap(), &b.parse().unwrap());
    assert!(o("https://h.example/v1", "https://H.example:443/"));
    assert!(!o("https://h.example/", "http://h.example/"));
    assert!(!o("http://h:1/", "http://h:2/"));
    assert!(!o("http://h/", "http://g/"));
}

fn http() -> HttpClient {
    HttpClient::new().unwrap()
}

fn remote_of(url: &url::Url) -> Remote {
    Remote::new(
        "test",
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap()),
    )
    .with_insecure(true)
}

#[tokio::test]
async fn discovery_finds_the_library_and_keeps_the_services() {
    let s = TestServer::start().await.unwrap();
    let lib = s.blob_url();
    let s2 = TestServer::builder()
        .discovery_library(lib.clone())
        .start()
        .await
        .unwrap();
    let found = remote::discover(&http(), &no_retry(), &remote_of(&s.url()))
        .await
        .unwrap();
    assert_eq!(
        found.library.as_str().trim_end_matches('/'),
        s.url().as_str().trim_end_matches('/')
    );
    assert!(found.token.is_some() && found.keystore.is_some());
    assert!(found.all.contains_key("keyserver") && found.all.contains_key("library"));
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/assets/config/config.prod.json");
    assert!(
        reqs[0].header("authorization").is_none(),
        "discovery sends no token"
    );

    let other = remote::discover(&http(), &no_retry(), &remote_of(&s2.url()))
        .await
        .unwrap();
    assert_eq!(other.library, lib);
    // Cached per process: a second discovery sends nothing.
    remote::discover(&http(), &no_retry(), &remote_of(&s.url()))
        .await
        .unwrap();
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn discovery_failures_are_clear() {
    // Connection refused: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = Remote::new("gone", format!("127.0.0.1:{port}")).with_insecure(true);
    let e = remote::discover(&http(), &no_retry(), &r)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");

    // 404: the second listener serves no discovery file.
    let s = TestServer::start().await.unwrap();
    let e = remote::discover(&http(), &no_retry(), &remote_of(&s.blob_url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e}");
    assert!(e.to_string().contains("404"), "{e}");

    let bad = TestServer::builder()
        .discovery_body("<html>hi</html>")
        .start()
        .await
        .unwrap();
    let e = remote::discover(&http(), &no_retry(), &remote_of(&bad.url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert!(e.to_string().contains("did not answer JSON"), "{e}");

    let nolib = TestServer::builder()
        .discovery_body(r#"{"tokenAPI":{"uri":"https://t.example"}}"#)
        .start()
        .await
        .unwrap();
    let e = remote::discover(&http(), &no_retry(), &remote_of(&nolib.url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert!(e.to_string().contains("names no libraryAPI"), "{e}");

    let e = remote::discover(
        &http(),
        &no_retry(),
        &Remote::new("DefaultRemote", "cloud.apptainer.org"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("no-default-remote"), "{e}");
}
