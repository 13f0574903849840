//! The Box client against the Box simulator on loopback: grants, rotation, pages, faults.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

mod common;
use common::Rig;

use std::collections::BTreeSet;
use std::time::Duration;

use box_sim::SimConfig;
use boxidr_boxapi::events::From;
use boxidr_boxapi::{
    ApiError, AuthClient, AuthError, EventsClient, EventsRequest, Grant, Recovery, TokenManager,
    http,
};
use boxidr_model::StreamType;
use serde_json::json;
use url::Url;

async fn start(config: SimConfig) -> (box_sim::SimHandle, AuthClient, EventsClient) {
    let Rig {
        sim, auth, events, ..
    } = Rig::start(config, 1 << 20).await;
    (sim, auth, events)
}

fn quiet() -> SimConfig {
    SimConfig {
        rate: 0.0,
        backlog: 50,
        ..SimConfig::default()
    }
}

fn request(stream: StreamType, from: From, limit: u32) -> EventsRequest {
    EventsRequest {
        stream,
        from,
        limit,
        created_after: None,
        created_before: None,
        event_types: Vec::new(),
    }
}

/// The code grant: the authorization URL carries our state, the sim redirects with a code, the
/// code exchange yields a refresh token, and each refresh rotates it; reusing the old one is
/// `invalid_grant`, which asks for an operator (re-authorisation), never a retry loop.
#[tokio::test]
async fn code_grant_and_refresh_rotation() {
    let config = quiet();
    let (sim, auth, _) = start(config.clone()).await;
    let redirect = &config.redirect_uris[0];
    let url = auth.authorization_url(redirect, "st@te/1");
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The consent page posts back its own form; Allow is the approving button.
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("action".into(), "allow".into()));
    let answer = consent.post(url.as_str()).form(&form).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
    let location = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "st@te/1");

    let first = auth.exchange_code(&query["code"]).await.unwrap();
    let refresh1 = first.refresh_token.clone().unwrap();
    let second = auth.refresh(&refresh1).await.unwrap();
    let refresh2 = second.refresh_token.clone().unwrap();
    assert_ne!(refresh1, refresh2);
    let reused = auth.refresh(&refresh1).await.unwrap_err();
    assert!(
        matches!(reused, ApiError::Auth(AuthError::InvalidGrant { .. })),
        "{reused:?}"
    );
    assert_eq!(reused.recovery(), Recovery::Operator);
    assert!(auth.refresh(&refresh2).await.is_ok());
    // Secrets went in the form body only, never as Basic auth.
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.auth_scheme.as_deref() != Some("Basic"))
    );
    sim.shutdown().await;
}

/// Grants consent on the simulated consent page and exchanges the code.
async fn consent(auth: &AuthClient, redirect: &str) -> boxidr_boxapi::TokenSet {
    let url = auth.authorization_url(redirect, "s");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("action".into(), "allow".into()));
    let answer = browser.post(url.as_str()).form(&form).send().await.unwrap();
    let location = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    auth.exchange_code(&code).await.unwrap()
}

/// An access token that lives shorter than the 60 s renewal margin is still used for most of
/// its life: renewed once per lifetime (after three quarters of it), not on every call, which
/// would spend (rotate) the refresh token per API call.
#[tokio::test]
async fn short_lived_access_token_is_renewed_once_per_lifetime() {
    let config = SimConfig {
        access_token_ttl: Duration::from_secs(4),
        ..quiet()
    };
    let (sim, auth, _) = start(config.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store =
        boxidr_store::Store::open(boxidr_store::StoreOptions::new(dir.path().join("s.redb")))
            .await
            .unwrap();
    let manager = TokenManager::load(auth.clone(), Grant::AuthorizationCode, store.clone())
        .await
        .unwrap();
    manager
        .install(consent(&auth, &config.redirect_uris[0]).await)
        .await
        .unwrap();
    // After the install: the token's life is counted from no later than this.
    let installed = std::time::Instant::now();
    let refreshes = || {
        sim.token_outcomes()
            .iter()
            .filter(|o| *o == "refreshed")
            .count()
    };
    // The first 2.5 s of a 4 s token (renewal is due at 3 s): one token for every call.
    let first = manager.access_token().await.unwrap();
    let mut calls = 1;
    while installed.elapsed() < Duration::from_millis(2500) {
        assert_eq!(manager.access_token().await.unwrap(), first);
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refreshes(), 0, "{calls} calls within the token's life");
    // Past three quarters of its life: renewed once, and the new token serves the next calls.
    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(installed.elapsed())).await;
    let second = manager.access_token().await.unwrap();
    assert_ne!(second, first);
    for _ in 0..10 {
        assert_eq!(manager.access_token().await.unwrap(), second);
    }
    assert_eq!(refreshes(), 1);
    store.close().await.unwrap();
    sim.shutdown().await;
}

