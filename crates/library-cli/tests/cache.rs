//! The image cache through `scs-library pull`: one download however many
//! processes pull the same image, Apptainer's layout, a killed fill, a
//! corrupt entry, an unwritable cache, an identical destination, and
//! `scs-library cache list|clean|dir`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, SystemTime};

use library_testserver::{Endpoint, Fault, FaultAction, TestServer};
use sha2::{Digest, Sha256};

mod support;
use support::start;

const MIB: usize = 1 << 20;

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_hex(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` bytes that differ from one image to the next (`seed`).
fn image(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

struct Env {
    server: TestServer,
    dir: tempfile::TempDir,
    bytes: Vec<u8>,
    hex: String,
}

impl Env {
    fn new(size: usize) -> Env {
        let server = start(TestServer::builder());
        let bytes = image(size, size as u64);
        server.add_image("alice", "tools", "hello", &["v1"], "amd64", bytes.clone());
        let hex = hex(&bytes);
        Env {
            server,
            dir: tempfile::tempdir().unwrap(),
            hex,
            bytes,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `pull alice/tools/hello:v1 <dest>` with the cache in `cache` (or
    /// with the extra arguments), started.
    fn spawn(&self, cache: Option<&Path>, dest: &str, extra: &[&str]) -> Child {
        let mut cmd = match cache {
            Some(c) => support::command_with_cache(self.dir.path(), c),
            None => support::command(self.dir.path()),
        };
        cmd.env("LIBRARY_URL", self.server.url().as_str())
            .args(["pull", "--arch", "amd64", "alice/tools/hello:v1", dest])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("scs-library starts")
    }

    fn pull(&self, cache: Option<&Path>, dest: &str, extra: &[&str]) -> Output {
        self.spawn(cache, dest, extra).wait_with_output().unwrap()
    }

    fn entry(&self, cache: &Path) -> PathBuf {
        cache
            .join("cache/library")
            .join(format!("sha256.{}", self.hex))
    }

    /// Checks that `dest` holds the image.
    #[track_caller]
    fn check(&self, dest: &str) {
        let p = self.path(dest);
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            self.bytes.len() as u64,
            "{dest}"
        );
        assert_eq!(file_hex(&p), self.hex, "{dest}");
    }
}

#[track_caller]
fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Runs `groups` of pulls at once (each `(cache, count)`), into distinct
/// destinations, and checks every destination.
fn many(env: &Env, label: &str, groups: &[(Option<&Path>, usize, &[&str])]) {
    let mut children = Vec::new();
    for (g, (cache, n, extra)) in groups.iter().enumerate() {
        for i in 0..*n {
            let dest = format!("{label}-{g}-{i}.sif");
            children.push((dest.clone(), env.spawn(*cache, &dest, extra)));
        }
    }
    for (dest, child) in children {
        ok(&child.wait_with_output().unwrap());
        env.check(&dest);
    }
}

#[test]
fn fifty_pulls_into_one_cache_download_the_image_once() {
    let env = Env::new(64 * MIB);
    let cache = env.path("cache");
    many(&env, "one", &[(Some(&cache), 50, &[])]);
    assert_eq!(env.server.image_bytes_sent(), env.bytes.len() as u64);
    assert_eq!(file_hex(&env.entry(&cache)), env.hex);
}

#[test]
fn two_caches_shared_by_two_groups_download_it_twice_and_no_cache_fifty_times() {
    let env = Env::new(64 * MIB);
    let (a, b) = (env.path("cache-a"), env.path("cache-b"));
    many(&env, "two", &[(Some(&a), 25, &[]), (Some(&b), 25, &[])]);
    assert_eq!(env.server.image_bytes_sent(), 2 * env.bytes.len() as u64);

    let before = env.server.image_bytes_sent();
    let c = env.path("cache-c");
    many(&env, "none", &[(Some(&c), 50, &["--no-cache"])]);
    assert_eq!(
        env.server.image_bytes_sent() - before,
        50 * env.bytes.len() as u64
    );
    assert!(!c.exists(), "--no-cache creates no cache");
}

fn temps(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_fill_killed_leaves_no_entry_and_its_temporary_file_goes_once_old() {
    let env = Env::new(8 * MIB);
    let cache = env.path("cache");
    let lib = cache.join("cache/library");
    // The first part waits, so the fill is under way when it is killed.
    env.server
        .inject(Fault::new(Endpoint::Blob, FaultAction::Delay(Duration::from_secs(30))).times(1));
    let mut child = env.spawn(Some(&cache), "killed.sif", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while temps(&lib).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no fill started");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = temps(&lib);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!env.entry(&cache).exists(), "no entry under the final name");

    // The next pull gets the lock (the kernel released it) and succeeds;
    // the young temporary file stays.
    ok(&env.pull(Some(&cache), "next.sif", &[]));
    env.check("next.sif");
    assert!(left[0].exists());

    // Once old, a later pull (here a hit) removes it.
    let two_days = SystemTime::now() - Duration::from_secs(2 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&left[0])
        .unwrap()
        .set_modified(two_days)
        .unwrap();
    let before = env.server.image_bytes_sent();
    ok(&env.pull(Some(&cache), "later.sif", &[]));
    env.check("later.sif");
    assert_eq!(env.server.image_bytes_sent(), before, "a hit");
    assert!(!left[0].exists(), "the old temporary file is removed");
    assert!(temps(&lib).is_empty());
}

#[test]
fn a_corrupt_entry_is_evicted_and_downloaded_again() {
    let env = Env::new(4 * MIB);
    let cache = env.path("cache");
    ok(&env.pull(Some(&cache), "first.sif", &[]));
    let entry = env.entry(&cache);
    let mut bytes = std::fs::read(&entry).unwrap();
    bytes[1234] ^= 0x01;
    std::fs::write(&entry, &bytes).unwrap();
    let before = env.server.image_bytes_sent();

    let (_, stderr) = ok(&env.pull(Some(&cache), "second.sif", &[]));
    assert!(
        stderr.contains("did not match") && stderr.contains("evicted"),
        "{stderr}"
    );
    env.check("second.sif");
    assert_eq!(
        env.server.image_bytes_sent() - before,
        env.bytes.len() as u64
    );
    assert_eq!(file_hex(&entry), env.hex, "the entry is right again");
}

#[test]
fn apptainer_layout_both_ways() {
    let env = Env::new(MIB);
    // Laid down by hand as Apptainer lays it: a hit, nothing fetched.
    let theirs = env.path("theirs");
    std::fs::create_dir_all(theirs.join("cache/library")).unwrap();
    std::fs::write(env.entry(&theirs), &env.bytes).unwrap();
    let (_, stderr) = ok(&env.pull(Some(&theirs), "hit.sif", &[]));
    env.check("hit.sif");
    assert_eq!(env.server.image_bytes_sent(), 0);
    assert!(stderr.contains("using the cached image"), "{stderr}");

    // Written by us: the name and place Apptainer reads, its modes.
    let ours = env.path("ours");
    ok(&env.pull(Some(&ours), "filled.sif", &[]));
    let entry = env.entry(&ours);
    assert_eq!(std::fs::read(&entry).unwrap(), env.bytes);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&entry), 0o700);
    assert_eq!(mode(&ours.join("cache")), 0o700);
    assert_eq!(mode(&ours.join("cache/library")), 0o700);
    // The destination is its own file, not a hard link to the entry.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&entry).unwrap().nlink(), 1);
}

#[test]
fn an_unwritable_cache_warns_once_and_pulls_uncached() {
    let env = Env::new(MIB);
    let cache = env.path("cache");
    std::fs::create_dir(&cache).unwrap();
    // `cache/` a regular file: nothing can be created under it (whoever
    // runs the test, root included).
    std::fs::write(cache.join("cache"), b"not a directory").unwrap();
    let (_, stderr) = ok(&env.pull(Some(&cache), "plain.sif", &[]));
    env.check("plain.sif");
    assert_eq!(
        stderr.matches("warning: cache disabled").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("not writable"), "{stderr}");
    assert_eq!(env.server.image_bytes_sent(), env.bytes.len() as u64);
}

#[test]
fn an_identical_destination_is_already_up_to_date() {
    let env = Env::new(2 * MIB);
    let cache = env.path("cache");
    for cache in [None, Some(cache.as_path())] {
        let dest = env.path("same.sif");
        std::fs::write(&dest, &env.bytes).unwrap();
        let before = env.server.image_bytes_sent();
        let (stdout, _) = ok(&env.pull(cache, "same.sif", &[]));
        assert!(stdout.contains("already up to date"), "{stdout}");
        assert_eq!(
            env.server.image_bytes_sent(),
            before,
            "no image byte fetched"
        );
        env.check("same.sif");
    }
    // Another file there still needs --force, and is kept.
    std::fs::write(env.path("other.sif"), b"precious").unwrap();
    let out = env.pull(Some(&cache), "other.sif", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(env.path("other.sif")).unwrap(), b"precious");
    assert_eq!(env.server.image_bytes_sent(), 0);
}

#[test]
fn disable_cache_variables_must_be_booleans() {
    let env = Env::new(MIB);
    let cache = env.path("cache");
    for var in ["APPTAINER_DISABLE_CACHE", "SINGULARITY_DISABLE_CACHE"] {
        let out = support::command_with_cache(env.dir.path(), &cache)
            .env("LIBRARY_URL", env.server.url().as_str())
            .env(var, "maybe")
            .args(["pull", "--arch", "amd64", "alice/tools/hello:v1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{stderr}");
    }
    assert!(env.server.requests().is_empty());
    // A true value disables it.
    let out = support::command_with_cache(env.dir.path(), &cache)
        .env("LIBRARY_URL", env.server.url().as_str())
        .env("SINGULARITY_DISABLE_CACHE", "true")
        .args(["pull", "--arch", "amd64", "alice/tools/hello:v1"])
        .output()
        .unwrap();
    ok(&out);
    assert!(!cache.exists());
}

fn cache_cmd(env: &Env, cache: &Path, args: &[&str]) -> String {
    let out = support::command_with_cache(env.dir.path(), cache)
        .arg("cache")
        .args(args)
        .output()
        .unwrap();
    ok(&out).0
}

#[test]
fn cache_list_clean_and_dir() {
    let env = Env::new(MIB);
    let cache = env.path("cache");
    assert_eq!(
        cache_cmd(&env, &cache, &["dir"]).trim(),
        cache.display().to_string()
    );
    ok(&env.pull(Some(&cache), "a.sif", &[]));

    let table = cache_cmd(&env, &cache, &["list"]);
    assert!(
        table.contains(&format!("sha256.{}", &env.hex[..12])),
        "{table}"
    );
    assert!(table.contains("library://alice/tools/hello:v1"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&cache_cmd(&env, &cache, &["list", "--json"])).unwrap();
    assert_eq!(json[0]["hash"], format!("sha256.{}", env.hex));
    assert_eq!(json[0]["size"], env.bytes.len() as u64);
    assert_eq!(json[0]["refs"][0], "library://alice/tools/hello:v1");

    // Not old enough: kept.
    let out = cache_cmd(&env, &cache, &["clean", "--older-than", "30d"]);
    assert!(out.contains("removed 0"), "{out}");
    assert!(env.entry(&cache).exists());

    // Locked by a pull: kept.
    let lock = std::fs::File::open(
        cache
            .join("cache/library")
            .join(format!(".sha256.{}.lock", env.hex)),
    )
    .unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).unwrap();
    let out = cache_cmd(&env, &cache, &["clean"]);
    assert!(out.contains("kept") && out.contains("removed 0"), "{out}");
    assert!(env.entry(&cache).exists());
    drop(lock);

    let json: serde_json::Value =
        serde_json::from_str(&cache_cmd(&env, &cache, &["clean", "--json"])).unwrap();
    assert_eq!(json["removed"][0]["hash"], format!("sha256.{}", env.hex));
    assert!(!env.entry(&cache).exists());
    assert_eq!(cache_cmd(&env, &cache, &["list", "--json"]).trim(), "[]");
}

#[test]
fn the_default_cache_follows_apptainers_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache_dir = |env: &[(&str, &Path)]| -> String {
        let mut cmd = support::command(d);
        cmd.env_remove("APPTAINER_DISABLE_CACHE")
            .args(["cache", "dir"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        ok(&out).0.trim().to_string()
    };
    let p = |name: &str| d.join(name);
    // HOME is the test's directory (tests/support).
    assert_eq!(cache_dir(&[]), p(".apptainer").display().to_string());
    let sing_conf = p("sing-conf");
    assert_eq!(
        cache_dir(&[("SINGULARITY_CONFIGDIR", &sing_conf)]),
        sing_conf.display().to_string()
    );
    let app_conf = p("app-conf");
    assert_eq!(
        cache_dir(&[
            ("SINGULARITY_CONFIGDIR", &sing_conf),
            ("APPTAINER_CONFIGDIR", &app_conf)
        ]),
        app_conf.display().to_string()
    );
    let sing_cache = p("sing-cache");
    assert_eq!(
        cache_dir(&[
            ("APPTAINER_CONFIGDIR", &app_conf),
            ("SINGULARITY_CACHEDIR", &sing_cache)
        ]),
        sing_cache.display().to_string()
    );
    let app_cache = p("app-cache");
    assert_eq!(
        cache_dir(&[
            ("SINGULARITY_CACHEDIR", &sing_cache),
            ("APPTAINER_CACHEDIR", &app_cache)
        ]),
        app_cache.display().to_string()
    );
}
