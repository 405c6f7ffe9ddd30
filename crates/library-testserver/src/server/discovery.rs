//! Service discovery and the token endpoints of a remote:
//! `GET assets/config/config.prod.json`, `GET v1/token-status`,
//! `GET v1/rbac/users/current`.

use super::*;

/// How the discovery endpoints answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct DiscoveryConfig {
    /// `libraryAPI.uri`; `None`: the server itself.
    pub(crate) library: Option<Url>,
    /// A body replacing the generated one.
    pub(crate) body: Option<String>,
    /// `v1/rbac/users/current` answers 404.
    pub(crate) no_current_user: bool,
}

fn trimmed(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_string()
}

/// The discovery file: the library (the server itself unless configured),
/// and the token and key services, both on the server itself.
pub(super) fn config(ctx: &Ctx) -> Reply {
    let d = &ctx.shared.config.discovery;
    if let Some(body) = &d.body {
        return Reply::new(200, Payload::Bytes(Bytes::from(body.clone())))
            .header("content-type", "application/json");
    }
    let me = trimmed(&ctx.shared.library_url);
    let library = d
        .library
        .as_ref()
        .map(trimmed)
        .unwrap_or_else(|| me.clone());
    Reply::raw_json(
        200,
        &serde_json::json!({
            "libraryAPI": { "uri": library, "registryUri": "" },
            "tokenAPI": { "uri": me },
            "keystoreAPI": { "uri": me },
        }),
    )
}

/// `200 {"data":{...}}` when the token is valid (the route requires it).
pub(super) fn token_status(_ctx: &Ctx) -> Reply {
    Reply::raw_json(200, &serde_json::json!({ "data": { "status": "valid" } }))
}

/// The user of the token: a fixed test user.
pub(super) fn current_user(ctx: &Ctx) -> Reply {
    if ctx.shared.config.discovery.no_current_user {
        return Reply::error(404, "no such endpoint");
    }
    Reply::raw_json(
        200,
        &serde_json::json!({
            "username": "testuser",
            "email": "testuser@example.org",
            "realname": "Test User",
        }),
    )
}
