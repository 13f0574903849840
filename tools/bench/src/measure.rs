//! Runs `boxidr run` against a [`Rig`] and counts at the simulators.
//!
//! "Done" means every expected event id has reached every sink it belongs to, as the InsightIDR
//! simulator tallied it (its cheap running totals are polled every 25 ms; the exact per-id
//! check runs once the totals say the targets are reached).

use std::time::{Duration, Instant};

use idr_sim::Surface;

use crate::product::{self, Product, Running, Sample};
use crate::rig::{Expected, Rig};

/// How often the simulator's totals are polled.
const POLL: Duration = Duration::from_millis(25);
/// Least time between two exact per-id checks.
const EXACT_EVERY: Duration = Duration::from_millis(500);

/// What one delivery run measured.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Seconds from starting `boxidr run` until everything was delivered (`None`: not within
    /// the limit).
    pub done_s: Option<f64>,
    /// Seconds measured (until done, or the limit).
    pub elapsed_s: f64,
    /// Events delivered to every sink they belong to, at the end.
    pub complete: usize,
    /// Events that belong to at least one sink.
    pub expected: usize,
    /// Completed events per second, sustained: all of them over `done_s` when done; else over
    /// the last two thirds of the window (after start-up).
    pub rate: f64,
    /// Expected ids missing at a sink at the end (only a loss when the run was done or drained).
    pub missing: usize,
    /// Of those: missing at Log Search, missing at the Collector, and a few of the ids.
    pub missing_at: (usize, usize, Vec<String>),
    /// Deliveries beyond one per id, both sinks.
    pub duplicates: u64,
    pub uef_rejected: u64,
    /// The child at the end.
    pub sample: Sample,
    /// Sync calls per second and the most in one second, over the run (strace).
    pub syncs: Option<(f64, u64)>,
}

/// Per id: delivered to every sink it belongs to, and when (the later arrival, Unix ms).
pub fn completion(rig: &Rig, expected: &Expected) -> Vec<(String, Option<u64>)> {
    let ls = rig
        .idr_sim
        .arrivals_of(Surface::Logsearch, &expected.logsearch);
    let uef = rig.idr_sim.arrivals_of(Surface::Uef, &expected.uef);
    let mut at: std::collections::HashMap<&str, Option<u64>> =
        std::collections::HashMap::with_capacity(expected.logsearch.len().max(expected.uef.len()));
    for (ids, arrivals) in [(&expected.logsearch, ls), (&expected.uef, uef)] {
        for (id, a) in ids.iter().zip(arrivals) {
            let t = a.map(|a| a.first_ms);
            let slot = at.entry(id.as_str()).or_insert(Some(0));
            *slot = match (*slot, t) {
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            };
        }
    }
    at.into_iter().map(|(id, t)| (id.to_owned(), t)).collect()
}

/// Expected ids missing at Log Search and at the Collector, with up to five examples.
fn missing_per_sink(rig: &Rig, expected: &Expected) -> (usize, usize, Vec<String>) {
    let mut examples = Vec::new();
    let mut count = |surface: Surface, ids: &[String], label: &str| {
        let arrivals = rig.idr_sim.arrivals_of(surface, ids);
        let mut n = 0;
        for (id, a) in ids.iter().zip(arrivals) {
            if a.is_none() {
                n += 1;
                if examples.len() < 5 {
                    examples.push(format!("{id} ({label})"));
                }
            }
        }
        n
    };
    let ls = count(Surface::Logsearch, &expected.logsearch, "Log Search");
    let uef = count(Surface::Uef, &expected.uef, "Collector");
    (ls, uef, examples)
}

fn all_there(rig: &Rig, expected: &Expected) -> bool {
    let t = rig.idr_sim.totals();
    if t.logsearch.distinct < expected.logsearch.len() as u64
        || t.uef.distinct < expected.uef.len() as u64
    {
        return false;
    }
    completion(rig, expected).iter().all(|(_, t)| t.is_some())
}

fn complete_count(rig: &Rig, expected: &Expected) -> usize {
    completion(rig, expected)
        .iter()
        .filter(|(_, t)| t.is_some())
        .count()
}

/// Starts `boxidr run` and waits until everything expected is delivered or `limit` passes.
pub async fn deliver(
    rig: &Rig,
    product: &Product,
    expected: &Expected,
    limit: Duration,
    trace_syncs: bool,
) -> anyhow::Result<Delivery> {
    let mut running = product::spawn(
        product,
        &rig.config_path,
        rig.dir.path(),
        "warn",
        trace_syncs,
    )?;
    let wall_start = product::unix_now();
    let outcome = watch(rig, expected, &mut running, limit).await;
    let sample = running.sample();
    let wall_end = product::unix_now();
    let syncs = running
        .stop()
        .map(|times| product::sync_rate(&times, wall_start, wall_end));
    let (done_s, elapsed_s, rate_from) = outcome?;
    let completion = completion(rig, expected);
    let complete = completion.iter().filter(|(_, t)| t.is_some()).count();
    let totals = rig.idr_sim.totals();
    let missing_at = missing_per_sink(rig, expected);
    let rate = match (done_s, rate_from) {
        (Some(s), _) => completion.len() as f64 / s,
        (None, Some((t0, n0))) if elapsed_s > t0 => {
            complete.saturating_sub(n0) as f64 / (elapsed_s - t0)
        }
        _ => complete as f64 / elapsed_s.max(1e-3),
    };
    Ok(Delivery {
        done_s,
        elapsed_s,
        complete,
        expected: completion.len(),
        rate,
        missing: completion.len() - complete,
        missing_at,
        duplicates: totals.uef.duplicates + totals.logsearch.duplicates,
        uef_rejected: u64::try_from(rig.idr_sim.uef_rejected().len()).unwrap_or(u64::MAX),
        sample: sample?,
        syncs,
    })
}

