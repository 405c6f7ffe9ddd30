//! Which library, and which token: the explicit settings first, then the
//! remotes of Apptainer and SingularityCE (`remote.yaml` and service
//! discovery); and the `remote list` / `remote status` commands.
//!
//! Precedence of the library, first match wins:
//! 1. `--url`, `LIBRARY_URL`, `APPTAINER_LIBRARY`, `SINGULARITY_LIBRARY`;
//! 2. the host of a `library://host/...` reference;
//! 3. `--remote NAME`, then the `Active` remote (its discovered library);
//! 4. the default library.
//!
//! The token: `--token-file`, `--token`, `LIBRARY_TOKEN`,
//! `LIBRARY_TOKEN_FILE`, else the remote's `Token`, sent only when the
//! library chosen has the same origin (scheme, host, port) as that remote's
//! discovered library.

use clap::Subcommand;
use library_client::remote::{self, ConfigPaths, Remote, Remotes, Services};
use library_client::{Client, ErrorKind, HttpClient, RetryConfig, DEFAULT_BASE_URL};
use library_ref::Ref;
use url::Url;

use crate::cli::Global;
use crate::config::{self, ENV_URL};
use crate::errors::{self, CliError};
use crate::{envvars, refs};

/// `remote` subcommands.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// List the remotes of remote.yaml (user and system files merged); tokens are never shown
    List,
    /// Discover a remote's services and check them, the user and the token (default: the active remote)
    Status {
        /// The remote [default: the Active one]
        name: Option<String>,
    },
}

const REF_HOST: &str = "the reference's host";

/// The library chosen and where it came from.
struct Choice {
    url: String,
    /// The HTTP client discovery used, if any, to be used again.
    http: Option<HttpClient>,
    /// The rung taken, as logs and hints name it.
    rung: String,
    /// The remote whose token may be sent, with its discovered library.
    remote: Option<(Remote, Url)>,
}

/// The first explicit library URL: its value and the setting that gave it.
fn explicit_url(g: &Global) -> Option<(String, String)> {
    if let Some(u) = g.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        return Some((u.to_string(), "--url".into()));
    }
    for name in [ENV_URL, "APPTAINER_LIBRARY", "SINGULARITY_LIBRARY"] {
        if let Ok(v) = std::env::var(name) {
            if !v.trim().is_empty() {
                return Some((v.trim().to_string(), name.into()));
            }
        }
    }
    None
}

/// The merged remotes; their warnings shown on stderr (unless `--quiet`).
pub fn load(g: &Global) -> Result<Remotes, CliError> {
    let remotes = Remotes::load(&ConfigPaths::from_env()).map_err(|e| {
        CliError::usage(
            errors::chain(&e),
            "fix the file (apptainer/singularity read the same one), or give --url",
        )
    })?;
    if !g.quiet {
        for w in &remotes.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(remotes)
}

/// The remote `--remote` names, else the active one.
fn chosen_remote<'a>(g: &Global, remotes: &'a Remotes) -> Result<Option<&'a Remote>, CliError> {
    let hint = "name one of 'scs-library remote list', or fix Active in remote.yaml";
    match g.remote.as_deref() {
        Some(n) => remotes
            .get(n)
            .map(Some)
            .map_err(|e| CliError::usage(errors::chain(&e), hint)),
        None => remotes
            .active_remote()
            .map_err(|e| CliError::usage(errors::chain(&e), hint)),
    }
}

/// A failed discovery as the tool reports it: exit 2 for a remote without
/// library, 5 for an unreachable or unusable one.
pub fn discovery_error(r: &Remote, e: &library_client::Error) -> CliError {
    let what = format!("discovering the library of remote {:?} ({})", r.name, r.uri);
    match e.kind() {
        ErrorKind::Config => CliError::usage(
            format!("{what}: {}", errors::chain(e)),
            "add a remote that has one (apptainer remote add NAME HOST), choose it with --remote, or give --url",
        ),
        _ => CliError::new(
            errors::NETWORK,
            format!("{what}: {}", errors::chain(e)),
            "check the remote's URI ('scs-library remote list') and the network, or give --url",
        ),
    }
}

