//! OAuth 2.0: consent page, token endpoint (code, refresh, client credentials), revoke
//! (CONTRACT §1, checklist §7 items 1–3).

use std::collections::HashMap;
use std::time::Instant;

use hyper::HeaderMap;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use serde_json::json;
use url::Url;

use crate::faults::{Endpoint, FaultKind};
use crate::http_util::{Out, get, html_escape, oauth_error, parse_pairs};
use crate::state::{Shared, lock};

#[derive(Debug, Clone)]
struct AccessTok {
    label: String,
    user_id: String,
    scopes: Vec<String>,
    expires: Instant,
    revoked: bool,
    /// Secret of the refresh token issued with it.
    pair: Option<String>,
}

#[derive(Debug, Clone)]
struct RefreshTok {
    label: String,
    user_id: String,
    scopes: Vec<String>,
    expires: Instant,
    used: bool,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Code {
    user_id: String,
    scopes: Vec<String>,
    expires: Instant,
    used: bool,
}

/// A `POST /oauth2/revoke` the simulator received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// Label of the revoked token (`at-3`, `rt-2`), or `None` if the sim never issued it.
    pub token_label: Option<String>,
    /// `access`, `refresh` or `unknown`.
    pub kind: &'static str,
}

/// What a valid bearer token stands for.
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub user_id: String,
    pub scopes: Vec<String>,
}

/// Tokens, codes and revocations.
#[derive(Debug, Default)]
pub struct OAuthState {
    access: HashMap<String, AccessTok>,
    refresh: HashMap<String, RefreshTok>,
    codes: HashMap<String, Code>,
    counter: u64,
    revocations: Vec<Revocation>,
}

fn secret(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl OAuthState {
    fn next_label(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}", self.counter)
    }

    /// Label of a bearer token (`unknown` if never issued).
    pub(crate) fn label_of(&self, token: &str) -> String {
        self.access
            .get(token)
            .map(|t| t.label.clone())
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// The token's grant, if it is issued, unexpired and not revoked.
    pub(crate) fn validate(&self, token: &str) -> Option<TokenInfo> {
        let t = self.access.get(token)?;
        (!t.revoked && Instant::now() < t.expires).then(|| TokenInfo {
            user_id: t.user_id.clone(),
            scopes: t.scopes.clone(),
        })
    }

    /// Revokes every access and refresh token; returns how many were valid.
    pub(crate) fn revoke_all(&mut self) -> usize {
        let now = Instant::now();
        let mut n = 0;
        for t in self.access.values_mut() {
            if !t.revoked && now < t.expires {
                n += 1;
            }
            t.revoked = true;
        }
        for t in self.refresh.values_mut() {
            if !t.revoked && !t.used && now < t.expires {
                n += 1;
            }
            t.revoked = true;
        }
        n
    }

    /// Number of access tokens that would be accepted now.
    pub(crate) fn valid_access(&self) -> usize {
        let now = Instant::now();
        self.access
            .values()
            .filter(|t| !t.revoked && now < t.expires)
            .count()
    }

    /// Number of refresh tokens that could be redeemed now.
    pub(crate) fn valid_refresh(&self) -> usize {
        let now = Instant::now();
        self.refresh
            .values()
            .filter(|t| !t.revoked && !t.used && now < t.expires)
            .count()
    }

    /// What became of a refresh token: `valid` (redeemable now), `used` (spent by a refresh,
    /// whether or not its answer reached the client), `revoked` or `expired`; `None` if never issued.
    pub(crate) fn refresh_state(&self, token: &str) -> Option<&'static str> {
        let t = self.refresh.get(token)?;
        Some(if t.revoked {
            "revoked"
        } else if t.used {
            "used"
        } else if Instant::now() >= t.expires {
            "expired"
        } else {
            "valid"
        })
    }

    /// Every revocation received.
    pub(crate) fn revocations(&self) -> Vec<Revocation> {
        self.revocations.clone()
    }
}

