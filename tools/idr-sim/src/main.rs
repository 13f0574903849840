//! `idr-sim`: run the InsightIDR simulator for the demo and for humans.
//!
//! Prints one machine-parsable line per surface on stdout, e.g.
//! `idr-sim uef tls://127.0.0.1:5140`, `idr-sim logsearch http://127.0.0.1:8081`,
//! `idr-sim token <uuid>`, then runs until Ctrl-C. Listen addresses must be loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use idr_sim::{IdrSim, Listen, SimConfig, TlsMaterial, UnknownTokenBehaviour, random_uuid};

/// Fault-injecting InsightIDR simulator (Collector UEF, Log Search, Platform API). Loopback only.
#[derive(Debug, Parser)]
#[command(name = "idr-sim", version)]
struct Args {
    /// Collector UEF listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    uef_listen: SocketAddr,
    /// Log Search token TCP/TLS input.
    #[arg(long, default_value = "127.0.0.1:0")]
    token_listen: SocketAddr,
    /// Log Search HTTP ingest (`POST /v1/noformat/{token}`).
    #[arg(long, default_value = "127.0.0.1:0")]
    logsearch_listen: SocketAddr,
    /// Platform API and the `/_sim` control surface.
    #[arg(long, default_value = "127.0.0.1:0")]
    api_listen: SocketAddr,
    /// A known Log Search token (UUID); repeatable. One is generated and printed if none.
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Platform API key; generated and printed if absent.
    #[arg(long)]
    api_key: Option<String>,
    /// Server certificate chain (PEM); needs --tls-key and --ca.
    #[arg(long, requires_all = ["tls_key", "ca"])]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires_all = ["tls_cert", "ca"])]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that clients should trust for --tls-cert.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    ca: Option<PathBuf>,
    /// Write the CA PEM clients should trust to this file.
    #[arg(long)]
    write_ca: Option<PathBuf>,
    /// Serve the Collector UEF listener as plain TCP instead of TLS.
    #[arg(long)]
    plain_uef: bool,
    /// Serve the token input as plain TCP instead of TLS.
    #[arg(long)]
    plain_token: bool,
    /// Serve Log Search ingest over HTTPS.
    #[arg(long)]
    logsearch_tls: bool,
    /// Serve the Platform API over HTTPS.
    #[arg(long)]
    api_tls: bool,
    /// Seconds before an accepted record is visible to queries (0–300).
    #[arg(long, default_value_t = 0.0)]
    ingestion_delay: f64,
    /// Answer unknown HTTP tokens with this 4xx instead of 204-and-drop.
    #[arg(long)]
    unknown_token_status: Option<u16>,
    /// Treat each line of a POST body as its own entry.
    #[arg(long)]
    split_lines: bool,
    /// Log Search POST body cap in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    body_limit: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for (name, addr) in [
        ("--uef-listen", args.uef_listen),
        ("--token-listen", args.token_listen),
        ("--logsearch-listen", args.logsearch_listen),
        ("--api-listen", args.api_listen),
    ] {
        if !addr.ip().is_loopback() {
            bail!("{name} {addr}: idr-sim only listens on loopback (127.0.0.1 or ::1)");
        }
    }
    if !(0.0..=300.0).contains(&args.ingestion_delay) {
        bail!("--ingestion-delay must be between 0 and 300 seconds");
    }
    let generated_tokens = args.tokens.is_empty();
    let tokens = if generated_tokens {
        vec![random_uuid()]
    } else {
        args.tokens.clone()
    };
    let generated_key = args.api_key.is_none();
    let api_key = args.api_key.clone().unwrap_or_else(random_uuid);
    let tls = match (&args.tls_cert, &args.tls_key, &args.ca) {
        (Some(c), Some(k), Some(ca)) => {
            Some(TlsMaterial::from_files(c, k, ca).context("loading TLS material")?)
        }
        _ => None,
    };
    let unknown_token = match args.unknown_token_status {
        None => UnknownTokenBehaviour::AcceptAndDrop,
        Some(code) if (400..=499).contains(&code) => UnknownTokenBehaviour::Reject(code),
        Some(code) => bail!("--unknown-token-status {code} is not a 4xx"),
    };
    let config = SimConfig {
        tokens: tokens.clone(),
        api_key: api_key.clone(),
        unknown_token,
        body_limit: args.body_limit,
        split_lines: args.split_lines,
        ingestion_delay: Duration::from_secs_f64(args.ingestion_delay),
        uef_tls: !args.plain_uef,
        token_tls: !args.plain_token,
        logsearch_tls: args.logsearch_tls,
        api_tls: args.api_tls,
        tls,
        ..SimConfig::default()
    };
    let listen = Listen {
        uef: args.uef_listen,
        token: args.token_listen,
        logsearch: args.logsearch_listen,
        api: args.api_listen,
    };
    let sim = IdrSim::start(config, listen)
        .await
        .context("starting idr-sim")?;
    if let Some(path) = &args.write_ca {
        std::fs::write(path, sim.ca_pem())
            .with_context(|| format!("writing CA to {}", path.display()))?;
    }

    let scheme = |tls: bool| if tls { "tls" } else { "tcp" };
    println!(
        "idr-sim uef {}://{}",
        scheme(!args.plain_uef),
        sim.uef_addr()
    );
    println!(
        "idr-sim token-tcp {}://{}",
        scheme(!args.plain_token),
        sim.token_tcp_addr()
    );
    println!("idr-sim logsearch {}", sim.logsearch_base());
    println!("idr-sim api {}", sim.api_base());
    println!("idr-sim control {}/_sim/stats", sim.api_base());
    for t in &tokens {
        println!(
            "idr-sim token {t}{}",
            if generated_tokens { " (generated)" } else { "" }
        );
    }
    if generated_key {
        println!("idr-sim api-key {api_key} (generated)");
    }
    if let Some(path) = &args.write_ca {
        println!("idr-sim ca {}", path.display());
    }
    println!("idr-sim uef-log {}", sim.uef_log_id());
    for t in &tokens {
        if let Some(id) = sim.log_id_for_token(t) {
            println!("idr-sim log {id} token {t}");
        }
    }

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("idr-sim: stopping");
    sim.shutdown().await;
    Ok(())
}
