//! Log Search ingest: HTTP POST (§2.4) and token TCP/TLS (§2.3).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use idr_sim::{
    FaultKind, FaultSpec, Ingest, RejectReason, SimConfig, Surface, UnknownTokenBehaviour,
};
use tokio::io::AsyncWriteExt;

fn url(sim: &idr_sim::SimHandle, token: &str) -> String {
    format!("{}/v1/noformat/{token}", sim.logsearch_base())
}

/// A known token gets 204 with the documented Cache-Control, and the body is one entry.
#[tokio::test]
async fn known_token_204_with_cache_control() {
    let sim = start(config()).await;
    let body = r#"{"boxidr_kind":"admin_activity","event_id":"403702014","event_type":"CHANGE_ADMIN_ROLE"}"#;
    let resp = http()
        .post(url(&sim, TOKEN))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    let recs = sim.logsearch_records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].text, body);
    assert_eq!(recs[0].token, TOKEN);
    assert_eq!(recs[0].box_event_id.as_deref(), Some("403702014"));
    assert_eq!(
        recs[0].json.as_ref().unwrap()["event_type"],
        "CHANGE_ADMIN_ROLE"
    );
    assert_eq!(recs[0].via, Ingest::Http);
    sim.shutdown().await;
}

/// A multi-line body is one entry by default and several with `split_lines`.
#[tokio::test]
async fn multi_line_body_modes() {
    let body = "{\"event_id\":\"1\"}\n{\"event_id\":\"2\"}\r\n";
    let sim = start(config()).await;
    http()
        .post(url(&sim, TOKEN))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(sim.logsearch_records().len(), 1);
    assert_eq!(
        sim.delivery_counts().logsearch.delivered(),
        0,
        "NDJSON body is not one JSON object"
    );
    sim.shutdown().await;

    let sim = start(SimConfig {
        split_lines: true,
        ..config()
    })
    .await;
    http()
        .post(url(&sim, TOKEN))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sim.delivery_counts()
            .logsearch
            .ids()
            .into_iter()
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
    sim.shutdown().await;
}

/// Unknown token: 204-and-drop (recorded in the side channel) or a configured 4xx.
#[tokio::test]
async fn unknown_token_both_behaviours() {
    let other = "11111111-2222-4333-8444-555555555555";
    let sim = start(config()).await;
    let resp = http()
        .post(url(&sim, other))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(sim.logsearch_records().is_empty());
    assert_eq!(
        sim.rejected()[0].reason,
        RejectReason::UnknownToken(other.into())
    );
    sim.shutdown().await;

    let sim = start(SimConfig {
        unknown_token: UnknownTokenBehaviour::Reject(404),
        ..config()
    })
    .await;
    let resp = http()
        .post(url(&sim, other))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(sim.logsearch_records().is_empty());
    sim.shutdown().await;
}

