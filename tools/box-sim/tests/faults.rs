//! Every fault mode, seen from the client side, plus the `/_sim/` control surface.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use box_sim::{
    Endpoint, ErrorBody, Fault, FaultKind, OutageMode, PositionForm, SimConfig, StreamType,
    TruncateMode,
};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STREAM: (&str, &str) = ("stream_type", "admin_logs_streaming");

/// 429 carries `retry-after` and the rate-limit body; count-limited faults end after N requests
/// and only hit the endpoint they are scoped to.
#[tokio::test]
async fn rate_limit_count_and_scope() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::RateLimit { retry_after: 7 })
            .on(Endpoint::Events)
            .times(2),
    );
    let (status, _, _) = api_get(&sim, &token, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::OK, "users not affected");
    for _ in 0..2 {
        let (status, headers, body) = api_get(&sim, &token, "/events", &[STREAM]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "7");
        let body: Value = serde_json::from_str(&body).unwrap();
        let want = sample("error-429-rate-limit.json");
        for k in ["type", "status", "code", "message", "help_url"] {
            assert_eq!(body[k], want[k], "{k}");
        }
        assert!(body["request_id"].is_string());
    }
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
    let faulted = sim
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("rate_limit"))
        .count();
    assert_eq!(faulted, 2);
}

/// A duration-limited fault stops by itself.
#[tokio::test]
async fn duration_limited_fault_expires() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::ServerError {
            status: 503,
            body: ErrorBody::Json,
            retry_after: Some(1),
        })
        .for_duration(Duration::from_millis(300)),
    );
    let (status, headers, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
}

/// 5xx bursts come with JSON, empty, or HTML bodies.
#[tokio::test]
async fn server_error_bodies() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    for (code, body) in [
        (500, ErrorBody::Json),
        (502, ErrorBody::Empty),
        (503, ErrorBody::Html),
    ] {
        sim.faults().add(
            Fault::new(FaultKind::ServerError {
                status: code,
                body,
                retry_after: None,
            })
            .times(1),
        );
        let (status, headers, text) = api_get(&sim, &token, "/events", &[STREAM]).await;
        assert_eq!(status.as_u16(), code);
        match body {
            ErrorBody::Json => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["code"], "internal_server_error");
                assert_eq!(v["status"], 500);
            }
            ErrorBody::Empty => assert!(text.is_empty()),
            ErrorBody::Html => {
                assert!(text.starts_with("<html>"));
                assert!(
                    headers["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("text/html")
                );
                assert!(serde_json::from_str::<Value>(&text).is_err());
            }
        }
    }
}

/// Slow: the answer arrives only after the delay.
#[tokio::test]
async fn slow_responses() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::Slow { delay_ms: 400 })
            .on(Endpoint::Users)
            .times(1),
    );
    let t = Instant::now();
    let (status, _, _) = api_get(&sim, &token, "/users/me", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(400));
}

/// Hang: the connection is accepted and never answered, so a client with a short timeout times out.
#[tokio::test]
async fn hang_times_out() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::Outage {
            mode: OutageMode::Hang,
        })
        .on(Endpoint::Events),
    );
    common::install_crypto_provider();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = c
        .get(format!("{}/events", sim.api_base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    sim.faults().clear();
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
    sim.shutdown().await; // must not wait for the hanging connection
}

/// Refuse: the connection closes without any response.
#[tokio::test]
async fn refuse_closes_connection() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::Outage {
            mode: OutageMode::Refuse,
        })
        .times(1),
    );
    let err = client()
        .get(format!("{}/events", sim.api_base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout());
    assert!(err.status().is_none(), "no HTTP status at all: {err}");
    assert_eq!(sim.requests().last().unwrap().status, None);
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
}

/// Malformed JSON: 200 whose body does not parse.
#[tokio::test]
async fn malformed_json_body() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults()
        .add(Fault::new(FaultKind::MalformedJson).times(1));
    let (status, _, text) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert!(
        sim.handed_out_ids(StreamType::AdminLogsStreaming)
            .is_empty()
    );
}