/// Whether `uri` may be registered: https, or http on a loopback host (§1.3).
pub(crate) fn registrable(uri: &str) -> bool {
    match Url::parse(uri) {
        Ok(u) => u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)),
        Err(_) => false,
    }
}

fn is_loopback(u: &Url) -> bool {
    matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// §1.3: exact match, except that a loopback URI may use any port (scheme, host, path, query equal).
pub(crate) fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(r), Ok(q)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    is_loopback(&r)
        && is_loopback(&q)
        && r.scheme() == q.scheme()
        && r.host_str() == q.host_str()
        && r.path() == q.path()
        && r.query() == q.query()
        && r.username() == q.username()
        && r.password() == q.password()
        && q.fragment().is_none()
}

fn error_page(code: &str, detail: &str) -> Out {
    Out::html(
        400,
        format!(
            "<!DOCTYPE html><html><head><title>Box | Error</title></head><body>\
             <h1>Error</h1><p class=\"error-code\">{}</p><p>{}</p></body></html>",
            html_escape(code),
            html_escape(detail)
        ),
    )
    .outcome(code)
}

fn redirect(target: &Url, params: &[(&str, &str)]) -> Out {
    let mut u = target.clone();
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Out::empty(302)
        .header("location", u.as_str())
        .header("cache-control", "no-store")
}

/// Validates the authorize parameters; on success returns the redirect target.
fn check_authorize(shared: &Shared, p: &[(String, String)]) -> Result<Url, Out> {
    let cfg = &shared.config;
    match get(p, "client_id") {
        Some(id) if id == cfg.client_id => {}
        _ => {
            return Err(error_page(
                "invalid_client",
                "The client_id is missing or does not belong to a registered application.",
            ));
        }
    }
    let chosen = match get(p, "redirect_uri").filter(|s| !s.is_empty()) {
        Some(req) => {
            if !cfg.redirect_uris.iter().any(|r| redirect_matches(r, req)) {
                return Err(error_page(
                    "redirect_uri_mismatch",
                    "The redirect URI does not match a redirect URI configured for this application.",
                ));
            }
            req.to_owned()
        }
        None => match cfg.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(error_page(
                    "redirect_uri_missing",
                    "This application has several redirect URIs configured; the request must name one.",
                ));
            }
        },
    };
    Url::parse(&chosen).map_err(|_| {
        error_page(
            "redirect_uri_mismatch",
            "The redirect URI is not a valid URI.",
        )
    })
}

/// `GET /api/oauth2/authorize`: validation, then the consent page.
pub(crate) fn authorize_get(shared: &Shared, query: &str) -> Out {
    let p = parse_pairs(query);
    let target = match check_authorize(shared, &p) {
        Ok(t) => t,
        Err(page) => return page,
    };
    let state = get(&p, "state").unwrap_or_default();
    if get(&p, "response_type") != Some("code") {
        // RFC 6749 §4.1.2.1 once the redirect URI is trusted [inferred for Box].
        let mut params = vec![
            ("error", "unsupported_response_type"),
            ("error_description", "The response type must be code"),
        ];
        if !state.is_empty() {
            params.push(("state", state));
        }
        return redirect(&target, &params).outcome("unsupported_response_type");
    }
    let user = shared.authorizing_user();
    let hidden = |name: &str| {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            name,
            html_escape(get(&p, name).unwrap_or_default())
        )
    };
    let scope = get(&p, "scope").unwrap_or("(all scopes configured for the app)");
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Box | Grant access</title></head><body>\
         <h1>Grant access to Box</h1>\
         <p>Application <b>{client}</b> wants to access your Box account <b>{login}</b>.</p>\
         <p>Requested scopes: {scope}</p>\
         <form method=\"post\" action=\"/api/oauth2/authorize\">{h1}{h2}{h3}{h4}{h5}\
         <button type=\"submit\" name=\"action\" value=\"allow\" id=\"consent_accept_button\">Grant access to Box</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\" id=\"consent_reject_button\">Deny access</button>\
         </form></body></html>",
        client = html_escape(&shared.config.client_id),
        login = html_escape(&user.login),
        scope = html_escape(scope),
        h1 = hidden("response_type"),
        h2 = hidden("client_id"),
        h3 = hidden("redirect_uri"),
        h4 = hidden("state"),
        h5 = hidden("scope"),
    );
    Out::html(200, page).outcome("consent_page")
}

