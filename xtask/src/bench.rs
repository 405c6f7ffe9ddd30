//! `cargo xtask bench`: every benchmark prints a table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub fn run(root: &Path, which: &str) -> Result<()> {
    match which {
        "ref" => bench_ref(root),
        "all" => {
            bench_ref(root)?;
            bench_transport(root, None)
        }
        "transport" => bench_transport(root, None),
        "cache" => bench_cache(root),
        "wan" => bench_wan(root),
        // `transport:SIZE_MIB` shrinks the download file (default 1024 MiB).
        t if t.starts_with("transport:") => {
            let mib = t["transport:".len()..]
                .parse()
                .with_context(|| format!("bad size in {t:?}: expected transport:SIZE_MIB"))?;
            bench_transport(root, Some(mib))
        }
        other => {
            bail!("unknown benchmark {other:?}: expected ref, transport[:SIZE_MIB], cache, wan or all")
        }
    }
}

/// ns per call of the `library-ref` validators (criterion).
fn bench_ref(root: &Path) -> Result<()> {
    crate::run(
        root,
        Command::new("cargo").args(["bench", "-p", "library-ref", "--bench", "validators"]),
    )
}

/// The image cache: 1 and 20 concurrent pulls of one 256 MiB image
/// (`CACHE_BENCH_SIZE_MIB`), without the cache, cold and warm, by the
/// release `scs-library` (see `tests/src/bin/bench_cache.rs`).
fn bench_cache(root: &Path) -> Result<()> {
    let scs = release_scs(root)?;
    let size = std::env::var("CACHE_BENCH_SIZE_MIB").unwrap_or_else(|_| "256".into());
    crate::run(
        root,
        crate::cargo()
            .args(bench_bin("library-bench-cache"))
            .arg("--scs")
            .arg(&scs)
            .args(["--size-mib", &size]),
    )
}

/// Pulls and multipart pushes at fixed and automatic streams over links
/// like users have (see `tests/src/bin/bench_wan.rs`). `WAN_BENCH_ARGS`
/// passes more arguments (`--runs 1 --links per-conn,rtt`, say).
fn bench_wan(root: &Path) -> Result<()> {
    let scs = release_scs(root)?;
    let extra = std::env::var("WAN_BENCH_ARGS").unwrap_or_default();
    crate::run(
        root,
        crate::cargo()
            .args(bench_bin("library-bench-wan"))
            .arg("--scs")
            .arg(&scs)
            .args(extra.split_whitespace()),
    )
}

/// `cargo run --release` of a benchmark program of the e2e crate.
fn bench_bin(name: &str) -> [&str; 7] {
    ["run", "--release", "-p", "library-e2e", "--bin", name, "--"]
}

