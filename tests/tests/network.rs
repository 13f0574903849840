//! RELIABILITY.md §6 scenarios 8–11 end to end: the real service with `tools/fault-proxy`
//! between it and each simulator (`Rig::behind_proxies`: the Collector's TLS endpoint, Log
//! Search's HTTPS endpoint, Box's API).
//!
//! - 8, outage: InsightIDR refused, then black-holed, while Box produces; cleared. Pass: loss 0
//!   on both sinks, both sinks say `retrying` during the outage, the drain after clearing is
//!   printed and bounded. Then a compressed long outage: a backlog queued while InsightIDR is
//!   down (20,000 events; `BOXIDR_OUTAGE_EVENTS=500000` for the long form), then recovery with
//!   the catch-up rate printed.
//! - 9, resets: resets after N bytes on either leg, toggled on and off while events flow.
//!   Pass: loss 0, duplicates per sink within the documented bound (README "What delivered
//!   means": what was unacknowledged at each reset, at most `max_unacked` records).
//! - 10, stall and half-open on each sink. Pass: the service notices within a bound (print the
//!   seconds), Log Search loses nothing; the Collector's loss is measured and compared with what
//!   the README promises (a stalled peer: at most its receive buffer; a peer that takes bytes
//!   and drops them: not detectable without an acknowledgement).
//! - 11, Retry-After from Log Search (429) and Box (429): the next request no earlier than N s
//!   and within N × 1.1; loss 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use boxidr_system_tests::{Rig, Routes, Service, proof};
use fault_proxy::ProxyHandle;
use serde_json::{Value, json};

/// The forwarder's `max_unacked`: at most this many records are re-sent per sink after one
/// reset (README "What delivered means").
const MAX_UNACKED: u64 = 8192;

fn box_config(rate: f64) -> box_sim::SimConfig {
    box_sim::SimConfig {
        rate,
        backlog: 0,
        streaming_duplicate_rate: 0.0,
        ..box_sim::SimConfig::default()
    }
}

fn sink_state(status: &Value, sink: &str) -> String {
    status["sinks"][sink]["state"]
        .as_str()
        .unwrap_or("absent")
        .to_owned()
}

