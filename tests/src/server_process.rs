//! A library server in a process of its own, for the benchmarks: the
//! benchmark program runs itself with `--serve ...`; the child prints its
//! URL and the image's SHA-256 on its first line, then answers one line
//! on stdout for each command line it reads on stdin, and ends at the end
//! of stdin. Keeping the server out of the benchmark process keeps that
//! process small: a child's peak RSS counts the memory of the process it
//! was spawned from.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};

/// The running server process.
pub struct ServerProcess {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    /// The library's base URL.
    pub url: String,
    /// The SHA-256 (hex) of the image it serves, or what it said instead.
    pub sha: String,
}

impl ServerProcess {
    /// Starts this program again with `--serve` and `args`.
    pub fn start(args: &[&str]) -> Result<ServerProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the server process")?;
        let to = child.stdin.take().context("server stdin")?;
        let mut from = BufReader::new(child.stdout.take().context("server stdout")?);
        let mut line = String::new();
        from.read_line(&mut line)?;
        let mut it = line.split_whitespace();
        let (Some(url), Some(sha)) = (it.next(), it.next()) else {
            bail!("the server process said {line:?}");
        };
        Ok(ServerProcess {
            url: url.to_string(),
            sha: sha.to_string(),
            child,
            to,
            from,
        })
    }

    /// Sends the command `what` and returns the answer line, trimmed.
    pub fn ask(&mut self, what: &str) -> Result<String> {
        writeln!(self.to, "{what}")?;
        let mut line = String::new();
        self.from.read_line(&mut line)?;
        Ok(line.trim().to_string())
    }

    /// Ends the server (closes its stdin) and waits for it.
    pub fn stop(self) -> Result<()> {
        drop(self.to);
        let mut child = self.child;
        child.wait()?;
        Ok(())
    }
}
