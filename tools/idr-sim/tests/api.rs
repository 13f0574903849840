//! Platform API (§3): key validation, log listing, asynchronous Log Search queries.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use idr_sim::{FaultKind, FaultSpec, SimConfig, Surface};
use serde_json::Value;

/// /validate answers 200 Authorized for the key and 401 Unauthorized otherwise.
#[tokio::test]
async fn validate_key() {
    let sim = start(config()).await;
    let url = format!("{}/validate", sim.api_base());
    let resp = http()
        .get(&url)
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        serde_json::json!({"message":"Authorized"})
    );
    for key in [Some("wrong"), Some(""), None] {
        let mut req = http().get(&url);
        if let Some(k) = key {
            req = req.header("X-Api-Key", k);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{key:?}");
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            serde_json::json!({"message":"Unauthorized"})
        );
    }
    // header name is case-insensitive, as in HTTP
    let resp = http()
        .get(&url)
        .header("x-api-key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

/// Every API route needs the key, including the query and its poll URL.
#[tokio::test]
async fn every_route_needs_the_key() {
    let sim = start(config()).await;
    let base = sim.api_base();
    let uef = sim.uef_log_id();
    for path in [
        "/log_search/management/logs".to_owned(),
        format!("/log_search/query/logs/{uef}?from=0&to=1"),
        "/log_search/query/whatever".to_owned(),
        "/nope".to_owned(),
    ] {
        let resp = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    sim.shutdown().await;
}

/// The logs listing holds the UEF log and one log per token, with the token.
#[tokio::test]
async fn logs_listing() {
    let second = "11111111-2222-4333-8444-555555555555";
    let sim = start(SimConfig {
        tokens: vec![TOKEN.into(), second.into()],
        ..config()
    })
    .await;
    let body: Value = http()
        .get(format!("{}/log_search/management/logs", sim.api_base()))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let logs = body["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["name"], "Box UEF");
    assert_eq!(logs[0]["id"], sim.uef_log_id());
    assert_eq!(logs[1]["tokens"][0], TOKEN);
    assert_eq!(logs[1]["id"], sim.log_id_for_token(TOKEN).unwrap());
    assert_eq!(logs[2]["tokens"][0], second);
    sim.shutdown().await;
}

/// A canary sent by HTTP and by UEF is found by a where("…") query: 202 + self link, poll
/// 202 with rising progress, then 200 with events whose message is the record text.
#[tokio::test]
async fn canary_query_flow() {
    let sim = start(SimConfig {
        uef_tls: false,
        ..config()
    })
    .await;
    let canary = "boxidr-canary-7c1d0000";
    let raw = format!(r#"{{"event_id":"c1","note":"{canary}"}}"#);
    http()
        .post(format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base()))
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    http()
        .post(format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base()))
        .body("{\"event_id\":\"other\"}")
        .send()
        .await
        .unwrap();
    let mut uef: Value = serde_json::from_str(EXAMPLE_UEF).unwrap();
    uef["custom_data"]["canary"] = Value::from(canary);
    send_plain(sim.uef_addr(), &[format!("{uef}\n").as_bytes()]).await;
    assert_eq!(sim.uef_records().len(), 1);

    let logs = [sim.uef_log_id(), sim.log_id_for_token(TOKEN).unwrap()];
    let url = format!(
        "{}/log_search/query/logs/{}",
        sim.api_base(),
        logs.join(":")
    );
    let (from, to) = (now_ms() - 60_000, now_ms() + 60_000);
    let resp = http()
        .get(&url)
        .header("X-Api-Key", API_KEY)
        .query(&[
            ("query", format!("where(\"{canary}\")")),
            ("from", from.to_string()),
            ("to", to.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["progress"], 0);
    assert_eq!(first["links"][0]["rel"], "self");
    let href = first["links"][0]["href"].as_str().unwrap().to_owned();
    assert!(
        href.starts_with(&format!("{}/log_search/query/logs/", sim.api_base())),
        "{href}"
    );
    let poll = || http().get(&href).header("X-Api-Key", API_KEY).send();
    let r1 = poll().await.unwrap();
    assert_eq!(r1.status(), 202);
    let p1: Value = r1.json().await.unwrap();
    assert!(p1["progress"].as_u64().unwrap() > 0 && p1["progress"].as_u64().unwrap() < 100);
    let r2 = poll().await.unwrap();
    assert_eq!(r2.status(), 200);
    let done: Value = r2.json().await.unwrap();
    let events = done["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{done}");
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&raw.as_str()));
    let uef_msg: Value =
        serde_json::from_str(messages.iter().find(|m| m.contains("INGRESS")).unwrap()).unwrap();
    assert_eq!(uef_msg, uef);
    for e in events {
        assert!(e["timestamp"].as_u64().unwrap() >= from);
        assert_eq!(e["labels"], serde_json::json!([]));
        assert!(e["sequence_number"].is_u64());
    }
    assert!(done["links"].as_array().unwrap().is_empty());

    // a key=value query and an empty query
    let body = query(&sim, &logs, r#"where(event_id="other")"#, from, to).await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    let body = query(&sim, &logs, "", from, to).await;
    assert_eq!(body["events"].as_array().unwrap().len(), 3);
    // time window excludes everything when it is in the past
    let body = query(&sim, &logs, "", 0, 1000).await;
    assert!(body["events"].as_array().unwrap().is_empty());
    sim.shutdown().await;
}

/// Records are invisible to queries until `ingestion_delay` after receipt, then visible.
#[tokio::test]
async fn ingestion_delay_respected() {
    let sim = start(SimConfig {
        ingestion_delay: Duration::from_millis(400),
        ..config()
    })
    .await;
    http()
        .post(format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base()))
        .body("late-canary")
        .send()
        .await
        .unwrap();
    let logs = [sim.log_id_for_token(TOKEN).unwrap()];
    let (from, to) = (now_ms() - 60_000, now_ms() + 60_000);
    let early = query(&sim, &logs, "where(late-canary)", from, to).await;
    assert!(
        early["events"].as_array().unwrap().is_empty(),
        "visible too early: {early}"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let later = query(&sim, &logs, "where(late-canary)", from, to).await;
    assert_eq!(later["events"][0]["message"], "late-canary");
    sim.shutdown().await;
}

/// Missing or invalid from/to, bad per_page, unsupported LEQL and unknown logs are refused.
#[tokio::test]
async fn query_parameter_errors() {
    let sim = start(config()).await;
    let log = sim.log_id_for_token(TOKEN).unwrap();
    let url = format!("{}/log_search/query/logs/{log}", sim.api_base());
    for (params, want) in [
        (vec![("query", "where(x)")], 400),
        (vec![("from", "1")], 400),
        (vec![("to", "1")], 400),
        (vec![("from", "abc"), ("to", "1")], 400),
        (vec![("from", "5"), ("to", "1")], 400),
        (vec![("from", "0"), ("to", "1"), ("per_page", "0")], 400),
        (
            vec![("from", "0"), ("to", "1"), ("query", "where(/re/)")],
            400,
        ),
        (vec![("from", "0"), ("to", "1")], 202),
        (vec![("time_range", "Last 30 Days")], 202),
    ] {
        let resp = http()
            .get(&url)
            .header("X-Api-Key", API_KEY)
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{params:?}");
        if want == 400 {
            assert!(resp.json::<Value>().await.unwrap()["message"].is_string());
        }
    }
    let resp = http()
        .get(format!(
            "{}/log_search/query/logs/not-a-log?from=0&to=1",
            sim.api_base()
        ))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    sim.shutdown().await;
}

/// Results beyond per_page are linked as rel=Next pages, in receipt order, without loss.
#[tokio::test]
async fn pagination() {
    let sim = start(SimConfig {
        query_polls_until_ready: 0,
        ..config()
    })
    .await;
    for i in 0..5 {
        http()
            .post(format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base()))
            .body(format!("entry-{i}"))
            .send()
            .await
            .unwrap();
    }
    let log = sim.log_id_for_token(TOKEN).unwrap();
    let resp = http()
        .get(format!("{}/log_search/query/logs/{log}", sim.api_base()))
        .header("X-Api-Key", API_KEY)
        .query(&[
            ("from", "0".to_owned()),
            ("to", (now_ms() + 1000).to_string()),
            ("per_page", "2".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    let mut body: Value = resp.json().await.unwrap();
    let mut href = body["links"][0]["href"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    loop {
        let resp = http()
            .get(&href)
            .header("X-Api-Key", API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        body = resp.json().await.unwrap();
        for e in body["events"].as_array().unwrap() {
            seen.push(e["message"].as_str().unwrap().to_owned());
        }
        match body["links"].as_array().unwrap().first() {
            Some(l) => {
                assert_eq!(l["rel"], "Next");
                href = l["href"].as_str().unwrap().to_owned();
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("entry-{i}")).collect::<Vec<_>>()
    );
    sim.shutdown().await;
}

/// The API can answer 429 with Retry-After while /_sim keeps working.
#[tokio::test]
async fn api_rate_limit_fault() {
    let sim = start(config()).await;
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Api,
                FaultKind::Status {
                    status: 429,
                    retry_after_secs: Some(2),
                },
            )
            .times(1),
        )
        .unwrap();
    let stats = http()
        .get(format!("{}/_sim/stats", sim.api_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200, "control surface is exempt");
    let resp = http()
        .get(format!("{}/validate", sim.api_base()))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let resp = http()
        .get(format!("{}/validate", sim.api_base()))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

/// Non-loopback listen addresses are refused.
#[tokio::test]
async fn refuses_non_loopback() {
    let listen = idr_sim::Listen {
        api: "0.0.0.0:0".parse().unwrap(),
        ..idr_sim::Listen::default()
    };
    let err = idr_sim::IdrSim::start(config(), listen).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// Over TLS the API is reachable with the test CA (ring-only client).
#[tokio::test]
async fn https_api() {
    let sim = start(SimConfig {
        api_tls: true,
        ..config()
    })
    .await;
    let tls = (*sim.client_tls_config().unwrap()).clone();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/validate", sim.api_base()))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}
