//! The local setup page: tiny_http behind in-process rustls, first boot without a default
//! password, sessions, CSRF, the Box OAuth grant, InsightIDR and collection settings, status.
//!
//! # Layout
//! * [`server`]: [`SetupServer`] — start/stop, tiny_http worker threads, the HTTP→HTTPS redirect.
//! * [`tls`]: the certificate (generated with rcgen or uploaded) and the TLS front; its docs
//!   explain how TLS is terminated in front of tiny_http and how the client address survives.
//! * `route`: the route table ([`ROUTES`], the `Page` enum): the one place URL paths are matched.
//! * `actions`: what the page does to the store, the configuration and Box (the router's
//!   handlers call it; the runtime is entered there).
//! * `app`: the router; the first-boot gate, Origin and CSRF checks run before every handler.
//! * `session`: sessions (idle 15 min, absolute 8 h), CSRF tokens, OAuth `state`.
//! * `credentials`: the setup code, argon2id passwords, failed-attempt throttling.
//! * `forms`: parsing and validation only: settings forms → a whole validated
//!   [`boxidr_config::Config`] + secrets, and a stored config → form values (no markup).
//! * `config_file`: the atomic TOML rewrite.
//! * `boxlink`: the Box app client, `/users/me`, Box errors in plain words.
//! * `pages` (maud templates, auto-escaped, no inline script; the Box page loads the external
//!   `/static/copy.js`; the settings forms' fields in `pages::settings_fields`) and [`status`] ([`StatusSource`] and the status dashboard).
//! * The store entries this page writes (and the collector reads) are named in
//!   [`boxidr_store::settings`].
//!
//! # Security model
//! * **No default credential.** First start issues a random 80-bit setup code (only its hash is
//!   stored); the page accepts it once together with a new password (≥ 12 characters,
//!   argon2id), and the code is deleted. Until then every route except `/claim` redirects there.
//! * **Sessions.** 256-bit ids in a `__Host-` cookie with `Secure; HttpOnly; SameSite=Strict`,
//!   replaced at login, idle timeout 15 min, absolute 8 h, logout. Failed logins and setup
//!   codes are throttled per client address with one generic message.
//! * **CSRF.** Every POST needs the session's token and an `Origin` equal to `https://<Host>`.
//!   Because the page sends `Referrer-Policy: no-referrer`, browsers put `Origin: null` on its
//!   own form posts; then `Sec-Fetch-Site: same-origin` (set by the browser, not by scripts)
//!   stands in for it. GET handlers change nothing, except the OAuth callback, which is
//!   guarded by its single-use `state`. The status page's automatic refresh
//!   (`/status?auto=1`) does not count as activity for the idle timeout.
//! * **Headers.** CSP without any script source, `frame-ancestors 'none'`, `no-referrer`,
//!   `no-store`, `nosniff` on every response.
//! * **Secrets** (Box client secret and tokens, Log Search token, Platform API key, TLS key)
//!   live in the store's secrets, never in the TOML file or a page: forms show "set"/"not set"
//!   and replace a secret only when a new value is typed.
//! * **Box OAuth.** `state` is 256 random bits, single-use, 10-minute expiry, compared in
//!   constant time and bound to the admin's session through a `SameSite=Lax` binder cookie
//!   (the `Strict` session cookie is not sent on the redirect back from Box). The refresh token
//!   is committed to the store before anything uses the new access token.

mod actions;
mod app;
mod boxlink;
pub mod clock;
mod config_file;
mod credentials;
mod error;
mod forms;
mod http;
mod pages;
mod route;
pub mod server;
mod session;
pub mod status;
mod support;
pub mod tls;

use boxidr_config::Config;
use boxidr_model::Secret;
use boxidr_store::{Store, settings};

pub use boxlink::{BoxConnectedHook, BoxConnection};
pub use clock::{Clock, SystemClock};
pub use config_file::{replace_file, write_atomically};
pub use credentials::{CODE_SYMBOLS, MIN_PASSWORD_CHARS, SetupCode};
pub use error::SetupError;
pub use route::ROUTES;
pub use server::{
    DEFAULT_JOURNAL_COMMAND, DEFAULT_TEST_WAIT, PlatformApi, SetupOptions, SetupServer,
};
pub use session::{ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, OAUTH_STATE_TTL};
pub use status::{NoStatus, StatusSource};
pub use support::{MAX_JOURNAL_BYTES, REDACTED};

/// The setup page's pure parsers, public for the fuzz targets (`tests/fuzz`): a multipart body
/// and a settings form. Nothing here touches the store, a file or a socket.
pub mod parse {
    use std::collections::{BTreeMap, HashMap};

    use boxidr_config::Config;

    pub use crate::http::{Multipart, parse_multipart};

