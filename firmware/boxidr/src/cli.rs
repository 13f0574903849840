//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Box enterprise events and users into Rapid7 InsightIDR.
#[derive(Debug, Parser)]
#[command(name = "boxidr", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: /var/lib/boxidr/boxidr.toml, which `run` seeds from
    /// /etc/boxidr/boxidr.toml on the first start).
    #[arg(long, global = true, env = "BOXIDR_CONFIG", default_value = boxidr_config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// Log filter: comma-separated `level` and `target=level` (tracing `Targets` syntax), e.g.
    /// `info` or `warn,boxidr_boxapi=debug`
    /// (default: `info`).
    #[arg(long, global = true, env = "BOXIDR_LOG")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance service (what systemd starts).
    Run,
    /// Show cursors, queue, quota, counters and health: asks the running service, or reads the
    /// store directly when the service is stopped.
    Status(StatusArgs),
    /// Issue a new one-time setup code (while the appliance is unclaimed) and print it with the
    /// setup page's certificate fingerprint. Root only.
    SetupCode(DataArgs),
    /// Return the appliance to its first-boot state: revoke the Box token, wipe secrets,
    /// password and sessions, new certificate and setup code. Root only.
    FactoryReset(ResetArgs),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Drive the status LEDs (`--test`: cycle every LED for assembly checks).
    Leds(LedsArgs),
}

/// `boxidr config …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration file (`--config`) without starting anything: exit 0, or 78
    /// with every error and its key path.
    Check,
}

/// Options of `boxidr leds`.
#[derive(Debug, Clone, clap::Args)]
pub struct LedsArgs {
    /// Cycle every LED and pattern once (the assembly check).
    #[arg(long)]
    pub test: bool,
    /// GPIO backend: auto, rppal, cdev or simulated (default: `board.backend` from the
    /// configuration file).
    #[arg(long)]
    pub backend: Option<String>,
    /// With the simulated board, do not wait in real time (for CI).
    #[arg(long)]
    pub fast: bool,
}

/// Options of commands that only need the data directory.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Data directory (default: `data_dir` from the configuration file).
    #[arg(long = "data")]
    pub data_dir: Option<PathBuf>,
}

/// Options of `boxidr factory-reset`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResetArgs {
    /// Confirm: the reset cannot be undone.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Options of `boxidr status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Print one JSON document instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Data directory (default: `data_dir` from the configuration file).
    #[arg(long = "data")]
    pub data_dir: Option<PathBuf>,
}
