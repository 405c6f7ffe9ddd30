//! `library-testserver`: the test server as a process of its own, for
//! demos and for trying a client by hand.
//!
//! ```text
//! library-testserver --dir <store dir> [--port P] [--api-version V] [--token T]
//!                    [--download stream|redirect|redirect-other] [--workers N]
//! ```
//!
//! Listens on two ports of 127.0.0.1 (free ones, or `--port` for the
//! library), keeps image bytes in files under the store directory, prints
//! `LIBRARY_URL=http://127.0.0.1:PORT/` on stdout once it accepts
//! connections, and serves until it is killed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use library_testserver::{DownloadMode, Storage, TestServer};

const USAGE: &str = "\
usage: library-testserver --dir <store dir> [--port P] [--api-version V] [--token T]
                          [--download stream|redirect|redirect-other] [--workers N]

  --dir DIR          keep image bytes in files under DIR (created when missing)
  --port P           the library's port on 127.0.0.1 (default: a free port;
                     downloads and uploads always get a free port)
  --api-version V    the apiVersion announced (default 2.0.0-alpha.2: v2
                     uploads and tags per architecture; 1.0.0: v1 only)
  --token T          require 'Authorization: Bearer T' (default: no token)
  --download MODE    how images are served: stream (200 from the library),
                     redirect (303 to the same port), redirect-other (303 to
                     a second port; the default)
  --workers N        serve at most N library requests at once, like a
                     server with a pool of N worker threads (default: no
                     limit); a request holds its worker until its answer is
                     sent, the others wait

Prints LIBRARY_URL=http://127.0.0.1:PORT/ on stdout when ready and serves
until killed.";

struct Args {
    dir: PathBuf,
    port: u16,
    api_version: Option<String>,
    token: Option<String>,
    download: DownloadMode,
    workers: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut dir = None;
    let mut port = 0u16;
    let mut api_version = None;
    let mut token = None;
    let mut download = DownloadMode::default();
    let mut workers = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--port" => {
                let v = value()?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?} is not a port number"))?
            }
            "--api-version" => api_version = Some(value()?),
            "--token" => token = Some(value()?),
            "--download" => {
                download = match value()?.as_str() {
                    "stream" => DownloadMode::Stream,
                    "redirect" => DownloadMode::RedirectSameListener,
                    "redirect-other" => DownloadMode::RedirectOtherListener,
                    other => return Err(format!("unknown --download mode {other:?}")),
                }
            }
            "--workers" => {
                let v = value()?;
                workers = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| format!("--workers {v:?} is not a number of at least 1"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    Ok(Args {
        dir,
        port,
        api_version,
        token,
        download,
        workers,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("library-testserver: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("library-testserver: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = TestServer::builder()
        .port(args.port)
        .storage(Storage::Dir(args.dir.clone()))
        .download(args.download);
    if let Some(v) = args.api_version {
        builder = builder.api_version(v);
    }
    if let Some(t) = args.token {
        builder = builder.token(t);
    }
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let server = match runtime.block_on(builder.start()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("library-testserver: starting the server: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "library-testserver: library {} (downloads and uploads on {}), store {}",
        server.url(),
        server.blob_url(),
        args.dir.display()
    );
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "LIBRARY_URL={}", server.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    // The server runs on its own threads; this one only keeps it alive.
    loop {
        std::thread::park();
    }
}
