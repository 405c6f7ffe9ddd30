//! Soak: many pulls at once against the in-process library server while
//! a share of the part requests get a retryable fault. Every file must
//! have its image's SHA-256, and the process's open file descriptors and
//! resident memory must stay flat after warm-up.
//!
//! `library-soak [--pulls N] [--concurrency C] [--fault-rate F]`
//! (run by `cargo xtask soak`, in release mode).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use library_client::{Client, Downloader, Pull};
use library_e2e::{fast_retry, open_fds, random_bytes, rss_kib, sha256_hex};
use library_testserver::{DownloadMode, Endpoint, Fault, FaultAction, TestServer};
use tokio::task::JoinSet;

const PART: u64 = 1 << 20;
/// Image sizes: a few MiB each, not multiples of the part size.
const SIZES: [usize; 4] = [2 << 20, (3 << 20) + 12_345, (4 << 20) + 1, (5 << 20) - 7];
/// Allowed growth after warm-up.
const FD_SLACK: usize = 10;
const RSS_SLACK_KIB: u64 = 24 << 10;

struct Args {
    pulls: usize,
    concurrency: usize,
    fault_rate: f64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        pulls: 500,
        concurrency: 50,
        fault_rate: 0.05,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--pulls" => a.pulls = v.parse()?,
            "--concurrency" => a.concurrency = v.parse()?,
            "--fault-rate" => a.fault_rate = v.parse()?,
            _ => bail!("unknown argument {k}"),
        }
    }
    if a.pulls == 0 || a.concurrency == 0 || !(0.0..1.0).contains(&a.fault_rate) {
        bail!("need --pulls >= 1, --concurrency >= 1, 0 <= --fault-rate < 1");
    }
    Ok(a)
}

/// A random fault that a pull is expected to survive by retrying the part.
fn retryable_fault(rng: &mut fastrand::Rng) -> FaultAction {
    match rng.u8(0..9) {
        0 => FaultAction::Status(500),
        1 => FaultAction::Status(503),
        2 => FaultAction::DropConnection,
        3 => FaultAction::DropAfter(rng.u64(0..PART)),
        4 => FaultAction::ShortBody,
        5 => FaultAction::LongBody,
        6 => FaultAction::WrongContentRange,
        7 => FaultAction::IgnoreRange,
        _ => FaultAction::Delay(Duration::from_millis(rng.u64(10..200))),
    }
}

/// Counters shared by the pulls and the fault feeder.
#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    wrong: AtomicU64,
    part_requests: AtomicU64,
    faults: AtomicU64,
    bytes: AtomicU64,
}

struct Sample {
    label: String,
    pulls: u64,
    failed: u64,
    wrong: u64,
    part_requests: u64,
    faults: u64,
    fds: usize,
    raw_rss_kib: u64,
    rss_kib: u64,
    secs: f64,
}

/// Gives the allocator's free memory back to the system, so that the
/// resident size that follows is what is in use (glibc keeps freed memory
/// in per-thread arenas, which makes raw RSS follow the high-water mark).
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no pointer is
    // passed and none is invalidated.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn sample(label: &str, s: &Stats, started: Instant) -> Sample {
    let raw = rss_kib();
    trim();
    Sample {
        label: label.to_string(),
        pulls: s.ok.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed),
        failed: s.failed.load(Ordering::Relaxed),
        wrong: s.wrong.load(Ordering::Relaxed),
        part_requests: s.part_requests.load(Ordering::Relaxed),
        faults: s.faults.load(Ordering::Relaxed),
        fds: open_fds(),
        raw_rss_kib: raw,
        rss_kib: rss_kib(),
        secs: started.elapsed().as_secs_f64(),
    }
}

