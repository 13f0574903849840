//! RELIABILITY.md §6 scenario 17, the no-RTC boot: the service starts with
//! `clock.wait_for_sync = true` and no synchronisation flag (what systemd-timesyncd writes once
//! NTP answered). Pass: while the clock is not synchronised nothing calls Box or InsightIDR
//! (no TLS connection is attempted on an untrusted clock, so none can be "fixed" by relaxing
//! verification) and the status says it waits for the clock; once the flag appears, work
//! starts and every event is delivered. The wall clock itself is not moved (that would move
//! the whole machine's): that certificates are never accepted untrusted is the Collector
//! test `tls_handshake_failures_are_retried_never_trusted`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use boxidr_system_tests::{Rig, problem_codes, proof};
use idr_sim::Surface;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rtc_waits_for_the_clock() {
    let flag_dir = tempfile::tempdir().unwrap();
    let flag = flag_dir.path().join("synchronized");
    let rig = Rig::new(
        box_sim::SimConfig {
            rate: 5.0,
            backlog: 50,
            ..box_sim::SimConfig::default()
        },
        |c| {
            c.clock.wait_for_sync = true;
            c.clock.sync_flag = flag.clone();
        },
    )
    .await
    .unwrap();
    // Provisioning itself talked to Box (the consent and the code exchange); count from here.
    let box_calls_before = rig.box_sim.requests().len();
    let service = rig.start().await.unwrap();
    let waiting = service
        .wait_status(Duration::from_secs(30), |s| {
            problem_codes(s)
                .iter()
                .any(|c| c == "clock_waiting" || c == "clock_not_synchronised")
        })
        .await;
    let waiting = waiting.unwrap_or_else(|s| panic!("no clock problem shown: {s:#}"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let box_calls = rig.box_sim.requests().len() - box_calls_before;
    let idr_connections =
        rig.idr_sim.connections(Surface::Uef) + rig.idr_sim.connections(Surface::Logsearch);
    let codes = problem_codes(&waiting);

    // NTP answers: the flag appears.
    std::fs::write(&flag, b"").unwrap();
    let synced = Instant::now();
    let missing = rig.wait_delivered(Duration::from_secs(120)).await;
    let first_work_secs = synced.elapsed().as_secs_f64();
    let after = service.status();
    service.stop().await.unwrap();
    proof(&json!({
        "test": "no_rtc_waits_for_the_clock",
        "figure": format!(
            "unsynchronised: {box_calls} Box calls, {idr_connections} InsightIDR connections, problems {}; synchronised → all {} events delivered in {first_work_secs:.1} s, loss {}",
            codes.join(","),
            rig.box_sim.generated_ids().len(),
            missing.len()
        ),
        "box_calls_while_waiting": box_calls,
        "insightidr_connections_while_waiting": idr_connections,
        "recovery_secs": first_work_secs,
        "loss": missing.len(),
    }));
    assert_eq!(
        box_calls, 0,
        "Box was called before the clock was synchronised"
    );
    assert_eq!(
        idr_connections, 0,
        "InsightIDR was contacted before the clock was synchronised"
    );
    assert!(missing.is_empty(), "lost: {missing:?}\n{after:#}");
}
