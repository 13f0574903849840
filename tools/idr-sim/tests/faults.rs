//! Fault injection as a client observes it, the control surface, and delivery counting.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use idr_sim::{FaultKind, FaultSpec, RejectReason, Surface};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Immediate reset: the client's read fails with ECONNRESET and nothing is recorded.
#[tokio::test]
async fn reset_immediately() {
    let sim = start_plain().await;
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Reset { after_bytes: 0 }).times(1))
        .unwrap();
    let mut s = TcpStream::connect(sim.uef_addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    // the next connection is healthy
    assert!(
        send_plain(sim.uef_addr(), &[format!("{EXAMPLE_UEF}\n").as_bytes()])
            .await
            .is_empty()
    );
    assert_eq!(sim.uef_records().len(), 1);
    sim.shutdown().await;
}

/// Reset after N bytes: complete lines before the cut are kept, the cut line is dropped, and
/// the client sees the reset.
#[tokio::test]
async fn reset_after_bytes_mid_line() {
    let sim = start_plain().await;
    let l1 = format!("{}\n", uef_for("kept"));
    let l2 = format!("{}\n", uef_for("cut"));
    let n = l1.len() + 10;
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Uef,
                FaultKind::Reset {
                    after_bytes: n as u64,
                },
            )
            .times(1),
        )
        .unwrap();
    let mut s = TcpStream::connect(sim.uef_addr()).await.unwrap();
    s.write_all(format!("{l1}{l2}").as_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    let ids: Vec<_> = sim
        .uef_accepted()
        .into_iter()
        .map(|r| r.box_event_id.unwrap())
        .collect();
    assert_eq!(ids, ["kept"]);
    assert_eq!(
        sim.uef_rejected()[0].reason,
        RejectReason::IncompleteLine(10)
    );
    sim.shutdown().await;
}

/// Stall: the server stops reading, the client's writes block; on clear it resumes and the
/// buffered complete lines are accepted.
#[tokio::test]
async fn stall_blocks_writer_until_cleared() {
    let sim = start_plain().await;
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Stall))
        .unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_send_buffer_size(4096).unwrap();
    let mut s = sock.connect(sim.uef_addr()).await.unwrap();
    let mut chunk = String::new();
    while chunk.len() < 64 * 1024 {
        chunk.push_str(&uef_for("s"));
        chunk.push('\n');
    }
    let mut written = 0usize;
    let mut blocked = false;
    while written < 64 * 1024 * 1024 {
        match tokio::time::timeout(Duration::from_millis(300), s.write_all(chunk.as_bytes())).await
        {
            Ok(r) => {
                r.unwrap();
                written += chunk.len();
            }
            Err(_) => {
                blocked = true;
                break;
            }
        }
    }
    assert!(blocked, "writes never blocked after {written} bytes");
    assert!(
        sim.uef_records().is_empty(),
        "a stalled server reads nothing"
    );
    sim.faults().clear(Surface::Uef);
    assert!(
        sim.wait_for(Duration::from_secs(5), |h| !h.uef_records().is_empty())
            .await,
        "stall not released"
    );
    sim.shutdown().await;
}

/// Down: connections are refused and open ones are reset; after clear the same port serves again.
#[tokio::test]
async fn down_refuses_then_recovers() {
    let sim = start_plain().await;
    let mut open = TcpStream::connect(sim.uef_addr()).await.unwrap();
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Down))
        .unwrap();
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(r, Err(_) | Ok(0)), "open connection survived down");
    let refused = async {
        for _ in 0..100 {
            match TcpStream::connect(sim.uef_addr()).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        false
    };
    assert!(refused.await, "connect was not refused while down");
    sim.faults().clear_all();
    let back = async {
        for _ in 0..200 {
            if TcpStream::connect(sim.uef_addr()).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    };
    assert!(back.await, "listener did not come back");
    send_plain(sim.uef_addr(), &[format!("{EXAMPLE_UEF}\n").as_bytes()]).await;
    assert_eq!(sim.uef_records().len(), 1);
    sim.shutdown().await;
}

/// Half-close: the client reads EOF at once but its lines are still accepted.
#[tokio::test]
async fn half_close() {
    let sim = start_plain().await;
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::HalfClose).times(1))
        .unwrap();
    let mut s = TcpStream::connect(sim.uef_addr()).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "expected FIN from the server");
    s.write_all(format!("{EXAMPLE_UEF}\n").as_bytes())
        .await
        .unwrap();
    assert!(
        sim.wait_for(Duration::from_secs(2), |h| h.uef_records().len() == 1)
            .await
    );
    sim.shutdown().await;
}

