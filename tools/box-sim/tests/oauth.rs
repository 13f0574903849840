//! OAuth 2.0 behaviour of the simulator against CONTRACT §1 (checklist §7 items 1–3).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use box_sim::{Role, SimConfig};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// Allow on the consent page redirects to the registered URI with a code and the state echoed
/// unchanged (special characters survive), keeping the URI's own query.
#[tokio::test]
async fn allow_redirects_with_code_and_state() {
    let sim = start(SimConfig {
        redirect_uris: vec!["http://127.0.0.1/cb?tenant=a b".to_owned()],
        ..config()
    })
    .await;
    let cid = sim.config().client_id.clone();
    let state = "x&y=z é+/?#";
    let params = [
        ("response_type", "code"),
        ("client_id", cid.as_str()),
        ("redirect_uri", "http://127.0.0.1/cb?tenant=a b"),
        ("state", state),
        ("code_challenge", "ignored"),
        ("code_challenge_method", "S256"),
    ];
    let page = client()
        .get(sim.authorize_url())
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"allow\"") && html.contains("value=\"deny\""));
    assert!(
        !html.contains("x&y"),
        "state must be HTML-escaped in the form"
    );
    let resp = consent(&sim, "allow", &params).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with("http://127.0.0.1/cb?"), "{loc}");
    assert_eq!(param(&loc, "tenant").as_deref(), Some("a b"));
    assert_eq!(param(&loc, "state").as_deref(), Some(state));
    assert!(param(&loc, "code").is_some_and(|c| c.len() >= 32));
}

/// A code works once; the second exchange is `invalid_grant`.
#[tokio::test]
async fn code_is_single_use() {
    let sim = start(config()).await;
    let code = authorize_code(&sim).await;
    exchange_code(&sim, &code).await;
    let c = sim.config();
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(sim.token_outcomes().contains(&"code_reused".to_owned()));
}

/// A code older than `code_ttl` is `invalid_grant` "The authorization code has expired".
#[tokio::test]
async fn code_expires() {
    let sim = start(SimConfig {
        code_ttl: Duration::from_millis(300),
        ..config()
    })
    .await;
    let code = authorize_code(&sim).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = sim.config();
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "The authorization code has expired"
    );
}

/// Deny redirects with `error=access_denied`, a description and the state, and no code.
#[tokio::test]
async fn deny_redirects_access_denied() {
    let sim = start(config()).await;
    let cid = sim.config().client_id.clone();
    let resp = consent(
        &sim,
        "deny",
        &[
            ("response_type", "code"),
            ("client_id", &cid),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(param(&loc, "error").as_deref(), Some("access_denied"));
    assert!(param(&loc, "error_description").is_some());
    assert_eq!(param(&loc, "state").as_deref(), Some("s1"));
    assert_eq!(param(&loc, "code"), None);
}

/// A mismatching redirect URI, or none while several are registered, shows an error page and
/// never redirects (§1.2) — neither on the page nor on a forged consent POST.
#[tokio::test]
async fn redirect_mismatch_and_missing_do_not_redirect() {
    let sim = start(SimConfig {
        redirect_uris: vec![
            "https://box.example.com/setup/cb".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
        ],
        ..config()
    })
    .await;
    let cid = sim.config().client_id.clone();
    for (uri, expect) in [
        (Some("https://evil.example.com/cb"), "redirect_uri_mismatch"),
        (
            Some("https://box.example.com/setup/cb/extra"),
            "redirect_uri_mismatch",
        ),
        (Some("http://192.168.1.20/cb"), "redirect_uri_mismatch"),
        (None, "redirect_uri_missing"),
    ] {
        let mut params = vec![("response_type", "code"), ("client_id", cid.as_str())];
        if let Some(u) = uri {
            params.push(("redirect_uri", u));
        }
        let resp = client()
            .get(sim.authorize_url())
            .query(&params)
            .send()
            .await
            .unwrap();
        assert!(!resp.status().is_redirection());
        assert!(resp.headers().get("location").is_none());
        assert!(resp.text().await.unwrap().contains(expect), "{uri:?}");
        let forged = consent(&sim, "allow", &params).await;
        assert!(forged.headers().get("location").is_none(), "{uri:?}");
    }
}

/// Loopback redirect URIs may use any port, but scheme, host, path and query must match (§1.3).
#[tokio::test]
async fn loopback_any_port() {
    let sim = start(config()).await; // registered: http://127.0.0.1/callback
    let cid = sim.config().client_id.clone();
    let try_uri = |uri: &'static str| {
        let sim = sim.clone();
        let cid = cid.clone();
        async move {
            consent(
                &sim,
                "allow",
                &[
                    ("response_type", "code"),
                    ("client_id", &cid),
                    ("redirect_uri", uri),
                ],
            )
            .await
        }
    };
    let ok = try_uri("http://127.0.0.1:54321/callback").await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    let loc = ok.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with("http://127.0.0.1:54321/callback?code="),
        "{loc}"
    );
    for bad in [
        "http://localhost:54321/callback",
        "http://127.0.0.1:54321/other",
        "http://127.0.0.1:54321/callback?x=1",
    ] {
        let r = try_uri(bad).await;
        assert!(r.headers().get("location").is_none(), "{bad}");
    }
}