/// Polls until done or `limit`: (done after, measured for, (time, complete count) a third in).
async fn watch(
    rig: &Rig,
    expected: &Expected,
    running: &mut Running,
    limit: Duration,
) -> anyhow::Result<(Option<f64>, f64, Option<(f64, usize)>)> {
    let mut last_exact = Instant::now() - EXACT_EVERY;
    let mut third = None;
    loop {
        running.check_alive()?;
        let elapsed = running.started.elapsed();
        let t = rig.idr_sim.totals();
        if t.logsearch.distinct >= expected.logsearch.len() as u64
            && t.uef.distinct >= expected.uef.len() as u64
            && last_exact.elapsed() >= EXACT_EVERY
        {
            last_exact = Instant::now();
            if all_there(rig, expected) {
                return Ok((Some(elapsed.as_secs_f64()), elapsed.as_secs_f64(), third));
            }
        }
        if third.is_none() && elapsed >= limit / 3 {
            third = Some((elapsed.as_secs_f64(), complete_count(rig, expected)));
        }
        if elapsed >= limit {
            return Ok((None, elapsed.as_secs_f64(), third));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Latency figures of a steady-rate run.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub events: usize,
    pub delivered: usize,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
    /// Why a percentile is missing.
    pub note: Option<String>,
}

/// Box produces events at the rig's rate; after `warmup`, every event appearing during
/// `window` is followed to delivery (waiting at most `drain` after the window).
pub async fn latency(
    rig: &Rig,
    product: &Product,
    warmup: Duration,
    window: Duration,
    drain: Duration,
) -> anyhow::Result<Latency> {
    let mut running = product::spawn(product, &rig.config_path, rig.dir.path(), "warn", false)?;
    let outcome = async {
        tokio::time::sleep(warmup).await;
        running.check_alive()?;
        let from_ms = unix_ms();
        tokio::time::sleep(window).await;
        let to_ms = unix_ms();
        running.check_alive()?;
        let mut expected = rig.expected();
        // Only the window's events count.
        let inside: std::collections::HashSet<String> = expected
            .appeared
            .iter()
            .filter(|(_, t)| *t >= from_ms && *t < to_ms)
            .map(|(id, _)| id.clone())
            .collect();
        expected.logsearch.retain(|id| inside.contains(id));
        expected.uef.retain(|id| inside.contains(id));
        expected.events = inside.len();
        let until = Instant::now() + drain;
        while !all_there(rig, &expected) && Instant::now() < until {
            running.check_alive()?;
            tokio::time::sleep(EXACT_EVERY).await;
        }
        anyhow::Ok(expected)
    }
    .await;
    running.stop();
    let expected = outcome?;
    let appeared: std::collections::HashMap<&str, u64> = expected
        .appeared
        .iter()
        .map(|(id, t)| (id.as_str(), *t))
        .collect();
    let mut latencies: Vec<u64> = Vec::new();
    let completion = completion(rig, &expected);
    for (id, at) in &completion {
        if let (Some(at), Some(from)) = (at, appeared.get(id.as_str())) {
            latencies.push(at.saturating_sub(*from));
        }
    }
    latencies.sort_unstable();
    let events = completion.len();
    let delivered = latencies.len();
    // Undelivered events count as slower than any delivered one.
    let pct = |p: f64| -> Option<u64> {
        if events == 0 {
            return None;
        }
        let rank = ((p * events as f64).ceil() as usize).clamp(1, events);
        latencies.get(rank - 1).copied()
    };
    let note = (delivered < events).then(|| {
        format!(
            "{} of {events} events not delivered within {} after the window",
            events - delivered,
            humantime::format_duration(drain)
        )
    });
    Ok(Latency {
        events,
        delivered,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: (delivered == events)
            .then(|| latencies.last().copied())
            .flatten(),
        note,
    })
}

/// The users sync of a big enterprise: seconds from start until the service logged the sync
/// done, and the peak RSS by then.
pub async fn users_sync(
    rig: &Rig,
    product: &Product,
    limit: Duration,
) -> anyhow::Result<Option<(f64, Sample)>> {
    let mut running = product::spawn(
        product,
        &rig.config_path,
        rig.dir.path(),
        "warn,boxidr_boxapi::users=info",
        false,
    )?;
    let outcome = async {
        loop {
            running.check_alive()?;
            let log = std::fs::read_to_string(&running.log).unwrap_or_default();
            if log.contains("Box users synced.") {
                let secs = running.started.elapsed().as_secs_f64();
                return anyhow::Ok(Some((secs, running.sample()?)));
            }
            if running.started.elapsed() >= limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    .await;
    running.stop();
    outcome
}

fn unix_ms() -> u64 {
    (product::unix_now() * 1000.0) as u64
}
