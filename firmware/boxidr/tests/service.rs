//! `boxidr run` as a real child process between the two simulators on loopback: events flow
//! end to end, `boxidr status` answers from the running service and from a stopped store, and
//! SIGKILL at random points loses nothing while the cursor never moves backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Destination, boxidr, terminate};
use rand::Rng;
use serde_json::{Value, json};

/// Kill-and-restart rounds: 50 natively; fewer under qemu, where every start is ~10x slower.
/// `BOXIDR_KILL_ROUNDS` overrides it (`tools/proof.sh` runs 500 in its long form).
fn kill_rounds() -> usize {
    if let Some(rounds) = std::env::var("BOXIDR_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return rounds;
    }
    if cfg!(target_arch = "x86_64") { 50 } else { 12 }
}

/// The shared rig with the Box app, its grant and the Log Search token already stored.
struct Rig(common::Rig);

impl std::ops::Deref for Rig {
    type Target = common::Rig;
    fn deref(&self) -> &common::Rig {
        &self.0
    }
}

impl Rig {
    async fn new(rate: f64, backlog: usize) -> Self {
        let box_config = box_sim::SimConfig {
            rate,
            backlog,
            streaming_duplicate_rate: 0.05,
            ..box_sim::SimConfig::default()
        };
        let rig = common::Rig::new(box_config.clone(), Destination::Preset).await;
        // What the setup page would have stored: the Box app, its grant, the Log Search token.
        rig.provision_client_credentials(&box_config).await;
        Self(rig)
    }