/// Client credentials give a token without a refresh token; a wrong enterprise is refused.
#[tokio::test]
async fn client_credentials() {
    let config = quiet();
    let (sim, auth, _) = start(config.clone()).await;
    let tokens = auth
        .client_credentials(&config.enterprise_id)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_none());
    assert!(!tokens.access_token.is_empty());
    let err = auth.client_credentials("999").await.unwrap_err();
    assert!(
        matches!(err, ApiError::Auth(AuthError::InvalidGrant { .. })),
        "{err:?}"
    );
    sim.shutdown().await;
}

/// Paging admin_logs_streaming from the start covers every generated event, and the cursors
/// (above 2^53, sent in integer form) are used verbatim.
#[tokio::test]
async fn paging_covers_every_event_with_integer_cursors() {
    let config = SimConfig {
        position_form: box_sim::PositionForm::Integer,
        ..quiet()
    };
    let (sim, auth, events) = start(config.clone()).await;
    let token = auth
        .client_credentials(&config.enterprise_id)
        .await
        .unwrap()
        .access_token;
    let mut seen = BTreeSet::new();
    let mut from = From::Start;
    for _ in 0..100 {
        let page = events
            .fetch(
                &token,
                &request(StreamType::AdminLogsStreaming, from.clone(), 7),
            )
            .await
            .unwrap();
        seen.extend(page.events.iter().map(|e| e.id().to_string()));
        let caught_up = page.entry_count < 7;
        if let Some(next) = page.next_position {
            assert!(next.as_str().parse::<u64>().unwrap() > 1 << 53);
            from = From::At(next);
        }
        if caught_up {
            break;
        }
    }
    let generated: BTreeSet<String> = sim.generated_ids().into_iter().collect();
    assert_eq!(seen, generated);
    sim.shutdown().await;
}

/// Faults come back as the right class: 429 with its Retry-After, 5xx retryable, malformed
/// and oversized bodies retryable errors (never a panic), a revoked token asks for a refresh.
#[tokio::test]
async fn faults_are_classified() {
    let config = quiet();
    let (sim, auth, _) = start(config.clone()).await;
    let client = http::client(Duration::from_secs(5)).unwrap();
    let small = EventsClient::new(client, &Url::parse(&sim.api_base()).unwrap(), 64 * 1024);
    let token = auth
        .client_credentials(&config.enterprise_id)
        .await
        .unwrap()
        .access_token;
    let req = request(StreamType::AdminLogs, From::Start, 10);
    let faults = sim.faults();

    faults
        .add_json(&json!({"fault":"rate_limit","retry_after":7,"endpoint":"events","count":1}))
        .unwrap();
    let err = small.fetch(&token, &req).await.unwrap_err();
    assert_eq!(
        err.recovery(),
        Recovery::Retry {
            after: Some(Duration::from_secs(7))
        },
        "{err:?}"
    );

    faults.add_json(&json!({"fault":"server_error","status":503,"body":"html","endpoint":"events","count":1})).unwrap();
    let err = small.fetch(&token, &req).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Server { status: 503, .. }),
        "{err:?}"
    );

    faults
        .add_json(&json!({"fault":"malformed_json","endpoint":"events","count":1}))
        .unwrap();
    assert!(matches!(
        small.fetch(&token, &req).await.unwrap_err(),
        ApiError::BadBody { .. }
    ));

    faults
        .add_json(&json!({"fault":"truncated_body","endpoint":"events","count":1}))
        .unwrap();
    let err = small.fetch(&token, &req).await.unwrap_err();
    assert_eq!(err.recovery(), Recovery::Retry { after: None }, "{err:?}");

    faults
        .add_json(&json!({"fault":"oversized_body","bytes":1000000,"endpoint":"events","count":1}))
        .unwrap();
    assert!(matches!(
        small.fetch(&token, &req).await.unwrap_err(),
        ApiError::TooLarge { .. }
    ));

    faults
        .add_json(&json!({"fault":"invalid_stream_position","endpoint":"events","count":1}))
        .unwrap();
    // The sim declares a real cursor unknown (not `0`): read one page to get one.
    let next = small
        .fetch(&token, &req)
        .await
        .unwrap()
        .next_position
        .unwrap();
    let at = request(StreamType::AdminLogs, From::At(next), 10);
    let err = small.fetch(&token, &at).await.unwrap_err();
    assert!(
        matches!(err, ApiError::InvalidStreamPosition { .. }),
        "{err:?}"
    );

    // After all of that, the same client still reads a good page.
    assert!(small.fetch(&token, &req).await.is_ok());

    sim.revoke_all_tokens();
    let err = small.fetch(&token, &req).await.unwrap_err();
    assert_eq!(err.recovery(), Recovery::Refresh, "{err:?}");
    sim.shutdown().await;
}

/// A token used for revocation is dead afterwards, and the simulator saw the revoke call.
#[tokio::test]
async fn revoke() {
    let config = quiet();
    let (sim, auth, events) = start(config.clone()).await;
    let token = auth
        .client_credentials(&config.enterprise_id)
        .await
        .unwrap()
        .access_token;
    auth.revoke(&token).await.unwrap();
    assert_eq!(sim.revocations().len(), 1);
    let err = events
        .fetch(&token, &request(StreamType::AdminLogs, From::Now, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized), "{err:?}");
    sim.shutdown().await;
}
