//! `fault-proxy`: one loopback route with faults, and an optional control endpoint.
//!
//! ```sh
//! fault-proxy --listen 127.0.0.1:9600 --target 127.0.0.1:9515 --rtt 50ms --control 127.0.0.1:9601
//! curl -X PATCH -d '{"stall":true}' http://127.0.0.1:9601/faults
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use fault_proxy::control::ControlServer;
use fault_proxy::{FaultProxy, Faults};

/// Loopback TCP proxy that injects latency, jitter, bandwidth caps, resets, stalls,
/// half-open connections and slow closes.
#[derive(Debug, Parser)]
#[command(name = "fault-proxy", version, about)]
struct Args {
    /// Where clients connect (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where connections are forwarded (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Control endpoint (HTTP, loopback only): GET/PUT/PATCH/DELETE /faults, GET /stats.
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Added round-trip time, split evenly between the directions (e.g. `50ms`).
    #[arg(long, value_parser = humantime::parse_duration)]
    rtt: Option<Duration>,
    /// Added latency client → target (overrides half of `--rtt`).
    #[arg(long, value_parser = humantime::parse_duration)]
    delay_up: Option<Duration>,
    /// Added latency target → client (overrides half of `--rtt`).
    #[arg(long, value_parser = humantime::parse_duration)]
    delay_down: Option<Duration>,
    /// Extra random latency per chunk, each direction, up to this much.
    #[arg(long, value_parser = humantime::parse_duration)]
    jitter: Option<Duration>,
    /// Bandwidth cap client → target, bytes per second.
    #[arg(long)]
    rate_up: Option<u64>,
    /// Bandwidth cap target → client, bytes per second.
    #[arg(long)]
    rate_down: Option<u64>,
    /// Reset each connection after this many bytes client → target.
    #[arg(long)]
    reset_after_up: Option<u64>,
    /// Reset each connection after this many bytes target → client.
    #[arg(long)]
    reset_after_down: Option<u64>,
    /// Start stalled (nothing moves until cleared through the control endpoint).
    #[arg(long)]
    stall: bool,
    /// Start half open (everything read and discarded, nothing answers).
    #[arg(long)]
    half_open: bool,
    /// Reset new connections at once.
    #[arg(long)]
    refuse: bool,
    /// Delay before passing on an end-of-stream.
    #[arg(long, value_parser = humantime::parse_duration)]
    slow_close: Option<Duration>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Args {
    fn faults(&self) -> Faults {
        let mut f = self.rtt.map(Faults::round_trip).unwrap_or_default();
        if let Some(d) = self.delay_up {
            f.up.delay_ms = ms(d);
        }
        if let Some(d) = self.delay_down {
            f.down.delay_ms = ms(d);
        }
        let jitter = self.jitter.map(ms).unwrap_or(0);
        f.up.jitter_ms = jitter;
        f.down.jitter_ms = jitter;
        f.up.bytes_per_sec = self.rate_up;
        f.down.bytes_per_sec = self.rate_down;
        f.up.reset_after_bytes = self.reset_after_up;
        f.down.reset_after_bytes = self.reset_after_down;
        f.stall = self.stall;
        f.half_open = self.half_open;
        f.refuse = self.refuse;
        f.slow_close_ms = self.slow_close.map(ms).unwrap_or(0);
        f
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let proxy = FaultProxy::start(args.listen, args.target, args.faults()).await?;
    println!("fault-proxy {} -> {}", proxy.addr(), proxy.target());
    println!("faults {}", serde_json::to_string(&proxy.faults())?);
    let _control = match args.control {
        Some(listen) => {
            let control = ControlServer::start(listen, proxy.clone())?;
            println!("control http://{}/faults", control.addr());
            Some(control)
        }
        None => None,
    };
    tokio::signal::ctrl_c().await?;
    proxy.shutdown().await;
    Ok(())
}