/// `POST /api/oauth2/authorize` (the consent form): Allow issues a code, Deny redirects with
/// `error=access_denied`. Parameters are validated again; the form is not trusted.
pub(crate) fn authorize_post(shared: &Shared, body: &str) -> Out {
    let p = parse_pairs(body);
    let target = match check_authorize(shared, &p) {
        Ok(t) => t,
        Err(page) => return page,
    };
    let state = get(&p, "state").unwrap_or_default();
    let with_state = |mut v: Vec<(&'static str, String)>| {
        if !state.is_empty() {
            v.push(("state", state.to_owned()));
        }
        v
    };
    let send = |v: Vec<(&'static str, String)>, outcome: &str| {
        let pairs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect(&target, &pairs).outcome(outcome)
    };
    if get(&p, "response_type") != Some("code") {
        return send(
            with_state(vec![
                ("error", "unsupported_response_type".into()),
                ("error_description", "The response type must be code".into()),
            ]),
            "unsupported_response_type",
        );
    }
    if get(&p, "action") != Some("allow") {
        return send(
            with_state(vec![
                ("error", "access_denied".into()),
                (
                    "error_description",
                    "The user denied access to your application".into(),
                ),
            ]),
            "access_denied",
        );
    }
    // A scope parameter can only narrow the app's scopes (§1.2).
    let app = &shared.config.app_scopes;
    let scopes: Vec<String> = match get(&p, "scope").filter(|s| !s.trim().is_empty()) {
        None => app.clone(),
        Some(s) => s
            .split(' ')
            .filter(|x| app.iter().any(|a| a == x))
            .map(str::to_owned)
            .collect(),
    };
    if scopes.is_empty() {
        return send(
            with_state(vec![
                ("error", "invalid_scope".into()),
                (
                    "error_description",
                    "None of the requested scopes is configured for the application".into(),
                ),
            ]),
            "invalid_scope",
        );
    }
    let user = shared.authorizing_user();
    let code = secret(32);
    lock(&shared.oauth).codes.insert(
        code.clone(),
        Code {
            user_id: user.id,
            scopes,
            expires: Instant::now() + shared.config.code_ttl,
            used: false,
        },
    );
    send(with_state(vec![("code", code)]), "code_issued")
}

fn issue_pair(shared: &Shared, st: &mut OAuthState, user_id: &str, scopes: &[String]) -> Out {
    let cfg = &shared.config;
    let access = secret(32);
    let refresh = secret(64);
    let at_label = st.next_label("at");
    let rt_label = st.next_label("rt");
    st.access.insert(
        access.clone(),
        AccessTok {
            label: at_label,
            user_id: user_id.to_owned(),
            scopes: scopes.to_vec(),
            expires: Instant::now() + cfg.access_token_ttl,
            revoked: false,
            pair: Some(refresh.clone()),
        },
    );
    st.refresh.insert(
        refresh.clone(),
        RefreshTok {
            label: rt_label,
            user_id: user_id.to_owned(),
            scopes: scopes.to_vec(),
            expires: Instant::now() + cfg.refresh_token_ttl,
            used: false,
            revoked: false,
        },
    );
    // Shape of samples/token-response-oauth2.json (+ restricted_to from the spec).
    let body = json!({
        "access_token": access,
        "expires_in": cfg.access_token_ttl.as_secs(),
        "restricted_to": [],
        "refresh_token": refresh,
        "token_type": "bearer",
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    });
    Out::json(200, body.to_string())
        .header("cache-control", "no-store")
        .outcome("issued")
}

