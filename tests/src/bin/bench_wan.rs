//! Transfers over links like users have (run by `cargo xtask bench wan`):
//! `scs-library pull` and multipart `push` at fixed 1, 3, 8 and 16 streams
//! and at `auto`, on five links built on 127.0.0.1 by the test tooling:
//!
//! - `loopback`: no link at all (the CPU is the limit);
//! - `per-conn`: every connection capped (an object store or CDN);
//! - `rtt`: round-trip time added, with a window per connection (as
//!   TCP has), so that one connection is slow on a long path;
//! - `total`: the server's whole bandwidth capped, shared by every
//!   connection (more streams only add load);
//! - `busy`: a server that answers 503 to downloads above a few in flight.
//!
//! The library API goes straight to the server; the image bytes (the
//! redirected download and the part uploads) go through the link, which
//! sits in front of the server's blob listener. The server runs in a
//! process of its own (this program with `--serve`), so that the peak RSS
//! and CPU time of each `scs-library` child are its own (from `wait4`).
//! Every cell is the median of `--runs` runs (default 3), the settings of
//! one run interleaved; every pulled file and every pushed image is
//! compared with the original.
//!
//! `library-bench-wan --scs <scs-library> [--runs N] [--pull-mib N]
//! [--push-mib N] [--links a,b,...]`

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use library_e2e::server_process::ServerProcess;
use library_e2e::{random_bytes, sha256_hex};
use library_testserver::{LinkDirection, Listener, Multipart, TestServer, ThrottledLink};

const MB: u64 = 1_000_000;
/// The cap of each connection of `per-conn`, each way.
const PER_CONNECTION: u64 = 25 * MB;
/// The round trip added by `rtt`.
const RTT: Duration = Duration::from_millis(40);
/// The bytes in flight of one connection of `rtt` (a TCP window): one
/// connection moves at most this per half round trip, about 26 MB/s.
const WINDOW: u64 = 512 << 10;
/// The server's whole bandwidth on `total`, each way.
const TOTAL: u64 = 100 * MB;
/// Downloads in flight that `busy` serves; it refuses the rest with 503.
const BUSY_ABOVE: usize = 4;
/// The part size the server asks pushes for.
const PUSH_PART: u64 = 8 << 20;

const LINKS: [&str; 5] = ["loopback", "per-conn", "rtt", "total", "busy"];
const SETTINGS: [&str; 5] = ["1", "3", "8", "16", "auto"];

fn describe(link: &str) -> String {
    match link {
        "loopback" => "no link".into(),
        "per-conn" => format!("{} MB/s per connection each way", PER_CONNECTION / MB),
        "rtt" => format!(
            "{} ms round trip, {} KiB in flight per connection",
            RTT.as_millis(),
            WINDOW >> 10
        ),
        "total" => format!("{} MB/s in all each way, shared", TOTAL / MB),
        "busy" => format!("503 to downloads above {BUSY_ABOVE} in flight"),
        _ => link.into(),
    }
}

/// The directions of the link in front of the blob listener, if any.
fn link_settings(link: &str) -> Option<(LinkDirection, LinkDirection)> {
    let d = LinkDirection::new();
    match link {
        "per-conn" => Some((d.clone().rate(PER_CONNECTION), d.rate(PER_CONNECTION))),
        "rtt" => Some((
            d.clone().delay(RTT / 2).window(WINDOW),
            d.delay(RTT - RTT / 2).window(WINDOW),
        )),
        "total" => Some((d.clone().total_rate(TOTAL), d.total_rate(TOTAL))),
        _ => None,
    }
}

