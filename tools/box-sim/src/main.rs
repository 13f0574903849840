//! `box-sim`: run the Box API simulator on loopback until Ctrl-C.
//!
//! The first line of output is machine-parsable: `box-sim listening on http://127.0.0.1:PORT`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use box_sim::{BoxSim, PositionForm, SimConfig};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PositionArg {
    String,
    Integer,
}

/// Fault-injecting Box API simulator (OAuth 2.0, /2.0/events, /2.0/users) on loopback HTTP.
#[derive(Debug, Parser)]
#[command(name = "box-sim", version)]
struct Cli {
    /// Address to listen on; must be loopback (127.0.0.1 or ::1).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// OAuth client id of the registered app.
    #[arg(long)]
    client_id: Option<String>,
    /// OAuth client secret of the registered app.
    #[arg(long)]
    client_secret: Option<String>,
    /// Enterprise id (CCG `box_subject_id`).
    #[arg(long)]
    enterprise_id: Option<String>,
    /// Registered redirect URI (repeatable): https, or http on a loopback host.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// New events per second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Events already waiting at start.
    #[arg(long, default_value_t = 500)]
    backlog: usize,
    /// Seed of the enterprise and event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of managed users in the enterprise.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    access_token_ttl: u64,
    /// JSON form of next_stream_position.
    #[arg(long, value_enum, default_value = "string")]
    position_form: PositionArg,
    /// Probability that an admin_logs_streaming event is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Print each generated event as one line (id, type, login, ip, country).
    #[arg(long)]
    print_activity: bool,
}

/// Prints a line; a closed stdout (e.g. the reader went away) is not worth a panic.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.listen.ip().is_loopback() {
        bail!(
            "--listen {} is not a loopback address; box-sim only binds 127.0.0.1 or ::1",
            cli.listen
        );
    }
    let mut config = SimConfig::default();
    if let Some(v) = cli.client_id {
        config.client_id = v;
    }
    if let Some(v) = cli.client_secret {
        config.client_secret = v;
    }
    if let Some(v) = cli.enterprise_id {
        config.enterprise_id = v;
    }
    if !cli.redirect_uris.is_empty() {
        config.redirect_uris = cli.redirect_uris;
    }
    config.rate = cli.rate;
    config.backlog = cli.backlog;
    config.seed = cli.seed;
    config.users = cli.users;
    config.access_token_ttl = Duration::from_secs(cli.access_token_ttl);
    config.streaming_duplicate_rate = cli.duplicate_rate;
    config.position_form = match cli.position_form {
        PositionArg::String => PositionForm::String,
        PositionArg::Integer => PositionForm::Integer,
    };
    let client_id = config.client_id.clone();
    let sim = BoxSim::start(config, cli.listen)
        .await
        .context("starting box-sim")?;
    say(&format!("box-sim listening on http://{}", sim.addr()));
    say(&format!("authorize: {}", sim.authorize_url()));
    say(&format!("token:     {}/oauth2/token", sim.token_base()));
    say(&format!("revoke:    {}/oauth2/revoke", sim.token_base()));
    say(&format!("api:       {}", sim.api_base()));
    say(&format!("control:   http://{}/_sim/stats", sim.addr()));
    say(&format!("client_id: {client_id}"));
    if cli.print_activity {
        let mut rx = sim.subscribe_activity();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(a) => say(&format!(
                        "{} {:<45} {:<35} {:<40} {}",
                        a.event_id,
                        a.event_type,
                        a.login,
                        a.ip,
                        a.country.as_deref().unwrap_or("-")
                    )),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        say(&format!("(skipped {n} events)"));
                    }
                    Err(_) => break,
                }
            }
        });
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
