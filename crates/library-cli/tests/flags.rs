//! `scs-library` flags and exit codes that need a running process to
//! observe: exit 1 and 130 (SIGINT), `--resume`, and the progress bar on a
//! terminal (stderr on a pseudo-terminal opened with rustix).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use library_testserver::{Endpoint, Fault, FaultAction, Listener, TestServer};

const PART: u64 = 64 * 1024;

mod support;
use support::start;

/// `scs-library` pointed at `server`, with a clean environment.
fn scs(dir: &Path, server: &TestServer, args: &[&str]) -> Command {
    let mut cmd = support::command(dir);
    cmd.args(args).env("LIBRARY_URL", server.url().as_str());
    cmd
}

/// Exit code, stdout, stderr.
fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("scs-library runs");
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn image(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// The ranged blob requests seen, by their start offset.
fn part_starts(server: &TestServer) -> Vec<u64> {
    server
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Blob)
        .filter_map(|r| {
            r.header("range")?
                .strip_prefix("bytes=")?
                .split('-')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Polls the server's request log (at most 20 s) until `cond` holds; the
/// child must still be running meanwhile.
fn until(child: &mut Child, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("scs-library ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn pushing_a_file_that_is_no_sif_image_is_1() {
    let server = start(TestServer::builder());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        b"these are not the bytes of a SIF",
    )
    .unwrap();
    let (code, stdout, stderr) = run(scs(
        dir.path(),
        &server,
        &["push", "notes.txt", "alice/tools/hello:v1"],
    ));
    assert_eq!(code, 1, "stdout {stdout:?} stderr {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("notes.txt"), "names the file: {stderr}");
    assert!(server
        .find_image("alice", "tools", "hello", "v1", "amd64")
        .is_none());
}

#[test]
fn sigint_during_a_pull_is_130_and_leaves_no_file() {
    let server = start(TestServer::builder());
    server.add_image(
        "alice",
        "tools",
        "hello",
        &["v1"],
        "amd64",
        image(4 * PART as usize),
    );
    // The second part takes long enough for the signal to arrive meanwhile.
    server.inject(
        Fault::new(Endpoint::Blob, FaultAction::Delay(Duration::from_secs(30))).range_start(PART),
    );
    let dir = tempfile::tempdir().unwrap();
    let part = PART.to_string();
    let mut cmd = scs(
        dir.path(),
        &server,
        &[
            "pull",
            "--arch",
            "amd64",
            "--concurrency",
            "1",
            "--part-size",
            &part,
            "alice/tools/hello:v1",
        ],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    until(&mut child, "the second part's request", || {
        part_starts(&server).contains(&PART)
    });
    assert!(
        !listing(dir.path()).is_empty(),
        "the pull writes a temporary file"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "ended without waiting for the delayed part"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: interrupted"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        listing(dir.path()).is_empty(),
        "no file and no temporary file left: {:?}",
        listing(dir.path())
    );
}

#[test]
fn resume_keeps_the_partial_file_and_fetches_only_the_rest() {
    let server = start(TestServer::builder());
    let bytes = image(5 * PART as usize + 100);
    server.add_image("alice", "tools", "hello", &["v1"], "amd64", bytes.clone());
    let part = PART.to_string();
    let args = |resume: bool| {
        let mut a = vec![
            "--retries",
            "0",
            "pull",
            "--arch",
            "amd64",
            "--concurrency",
            "1",
            "--part-size",
            &part,
        ];
        if resume {
            a.push("--resume");
        }
        a.push("alice/tools/hello:v1");
        a
    };
    let dir = tempfile::tempdir().unwrap();
    let cut_third = || {
        server.inject(Fault::new(Endpoint::Blob, FaultAction::DropConnection).range_start(2 * PART))
    };

    // Without --resume, a failed pull keeps nothing and the next one starts over.
    cut_third();
    let (code, _, stderr) = run(scs(dir.path(), &server, &args(false)));
    assert_eq!(code, 5, "{stderr}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));

    // With --resume the partial file stays beside the destination...
    cut_third();
    let (code, _, stderr) = run(scs(dir.path(), &server, &args(true)));
    assert_eq!(code, 5, "{stderr}");
    let kept = listing(dir.path());
    assert!(kept.contains(&".hello_v1.sif.part".to_string()), "{kept:?}");
    assert!(!kept.contains(&"hello_v1.sif".to_string()), "{kept:?}");

    // ...and the next pull fetches only the parts it lacks.
    server.clear_requests();
    let (code, stdout, stderr) = run(scs(dir.path(), &server, &args(true)));
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("hello_v1.sif")).unwrap(),
        bytes
    );
    assert_eq!(listing(dir.path()), ["hello_v1.sif"]);
    let mut starts = part_starts(&server);
    starts.sort_unstable();
    assert_eq!(starts, [2 * PART, 3 * PART, 4 * PART, 5 * PART]);
}

/// Runs `cmd` with stderr on a pseudo-terminal of 160 columns; returns
/// the exit code, stdout, and every byte drawn on the terminal.
fn on_terminal(mut cmd: Command) -> (i32, String, String) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::os::unix::fs::OpenOptionsExt;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(name.to_str().unwrap())
        .unwrap();
    rustix::termios::tcsetwinsize(
        &slave,
        rustix::termios::Winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    cmd.env("TERM", "xterm-256color")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(OwnedFd::from(slave)));
    let child = cmd.spawn().unwrap();
    // The parent's copy of the terminal's end goes with the command, so
    // that reading sees the end once the child is gone.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut drawn = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => drawn.extend_from_slice(&buf[..n]),
                // Linux answers EIO once the other end is closed.
                Err(_) => break,
            }
        }
        drawn
    });
    let out = child.wait_with_output().unwrap();
    let drawn = reader.join().unwrap();
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&drawn).into_owned(),
    )
}

