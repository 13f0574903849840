//! The thin canary task: performs what [`Rounds`] decides against the store and the Platform
//! API, and publishes its [`CanaryStatus`].
//!
//! A round puts its canary records INTO THE QUEUE (made by [`CanaryPlan::records`], in the
//! product `boxidr_normalize::canary::events`: a synthetic login and a raw-only event, both
//! carrying a fresh [`canary_marker`]), so they travel exactly the path Box events travel:
//! store, render at send time, each sink. It then searches Log Search for the marker
//! ([`Verifier::search`], 202 + `links` polling) over every log the key can query (listed once
//! per round) until the machine's verdicts are in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boxidr_config::Config;
use boxidr_model::BoxEvent;
use boxidr_model::clock::now_ms;
use boxidr_store::{CursorKey, PageCommit, SinkId, Store};
use tokio::sync::watch;
use tracing::warn;

use super::round::{Action, CanaryStatus, Now, RoundTimings, Rounds};
use super::{Verifier, canary_marker};
use crate::logsearch::TrustRoots;

/// The (never stored: canary pages carry no position) cursor name canary pages are committed
/// under, so their records are recognisable as not coming from a Box read.
pub const CANARY_CURSOR: &str = "canary";

/// Store counter of canary records queued (they are in `events_appended` too, but are not Box
/// events: subtract this to count Box events).
pub const COUNTER_CANARY_RECORDS: &str = "canary_records";

/// Longest one search may spend following its poll links.
const SEARCH_WITHIN: Duration = Duration::from_secs(60);

/// A running canary schedule.
#[derive(Debug)]
pub struct CanaryPlan {
    pub verifier: Verifier,
    pub timings: RoundTimings,
    /// A round's records for a marker, timed in ms since the epoch (this crate never builds a
    /// Box event itself).
    pub records: fn(&str, u64) -> Vec<BoxEvent>,
}

/// What the Platform API's certificate is checked against: `insightidr.verifier.ca_file` when
/// set (a TLS-inspecting proxy, the simulator), else the operating system's roots.
pub fn trust_roots(config: &Config) -> Result<TrustRoots, String> {
    match &config.insightidr.verifier.ca_file {
        Some(path) => crate::collector::read_ca_file(path)
            .map(TrustRoots::CustomCa)
            .map_err(|e| format!("Platform API CA: {e}")),
        None => Ok(TrustRoots::Platform),
    }
}

/// Runs the rounds for the enabled `sinks` until shutdown, publishing on `status`. Never ends
/// on its own.
pub async fn run(
    plan: CanaryPlan,
    store: Store,
    sinks: &[SinkId],
    status: watch::Sender<CanaryStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut rounds = Rounds::new(plan.timings, sinks, now());
    let mut logs: Option<Vec<String>> = None;
    loop {
        match rounds.step(now()) {
            Action::WaitUntil(at) => tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {}
                _ = shutdown.changed() => return,
            },
            Action::Queue { at_ms } => {
                logs = None;
                let marker = canary_marker();
                let queued = queue(&store, plan.records, &marker, at_ms).await;
                rounds.on_queued(marker, queued, now());
            }
            Action::Search { marker, since_ms } => {
                let since = UNIX_EPOCH + Duration::from_millis(since_ms);
                let searched = tokio::select! {
                    r = search(&plan.verifier, &mut logs, &marker, since) => r,
                    _ = shutdown.changed() => return,
                };
                rounds.on_searched(searched, now());
            }
        }
        status.send_if_modified(|s| {
            let changed = s != rounds.status();
            if changed {
                s.clone_from(rounds.status());
            }
            changed
        });
    }
}

/// Both clocks, read once.
fn now() -> Now {
    Now {
        at: tokio::time::Instant::now().into_std(),
        wall_ms: now_ms(),
    }
}

/// Commits a round's records as one page and counts them.
async fn queue(
    store: &Store,
    records: fn(&str, u64) -> Vec<BoxEvent>,
    marker: &str,
    at_ms: u64,
) -> Result<(), String> {
    let page = PageCommit {
        cursor: CursorKey::Sweep(CANARY_CURSOR.to_owned()),
        events: records(marker, at_ms),
        next_position: None,
        last_created_at: None,
        window: None,
        collected_at_ms: at_ms,
    };
    let outcome = store.commit_page(page).await.map_err(|e| e.to_string())?;
    if let Err(e) = store
        .add_counter(COUNTER_CANARY_RECORDS.to_owned(), outcome.appended)
        .await
    {
        warn!(error = %e, "Cannot count the canary records.");
    }
    Ok(())
}

/// One search over every log the key can query (listed once per round: `logs` is reset by
/// the caller when a round starts).
async fn search(
    verifier: &Verifier,
    logs: &mut Option<Vec<String>>,
    marker: &str,
    since: SystemTime,
) -> Result<Vec<String>, String> {
    let ids = match logs {
        Some(ids) => ids.clone(),
        None => {
            let listed: Vec<String> = verifier
                .logs()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|l| l.id)
                .collect();
            if listed.is_empty() {
                return Err("the Platform API key sees no logs".to_owned());
            }
            logs.insert(listed).clone()
        }
    };
    verifier
        .search(&ids, marker, since, SEARCH_WITHIN)
        .await
        .map_err(|e| e.to_string())
}
