//! RELIABILITY.md §6 scenario 14: soak. `boxidr run` is a real child process while Box
//! produces steadily and faults come round, one every few seconds: InsightIDR down, Box
//! answering 503, Box rate-limiting with `Retry-After`, Box hanging, a burst of live events.
//! After the fault rounds the service is killed with SIGKILL and restarted a few times, then
//! everything drains.
//!
//! Sampled every second from `/proc` and the control socket: resident memory (`VmRSS`), open
//! file descriptors, threads, the store file's size, queued records.
//!
//! Pass:
//! - loss 0 on both sinks, and the queue back at 0 records at the end;
//! - over the fault rounds (one process), memory, descriptors, threads and the file plateau:
//!   the largest value of the second half is at most the largest of the first half plus a
//!   margin (memory: 10 % + 4 MiB; descriptors and threads: + 8; file: 10 % + 4 MiB), after
//!   a warm-up of a fifth of the rounds. A leak that grows with time or with faults fails it;
//! - each kill re-sends at most one window per sink (the forwarder's `max_unacked`).
//!
//! `BOXIDR_SOAK_SECS` sets the length of the fault rounds: 45 s in the test command, 600 for
//! the 10-minute sample (`tools/proof.sh`), hours for a soak before a release.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{Destination, kill, terminate};
use serde_json::{Value, json};

/// Box's steady rate, events per second.
const RATE: f64 = 100.0;
/// One fault round: a fault for the first part of it, then quiet.
const ROUND: Duration = Duration::from_secs(6);
const FAULT: Duration = Duration::from_secs(3);
/// Kills after the fault rounds.
const KILLS: usize = 3;

fn soak_secs() -> u64 {
    std::env::var("BOXIDR_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(45)
}

/// One sample of the service process and its store.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_kib: u64,
    fds: u64,
    threads: u64,
    file_bytes: u64,
    queued: u64,
}

fn sample(rig: &common::Rig, child: &Child) -> Option<Sample> {
    let pid = child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let report = rig.status();
    Some(Sample {
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
        fds,
        file_bytes: std::fs::metadata(rig.database()).ok()?.len(),
        queued: report["store"]["queue_records"].as_u64()?,
    })
}

/// The fault of round `n`, started now; cleared by [`clear`].
fn fault(rig: &common::Rig, n: usize) -> &'static str {
    let faults = rig.box_sim.faults();
    match n % 5 {
        0 => {
            rig.idr(false);
            "insightidr_down"
        }
        1 => {
            faults
                .add_json(&json!({"fault": "server_error", "status": 503, "endpoint": "events"}))
                .unwrap();
            "box_503"
        }
        2 => {
            faults
                .add_json(&json!({"fault": "rate_limit", "retry_after": 1}))
                .unwrap();
            "box_429"
        }
        3 => {
            faults
                .add_json(&json!({"fault": "outage", "mode": "hang", "endpoint": "events"}))
                .unwrap();
            "box_hang"
        }
        _ => {
            rig.box_sim.generate_now(2_000);
            "burst_2000"
        }
    }
}

fn clear(rig: &common::Rig) {
    rig.idr(true);
    rig.box_sim.faults().clear();
}

