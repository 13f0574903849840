//! `boxidr run` as a real child process between the two simulators on loopback: events flow
//! end to end, `boxidr status` answers from the running service and from a stopped store, and
//! SIGKILL at random points loses nothing while the cursor never moves backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use boxidr_store::{Secret, Store, StoreOptions};
use common::{Destination, boxidr, terminate};
use rand::Rng;
use serde_json::{Value, json};

/// Kill-and-restart rounds: 50 natively; fewer under qemu, where every start is ~10x slower.
fn kill_rounds() -> usize {
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
        let store = Store::open(StoreOptions::new(rig.database()))
            .await
            .unwrap();
        store
            .set_setting("box.client_id".into(), json!(box_config.client_id))
            .await
            .unwrap();
        store
            .set_setting(
                "box.grant".into(),
                json!({"type": "client_credentials", "enterprise_id": box_config.enterprise_id}),
            )
            .await
            .unwrap();
        store
            .put_secrets(vec![
                (
                    "box.client_secret".into(),
                    Secret::from(box_config.client_secret.as_str()),
                ),
                (
                    "insightidr.log_search_token".into(),
                    Secret::from(rig.idr_sim.config().tokens[0].as_str()),
                ),
            ])
            .await
            .unwrap();
        store.close().await.unwrap();
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

    /// Box event ids generated that Log Search has not received.
    fn undelivered(&self) -> Vec<String> {
        let delivered = self.idr_sim.delivery_counts().logsearch.ids();
        self.box_sim
            .generated_ids()
            .into_iter()
            .filter(|id| !delivered.contains(id))
            .collect()
    }

    fn wait_delivered(&self, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let missing = self.undelivered();
            if missing.is_empty() || Instant::now() > until {
                return missing;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
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
    let running = tokio::task::block_in_place(|| rig.status());
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
/// event has reached Log Search. Re-deliveries (duplicates) are counted and bounded by one
/// batch per sink per kill.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_nothing() {
    let rig = Rig::new(20.0, 300).await;
    let rounds = kill_rounds();
    let mut rng = rand::rng();
    let mut last_position = 0u128;
    tokio::task::block_in_place(|| {
        for round in 0..rounds {
            let mut child = rig.start(round);
            std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
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
    });
    let counts = rig.idr_sim.delivery_counts();
    let generated: BTreeSet<String> = rig.box_sim.generated_ids().into_iter().collect();
    let duplicates = counts.logsearch.duplicates() + counts.uef.duplicates();
    println!(
        "kill -9 x{rounds}: {} events generated, all delivered; {duplicates} duplicate deliveries ({:.2} per kill)",
        generated.len(),
        duplicates as f64 / rounds as f64
    );
    // One batch is at most 500 records per sink.
    assert!(duplicates <= (rounds as u64) * 2 * 500, "{duplicates}");
}
