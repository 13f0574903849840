//! RELIABILITY.md §6 scenario 3: power loss on a real file system. The data directory is a
//! LazyFS-style FUSE layer (`tools/lazyfs`) that holds written-but-not-fsynced data in memory;
//! the real service (this test binary started again as `boxidr run` would run, in its own
//! process) collects from the Box simulator and delivers to the InsightIDR simulator until the
//! power is cut: the layer refuses every further operation, the process is killed, everything
//! not fsynced is dropped and the layer unmounted. The cuts land at random instants and at
//! chosen fsyncs (while in flight, and just after it reached the disk), so they fall on every
//! step of poll → commit → forward → ack. After each cut the directory is mounted again
//! ("reboot"), redb's `check_integrity` runs on the database, and the service starts again.
//! At the end every event Box produced must be at both sinks, and what each cut makes a sink
//! receive again is bounded by the design's durability lag (see [`WINDOW`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxidr_system_tests::{Rig, proof};
use lazyfs::{LazyFs, When};
use serde_json::json;

const CHILD_ENV: &str = "BOXIDR_POWER_LOSS_CHILD";

/// How long a delivery can stay un-acked on the medium. The forwarder writes the delivered
/// prefix at most `ack_every` (100 ms) after the sink answered; group commit makes that write
/// durable at most `commit_interval` (300 ms) later, and the durable commit itself (two fsyncs
/// through FUSE, on a shared 2-core machine) is given 500 ms. So a cut can make a sink receive
/// again only what it received in this window before the cut (or between the cut and the
/// kill, when nothing reaches the medium), plus what earlier cuts left un-acked that the cut
/// run did not send again. A service that re-sent from an older position, or lost acks that
/// were durable, exceeds it.
const WINDOW: Duration = Duration::from_millis(100 + 300 + 500);

/// The service process of the power-loss tests: runs `boxidr run` on the bootstrap file named
/// by `BOXIDR_POWER_LOSS_CHILD` until it is killed. Without that variable it does nothing (it
/// is ignored so that `cargo test` does not list it as a test that ran).
#[test]
#[ignore = "the service process the power-loss tests start and kill; does nothing on its own"]
fn service_process() {
    let Some(config) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let code = runtime.block_on(boxidr::commands::run(Path::new(&config)));
    let code: std::process::ExitCode = code.into();
    if code != std::process::ExitCode::SUCCESS {
        std::process::exit(1);
    }
}

