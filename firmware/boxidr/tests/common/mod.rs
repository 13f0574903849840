//! Shared harness of the tests that run `boxidr run` as a child process between the Box and
//! InsightIDR simulators on loopback: the simulators, the configuration file that points the
//! service at them, and the service's console log.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// Sends SIGTERM and waits for the exit.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap()
}
