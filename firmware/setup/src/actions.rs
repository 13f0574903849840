//! What the page does to the rest of the appliance: the store (settings, secrets, the admin
//! password), the configuration file and its publication to the collector, and the Box calls
//! of the grant. The router (`app`) keeps sessions, throttling, the certificate and the
//! markup, and calls these synchronous methods from tiny_http's worker threads; the runtime is
//! entered here.
//!
//! The network work of the test buttons and of "Test connection" is `app::probes::Probes`,
//! on these same actions; no handler enters the runtime itself.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use boxidr_boxapi::Grant;
use boxidr_config::Config;
use boxidr_model::Secret;
use boxidr_store::Store;
use boxidr_store::settings::{self, SecretKey};
use serde_json::Value;
use tokio::sync::watch;

use crate::boxlink::{self, BoxConnectedHook, BoxConnection};
use crate::credentials;
use crate::error::SetupError;
use crate::forms;
use crate::pages::{DeadLetterSummary, SecretsSet};
use crate::support::{EXPORT_SECRET_NAMES, Scrubber};
use crate::tls::Identity;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the stored Box settings are (the Box page shows them).
pub(crate) type BoxSettings = (
    Option<String>,
    Option<String>,
    Option<Value>,
    Option<Value>,
    bool,
);

/// The store, the configuration and the Box calls, for the router.
pub(crate) struct Actions {
    pub(crate) store: Store,
    rt: tokio::runtime::Handle,
    config_path: PathBuf,
    config: watch::Sender<Arc<Config>>,
    /// Serialises saves of the configuration file and secrets (and password changes).
    save_lock: Mutex<()>,
    /// The plain client for Box calls (no proxy, no Box CA configured).
    http: reqwest::Client,
    on_box_connected: Option<BoxConnectedHook>,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

impl Actions {
    pub(crate) fn new(
        store: Store,
        rt: tokio::runtime::Handle,
        config_path: PathBuf,
        config: watch::Sender<Arc<Config>>,
        http: reqwest::Client,
        on_box_connected: Option<BoxConnectedHook>,
    ) -> Self {
        Self {
            store,
            rt,
            config_path,
            config,
            save_lock: Mutex::new(()),
            http,
            on_box_connected,
        }
    }

    /// Runs async work from a worker thread.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Spends the setup code for a new password (two claims at once: exactly one wins).
    pub(crate) fn claim(&self, code: &str, password: &str) -> Result<bool, SetupError> {
        let _guard = lock(&self.save_lock);
        self.block_on(crate::claim_with_code(&self.store, code, password))
    }

    /// Whether `password` is the admin's.
    pub(crate) fn password_matches(&self, password: &str) -> Result<bool, SetupError> {
        match self.block_on(self.store.get_secret(settings::PASSWORD_HASH))? {
            Some(hash) => credentials::verify_password(password, hash.expose()),
            None => Ok(false),
        }
    }

    /// Replaces the password when `current` is right (`Ok(false)` when it is not).
    pub(crate) fn change_password(&self, current: &str, new: &str) -> Result<bool, SetupError> {
        let _guard = lock(&self.save_lock);
        self.block_on(async {
            let Some(stored) = self.store.get_secret(settings::PASSWORD_HASH).await? else {
                return Ok(false);
            };
            if !credentials::verify_password(current, stored.expose())? {
                return Ok(false);
            }
            let hash = credentials::hash_password(new)?;
            self.store
                .put_secrets(vec![(settings::PASSWORD_HASH, Secret::new(hash))])
                .await?;
            Ok::<_, SetupError>(true)
        })
    }

    /// Whether a secret is stored.
    pub(crate) fn secret_is_set(&self, key: SecretKey) -> Result<bool, SetupError> {
        Ok(self.block_on(self.store.get_secret(key))?.is_some())
    }

    /// A stored secret as text, trimmed (`None`: not set or empty).
    pub(crate) fn secret_text(&self, key: SecretKey) -> Result<Option<Secret>, SetupError> {
        Ok(self
            .block_on(self.store.get_secret(key))?
            .map(|s| Secret::new(s.expose().trim()))
            .filter(|s| !s.is_empty()))
    }