/// Builds the release `scs-library` and returns its path.
fn release_scs(root: &Path) -> Result<PathBuf> {
    crate::run(
        root,
        crate::cargo().args([
            "build",
            "--release",
            "-p",
            "library-cli",
            "--bin",
            "scs-library",
        ]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/scs-library"))
}

/// Stops the nginx started for the benchmark, by its recorded PID.
struct Nginx {
    root: PathBuf,
    state: PathBuf,
    env: BTreeMap<String, String>,
}

impl Nginx {
    fn start(root: &Path, state: &Path) -> Result<Nginx> {
        std::fs::create_dir_all(state)?;
        let status = Command::new("bash")
            .arg(root.join("scripts/peers/start-nginx.sh"))
            .arg(state)
            .stdout(Stdio::null())
            .status()
            .context("running scripts/peers/start-nginx.sh")?;
        if !status.success() {
            bail!("start-nginx.sh failed: {status}");
        }
        let text = std::fs::read_to_string(state.join("nginx.env"))?;
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        Ok(Nginx {
            root: root.to_path_buf(),
            state: state.to_path_buf(),
            env,
        })
    }

    fn var(&self, k: &str) -> Result<&str> {
        self.env
            .get(k)
            .map(String::as_str)
            .with_context(|| format!("{k} missing from nginx.env"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.root.join("scripts/peers/stop.sh"))
            .arg(&self.state)
            .arg("nginx")
            .status();
    }
}

/// CPU seconds (user + system) used so far by waited-for children.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Runs a command, returns (wall seconds, stdout); fails if it fails.
fn timed(cmd: &mut Command) -> Result<(f64, String)> {
    let (wall, _, out) = timed_cpu(cmd)?;
    Ok((wall, out))
}

/// Runs a command, returns (wall seconds, CPU seconds, stdout); fails if
/// it fails.
fn timed_cpu(cmd: &mut Command) -> Result<(f64, f64, String)> {
    let shown = format!("{cmd:?}");
    let cpu0 = children_cpu();
    let t = Instant::now();
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {shown}"))?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu0;
    if !out.status.success() {
        bail!("{shown} failed: {}", out.status);
    }
    Ok((
        secs,
        cpu,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// Per-run measurements of one benchmark case.
#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    rss_mib: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Ranged download vs curl, checksums vs openssl, multipart upload
/// concurrency 1 vs 4. Sizes: `size_mib` (or `TRANSPORT_BENCH_SIZE_MIB`,
/// default 1024); runs: `TRANSPORT_BENCH_RUNS` (default 5).
fn bench_transport(root: &Path, size_mib: Option<u64>) -> Result<()> {
    let size_mib = match size_mib {
        Some(s) => s,
        None => std::env::var("TRANSPORT_BENCH_SIZE_MIB")
            .ok()
            .map(|s| s.parse())
            .transpose()
            .context("TRANSPORT_BENCH_SIZE_MIB")?
            .unwrap_or(1024),
    };
    let runs: usize = std::env::var("TRANSPORT_BENCH_RUNS")
        .ok()
        .map(|s| s.parse())
        .transpose()
        .context("TRANSPORT_BENCH_RUNS")?
        .unwrap_or(5);
    for tool in ["curl", "openssl"] {
        if !have(tool) {
            bail!("{tool} is needed by the transport benchmark (apt-get install {tool})");
        }
    }
    crate::run(
        root,
        Command::new("cargo").args([
            "build",
            "--release",
            "-p",
            "library-transport",
            "--example",
            "bench_transport",
        ]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/examples/bench_transport");
    let work = root.join("target/bench-transport");
    let out_dir = work.join("out");
    std::fs::create_dir_all(&out_dir)?;
    let nginx = Nginx::start(root, &work.join("peers"))?;
    let url = nginx.var("NGINX_URL")?.to_string();
    let www = PathBuf::from(nginx.var("NGINX_ROOT")?);

    let size = size_mib << 20;
    let src = www.join("bench.bin");
    eprintln!(
        "bench: writing {size_mib} MiB of random data to {}",
        src.display()
    );
    let (_, sha) = timed(
        Command::new(&bin)
            .arg("gen")
            .arg(&src)
            .arg(size_mib.to_string()),
    )?;
    let file_url = format!("{url}/bench.bin");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    // Every downloaded file is compared with the original; the time of
    // that SHA-256 (of a file in the page cache) is reported too, as the
    // cost that verification adds to a download.
    let mut hash_only: Vec<(f64, f64)> = Vec::new();
    let mut check = |p: &Path| -> Result<()> {
        let (t, cpu, got) = timed_cpu(Command::new(&bin).arg("sha256").arg(p))?;
        if got != sha {
            bail!("{}: sha256 {got}, expected {sha}", p.display());
        }
        hash_only.push((t, cpu));
        std::fs::remove_file(p)?;
        Ok(())
    };
    let concs = [1usize, 3, 4, 8];
    let mut curl: Vec<(f64, f64)> = Vec::new();
    let mut ours: BTreeMap<usize, Samples> = BTreeMap::new();
    for run in 0..runs {
        eprintln!("bench: download run {}/{runs}", run + 1);
        let out = out_dir.join("curl.bin");
        let (t, cpu, _) = timed_cpu(
            Command::new("curl")
                .args(["-s", "-f", "-o"])
                .arg(&out)
                .arg(&file_url),
        )?;
        check(&out)?;
        curl.push((t, cpu));
        for &c in &concs {
            let out = out_dir.join(format!("ours-{c}.bin"));
            let (t, cpu, line) = timed_cpu(
                Command::new(&bin)
                    .arg("download")
                    .arg(&file_url)
                    .arg(size.to_string())
                    .arg(c.to_string())
                    .arg("5")
                    .arg(&out)
                    .arg(&sha),
            )?;
            let rss_kib: f64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("bad output {line:?}"))?;
            check(&out)?;
            let e = ours.entry(c).or_default();
            e.wall.push(t);
            e.cpu.push(cpu);
            e.rss_mib.push(rss_kib / 1024.0);
        }
    }

    let (mut sums, mut md5s, mut shas) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("bench: checksum run {}/{runs}", run + 1);
        let (t, line) = timed(Command::new(&bin).arg("checksums").arg(&src))?;
        if line.split_whitespace().nth(2) != Some(sha.as_str()) {
            bail!("checksums gave {line:?}, expected sha256 {sha}");
        }
        sums.push(t);
        let (t, _) = timed(Command::new("openssl").args(["dgst", "-md5"]).arg(&src))?;
        md5s.push(t);
        let (t, _) = timed(Command::new("openssl").args(["dgst", "-sha256"]).arg(&src))?;
        shas.push(t);
    }

    let up_mib = size_mib.min(256);
    let mut ups: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for run in 0..runs {
        eprintln!("bench: multipart run {}/{runs}", run + 1);
        for c in [1usize, 4] {
            let (_, line) = timed(
                Command::new(&bin)
                    .arg("multipart")
                    .arg(&src)
                    .arg(up_mib.to_string())
                    .arg(c.to_string())
                    .arg("5")
                    .arg("20"),
            )?;
            let t: f64 = line
                .parse()
                .with_context(|| format!("bad output {line:?}"))?;
            ups.entry(c).or_default().push(t);
        }
    }
    let _ = std::fs::remove_file(&src);
    drop(nginx);

    let col = |v: &[(f64, f64)], i: usize| -> Vec<f64> {
        v.iter().map(|p| if i == 0 { p.0 } else { p.1 }).collect()
    };
    let curl_m = median(&col(&curl, 0));
    println!();
    println!(
        "library-transport: {size_mib} MiB random file, local nginx, medians of {runs} runs (load average at start: {})",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!();
    println!("| case | median time | ratio | CPU (user+sys) | peak RSS |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| curl -s -o (one stream) | {curl_m:.2} s | 1.00x curl | {:.2} s | - |",
        median(&col(&curl, 1))
    );
    for (c, Samples { wall, cpu, rss_mib }) in &ours {
        let m = median(wall);
        println!(
            "| ranged download, concurrency {c}, 5 MiB parts, SHA-256 verified, fsync | {m:.2} s | {:.2}x curl | {:.2} s | {:.1} MiB |",
            m / curl_m,
            median(cpu),
            median(rss_mib)
        );
    }
    let h = median(&col(&hash_only, 0));
    println!(
        "| SHA-256 alone of the downloaded file (page cache) | {h:.2} s | {:.2}x curl | {:.2} s | - |",
        h / curl_m,
        median(&col(&hash_only, 1))
    );
    let (s, m5, s2) = (median(&sums), median(&md5s), median(&shas));
    let slower = m5.max(s2);
    println!("| openssl dgst -md5 | {m5:.2} s | - | - | - |");
    println!("| openssl dgst -sha256 | {s2:.2} s | - | - | - |");
    println!(
        "| checksums (MD5 + SHA-256, one read) | {s:.2} s | {:.2}x slower openssl | - | - |",
        s / slower
    );
    let (u1, u4) = (median(&ups[&1]), median(&ups[&4]));
    println!("| multipart upload {up_mib} MiB, 5 MiB parts, +20 ms/request, concurrency 1 | {u1:.2} s | - | - | - |");
    println!(
        "| multipart upload {up_mib} MiB, 5 MiB parts, +20 ms/request, concurrency 4 | {u4:.2} s | {:.2}x faster | - | - |",
        u1 / u4
    );
    println!();
    println!("Goals: ranged download at concurrency 3 <= 0.75x curl with RSS < 12 MiB; checksums <= 1.15x the slower openssl; multipart >= 3x faster at 4.");
    Ok(())
}
