//! `remote status [NAME]`: discovery, the version of each service (asked
//! concurrently), the user of the token and the token's status.

use http::header::{HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Method, StatusCode};
use library_client::HttpClient;
use serde::Serialize;
use url::Url;

use crate::cli::Global;
use crate::errors::{self, CliError};
use crate::output::{self, out, Table};
use crate::remotes;

#[derive(Debug, Serialize)]
struct ServiceStatus {
    name: String,
    uri: String,
    status: &'static str,
    version: Option<String>,
    #[serde(skip)]
    unreachable: bool,
}

/// What an authenticated GET gave.
enum Answer {
    Ok(serde_json::Value),
    Status(StatusCode),
    Failed,
}

async fn get(http: &HttpClient, url: &str, token: Option<&str>) -> Answer {
    let Ok(url) = Url::parse(url) else {
        tracing::debug!(%url, "not a URL");
        return Answer::Failed;
    };
    let mut h = HeaderMap::new();
    if let Some(t) = token {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
            h.insert(AUTHORIZATION, v);
        }
    }
    match http.request_json(Method::GET, &url, &h, None::<&()>).await {
        Ok(r) if r.status == StatusCode::OK => match r.decode::<serde_json::Value>() {
            Ok(v) => Answer::Ok(v),
            Err(_) => Answer::Failed,
        },
        Ok(r) => Answer::Status(r.status),
        Err(e) => {
            tracing::debug!(%url, error = %library_client::Error::from(e), "request failed");
            Answer::Failed
        }
    }
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

async fn version_of(
    http: HttpClient,
    name: String,
    uri: String,
    token: Option<String>,
) -> ServiceStatus {
    let a = get(&http, &join(&uri, "version"), token.as_deref()).await;
    let (status, version, unreachable) = match a {
        Answer::Ok(v) => (
            "OK",
            v.pointer("/data/version")
                .or_else(|| v.get("version"))
                .and_then(|v| v.as_str())
                .map(str::to_string),
            false,
        ),
        Answer::Status(_) => ("N/A", None, false),
        Answer::Failed => ("N/A", None, true),
    };
    ServiceStatus {
        name,
        uri,
        status,
        version,
        unreachable,
    }
}

/// `remote status [NAME]`.
pub async fn status(g: &Global, name: Option<&str>) -> Result<(), CliError> {
    let r = remotes::status_remote(g, name)?;
    let (http, _retry, services) = remotes::status_discovery(g, &r).await?;
    let token = r.token.as_deref();
    let library = services.library.to_string();
    let user_url = join(&library, "v1/rbac/users/current");
    let (svc, user, tok) = tokio::join!(
        versions(&http, &services.all, &services.library, token),
        async {
            match token {
                None => Answer::Status(StatusCode::UNAUTHORIZED),
                Some(t) => get(&http, &user_url, Some(t)).await,
            }
        },
        async {
            match (token, &services.token) {
                (Some(t), Some(api)) => {
                    Some(get(&http, &join(api, "v1/token-status"), Some(t)).await)
                }
                _ => None,
            }
        }
    );
    let user_shown = match (&user, token) {
        (_, None) => None,
        (Answer::Ok(v), _) => v
            .get("data")
            .unwrap_or(v)
            .get("username")
            .and_then(|u| u.as_str())
            .map(|u| {
                let email = v
                    .get("data")
                    .unwrap_or(v)
                    .get("email")
                    .and_then(|e| e.as_str())
                    .unwrap_or("");
                if email.is_empty() {
                    u.to_string()
                } else {
                    format!("{u} <{email}>")
                }
            }),
        _ => None,
    };
    let token_state = match (token, &tok) {
        (None, _) => "not set",
        (Some(_), None) => "unknown",
        (Some(_), Some(Answer::Ok(_))) => "valid",
        (Some(_), Some(Answer::Status(s)))
            if *s == StatusCode::UNAUTHORIZED || *s == StatusCode::FORBIDDEN =>
        {
            "invalid"
        }
        (Some(_), Some(_)) => "unknown",
    };
    if g.json {
        output::json(&serde_json::json!({
            "remote": r.name,
            "uri": r.uri,
            "library": library,
            "services": svc,
            "user": user_shown.clone().unwrap_or_else(|| "unknown".into()),
            "token": token_state,
        }));
    } else {
        let mut t = Table::new(["SERVICE", "STATUS", "VERSION", "URI"]);
        for s in &svc {
            t.row(vec![
                s.name.clone(),
                s.status.to_string(),
                s.version.clone().unwrap_or_else(|| "-".into()),
                s.uri.clone(),
            ]);
        }
        let mut text = format!("Remote {} ({})\n", r.name, r.uri);
        text.push_str(&t.render());
        text.push_str(&output::fields(&[
            (
                "Logged in as",
                user_shown.unwrap_or_else(|| "unknown".into()),
            ),
            ("Token", token_state.to_string()),
        ]));
        out(&text);
    }
    if token_state == "invalid" {
        return Err(CliError::new(
            errors::UNAUTHORIZED,
            format!("the token of remote {:?} is invalid", r.name),
            "log in again: apptainer remote login (or singularity remote login)",
        ));
    }
    if svc.iter().any(|s| s.name == "library" && s.unreachable) {
        return Err(CliError::new(
            errors::NETWORK,
            format!(
                "the library of remote {:?} ({library}) is unreachable",
                r.name
            ),
            "check the network and proxy settings, then try again",
        ));
    }
    Ok(())
}

/// The version of every service, asked concurrently; sorted by name. The
/// token goes only to services on the library's origin.
async fn versions(
    http: &HttpClient,
    all: &std::collections::BTreeMap<String, String>,
    library: &Url,
    token: Option<&str>,
) -> Vec<ServiceStatus> {
    let mut set = tokio::task::JoinSet::new();
    for (n, u) in all {
        let same = Url::parse(u).is_ok_and(|u| library_client::remote::same_origin(&u, library));
        let t = token.filter(|_| same).map(str::to_string);
        set.spawn(version_of(http.clone(), n.clone(), u.clone(), t));
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(s) = r {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
