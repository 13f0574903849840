//! Measures each InsightIDR sink alone across an emulated WAN: idr-sim on loopback behind
//! `tools/fault-proxy`, which delays every chunk by half the added round trip each way.
//!
//! ```text
//! cargo run --release -p boxidr-forward --example wan -- [--events N] [--rtt-ms 0,50] \
//!     [--sink collector|logsearch|both] [--runs R]
//! ```
//!
//! For each sink and added RTT it seeds a fresh store with N Box-shaped events (one in four a
//! `LOGIN`, about 800 bytes each), runs the production sink with its default settings, and
//! stops the clock when the sink's queue is empty (Log Search: every record answered 2xx;
//! Collector: every login written, flushed and past its confirm window). It then checks at the
//! simulator that every record arrived (lost and duplicates counted there) and prints a table,
//! then one JSON line. The simulator and the proxy run on their own runtime threads, so the
//! CPU the appliance side used (sink, store thread, TLS, HTTP/2) is measured apart from theirs
//! (`/proc/self/task/*/stat`): `app_cpu_us_per_event`. Loopback only; a command that prints
//! figures, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: a failure should be loud

/// The tests' store helpers (`commit`, `pending`).
#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxidr_forward::{
    CollectorSettings, CollectorSink, CollectorTransport, Forwarder, ForwarderOptions,
    LogSearchSettings, LogSearchSink, Render, Sink, TrustRoots,
};
use boxidr_model::{BoxEvent, Secret};
use boxidr_store::{QueuedRecord, RecordFilter, SinkId, Store, StoreOptions};
use fault_proxy::{Faults, ProxyHandle as FaultProxy};
use idr_sim::{IdrSim, Listen, SimConfig, SimHandle};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// Logins become UEF lines for the Collector; every event goes to Log Search as it is.
struct BenchRender;

impl Render for BenchRender {
    fn render(&self, sink: SinkId, record: &QueuedRecord) -> Option<String> {
        match sink {
            SinkId::Collector => (record.event_type.as_deref() == Some("LOGIN")).then(|| {
                json!({
                    "version": "v1", "event_type": "INGRESS_AUTHENTICATION",
                    "time": "2024-05-02T21:03:11.000Z", "account": "jdoe", "account_domain": "CORP",
                    "source_ip": "198.51.100.23", "authentication_result": "SUCCESS",
                    "authentication_target": "Box",
                    "custom_data": {"box_event_id": record.event_id.as_str()},
                })
                .to_string()
            }),
            SinkId::LogSearch => Some(record.event_json.clone()),
        }
    }

    fn wanted(&self, sink: SinkId) -> Option<RecordFilter> {
        (sink == SinkId::Collector).then(|| {
            let filter: RecordFilter = Arc::new(|t: Option<&str>| t.is_none_or(|t| t == "LOGIN"));
            filter
        })
    }
}

/// A proxy adding `rtt` to every round trip (half each way), on the current runtime.
async fn wan(target: SocketAddr, rtt: Duration) -> FaultProxy {
    fault_proxy::FaultProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        target,
        Faults::round_trip(rtt),
    )
    .await
    .unwrap()
}