/// Slow reader: 1.2 KB at 2 KB/s takes noticeably longer than without the fault.
#[tokio::test]
async fn slow_reader() {
    let sim = start_plain().await;
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Uef,
                FaultKind::SlowRead {
                    bytes_per_sec: 2000,
                },
            )
            .times(1),
        )
        .unwrap();
    let lines: String = (0..3)
        .map(|i| format!("{}\n", uef_for(&format!("slow{i}"))))
        .collect();
    assert!(lines.len() > 1000);
    let t = Instant::now();
    send_plain(sim.uef_addr(), &[lines.as_bytes()]).await;
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "too fast: {:?}",
        t.elapsed()
    );
    assert_eq!(sim.uef_records().len(), 3);
    sim.shutdown().await;
}

/// HTTP surfaces: accept-then-reset fails the request; stall times it out; both are one-shot.
#[tokio::test]
async fn http_connection_faults() {
    let sim = start(config()).await;
    let url = format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base());
    sim.faults()
        .set(FaultSpec::new(Surface::Logsearch, FaultKind::Reset { after_bytes: 0 }).times(1))
        .unwrap();
    assert!(http().post(&url).body("{}").send().await.is_err());
    assert_eq!(
        http().post(&url).body("{}").send().await.unwrap().status(),
        204
    );
    sim.faults()
        .set(FaultSpec::new(Surface::Logsearch, FaultKind::Stall).times(1))
        .unwrap();
    let err = http()
        .post(&url)
        .body("{}")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        http().post(&url).body("{}").send().await.unwrap().status(),
        204
    );
    sim.shutdown().await;
}