/// Client credentials in an HTTP Basic header are rejected with `invalid_client` (§1.5).
#[tokio::test]
async fn basic_auth_is_invalid_client() {
    let sim = start(config()).await;
    let code = authorize_code(&sim).await;
    let c = sim.config();
    let resp = client()
        .post(format!("{}/oauth2/token", sim.token_base()))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, sample("oauth-error-invalid-client.json"));
    let rec = sim.requests().pop().unwrap();
    assert_eq!(rec.auth_scheme.as_deref(), Some("Basic"));
}

/// A wrong secret in the body is `invalid_client`; a missing grant type is `invalid_request`.
#[tokio::test]
async fn bad_secret_and_missing_grant_type() {
    let sim = start(config()).await;
    let code = authorize_code(&sim).await;
    let cid = sim.config().client_id.clone();
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &cid),
            ("client_secret", "nope"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, sample("oauth-error-invalid-client.json"));
    let (status, body) = token_request(&sim, &[("client_id", &cid)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, sample("oauth-error-invalid-request-grant-type.json"));
}

/// Token responses have the sample's shape, `Cache-Control: no-store`, and the configured TTL;
/// the record shows the secret was sent only in the form body.
#[tokio::test]
async fn token_response_shape() {
    let sim = start(SimConfig {
        access_token_ttl: Duration::from_secs(1234),
        ..config()
    })
    .await;
    let code = authorize_code(&sim).await;
    let c = sim.config();
    let resp = client()
        .post(format!("{}/oauth2/token", sim.token_base()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let sample = sample("token-response-oauth2.json");
    for key in sample.as_object().unwrap().keys() {
        assert!(body.get(key).is_some(), "missing {key}");
    }
    assert_eq!(body["expires_in"], 1234);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["restricted_to"], serde_json::json!([]));
    let rec = sim.requests().pop().unwrap();
    assert!(rec.form_fields.contains(&"client_secret".to_owned()));
    assert!(!rec.query.contains("client_secret"));
    assert_eq!(rec.auth_scheme, None);
}

/// Each refresh returns a new refresh token; reusing the old one is `invalid_grant` "Refresh
/// token has expired"; a never-issued one is "Invalid refresh token".
#[tokio::test]
async fn refresh_rotation_and_reuse() {
    let sim = start(config()).await;
    let (_, rt1) = user_tokens(&sim).await;
    let c = sim.config().clone();
    let refresh = |rt: String| {
        let sim = sim.clone();
        let c = c.clone();
        async move {
            token_request(
                &sim,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &c.client_id),
                    ("client_secret", &c.client_secret),
                ],
            )
            .await
        }
    };
    let (status, body) = refresh(rt1.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(sim.valid_refresh_tokens(), 1);
    let (status, body) = refresh(rt1.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, sample("oauth-error-refresh-token-expired.json"));
    let (status, body) = refresh("never-issued".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, sample("oauth-error-invalid-refresh-token.json"));
    let (status, _) = refresh(rt2).await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim.token_outcomes().contains(&"refresh_reused".to_owned()));
}

/// A refresh token older than its TTL is "Refresh token has expired".
#[tokio::test]
async fn refresh_token_ttl() {
    let sim = start(SimConfig {
        refresh_token_ttl: Duration::from_millis(300),
        ..config()
    })
    .await;
    let (_, rt) = user_tokens(&sim).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = sim.config();
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_description"], "Refresh token has expired");
}

