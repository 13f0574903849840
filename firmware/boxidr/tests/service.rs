//! `boxidr run` as a real child process between the two simulators on loopback: events flow
//! end to end, `boxidr status` answers from the running service and from a stopped store, and
//! SIGKILL at random points loses nothing while the cursor never moves backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxidr_store::{Secret, Store, StoreOptions};
use rand::Rng;
use serde_json::{Value, json};

fn boxidr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxidr"))
}

/// Kill-and-restart rounds: 50 natively; fewer under qemu, where every start is ~10x slower.
fn kill_rounds() -> usize {
    if cfg!(target_arch = "x86_64") { 50 } else { 12 }
}

struct Rig {
    dir: tempfile::TempDir,
    config: PathBuf,
    box_sim: box_sim::SimHandle,
    idr_sim: idr_sim::SimHandle,
}

impl Rig {
    async fn new(rate: f64, backlog: usize) -> Self {
        let box_config = box_sim::SimConfig {
            rate,
            backlog,
            streaming_duplicate_rate: 0.05,
            ..box_sim::SimConfig::default()
        };
        let box_sim = box_sim::BoxSim::start(box_config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let idr_sim = idr_sim::IdrSim::start(
            idr_sim::SimConfig {
                logsearch_tls: true,
                ..idr_sim::SimConfig::default()
            },
            idr_sim::Listen::default(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, idr_sim.ca_pem()).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.path().join("boxidr.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"

[box]
authorize_url = "{authorize}"
token_base = "{token}"
api_base = "{api}"

[events]
poll_interval_secs = 1
completeness_lag_secs = 5
backfill_days = 7

[insightidr.collector]
host = "127.0.0.1"
port = {uef_port}
ca_file = "{ca}"

[insightidr.log_search]
region = "us"
base_url = "{logsearch}"
ca_file = "{ca}"

[mapping]
default_domain = "CORP"

[setup]
listen = "127.0.0.1:0"

[clock]
wait_for_sync = false

[board]
backend = "simulated"
"#,
                data = data.display(),
                authorize = box_sim.authorize_url(),
                token = box_sim.token_base(),
                api = box_sim.api_base(),
                uef_port = idr_sim.uef_addr().port(),
                ca = ca.display(),
                logsearch = idr_sim.logsearch_base(),
            ),
        )
        .unwrap();
        // What the setup page would have stored: the Box app, its grant, the Log Search token.
        let store = Store::open(StoreOptions::new(data.join("boxidr.redb")))
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
                    Secret::from(idr_sim.config().tokens[0].as_str()),
                ),
            ])
            .await
            .unwrap();
        store.close().await.unwrap();
        Self {
            dir,
            config,
            box_sim,
            idr_sim,
        }
    }

    fn start(&self, round: usize) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("run-{round}.log"))).unwrap();
        boxidr()
            .arg("--config")
            .arg(&self.config)
            .arg("--log")
            .arg("info")
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
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

    fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "log") {
                text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
            }
        }
        text
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap()
}

fn stream_position(status: &Value) -> Option<u128> {
    status["store"]["cursors"]["admin_logs_streaming"]["position"]
        .as_str()
        .and_then(|p| p.parse().ok())
}

/// The service delivers every Box event to the InsightIDR simulator (raw to Log Search, logins
/// as UEF), reports itself over the control socket, stops cleanly on SIGTERM, and then
/// `status` reads the stopped store.
#[tokio::test(flavor = "multi_thread")]
async fn service_delivers_and_reports() {
    let rig = Rig::new(10.0, 150).await;
    let mut child = rig.start(0);
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