/// The HTTP client of the settings (proxy, CA file, timeouts), built once
/// per process and shared by discovery and the library's client.
fn http_client(g: &Global) -> Result<(HttpClient, RetryConfig), CliError> {
    static HTTP: std::sync::OnceLock<HttpClient> = std::sync::OnceLock::new();
    let retry = RetryConfig::default().with_max_retries(config::retries(g)?);
    if let Some(h) = HTTP.get() {
        return Ok((h.clone(), retry));
    }
    let c = config::client_to(g, DEFAULT_BASE_URL, String::new(), "--proxy")?;
    Ok((HTTP.get_or_init(|| c.http().clone()).clone(), retry))
}

async fn discover(g: &Global, r: &Remote) -> Result<Services, CliError> {
    let (http, retry) = http_client(g)?;
    remote::discover(&http, &retry, r)
        .await
        .map_err(|e| discovery_error(r, &e))
}

async fn choose(g: &Global, text: &str, r: Option<&Ref>) -> Result<Choice, CliError> {
    let host = r.filter(|r| !r.host.is_empty());
    if let Some((url, source)) = explicit_url(g) {
        if let (Some(r), Ok(base)) = (host, Url::parse(&url)) {
            refs::check_host(text, r, &base)?;
        }
        return Ok(Choice {
            url,
            http: None,
            rung: source,
            remote: None,
        });
    }
    if let Some(r) = host {
        let scheme = if envvars::no_https()? {
            "http"
        } else {
            "https"
        };
        return Ok(Choice {
            url: format!("{scheme}://{}", r.host),
            http: None,
            rung: REF_HOST.into(),
            remote: None,
        });
    }
    let remotes = load(g)?;
    match chosen_remote(g, &remotes)? {
        Some(rem) => {
            let services = discover(g, rem).await?;
            let rung = if g.remote.is_some() {
                format!("--remote {}", rem.name)
            } else {
                format!("the Active remote {:?}", rem.name)
            };
            Ok(Choice {
                url: services.library.to_string(),
                http: Some(http_client(g)?.0),
                rung,
                remote: Some((rem.clone(), services.library)),
            })
        }
        None => Ok(Choice {
            url: DEFAULT_BASE_URL.into(),
            http: None,
            rung: "the default library".into(),
            remote: None,
        }),
    }
}

/// The token of `--remote`/the Active remote when `url` is its library's
/// origin; a failing discovery then just means no token.
async fn remote_token_for(g: &Global, url: &str) -> Result<Option<(String, String)>, CliError> {
    let Ok(url) = Url::parse(url) else {
        return Ok(None);
    };
    // An explicit library does not depend on remote.yaml: a file that
    // cannot be read just means no remote token.
    let remotes = match Remotes::load(&ConfigPaths::from_env()) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "no remote token: remote.yaml unreadable");
            return Ok(None);
        }
    };
    let Ok(Some(rem)) = chosen_remote(g, &remotes) else {
        return Ok(None);
    };
    let Some(token) = rem.token.clone() else {
        return Ok(None);
    };
    // Asked once, without retries: this only decides whether the token
    // may go along, and must not hold up a command given its URL.
    let (http, _) = http_client(g)?;
    let retry = RetryConfig::default().with_max_retries(0);
    match remote::discover(&http, &retry, rem).await {
        Ok(s) if remote::same_origin(&s.library, &url) => {
            Ok(Some((token, format!("remote {:?}", rem.name))))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::debug!(remote = %rem.name, error = %e, "no remote token: discovery failed");
            Ok(None)
        }
    }
}

