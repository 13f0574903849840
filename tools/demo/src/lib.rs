//! `boxidr-demo`: the real appliance service (the `boxidr` library's supervisor, as systemd
//! starts it) between the Box and InsightIDR simulators on loopback. It lives in `tools/`, not
//! in the product: the appliance's binary links no simulator (`tools/check-deps.sh` checks).
//!
//! - [`tour`]: the interactive tour and its `--auto --json` summary;
//! - [`provision`]: the throw-away appliance (bootstrap file and stored secrets) that the tour
//!   and the benchmark (`tools/bench`) both run.

pub mod provision;
pub mod tour;

use std::time::Duration;

/// Options of `boxidr-demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Non-interactive: no browser step, stop after `--for` and print a JSON summary.
    #[arg(long)]
    pub auto: bool,
    /// How long to run (e.g. `30s`, `2m`); interactive runs last until Ctrl-C by default.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Simulated Box activity, in events per second.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Events already waiting in Box when the demo starts.
    #[arg(long, default_value_t = 200)]
    pub backlog: usize,
    /// Seed of the simulated enterprise.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Port of the setup page on 127.0.0.1 (default 8443; with `--auto`, any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// With `--auto`: run the fault tour too (Box outage, InsightIDR outage, authorisation
    /// revoked), and report what the LEDs showed.
    #[arg(long)]
    pub faults: bool,
    /// Interactive: skip the fault tour.
    #[arg(long, conflicts_with = "faults")]
    pub no_faults: bool,
}
