//! `scs-library`: the command line tool of the Container Library client.
//!
//! Pulls, pushes, searches and manages `library://` SIF images through
//! [`library_client`]. Output is a table by default and JSON with `--json`;
//! failures are one line on stderr and a distinct exit code (see
//! [`errors`]).

mod cache_cmd;
mod cli;
mod commands;
mod config;
mod envvars;
mod errors;
mod output;
mod progress;
mod refs;
mod remote_status;
mod remotes;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::errors::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let code = match run(cli) {
        Ok(()) => errors::OK,
        Err(e) => {
            eprintln!("{e}");
            e.code
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match &cli.command {
        // These two need no network and no runtime.
        Command::Ref(a) => return commands::reference(g, a),
        Command::Completions { shell } => return commands::completions(*shell),
        Command::Cache(a) => return cache_cmd::run(g, a),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::other(format!("starting the runtime: {e}"), ""))?;
    runtime.block_on(async {
        let work = async {
            match &cli.command {
                Command::Pull(a) => commands::pull(g, a).await,
                Command::Push(a) => commands::push(g, a).await,
                Command::Search(a) => commands::search(g, a).await,
                Command::Delete(a) => commands::delete(g, a).await,
                Command::Tags(a) => commands::tags(g, a).await,
                Command::Image(a) => commands::image(g, a).await,
                Command::Version => commands::version(g).await,
                Command::Remote { command } => remotes::command(g, command).await,
                Command::Ref(_) | Command::Completions { .. } | Command::Cache(_) => Ok(()),
            }
        };
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(CliError::new(
                errors::INTERRUPTED,
                "interrupted",
                "run the command again (pull --resume continues an interrupted pull)",
            )),
        }
    })
}

/// `-v`: debug logs of the client crates; `-vv`: trace logs of them and
/// debug logs of everything else; `RUST_LOG` replaces both. Logs go to
/// stderr.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.trim().is_empty() => EnvFilter::new(f),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => "warn,scs_library=debug,library_client=debug,library_transport=debug",
            _ => "info,scs_library=trace,library_client=trace,library_transport=trace",
        }),
    };
    if verbose == 0 && std::env::var_os("RUST_LOG").is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
