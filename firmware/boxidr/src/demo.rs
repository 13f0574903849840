//! `boxidr demo`: the newcomer's tour. Starts the Box and InsightIDR simulators on loopback,
//! shows live simulated Box activity, and (with `--auto --json`) ends with a summary of what
//! was generated, collected and delivered, measured at the simulators.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use boxidr_boxapi::collect::{self, CollectConfig, Mode};
use boxidr_boxapi::{
    AuthClient, EventsClient, Grant, PollStatus, Secret, SweepStatus, TokenManager, UsersClient,
    http,
};
use boxidr_forward::{
    CollectorSettings, CollectorTransport, ForwarderOptions, LogSearchSettings, LogToken,
    SinkState, SinkStatus, TrustRoots,
};
use boxidr_store::{Store, StoreOptions};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::DemoArgs;
use crate::exit::ExitCode;
use crate::pipeline::{self, Directory, Parts, Renderer, SinkPlan, Sinks, Watches};
use crate::run::shutdown_signal;

/// How long the end of a run waits for the queue to drain after generation pauses.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// The last line of `demo --auto --json`.
#[derive(Debug, Serialize)]
struct Summary {
    box_events_generated: u64,
    collected: u64,
    delivered: Delivered,
    lost: u64,
    duplicates: u64,
    /// UEF lines the Collector simulator discarded as invalid (InsightIDR would drop them silently).
    uef_rejected: u64,
}

#[derive(Debug, Serialize)]
struct Delivered {
    /// Distinct Box events delivered as UEF ingress (logins) to the Collector.
    uef: u64,
    /// Distinct Box events delivered as raw records to Log Search.
    logsearch: u64,
}

pub async fn demo(args: DemoArgs) -> ExitCode {
    match tour(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("boxidr demo: {e:#}");
            ExitCode::Failure
        }
    }
}

async fn tour(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=10_000.0).contains(&args.rate) {
        anyhow::bail!("--rate must be between 0 and 10000 events per second");
    }
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let box_config = box_sim::SimConfig {
        rate: args.rate,
        backlog: args.backlog,
        seed: args.seed,
        // Box's streaming feed is at-least-once: show the appliance dropping the repeats.
        streaming_duplicate_rate: 0.05,
        ..box_sim::SimConfig::default()
    };
    let box_sim = box_sim::BoxSim::start(box_config.clone(), loopback).await?;
    let idr_config = idr_sim::SimConfig {
        logsearch_tls: true,
        ..idr_sim::SimConfig::default()
    };
    let idr_sim = idr_sim::IdrSim::start(idr_config, idr_sim::Listen::default()).await?;

    let quiet = args.auto && args.json;
    if !quiet {
        println!("boxidr demo: simulators on loopback");
        println!("  Box API          {}", box_sim.api_base());
        println!("  Box OAuth        {}", box_sim.authorize_url());
        println!("  Box sim control  http://{}/_sim/stats", box_sim.addr());
        println!("  InsightIDR Collector (UEF, TLS)  {}", idr_sim.uef_addr());
        println!(
            "  InsightIDR Log Search ingest     {}/v1/noformat/<token>",
            idr_sim.logsearch_base()
        );
        println!("  InsightIDR Platform API          {}", idr_sim.api_base());
        println!();
        println!("Live simulated Box activity (Ctrl-C to stop):");
    }

    // The appliance, on a throw-away database.
    let data_dir = tempfile::tempdir()?;
    let store = Store::open(StoreOptions::new(data_dir.path().join("boxidr.redb"))).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let parts = parts(&box_config, &box_sim, &idr_sim, store.clone()).await?;
    let mut watches = pipeline::start(parts, &mut tasks, &stop_rx).await?;
    if !quiet {
        println!(
            "  appliance database  {}",
            data_dir.path().join("boxidr.redb").display()
        );
        println!();
    }

    let mut activity = box_sim.subscribe_activity();
    let deadline = args.duration.map(|d| Instant::now() + d);
    let until_deadline = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None if args.auto => tokio::time::sleep(Duration::from_secs(30)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_deadline);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut report = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            () = &mut until_deadline => break,
            _ = &mut stop => break,
            item = activity.recv() => match item {
                Ok(item) if !quiet => {
                    let country = item.country.as_deref().unwrap_or("--");
                    let who = if item.login.is_empty() { "(anonymous)" } else { &item.login };
                    println!(
                        "  box  {:<44} {:<30} {:<39} {}",
                        item.event_type, who, item.ip, country
                    );
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) if !quiet => println!("  ... {n} more events"),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            _ = report.tick() => if !quiet {
                print_status(&watches, &idr_sim);
            },
        }
    }

    // Stop the simulated activity and let the appliance finish what Box already has.
    box_sim.pause_generation(true);
    if !quiet {
        println!();
        println!("Activity paused; waiting for the appliance to deliver what it collected...");
    }
    drain(&box_sim, &store, &mut watches).await;
    let _ = stop_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let collected = watches.stream.borrow().appended + watches.sweep.borrow().appended;
    let summary = summarise(&box_sim, &idr_sim, collected);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!();
        println!(
            "Box events generated: {}, collected: {}, delivered: UEF {} / Log Search {}, lost: {}, duplicates: {}, invalid UEF: {}",
            summary.box_events_generated,
            summary.collected,
            summary.delivered.uef,
            summary.delivered.logsearch,
            summary.lost,
            summary.duplicates,
            summary.uef_rejected
        );
    }
    store.close().await?;
    idr_sim.shutdown().await;
    box_sim.shutdown().await;
    Ok(ExitCode::Ok)
}