/// `Some(problem)` when the second half's largest value exceeds the first half's by more
/// than `slack(first)`.
fn plateau(
    what: &str,
    samples: &[Sample],
    value: impl Fn(&Sample) -> u64,
    slack: impl Fn(u64) -> u64,
) -> (Value, Option<String>) {
    let (first, second) = samples.split_at(samples.len() / 2);
    let max = |s: &[Sample]| s.iter().map(&value).max().unwrap_or(0);
    let (a, b) = (max(first), max(second));
    let figure = json!({"first_half_max": a, "second_half_max": b});
    let problem = (b > a + slack(a)).then(|| format!("{what} grew: {a} → {b}"));
    (figure, problem)
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_with_faults_plateaus_and_loses_nothing() {
    let box_config = box_sim::SimConfig {
        rate: RATE,
        backlog: 2_000,
        streaming_duplicate_rate: 0.0,
        ..box_sim::SimConfig::default()
    };
    let rig = common::Rig::new(box_config.clone(), Destination::Preset).await;
    rig.provision_client_credentials(&box_config).await;
    let mut child = rig.start(0);
    rig.wait_status(Duration::from_secs(60), |s| s["service"] == "running")
        .unwrap_or_else(|s| panic!("the service did not start: {s}\n{}", rig.logs()));

    let rounds = usize::try_from(soak_secs() / ROUND.as_secs())
        .unwrap()
        .max(5);
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut faults = Vec::new();
    for n in 0..rounds {
        let round_start = Instant::now();
        faults.push(fault(&rig, n));
        while round_start.elapsed() < ROUND {
            if round_start.elapsed() >= FAULT {
                clear(&rig);
            }
            if let Some(s) = sample(&rig, &child) {
                samples.push(s);
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the service exited in round {n}\n{}",
                rig.logs()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        clear(&rig);
    }
    let soaked = started.elapsed().as_secs_f64();

    // Kills: each re-sends at most one window per sink.
    let bound = boxidr_forward::ForwarderOptions::default().max_unacked as u64;
    let mut per_kill = Vec::new();
    for k in 1..=KILLS {
        std::thread::sleep(Duration::from_millis(700 + 300 * k as u64));
        let before = rig.duplicates();
        kill(&mut child);
        child = rig.start(k);
        rig.wait_status(Duration::from_secs(60), |s| s["service"] == "running")
            .unwrap_or_else(|s| panic!("restart {k} failed: {s}\n{}", rig.logs()));
        std::thread::sleep(Duration::from_secs(2));
        let after = rig.duplicates();
        per_kill.push((after.0 - before.0, after.1 - before.1));
    }

    // Box stops producing; everything drains.
    rig.box_sim.pause_generation(true);
    let missing = rig.wait_delivered(Duration::from_secs(120));
    let drained = rig
        .wait_status(Duration::from_secs(60), |s| {
            s["store"]["queue_records"].as_u64() == Some(0)
        })
        .is_ok();
    let final_status = rig.status();
    terminate(&mut child);

    let warm = samples.len() / 5;
    let steady = &samples[warm..];
    let mib = 1024;
    let (rss, rss_grew) = plateau("RSS (KiB)", steady, |s| s.rss_kib, |a| a / 10 + 4 * mib);
    let (fds, fds_grew) = plateau("open fds", steady, |s| s.fds, |_| 8);
    let (threads, threads_grew) = plateau("threads", steady, |s| s.threads, |_| 8);
    let (file, file_grew) = plateau(
        "file bytes",
        steady,
        |s| s.file_bytes,
        |a| a / 10 + 4 * 1024 * 1024,
    );
    let max_queued = samples.iter().map(|s| s.queued).max().unwrap_or(0);
    let generated = rig.box_sim.event_types().len();
    let (dup_uef, dup_raw) = rig.duplicates();
    let kill_max = per_kill.iter().map(|&(u, r)| u.max(r)).max().unwrap_or(0);
    proof(&json!({
        "figure": format!(
            "{rounds} fault rounds in {soaked:.0} s ({faults}), then {KILLS} kills: {generated} events, loss {}, \
             queue back to 0: {drained} (at most {max_queued} queued); RSS max {} → {} KiB, fds {} → {}, \
             threads {} → {}, file {} → {} B (first → second half of the rounds); duplicates Collector {dup_uef}, \
             Log Search {dup_raw}, at most {kill_max} per kill and sink (bound {bound})",
            missing.len(),
            rss["first_half_max"], rss["second_half_max"], fds["first_half_max"], fds["second_half_max"],
            threads["first_half_max"], threads["second_half_max"], file["first_half_max"], file["second_half_max"],
            faults = faults.iter().take(5).copied().collect::<Vec<_>>().join(", "),
        ),
        "loss": missing.len(),
        "events": generated,
        "rounds": rounds,
        "soak_secs": soaked,
        "rss_kib": rss, "fds": fds, "threads": threads, "file_bytes": file,
        "samples": samples.len(),
        "max_queued": max_queued,
        "queue_back_to_zero": drained,
        "duplicates": {"collector": dup_uef, "log_search": dup_raw, "per_kill_max": kill_max, "bound": bound},
    }));

    assert!(
        missing.is_empty(),
        "{} undelivered: {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        rig.logs()
    );
    assert!(drained, "the queue did not empty: {final_status}");
    let grew: Vec<String> = [rss_grew, fds_grew, threads_grew, file_grew]
        .into_iter()
        .flatten()
        .collect();
    assert!(grew.is_empty(), "no plateau: {grew:?}");
    assert!(
        kill_max <= bound,
        "a kill repeated more than one window per sink ({bound}): {per_kill:?}"
    );
    assert!(
        max_queued > 0,
        "nothing was ever queued: the faults did not bite"
    );
}

/// The `PROOF {json}` line `tools/proof.sh` reads.
fn proof(figures: &Value) {
    println!("PROOF {figures}");
}
