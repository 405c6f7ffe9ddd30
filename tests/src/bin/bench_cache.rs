//! The image cache benchmark (run by `cargo xtask bench cache`): 1 and 20
//! concurrent `scs-library pull` processes of one image against the
//! in-process library server, without the cache, with a cold cache and
//! with a warm one. Prints wall time, the image bytes the server sent and
//! the peak RSS of the pull processes (each child's `ru_maxrss`, from
//! `wait4`). The server, which holds the image, runs in a process of its
//! own (this program with `--serve`): a child's `ru_maxrss` counts the
//! memory of the process it was spawned from, which must therefore stay
//! small.
//!
//! `library-bench-cache --scs <scs-library> [--size-mib N]`

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use library_e2e::server_process::ServerProcess;
use library_e2e::{random_bytes, sha256_hex};
use library_testserver::TestServer;

/// The library server in its own process: its URL, and the image bytes
/// it has sent so far (asked over a pipe).
struct Server(ServerProcess);

impl Server {
    fn start(size_mib: usize) -> Result<Server> {
        ServerProcess::start(&[&size_mib.to_string()]).map(Server)
    }

    fn image_bytes_sent(&mut self) -> Result<u64> {
        let line = self.0.ask("sent")?;
        line.parse()
            .with_context(|| format!("the server process said {line:?}"))
    }

    fn stop(self) -> Result<()> {
        self.0.stop()
    }
}

/// `--serve SIZE_MIB`: the library server with one image; prints its URL
/// and the image's SHA-256, then answers each `sent` line on stdin with
/// the image bytes sent so far; ends at the end of stdin.
fn serve(size_mib: usize) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let server = rt.block_on(TestServer::builder().start())?;
    let bytes = random_bytes(size_mib << 20, 7);
    let sha = sha256_hex(&bytes);
    server.add_image("alice", "tools", "hello", &["v1"], "amd64", bytes);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {sha}", server.url())?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "sent" {
            writeln!(out, "{}", server.image_bytes_sent())?;
            out.flush()?;
        }
    }
    Ok(())
}

struct Case {
    name: String,
    wall: f64,
    sent: u64,
    rss_kib: i64,
}

fn run_case(
    server: &mut Server,
    scs: &Path,
    work: &Path,
    name: &str,
    n: usize,
    cache: Option<&Path>,
) -> Result<Case> {
    let sha = server.0.sha.clone();
    let out = work.join("out");
    std::fs::create_dir_all(&out)?;
    let before = server.image_bytes_sent()?;
    let t = Instant::now();
    let mut pids = Vec::new();
    for i in 0..n {
        let mut cmd = Command::new(scs);
        cmd.current_dir(&out)
            .env("LIBRARY_URL", &server.0.url)
            .env_remove("APPTAINER_DISABLE_CACHE")
            .env_remove("SINGULARITY_DISABLE_CACHE")
            .args(["-q", "pull", "--arch", "amd64", "alice/tools/hello:v1"])
            .arg(format!("dest-{i}.sif"))
            .stdin(Stdio::null());
        match cache {
            Some(c) => cmd.env("APPTAINER_CACHEDIR", c),
            None => cmd.arg("--no-cache"),
        };
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", scs.display()))?;
        pids.push(child.id());
        // Reaped by `wait` below (by its pid), not by `Child`.
        std::mem::forget(child);
    }
    let mut rss = 0;
    for pid in pids {
        let used = library_e2e::usage::wait_pid(pid)?;
        if used.status != 0 {
            bail!("{name}: a pull failed (wait status {})", used.status);
        }
        rss = rss.max(used.max_rss_kib);
    }
    let wall = t.elapsed().as_secs_f64();
    let sent = server.image_bytes_sent()? - before;
    for i in 0..n {
        let p = out.join(format!("dest-{i}.sif"));
        let got = library_transport::hex(&library_transport::sha256_file(&p)?);
        if got != sha {
            bail!("{name}: {} has sha256 {got}, expected {sha}", p.display());
        }
        std::fs::remove_file(&p)?;
    }
    eprintln!("bench: {name}: {wall:.2} s");
    Ok(Case {
        name: name.to_string(),
        wall,
        sent,
        rss_kib: rss,
    })
}

fn main() -> Result<()> {
    let mut scs = None;
    let mut size_mib: usize = 256;
    let mut serving = false;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--scs" => scs = Some(PathBuf::from(v)),
            "--size-mib" => size_mib = v.parse()?,
            "--serve" => {
                serving = true;
                size_mib = v.parse()?;
            }
            _ => bail!("unknown argument {k}"),
        }
    }
    if serving {
        return serve(size_mib);
    }
    let scs = scs.context("--scs <path of scs-library> is needed")?;
    let size = size_mib << 20;
    let mut server = Server::start(size_mib)?;
    let work = tempfile::tempdir()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut cases = Vec::new();
    for n in [1usize, 20] {
        let cache = work.path().join(format!("cache-{n}"));
        let w = work.path();
        for (what, cache) in [
            ("no cache", None),
            ("cold cache", Some(&cache)),
            ("warm cache", Some(&cache)),
        ] {
            let name = format!("{n}x {what}");
            cases.push(run_case(
                &mut server,
                &scs,
                w,
                &name,
                n,
                cache.map(PathBuf::as_path),
            )?);
        }
    }
    server.stop()?;
    println!();
    println!(
        "image cache: one {size_mib} MiB image, library server in its own process, concurrent scs-library pulls (load average at start: {})",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!();
    println!("| case | wall time | image bytes sent | images sent | peak RSS of a pull (max over the pulls) |");
    println!("|---|---:|---:|---:|---:|");
    for c in &cases {
        println!(
            "| {} | {:.2} s | {} | {:.2} | {:.1} MiB |",
            c.name,
            c.wall,
            c.sent,
            c.sent as f64 / size as f64,
            c.rss_kib as f64 / 1024.0
        );
    }
    let find = |n: &str| cases.iter().find(|c| c.name == n).map(|c| c.wall);
    if let (Some(cold), Some(warm)) = (find("1x cold cache"), find("1x warm cache")) {
        println!();
        println!(
            "A warm hit takes {:.2}x the time of a cold pull (1 process).",
            warm / cold
        );
    }
    Ok(())
}
