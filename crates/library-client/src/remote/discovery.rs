//! Service discovery: a remote's URI to its library (and other services).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use http::{HeaderMap, Method, StatusCode};
use library_transport::{HttpClient, RetryConfig};
use url::Url;

use super::Remote;
use crate::error::{Error, Result};

/// The URI of Apptainer's default remote, which serves no library.
pub const NO_LIBRARY_URI: &str = "cloud.apptainer.org";

const CONFIG_PATH: &str = "assets/config/config.prod.json";

/// What a remote's discovery file names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Services {
    /// `libraryAPI.uri`: the library base URL.
    pub library: Url,
    /// `libraryAPI.registryUri`: the OCI registry beside the library, if any.
    pub registry: Option<String>,
    /// `tokenAPI.uri`: the token service, if any.
    pub token: Option<String>,
    /// `keystoreAPI.uri`: the key server, if any.
    pub keystore: Option<String>,
    /// Every service with a `uri`, by name without the `API` suffix
    /// (`keystore` is called `keyserver`, as Apptainer calls it).
    pub all: BTreeMap<String, String>,
}

/// The URL of a remote's endpoint: `URI` as `[scheme://]host[:port][/path]`,
/// `https` unless `Insecure` (then `http`) when it has no scheme. Unlike
/// Go's `url.Parse`, `host:port` is a host and a port.
pub fn endpoint_url(remote: &Remote) -> Result<Url> {
    let uri = remote.uri.trim().trim_end_matches('/');
    if uri.is_empty() {
        return Err(Error::Config(format!(
            "remote {:?} has no URI",
            remote.name
        )));
    }
    let text = if uri.contains("://") {
        uri.to_string()
    } else {
        let scheme = if remote.insecure { "http" } else { "https" };
        format!("{scheme}://{uri}")
    };
    let url = Url::parse(&format!("{text}/")).map_err(|e| {
        Error::Config(format!(
            "remote {:?}: URI {uri:?} is invalid: {e}",
            remote.name
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "remote {:?}: URI {uri:?} is not an http(s) host",
            remote.name
        )));
    }
    Ok(url)
}

/// True when `a` and `b` have the same scheme, host and port (a missing
/// port being the scheme's default): where a token may go.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

fn cache() -> &'static Mutex<HashMap<String, Services>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Services>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Discover the services of `remote`: `GET <endpoint>/assets/config/config.prod.json`
/// (no token sent) through `http`, retried as `retry` says. The answer is
/// cached for the life of the process.
///
/// Errors: the connection fails ([`ErrorKind::Network`](crate::ErrorKind::Network)
/// or `Timeout`); the answer is not a 200, not JSON, or names no
/// `libraryAPI.uri` ([`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse));
/// the remote is Apptainer's default `cloud.apptainer.org`, which has no
/// library ([`ErrorKind::Config`](crate::ErrorKind::Config)).
pub async fn discover(http: &HttpClient, retry: &RetryConfig, remote: &Remote) -> Result<Services> {
    let base = endpoint_url(remote)?;
    if base
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(NO_LIBRARY_URI))
    {
        return Err(Error::Config(format!(
            "remote {:?} ({NO_LIBRARY_URI}) has no library: Apptainer's default remote does not serve the Library API \
             (see https://apptainer.org/docs/user/latest/endpoint.html#no-default-remote)",
            remote.name
        )));
    }
    let url = base
        .join(CONFIG_PATH)
        .map_err(|e| Error::Config(format!("remote {:?}: {e}", remote.name)))?;
    if let Some(s) = cache()
        .lock()
        .ok()
        .and_then(|c| c.get(url.as_str()).cloned())
    {
        return Ok(s);
    }
    tracing::debug!(remote = %remote.name, %url, "service discovery");
    let resp = http
        .request_json_with_retry(retry, Method::GET, &url, &HeaderMap::new(), None::<&()>)
        .await
        .map_err(Error::from)?;
    if resp.status != StatusCode::OK {
        return Err(Error::invalid_response(
            url.as_str(),
            format!(
                "service discovery answered HTTP {}, not a remote's configuration",
                resp.status
            ),
        ));
    }
    let services = parse(&url, &resp.body)?;
    if let Ok(mut c) = cache().lock() {
        c.insert(url.to_string(), services.clone());
    }
    Ok(services)
}

fn parse(url: &Url, body: &[u8]) -> Result<Services> {
    let bad = |why: &str| Error::invalid_response(url.as_str(), why.to_string());
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| bad("service discovery did not answer JSON"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("service discovery did not answer a JSON object"))?;
    let mut all = BTreeMap::new();
    for (key, val) in obj {
        let name = key.strip_suffix("API").unwrap_or(key);
        let name = if name == "keystore" {
            "keyserver"
        } else {
            name
        };
        if let Some(uri) = val.get("uri").and_then(|u| u.as_str()) {
            if !uri.is_empty() {
                all.insert(name.to_string(), uri.to_string());
            }
        }
    }
    let lib = obj
        .get("libraryAPI")
        .ok_or_else(|| bad("service discovery names no libraryAPI: the remote has no library"))?;
    let lib_uri = all
        .get("library")
        .ok_or_else(|| bad("service discovery gives no libraryAPI.uri"))?;
    let library = Url::parse(lib_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            bad("service discovery gives a libraryAPI.uri that is not an http(s) URL")
        })?;
    Ok(Services {
        library,
        registry: lib
            .get("registryUri")
            .and_then(|u| u.as_str())
            .filter(|u| !u.is_empty())
            .map(str::to_string),
        token: all.get("token").cloned(),
        keystore: all.get("keyserver").cloned(),
        all,
    })
}
