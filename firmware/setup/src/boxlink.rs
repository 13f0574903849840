//! The Box side of the page: building the app's [`AuthClient`] from what the admin stored,
//! reading the connected account (`GET /users/me`), and explaining Box's refusals in plain words.
//! Every Box call goes through `boxidr_boxapi`'s clients; no Box URL is built here.

use std::sync::Arc;

use boxidr_boxapi::events::From as EventsFrom;
use boxidr_boxapi::{
    ApiError, AuthClient, AuthError, EventsClient, EventsRequest, Grant, TokenSet, UsersClient,
};
use boxidr_config::Config;
use boxidr_model::{Secret, StreamType};
use boxidr_store::Store;
use boxidr_store::settings;
use serde_json::{Value, json};

use crate::error::SetupError;

/// Largest `/users/me` body read.
const USERS_ME_LIMIT: u64 = 64 * 1024;

/// A grant the page just obtained, handed to the collector.
///
/// By the time the hook sees it, a refresh token (code grant) is already committed to the
/// store under [`settings::BOX_REFRESH_TOKEN`] and the grant under [`settings::BOX_GRANT`]; the hook
/// typically calls `TokenManager::install` or rebuilds the token manager for the new grant.
#[derive(Debug)]
pub struct BoxConnection {
    /// The app's client, built from the stored client ID and secret.
    pub auth: AuthClient,
    /// The grant that produced `tokens`.
    pub grant: Grant,
    /// The fresh tokens.
    pub tokens: TokenSet,
}

/// Called after every successful connection from the page.
pub type BoxConnectedHook = Arc<dyn Fn(BoxConnection) + Send + Sync>;

/// The stored client ID and secret, if both are set.
pub(crate) async fn app_credentials(store: &Store) -> Result<Option<(String, Secret)>, SetupError> {
    let id = store
        .setting(settings::BOX_CLIENT_ID)
        .await?
        .filter(|s| !s.is_empty());
    let secret = store
        .get_secret(settings::BOX_CLIENT_SECRET)
        .await?
        .filter(|s| !s.is_empty());
    Ok(id.zip(secret))
}

/// The app's OAuth client for the configured Box endpoints.
pub(crate) fn auth_client(
    http: &reqwest::Client,
    config: &Config,
    client_id: String,
    secret: Secret,
) -> Result<AuthClient, ApiError> {
    AuthClient::new(
        http.clone(),
        config.box_api.authorize_url.clone(),
        &config.box_api.token_base,
        client_id,
        secret,
    )
}

/// `GET /users/me` → `{name, login, role, enterprise}` for display (strings from Box stay
/// untrusted: they are escaped where shown).
pub(crate) async fn users_me(
    http: &reqwest::Client,
    config: &Config,
    access: &Secret,
) -> Result<Value, ApiError> {
    let users = UsersClient::new(
        http.clone(),
        &config.box_api.api_base,
        config.box_api.max_body_bytes,
    );
    let me = users
        .me(access, "name,login,role,enterprise", USERS_ME_LIMIT)
        .await?;
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Number(n)) => Value::String(n.to_string()),
        _ => Value::Null,
    };
    let enterprise = me
        .get("enterprise")
        .map(|e| match (text(e.get("name")), text(e.get("id"))) {
            (Value::String(name), Value::String(id)) => Value::String(format!("{name} ({id})")),
            (Value::String(name), _) => Value::String(name),
            (_, id) => id,
        });
    Ok(json!({
        "name": text(me.get("name")),
        "login": text(me.get("login")),
        "role": text(me.get("role")),
        "enterprise": enterprise.unwrap_or(Value::Null),
    }))
}

/// Tries the two reads the collector needs with the new token, so the admin learns at once
/// which permission is missing: `{"events": "...", "users": "..."}`, each `"allowed"` or a
/// plain-words verdict. Through `boxapi`'s own clients: one `admin_logs` event at
/// `stream_position=now` (no position kept) and one user.
pub(crate) async fn check_permissions(
    http: &reqwest::Client,
    config: &Config,
    access: &Secret,
) -> Value {
    let api = &config.box_api.api_base;
    let max = config.box_api.max_body_bytes;
    let request = EventsRequest {
        stream: StreamType::AdminLogs,
        from: EventsFrom::Now,
        limit: 1,
        created_after: None,
        created_before: None,
        event_types: Vec::new(),
    };
    let events = EventsClient::new(http.clone(), api, max)
        .fetch(access, &request)
        .await;
    let users = UsersClient::new(http.clone(), api, max)
        .fetch(access, None, 1)
        .await;
    json!({
        "events": verdict(
            events.map(drop),
            "the app needs the scope \"Manage enterprise properties\"",
            "the account must be an admin, or a co-admin allowed to run reports",
        ),
        "users": verdict(
            users.map(drop),
            "the app needs the scope \"Manage users\"",
            "the account must be an admin, or a co-admin allowed to manage users",
        ),
    })
}

fn verdict(result: Result<(), ApiError>, scope: &str, role: &str) -> String {
    match result {
        Ok(()) => "allowed".into(),
        Err(ApiError::Forbidden { code, .. }) if code == "insufficient_scope" => format!(
            "missing: {scope} (Box Developer Console → the app → Configuration); connect again afterwards"
        ),
        Err(ApiError::Forbidden { .. }) => format!("missing: {role}"),
        Err(e) => format!("not checked: {}", crate::status::bounded(&e.to_string())),
    }
}

/// What to tell the admin when Box refused, and what to do about it.
pub(crate) fn explain(error: &ApiError) -> String {
    match error {
        ApiError::Auth(AuthError::InvalidGrant { .. }) => {
            "Box refused the authorization: the code is valid for 30 seconds and only once, \
             or the app is not authorised for this enterprise. Click Connect to Box again; \
             for client credentials check the enterprise ID and that the app is authorised in \
             the Box Admin Console (Apps → Custom Apps Manager)."
                .into()
        }
        ApiError::Auth(AuthError::InvalidClient { .. }) => {
            "Box does not accept the client ID and secret. Copy both again from the app's \
             Configuration tab in the Box Developer Console and save them here."
                .into()
        }
        ApiError::Network { .. } => {
            "The appliance cannot reach Box. Check its network, DNS and proxy settings and \
             that the clock is synchronised, then try again."
                .into()
        }
        ApiError::Forbidden { .. } => {
            "Box refused access for this account. Use an admin or co-admin with the \
             \"Manage enterprise properties\" and \"Manage users\" scopes enabled for the app."
                .into()
        }
        other => format!(
            "Box refused the request: {other}. Try again; if it persists, check the app in the Box Developer Console."
        ),
    }
}

/// What a callback's `error` parameter means (RFC 6749 §4.1.2.1), in plain words.
pub(crate) fn explain_callback_error(error: &str) -> String {
    match error {
        "access_denied" => {
            "Access was denied on Box's consent page, so nothing was changed. Click Connect \
             to Box again and choose \"Grant access to Box\"."
                .into()
        }
        "redirect_uri_mismatch" | "redirect_uri_missing" => {
            "Box does not know this page's redirect URI. Copy the redirect URI shown on the \
             Box connection page into the app's Redirect URIs in the Box Developer Console, \
             save the app, and connect again."
                .into()
        }
        "invalid_client" | "unauthorized_client" => {
            "Box does not recognise this app. Check the client ID on the Box connection page."
                .into()
        }
        other => format!(
            "Box refused the connection ({}). Nothing was stored. Try again, or check the app's \
             settings in the Box Developer Console.",
            crate::status::bounded(other)
        ),
    }
}