    /// A settings form (`/insightidr`, `/mapping`, `/collection`) applied to `base`, as the page
    /// applies it before saving: the whole new configuration, or the form's errors by field.
    pub fn settings_form(
        path: &str,
        base: &Config,
        form: &HashMap<String, String>,
    ) -> Result<Config, BTreeMap<String, String>> {
        let page = crate::route::Page::find(crate::http::Method::Post, path)
            .and_then(crate::route::Page::settings_page)
            .ok_or_else(|| BTreeMap::from([("path".to_owned(), format!("no form at {path}"))]))?;
        crate::forms::apply(page, base, form).map(|changes| changes.config)
    }
}

/// Issues a new one-time setup code while no admin password is set (`None` afterwards).
///
/// Only the code's hash is stored, so showing a code means issuing a new one: the previous
/// code stops working. `boxidr setup-code` calls this and prints the result together with
/// [`certificate_fingerprint`].
pub async fn setup_code(store: &Store) -> Result<Option<SetupCode>, SetupError> {
    if store.get_secret(settings::PASSWORD_HASH).await?.is_some() {
        return Ok(None);
    }
    let code = SetupCode::generate();
    store
        .put_secrets(vec![(
            settings::SETUP_CODE_HASH,
            Secret::new(code.digest()),
        )])
        .await?;
    Ok(Some(code))
}

/// SHA-256 fingerprint of the page's certificate, creating the certificate if there is none.
pub async fn certificate_fingerprint(store: &Store) -> Result<String, SetupError> {
    Ok(tls::load_or_create(store).await?.fingerprint().to_owned())
}

/// Spends the setup code: if `code` is the current one, stores the argon2id hash of
/// `password` and deletes the code. `Ok(false)` for a wrong code or none issued.
pub(crate) async fn claim_with_code(
    store: &Store,
    code: &str,
    password: &str,
) -> Result<bool, SetupError> {
    if store.get_secret(settings::PASSWORD_HASH).await?.is_some() {
        return Ok(false);
    }
    let Some(stored) = store.get_secret(settings::SETUP_CODE_HASH).await? else {
        return Ok(false);
    };
    let stored = stored.expose().to_owned();
    if !credentials::code_matches(code, &stored) {
        return Ok(false);
    }
    let hash = credentials::hash_password(password)?;
    store
        .put_secrets(vec![(settings::PASSWORD_HASH, Secret::new(hash))])
        .await?;
    store.delete_secret(settings::SETUP_CODE_HASH).await?;
    Ok(true)
}

/// What a factory reset did.
#[derive(Debug)]
pub struct ResetReport {
    /// The new setup code, to print.
    pub setup_code: SetupCode,
    /// Fingerprint of the newly generated certificate.
    pub fingerprint: String,
    /// Box token revocation: `None` if there was nothing to revoke, otherwise its outcome
    /// (an error text never contains a token).
    pub box_revocation: Option<Result<(), String>>,
}

/// Returns the appliance to first-boot state: revokes the Box refresh token at Box (best
/// effort: a failure is reported, the wipe goes on), deletes the admin password, setup code,
/// certificate, Box app secret and tokens, InsightIDR secrets and Box settings, then issues a
/// new setup code and certificate. The TOML file (no secrets in it) is left as it is.
///
/// Sessions live in the running server's memory: use [`SetupServer::factory_reset`] when a
/// server is running so they end too.
pub async fn factory_reset(store: &Store, config: &Config) -> Result<ResetReport, SetupError> {
    let box_revocation = revoke_box(store, config).await?;
    for key in settings::RESET_SECRETS {
        store.delete_secret(*key).await?;
    }
    for key in settings::RESET_SETTINGS {
        store.clear_setting(*key).await?;
    }
    let identity = tls::Identity::generate(tls::default_names())?;
    identity.save(store).await?;
    let setup_code = setup_code(store)
        .await?
        .ok_or_else(|| SetupError::Corrupt("password still present after reset".into()))?;
    tracing::warn!(
        fingerprint = identity.fingerprint(),
        "Factory reset done; a new setup code is issued."
    );
    Ok(ResetReport {
        setup_code,
        fingerprint: identity.fingerprint().to_owned(),
        box_revocation,
    })
}

async fn revoke_box(
    store: &Store,
    config: &Config,
) -> Result<Option<Result<(), String>>, SetupError> {
    let Some((client_id, secret)) = boxlink::app_credentials(store).await? else {
        return Ok(None);
    };
    let Some(token) = store.get_secret(settings::BOX_REFRESH_TOKEN).await? else {
        return Ok(None);
    };
    let outcome = async {
        let http = boxidr_boxapi::http::client(std::time::Duration::from_secs(20))?;
        boxlink::auth_client(&http, config, client_id, secret)?
            .revoke(&token)
            .await
    }
    .await
    .map_err(|e| e.to_string());
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, "Could not revoke the Box token during factory reset.");
    }
    Ok(Some(outcome))
}
