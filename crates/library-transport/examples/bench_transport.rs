//! Benchmark driver for `cargo xtask bench transport` (one operation per
//! process, so that the peak RSS is the operation's own).
//!
//! ```text
//! bench_transport gen PATH SIZE_MIB             write SIZE_MIB of random bytes, print the sha256
//! bench_transport sha256 PATH                   print the sha256 of a file
//! bench_transport download URL SIZE CONC PART_MIB OUT SHA256
//!                                               ranged download, verified; prints "secs VmHWM_KiB"
//! bench_transport checksums PATH                MD5 + SHA-256 in one read; prints "secs md5 sha256"
//! bench_transport multipart PATH SIZE_MIB CONC PART_MIB LATENCY_MS
//!                                               multipart upload to an in-process server that waits
//!                                               LATENCY_MS per request; prints "secs"
//! ```

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use library_transport::{
    checksums, hex, sha256_file, Destination, HttpClient, MultipartUpload, NoProgress, PartTarget,
    RangedDownload,
};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_stack_size(256 << 10)
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| {
        args.get(i)
            .cloned()
            .unwrap_or_else(|| panic!("missing argument {i}"))
    };
    match args.first().map(String::as_str) {
        Some("gen") => {
            let mib: usize = a(2).parse().unwrap();
            let mut f = std::io::BufWriter::new(std::fs::File::create(a(1)).unwrap());
            let mut rng = fastrand::Rng::with_seed(0x5eed);
            let mut buf = vec![0u8; 1 << 20];
            for _ in 0..mib {
                for c in buf.chunks_mut(8) {
                    c.copy_from_slice(&rng.u64(..).to_le_bytes());
                }
                f.write_all(&buf).unwrap();
            }
            f.flush().unwrap();
            drop(f);
            println!("{}", hex(&sha256_file(a(1).as_ref()).unwrap()));
        }
        Some("sha256") => println!("{}", hex(&sha256_file(a(1).as_ref()).unwrap())),
        Some("checksums") => {
            let t = Instant::now();
            let c = checksums(a(1).as_ref()).unwrap();
            println!(
                "{:.4} {} {}",
                t.elapsed().as_secs_f64(),
                c.md5_hex(),
                c.sha256_hex()
            );
        }
        Some("download") => {
            let url = url::Url::parse(&a(1)).unwrap();
            let size: u64 = a(2).parse().unwrap();
            let conc: usize = a(3).parse().unwrap();
            let part: u64 = a(4).parse::<u64>().unwrap() << 20;
            let out = a(5);
            let sha = a(6);
            let t = Instant::now();
            runtime().block_on(async {
                let client = HttpClient::builder().no_proxy_from_env().build().unwrap();
                let job = RangedDownload::new(url, size)
                    .concurrency(conc)
                    .part_size(part);
                let dest = Destination::new(&out).expect_sha256_hex(&sha).unwrap();
                client
                    .download_ranged(&job, dest, Arc::new(NoProgress))
                    .await
                    .unwrap();
            });
            println!("{:.4} {}", t.elapsed().as_secs_f64(), vm_hwm_kib());
        }
        Some("multipart") => {
            let path = a(1);
            let size: u64 = a(2).parse::<u64>().unwrap() << 20;
            let conc: usize = a(3).parse().unwrap();
            let part: u64 = a(4).parse::<u64>().unwrap() << 20;
            let latency = Duration::from_millis(a(5).parse().unwrap());
            runtime().block_on(async move {
                let addr = upload_sink(latency).await;
                let client = HttpClient::builder().no_proxy_from_env().build().unwrap();
                let job = MultipartUpload::new(&path, size, part).concurrency(conc);
                let base = url::Url::parse(&format!("http://{addr}/part")).unwrap();
                let t = Instant::now();
                let parts = client
                    .upload_parts(&job, Arc::new(NoProgress), move |p| {
                        let mut u = base.clone();
                        u.set_query(Some(&format!("n={}", p.number)));
                        std::future::ready(Ok(PartTarget::new(u)))
                    })
                    .await
                    .unwrap();
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(parts.parts.len() as u64, job.total_parts());
                println!("{secs:.4}");
            });
        }
        _ => {
            eprintln!("usage: see the source of examples/bench_transport.rs");
            std::process::exit(2);
        }
    }
}

/// A server that reads and discards each request body, waits `latency`,
/// and answers 200 with an ETag.
async fn upload_sink(latency: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let mut body = req.into_body();
                        let mut n = 0usize;
                        while let Some(Ok(f)) = body.frame().await {
                            if let Ok(d) = f.into_data() {
                                n += d.len();
                            }
                        }
                        tokio::time::sleep(latency).await;
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .header("etag", format!("\"{n}\""))
                                .body(http_body_util::Empty::<bytes::Bytes>::new())
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    addr
}