/// Bodies over the cap get 413 and are not recorded; at the cap they pass.
#[tokio::test]
async fn body_cap_413() {
    let sim = start(SimConfig {
        body_limit: 1000,
        ..config()
    })
    .await;
    let resp = http()
        .post(url(&sim, TOKEN))
        .body("x".repeat(1001))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let resp = http()
        .post(url(&sim, TOKEN))
        .body("x".repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(sim.logsearch_records().len(), 1);
    sim.shutdown().await;
}

/// Without Content-Length (chunked), the cap is enforced while reading.
#[tokio::test]
async fn body_cap_chunked() {
    let sim = start(SimConfig {
        body_limit: 1000,
        ..config()
    })
    .await;
    let addr = sim
        .logsearch_base()
        .trim_start_matches("http://")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let chunk = "x".repeat(600);
    let req = format!(
        "POST /v1/noformat/{TOKEN} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut back = vec![0u8; 1024];
    let n = tokio::io::AsyncReadExt::read(&mut s, &mut back)
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&back[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(sim.logsearch_records().is_empty());
    sim.shutdown().await;
}

/// 429 carries Retry-After; a count-limited fault hits exactly N requests, then clears.
#[tokio::test]
async fn status_faults_count_limited() {
    let sim = start(config()).await;
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Logsearch,
                FaultKind::Status {
                    status: 429,
                    retry_after_secs: Some(7),
                },
            )
            .times(2),
        )
        .unwrap();
    for _ in 0..2 {
        let resp = http()
            .post(url(&sim, TOKEN))
            .body("{\"event_id\":\"r\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
    }
    assert!(
        sim.logsearch_records().is_empty(),
        "a refused request is not recorded"
    );
    let resp = http()
        .post(url(&sim, TOKEN))
        .body("{\"event_id\":\"r\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for code in [500u16, 502, 503] {
        sim.faults()
            .set(FaultSpec::new(
                Surface::Logsearch,
                FaultKind::Status {
                    status: code,
                    retry_after_secs: None,
                },
            ))
            .unwrap();
        let resp = http()
            .post(url(&sim, TOKEN))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code);
        assert!(resp.headers().get("retry-after").is_none());
    }
    sim.faults().clear(Surface::Logsearch);
    assert_eq!(
        http()
            .post(url(&sim, TOKEN))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(sim.logsearch_records().len(), 2);
    sim.shutdown().await;
}

/// The delay fault slows responses; a duration-limited fault ends on its own.
#[tokio::test]
async fn delay_fault_with_duration() {
    let sim = start(config()).await;
    sim.faults()
        .set(
            FaultSpec::new(Surface::Logsearch, FaultKind::Delay { ms: 300 })
                .for_duration(Duration::from_millis(500)),
        )
        .unwrap();
    let t = std::time::Instant::now();
    assert_eq!(
        http()
            .post(url(&sim, TOKEN))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let t = std::time::Instant::now();
    http()
        .post(url(&sim, TOKEN))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(250));
    sim.shutdown().await;
}

/// Token TCP: the token and one space are stripped; unknown/missing tokens are dropped silently.
#[tokio::test]
async fn token_tcp_lines() {
    let sim = start_plain().await;
    let other = "11111111-2222-4333-8444-555555555555";
    let payload = format!(
        "{TOKEN} {{\"event_id\":\"403702015\",\"event_type\":\"DOWNLOAD\"}}\n{other} dropped\nno token here\n{TOKEN}\n{TOKEN}  two spaces\n"
    );
    let back = send_plain(sim.token_tcp_addr(), &[payload.as_bytes()]).await;
    assert!(back.is_empty());
    let recs = sim.logsearch_records();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0].text,
        r#"{"event_id":"403702015","event_type":"DOWNLOAD"}"#
    );
    assert_eq!(recs[0].via, Ingest::TokenTcp);
    assert_eq!(recs[1].text, " two spaces");
    let reasons: Vec<RejectReason> = sim.rejected().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            RejectReason::UnknownToken(other.into()),
            RejectReason::MissingToken,
            RejectReason::EmptyMessage
        ]
    );
    assert_eq!(sim.delivery_counts().token.count("403702015"), 1);
    sim.shutdown().await;
}

/// Token input over TLS with the test CA.
#[tokio::test]
async fn token_tls() {
    let sim = start(config()).await;
    let mut s = tls_connect(sim.token_tcp_addr(), &sim.ca_pem())
        .await
        .unwrap();
    s.write_all(format!("{TOKEN} hello over tls\n").as_bytes())
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(
        sim.wait_for(Duration::from_secs(5), |h| h.logsearch_records().len() == 1)
            .await
    );
    assert_eq!(sim.logsearch_records()[0].text, "hello over tls");
    sim.shutdown().await;
}

/// HTTPS ingest with a ring-only preconfigured rustls client trusting the test CA.
#[tokio::test]
async fn https_ingest() {
    let sim = start(SimConfig {
        logsearch_tls: true,
        ..config()
    })
    .await;
    assert!(sim.logsearch_base().starts_with("https://"));
    let tls = (*sim.client_tls_config().unwrap()).clone();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let resp = client
        .post(url(&sim, TOKEN))
        .body("{\"event_id\":\"s\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(sim.delivery_counts().logsearch.count("s"), 1);
    sim.shutdown().await;
}
