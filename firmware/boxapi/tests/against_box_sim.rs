//! The Box client against the Box simulator on loopback: grants, rotation, pages, faults.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

use std::collections::BTreeSet;
use std::time::Duration;

use box_sim::{BoxSim, SimConfig};
use boxidr_boxapi::events::From;
use boxidr_boxapi::{
    ApiError, AuthClient, AuthError, EventsClient, EventsRequest, Recovery, Secret, http,
};
use boxidr_model::StreamType;
use serde_json::json;
use url::Url;

async fn start(config: SimConfig) -> (box_sim::SimHandle, AuthClient, EventsClient) {
    let sim = BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = http::client(Duration::from_secs(5)).unwrap();
    let auth = AuthClient::new(
        client.clone(),
        Url::parse(&sim.authorize_url()).unwrap(),
        &Url::parse(&sim.token_base()).unwrap(),
        &config.client_id,
        Secret::new(config.client_secret.clone()),
    )
    .unwrap();
    let events = EventsClient::new(client, &Url::parse(&sim.api_base()).unwrap(), 1 << 20);
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