/// `--serve LINK PULL_MIB`: the library server (with one image of
/// `PULL_MIB`, when not 0) behind `LINK`. Prints its URL and the image's
/// SHA-256, then answers lines on stdin: `stats` (image bytes sent, 503s,
/// blob GETs, part PUTs, peak blob requests in flight), `reset`, and
/// `pushed` (the SHA-256 of the pushed image, or `none`).
fn serve(link: &str, mib: usize) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut b = TestServer::builder().multipart(Multipart::Supported {
        part_size: PUSH_PART,
    });
    if link == "busy" {
        b = b.refuse_downloads_above(BUSY_ABOVE);
    }
    let server = rt.block_on(b.start())?;
    let _link = match link_settings(link) {
        Some((up, down)) => {
            let l = ThrottledLink::builder(server.blob_addr())
                .up(up)
                .down(down)
                .start_on(rt.handle())?;
            server.advertise_blob_url(l.url());
            Some(l)
        }
        None => None,
    };
    let mut sha = "none".to_string();
    if mib > 0 {
        let bytes = random_bytes(mib << 20, 11);
        sha = sha256_hex(&bytes);
        server.add_image("alice", "tools", "big", &["v1"], "amd64", bytes);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {sha}", server.url())?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "stats" => {
                let reqs = server.requests();
                let blob = |m: &http::Method| {
                    reqs.iter()
                        .filter(|r| r.listener == Listener::Blob && r.method == m)
                        .count()
                };
                writeln!(
                    out,
                    "{} {} {} {} {}",
                    server.image_bytes_sent(),
                    server.busy_answers(),
                    blob(&http::Method::GET),
                    blob(&http::Method::PUT),
                    server.peak_in_flight(Listener::Blob)
                )?;
            }
            "reset" => {
                server.clear_requests();
                server.reset_peaks();
                writeln!(out, "ok")?;
            }
            "pushed" => {
                let got = server
                    .find_image("alice", "tools", "pushed", "v1", "amd64")
                    .and_then(|i| server.image_bytes(&i.id))
                    .map(|b| sha256_hex(&b))
                    .unwrap_or_else(|| "none".into());
                writeln!(out, "{got}")?;
            }
            _ => writeln!(out, "?")?,
        }
        out.flush()?;
    }
    Ok(())
}

type Server = ServerProcess;

/// What the server saw during one transfer.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    busy: u64,
    gets: u64,
    puts: u64,
    peak: u64,
}

/// What the server process says to `stats`.
fn seen(server: &mut Server) -> Result<Seen> {
    let line = server.ask("stats")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("the server process said {line:?}"))?;
    let [_, busy, gets, puts, peak] = v[..] else {
        bail!("the server process said {line:?}");
    };
    Ok(Seen {
        busy,
        gets,
        puts,
        peak,
    })
}

/// One run of one setting.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    rss_kib: i64,
    /// Streams at the end as the client reports them (pulls only).
    streams: Option<u64>,
    seen: Seen,
    /// Requests beyond one per part.
    retries: u64,
}

fn concurrency_args(setting: &str) -> Vec<String> {
    vec!["--concurrency".into(), setting.into()]
}

/// Runs `scs-library` with `args`, returning its stdout and what it used.
fn run_scs(
    scs: &Path,
    work: &Path,
    args: &[String],
) -> Result<(String, f64, library_e2e::usage::Usage)> {
    let t = Instant::now();
    let mut child = Command::new(scs)
        .current_dir(work)
        .env("HOME", work)
        .env("LIBRARY_SYSTEM_CONFIG_DIRS", "")
        .env_remove("LIBRARY_URL")
        .env_remove("LIBRARY_TOKEN")
        .env_remove("APPTAINER_DOWNLOAD_CONCURRENCY")
        .env_remove("SINGULARITY_DOWNLOAD_CONCURRENCY")
        .env_remove("APPTAINER_DOWNLOAD_PART_SIZE")
        .env_remove("SINGULARITY_DOWNLOAD_PART_SIZE")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", scs.display()))?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("stdout")?, &mut out)?;
    let pid = child.id();
    // Reaped by `wait_pid` (for its rusage), not by `Child`.
    std::mem::forget(child);
    let used = library_e2e::usage::wait_pid(pid)?;
    let wall = t.elapsed().as_secs_f64();
    if used.status != 0 {
        bail!(
            "scs-library {} failed (wait status {})",
            args.join(" "),
            used.status
        );
    }
    Ok((out, wall, used))
}

