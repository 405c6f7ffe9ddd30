//! `cargo xtask demo`: the main job, end to end, as a user would run it.
//!
//! Builds `scs-library` and `library-testserver`, starts the server as a
//! process of its own on 127.0.0.1 with an on-disk store in a temporary
//! directory and an access token, then runs `scs-library` against it: push
//! a SIF fixture under two tags, search for it, list its tags, pull it with
//! 4 streams and compare its SHA-256 with the fixture's, show the image
//! record, pull it once more with no URL and no token but a `remote.yaml`
//! as `apptainer remote login` writes it (zero configuration: service
//! discovery finds the library), delete it, and print a summary. Every step's `--json` output is
//! checked; the demo fails on the first step that did not do what it said.
//! The server is killed by the PID this process started, on success and on
//! failure alike.
//!
//! This file has no dependency on the rest of xtask, so that a test of the
//! command line crate can include it and run the very same demo.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The fixture pushed and pulled back, relative to the workspace root.
pub const FIXTURE: &str = "testdata/sif/amd64.sif";

/// The number of checked steps.
const STEPS: usize = 9;

/// Build the two binaries, then run the demo with them.
pub fn run(root: &Path) -> Result<()> {
    let bins = build(root)?;
    run_with(&bins, &root.join(FIXTURE))
}

/// The two programs the demo runs.
pub struct Bins {
    /// `scs-library`.
    pub cli: PathBuf,
    /// `library-testserver`.
    pub server: PathBuf,
}

/// `cargo build -p library-cli -p library-testserver --bins`, reading the
/// paths of the executables from cargo's JSON messages.
pub fn build(root: &Path) -> Result<Bins> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("demo: building scs-library and library-testserver");
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "-p",
            "library-cli",
            "-p",
            "library-testserver",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    ensure!(
        output.status.success(),
        "cargo build failed: {}",
        output.status
    );
    let mut cli = None;
    let mut server = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(name), Some(exe)) = (
            msg.pointer("/target/name").and_then(Value::as_str),
            msg.get("executable").and_then(Value::as_str),
        ) else {
            continue;
        };
        match name {
            "scs-library" => cli = Some(PathBuf::from(exe)),
            "library-testserver" => server = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok(Bins {
        cli: cli.context("cargo built no scs-library executable")?,
        server: server.context("cargo built no library-testserver executable")?,
    })
}

/// The server process; killed and reaped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only the process this demo started, by its handle (its PID).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &Path, store: &Path, log: &Path, token: &str) -> Result<Server> {
    let mut child = Command::new(bin)
        .arg("--dir")
        .arg(store)
        .args(["--token", token])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log)?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep reading so that the server never blocks on a full pipe.
        for _ in lines {}
    });
    let mut server = Server {
        child,
        url: String::new(),
    };
    let line = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(l) => l,
        Err(_) => {
            let mut why = String::new();
            let _ = File::open(log).and_then(|mut f| f.read_to_string(&mut why));
            bail!("the test server did not say it was ready: {}", why.trim());
        }
    };
    server.url = line
        .strip_prefix("LIBRARY_URL=")
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?
        .to_string();
    Ok(server)
}

/// What one run of `scs-library` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("output is not JSON: {}", self.stdout))
    }
}

struct Session<'a> {
    cli: &'a Path,
    url: &'a str,
    token: &'a str,
    work: &'a Path,
    /// The HOME of every run; the library and token come from its
    /// `remote.yaml` only when `zero_config` is set.
    home: &'a Path,
    zero_config: bool,
    steps: usize,
    runs: usize,
    total: Duration,
}

