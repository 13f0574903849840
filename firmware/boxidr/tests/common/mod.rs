//! Shared harness of the tests that run `boxidr run` as a child process between the Box and
//! InsightIDR simulators on loopback: the simulators, the configuration file that points the
//! service at them, and the service's console log.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxidr_model::Secret;
use boxidr_store::settings;
use boxidr_store::{Store, StoreOptions};
use idr_sim::{FaultKind, FaultSpec, Surface};
use serde_json::{Value, json};

/// The `boxidr` binary built for this test.
pub fn boxidr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxidr"))
}

/// How much of the InsightIDR destination the configuration file already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Collector and Log Search both pointed at the simulator, default domain `CORP`: what the
    /// setup page would have written.
    Preset,
    /// Only what the setup page cannot set: the CA that Log Search (here, the simulator) is
    /// trusted with. Everything else is left to the setup page.
    SetupPage,
}

/// The Box simulator, the InsightIDR simulator, and a directory with the service's
/// configuration file, data directory, the simulator's CA file and the console logs.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
    /// The InsightIDR simulator's CA (PEM), as a file.
    pub ca: PathBuf,
    pub box_sim: box_sim::SimHandle,
    pub idr_sim: idr_sim::SimHandle,
}

impl Rig {
    /// Starts both simulators (Log Search over TLS) and writes the configuration file.
    pub async fn new(box_config: box_sim::SimConfig, destination: Destination) -> Self {
        let box_sim = box_sim::BoxSim::start(box_config, "127.0.0.1:0".parse().unwrap())
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
        let destination = match destination {
            Destination::Preset => format!(
                r#"
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
"#,
                uef_port = idr_sim.uef_addr().port(),
                ca = ca.display(),
                logsearch = idr_sim.logsearch_base(),
            ),
            Destination::SetupPage => format!(
                r#"
[insightidr.log_search]
region = "us"
ca_file = "{ca}"
"#,
                ca = ca.display(),
            ),
        };
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
{destination}
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
            ),
        )
        .unwrap();
        Self {
            dir,
            config,
            data,
            ca,
            box_sim,
            idr_sim,
        }
    }

    /// The store file the service uses.
    pub fn database(&self) -> PathBuf {
        self.data.join("boxidr.redb")
    }

    /// Where the console output (stderr) of start number `round` goes.
    pub fn log_path(&self, round: usize) -> PathBuf {
        self.dir.path().join(format!("run-{round}.log"))
    }

    /// Starts `boxidr run` with its console output in [`Rig::log_path`].
    pub fn start(&self, round: usize) -> Child {
        self.start_env(round, &[])
    }

    /// [`Rig::start`] with extra environment variables (e.g. systemd's `NOTIFY_SOCKET`).
    pub fn start_env(&self, round: usize, env: &[(&str, &std::ffi::OsStr)]) -> Child {
        let log = std::fs::File::create(self.log_path(round)).unwrap();
        boxidr()
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&self.config)
            .arg("--log")
            .arg("info")
            .arg("run")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Provisions the store as the setup page would for the client-credentials grant: the
    /// Box client id, grant and secret, and the Log Search token.
    pub async fn provision_client_credentials(&self, box_config: &box_sim::SimConfig) {
        let store = Store::open(StoreOptions::new(self.database()))
            .await
            .unwrap();
        store
            .put_setting(settings::BOX_CLIENT_ID, &box_config.client_id)
            .await
            .unwrap();
        store
            .put_setting(
                settings::BOX_GRANT,
                &json!({"type": "client_credentials", "enterprise_id": box_config.enterprise_id}),
            )
            .await
            .unwrap();
        store
            .put_secrets(vec![
                (
                    settings::BOX_CLIENT_SECRET,
                    Secret::from(box_config.client_secret.as_str()),
                ),
                (
                    settings::LOG_SEARCH_TOKEN,
                    Secret::from(self.idr_sim.config().tokens[0].as_str()),
                ),
            ])
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    /// Whether the service answers on its control socket. Until it does, `boxidr status` would
    /// open the store itself, and a service starting at that moment fails to take redb's lock.
    pub fn listening(&self) -> bool {
        std::os::unix::net::UnixStream::connect(self.data.join("control.sock")).is_ok()
    }

    /// `boxidr status --json` from the running service; `Null` until it listens.
    pub fn status(&self) -> Value {
        if !self.listening() {
            return Value::Null;
        }
        let out = boxidr()
            .arg("--config")
            .arg(&self.config)
            .args(["status", "--json"])
            .output()
            .unwrap();
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    pub fn wait_status(
        &self,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, Value> {
        let until = Instant::now() + within;
        loop {
            let status = self.status();
            if pred(&status) {
                return Ok(status);
            }
            if Instant::now() > until {
                return Err(status);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Deliveries with a Box event id at both sinks, repeats included.
    pub fn deliveries(&self) -> u64 {
        let t = self.idr_sim.totals();
        t.uef.deliveries + t.logsearch.deliveries
    }

    pub fn duplicates(&self) -> (u64, u64) {
        let t = self.idr_sim.totals();
        (t.uef.duplicates, t.logsearch.duplicates)
    }

    pub fn uef_rejected(&self) -> BTreeSet<String> {
        self.idr_sim
            .logsearch_records()
            .into_iter()
            .filter_map(|r| {
                r.json.as_ref()?.get("uef_rejected")?;
                r.box_event_id
            })
            .collect()
    }

    /// Box event ids generated that a sink has not received (as in `service.rs`).
    pub fn undelivered(&self) -> Vec<String> {
        let counts = self.idr_sim.delivery_counts();
        let (raw, uef) = (counts.logsearch.ids(), counts.uef.ids());
        let rejected = self.uef_rejected();
        let oauth = boxidr_config::Mapping::default().oauth_as_ingress;
        let mut missing = Vec::new();
        for (id, event_type) in self.box_sim.event_types() {
            if !raw.contains(&id) {
                missing.push(format!("log_search:{id}"));
            }
            if boxidr_normalize::ingress_result(Some(&event_type), oauth).is_some()
                && !uef.contains(&id)
                && !rejected.contains(&id)
            {
                missing.push(format!("collector:{id}"));
            }
        }
        missing
    }

    pub fn wait_delivered(&self, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let missing = self.undelivered();
            if missing.is_empty() || Instant::now() > until {
                return missing;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn idr(&self, up: bool) {
        if up {
            self.idr_sim.faults().clear_all();
        } else {
            for surface in [Surface::Logsearch, Surface::Uef] {
                self.idr_sim
                    .faults()
                    .set(FaultSpec::new(surface, FaultKind::Down))
                    .unwrap();
            }
        }
    }

    /// The console output of every start so far.
    pub fn logs(&self) -> String {
        logs_in(self.dir.path())
    }
}

fn logs_in(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
        }
    }
    text
}

/// SIGKILL and wait.
pub fn kill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Sends SIGTERM and waits for the exit.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap()
}
