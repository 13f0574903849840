//! Box OAuth 2.0 (`shared/box/CONTRACT.md` §1): the authorization URL, the code exchange,
//! refresh with rotation, the client-credentials grant, and revocation.
//!
//! Client credentials always travel in the form body (Box refuses HTTP Basic). Refresh tokens
//! are single-use: the caller must persist the returned pair BEFORE using the new access token
//! (ARCHITECTURE invariant 5); [`crate::tokens`] does that.

use std::time::Duration;

use boxidr_model::Secret;
use boxidr_store::settings;
use boxidr_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ApiError, AuthError};
use crate::http::{self, BoxErrorBody};

/// Largest token-endpoint response read.
const TOKEN_BODY_LIMIT: u64 = 64 * 1024;

/// The Box app's credentials and endpoints.
#[derive(Debug, Clone)]
pub struct AuthClient {
    http: reqwest::Client,
    authorize_url: Url,
    token_url: Url,
    revoke_url: Url,
    client_id: String,
    client_secret: Secret,
}

/// Tokens from one successful grant or refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: Secret,
    /// Absent for the client-credentials grant.
    pub refresh_token: Option<Secret>,
    /// `expires_in` as Box sent it (not assumed to be 3600).
    pub expires_in: Duration,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Which grant produced tokens; the client-credentials grant is simply repeated on expiry.
///
/// Stored as the `box.grant` setting ([`settings::BOX_GRANT`]), tagged by `type`:
/// `{"type":"authorization_code"}` or `{"type":"client_credentials","enterprise_id":"…"}`;
/// written and read only through [`Grant::save`] and [`Grant::load`] (whose JSON is
/// [`Grant::to_setting`] and [`Grant::from_setting`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Grant {
    /// OAuth 2.0 user authentication: an admin authorised the app in a browser.
    AuthorizationCode,
    /// Client credentials for the enterprise's service account.
    ClientCredentials { enterprise_id: String },
}

impl Grant {
    /// The stored setting for this grant.
    pub fn to_setting(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The grant a stored setting names; `None` for `null` (Box not connected) or a value
    /// this version does not know.
    pub fn from_setting(value: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }

    /// The stored grant; `None` when Box is not connected (or the value is not a known grant).
    pub async fn load(store: &Store) -> Result<Option<Self>, StoreError> {
        let value = store.setting(settings::BOX_GRANT).await?;
        Ok(value.as_ref().and_then(Self::from_setting))
    }

    /// Stores this grant as the one the collector uses.
    pub async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store
            .put_setting(settings::BOX_GRANT, &self.to_setting())
            .await
    }
}