impl Session<'_> {
    /// Run `scs-library args`, show the command and its output, and check
    /// that the token appears nowhere in what it printed.
    fn run(&mut self, args: &[&str], show_output: bool) -> Result<Run> {
        println!("$ scs-library {}", args.join(" "));
        let started = Instant::now();
        let mut cmd = Command::new(self.cli);
        cmd.args(args)
            .current_dir(self.work)
            .env_remove("LIBRARY_TOKEN_FILE")
            .env_remove("RUST_LOG")
            // The user's own remote.yaml and the machine's are never read.
            .env("HOME", self.home)
            .env("LIBRARY_SYSTEM_CONFIG_DIRS", "")
            .stdin(Stdio::null());
        for (var, _) in std::env::vars_os() {
            let v = var.to_string_lossy();
            if v.starts_with("APPTAINER_") || v.starts_with("SINGULARITY_") {
                cmd.env_remove(&var);
            }
        }
        // The demo's own image cache, not the user's.
        cmd.env("APPTAINER_CACHEDIR", self.work.join("cache"));
        if self.zero_config {
            cmd.env_remove("LIBRARY_URL").env_remove("LIBRARY_TOKEN");
        } else {
            cmd.env("LIBRARY_URL", self.url)
                .env("LIBRARY_TOKEN", self.token);
        }
        let out = cmd.output().context("running scs-library")?;
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        };
        self.runs += 1;
        self.total += run.elapsed;
        if show_output {
            for line in run.stdout.lines().chain(run.stderr.lines()) {
                println!("    {line}");
            }
        }
        ensure!(
            !run.stdout.contains(self.token) && !run.stderr.contains(self.token),
            "scs-library printed the access token"
        );
        Ok(run)
    }

    /// Run and require exit code `code`.
    fn expect(&mut self, args: &[&str], code: i32, show_output: bool) -> Result<Run> {
        let run = self.run(args, show_output)?;
        if run.code != Some(code) {
            bail!(
                "scs-library {} exited with {:?}, expected {code}\nstdout: {}\nstderr: {}",
                args.join(" "),
                run.code,
                run.stdout.trim(),
                run.stderr.trim()
            );
        }
        Ok(run)
    }

    fn ok(&mut self, what: &str) {
        self.steps += 1;
        println!("  ok {}: {what}\n", self.steps);
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    for unit in ["KiB", "MiB", "GiB"] {
        if v < 1024.0 || unit == "GiB" {
            return format!("{v:.1} {unit}");
        }
        v /= 1024.0;
    }
    unreachable!()
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key).with_context(|| format!("no {key:?} in {v}"))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    field(v, key)?
        .as_str()
        .with_context(|| format!("{key:?} is not a string in {v}"))
}

fn u64_field(v: &Value, key: &str) -> Result<u64> {
    field(v, key)?
        .as_u64()
        .with_context(|| format!("{key:?} is not a number in {v}"))
}

/// Run the demo's steps with already built programs: the test server as a
/// process of its own, `scs-library` against it.
pub fn run_with(bins: &Bins, fixture: &Path) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("scs-library-demo")
        .tempdir()?;
    let store = tmp.path().join("store");
    let token = format!("demo-token-{}-{}", std::process::id(), fastish_nonce());
    let server = start_server(&bins.server, &store, &tmp.path().join("server.log"), &token)?;
    println!(
        "library-testserver (pid {}) serves {} with its store in {}",
        server.child.id(),
        server.url,
        store.display()
    );
    let result = run_steps(&bins.cli, &server.url, &token, fixture);
    drop(server);
    result
}