/// The highest retry attempt of either sink in a status (`attempt N: …` in its detail).
fn attempt(status: &Value) -> u64 {
    ["collector", "log_search"]
        .iter()
        .filter_map(|sink| {
            let detail = status["sinks"][sink]["detail"].as_str()?;
            let rest = detail.strip_prefix("attempt ")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// Both InsightIDR routes.
fn insightidr(routes: &Routes) -> [&ProxyHandle; 2] {
    [&routes.collector, &routes.log_search]
}

/// InsightIDR unreachable: new connections refused and every open one reset at its next byte.
fn refuse(proxy: &ProxyHandle) {
    proxy.update(|f| {
        f.refuse = true;
        f.up.reset_after_bytes = Some(0);
        f.down.reset_after_bytes = Some(0);
    });
}

/// InsightIDR black-holed: connections are taken, then nothing moves either way.
fn black_hole(proxy: &ProxyHandle) {
    proxy.set_faults(fault_proxy::Faults {
        stall: true,
        ..fault_proxy::Faults::default()
    });
}

/// What the status said about each sink while a phase lasted.
#[derive(Debug, Default)]
struct Seen {
    samples: usize,
    /// The highest retry attempt either sink reported (`attempt N` in its detail).
    max_attempt: u64,
    collector_retrying: usize,
    log_search_retrying: usize,
    /// Each sample's state of the Collector and of Log Search.
    states: Vec<[String; 2]>,
    /// Seconds from the phase's start to the first `retrying` of each sink.
    collector_noticed: Option<f64>,
    log_search_noticed: Option<f64>,
}

/// Samples the status every 200 ms for `phase`, or until both sinks were seen retrying when
/// `until_noticed` is set.
async fn watch(service: &Service, phase: Duration, until_noticed: bool) -> Seen {
    let start = Instant::now();
    let mut seen = Seen::default();
    while start.elapsed() < phase {
        let status = service.status();
        let at = start.elapsed().as_secs_f64();
        seen.samples += 1;
        seen.max_attempt = seen.max_attempt.max(attempt(&status));
        seen.states.push([
            sink_state(&status, "collector"),
            sink_state(&status, "log_search"),
        ]);
        if sink_state(&status, "collector") == "retrying" {
            seen.collector_retrying += 1;
            seen.collector_noticed.get_or_insert(at);
        }
        if sink_state(&status, "log_search") == "retrying" {
            seen.log_search_retrying += 1;
            seen.log_search_noticed.get_or_insert(at);
        }
        if until_noticed && seen.collector_noticed.is_some() && seen.log_search_noticed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

fn round1(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}

/// Waits until both sinks received something (the pipeline runs end to end).
async fn wait_flowing(rig: &Rig) {
    let flowing = rig
        .idr_sim
        .wait_for(Duration::from_secs(60), |sim| {
            let counts = sim.delivery_counts();
            counts.logsearch.delivered() > 0 && counts.uef.delivered() > 0
        })
        .await;
    assert!(flowing, "nothing reached InsightIDR before the fault");
}

/// Scenario 8: InsightIDR refused for 6 s, then black-holed for 6 s, while Box produces 20
/// events/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery_loses_nothing() {
    let (rig, routes) = Rig::behind_proxies(box_config(20.0), |_| {}).await.unwrap();
    let service = rig.start().await.unwrap();
    wait_flowing(&rig).await;

    let phase = Duration::from_secs(6);
    insightidr(&routes).into_iter().for_each(refuse);
    let refused = watch(&service, phase, false).await;
    // Connection attempts while refused (each retry opens a connection per request it posts).
    let attempts = insightidr(&routes).map(|p| p.stats().refused);
    insightidr(&routes).into_iter().for_each(black_hole);
    let stalled = watch(&service, phase, false).await;
    let queued = service.status()["store"]["queue_records"]
        .as_u64()
        .unwrap_or(0);
    insightidr(&routes).into_iter().for_each(ProxyHandle::clear);
    let cleared = Instant::now();
    rig.box_sim.pause_generation(true);
    let missing = rig.wait_delivered(Duration::from_secs(120)).await;
    let drain = cleared.elapsed().as_secs_f64();
    let status = service.status();
    service.stop().await.unwrap();

    let counts = rig.idr_sim.delivery_counts();
    let events = rig.box_sim.generated_ids().len();
    proof(&json!({
        "test": "outage_then_recovery_loses_nothing",
        "figure": format!(
            "InsightIDR refused 6 s then black-holed 6 s, Box at 20 events/s: {events} events, {queued} queued at the end of the outage, loss {}, drained {:.1} s after clearing; at most {} retry attempts per sink, connections refused Collector {}, Log Search {}; status retrying in {}/{} (Collector) and {}/{} (Log Search) samples while refused, {}/{} and {}/{} while black-holed; duplicates Collector {}, Log Search {}",
            missing.len(),
            drain,
            refused.max_attempt.max(stalled.max_attempt),
            attempts[0],
            attempts[1],
            refused.collector_retrying,
            refused.samples,
            refused.log_search_retrying,
            refused.samples,
            stalled.collector_retrying,
            stalled.samples,
            stalled.log_search_retrying,
            stalled.samples,
            counts.uef.duplicates(),
            counts.logsearch.duplicates(),
        ),
        "events": events,
        "loss": missing.len(),
        "drain_secs": round1(drain),
        "refused_connections": {"collector": attempts[0], "log_search": attempts[1]},
        "max_retry_attempt": refused.max_attempt.max(stalled.max_attempt),
        "duplicates": {"collector": counts.uef.duplicates(), "log_search": counts.logsearch.duplicates()},
    }));
    assert!(missing.is_empty(), "lost: {missing:?}\n{status:#}");
    assert!(queued > 0, "nothing was held back during the outage");
    // No tight loop: the backoff (1 s doubling, ±50 %) allows at most 5 attempts in 12 s.
    let retries = refused.max_attempt.max(stalled.max_attempt);
    assert!(
        (1..=8).contains(&retries),
        "{retries} retry attempts in a 12 s outage"
    );
    // Once a sink said `retrying`, it says so until the outage ends: no retry into the outage
    // counts as delivering.
    let outage: Vec<&[String; 2]> = refused.states.iter().chain(&stalled.states).collect();
    let relapses: Vec<usize> = (0..2)
        .map(|sink| {
            outage
                .iter()
                .skip_while(|s| s[sink] != "retrying")
                .filter(|s| s[sink] != "retrying")
                .count()
        })
        .collect();
    assert_eq!(
        relapses,
        [0, 0],
        "samples (Collector, Log Search) not retrying after the first retrying: {outage:?}"
    );
    for (phase, seen) in [("refused", &refused), ("black-holed", &stalled)] {
        assert!(
            seen.collector_retrying > 0 && seen.log_search_retrying > 0,
            "{phase}: the status never said retrying: {seen:?}"
        );
    }
    // The backoff after 12 s of failures is at most 1.5 × 16 s; then the backlog of a few
    // hundred events goes in well under a second.
    assert!(drain < 60.0, "drained {drain:.1} s after clearing");
}

/// Scenario 8, compressed long outage: a backlog queued while InsightIDR is down, then the
/// catch-up. Quick: 20,000 events; long: `BOXIDR_OUTAGE_EVENTS=500000`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_outage_backlog_catches_up() {
    let events: usize = std::env::var("BOXIDR_OUTAGE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (rig, routes) = Rig::behind_proxies(box_config(0.0), |_| {}).await.unwrap();
    let service = rig.start().await.unwrap();
    rig.box_sim.generate_now(10);
    wait_flowing(&rig).await;

    insightidr(&routes).into_iter().for_each(refuse);
    let down = Instant::now();
    // Box produces the backlog in steps, as a day of events would arrive.
    let step = 2_000;
    let mut produced = 0;
    while produced < events {
        let n = step.min(events - produced);
        rig.box_sim.generate_now(n);
        produced += n;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = rig.box_sim.generated_ids().len();
    let collected = service
        .wait_status(Duration::from_secs(60 + events as u64 / 200), |s| {
            s["store"]["queue_records"].as_u64() >= Some(events as u64)
        })
        .await;
    let queued_status = match collected {
        Ok(s) | Err(s) => s,
    };
    let queued = queued_status["store"]["queue_records"]
        .as_u64()
        .unwrap_or(0);
    let outage = down.elapsed().as_secs_f64();
    insightidr(&routes).into_iter().for_each(ProxyHandle::clear);
    let cleared = Instant::now();
    // The first delivery after clearing waits out the backoff the outage built up.
    let before = rig.idr_sim.delivery_counts().logsearch.delivered();
    rig.idr_sim
        .wait_for(Duration::from_secs(400), |sim| {
            sim.delivery_counts().logsearch.delivered() > before
        })
        .await;
    let resumed = cleared.elapsed().as_secs_f64();
    let missing = rig
        .wait_delivered(Duration::from_secs(120 + events as u64 / 50))
        .await;
    let drained = cleared.elapsed().as_secs_f64();
    let status = service.status();
    service.stop().await.unwrap();

    let counts = rig.idr_sim.delivery_counts();
    let catch_up = (drained - resumed).max(0.001);
    let rate = queued as f64 / catch_up;
    proof(&json!({
        "test": "long_outage_backlog_catches_up",
        "figure": format!(
            "{events} events produced while InsightIDR was down ({outage:.1} s), {queued} queued: first delivery {resumed:.1} s after clearing (backoff), all {total} delivered {drained:.1} s after clearing, catch-up {rate:.0} events/s ({queued} in {catch_up:.1} s), loss {}, duplicates Collector {}, Log Search {}",
            missing.len(),
            counts.uef.duplicates(),
            counts.logsearch.duplicates(),
        ),
        "events": total,
        "loss": missing.len(),
        "queued": queued,
        "resumed_secs": round1(resumed),
        "drain_secs": round1(drained),
        "catch_up_events_per_sec": rate.round(),
    }));
    assert!(
        missing.is_empty(),
        "lost {}: {:?}\n{status:#}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(
        queued as usize >= events,
        "the backlog was not queued during the outage: {queued}"
    );
}

/// One round of scenario 9: which leg is cut after how many bytes.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Up(u64),
    Down(u64),
}

fn cut(proxy: &ProxyHandle, cut: Cut) {
    proxy.update(|f| match cut {
        Cut::Up(n) => f.up.reset_after_bytes = Some(n),
        Cut::Down(n) => f.down.reset_after_bytes = Some(n),
    });
}

/// Scenario 9: resets after N bytes on the up or the down leg of every route (Box included),
/// on for 1.5 s and off for 1.5 s, six times, while Box produces 40 events/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_mid_batch_lose_nothing() {
    let (rig, routes) = Rig::behind_proxies(box_config(40.0), |_| {}).await.unwrap();
    let service = rig.start().await.unwrap();
    wait_flowing(&rig).await;

    // A connection that already carried more than N bytes is cut at its next chunk; a new
    // one after N bytes (1 kB down: inside the TLS handshake).
    let rounds = [
        Cut::Up(2_000),
        Cut::Down(1_000),
        Cut::Up(20_000),
        Cut::Down(4_000),
        Cut::Up(100_000),
        Cut::Down(50_000),
    ];
    for (n, round) in rounds.into_iter().enumerate() {
        insightidr(&routes).into_iter().for_each(|p| cut(p, round));
        if n % 2 == 1 {
            cut(&routes.box_api, round);
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        [&routes.collector, &routes.log_search, &routes.box_api]
            .into_iter()
            .for_each(ProxyHandle::clear);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    rig.box_sim.pause_generation(true);
    let missing = rig.wait_delivered(Duration::from_secs(120)).await;
    let status = service.status();
    service.stop().await.unwrap();

    let counts = rig.idr_sim.delivery_counts();
    let events = rig.box_sim.generated_ids().len();
    let resets = |p: &ProxyHandle| p.stats().resets_injected;
    let (collector_resets, log_search_resets, box_resets) = (
        resets(&routes.collector),
        resets(&routes.log_search),
        resets(&routes.box_api),
    );
    let (collector_dups, log_search_dups) =
        (counts.uef.duplicates(), counts.logsearch.duplicates());
    proof(&json!({
        "test": "resets_mid_batch_lose_nothing",
        "figure": format!(
            "6 rounds of resets after 1–100 kB up or down (1.5 s on, 1.5 s off), Box at 40 events/s: {events} events, loss {}; resets injected Collector {collector_resets}, Log Search {log_search_resets}, Box {box_resets}; duplicates Collector {collector_dups}, Log Search {log_search_dups} (bound {MAX_UNACKED} per reset per sink)",
            missing.len(),
        ),
        "events": events,
        "loss": missing.len(),
        "resets": {"collector": collector_resets, "log_search": log_search_resets, "box": box_resets},
        "duplicates": {"collector": collector_dups, "log_search": log_search_dups},
    }));
    assert!(missing.is_empty(), "lost: {missing:?}\n{status:#}");
    assert!(
        collector_resets > 0 && log_search_resets > 0,
        "no reset reached a sink"
    );
    assert!(
        collector_dups <= collector_resets * MAX_UNACKED,
        "Collector: {collector_dups} duplicates for {collector_resets} resets"
    );
    assert!(
        log_search_dups <= log_search_resets * MAX_UNACKED,
        "Log Search: {log_search_dups} duplicates for {log_search_resets} resets"
    );
}

/// When Box received a request (Unix seconds).
fn request_time(r: &box_sim::RequestRecord) -> f64 {
    time::OffsetDateTime::parse(&r.at, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .unwrap()
}

fn unix_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Scenario 10: a stalled and a half-open peer on each sink. Phase A: Log Search half-open,
/// the Collector stalled; phase B: Log Search stalled, the Collector half-open for 5 s. Each
/// phase lasts until Log Search's sink says `retrying` (at most 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_and_half_open_are_noticed() {
    let (rig, routes) = Rig::behind_proxies(box_config(20.0), |_| {}).await.unwrap();
    let service = rig.start().await.unwrap();
    wait_flowing(&rig).await;
    let limit = Duration::from_secs(60);

    routes.log_search.update(|f| f.half_open = true);
    routes.collector.update(|f| f.stall = true);
    let phase_a = watch_log_search(&service, limit).await;
    [&routes.collector, &routes.log_search]
        .into_iter()
        .for_each(ProxyHandle::clear);
    // Let the retry deliver what waited, so phase B starts from a healthy sink.
    rig.box_sim.pause_generation(true);
    log_search_delivered(&rig, Duration::from_secs(60)).await;
    let phase_a_collector_lost = rig.undelivered().len();
    rig.box_sim.pause_generation(false);

    routes.log_search.update(|f| f.stall = true);
    let half_open_from = unix_secs();
    routes.collector.update(|f| f.half_open = true);
    let collector_half_open = watch(&service, Duration::from_secs(5), false).await;
    routes.collector.clear();
    let half_open_until = unix_secs();
    let phase_b = watch_log_search(&service, limit.saturating_sub(Duration::from_secs(5))).await;
    let phase_b_noticed = phase_b.log_search_noticed.map(|s| s + 5.0);
    routes.log_search.clear();

    rig.box_sim.pause_generation(true);
    log_search_delivered(&rig, Duration::from_secs(90)).await;
    // What the Collector still owes by then is not coming: its connection is up and idle.
    let missing = rig.wait_delivered(Duration::from_secs(3)).await;
    let status = service.status();
    service.stop().await.unwrap();
    let (log_search_lost, collector_lost): (Vec<_>, Vec<_>) =
        missing.iter().partition(|m| m.starts_with("log_search:"));
    // When Box handed out each lost login (its first events page): inside the half-open
    // window or not. The Collector sends a committed page within milliseconds; 1.5 s of
    // slack before the window for a batch still waiting out its confirm window.
    let mut handed_out: std::collections::BTreeMap<String, f64> = Default::default();
    for r in rig.box_sim.requests() {
        let at = request_time(&r);
        for id in r.event_ids {
            handed_out.entry(id).or_insert(at);
        }
    }
    let outside: Vec<(String, Option<f64>)> = collector_lost
        .iter()
        .filter_map(|m| {
            let id = m.trim_start_matches("collector:");
            let t = handed_out.get(id).copied();
            let inside = t.is_some_and(|t| t >= half_open_from - 1.5 && t <= half_open_until + 0.5);
            (!inside).then(|| (id.to_owned(), t.map(|t| round1(t - half_open_from))))
        })
        .collect();
    let discarded = routes.collector.stats().bytes_discarded;
    let counts = rig.idr_sim.delivery_counts();
    let events = rig.box_sim.generated_ids().len();
    let secs = |s: Option<f64>| s.map_or(json!(null), |s| json!(round1(s)));
    proof(&json!({
        "test": "stall_and_half_open_are_noticed",
        "figure": format!(
            "Log Search half-open noticed after {}, stalled after {} (status retrying); Collector stalled: {} (its peer's kernel took the lines; {phase_a_collector_lost} lost), half-open 5 s: {} ({} bytes swallowed); {events} events: Log Search loss {}, Collector {} logins lost, all handed out by Box during the half-open window: {} (README: a peer that takes bytes and drops them is not detectable without an acknowledgement); duplicates Collector {}, Log Search {}",
            phase_a.log_search_noticed.map_or("never".to_owned(), |s| format!("{s:.1} s")),
            phase_b_noticed.map_or("never".to_owned(), |s| format!("{s:.1} s")),
            phase_a.collector_noticed.map_or("not noticed".to_owned(), |s| format!("noticed after {s:.1} s")),
            collector_half_open.collector_noticed.map_or("not noticed".to_owned(), |s| format!("noticed after {s:.1} s")),
            discarded,
            log_search_lost.len(),
            collector_lost.len(),
            outside.is_empty(),
            counts.uef.duplicates(),
            counts.logsearch.duplicates(),
        ),
        "events": events,
        "loss": {"log_search": log_search_lost.len(), "collector_half_open_window": collector_lost.len()},
        "noticed_secs": {
            "log_search_half_open": secs(phase_a.log_search_noticed),
            "log_search_stall": secs(phase_b_noticed),
            "collector_stall": secs(phase_a.collector_noticed),
            "collector_half_open": secs(collector_half_open.collector_noticed),
        },
    }));
    assert!(
        log_search_lost.is_empty(),
        "Log Search lost: {log_search_lost:?}\n{status:#}"
    );
    for (what, noticed) in [
        ("half-open", phase_a.log_search_noticed),
        ("stalled", phase_b_noticed),
    ] {
        assert!(
            noticed.is_some_and(|s| s <= 35.0),
            "a {what} Log Search was not noticed within 35 s: {noticed:?}"
        );
    }
    assert!(
        outside.is_empty(),
        "Collector lines lost outside the half-open window: {outside:?}"
    );
}

/// Waits until Log Search holds every event Box generated, at most `within`.
async fn log_search_delivered(rig: &Rig, within: Duration) {
    let until = Instant::now() + within;
    while Instant::now() < until
        && rig
            .undelivered()
            .iter()
            .any(|m| m.starts_with("log_search:"))
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Samples until Log Search's sink says `retrying`, at most `limit`.
async fn watch_log_search(service: &Service, limit: Duration) -> Seen {
    let start = Instant::now();
    let mut seen = Seen::default();
    while start.elapsed() < limit && seen.log_search_noticed.is_none() {
        let status = service.status();
        let at = start.elapsed().as_secs_f64();
        seen.samples += 1;
        if sink_state(&status, "collector") == "retrying" {
            seen.collector_noticed.get_or_insert(at);
        }
        if sink_state(&status, "log_search") == "retrying" {
            seen.log_search_noticed.get_or_insert(at);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

/// Scenario 11: Log Search answers 429 with `Retry-After: 2` and Box 429 with
/// `Retry-After: 3`, each for 7 s, while Box produces 20 events/s. The gaps between a refused
/// request and the next one are measured at the simulators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_end_to_end() {
    let (rig, _routes) = Rig::behind_proxies(box_config(20.0), |_| {}).await.unwrap();
    let service = rig.start().await.unwrap();
    wait_flowing(&rig).await;
    let (log_search_after, box_after) = (2.0, 3.0);
    let lasting = Duration::from_secs(7);

    let start = Instant::now();
    rig.idr_sim
        .faults()
        .set(
            idr_sim::FaultSpec::new(
                idr_sim::Surface::Logsearch,
                idr_sim::FaultKind::Status {
                    status: 429,
                    retry_after_secs: Some(2),
                },
            )
            .for_duration(lasting),
        )
        .unwrap();
    rig.box_sim.faults().add(
        box_sim::Fault::new(box_sim::FaultKind::RateLimit { retry_after: 3 })
            .on(box_sim::Endpoint::Events)
            .for_duration(lasting),
    );
    // Log Search: when the request count moved (sampled every 5 ms).
    let mut moves: Vec<f64> = Vec::new();
    let mut last = rig.idr_sim.requests(idr_sim::Surface::Logsearch);
    while start.elapsed() < lasting + Duration::from_secs(4) {
        let now = rig.idr_sim.requests(idr_sim::Surface::Logsearch);
        if now != last {
            moves.push(start.elapsed().as_secs_f64());
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rig.box_sim.pause_generation(true);
    let missing = rig.wait_delivered(Duration::from_secs(60)).await;
    let status = service.status();
    service.stop().await.unwrap();

    // A gap: a silence of more than 0.5 s that began while the fault was in force.
    let fault_secs = lasting.as_secs_f64();
    let log_search_gaps: Vec<f64> = moves
        .windows(2)
        .filter(|w| w[0] < fault_secs && w[1] - w[0] > 0.5)
        .map(|w| w[1] - w[0])
        .collect();
    // Box: each events request answered 429, and the next one on the same stream (its
    // `stream_type`: the stream poller and the `admin_logs` sweep each keep their own).
    let stream_type = |r: &box_sim::RequestRecord| {
        r.query
            .split('&')
            .find_map(|kv| kv.strip_prefix("stream_type="))
            .map(str::to_owned)
    };
    let requests: Vec<_> = rig
        .box_sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/events"))
        .collect();
    let at = request_time;
    let mut box_gaps = Vec::new();
    for (n, r) in requests.iter().enumerate() {
        if r.status != Some(429) {
            continue;
        }
        let stream = stream_type(r);
        if let Some(next) = requests[n + 1..].iter().find(|x| stream_type(x) == stream) {
            box_gaps.push(at(next) - at(r));
        }
    }
    let show = |gaps: &[f64]| {
        gaps.iter()
            .map(|g| format!("{g:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    proof(&json!({
        "test": "retry_after_is_honoured_end_to_end",
        "figure": format!(
            "429 for 7 s: Log Search Retry-After 2 s, gaps {} s; Box Retry-After 3 s, gaps {} s (pass: N ≤ gap ≤ 1.1 N); {} events, loss {}",
            show(&log_search_gaps),
            show(&box_gaps),
            rig.box_sim.generated_ids().len(),
            missing.len(),
        ),
        "loss": missing.len(),
        "gaps_secs": {"log_search": log_search_gaps, "box": box_gaps},
    }));
    assert!(missing.is_empty(), "lost: {missing:?}\n{status:#}");
    // The counter is sampled every 5 ms: 20 ms of slack each way for the sampling.
    for (what, after, gaps) in [
        ("Log Search", log_search_after, &log_search_gaps),
        ("Box", box_after, &box_gaps),
    ] {
        assert!(gaps.len() >= 2, "{what}: gaps {gaps:?}");
        for &gap in gaps.iter() {
            assert!(
                gap >= after - 0.02 && gap <= after * 1.1 + 0.02,
                "{what}: a retry {gap:.3} s after a Retry-After of {after} s (all: {gaps:?})"
            );
        }
    }
}
