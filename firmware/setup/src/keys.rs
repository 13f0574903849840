//! Names of the store entries the setup page owns or shares with the collector.
//!
//! Secrets go through `Store::put_secrets` (never the TOML file, never the page); settings are
//! JSON values through `Store::set_setting`. A cleared setting is stored as JSON `null`.

/// Secret: argon2id hash of the admin password (JSON, see `credentials`).
pub const PASSWORD_HASH: &str = "setup.password";
/// Secret: SHA-256 of the current one-time setup code (hex).
pub const SETUP_CODE_HASH: &str = "setup.code";
/// Secret: PEM certificate chain the page serves.
pub const TLS_CERT: &str = "setup.tls.cert";
/// Secret: PEM private key of that certificate.
pub const TLS_KEY: &str = "setup.tls.key";
/// Setting: `true` when the certificate was uploaded by the admin rather than generated.
pub const TLS_UPLOADED: &str = "setup.tls.uploaded";

/// Setting: the Box app's client ID (a string; not a secret, but only the page edits it).
pub const BOX_CLIENT_ID: &str = "box.client_id";
/// Secret: the Box app's client secret.
pub const BOX_CLIENT_SECRET: &str = "box.client_secret";
/// Setting: the redirect URI registered in the Box console (string).
pub const BOX_REDIRECT_URI: &str = "box.redirect_uri";
/// Setting: which grant the collector uses, `{"type":"authorization_code"}` or
/// `{"type":"client_credentials","enterprise_id":"…"}`; `null` when Box is not connected.
pub const BOX_GRANT: &str = "box.grant";
/// Setting: the connected account as last read from `GET /users/me` (`name`, `login`,
/// `role`, `enterprise`), for display only.
pub const BOX_ACCOUNT: &str = "box.account";
/// Secret: the rotating refresh token (the same key `boxapi::tokens` uses).
pub const BOX_REFRESH_TOKEN: &str = boxidr_boxapi::tokens::REFRESH_TOKEN_KEY;

/// Secret: InsightIDR Log Search ingestion token.
pub const LOG_SEARCH_TOKEN: &str = "insightidr.log_search_token";
/// Secret: InsightIDR Platform API key (verifier).
pub const PLATFORM_API_KEY: &str = "insightidr.platform_api_key";

/// Secret: SHA-256 (hex) of the Prometheus scrape token; the token itself is shown once.
pub const METRICS_TOKEN_HASH: &str = "setup.metrics_token";

/// Secret: the outbound proxy's password (`[network] proxy_user` is its user).
pub const PROXY_PASSWORD: &str = boxidr_boxapi::http::PROXY_PASSWORD_KEY;

/// Every secret a factory reset wipes.
pub const RESET_SECRETS: &[&str] = &[
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
pub const RESET_SETTINGS: &[&str] = &[
    TLS_UPLOADED,
    BOX_CLIENT_ID,
    BOX_REDIRECT_URI,
    BOX_GRANT,
    BOX_ACCOUNT,
];