/// Control surface: bad input gets 400 with a message; a valid fault set over HTTP takes
/// effect, is listed, and is cleared; the server keeps serving throughout.
#[tokio::test]
async fn control_surface() {
    let sim = start(config()).await;
    let ctl = |p: &str| format!("{}/_sim/{p}", sim.api_base());
    let bad_bodies: [&str; 9] = [
        "not json",
        "[1,2]",
        r#"{"surface":"logsearch","kind":"explode"}"#,
        r#"{"surface":"mars","kind":"down"}"#,
        r#"{"surface":"logsearch","kind":"status","status":"five hundred"}"#,
        r#"{"surface":"logsearch","kind":"status","status":200}"#,
        r#"{"surface":"uef","kind":"status","status":500}"#,
        r#"{"surface":"api","kind":"down"}"#,
        r#"{"surface":"uef","kind":"stall","count":0}"#,
    ];
    for body in bad_bodies {
        let resp = http().post(ctl("faults")).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {v}"
        );
    }
    for (path, want) in [("faults/abc", 400u16), ("faults/999", 404)] {
        assert_eq!(
            http()
                .delete(ctl(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            want
        );
    }
    assert_eq!(
        http()
            .get(ctl("rejected?limit=x"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        http()
            .get(ctl("records/nowhere"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        http()
            .post(ctl("faults/clear"))
            .body("{\"surface\":7}")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(http().get(ctl("nope")).send().await.unwrap().status(), 404);
    assert!(sim.faults().list().is_empty(), "nothing set by bad input");

    let resp = http()
        .post(ctl("faults"))
        .json(&json!({"surface":"logsearch","kind":"status","status":503,"retry_after_secs":1,"count":5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let listed: Value = http()
        .get(ctl("faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"][0]["spec"]["status"], 503);
    let url = format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base());
    assert_eq!(
        http().post(&url).body("{}").send().await.unwrap().status(),
        503
    );
    let resp = http()
        .post(ctl("faults/clear"))
        .json(&json!({"surface":"logsearch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        http()
            .post(&url)
            .body("{\"event_id\":\"x\"}")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    let stats: Value = http()
        .get(ctl("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["logsearch"]["accepted"], 1);
    assert_eq!(stats["logsearch"]["distinct_ids"], 1);
    let info: Value = http()
        .get(ctl("info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["logs"][1]["token"], TOKEN);
    sim.shutdown().await;
}

/// Delivery counts per sink: duplicates are deliveries beyond one per id, per sink; records
/// without an id are stored but not counted per id; /_sim/stats agrees.
#[tokio::test]
async fn delivery_counts_mixed() {
    let sim = start_plain().await;
    let uef: String = ["a", "b", "a"]
        .iter()
        .map(|id| format!("{}\n", uef_for(id)))
        .collect();
    send_plain(sim.uef_addr(), &[uef.as_bytes()]).await;
    let url = format!("{}/v1/noformat/{TOKEN}", sim.logsearch_base());
    for body in [
        json!({"event_id":"a"}),
        json!({"event":{"event_id":"c"}}),
        json!({"box_event":{"event_id":"c"}}),
        json!({"custom_data":{"box_event_id":"c"}}),
        json!({"no_id":true}),
    ] {
        assert_eq!(
            http().post(&url).json(&body).send().await.unwrap().status(),
            204
        );
    }
    send_plain(
        sim.token_tcp_addr(),
        &[format!("{TOKEN} {{\"event_id\":\"d\"}}\n").as_bytes()],
    )
    .await;

    let c = sim.delivery_counts();
    assert_eq!(
        (c.uef.delivered(), c.uef.duplicates(), c.uef.count("a")),
        (2, 1, 2)
    );
    assert_eq!(
        (
            c.logsearch.delivered(),
            c.logsearch.duplicates(),
            c.logsearch.count("c")
        ),
        (2, 2, 3)
    );
    assert_eq!(c.logsearch.without_id, 1);
    assert_eq!(c.token.ids().into_iter().collect::<Vec<_>>(), ["d"]);
    assert_eq!(c.token.duplicates(), 0);
    assert_eq!(sim.logsearch_records().len(), 6);

    let stats: Value = http()
        .get(format!("{}/_sim/stats", sim.api_base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["uef"]["duplicates"], 1);
    assert_eq!(stats["logsearch"]["duplicates"], 2);
    assert_eq!(stats["logsearch"]["accepted"], 5);
    assert_eq!(stats["token"]["accepted"], 1);
    sim.shutdown().await;
}

/// A stall with `duration` releases by itself: lines sent meanwhile are accepted afterwards.
#[tokio::test]
async fn stall_with_duration_releases() {
    let sim = start_plain().await;
    sim.faults()
        .set(
            FaultSpec::new(Surface::Uef, FaultKind::Stall).for_duration(Duration::from_millis(300)),
        )
        .unwrap();
    let t = Instant::now();
    let mut s = TcpStream::connect(sim.uef_addr()).await.unwrap();
    s.write_all(format!("{EXAMPLE_UEF}\n").as_bytes())
        .await
        .unwrap();
    assert!(
        sim.wait_for(Duration::from_secs(3), |h| h.uef_records().len() == 1)
            .await
    );
    assert!(
        t.elapsed() >= Duration::from_millis(280),
        "released early: {:?}",
        t.elapsed()
    );
    sim.shutdown().await;
}
