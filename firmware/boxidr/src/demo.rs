//! `boxidr demo`: the newcomer's tour. Starts the Box and InsightIDR simulators on loopback,
//! shows live simulated Box activity, and (with `--auto --json`) ends with a summary of what
//! was generated, collected and delivered, measured at the simulators.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use boxidr_boxapi::collect::{self, CollectConfig, CollectStatus, Mode};
use boxidr_boxapi::{
    AuthClient, EventsClient, Grant, PollStatus, Secret, SweepStatus, TokenManager, http,
};
use boxidr_store::{SinkId, Store, StoreOptions};
use tokio::sync::watch;

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::cli::DemoArgs;
use crate::exit::ExitCode;
use crate::run::shutdown_signal;

/// The last line of `demo --auto --json`.
#[derive(Debug, Serialize)]
struct Summary {
    box_events_generated: u64,
    collected: u64,
    delivered: Delivered,
    lost: u64,
    duplicates: u64,
}

#[derive(Debug, Serialize)]
struct Delivered {
    collector: u64,
    log_search: u64,
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
    let idr_sim =
        idr_sim::IdrSim::start(idr_sim::SimConfig::default(), idr_sim::Listen::default()).await?;

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

    // The collector: the Box side of the pipeline, on a throw-away database.
    let data_dir = tempfile::tempdir()?;
    let store = Store::open(StoreOptions::new(data_dir.path().join("boxidr.redb"))).await?;
    store
        .set_enabled_sinks(&[SinkId::Collector, SinkId::LogSearch])
        .await?;
    let status = CollectStatus::new();
    let mut status_rx = status.stream.subscribe();
    let mut sweep_rx = status.sweep.subscribe();
    let (stop_tx, stop_rx) = watch::channel(false);
    let collector = tokio::spawn(collect(
        box_config,
        box_sim.clone(),
        store.clone(),
        status,
        stop_rx,
    ));
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
            changed = status_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let status = status_rx.borrow_and_update().clone();
                if !quiet {
                    print_status(&status, &sweep_rx.borrow());
                }
            }
            changed = sweep_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let sweep = sweep_rx.borrow_and_update().clone();
                if !quiet {
                    print_status(&status_rx.borrow(), &sweep);
                }
            }
        }
    }

    let _ = stop_tx.send(true);
    collector.await??;
    let collected = status_rx.borrow().appended + sweep_rx.borrow().appended;
    let summary = summarise(&box_sim, &idr_sim, collected);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!();
        println!(
            "Box events generated: {}, collected: {}, delivered: collector {} / log search {}, lost: {}, duplicates: {}",
            summary.box_events_generated,
            summary.collected,
            summary.delivered.collector,
            summary.delivered.log_search,
            summary.lost,
            summary.duplicates
        );
    }
    idr_sim.shutdown().await;
    box_sim.shutdown().await;
    Ok(ExitCode::Ok)
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
            collector: count(collector.len()),
            log_search: count(log_search.len()),
        },
        lost: count(lost),
        duplicates: counts.uef.duplicates() + counts.logsearch.duplicates(),
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The Box side of the appliance: client-credentials grant, streaming poller with the
/// completeness sweep (short lag so the demo shows it working), redb queue.
async fn collect(
    config: box_sim::SimConfig,
    sim: box_sim::SimHandle,
    store: Store,
    status: CollectStatus,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = http::client(Duration::from_secs(30))?;
    let auth = AuthClient::new(
        client.clone(),
        url::Url::parse(&sim.authorize_url())?,
        &url::Url::parse(&sim.token_base())?,
        config.client_id,
        Secret::new(config.client_secret),
    )?;
    let grant = Grant::ClientCredentials {
        enterprise_id: config.enterprise_id,
    };
    let tokens = Arc::new(TokenManager::load(auth, grant, store.clone()).await?);
    let events = EventsClient::new(client, &url::Url::parse(&sim.api_base())?, 16 << 20);
    let plan = CollectConfig {
        mode: Mode::Streaming { completeness: true },
        limit: 500,
        interval: Duration::from_secs(1),
        lag: Duration::from_secs(5),
        min_step: Duration::from_secs(5),
        max_window: collect::MAX_SWEEP_WINDOW,
        backfill: Duration::from_secs(7 * 86_400),
    };
    collect::run(plan, events, &tokens, &store, status, stop).await?;
    Ok(())
}

fn print_status(stream: &PollStatus, sweep: &SweepStatus) {
    if let Some(reason) = stream.halted.as_ref().or(sweep.halted.as_ref()) {
        println!("  boxidr  polling stopped: {reason}");
    } else if let Some(error) = stream.last_error.as_ref().or(sweep.last_error.as_ref()) {
        println!("  boxidr  retrying after: {error}");
    } else {
        println!(
            "  boxidr  collected {} events: {} live from the stream, {} from the history sweep (read up to {}); {} repeats dropped",
            stream.appended + sweep.appended,
            stream.appended,
            sweep.appended,
            sweep.covered_until.as_deref().unwrap_or("-"),
            stream.duplicates + sweep.duplicates
        );
    }
}