/// A client of the library the settings choose for reference `text`
/// (parsed as `r`, when the command takes one), with the token that may go
/// there.
pub async fn client(g: &Global, text: &str, r: Option<&Ref>) -> Result<Client, CliError> {
    let choice = choose(g, text, r).await?;
    let (explicit, source) = config::token(g)?;
    // A token of the environment is meant for the configured library, not
    // for whatever host a reference names; one given on this command line is.
    let env_token = matches!(
        source,
        config::TokenSource::Env | config::TokenSource::FileEnv(_)
    );
    let withheld = env_token && choice.rung == REF_HOST;
    let use_explicit = !explicit.is_empty() && !withheld;
    let (token, token_source) = if use_explicit {
        (explicit, format!("{source:?}"))
    } else if let Some((rem, lib)) = &choice.remote {
        let same = Url::parse(&choice.url).is_ok_and(|u| remote::same_origin(&u, lib));
        match (&rem.token, same) {
            (Some(t), true) => (t.clone(), format!("remote {:?}", rem.name)),
            _ => (String::new(), "none".into()),
        }
    } else {
        match remote_token_for(g, &choice.url).await? {
            Some((t, s)) => (t, s),
            None => (String::new(), "none".into()),
        }
    };
    tracing::info!(url = %choice.url, rung = %choice.rung, token_source = %token_source, has_token = !token.is_empty(), "library chosen");
    let hint = match choice.rung.as_str() {
        "--url" | "LIBRARY_URL" | "APPTAINER_LIBRARY" | "SINGULARITY_LIBRARY" => {
            choice.rung.clone()
        }
        other => format!("--url ({other} gave it)"),
    };
    let http = choice.http.clone();
    config::client_with(g, &choice.url, token, &hint, http)
}

/// `remote list` and `remote status`.
pub async fn command(g: &Global, c: &RemoteCommand) -> Result<(), CliError> {
    match c {
        RemoteCommand::List => list(g),
        RemoteCommand::Status { name } => crate::remote_status::status(g, name.as_deref()).await,
    }
}

fn list(g: &Global) -> Result<(), CliError> {
    let remotes = load(g)?;
    let active = remotes.active.as_deref();
    if g.json {
        let rows: Vec<_> = remotes
            .remotes
            .values()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "uri": r.uri,
                    "active": Some(r.name.as_str()) == active,
                    "system": r.system,
                    "exclusive": r.exclusive,
                    "insecure": r.insecure,
                    "token": r.token.is_some(),
                })
            })
            .collect();
        crate::output::json(&serde_json::json!({
            "active": active,
            "user_file": remotes.user_file,
            "system_file": remotes.system_file,
            "remotes": rows,
        }));
        return Ok(());
    }
    if remotes.remotes.is_empty() {
        crate::output::out(
            "No remotes (no remote.yaml found): the default library is used (https://library.sylabs.io).",
        );
        return Ok(());
    }
    let mark = |b: bool| if b { "yes" } else { "" }.to_string();
    let mut t = crate::output::Table::new([
        "NAME",
        "URI",
        "ACTIVE",
        "SYSTEM",
        "EXCLUSIVE",
        "INSECURE",
        "TOKEN",
    ]);
    for r in remotes.remotes.values() {
        t.row(vec![
            r.name.clone(),
            r.uri.clone(),
            mark(Some(r.name.as_str()) == active),
            mark(r.system),
            mark(r.exclusive),
            mark(r.insecure),
            if r.token.is_some() { "set" } else { "" }.to_string(),
        ]);
    }
    crate::output::out(&t.render());
    Ok(())
}

/// The remote `status` looks at: `name`, else `--remote`, else the Active one.
pub fn status_remote(g: &Global, name: Option<&str>) -> Result<Remote, CliError> {
    let remotes = load(g)?;
    let hint = "name one of 'scs-library remote list'";
    let r = match name.or(g.remote.as_deref()) {
        Some(n) => remotes.get(n).map(Some),
        None => remotes.active_remote(),
    }
    .map_err(|e| CliError::usage(errors::chain(&e), hint))?;
    r.cloned().ok_or_else(|| {
        CliError::usage(
            "no remote is active (no Active in remote.yaml)",
            "name a remote: scs-library remote status NAME",
        )
    })
}

/// The HTTP client, retries and discovery of `remote status`.
pub async fn status_discovery(
    g: &Global,
    r: &Remote,
) -> Result<(HttpClient, RetryConfig, Services), CliError> {
    let (http, retry) = http_client(g)?;
    let s = discover(g, r).await?;
    Ok((http, retry, s))
}