/// `POST /oauth2/token`.
pub(crate) fn token(shared: &Shared, headers: &HeaderMap, body: &str, is_form: bool) -> Out {
    let cfg = &shared.config;
    if has_basic_auth(headers) {
        // Box wants client credentials in the form body (§1.5, scribejava #842).
        return oauth_error(400, "invalid_client", "The client credentials are invalid")
            .outcome("basic_auth_rejected");
    }
    let p = if is_form {
        parse_pairs(body)
    } else {
        Vec::new()
    };
    let grant = get(&p, "grant_type").unwrap_or_default().to_owned();
    let creds_ok = get(&p, "client_id") == Some(cfg.client_id.as_str())
        && get(&p, "client_secret") == Some(cfg.client_secret.as_str());
    let mut out = match grant.as_str() {
        "authorization_code" | "refresh_token" if !creds_ok => {
            oauth_error(400, "invalid_client", "The client credentials are invalid")
                .outcome("invalid_client")
        }
        "authorization_code" => {
            let mut st = lock(&shared.oauth);
            let code = get(&p, "code").unwrap_or_default();
            match st.codes.get_mut(code) {
                None => oauth_error(
                    400,
                    "invalid_grant",
                    "Auth code doesn't exist or is invalid for the client",
                )
                .outcome("code_unknown"),
                Some(c) if c.used => oauth_error(
                    400,
                    "invalid_grant",
                    "Auth code doesn't exist or is invalid for the client",
                )
                .outcome("code_reused"),
                Some(c) if Instant::now() >= c.expires => {
                    oauth_error(400, "invalid_grant", "The authorization code has expired")
                        .outcome("code_expired")
                }
                Some(c) => {
                    c.used = true;
                    let (user, scopes) = (c.user_id.clone(), c.scopes.clone());
                    issue_pair(shared, &mut st, &user, &scopes)
                }
            }
        }
        "refresh_token" => {
            let mut st = lock(&shared.oauth);
            let rt = get(&p, "refresh_token").unwrap_or_default();
            match st.refresh.get_mut(rt) {
                None => oauth_error(400, "invalid_grant", "Invalid refresh token")
                    .outcome("refresh_unknown"),
                Some(t) if t.revoked => oauth_error(400, "invalid_grant", "Invalid refresh token")
                    .outcome("refresh_revoked"),
                Some(t) if t.used => oauth_error(400, "invalid_grant", "Refresh token has expired")
                    .outcome("refresh_reused"),
                Some(t) if Instant::now() >= t.expires => {
                    oauth_error(400, "invalid_grant", "Refresh token has expired")
                        .outcome("refresh_expired")
                }
                Some(t) => {
                    // Single use: the old token dies now, whatever happens to the response.
                    t.used = true;
                    let (user, scopes) = (t.user_id.clone(), t.scopes.clone());
                    issue_pair(shared, &mut st, &user, &scopes).outcome("refreshed")
                }
            }
        }
        "client_credentials" => {
            let subject_ok = get(&p, "box_subject_type") == Some("enterprise")
                && get(&p, "box_subject_id") == Some(cfg.enterprise_id.as_str());
            if !creds_ok || !subject_ok {
                oauth_error(400, "invalid_grant", "Grant credentials are invalid")
                    .outcome("ccg_rejected")
            } else {
                let mut st = lock(&shared.oauth);
                let access = secret(32);
                let label = st.next_label("at");
                let service = lock(&shared.enterprise).service_account.id.clone();
                st.access.insert(
                    access.clone(),
                    AccessTok {
                        label,
                        user_id: service,
                        scopes: cfg.app_scopes.clone(),
                        expires: Instant::now() + cfg.access_token_ttl,
                        revoked: false,
                        pair: None,
                    },
                );
                // Shape of samples/token-response-client-credentials.json (no refresh token,
                // odd issued_token_type "bearer") plus the spec's `token_type`, which the
                // `AccessToken` schema always carries and official SDKs require.
                let body = json!({
                    "access_token": access,
                    "expires_in": cfg.access_token_ttl.as_secs(),
                    "restricted_to": [],
                    "token_type": "bearer",
                    "issued_token_type": "bearer",
                });
                Out::json(200, body.to_string())
                    .header("cache-control", "no-store")
                    .outcome("issued")
            }
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
        | "urn:ietf:params:oauth:grant-type:token-exchange" => oauth_error(
            400,
            "unauthorized_client",
            "The grant type is unauthorized for this client_id",
        )
        .outcome("grant_not_enabled"),
        _ => oauth_error(
            400,
            "invalid_request",
            "Invalid grant_type parameter or parameter missing",
        )
        .outcome("bad_grant_type"),
    };
    out.extras.grant_type = (!grant.is_empty()).then_some(grant);
    if out.status == 200
        && shared
            .faults
            .take(Endpoint::Token, |k| {
                matches!(k, FaultKind::DropTokenResponse)
            })
            .is_some()
    {
        out.kill = true;
        out.extras.fault = Some("drop_token_response".to_owned());
    }
    out
}

fn has_basic_auth(headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case("basic "))
}