/// Every few milliseconds, counts the part requests both servers saw and
/// queues faults for about `rate` of them, each on a random part offset
/// (so that only part requests, which are retried, get them).
async fn feed_faults(
    servers: Arc<Vec<(TestServer, Endpoint)>>,
    rate: f64,
    parts: u64,
    stats: Arc<Stats>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut owed = 0.0f64;
    while !stop.load(Ordering::Relaxed) {
        for (s, endpoint) in servers.iter() {
            let reqs = s.requests();
            s.clear_requests();
            let n = reqs.iter().filter(|r| r.header("range").is_some()).count() as u64;
            stats.part_requests.fetch_add(n, Ordering::Relaxed);
            owed += n as f64 * rate;
            while owed >= 1.0 {
                owed -= 1.0;
                let offset = rng.u64(0..parts) * PART;
                s.inject(Fault::new(*endpoint, retryable_fault(&mut rng)).range_start(offset));
                stats.faults.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run_pulls(
    range: std::ops::Range<usize>,
    concurrency: usize,
    clients: &[Client],
    images: &Arc<Vec<(String, usize)>>,
    dir: &std::path::Path,
    stats: &Arc<Stats>,
) {
    let mut set = JoinSet::new();
    for i in range {
        while set.len() >= concurrency {
            set.join_next().await;
        }
        let c = clients[i % clients.len()].clone();
        let (images, stats) = (images.clone(), stats.clone());
        let dest = dir.join(format!("pull-{i}.sif"));
        set.spawn(async move {
            let which = (i / 2) % images.len();
            let (want, size) = images[which].clone();
            let pull = Pull::new(format!("soak/images/img{which}"))
                .arch("amd64")
                .downloader(Downloader {
                    concurrency: library_client::Concurrency::Fixed(3),
                    part_size: Some(PART),
                });
            match c.download_image(&dest, &pull).await {
                Ok(got) => {
                    let bytes = tokio::fs::read(&dest).await.unwrap_or_default();
                    let good = bytes.len() == size && sha256_hex(&bytes) == want && got.verified;
                    if good {
                        stats.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("pull {i}: wrong file ({} bytes)", bytes.len());
                        stats.wrong.fetch_add(1, Ordering::Relaxed);
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    let _ = tokio::fs::remove_file(&dest).await;
                }
                Err(e) => {
                    eprintln!("pull {i}: {e}");
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = args()?;
    let images: Vec<Vec<u8>> = SIZES
        .iter()
        .enumerate()
        .map(|(i, n)| random_bytes(*n, 1000 + i as u64))
        .collect();
    let mut servers = Vec::new();
    for (mode, endpoint) in [
        (DownloadMode::RedirectOtherListener, Endpoint::Blob),
        (DownloadMode::Stream, Endpoint::ImageFile),
    ] {
        let s = TestServer::builder().download(mode).start().await?;
        for (i, img) in images.iter().enumerate() {
            s.add_image(
                "soak",
                "images",
                &format!("img{i}"),
                &["latest"],
                "amd64",
                img.clone(),
            );
        }
        servers.push((s, endpoint));
    }
    let clients: Vec<Client> = servers
        .iter()
        .map(|(s, _)| {
            Client::builder()
                .base_url(s.url().as_str())
                .retry(fast_retry(5))
                .read_timeout(Duration::from_secs(10))
                .build()
        })
        .collect::<std::result::Result<_, _>>()?;
    let expected: Arc<Vec<(String, usize)>> =
        Arc::new(images.iter().map(|b| (sha256_hex(b), b.len())).collect());
    drop(images);
    let dir = tempfile::tempdir()?;
    let stats = Arc::new(Stats::default());
    let servers = Arc::new(servers);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let largest_parts = (SIZES.iter().max().copied().unwrap_or(0) as u64).div_ceil(PART);
    let feeder = tokio::spawn(feed_faults(
        servers.clone(),
        a.fault_rate,
        largest_parts,
        stats.clone(),
        stop.clone(),
    ));

    let started = Instant::now();
    let mut samples = vec![sample("start", &stats, started)];
    // Warm-up: until every buffer pool, connection pool and allocator
    // arena has seen the full concurrency a few times.
    let warm = (a.concurrency * 4).max(a.pulls / 5).min(a.pulls);
    run_pulls(
        0..warm,
        a.concurrency,
        &clients,
        &expected,
        dir.path(),
        &stats,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    samples.push(sample("after warm-up", &stats, started));
    let step = ((a.pulls - warm) / 4).max(1);
    let mut at = warm;
    while at < a.pulls {
        let next = (at + step).min(a.pulls);
        run_pulls(
            at..next,
            a.concurrency,
            &clients,
            &expected,
            dir.path(),
            &stats,
        )
        .await;
        at = next;
        tokio::time::sleep(Duration::from_millis(200)).await;
        samples.push(sample(&format!("{at} pulls"), &stats, started));
    }
    stop.store(true, Ordering::Relaxed);
    feeder.await?;

    println!(
        "{:<14} {:>6} {:>6} {:>6} {:>8} {:>7} {:>5} {:>9} {:>12} {:>8}",
        "phase",
        "pulls",
        "failed",
        "wrong",
        "parts",
        "faults",
        "fds",
        "RSS MiB",
        "trimmed MiB",
        "secs"
    );
    for s in &samples {
        println!(
            "{:<14} {:>6} {:>6} {:>6} {:>8} {:>7} {:>5} {:>9.1} {:>12.1} {:>8.1}",
            s.label,
            s.pulls,
            s.failed,
            s.wrong,
            s.part_requests,
            s.faults,
            s.fds,
            s.raw_rss_kib as f64 / 1024.0,
            s.rss_kib as f64 / 1024.0,
            s.secs
        );
    }
    let end = samples.last().unwrap();
    let warm_s = &samples[1];
    let moved = stats.bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
    println!(
        "{} pulls, {:.0} MiB, {:.1} s ({:.0} MiB/s); faults on {:.1}% of {} part requests",
        end.pulls,
        moved,
        end.secs,
        moved / end.secs.max(0.001),
        100.0 * end.faults as f64 / end.part_requests.max(1) as f64,
        end.part_requests
    );
    let mut problems = Vec::new();
    if end.failed > 0 {
        problems.push(format!(
            "{} pulls failed ({} wrong files)",
            end.failed, end.wrong
        ));
    }
    if end.pulls != a.pulls as u64 {
        problems.push(format!("{} of {} pulls ran", end.pulls, a.pulls));
    }
    if end.fds > warm_s.fds + FD_SLACK {
        problems.push(format!(
            "open file descriptors grew from {} to {} after warm-up",
            warm_s.fds, end.fds
        ));
    }
    let rss_limit = warm_s.rss_kib + (warm_s.rss_kib / 10).max(RSS_SLACK_KIB);
    if end.rss_kib > rss_limit {
        problems.push(format!(
            "RSS (trimmed) grew from {} MiB to {} MiB after warm-up",
            warm_s.rss_kib / 1024,
            end.rss_kib / 1024
        ));
    }
    if dir.path().read_dir()?.next().is_some() {
        problems.push("files left in the download directory".into());
    }
    if problems.is_empty() {
        println!("soak: ok");
        Ok(())
    } else {
        bail!("soak failed: {}", problems.join("; "))
    }
}