fn pull_once(
    server: &mut Server,
    scs: &Path,
    work: &Path,
    setting: &str,
    mib: usize,
) -> Result<Run> {
    server.ask("reset")?;
    let busy_before = seen(server)?.busy;
    let dest = work.join("pulled.sif");
    let mut args: Vec<String> = [
        "--url",
        &server.url,
        "--json",
        "pull",
        "--no-cache",
        "--arch",
        "amd64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(concurrency_args(setting));
    args.push("alice/tools/big:v1".into());
    args.push(dest.display().to_string());
    let (out, wall, used) = run_scs(scs, work, &args)?;
    let mut seen = seen(server)?;
    seen.busy -= busy_before;
    let json: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("pull printed {out:?}"))?;
    let got = library_transport::hex(&library_transport::sha256_file(&dest)?);
    if got != server.sha {
        bail!("pull at {setting}: sha256 {got}, expected {}", server.sha);
    }
    std::fs::remove_file(&dest)?;
    let size = (mib as u64) << 20;
    let part = library_client::Downloader::default().part_size_for(size);
    let parts = size.div_ceil(part);
    Ok(Run {
        wall,
        cpu: used.cpu_secs,
        rss_kib: used.max_rss_kib,
        streams: json["streams"].as_u64(),
        seen,
        retries: seen.gets.saturating_sub(parts),
    })
}