fn spawn_service(config: &Path, log: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "service_process", "--ignored", "--nocapture"])
        .env(CHILD_ENV, config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// A small deterministic generator (the cut points are reproducible from the seed printed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Opens the database through the (re)mounted layer and runs redb's integrity check; the
/// repair an unclean shutdown needs is redb's own, at open.
fn integrity(db: &Path) -> Result<bool, String> {
    if !db.exists() {
        return Err(format!("{} is gone", db.display()));
    }
    let mut database = redb::Database::open(db).map_err(|e| format!("open: {e}"))?;
    database
        .check_integrity()
        .map_err(|e| format!("check_integrity: {e}"))
}

#[derive(Debug, Clone, Copy)]
enum Point {
    /// After this many milliseconds of running.
    Time(u64),
    /// At the n-th fsync of the run.
    Fsync(u64, When),
}

struct Cut {
    point: Point,
    /// Whether an fsync cut point was reached (else the run was cut at the time limit).
    reached: bool,
    dropped_bytes: u64,
    fsyncs: u64,
    dups: (u64, u64),
    /// Deliveries per sink from [`WINDOW`] before the cut to the kill.
    window: (u64, u64),
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    proof(&json!({"test": test, "skipped": why}));
}

/// Mounts the layer, or says why it cannot: without `/dev/fuse` or root the mount is
/// impossible (SKIP); with both a failing mount is a failure, never a skip.
fn mount(backing: &Path, mnt: &Path) -> Result<LazyFs, String> {
    match LazyFs::mount(backing, mnt) {
        Ok(fs) => Ok(fs),
        Err(e) => {
            let root = std::fs::read_to_string("/proc/self/status")
                .map(|s| {
                    s.lines()
                        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
                })
                .unwrap_or(false);
            if !Path::new("/dev/fuse").exists() || !root {
                Err(format!(
                    "FUSE cannot be mounted here (no /dev/fuse or not root): {e}"
                ))
            } else {
                panic!(
                    "mounting the FUSE layer failed although /dev/fuse exists and we are root: {e}"
                )
            }
        }
    }
}

async fn power_cuts(test: &str, cuts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("disk"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mut fs = match mount(&backing, &mnt) {
        Ok(fs) => Some(fs),
        Err(why) => return skip(test, &why),
    };
    let data = mnt.join("data");
    std::fs::create_dir(&data).unwrap();
    let rig = Rig::new(
        box_sim::SimConfig {
            rate: 25.0,
            backlog: 200,
            streaming_duplicate_rate: 0.0,
            ..box_sim::SimConfig::default()
        },
        |c| c.data_dir = data.clone(),
    )
    .await
    .unwrap();
    let db = rig.database();
    let seed = std::env::var("BOXIDR_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13u64);
    let mut rng = Lcg(seed);
    let dups = |rig: &Rig| {
        let c = rig.idr_sim.totals();
        (c.uef.duplicates, c.logsearch.duplicates)
    };
    let deliveries = |rig: &Rig| {
        let c = rig.idr_sim.totals();
        (c.uef.deliveries, c.logsearch.deliveries)
    };
    let log = |round: usize| rig.dir.path().join(format!("service-{round}.log"));
    let mut done: Vec<Cut> = Vec::new();
    let started = Instant::now();
    for round in 0..cuts {
        let layer = match fs.take() {
            Some(fs) => fs,
            None => mount(&backing, &mnt).unwrap(),
        };
        if round > 0 {
            match integrity(&db) {
                Ok(true) => {}
                Ok(false) => panic!("round {round}: check_integrity had to repair the database"),
                Err(e) => panic!("round {round}: after a power cut: {e}"),
            }
        }
        let point = match round % 3 {
            0 => Point::Time(300 + rng.next(2700)),
            1 => Point::Fsync(1 + rng.next(40), When::Before),
            _ => Point::Fsync(1 + rng.next(40), When::After),
        };
        if let Point::Fsync(n, when) = point {
            layer.freeze_at_fsync(n, when);
        }
        let before = dups(&rig);
        let before_deliveries = deliveries(&rig);
        let mut child = spawn_service(&rig.config_path, &log(round));
        let limit = match point {
            Point::Time(ms) => Duration::from_millis(ms),
            Point::Fsync(..) => Duration::from_secs(5),
        };
        let until = Instant::now() + limit;
        // Deliveries sampled every 5 ms, kept for the last WINDOW.
        let mut samples: std::collections::VecDeque<(Instant, (u64, u64))> =
            std::collections::VecDeque::new();
        while Instant::now() < until && !layer.frozen() {
            let now = Instant::now();
            samples.push_back((now, deliveries(&rig)));
            while samples.len() > 1 && now.duration_since(samples[1].0) >= WINDOW {
                samples.pop_front();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let reached = layer.frozen();
        layer.freeze();
        let cut_at = Instant::now();
        // The oldest sample no later than WINDOW before the cut (or the run's start).
        let from = samples
            .iter()
            .rev()
            .find(|(at, _)| cut_at.duration_since(*at) >= WINDOW)
            .or(samples.front())
            .map(|s| s.1)
            .unwrap_or((before_deliveries.0, before_deliveries.1));
        child.kill().unwrap();
        child.wait().unwrap();
        let report = layer.power_off();
        let after = dups(&rig);
        let killed = deliveries(&rig);
        done.push(Cut {
            point,
            reached,
            dropped_bytes: report.bytes,
            fsyncs: report.stats.fsyncs,
            dups: (after.0 - before.0, after.1 - before.1),
            window: (killed.0 - from.0, killed.1 - from.1),
        });
    }
    // The last reboot: integrity, then the service runs until everything is delivered.
    let layer = mount(&backing, &mnt).unwrap();
    let repaired = integrity(&db);
    assert_eq!(repaired, Ok(true), "after the last power cut");
    rig.box_sim.pause_generation(true);
    let before = dups(&rig);
    let mut child = spawn_service(&rig.config_path, &log(cuts));
    let drain = Instant::now();
    let missing = rig.wait_delivered(Duration::from_secs(120)).await;
    let drain_secs = drain.elapsed().as_secs_f64();
    child.kill().unwrap();
    child.wait().unwrap();
    let last = dups(&rig);
    drop(layer);
    let generated = rig.box_sim.generated_ids().len();
    let logs = || {
        (0..=cuts)
            .map(|r| std::fs::read_to_string(log(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        missing.is_empty(),
        "{} of {generated} events lost after {cuts} power cuts (first: {:?})\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        logs()
    );
    // What cut k may make a sink receive again: its window, plus what the earlier cuts left
    // un-acked that run k did not send again (its repeats are those, at most).
    let mut per_cut: Vec<(u64, u64)> = done.iter().skip(1).map(|c| c.dups).collect();
    per_cut.push((last.0 - before.0, last.1 - before.1));
    let mut bounds: Vec<(u64, u64)> = Vec::with_capacity(done.len());
    let mut open = (0u64, 0u64);
    for (k, cut) in done.iter().enumerate() {
        let resent = if k == 0 { (0, 0) } else { done[k].dups };
        open = (
            cut.window.0 + open.0.saturating_sub(resent.0),
            cut.window.1 + open.1.saturating_sub(resent.1),
        );
        bounds.push(open);
    }
    // (cut, repeats, bound), each a (collector, log_search) pair.
    type Over = (usize, (u64, u64), (u64, u64));
    let over: Vec<Over> = per_cut
        .iter()
        .zip(&bounds)
        .enumerate()
        .filter(|(_, (d, b))| d.0 > b.0 || d.1 > b.1)
        .map(|(k, (d, b))| (k, *d, *b))
        .collect();
    let bound = bounds.iter().map(|b| b.0.max(b.1)).max().unwrap_or(0);
    let max = |f: fn(&(u64, u64)) -> u64| per_cut.iter().map(f).max().unwrap_or(0);
    let mean = |f: fn(&(u64, u64)) -> u64| {
        per_cut.iter().map(f).sum::<u64>() as f64 / per_cut.len().max(1) as f64
    };
    let (uef_max, raw_max) = (max(|d| d.0), max(|d| d.1));
    let dropped: Vec<u64> = done.iter().map(|c| c.dropped_bytes).collect();
    let reached = done
        .iter()
        .filter(|c| matches!(c.point, Point::Fsync(..)) && c.reached)
        .count();
    let fsync_points = done
        .iter()
        .filter(|c| matches!(c.point, Point::Fsync(..)))
        .count();
    let points: Vec<String> = done
        .iter()
        .map(|c| match c.point {
            Point::Time(ms) => format!("t{ms}ms"),
            Point::Fsync(n, w) => format!(
                "{}fsync{n}{}",
                if w == When::Before { "in-" } else { "after-" },
                if c.reached { "" } else { "(not reached)" }
            ),
        })
        .collect();
    let counts = rig.idr_sim.delivery_counts();
    proof(&json!({
        "test": test,
        "figure": format!(
            "{cuts} power cuts on a FUSE layer ({reached}/{fsync_points} at a chosen fsync), {generated} events, loss 0 on both sinks, integrity ok after every cut; unsynced data dropped per cut max {} B; dups/cut collector max {uef_max} mean {:.1}, log_search max {raw_max} mean {:.1} (each within its cut's bound: deliveries {WINDOW:?} before the cut to the kill plus earlier cuts' un-resent, largest bound {bound}); drained in {drain_secs:.1} s",
            dropped.iter().max().unwrap_or(&0),
            mean(|d| d.0),
            mean(|d| d.1),
        ),
        "cuts": cuts,
        "seed": seed,
        "points": points,
        "events": generated,
        "loss": missing.len(),
        "dropped_bytes": dropped,
        "fsyncs_per_run": done.iter().map(|c| c.fsyncs).collect::<Vec<_>>(),
        "dup_per_cut": {
            "collector": {"max": uef_max, "mean": mean(|d| d.0)},
            "log_search": {"max": raw_max, "mean": mean(|d| d.1)},
        },
        "duplicates": {"collector": counts.uef.duplicates(), "log_search": counts.logsearch.duplicates()},
        "dup_bound_per_cut": bounds,
        "dup_per_cut_list": per_cut,
        "dup_window_ms": WINDOW.as_millis() as u64,
        "secs": started.elapsed().as_secs_f64(),
    }));
    assert!(
        over.is_empty(),
        "a power cut made a sink receive again more than it could have received un-acked \
         (cut, (collector, log_search) repeats, bound): {over:?}"
    );
    assert!(
        dropped.iter().any(|&b| b > 0),
        "no cut dropped any unsynced data: the layer is not between the store and the disk"
    );
}

/// The quick sample: 9 cuts (3 at random instants, 3 in flight at a chosen fsync, 3 just
/// after one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_on_fuse_loses_nothing() {
    power_cuts("power_loss_on_fuse_loses_nothing", 9).await;
}

/// The long run: 150 cuts (`BOXIDR_POWER_CUTS` to change, `BOXIDR_POWER_SEED` for other
/// cut points).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 150 power cuts, several minutes (run by `bash tools/proof.sh`)"]
async fn power_loss_on_fuse_many_cuts() {
    let cuts = std::env::var("BOXIDR_POWER_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    power_cuts("power_loss_on_fuse_many_cuts", cuts).await;
}