    fn status(&self) -> Value {
        let out = boxidr()
            .arg("--config")
            .arg(&self.config)
            .args(["status", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stream_position(status: &Value) -> Option<u128> {
    status["store"]["cursors"]["admin_logs_streaming"]["position"]
        .as_str()
        .and_then(|p| p.parse().ok())
}

/// Every datagram waiting on the notify socket, as text.
fn notifications(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
    }
    seen
}

/// The service delivers every Box event to the InsightIDR simulator (raw to Log Search, logins
/// as UEF), reports itself over the control socket, stops cleanly on SIGTERM, and then
/// `status` reads the stopped store. Under a systemd-style watchdog (`NOTIFY_SOCKET`,
/// `WATCHDOG_USEC`) it says READY, feeds `WATCHDOG=1` while every supervised part reports, shows
/// the parts on status, and says STOPPING on the way out.
#[tokio::test(flavor = "multi_thread")]
async fn service_delivers_and_reports() {
    let rig = Rig::new(10.0, 150).await;
    let socket_path = rig.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    notify.set_nonblocking(true).unwrap();
    let mut child = rig.start_env(
        0,
        &[
            ("NOTIFY_SOCKET", socket_path.as_os_str()),
            ("WATCHDOG_USEC", std::ffi::OsStr::new("2000000")),
        ],
    );
    let missing = tokio::task::block_in_place(|| {
        std::thread::sleep(Duration::from_secs(2));
        rig.box_sim.pause_generation(true);
        rig.wait_delivered(Duration::from_secs(60))
    });
    assert!(
        missing.is_empty(),
        "undelivered: {missing:?}\n{}",
        rig.logs()
    );
    // The status document is a cache the service refreshes every couple of seconds, so the
    // simulator can hold every event a moment before the status says so: wait for it to catch up
    // (it must, within a few refreshes) instead of reading it once.
    let running = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = rig.status();
            let delivered = status["sinks"]["log_search"]["delivered"].as_u64();
            if delivered.is_some_and(|n| n > 0) || Instant::now() > deadline {
                break status;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    assert_eq!(running["service"], "running", "{running}");
    assert_eq!(running["state"], "running", "{running}");
    let watchdog = &running["watchdog"];
    assert_eq!(watchdog["late"], json!([]), "{watchdog}");
    assert_eq!(watchdog["feeding"], json!(true), "{watchdog}");
    assert_eq!(watchdog["systemd_secs"], json!(2.0), "{watchdog}");
    let parts: BTreeSet<&str> = watchdog["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let expected = [
        "supervisor",
        "store",
        "setup",
        "stream",
        "sweep",
        "forwarder:collector",
        "forwarder:log_search",
    ];
    assert_eq!(parts, BTreeSet::from(expected), "{watchdog}");
    let sent = notifications(&notify);
    assert!(sent.iter().any(|m| m == "READY=1"), "{sent:?}");
    assert!(sent.iter().any(|m| m == "WATCHDOG=1"), "{sent:?}");
    assert!(
        running["sinks"]["log_search"]["delivered"]
            .as_u64()
            .unwrap()
            > 0,
        "{running}"
    );
    let counts = rig.idr_sim.delivery_counts();
    assert!(!counts.uef.ids().is_empty(), "logins reached the Collector");
    assert!(
        rig.idr_sim.uef_rejected().is_empty(),
        "no invalid UEF was sent"
    );
    let exit = tokio::task::block_in_place(|| terminate(&mut child));
    assert!(exit.success(), "{exit:?}\n{}", rig.logs());
    let sent = notifications(&notify);
    assert!(sent.iter().any(|m| m == "STOPPING=1"), "{sent:?}");
    assert!(
        !rig.logs().contains("supervised part is hung"),
        "nothing went late, not even during the stop\n{}",
        rig.logs()
    );
    let stopped = tokio::task::block_in_place(|| rig.status());
    assert_eq!(stopped["service"], "stopped", "{stopped}");
    assert!(stream_position(&stopped).is_some(), "{stopped}");
    assert!(
        !rig.logs().contains(&rig.idr_sim.config().tokens[0]),
        "the log token never appears in the logs"
    );
}

/// SIGKILL at random points while Box keeps producing: after every kill the committed cursor
/// is at or after the previous one, and once the service runs to the end every generated
/// event has reached Log Search and every login the Collector. Re-deliveries (duplicates) are
/// counted per run (each run after the first follows a kill) and per sink.
///
/// The bound per kill and sink is `ForwarderOptions::max_unacked` (8,192 by default; the
/// service uses the default): a forwarder never has more records delivered-or-in-flight but not
/// acknowledged in the store than that, whatever the sink's window (Collector: 8,192 lines
/// awaiting confirmation; Log Search: its requests in flight, fewer), and after a kill only
/// those unacknowledged records are sent again. The acknowledgement is written every
/// `ack_every` (100 ms), so in practice a kill repeats what was delivered in the last 100 ms
/// plus what was on the wire; the max and mean printed here are that figure.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_nothing() {
    let rig = Rig::new(20.0, 300).await;
    let rounds = kill_rounds();
    let mut rng = rand::rng();
    let mut last_position = 0u128;
    // Cumulative (Collector, Log Search) duplicates after each run; per run: the difference.
    let dups = |rig: &Rig| {
        let c = rig.idr_sim.delivery_counts();
        (c.uef.duplicates(), c.logsearch.duplicates())
    };
    let mut after_run = vec![(0u64, 0u64)];
    let lost = tokio::task::block_in_place(|| {
        for round in 0..rounds {
            let mut child = rig.start(round);
            std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            after_run.push(dups(&rig));
            let status = rig.status();
            assert_eq!(status["service"], "stopped", "round {round}: {status}");
            if let Some(position) = stream_position(&status) {
                assert!(
                    position >= last_position,
                    "round {round}: cursor moved back from {last_position} to {position}"
                );
                last_position = position;
            }
        }
        rig.box_sim.pause_generation(true);
        let mut child = rig.start(rounds);
        let missing = rig.wait_delivered(Duration::from_secs(120));
        let _ = terminate(&mut child);
        assert!(
            missing.is_empty(),
            "lost after {rounds} kills: {missing:?}\n{}",
            rig.logs()
        );
        missing.len()
    });
    after_run.push(dups(&rig));
    // Duplicates sent by run r (r >= 1 follows kill r - 1), per sink.
    let per_kill: Vec<(u64, u64)> = after_run
        .windows(2)
        .skip(1)
        .map(|w| (w[1].0 - w[0].0, w[1].1 - w[0].1))
        .collect();
    let first_run = after_run[1];
    let counts = rig.idr_sim.delivery_counts();
    let generated = rig.box_sim.generated_ids().len();
    let logins = counts.uef.delivered();
    let rejected = rig.uef_rejected().len();
    let max = |f: fn(&(u64, u64)) -> u64| per_kill.iter().map(f).max().unwrap_or(0);
    let mean = |f: fn(&(u64, u64)) -> u64| {
        per_kill.iter().map(f).sum::<u64>() as f64 / per_kill.len().max(1) as f64
    };
    let (uef_max, raw_max) = (max(|d| d.0), max(|d| d.1));
    let per_kill_total: Vec<u64> = per_kill.iter().map(|d| d.0 + d.1).collect();
    println!(
        "kill -9 x{rounds}: {generated} events generated ({logins} logins as UEF, {rejected} logins raw with uef_rejected), all delivered to both sinks; \
         duplicates per kill: collector max {uef_max} mean {:.2}, log_search max {raw_max} mean {:.2}, \
         both max {} mean {:.2}; total {} collector + {} log_search (first run, before any kill: {first_run:?})",
        mean(|d| d.0),
        mean(|d| d.1),
        per_kill_total.iter().max().unwrap_or(&0),
        per_kill_total.iter().sum::<u64>() as f64 / per_kill_total.len().max(1) as f64,
        counts.uef.duplicates(),
        counts.logsearch.duplicates(),
    );
    let bound = boxidr_forward::ForwarderOptions::default().max_unacked as u64;
    println!(
        "PROOF {}",
        json!({
            "test": "kill_9_loses_nothing",
            "figure": format!(
                "{rounds} kills, {generated} events, loss {lost} on both sinks; dups/kill collector max {uef_max} mean {:.1}, log_search max {raw_max} mean {:.1} (bound {bound} per sink)",
                mean(|d| d.0),
                mean(|d| d.1)
            ),
            "kills": rounds,
            "events": generated,
            "loss": lost,
            "dup_per_kill": {
                "collector": {"max": uef_max, "mean": mean(|d| d.0)},
                "log_search": {"max": raw_max, "mean": mean(|d| d.1)},
            },
            "dup_bound_per_sink": bound,
        })
    );
    assert!(
        first_run == (0, 0),
        "duplicates before any kill: {first_run:?}"
    );
    assert!(
        uef_max <= bound && raw_max <= bound,
        "a kill repeated more than one window per sink ({bound}): {per_kill:?}"
    );
}