#[test]
fn a_terminal_shows_the_progress_bar_unless_quiet() {
    const MIB: u64 = 1 << 20;
    let server = start(TestServer::builder());
    server.add_image(
        "alice",
        "tools",
        "hello",
        &["v1"],
        "amd64",
        image(3 * MIB as usize),
    );
    let dir = tempfile::tempdir().unwrap();
    let args = |quiet: bool| {
        let mut a = vec![
            "pull",
            "--arch",
            "amd64",
            "--concurrency",
            "1",
            "--part-size",
            "1M",
        ];
        if quiet {
            a.push("-q");
        }
        a.push("alice/tools/hello:v1");
        a.push("--force");
        a
    };
    // The second part is slow: the bar is drawn meanwhile, at one third.
    let slow_second_part = || {
        server.inject(
            Fault::new(
                Endpoint::Blob,
                FaultAction::Delay(Duration::from_millis(800)),
            )
            .range_start(MIB),
        )
    };

    slow_second_part();
    let (code, stdout, drawn) = on_terminal(scs(dir.path(), &server, &args(false)));
    assert_eq!(code, 0, "{stdout} {drawn}");
    assert!(stdout.starts_with("pulled "), "{stdout}");
    assert!(
        drawn.contains("pulling library://alice/tools/hello:v1"),
        "{drawn:?}"
    );
    assert!(drawn.contains("1.00 MiB/3.00 MiB"), "{drawn:?}");
    assert!(drawn.contains("MiB/s"), "a rate: {drawn:?}");
    assert!(
        drawn.contains("==========>"),
        "a bar at one third: {drawn:?}"
    );
    assert!(
        drawn.ends_with("\r\u{1b}[2K"),
        "cleared at the end: {drawn:?}"
    );

    slow_second_part();
    let (code, stdout, drawn) = on_terminal(scs(dir.path(), &server, &args(true)));
    assert_eq!(code, 0, "{stdout} {drawn}");
    assert_eq!(stdout, "");
    assert_eq!(drawn, "", "nothing drawn with -q");
    assert_eq!(
        std::fs::read(dir.path().join("hello_v1.sif"))
            .unwrap()
            .len() as u64,
        3 * MIB
    );
}