/// Waits (bounded) until every generated event is collected and no sink has anything pending.
async fn drain(box_sim: &box_sim::SimHandle, store: &Store, watches: &mut Watches) {
    let until = Instant::now() + DRAIN_DEADLINE;
    while Instant::now() < until {
        let generated = box_sim.events_generated();
        let collected = watches.stream.borrow().appended + watches.sweep.borrow().appended;
        let pending = store.stats().await.map_or(u64::MAX, |s| {
            s.pending_per_sink.iter().map(|p| p.pending).sum()
        });
        if collected >= generated && pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The appliance's parts, pointed at the simulators: client-credentials grant, streaming +
/// completeness sweep (short lag so the sweep shows), both sinks over TLS trusting the
/// simulator's CA.
async fn parts(
    config: &box_sim::SimConfig,
    sim: &box_sim::SimHandle,
    idr: &idr_sim::SimHandle,
    store: Store,
) -> anyhow::Result<Parts> {
    let client = http::client(Duration::from_secs(30))?;
    let auth = AuthClient::new(
        client.clone(),
        url::Url::parse(&sim.authorize_url())?,
        &url::Url::parse(&sim.token_base())?,
        config.client_id.clone(),
        Secret::new(config.client_secret.clone()),
    )?;
    let grant = Grant::ClientCredentials {
        enterprise_id: config.enterprise_id.clone(),
    };
    let tokens = Arc::new(TokenManager::load(auth, grant, store.clone()).await?);
    let api = url::Url::parse(&sim.api_base())?;
    let mapping = boxidr_config::Mapping {
        default_domain: Some("CORP".to_owned()),
        ..boxidr_config::Mapping::default()
    };
    let ca = idr.ca_pem().into_bytes();
    let collector = CollectorSettings::new(
        "127.0.0.1",
        idr.uef_addr().port(),
        CollectorTransport::Tls {
            ca_pem: ca.clone(),
            server_name: None,
        },
    );
    let token = idr
        .config()
        .tokens
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the InsightIDR simulator has no log token"))?;
    let mut log_search =
        LogSearchSettings::new(idr.logsearch_base().parse()?, LogToken::new(token));
    log_search.roots = TrustRoots::CustomCa(ca);
    Ok(Parts {
        store,
        tokens,
        events: EventsClient::new(client.clone(), &api, 16 << 20),
        users: UsersClient::new(client, &api, 16 << 20),
        collect: CollectConfig {
            mode: Mode::Streaming { completeness: true },
            limit: 500,
            interval: Duration::from_secs(1),
            lag: Duration::from_secs(5),
            min_step: Duration::from_secs(5),
            max_window: collect::MAX_SWEEP_WINDOW,
            backfill: Duration::from_secs(7 * 86_400),
        },
        render: Arc::new(Renderer {
            settings: boxidr_normalize::Settings::from_mapping(&mapping, env!("CARGO_PKG_VERSION")),
            directory: Arc::new(Directory::default()),
        }),
        sinks: Sinks {
            collector: SinkPlan::Run(collector),
            log_search: SinkPlan::Run(log_search),
        },
        forwarder: ForwarderOptions::default(),
        users_every: Duration::from_secs(6 * 3600),
    })
}

fn print_status(watches: &Watches, idr: &idr_sim::SimHandle) {
    let stream: PollStatus = watches.stream.borrow().clone();
    let sweep: SweepStatus = watches.sweep.borrow().clone();
    if let Some(reason) = stream.halted.as_ref().or(sweep.halted.as_ref()) {
        println!("  boxidr  Box polling stopped: {reason}");
    } else if let Some(error) = stream.last_error.as_ref().or(sweep.last_error.as_ref()) {
        println!("  boxidr  Box: retrying after: {error}");
    }
    let counts = idr.delivery_counts();
    println!(
        "  boxidr  collected {} (stream {}, history sweep {} up to {}; {} repeats dropped) | {} | {} | seen by InsightIDR: {} logins, {} raw",
        stream.appended + sweep.appended,
        stream.appended,
        sweep.appended,
        sweep.covered_until.as_deref().unwrap_or("-"),
        stream.duplicates + sweep.duplicates,
        sink_line("UEF", &watches.collector.borrow()),
        sink_line("Log Search", &watches.log_search.borrow()),
        counts.uef.ids().len(),
        counts.logsearch.ids().len(),
    );
}

fn sink_line(name: &str, status: &SinkStatus) -> String {
    match &status.state {
        SinkState::Retrying { error, .. } => format!("{name}: retrying ({error})"),
        SinkState::ConfigError { reason } => format!("{name}: stopped ({reason})"),
        _ => format!("{name}: {} sent", status.delivered),
    }
}

/// Counts measured at the simulators, never inferred from the appliance's own claims.
fn summarise(
    box_sim: &box_sim::SimHandle,
    idr_sim: &idr_sim::SimHandle,
    collected: u64,
) -> Summary {
    let generated: BTreeSet<String> = box_sim.generated_ids().into_iter().collect();
    let counts = idr_sim.delivery_counts();
    let collector = counts.uef.ids();
    let log_search = counts.logsearch.ids();
    let lost = generated
        .iter()
        .filter(|id| !collector.contains(*id) && !log_search.contains(*id))
        .count();
    Summary {
        box_events_generated: box_sim.events_generated(),
        collected,
        delivered: Delivered {
            uef: count(collector.len()),
            logsearch: count(log_search.len()),
        },
        lost: count(lost),
        duplicates: counts.uef.duplicates() + counts.logsearch.duplicates(),
        uef_rejected: count(idr_sim.uef_rejected().len()),
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