    /// The first `n` stored Box users, in id order (the account preview picks from them).
    pub(crate) fn first_users(&self, n: usize) -> Result<Vec<boxidr_store::UserEntry>, SetupError> {
        Ok(self.block_on(self.store.users_after(None, n))?)
    }

    /// Which of the settings forms' secrets are stored.
    pub(crate) fn secrets_set(&self) -> Result<SecretsSet, SetupError> {
        Ok(SecretsSet {
            log_search_token: self.secret_is_set(settings::LOG_SEARCH_TOKEN)?,
            platform_api_key: self.secret_is_set(settings::PLATFORM_API_KEY)?,
            proxy_password: self.secret_is_set(settings::PROXY_PASSWORD)?,
        })
    }

    /// Names of the stored secrets, as the configuration export lists them.
    pub(crate) fn exported_secret_names(&self) -> Result<Vec<&'static str>, SetupError> {
        let mut set = Vec::new();
        for (key, name) in EXPORT_SECRET_NAMES {
            if self.secret_is_set(*key)? {
                set.push(*name);
            }
        }
        Ok(set)
    }

    /// Every stored secret value, to scrub from the support bundle's files.
    pub(crate) fn scrubber(&self) -> Result<Scrubber, SetupError> {
        let mut scrubber = Scrubber::default();
        for key in settings::RESET_SECRETS {
            if let Some(secret) = self.block_on(self.store.get_secret(*key))? {
                scrubber.add(secret.expose().as_bytes());
            }
        }
        Ok(scrubber)
    }

    /// How many dead letters are kept, for the Maintenance page.
    pub(crate) fn dead_letter_summary(&self) -> Result<DeadLetterSummary, SetupError> {
        let stats = self.block_on(self.store.stats())?;
        Ok(DeadLetterSummary {
            records: stats.dead_letters,
            bytes: stats.dead_letter_bytes,
            newest_seq: stats.newest_dead_letter_seq,
            full: stats.dead_letters_full,
        })
    }

    /// Every dead letter as a JSON line, read from the store `page` at a time (bounded by the
    /// store's own bound on dead letters).
    pub(crate) fn dead_letters_jsonl(&self, page: usize) -> Result<String, SetupError> {
        let mut out = String::new();
        let mut after = None;
        loop {
            let letters = self.block_on(self.store.dead_letters(after, page))?;
            for letter in &letters {
                out.push_str(&letter.to_json_line());
                out.push('\n');
            }
            match letters.last() {
                Some(last) if letters.len() == page => after = Some(last.record.seq),
                _ => return Ok(out),
            }
        }
    }

    /// Removes the dead letters up to sequence `through`; returns how many.
    pub(crate) fn remove_dead_letters(&self, through: u64) -> Result<u64, SetupError> {
        Ok(self.block_on(self.store.remove_dead_letters(through))?)
    }

    /// Stores the SHA-256 (hex) of a new scrape token, or with `None` removes it.
    pub(crate) fn set_metrics_token_hash(&self, hash: Option<String>) -> Result<(), SetupError> {
        match hash {
            Some(hash) => self.block_on(
                self.store
                    .put_secrets(vec![(settings::METRICS_TOKEN_HASH, Secret::new(hash))]),
            )?,
            None => {
                self.block_on(self.store.delete_secret(settings::METRICS_TOKEN_HASH))?;
            }
        }
        Ok(())
    }

    /// Client ID, redirect URI, grant, account (settings) and whether the client secret is set.
    pub(crate) fn box_settings(&self) -> Result<BoxSettings, SetupError> {
        self.block_on(async {
            Ok::<_, SetupError>((
                self.store.setting(settings::BOX_CLIENT_ID).await?,
                self.store.setting(settings::BOX_REDIRECT_URI).await?,
                self.store.setting(settings::BOX_GRANT).await?,
                self.store.setting(settings::BOX_ACCOUNT).await?,
                self.store
                    .get_secret(settings::BOX_CLIENT_SECRET)
                    .await?
                    .is_some(),
            ))
        })
    }