/// The demo's steps: `scs-library` (the program at `cli`) against the
/// library at `url`, which requires `token`.
pub fn run_steps(cli: &Path, url: &str, token: &str, fixture: &Path) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("scs-library-demo-work")
        .tempdir()?;
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work)?;
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home)?;
    let fixture = fixture
        .canonicalize()
        .with_context(|| format!("the fixture {}", fixture.display()))?;
    let fixture_size = std::fs::metadata(&fixture)?.len();
    let fixture_sha = sha256_file(&fixture)?;
    println!("scs-library runs with LIBRARY_URL={url} and LIBRARY_TOKEN set\n");
    let mut s = Session {
        cli,
        url,
        token,
        work: &work,
        home: &home,
        zero_config: false,
        steps: 0,
        runs: 0,
        total: Duration::ZERO,
    };
    let fixture_arg = fixture.to_string_lossy().into_owned();
    let image = "demo/tools/hello";

    // 1. The server answers.
    let v = s.expect(&["version"], 0, true)?;
    ensure!(v.stdout.contains("API version"), "no API version shown");
    s.ok("the library answers and says which API it speaks");

    // 2. Push under two tags.
    let push = s.expect(
        &[
            "push",
            "--json",
            &fixture_arg,
            &format!("{image}:1.0,latest"),
        ],
        0,
        false,
    )?;
    let pj = push.json()?;
    let pushed_hash = str_field(&pj, "hash")?.to_string();
    let image_id = str_field(&pj, "image_id")?.to_string();
    let upload = str_field(&pj, "upload")?.to_string();
    ensure!(
        pushed_hash == format!("sha256.{fixture_sha}"),
        "pushed hash {pushed_hash} is not the fixture's"
    );
    ensure!(
        u64_field(&pj, "size")? == fixture_size,
        "pushed size differs from the fixture's"
    );
    ensure!(
        str_field(&pj, "arch")? == "amd64",
        "arch not read from the SIF header"
    );
    ensure!(
        pj["tags"] == serde_json::json!(["1.0", "latest"]),
        "tags {}",
        pj["tags"]
    );
    ensure!(
        upload != "already-present",
        "a fresh library already had the image"
    );
    let push_secs = pj["seconds"].as_f64().unwrap_or(0.0);
    println!(
        "    pushed {} ({}) as {pushed_hash}, arch amd64 from the SIF header, {upload} upload",
        human(fixture_size),
        fixture.file_name().unwrap_or_default().to_string_lossy()
    );
    s.ok("pushed with tags 1.0 and latest");

    // 3. Search finds it.
    s.expect(&["search", "hello"], 0, true)?;
    let found = s.expect(&["search", "--json", "hello"], 0, false)?.json()?;
    let images = found["image"].as_array().cloned().unwrap_or_default();
    ensure!(
        images.iter().any(|i| i["hash"] == pushed_hash.as_str()),
        "search did not find the image: {found}"
    );
    println!(
        "    {} image(s) found, one with the pushed hash",
        images.len()
    );
    s.ok("search finds the image by name");

    // 4. Both tags point at it.
    s.expect(&["tags", image], 0, true)?;
    let tags = s.expect(&["tags", "--json", image], 0, false)?.json()?;
    for t in ["1.0", "latest"] {
        ensure!(
            tags["tags"][t] == image_id.as_str(),
            "tag {t} is not on the image: {tags}"
        );
        ensure!(
            tags["arch_tags"]["amd64"][t] == image_id.as_str(),
            "amd64 tag {t} is not on the image: {tags}"
        );
    }
    println!("    1.0 and latest -> image {image_id} (any architecture and amd64)");
    s.ok("tags 1.0 and latest point at the image, for amd64 too");

    // 5. Pull it with 4 streams and check its SHA-256.
    let part = "8K";
    let pull = s.expect(
        &[
            "pull",
            "--json",
            &format!("{image}:1.0"),
            "hello.sif",
            "--arch",
            "amd64",
            "--concurrency",
            "4",
            "--part-size",
            part,
        ],
        0,
        false,
    )?;
    let lj = pull.json()?;
    let pulled = work.join("hello.sif");
    let pulled_sha = sha256_file(&pulled)?;
    ensure!(
        pulled_sha == fixture_sha,
        "the pulled file's SHA-256 {pulled_sha} is not the fixture's {fixture_sha}"
    );
    ensure!(
        str_field(&lj, "sha256")? == fixture_sha,
        "reported SHA-256 differs"
    );
    ensure!(
        u64_field(&lj, "size")? == fixture_size,
        "reported size differs"
    );
    ensure!(
        lj["verified"] == true,
        "the pull was not verified against the image hash"
    );
    let pull_secs = lj["seconds"].as_f64().unwrap_or(0.0);
    let transfer = str_field(&lj, "transfer")?.to_string();
    println!(
        "    pulled {} to hello.sif ({transfer}, 4 streams of 8 KiB parts), sha256 {pulled_sha}",
        human(fixture_size)
    );
    s.ok("pulled with 4 streams; its SHA-256 equals the fixture's");

    // 6. A file that already holds the image is up to date; another
    // file is not overwritten.
    let before = std::fs::read(&pulled)?;
    let again = s.expect(&["pull", &format!("{image}:1.0"), "hello.sif"], 0, true)?;
    ensure!(
        again.stdout.contains("already up to date"),
        "no word of the file being up to date"
    );
    ensure!(std::fs::read(&pulled)? == before, "the file changed");
    let other = work.join("other.sif");
    std::fs::write(&other, b"precious")?;
    let refused = s.expect(&["pull", &format!("{image}:1.0"), "other.sif"], 2, true)?;
    ensure!(
        refused.stderr.contains("exists"),
        "no word of the existing file"
    );
    ensure!(
        std::fs::read(&other)? == b"precious",
        "the existing file changed"
    );
    s.ok("pulling again is up to date; another file is left alone without --force");

    // 7. The image record.
    s.expect(
        &["image", &format!("{image}:1.0"), "--arch", "amd64"],
        0,
        true,
    )?;
    let rec = s
        .expect(
            &[
                "image",
                "--json",
                &format!("{image}:latest"),
                "--arch",
                "amd64",
            ],
            0,
            false,
        )?
        .json()?;
    ensure!(
        rec["hash"] == pushed_hash.as_str(),
        "image record hash: {rec}"
    );
    ensure!(
        rec["size"].as_u64() == Some(fixture_size),
        "image record size: {rec}"
    );
    ensure!(rec["arch"] == "amd64", "image record arch: {rec}");
    println!("    hash, size and arch as pushed");
    s.ok("the image record has the hash, size and architecture pushed");

    // 8. Zero configuration: no URL and no token, only a remote.yaml as
    // `apptainer remote login` writes it (Insecure: the demo server speaks
    // http); service discovery finds the library, the token goes with it.
    let endpoint = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/');
    let conf = home.join(".apptainer");
    std::fs::create_dir_all(&conf)?;
    let remote_yaml = conf.join("remote.yaml");
    std::fs::write(
        &remote_yaml,
        format!(
            "Active: demo\nRemotes:\n  demo:\n    URI: {endpoint}\n    Token: {token}\n    System: false\n    Exclusive: false\n    Insecure: true\n"
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&remote_yaml, std::fs::Permissions::from_mode(0o600))?;
    }
    println!("    ~/.apptainer/remote.yaml: Active remote \"demo\" at {endpoint}, with its token; LIBRARY_URL and LIBRARY_TOKEN unset");
    s.zero_config = true;
    s.expect(&["remote", "list"], 0, true)?;
    let zero = s
        .expect(
            &[
                "pull",
                "--json",
                &format!("{image}:latest"),
                "zero.sif",
                "--arch",
                "amd64",
            ],
            0,
            false,
        )?
        .json()?;
    s.zero_config = false;
    let zero_sha = sha256_file(&work.join("zero.sif"))?;
    ensure!(
        zero_sha == fixture_sha && zero["verified"] == true,
        "the zero-configuration pull is not the fixture: {zero}"
    );
    println!(
        "    pulled {image}:latest to zero.sif with no flag and no variable, sha256 {zero_sha}"
    );
    s.ok("with only a remote.yaml, a pull needs no URL and no token");

    // 9. Delete it; it is gone.
    let del = s.expect(
        &[
            "delete",
            "--json",
            &format!("{image}:1.0"),
            "--arch",
            "amd64",
        ],
        0,
        false,
    )?;
    ensure!(
        del.json()?["deleted"] == format!("library://{image}:1.0").as_str(),
        "delete said {}",
        del.stdout
    );
    println!("    deleted library://{image}:1.0 (amd64)");
    let gone = s.expect(
        &["image", &format!("{image}:1.0"), "--arch", "amd64"],
        3,
        true,
    )?;
    ensure!(gone.stderr.starts_with("error: "), "no error line");
    s.ok("deleted; the image is not found any more (exit code 3)");

    let rate = |secs: f64| {
        if secs > 0.0 {
            format!("{}/s", human((fixture_size as f64 / secs) as u64))
        } else {
            "-".into()
        }
    };
    println!("Summary");
    println!(
        "  image  {} ({}), sha256 {}",
        FIXTURE,
        human(fixture_size),
        fixture_sha
    );
    println!(
        "  push   {} in {:.3} s ({}), {upload} upload, tags 1.0 and latest",
        human(fixture_size),
        push_secs,
        rate(push_secs)
    );
    println!(
        "  pull   {} in {:.3} s ({}), 4 streams of 8 KiB parts, verified, identical",
        human(fixture_size),
        pull_secs,
        rate(pull_secs)
    );
    println!(
        "  steps  {} of {STEPS} passed; {} runs of scs-library took {:.2} s in all",
        s.steps,
        s.runs,
        s.total.as_secs_f64()
    );
    ensure!(s.steps == STEPS, "only {} of {STEPS} steps ran", s.steps);
    Ok(())
}

/// A little variation for the token, without a random number crate.
fn fastish_nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
