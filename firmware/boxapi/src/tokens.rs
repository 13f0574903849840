//! The one place that holds, refreshes and stores Box tokens (ARCHITECTURE invariant 5): the
//! refresh token is written only through [`TokenManager::save_refresh_token`], by the manager
//! after a rotation and by the setup page after a new grant; the one other change to it is the
//! factory reset, which deletes it with every other secret (`boxidr_store::settings::RESET_SECRETS`).
//!
//! - **Single flight.** A tokio mutex is held across a refresh: concurrent callers wait and
//!   then use the new token; Box never sees two refreshes of the same refresh token.
//! - **Persist before use.** A rotated refresh token is committed to the store (durably) before
//!   the new access token is handed to anyone. If that commit fails, the new pair stays in
//!   memory as "unsaved" and the next call retries the commit first; the access token is
//!   not used until it succeeds.
//! - **Never loop on a dead grant.** `invalid_grant` / `invalid_client` marks the manager
//!   dead: every later call fails at once with the same error, without calling Box, until an
//!   admin connects Box again ([`TokenManager::install`]).
//! - **Proactive.** Access tokens are renewed 60 s before `expires_in` runs out (Box's Java SDK
//!   uses the same margin), or after three quarters of their lifetime when that is shorter than
//!   four minutes; polling every few seconds therefore rotates the refresh token hourly, so its
//!   60-day lifetime never lapses while the appliance runs, and never once per API call.

use std::time::Duration;

use boxidr_model::Secret;
use boxidr_store::{Store, settings};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::auth::{AuthClient, Grant, TokenSet};
use crate::error::{ApiError, AuthError};

/// Renew this long before the access token expires (at most: see [`renew_margin`]).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// How long before its expiry an access token of lifetime `expires_in` is renewed:
/// [`EXPIRY_MARGIN`], but at most a quarter of the lifetime. A token that lives shorter than
/// the margin would otherwise count as expiring from the moment it is issued, and every API
/// call would spend the refresh token: a rotation per call, each one a chance for a crash
/// between Box's answer and the write to lose the grant.
pub fn renew_margin(expires_in: Duration) -> Duration {
    EXPIRY_MARGIN.min(expires_in / 4)
}

#[derive(Debug)]
struct State {
    /// The access token and when to renew it.
    access: Option<(Secret, Instant)>,
    refresh: Option<Secret>,
    /// A refreshed pair whose refresh token is not yet durable.
    unsaved: Option<(TokenSet, Instant)>,
    dead: Option<AuthError>,
}

/// Hands out valid access tokens for one grant.
#[derive(Debug)]
pub struct TokenManager {
    auth: AuthClient,
    grant: Grant,
    store: Store,
    state: Mutex<State>,
}

impl TokenManager {
    /// Loads the stored refresh token (code grant) so a restart continues where it stopped.
    pub async fn load(auth: AuthClient, grant: Grant, store: Store) -> Result<Self, ApiError> {
        let refresh = match grant {
            Grant::AuthorizationCode => store
                .get_secret(settings::BOX_REFRESH_TOKEN)
                .await
                .map_err(store_error)?,
            Grant::ClientCredentials { .. } => None,
        };
        Ok(Self {
            auth,
            grant,
            store,
            state: Mutex::new(State {
                access: None,
                refresh,
                unsaved: None,
                dead: None,
            }),
        })
    }

    pub fn auth(&self) -> &AuthClient {
        &self.auth
    }

    /// Installs tokens from a fresh browser grant (persisted first) and revives a dead manager.
    pub async fn install(&self, tokens: TokenSet) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        state.dead = None;
        self.commit(&mut state, tokens, Instant::now()).await
    }

    /// A valid access token, refreshing (once, for everyone) when needed.
    pub async fn access_token(&self) -> Result<Secret, ApiError> {
        let mut state = self.state.lock().await;
        if let Some(dead) = &state.dead {
            return Err(ApiError::Auth(dead.clone()));
        }
        if let Some((tokens, issued)) = state.unsaved.take() {
            self.commit(&mut state, tokens, issued).await?;
        }
        let now = Instant::now();
        if let Some((token, renew_at)) = &state.access {
            if *renew_at > now {
                return Ok(token.clone());
            }
        }
        let result = self.auth.grant(&self.grant, state.refresh.as_ref()).await;
        match result {
            Ok(tokens) => {
                self.commit(&mut state, tokens, now).await?;
                state
                    .access
                    .as_ref()
                    .map(|(t, _)| t.clone())
                    .ok_or_else(|| ApiError::BadBody {
                        detail: "no access token".into(),
                    })
            }
            Err(ApiError::Auth(
                e @ (AuthError::InvalidGrant { .. } | AuthError::InvalidClient { .. }),
            )) => {
                tracing::error!(error = %e, "Box refused the grant; an admin must connect Box again.");
                state.access = None;
                state.dead = Some(e.clone());
                Err(ApiError::Auth(e))
            }
            Err(other) => Err(other),
        }
    }

    /// After a 401 with `used`: forget it so the next call renews (unless already renewed).
    pub async fn reject(&self, used: &Secret) {
        let mut state = self.state.lock().await;
        if state.access.as_ref().is_some_and(|(t, _)| t == used) {
            state.access = None;
        }
    }

    /// Whether an admin must act (`invalid_grant` or `invalid_client`).
    pub async fn needs_reauthorisation(&self) -> bool {
        self.state.lock().await.dead.is_some()
    }

    /// Stores `refresh` as the Box refresh token durably, or forgets the stored one (`None`: a
    /// grant without one, such as client credentials). The only writer of that secret; a factory
    /// reset deletes it with the other secrets.
    pub async fn save_refresh_token(
        store: &Store,
        refresh: Option<&Secret>,
    ) -> Result<(), boxidr_store::StoreError> {
        match refresh {
            Some(refresh) => {
                store
                    .put_secrets(vec![(settings::BOX_REFRESH_TOKEN, refresh.clone())])
                    .await
            }
            None => store
                .delete_secret(settings::BOX_REFRESH_TOKEN)
                .await
                .map(|_| ()),
        }
    }

    async fn commit(
        &self,
        state: &mut State,
        tokens: TokenSet,
        issued: Instant,
    ) -> Result<(), ApiError> {
        if let Some(refresh) = &tokens.refresh_token {
            if let Err(e) = Self::save_refresh_token(&self.store, Some(refresh)).await {
                tracing::warn!(error = %e, "Cannot store the rotated refresh token; not using the new access token yet.");
                state.unsaved = Some((tokens, issued));
                return Err(store_error(e));
            }
            state.refresh = Some(refresh.clone());
        }
        let renew_at = issued + tokens.expires_in - renew_margin(tokens.expires_in);
        state.access = Some((tokens.access_token, renew_at));
        Ok(())
    }
}

fn store_error(e: boxidr_store::StoreError) -> ApiError {
    ApiError::Store {
        detail: e.to_string(),
    }
}