    /// The Box app form, saved (a new secret first).
    pub(crate) fn save_box_app(&self, app: &forms::BoxApp) -> Result<(), SetupError> {
        let _guard = lock(&self.save_lock);
        self.block_on(async {
            if let Some(secret) = &app.client_secret {
                self.store
                    .put_secrets(vec![(settings::BOX_CLIENT_SECRET, secret.clone())])
                    .await?;
            }
            self.store
                .put_setting(settings::BOX_CLIENT_ID, &app.client_id)
                .await?;
            self.store
                .put_setting(settings::BOX_REDIRECT_URI, &app.redirect_uri)
                .await?;
            Ok::<_, SetupError>(())
        })
    }

    /// The stored app credentials and redirect URI ("Connect to Box").
    #[allow(clippy::type_complexity)]
    pub(crate) fn box_app_and_redirect(
        &self,
    ) -> Result<(Option<(String, Secret)>, Option<String>), SetupError> {
        self.block_on(async {
            let creds = boxlink::app_credentials(&self.store).await?;
            let redirect = self.store.setting(settings::BOX_REDIRECT_URI).await?;
            Ok::<_, SetupError>((creds, redirect))
        })
    }

    /// [`Actions::box_http`] from a worker thread.
    pub(crate) fn box_http_blocking(&self, config: &Config) -> reqwest::Client {
        self.block_on(self.box_http(config))
    }

