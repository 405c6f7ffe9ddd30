//! Configuration: flags, then environment variables, then defaults; and
//! the client built from it. The token is read here and handed to the
//! client, never printed or logged.

use std::path::{Path, PathBuf};

use library_client::{Client, RetryConfig};

use crate::cli::Global;
use crate::errors::CliError;

/// Environment variable naming the library's base URL.
pub const ENV_URL: &str = "LIBRARY_URL";
/// Environment variable holding the access token.
pub const ENV_TOKEN: &str = "LIBRARY_TOKEN";
/// Environment variable naming a file that holds the access token.
pub const ENV_TOKEN_FILE: &str = "LIBRARY_TOKEN_FILE";
/// Environment variable giving how many times a failed request is sent again.
pub const ENV_RETRIES: &str = "LIBRARY_RETRIES";
/// Environment variable: seconds to wait for a connection.
pub const ENV_CONNECT_TIMEOUT: &str = "LIBRARY_CONNECT_TIMEOUT";
/// Environment variable: seconds without progress before a transfer is given up.
pub const ENV_IDLE_TIMEOUT: &str = "LIBRARY_IDLE_TIMEOUT";
/// Environment variable: seconds to wait for an answer once a request is sent.
pub const ENV_TIMEOUT: &str = "LIBRARY_TIMEOUT";
/// Retries when neither `--retries` nor `LIBRARY_RETRIES` says.
pub const DEFAULT_RETRIES: u32 = 5;

/// How many times a failed request is sent again: `--retries`, then
/// `LIBRARY_RETRIES`, then [`DEFAULT_RETRIES`].
pub fn retries(g: &Global) -> Result<u32, CliError> {
    if let Some(n) = g.retries {
        return Ok(n);
    }
    match std::env::var(ENV_RETRIES) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
            CliError::usage(
                format!("{ENV_RETRIES}={v:?} is not a number of retries"),
                "set it to a whole number such as 0 or 5",
            )
        }),
        _ => Ok(DEFAULT_RETRIES),
    }
}

/// A timeout in seconds from `flag`, then the environment variable `env`;
/// `None` when neither says (the client's default applies). A value that
/// is not a positive number of seconds is a usage error naming its source.
fn seconds(
    flag: Option<&str>,
    flag_name: &str,
    env: &str,
) -> Result<Option<std::time::Duration>, CliError> {
    let (text, source) = match flag {
        Some(v) => (v.to_string(), format!("--{flag_name} {v:?}")),
        None => match std::env::var(env) {
            Ok(v) if !v.trim().is_empty() => (v.trim().to_string(), format!("{env}={v:?}")),
            _ => return Ok(None),
        },
    };
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 * 365.0 => {
            Ok(Some(std::time::Duration::from_secs_f64(s)))
        }
        _ => Err(CliError::usage(
            format!("{source} is not a number of seconds"),
            "give a positive number such as 30 or 2.5",
        )),
    }
}

/// Where the token came from, for logs (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token.
    None,
    /// `--token-file`.
    FileFlag(PathBuf),
    /// `--token`.
    Flag,
    /// `LIBRARY_TOKEN`.
    Env,
    /// `LIBRARY_TOKEN_FILE`.
    FileEnv(PathBuf),
}

/// The token: `--token-file`, then `--token`, then `LIBRARY_TOKEN`, then
/// `LIBRARY_TOKEN_FILE`; empty when none is set.
pub fn token(g: &Global) -> Result<(String, TokenSource), CliError> {
    if let Some(p) = &g.token_file {
        return Ok((
            read_token(p, "--token-file")?,
            TokenSource::FileFlag(p.clone()),
        ));
    }
    if let Some(t) = &g.token {
        return Ok((t.trim().to_string(), TokenSource::Flag));
    }
    if let Ok(t) = std::env::var(ENV_TOKEN) {
        if !t.trim().is_empty() {
            return Ok((t.trim().to_string(), TokenSource::Env));
        }
    }
    if let Some(p) = std::env::var_os(ENV_TOKEN_FILE).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return Ok((read_token(&p, ENV_TOKEN_FILE)?, TokenSource::FileEnv(p)));
    }
    Ok((String::new(), TokenSource::None))
}

fn read_token(path: &Path, from: &str) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(
            format!("reading the token file {} ({from}): {e}", path.display()),
            "give a readable file holding the access token",
        )
    })?;
    Ok(text.trim().to_string())
}

/// A client of `url` sending `token` (empty for none); `source` says where
/// the URL came from, for logs and error hints.
pub fn client_to(g: &Global, url: &str, token: String, source: &str) -> Result<Client, CliError> {
    client_with(g, url, token, source, None)
}

/// [`client_to`], reusing `http` (built from the same settings) when given.
pub fn client_with(
    g: &Global,
    url: &str,
    token: String,
    source: &str,
    http: Option<library_client::HttpClient>,
) -> Result<Client, CliError> {
    let mut b = Client::builder()
        .base_url(url)
        .token(token)
        .user_agent(format!("scs-library/{}", env!("CARGO_PKG_VERSION")))
        .retry(RetryConfig::default().with_max_retries(retries(g)?));
    if let Some(d) = seconds(
        g.connect_timeout.as_deref(),
        "connect-timeout",
        ENV_CONNECT_TIMEOUT,
    )? {
        b = b.connect_timeout(d);
    }
    if let Some(d) = seconds(g.idle_timeout.as_deref(), "idle-timeout", ENV_IDLE_TIMEOUT)? {
        b = b.read_timeout(d).write_timeout(d);
    }
    if let Some(d) = seconds(g.timeout.as_deref(), "timeout", ENV_TIMEOUT)? {
        b = b.request_timeout(d);
    }
    if let Some(ca) = &g.ca_file {
        b = b.add_root_certificate_pem_file(ca.clone());
    }
    if let Some(p) = &g.proxy {
        b = b.proxy(p.clone());
    }
    if let Some(h) = http {
        b = b.http_client(h);
    }
    b.build().map_err(|e| {
        CliError::usage(
            format!(
                "configuring the client for {url}: {}",
                crate::errors::chain(&e)
            ),
            format!("check {source}, --ca-file and --proxy"),
        )
    })
}