/// `POST /oauth2/revoke`: 200 with an empty body (RFC 7009: unknown tokens too).
pub(crate) fn revoke(shared: &Shared, headers: &HeaderMap, body: &str, is_form: bool) -> Out {
    let cfg = &shared.config;
    if has_basic_auth(headers) {
        return oauth_error(400, "invalid_client", "The client credentials are invalid")
            .outcome("basic_auth_rejected");
    }
    let p = if is_form {
        parse_pairs(body)
    } else {
        Vec::new()
    };
    if get(&p, "client_id") != Some(cfg.client_id.as_str())
        || get(&p, "client_secret") != Some(cfg.client_secret.as_str())
    {
        return oauth_error(400, "invalid_client", "The client credentials are invalid")
            .outcome("invalid_client");
    }
    let Some(token) = get(&p, "token").filter(|t| !t.is_empty()) else {
        return oauth_error(400, "invalid_request", "Missing token parameter")
            .outcome("missing_token");
    };
    let mut st = lock(&shared.oauth);
    let rec = if let Some(t) = st.access.get_mut(token) {
        // Box documents revocation as ending the session: the access token's refresh token
        // (and every access token issued with it) dies with it.
        t.revoked = true;
        let label = t.label.clone();
        if let Some(pair) = t.pair.clone() {
            if let Some(r) = st.refresh.get_mut(&pair) {
                r.revoked = true;
            }
            for a in st.access.values_mut() {
                if a.pair.as_deref() == Some(pair.as_str()) {
                    a.revoked = true;
                }
            }
        }
        Revocation {
            token_label: Some(label),
            kind: "access",
        }
    } else if let Some(t) = st.refresh.get_mut(token) {
        t.revoked = true;
        let label = t.label.clone();
        for a in st.access.values_mut() {
            if a.pair.as_deref() == Some(token) {
                a.revoked = true;
            }
        }
        Revocation {
            token_label: Some(label),
            kind: "refresh",
        }
    } else {
        Revocation {
            token_label: None,
            kind: "unknown",
        }
    };
    st.revocations.push(rec);
    Out::empty(200).outcome("revoked")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the §1.3 rules: exact match, loopback any port, but scheme/host/path/query must match.
    #[test]
    fn redirect_uri_rules() {
        let reg = "http://127.0.0.1/cb?x=1";
        assert!(redirect_matches(reg, "http://127.0.0.1/cb?x=1"));
        assert!(redirect_matches(reg, "http://127.0.0.1:8765/cb?x=1"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:8765/cb"));
        assert!(!redirect_matches(reg, "http://127.0.0.1:8765/cb2?x=1"));
        assert!(!redirect_matches(reg, "http://localhost:8765/cb?x=1"));
        assert!(!redirect_matches(reg, "https://127.0.0.1:8765/cb?x=1"));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:9/cb"));
        let https = "https://box.example.com/setup/callback";
        assert!(redirect_matches(https, https));
        assert!(!redirect_matches(
            https,
            "https://box.example.com:8443/setup/callback"
        ));
        assert!(registrable(https));
        assert!(registrable("http://localhost:3000/cb"));
        assert!(!registrable("http://192.168.1.20/cb"));
        assert!(!registrable("not a uri"));
    }
}