/// CPU seconds used so far by this process's threads whose name starts with one of `names`.
fn cpu_secs(names: &[&str]) -> f64 {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !names.iter().any(|n| stat[open + 1..close].starts_with(n)) {
            continue;
        }
        // After "pid (comm)": state ppid … utime (14th field) stime (15th).
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// The appliance side: the forwarder's runtime and the store's thread.
const APP_THREADS: &[&str] = &["appliance", "boxidr-store"];

async fn seed(store: &Store, events: usize) -> usize {
    let mut logins = 0;
    let mut n = 0;
    while n < events {
        let page: Vec<BoxEvent> = (n..(n + 500).min(events))
            .map(|i| {
                let login = i % 4 == 0;
                logins += usize::from(login);
                BoxEvent::from_value(json!({
                    "type": "event", "event_id": format!("ev-{i:08}"),
                    "event_type": if login { "LOGIN" } else { "DOWNLOAD" },
                    "created_at": "2024-05-02T14:03:11-07:00", "ip_address": "198.51.100.23",
                    "created_by": {"type": "user", "id": "262196057", "name": "Jane Doe",
                                   "login": "jdoe@example.com"},
                    "source": {"type": "file", "id": "1234567890", "name": "quarterly-report.xlsx",
                               "parent": {"type": "folder", "id": "987654321", "name": "Finance"}},
                    "session_id": "c8d1f3a0b2e94f5e8a7b6c5d4e3f2a1b",
                    "additional_details": {"service_id": "12345", "service_name": "Box Web App",
                                           "size": 48213, "version_id": "1122334455",
                                           "note": "x".repeat(300)},
                }))
                .unwrap()
            })
            .collect();
        n += page.len();
        common::commit(store, page).await;
    }
    logins
}

struct Figure {
    sink: SinkId,
    rtt_ms: u64,
    events: usize,
    lines: usize,
    secs: f64,
    app_cpu_secs: f64,
    lost: u64,
    duplicates: u64,
}

async fn run_sink<S: Sink + 'static>(store: &Store, sink: S) -> f64 {
    let id = sink.id();
    let (forwarder, _status) = Forwarder::new(
        store.clone(),
        sink,
        Arc::new(BenchRender),
        ForwarderOptions::default(),
    );
    let (stop, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let task = tokio::spawn(forwarder.run(stop_rx));
    while common::pending(store, id).await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    stop.send_replace(true);
    task.await.unwrap();
    secs
}

fn measure(net: &Runtime, app: &Runtime, sink: SinkId, rtt_ms: u64, events: usize) -> Figure {
    let config = SimConfig {
        logsearch_tls: true,
        ..SimConfig::default()
    };
    let sim: SimHandle = net
        .block_on(IdrSim::start(config, Listen::default()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = app
        .block_on(Store::open(StoreOptions::new(
            dir.path().join("bench.redb"),
        )))
        .unwrap();
    let logins = app.block_on(async {
        store.set_enabled_sinks(&[sink]).await.unwrap();
        seed(&store, events).await
    });
    let rtt = Duration::from_millis(rtt_ms);
    let ca = sim.ca_pem().into_bytes();
    let cpu_before = cpu_secs(APP_THREADS);
    let (secs, lines, proxy) = match sink {
        SinkId::Collector => {
            let proxy = net.block_on(wan(sim.uef_addr(), rtt));
            let settings = CollectorSettings::new(
                "127.0.0.1",
                proxy.addr().port(),
                CollectorTransport::Tls {
                    ca_pem: ca,
                    server_name: None,
                },
            );
            let secs = app.block_on(run_sink(&store, CollectorSink::new(settings).unwrap()));
            (secs, logins, proxy)
        }
        SinkId::LogSearch => {
            let upstream: SocketAddr = sim
                .logsearch_base()
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .parse()
                .unwrap();
            let proxy = net.block_on(wan(upstream, rtt));
            let mut settings = LogSearchSettings::new(
                format!("https://127.0.0.1:{}", proxy.addr().port())
                    .parse()
                    .unwrap(),
                Secret::new(sim.config().tokens[0].clone()),
            );
            settings.roots = TrustRoots::CustomCa(ca);
            let secs = app.block_on(run_sink(&store, LogSearchSink::new(settings).unwrap()));
            (secs, events, proxy)
        }
    };
    let app_cpu_secs = cpu_secs(APP_THREADS) - cpu_before;
    let counts = sim.delivery_counts();
    let counts = match sink {
        SinkId::Collector => counts.uef,
        SinkId::LogSearch => counts.logsearch,
    };
    let delivered = counts.ids().len();
    let figure = Figure {
        sink,
        rtt_ms,
        events,
        lines,
        secs,
        app_cpu_secs,
        lost: u64::try_from(lines.saturating_sub(delivered)).unwrap_or(u64::MAX),
        duplicates: counts.duplicates(),
    };
    net.block_on(async {
        proxy.shutdown().await;
        sim.shutdown().await;
    });
    app.block_on(async { store.close().await.unwrap() });
    figure
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn main() {
    // The simulator and the WAN on one runtime, the appliance side on another (CPU apart).
    let (net, app) = (runtime("idr-sim-net"), runtime("appliance"));
    let args: Vec<String> = std::env::args().collect();
    let events: usize = arg(&args, "--events").map_or(20_000, |v| v.parse().unwrap());
    let runs: usize = arg(&args, "--runs").map_or(1, |v| v.parse().unwrap());
    let rtts: Vec<u64> = arg(&args, "--rtt-ms")
        .unwrap_or("0,50")
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let sinks = match arg(&args, "--sink").unwrap_or("both") {
        "collector" => vec![SinkId::Collector],
        "logsearch" => vec![SinkId::LogSearch],
        _ => vec![SinkId::Collector, SinkId::LogSearch],
    };
    println!(
        "{:<11} {:>7} {:>8} {:>7} {:>8} {:>10} {:>10} {:>12} {:>5} {:>5}",
        "sink",
        "rtt_ms",
        "events",
        "lines",
        "secs",
        "events/s",
        "lines/s",
        "app_us/event",
        "lost",
        "dup"
    );
    let mut rows = Vec::new();
    for &sink in &sinks {
        for &rtt in &rtts {
            for _ in 0..runs {
                let f = measure(&net, &app, sink, rtt, events);
                let eps = f.events as f64 / f.secs;
                let lps = f.lines as f64 / f.secs;
                let us = f.app_cpu_secs * 1e6 / f.events as f64;
                println!(
                    "{:<11} {:>7} {:>8} {:>7} {:>8.2} {:>10.0} {:>10.0} {:>12.1} {:>5} {:>5}",
                    f.sink.as_str(),
                    f.rtt_ms,
                    f.events,
                    f.lines,
                    f.secs,
                    eps,
                    lps,
                    us,
                    f.lost,
                    f.duplicates
                );
                rows.push(json!({
                    "sink": f.sink.as_str(), "rtt_ms": f.rtt_ms, "events": f.events,
                    "lines": f.lines, "secs": f.secs, "events_per_sec": eps.round(),
                    "lines_per_sec": lps.round(), "app_cpu_us_per_event": (us * 10.0).round() / 10.0,
                    "lost": f.lost, "duplicates": f.duplicates,
                }));
            }
        }
    }
    println!("{}", json!({ "runs": rows }));
}