    /// The authorization code from Box's redirect exchanged and installed: the account, or
    /// what to tell the admin.
    pub(crate) fn connect_with_code(
        &self,
        code: &str,
        config: &Config,
    ) -> Result<Result<Option<Value>, String>, SetupError> {
        self.block_on(async {
            let Some((client_id, secret)) = boxlink::app_credentials(&self.store).await? else {
                return Ok(Err(
                    "The Box app settings were removed meanwhile. Save them and connect again."
                        .to_owned(),
                ));
            };
            let http = self.box_http(config).await;
            let auth = match boxlink::auth_client(&http, config, client_id, secret) {
                Ok(a) => a,
                Err(e) => return Ok(Err(boxlink::explain(&e))),
            };
            let tokens = match auth.exchange_code(code).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "Box refused the authorization code.");
                    return Ok(Err(boxlink::explain(&e)));
                }
            };
            self.install_grant(auth, Grant::AuthorizationCode, tokens, config)
                .await
                .map(Ok)
        })
    }

    /// The client-credentials grant for `enterprise_id`, installed.
    pub(crate) fn connect_with_client_credentials(
        &self,
        enterprise_id: &str,
        config: &Config,
    ) -> Result<Result<Option<Value>, String>, SetupError> {
        self.block_on(async {
            let Some((client_id, secret)) = boxlink::app_credentials(&self.store).await? else {
                return Ok(Err("Save the client ID and secret first.".to_owned()));
            };
            let http = self.box_http(config).await;
            let auth = match boxlink::auth_client(&http, config, client_id, secret) {
                Ok(a) => a,
                Err(e) => return Ok(Err(boxlink::explain(&e))),
            };
            let tokens = match auth.client_credentials(enterprise_id).await {
                Ok(t) => t,
                Err(e) => return Ok(Err(boxlink::explain(&e))),
            };
            let grant = Grant::ClientCredentials {
                enterprise_id: enterprise_id.to_owned(),
            };
            self.install_grant(auth, grant, tokens, config)
                .await
                .map(Ok)
        })
    }

    /// Stores the page's certificate and key.
    pub(crate) fn save_identity(&self, identity: &Identity) -> Result<(), SetupError> {
        self.block_on(identity.save(&self.store))
    }

    /// A pasted CA file (new name, so the old configuration never sees it), then secrets,
    /// then the TOML file; if a later step fails the earlier ones are undone, so a save is all
    /// or nothing. Then the new configuration is published to the collector.
    pub(crate) fn save(&self, changes: forms::Changes) -> Result<(), SetupError> {
        let forms::Changes {
            config,
            secrets,
            ca_file,
        } = changes;
        let _guard = lock(&self.save_lock);
        let mut new_ca = None;
        if let Some((path, pem)) = ca_file {
            if !path.exists() {
                crate::config_file::write_bytes_atomically(&path, pem.as_bytes(), 0o644)?;
                new_ca = Some(path);
            }
        }
        let undo_ca = |new_ca: &Option<PathBuf>| {
            if let Some(path) = new_ca {
                let _ = std::fs::remove_file(path);
            }
        };
        let previous = self.block_on(async {
            let mut previous = Vec::new();
            for (key, _) in &secrets {
                previous.push((*key, self.store.get_secret(*key).await?));
            }
            if !secrets.is_empty() {
                self.store.put_secrets(secrets.clone()).await?;
            }
            Ok::<_, SetupError>(previous)
        });
        let previous = match previous {
            Ok(previous) => previous,
            Err(e) => {
                undo_ca(&new_ca);
                return Err(e);
            }
        };
        if let Err(e) = crate::config_file::write_atomically(&self.config_path, &config) {
            let rollback = self.block_on(async {
                for (key, old) in previous {
                    match old {
                        Some(old) => self.store.put_secrets(vec![(key, old)]).await?,
                        None => {
                            self.store.delete_secret(key).await?;
                        }
                    }
                }
                Ok::<_, SetupError>(())
            });
            if let Err(r) = rollback {
                tracing::error!(error = %r, "Could not restore secrets after a failed save.");
            }
            undo_ca(&new_ca);
            return Err(e);
        }
        self.config.send_replace(Arc::new(config));
        Ok(())
    }

    /// The client for the page's own Box calls (grant, `users/me`, permission checks): through
    /// the configured outbound proxy and Box CA, read at each call so a saved proxy applies at
    /// once; the plain client when neither is set or they cannot be used (the call then fails
    /// and says why).
    pub(crate) async fn box_http(&self, config: &Config) -> reqwest::Client {
        if config.network.proxy.is_none() && config.box_api.ca_file.is_none() {
            return self.http.clone();
        }
        let proxy = match boxidr_boxapi::http::outbound_proxy(&config.network, &self.store).await {
            Ok(proxy) => proxy,
            Err(e) => {
                tracing::warn!(error = %e, "Outbound proxy not usable for the setup page.");
                return self.http.clone();
            }
        };
        let ca = config
            .box_api
            .ca_file
            .as_ref()
            .and_then(|path| std::fs::read(path).ok());
        let timeout =
            std::time::Duration::from_secs(config.box_api.request_timeout_secs.clamp(5, 60));
        boxidr_boxapi::http::client_via(timeout, proxy.as_ref(), ca.as_deref())
            .unwrap_or_else(|_| self.http.clone())
    }

    /// Persists a new grant (refresh token first), reads the account, tells the collector.
    pub(crate) async fn install_grant(
        &self,
        auth: boxidr_boxapi::AuthClient,
        grant: Grant,
        tokens: boxidr_boxapi::TokenSet,
        config: &Config,
    ) -> Result<Option<Value>, SetupError> {
        boxidr_boxapi::TokenManager::save_refresh_token(&self.store, tokens.refresh_token.as_ref())
            .await?;
        grant.save(&self.store).await?;
        let http = self.box_http(config).await;
        let account = match boxlink::users_me(&http, config, &tokens.access_token).await {
            Ok(mut account) => {
                let checks = boxlink::check_permissions(&http, config, &tokens.access_token).await;
                if let Some(map) = account.as_object_mut() {
                    map.insert("checks".into(), checks);
                }
                Some(account)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Connected, but reading /users/me failed.");
                None
            }
        };
        self.store
            .put_setting(
                settings::BOX_ACCOUNT,
                &account.clone().unwrap_or(Value::Null),
            )
            .await?;
        if let Some(hook) = &self.on_box_connected {
            hook(BoxConnection {
                auth,
                grant,
                tokens,
            });
        }
        Ok(account)
    }
}