/// Truncated bodies (short Content-Length and cut chunked stream) fail while reading the body.
#[tokio::test]
async fn truncated_bodies_fail_to_read() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    for mode in [TruncateMode::ContentLength, TruncateMode::Chunked] {
        sim.faults()
            .add(Fault::new(FaultKind::TruncatedBody { mode }).times(1));
        let resp = client()
            .get(format!("{}/events", sim.api_base()))
            .bearer_auth(&token)
            .query(&[STREAM])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let declared = resp.headers().get("content-length").cloned();
        assert_eq!(
            declared.is_some(),
            mode == TruncateMode::ContentLength,
            "{mode:?}"
        );
        assert!(
            resp.bytes().await.is_err(),
            "{mode:?}: body must not complete"
        );
    }
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
}

/// Oversized: a valid JSON body of the requested size with an exact Content-Length.
#[tokio::test]
async fn oversized_body() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::OversizedBody { bytes: 3_000_000 })
            .on(Endpoint::Events)
            .times(1),
    );
    let resp = client()
        .get(format!("{}/events", sim.api_base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let declared: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    assert!(
        body.len() > 2_900_000 && body.len() <= 3_000_000,
        "{}",
        body.len()
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["entries"].as_array().unwrap().len() > 100);
}

/// Legacy quirk: an empty page whose position is "0" (or bare 0 in integer mode); the real
/// cursor still works afterwards.
#[tokio::test]
async fn legacy_zero_position() {
    for form in [PositionForm::String, PositionForm::Integer] {
        let sim = start(SimConfig {
            position_form: form,
            ..config()
        })
        .await;
        let token = ccg_token(&sim).await;
        let first = events_page(&sim, &token, &[STREAM, ("limit", "5")]).await;
        let pos = position(&first);
        sim.faults()
            .add(Fault::new(FaultKind::LegacyZeroPosition).times(1));
        let (_, _, text) = api_get(
            &sim,
            &token,
            "/events",
            &[STREAM, ("stream_position", &pos)],
        )
        .await;
        let want = match form {
            PositionForm::String => "\"next_stream_position\":\"0\"",
            PositionForm::Integer => "\"next_stream_position\":0,",
        };
        assert!(text.contains(want), "{text}");
        assert!(text.contains("\"entries\":[]"));
        let next = events_page(
            &sim,
            &token,
            &[STREAM, ("stream_position", &pos), ("limit", "5")],
        )
        .await;
        assert_eq!(ids(&next).len(), 5);
        assert_ne!(ids(&next), ids(&first));
    }
}

/// A valid cursor declared unknown gets 400 "Invalid stream position", then works again.
#[tokio::test]
async fn cursor_declared_unknown() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    let pos = position(&events_page(&sim, &token, &[STREAM, ("limit", "5")]).await);
    sim.faults()
        .add(Fault::new(FaultKind::InvalidStreamPosition).times(1));
    let (status, _, body) = api_get(
        &sim,
        &token,
        "/events",
        &[STREAM, ("stream_position", &pos)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Invalid stream position"));
    let (status, _, _) = api_get(
        &sim,
        &token,
        "/events",
        &[STREAM, ("stream_position", &pos)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Short pages: fewer entries than `limit` mid-stream, yet paging on still covers every event.
#[tokio::test]
async fn short_pages_mid_stream() {
    let sim = start(SimConfig {
        backlog: 300,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::ShortPages {
            max_entries: Some(3),
        })
        .times(5),
    );
    let page = events_page(&sim, &token, &[STREAM, ("limit", "100")]).await;
    assert_eq!(ids(&page).len(), 3);
    let (rest, _) = drain(
        &sim,
        &token,
        "admin_logs_streaming",
        &position(&page),
        "100",
        &[],
    )
    .await;
    let mut all = ids(&page);
    all.extend(rest);
    assert_eq!(all, sim.generated_ids());
}

/// Duplicates fault raises the re-delivery rate only while active.
#[tokio::test]
async fn duplicates_fault() {
    let sim = start(SimConfig {
        backlog: 300,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let (clean, _) = drain(&sim, &token, "admin_logs_streaming", "0", "100", &[]).await;
    assert_eq!(clean, sim.generated_ids(), "no duplicates by default");
    sim.faults()
        .add(Fault::new(FaultKind::Duplicates { rate: 0.5 }));
    let (dups, _) = drain(&sim, &token, "admin_logs_streaming", "0", "100", &[]).await;
    assert!(dups.len() > clean.len() + 50);
}

/// Dropped token response: the refresh token is rotated server-side but the client gets no 200
/// (the connection closes); retrying with the old refresh token then fails — the real hazard.
#[tokio::test]
async fn drop_token_response_after_rotation() {
    let sim = start(config()).await;
    let (_, rt) = user_tokens(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::DropTokenResponse)
            .on(Endpoint::Token)
            .times(1),
    );
    let c = sim.config().clone();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", &c.client_id),
        ("client_secret", &c.client_secret),
    ];
    let err = client()
        .post(format!("{}/oauth2/token", sim.token_base()))
        .form(&form)
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "{err}");
    assert_eq!(
        sim.valid_refresh_tokens(),
        1,
        "the new pair exists server-side"
    );
    let (status, body) = token_request(&sim, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_description"], "Refresh token has expired");
}

/// A fault scoped to the token endpoint leaves the API alone.
#[tokio::test]
async fn token_scoped_fault() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.faults().add(
        Fault::new(FaultKind::ServerError {
            status: 500,
            body: ErrorBody::Json,
            retry_after: None,
        })
        .on(Endpoint::Token),
    );
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK);
    let c = sim.config();
    let (status, _) = token_request(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// Control surface: faults via JSON, stats, clear, revoke-all, events injection; bad JSON,
/// unknown fault names and out-of-range numbers are 400 with a message, and the server keeps
/// serving afterwards.
#[tokio::test]
async fn control_surface() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    let base = format!("http://{}", sim.addr());
    let c = client();
    let post = |path: &str, body: String| {
        c.post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (bad, needle) in [
        ("{not json".to_owned(), "not valid JSON"),
        (json!({"fault": "meteor"}).to_string(), "unknown variant"),
        (
            json!({"fault": "rate_limit", "retry_after": 10_000_000}).to_string(),
            "retry_after",
        ),
        (
            json!({"fault": "duplicates", "rate": -1}).to_string(),
            "rate",
        ),
        (
            json!({"fault": "slow", "delay_ms": 1, "endpoint": "nowhere"}).to_string(),
            "endpoint",
        ),
        (
            json!([{"fault": "malformed_json"}, {"fault": "nope"}]).to_string(),
            "unknown variant",
        ),
    ] {
        let resp = post("/_sim/faults", bad.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains(needle), "{bad}: {v}");
    }
    assert!(sim.faults().list().is_empty(), "nothing half-added");
    let resp = post(
        "/_sim/faults",
        json!({"fault": "rate_limit", "retry_after": 3, "endpoint": "events", "count": 1})
            .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    post(
        "/_sim/faults",
        json!({"fault": "malformed_json"}).to_string(),
    )
    .await
    .unwrap();
    let listed: Value = c
        .get(format!("{base}/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["fault"], "malformed_json");
    let cleared: Value = post("/_sim/faults/clear", String::new())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["cleared"], 1);
    let added: Value = post(
        "/_sim/events",
        sample("event-02-failed-login.json").to_string(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(added["added"], 1);
    let stats: Value = c
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["events_generated"], 51);
    assert_eq!(stats["valid_access_tokens"], 1);
    let resp = c.get(format!("{base}/_sim/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .get(format!("{base}/_sim/revoke-all"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    // The API's own 405s name the allowed methods too (RFC 9110 §15.5.6).
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/2.0/events", "GET"),
        (reqwest::Method::GET, "/oauth2/token", "POST"),
        (reqwest::Method::PUT, "/api/oauth2/authorize", "GET, POST"),
    ] {
        let resp = c
            .request(method, format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(resp.headers()["allow"], allow, "{path}");
    }
    let revoked: Value = post("/_sim/revoke-all", String::new())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1);
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = ccg_token(&sim).await;
    let (status, _, _) = api_get(&sim, &token, "/events", &[STREAM]).await;
    assert_eq!(status, StatusCode::OK, "still serving");
    assert!(sim.requests().iter().all(|r| !r.path.starts_with("/_sim")));
}