impl AuthClient {
    /// `token_base` is the host of `/oauth2/token` and `/oauth2/revoke` (no `/2.0`).
    pub fn new(
        http: reqwest::Client,
        authorize_url: Url,
        token_base: &Url,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Result<Self, ApiError> {
        let join = |path: &str| {
            token_base.join(path).map_err(|e| ApiError::BadBody {
                detail: e.to_string(),
            })
        };
        Ok(Self {
            http,
            authorize_url,
            token_url: join("/oauth2/token")?,
            revoke_url: join("/oauth2/revoke")?,
            client_id: client_id.into(),
            client_secret,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The browser URL for the admin's consent, carrying the single-use `state`.
    pub fn authorization_url(&self, redirect_uri: &str, state: &str) -> Url {
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        url
    }

    /// Exchanges an authorization code (valid 30 s, single use) for tokens.
    pub async fn exchange_code(&self, code: &str) -> Result<TokenSet, ApiError> {
        self.token_request(&[("grant_type", "authorization_code"), ("code", code)])
            .await
    }

    /// Spends `refresh_token` for a new pair. The old token is dead once Box answers 200.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, ApiError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    /// Client-credentials grant for the enterprise's service account.
    pub async fn client_credentials(&self, enterprise_id: &str) -> Result<TokenSet, ApiError> {
        self.token_request(&[
            ("grant_type", "client_credentials"),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", enterprise_id),
        ])
        .await
    }

    /// Obtains tokens for a grant that needs no browser step.
    pub async fn grant(
        &self,
        grant: &Grant,
        refresh_token: Option<&Secret>,
    ) -> Result<TokenSet, ApiError> {
        match (grant, refresh_token) {
            (Grant::ClientCredentials { enterprise_id }, _) => {
                self.client_credentials(enterprise_id).await
            }
            (Grant::AuthorizationCode, Some(token)) => self.refresh(token).await,
            (Grant::AuthorizationCode, None) => Err(AuthError::InvalidGrant {
                description: "no refresh token stored; the admin must connect Box again".into(),
            }
            .into()),
        }
    }

    /// Revokes an access or refresh token (factory reset). Box answers 200 with an empty body.
    pub async fn revoke(&self, token: &Secret) -> Result<(), ApiError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("token", token.expose()),
        ];
        let response = self.post(&self.revoke_url, &form).await?;
        let status = response.status().as_u16();
        let body = http::read_body(response, TOKEN_BODY_LIMIT).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(oauth_error(status, &body).into())
        }
    }

    async fn token_request(&self, fields: &[(&str, &str)]) -> Result<TokenSet, ApiError> {
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(fields.len() + 2);
        form.extend_from_slice(fields);
        form.push(("client_id", &self.client_id));
        form.push(("client_secret", self.client_secret.expose()));
        let response = self.post(&self.token_url, &form).await?;
        let status = response.status().as_u16();
        let body = http::read_body(response, TOKEN_BODY_LIMIT).await?;
        if status != 200 {
            return Err(oauth_error(status, &body).into());
        }
        let parsed: TokenBody = serde_json::from_slice(&body).map_err(|e| ApiError::BadBody {
            detail: format!("token response: {}", http::bounded(&e.to_string())),
        })?;
        if parsed.access_token.is_empty() {
            return Err(ApiError::BadBody {
                detail: "token response has an empty access_token".into(),
            });
        }
        Ok(TokenSet {
            access_token: Secret::new(parsed.access_token),
            refresh_token: parsed
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            expires_in: Duration::from_secs(parsed.expires_in.unwrap_or(3600)),
        })
    }

    async fn post(&self, url: &Url, form: &[(&str, &str)]) -> Result<reqwest::Response, ApiError> {
        self.http
            .post(url.clone())
            .form(form)
            .send()
            .await
            .map_err(|e| ApiError::Network {
                url: http::redacted_url(url),
                detail: http::error_chain(&e),
            })
    }
}

fn oauth_error(status: u16, body: &[u8]) -> AuthError {
    let parsed = BoxErrorBody::parse(body);
    let description = parsed.message();
    match parsed.error.as_deref() {
        Some("invalid_grant") => AuthError::InvalidGrant { description },
        Some("invalid_client") => AuthError::InvalidClient { description },
        other => AuthError::Other {
            status,
            error: http::bounded(other.unwrap_or("http_error")),
            description: if description.is_empty() {
                format!("HTTP {status}")
            } else {
                description
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The stored grant has the shape earlier versions wrote, and reads back as itself.
    #[test]
    fn grant_setting_round_trips() {
        let code = json!({"type": "authorization_code"});
        let cc = json!({"type": "client_credentials", "enterprise_id": "7"});
        assert_eq!(Grant::AuthorizationCode.to_setting(), code);
        let grant = Grant::ClientCredentials {
            enterprise_id: "7".into(),
        };
        assert_eq!(grant.to_setting(), cc);
        assert_eq!(Grant::from_setting(&code), Some(Grant::AuthorizationCode));
        assert_eq!(Grant::from_setting(&cc), Some(grant));
        assert_eq!(Grant::from_setting(&serde_json::Value::Null), None);
        assert_eq!(Grant::from_setting(&json!({"type": "jwt"})), None);
        assert_eq!(
            Grant::from_setting(&json!({"type": "client_credentials"})),
            None
        );
    }
}