fn push_once(
    link: &str,
    scs: &Path,
    work: &Path,
    file: &Path,
    sha: &str,
    setting: &str,
) -> Result<Run> {
    // A fresh server for every push: it keeps what it receives in memory.
    let mut server = Server::start(&[link, "0"])?;
    let mut args: Vec<String> = ["--url", &server.url, "--json", "push"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(concurrency_args(setting));
    args.push(file.display().to_string());
    args.push("alice/tools/pushed:v1".into());
    let (_, wall, used) = run_scs(scs, work, &args)?;
    let seen = seen(&mut server)?;
    let got = server.ask("pushed")?;
    server.stop()?;
    if got != sha {
        bail!("push at {setting}: the server holds sha256 {got}, expected {sha}");
    }
    let size = std::fs::metadata(file)?.len();
    Ok(Run {
        wall,
        cpu: used.cpu_secs,
        rss_kib: used.max_rss_kib,
        streams: None,
        seen,
        retries: seen.puts.saturating_sub(size.div_ceil(PUSH_PART)),
    })
}

/// A SIF file of `mib` MiB: the amd64 fixture followed by random bytes,
/// written a MiB at a time (this process must stay small: a child's peak
/// RSS counts the memory of the process it was spawned from).
fn push_file(dir: &Path, mib: usize) -> Result<(PathBuf, String)> {
    use sha2::Digest;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sif/amd64.sif");
    let head = std::fs::read(&fixture).with_context(|| fixture.display().to_string())?;
    let path = dir.join("push.sif");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut sha = sha2::Sha256::new();
    f.write_all(&head)?;
    sha.update(&head);
    let mut left = (mib << 20).saturating_sub(head.len());
    let mut seed = 5;
    while left > 0 {
        let chunk = random_bytes(left.min(1 << 20), seed);
        f.write_all(&chunk)?;
        sha.update(&chunk);
        left -= chunk.len();
        seed += 1;
    }
    f.flush()?;
    Ok((path, hex_of(&sha.finalize())))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The cells of one link and operation: the runs of every setting.
struct Row {
    link: String,
    op: &'static str,
    setting: &'static str,
    runs: Vec<Run>,
}

impl Row {
    fn wall(&self) -> f64 {
        median(self.runs.iter().map(|r| r.wall).collect())
    }
    fn cpu(&self) -> f64 {
        median(self.runs.iter().map(|r| r.cpu).collect())
    }
    fn rss_mib(&self) -> f64 {
        self.runs.iter().map(|r| r.rss_kib).max().unwrap_or(0) as f64 / 1024.0
    }
    fn max_of(&self, f: impl Fn(&Run) -> u64) -> u64 {
        self.runs.iter().map(f).max().unwrap_or(0)
    }
}

fn main() -> Result<()> {
    let mut scs = None;
    let mut runs = 3usize;
    let mut pull_mib = 512usize;
    let mut push_mib = 256usize;
    let mut links: Vec<String> = LINKS.iter().map(|s| s.to_string()).collect();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--serve" {
            let link = it.next().context("--serve LINK PULL_MIB")?;
            let mib = it.next().context("--serve LINK PULL_MIB")?.parse()?;
            return serve(&link, mib);
        }
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--scs" => scs = Some(PathBuf::from(v)),
            "--runs" => runs = v.parse()?,
            "--pull-mib" => pull_mib = v.parse()?,
            "--push-mib" => push_mib = v.parse()?,
            "--links" => {
                links = v.split(',').map(str::to_string).collect();
                if let Some(l) = links.iter().find(|l| !LINKS.contains(&l.as_str())) {
                    bail!("unknown link {l:?}: expected some of {}", LINKS.join(","));
                }
            }
            _ => bail!("unknown argument {k}"),
        }
    }
    let scs = scs.context("--scs <path of scs-library> is needed")?;
    // The transfers run in a work directory: the path must not be relative.
    let scs = std::fs::canonicalize(&scs).with_context(|| scs.display().to_string())?;
    let work = tempfile::tempdir()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (push_path, push_sha) = push_file(work.path(), push_mib)?;

    let mut rows: Vec<Row> = Vec::new();
    for link in &links {
        let mut server = Server::start(&[link, &pull_mib.to_string()])?;
        let mut pulls: Vec<Row> = SETTINGS
            .iter()
            .map(|s| Row {
                link: link.clone(),
                op: "pull",
                setting: s,
                runs: Vec::new(),
            })
            .collect();
        let mut pushes: Vec<Row> = SETTINGS
            .iter()
            .map(|s| Row {
                link: link.clone(),
                op: "push",
                setting: s,
                runs: Vec::new(),
            })
            .collect();
        for run in 0..runs {
            for row in pulls.iter_mut() {
                let r = pull_once(&mut server, &scs, work.path(), row.setting, pull_mib)?;
                eprintln!(
                    "bench: {link} pull {} run {}: {:.2} s",
                    row.setting,
                    run + 1,
                    r.wall
                );
                row.runs.push(r);
            }
            for row in pushes.iter_mut() {
                let r = push_once(link, &scs, work.path(), &push_path, &push_sha, row.setting)?;
                eprintln!(
                    "bench: {link} push {} run {}: {:.2} s",
                    row.setting,
                    run + 1,
                    r.wall
                );
                row.runs.push(r);
            }
        }
        server.stop()?;
        rows.extend(pulls);
        rows.extend(pushes);
    }

    println!();
    println!(
        "Transfers over links: pull of {pull_mib} MiB, multipart push of {push_mib} MiB in {} MiB parts; medians of {runs} runs; load average at start: {}",
        PUSH_PART >> 20,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    for link in &links {
        println!("- `{link}`: {}", describe(link));
    }
    println!();
    println!("| link | op | streams | wall | MB/s | CPU | peak RSS | streams at end | peak in flight | retries | 503s | vs best fixed | fixed 3 / this |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut checks = Vec::new();
    for link in &links {
        for op in ["pull", "push"] {
            let group: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.link == link && r.op == op)
                .collect();
            let mib = if op == "pull" { pull_mib } else { push_mib };
            let best = group
                .iter()
                .filter(|r| r.setting != "auto")
                .map(|r| r.wall())
                .fold(f64::INFINITY, f64::min);
            let three = group.iter().find(|r| r.setting == "3").map(|r| r.wall());
            for r in &group {
                let w = r.wall();
                println!(
                    "| {link} | {op} | {} | {w:.2} s | {:.0} | {:.2} s | {:.1} MiB | {} | {} | {} | {} | {:.2}x | {} |",
                    r.setting,
                    ((mib as u64) << 20) as f64 / w / 1e6,
                    r.cpu(),
                    r.rss_mib(),
                    r.runs
                        .iter()
                        .map(|x| x.streams.map(|s| s.to_string()).unwrap_or_else(|| "-".into()))
                        .collect::<Vec<_>>()
                        .join("/"),
                    r.max_of(|x| x.seen.peak),
                    r.max_of(|x| x.retries),
                    r.max_of(|x| x.seen.busy),
                    w / best,
                    three.map(|t| format!("{:.2}x", t / w)).unwrap_or_default(),
                );
            }
            if let (Some(auto), Some(three)) = (group.iter().find(|r| r.setting == "auto"), three) {
                let a = auto.wall();
                checks.push(format!(
                    "{link} {op}: auto is {:.2}x the best fixed; fixed 3 takes {:.2}x auto's time; auto's retries at most {}",
                    a / best,
                    three / a,
                    auto.max_of(|x| x.retries)
                ));
            }
        }
    }
    let rss16 = rows
        .iter()
        .filter(|r| r.setting == "16")
        .map(Row::rss_mib)
        .fold(0.0, f64::max);
    println!();
    for c in checks {
        println!("- {c}");
    }
    println!("- peak RSS of any transfer at 16 streams: {rss16:.1} MiB");
    Ok(())
}