/// An expired access token gets 401 with an empty body and the Box `WWW-Authenticate` header.
#[tokio::test]
async fn expired_access_token_is_401() {
    let sim = start(SimConfig {
        access_token_ttl: Duration::from_secs(1),
        ..config()
    })
    .await;
    let (at, _) = user_tokens(&sim).await;
    let (status, _, _) = api_get(&sim, &at, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for path in ["/users/me", "/events", "/users"] {
        let (status, headers, body) =
            api_get(&sim, &at, path, &[("stream_type", "admin_logs_streaming")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body.is_empty());
        assert_eq!(
            headers["www-authenticate"],
            "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\""
        );
    }
    let resp = client()
        .get(format!("{}/events", sim.api_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no token at all");
}

/// Client credentials: wrong enterprise id → `invalid_grant` "Grant credentials are invalid";
/// success has no refresh token and acts as the service account.
#[tokio::test]
async fn client_credentials() {
    let sim = start(config()).await;
    let c = sim.config().clone();
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", "999"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, sample("oauth-error-invalid-grant-ccg.json"));
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", &c.enterprise_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["expires_in"], 3600);
    // The spec's `AccessToken` always has `token_type` (official SDKs require it).
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().unwrap();
    let (_, _, me) = api_get(&sim, token, "/users/me", &[("fields", "login,enterprise")]).await;
    let me: Value = serde_json::from_str(&me).unwrap();
    assert!(
        me["login"]
            .as_str()
            .unwrap()
            .ends_with("@boxdevedition.com")
    );
    assert_eq!(me["enterprise"]["id"], c.enterprise_id.as_str());
}

/// Revoke answers 200 with an empty body, kills the token, and is recorded; revoking a refresh
/// token also kills the access token issued with it.
#[tokio::test]
async fn revoke_tokens() {
    let sim = start(config()).await;
    let (at, rt) = user_tokens(&sim).await;
    let c = sim.config().clone();
    let resp = client()
        .post(format!("{}/oauth2/revoke", sim.token_base()))
        .form(&[
            ("client_id", c.client_id.as_str()),
            ("client_secret", &c.client_secret),
            ("token", &rt),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap().is_empty());
    let (status, _, _) = api_get(&sim, &at, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.revocations().len(), 1);
    assert_eq!(sim.revocations()[0].kind, "refresh");
    assert_eq!(sim.valid_refresh_tokens(), 0);
}

/// Revoking the ACCESS token ends the session (Box's documentation): the refresh token issued
/// with it can no longer be redeemed, and the bearer is refused.
#[tokio::test]
async fn revoking_the_access_token_ends_the_session() {
    let sim = start(config()).await;
    let (at, rt) = user_tokens(&sim).await;
    let (other_at, other_rt) = user_tokens(&sim).await;
    let c = sim.config().clone();
    let resp = client()
        .post(format!("{}/oauth2/revoke", sim.token_base()))
        .form(&[
            ("client_id", c.client_id.as_str()),
            ("client_secret", &c.client_secret),
            ("token", &at),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.revocations()[0].kind, "access");
    let (status, _, _) = api_get(&sim, &at, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refresh = |rt: String| {
        let sim = sim.clone();
        let c = c.clone();
        async move {
            token_request(
                &sim,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &c.client_id),
                    ("client_secret", &c.client_secret),
                ],
            )
            .await
        }
    };
    let (status, body) = refresh(rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // Another session is untouched.
    let (status, _, _) = api_get(&sim, &other_at, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh(other_rt).await;
    assert_eq!(status, StatusCode::OK);
}

/// `revoke_all_tokens` makes every bearer call 401 and every refresh `invalid_grant`.
#[tokio::test]
async fn revoke_all() {
    let sim = start(config()).await;
    let (at, rt) = user_tokens(&sim).await;
    sim.revoke_all_tokens();
    let (status, _, _) = api_get(&sim, &at, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let c = sim.config();
    let (status, body) = token_request(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

/// A grant without `manage_enterprise_properties` gets 403 `insufficient_scope` on events; a
/// non-admin user gets 403 `access_denied_insufficient_permissions` (§4.3).
#[tokio::test]
async fn events_permission_errors() {
    let sim = start(config()).await;
    let cid = sim.config().client_id.clone();
    let params = [
        ("response_type", "code"),
        ("client_id", cid.as_str()),
        ("scope", "root_readonly manage_managed_users"),
    ];
    let loc = consent(&sim, "allow", &params).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let (at, _) = exchange_code(&sim, &param(&loc, "code").unwrap()).await;
    let q = [("stream_type", "admin_logs_streaming")];
    let (status, _, body) = api_get(&sim, &at, "/events", &q).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["type"], "error");

    sim.set_authorizing_role(Role::User);
    let (at, _) = user_tokens(&sim).await;
    let (status, _, body) = api_get(&sim, &at, "/events", &q).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "access_denied_insufficient_permissions");
    let (_, _, me) = api_get(&sim, &at, "/users/me", &[("fields", "role")]).await;
    assert!(me.contains("\"role\":\"user\""), "{me}");
}
