//! The schema of the settings and secrets tables: every entry's name, and for a setting the
//! type of its JSON value. This is the one list; the setup page, the collector and the Box
//! client all name entries through it.
//!
//! Secrets ([`SecretKey`]) go through [`Store::get_secret`], [`Store::put_secrets`] and
//! [`Store::delete_secret`] (never the TOML file, never the page). Settings ([`SettingKey`])
//! go through [`Store::setting`], [`Store::put_setting`] and [`Store::clear_setting`]; a cleared
//! setting is stored as JSON `null` and reads as `None`, as does a value of another shape.
//!
//! The names are the keys on disk: renaming one orphans what appliances already store.
//!
//! [`Store::get_secret`]: crate::Store::get_secret
//! [`Store::put_secrets`]: crate::Store::put_secrets
//! [`Store::delete_secret`]: crate::Store::delete_secret
//! [`Store::setting`]: crate::Store::setting
//! [`Store::put_setting`]: crate::Store::put_setting
//! [`Store::clear_setting`]: crate::Store::clear_setting

use std::fmt;
use std::marker::PhantomData;

use serde_json::Value;

/// The name of an entry in the secrets table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretKey(&'static str);

impl SecretKey {
    /// A secret entry named `name` (the product's entries are the constants below).
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The key on disk.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// The name of an entry in the settings table whose JSON value is a `T`.
pub struct SettingKey<T> {
    name: &'static str,
    value: PhantomData<fn() -> T>,
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl<T> SettingKey<T> {
    /// A setting named `name` (the product's entries are the constants below).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            value: PhantomData,
        }
    }

    /// The key on disk.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The same entry read as raw JSON (lists of settings of different types).
    pub const fn untyped(&self) -> SettingKey<Value> {
        SettingKey::new(self.name)
    }
}

impl<T> Clone for SettingKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SettingKey<T> {}

impl<T> fmt::Debug for SettingKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SettingKey({:?})", self.name)
    }
}

/// Secret: argon2id hash of the admin password (JSON, see the setup page's `credentials`).
pub const PASSWORD_HASH: SecretKey = SecretKey("setup.password");
/// Secret: SHA-256 of the current one-time setup code (hex).
pub const SETUP_CODE_HASH: SecretKey = SecretKey("setup.code");
/// Secret: PEM certificate chain the setup page serves.
pub const TLS_CERT: SecretKey = SecretKey("setup.tls.cert");
/// Secret: PEM private key of that certificate.
pub const TLS_KEY: SecretKey = SecretKey("setup.tls.key");
/// Setting: `true` when the certificate was uploaded by the admin rather than generated.
pub const TLS_UPLOADED: SettingKey<bool> = SettingKey::new("setup.tls.uploaded");
/// Secret: SHA-256 (hex) of the Prometheus scrape token; the token itself is shown once.
pub const METRICS_TOKEN_HASH: SecretKey = SecretKey("setup.metrics_token");

/// Setting: the Box app's client ID (not a secret, but only the setup page edits it).
pub const BOX_CLIENT_ID: SettingKey<String> = SettingKey::new("box.client_id");
/// Secret: the Box app's client secret.
pub const BOX_CLIENT_SECRET: SecretKey = SecretKey("box.client_secret");
/// Setting: the redirect URI registered in the Box console.
pub const BOX_REDIRECT_URI: SettingKey<String> = SettingKey::new("box.redirect_uri");
/// Setting: which grant the collector uses, `{"type":"authorization_code"}` or
/// `{"type":"client_credentials","enterprise_id":"…"}`; cleared when Box is not connected.
/// The typed form is `boxidr_boxapi::Grant` (`Grant::load`/`Grant::save`), which this crate
/// cannot name.
pub const BOX_GRANT: SettingKey<Value> = SettingKey::new("box.grant");
/// Setting: the connected account as last read from `GET /users/me` (`name`, `login`, `role`,
/// `enterprise`, and the setup page's `checks`), for display only.
pub const BOX_ACCOUNT: SettingKey<Value> = SettingKey::new("box.account");
/// Secret: the rotating Box refresh token. Written only through
/// `boxidr_boxapi::TokenManager::save_refresh_token` (and deleted by a factory reset).
pub const BOX_REFRESH_TOKEN: SecretKey = SecretKey("box.refresh_token");
/// Setting: a bounded sweep's target (`{"from": .., "until": ..}`, UTC), so a backfill or
/// catch-up survives restarts (`boxidr_boxapi::sweep`). Its `from` moves forward as windows
/// finish.
pub const SWEEP_TARGET: SettingKey<Value> = SettingKey::new("sweep.target");

/// Secret: InsightIDR Log Search ingestion token.
pub const LOG_SEARCH_TOKEN: SecretKey = SecretKey("insightidr.log_search_token");
/// Secret: InsightIDR Platform API key (the verifier, the canary).
pub const PLATFORM_API_KEY: SecretKey = SecretKey("insightidr.platform_api_key");

/// Secret: the outbound proxy's password (`[network] proxy_user` is its user).
pub const PROXY_PASSWORD: SecretKey = SecretKey("network.proxy_password");

/// Every secret a factory reset wipes.
pub const RESET_SECRETS: &[SecretKey] = &[
    PASSWORD_HASH,
    SETUP_CODE_HASH,
    TLS_CERT,
    TLS_KEY,
    BOX_CLIENT_SECRET,
    BOX_REFRESH_TOKEN,
    LOG_SEARCH_TOKEN,
    PLATFORM_API_KEY,
    METRICS_TOKEN_HASH,
    PROXY_PASSWORD,
];

/// Every setting a factory reset clears.
pub const RESET_SETTINGS: &[SettingKey<Value>] = &[
    TLS_UPLOADED.untyped(),
    BOX_CLIENT_ID.untyped(),
    BOX_REDIRECT_URI.untyped(),
    BOX_GRANT,
    BOX_ACCOUNT,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are what appliances already have on disk: changing one is a migration.
    #[test]
    fn names_on_disk() {
        let secrets: Vec<&str> = RESET_SECRETS.iter().map(|k| k.name()).collect();
        assert_eq!(
            secrets,
            [
                "setup.password",
                "setup.code",
                "setup.tls.cert",
                "setup.tls.key",
                "box.client_secret",
                "box.refresh_token",
                "insightidr.log_search_token",
                "insightidr.platform_api_key",
                "setup.metrics_token",
                "network.proxy_password",
            ]
        );
        let settings: Vec<&str> = RESET_SETTINGS.iter().map(|k| k.name()).collect();
        assert_eq!(
            settings,
            [
                "setup.tls.uploaded",
                "box.client_id",
                "box.redirect_uri",
                "box.grant",
                "box.account",
            ]
        );
        assert_eq!(SWEEP_TARGET.name(), "sweep.target");
    }
}
