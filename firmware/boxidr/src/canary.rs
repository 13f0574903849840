//! The canary verifier, wired into the pipeline: with a Platform API key stored, a round runs
//! shortly after start and then every `insightidr.verifier.every_secs` (6 h by default).
//!
//! A round puts two canary records INTO THE QUEUE (`boxidr_normalize::canary`: a synthetic
//! login and a raw-only event, both carrying a fresh `boxidr-canary-<hex>` marker), so they
//! travel exactly the path Box events travel: store, render at send time, each sink. It then
//! searches Log Search for the marker (`Verifier::search`, 202 + `links` polling) every
//! `search_every_secs` until each enabled sink's record is found or the deadline passes
//! (10 min by default). A hit that is a UEF line confirms the Collector path; a hit that is a
//! raw record confirms the Log Search path. Each sink's [`VerifierState`] goes
//! Pending → Confirmed or NotSeen, and feeds the health facts and the status document.
//!
//! Without a key nothing is queued and both states stay `NotConfigured`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use boxidr_config::Config;
use boxidr_forward::verify::canary_marker;
use boxidr_forward::{ApiKey, TrustRoots, Verifier, VerifierSettings};
use boxidr_health::VerifierState;
use boxidr_model::BoxEvent;
use boxidr_setup::keys;
use boxidr_store::{CursorKey, PageCommit, SinkId, Store};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use boxidr_model::clock::now_ms;

/// The (never stored: canary pages carry no position) cursor name canary pages are committed
/// under, so their records are recognisable as not coming from a Box read.
pub const CANARY_CURSOR: &str = "canary";

/// Store counter of canary records queued (they are in `events_appended` too, but are not Box
/// events: subtract this to count Box events).
pub const COUNTER_CANARY_RECORDS: &str = "canary_records";

/// Longest one search may spend following its poll links.
const SEARCH_WITHIN: Duration = Duration::from_secs(60);

/// Margin before the canary's queue time for the query window (clock skew between the
/// appliance and InsightIDR).
const SINCE_MARGIN: Duration = Duration::from_secs(60);

/// A running canary schedule.
#[derive(Debug)]
pub struct CanaryPlan {
    pub verifier: Verifier,
    /// Between rounds.
    pub every: Duration,
    /// Before the first round.
    pub first_after: Duration,
    /// How long a canary may take to show up.
    pub deadline: Duration,
    /// Between searches while a canary is pending.
    pub search_every: Duration,
}

/// Whether and how the verifier runs.
#[derive(Debug)]
pub enum Canary {
    /// No Platform API key: nothing is queued, the states stay `NotConfigured`.
    Off,
    /// A key is stored but the verifier cannot be built (bad URL, unreadable CA).
    Broken(String),
    Run(Box<CanaryPlan>),
}

/// What the verifier reports: the status report's `verifier` section.
pub use boxidr_health::VerifierReport as CanaryStatus;

/// The verifier state of one sink in [`CanaryStatus`], by the store's sink id.
pub(crate) trait PerSink {
    /// Sets one sink's state.
    fn set(&mut self, sink: SinkId, state: VerifierState);
    /// The state for one sink.
    fn state(&self, sink: SinkId) -> VerifierState;
}

impl PerSink for CanaryStatus {
    fn set(&mut self, sink: SinkId, state: VerifierState) {
        match sink {
            SinkId::Collector => self.collector = state,
            SinkId::LogSearch => self.log_search = state,
        }
    }

    fn state(&self, sink: SinkId) -> VerifierState {
        match sink {
            SinkId::Collector => self.collector,
            SinkId::LogSearch => self.log_search,
        }
    }
}

/// The verifier from the settings file and the stored Platform API key.
pub async fn plan(config: &Config, store: &Store) -> Canary {
    let key = match store.get_secret(keys::PLATFORM_API_KEY.to_owned()).await {
        Ok(Some(key)) => String::from_utf8_lossy(key.expose()).trim().to_owned(),
        Ok(None) => return Canary::Off,
        Err(e) => return Canary::Broken(format!("cannot read the Platform API key: {e}")),
    };
    if key.is_empty() {
        return Canary::Off;
    }
    let v = &config.insightidr.verifier;
    let base = match config.insightidr.platform_api_base() {
        Ok(base) => base,
        Err(e) => return Canary::Broken(e.to_string()),
    };
    let mut settings = VerifierSettings::new(base, ApiKey::new(key));
    match boxidr_boxapi::http::outbound_proxy(&config.network, store).await {
        Ok(proxy) => settings.proxy = proxy,
        Err(e) => return Canary::Broken(e),
    }
    match trust_roots(config) {
        Ok(roots) => settings.roots = roots,
        Err(e) => return Canary::Broken(e),
    }
    match Verifier::new(settings) {
        Ok(verifier) => Canary::Run(Box::new(CanaryPlan {
            verifier,
            every: Duration::from_secs(v.every_secs),
            first_after: Duration::from_secs(v.first_after_secs),
            deadline: Duration::from_secs(v.deadline_secs),
            search_every: Duration::from_secs(v.search_every_secs),
        })),
        Err(e) => Canary::Broken(format!("Platform API client: {e}")),
    }
}

/// What the Platform API's certificate is checked against: `insightidr.verifier.ca_file` when
/// set (a TLS-inspecting proxy, the simulator), else the operating system's roots.
pub fn trust_roots(config: &Config) -> Result<TrustRoots, String> {
    match &config.insightidr.verifier.ca_file {
        Some(path) => boxidr_forward::collector::read_ca_file(path)
            .map(TrustRoots::CustomCa)
            .map_err(|e| format!("Platform API CA: {e}")),
        None => Ok(TrustRoots::Platform),
    }
}

/// Starts the verifier for the enabled `sinks` on `tasks` (nothing when it is off); the
/// receiver always reports its status.
pub fn start(
    canary: Canary,
    store: Store,
    sinks: &[SinkId],
    tasks: &mut JoinSet<anyhow::Result<()>>,
    shutdown: &watch::Receiver<bool>,
) -> watch::Receiver<CanaryStatus> {
    match canary {
        Canary::Off => watch::channel(CanaryStatus::default()).1,
        Canary::Broken(reason) => {
            warn!(%reason, "The canary verifier cannot run.");
            watch::channel(CanaryStatus {
                configured: true,
                last_error: Some(reason),
                ..CanaryStatus::default()
            })
            .1
        }
        Canary::Run(plan) => {
            let (tx, rx) = watch::channel(CanaryStatus {
                configured: true,
                ..CanaryStatus::default()
            });
            let sinks = sinks.to_vec();
            tasks.spawn(run(*plan, store, sinks, tx, shutdown.clone()));
            rx
        }
    }
}

/// The schedule: a round after `first_after`, then every `every`, until shutdown. Never ends
/// on its own (the supervisor treats an ended task as a failure).
async fn run(
    plan: CanaryPlan,
    store: Store,
    sinks: Vec<SinkId>,
    status: watch::Sender<CanaryStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut wait = plan.first_after;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if !sinks.is_empty() && round(&plan, &store, &sinks, &status, &mut shutdown).await {
            return Ok(());
        }
        wait = plan.every;
    }
}

/// One round: queue, then search until every sink is confirmed or the deadline passes.
/// `true` when shutdown interrupted it.
async fn round(
    plan: &CanaryPlan,
    store: &Store,
    sinks: &[SinkId],
    status: &watch::Sender<CanaryStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let marker = canary_marker();
    let queued_ms = now_ms();
    let events = boxidr_normalize::canary::events(&marker, queued_ms)
        .into_iter()
        .filter_map(|v| BoxEvent::from_value(v).ok())
        .collect();
    let page = PageCommit {
        cursor: CursorKey::Sweep(CANARY_CURSOR.to_owned()),
        events,
        next_position: None,
        last_created_at: None,
        window: None,
        collected_at_ms: queued_ms,
    };
    match store.commit_page(page).await {
        Ok(outcome) => {
            if let Err(e) = store
                .add_counter(COUNTER_CANARY_RECORDS.to_owned(), outcome.appended)
                .await
            {
                warn!(error = %e, "Cannot count the canary records.");
            }
        }
        Err(e) => {
            warn!(error = %e, "Cannot queue the canary; next round at the next period.");
            status.send_modify(|s| s.last_error = Some(format!("cannot queue the canary: {e}")));
            return false;
        }
    }
    info!(%marker, "Canary queued.");
    status.send_modify(|s| {
        s.rounds += 1;
        s.marker = Some(marker.clone());
        for sink in sinks {
            s.set(
                *sink,
                VerifierState::Pending {
                    since_ms: queued_ms,
                },
            );
        }
    });
    let since = SystemTime::now() - SINCE_MARGIN;
    let give_up = tokio::time::Instant::now() + plan.deadline;
    let mut unseen: BTreeSet<SinkId> = sinks.iter().copied().collect();
    let mut logs: Option<Vec<String>> = None;
    while !unseen.is_empty() {
        let pause = plan
            .search_every
            .min(give_up.saturating_duration_since(tokio::time::Instant::now()));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return true,
        }
        let searched = tokio::select! {
            r = search(&plan.verifier, &mut logs, &marker, since) => r,
            _ = shutdown.changed() => return true,
        };
        match searched {
            Ok(messages) => {
                status.send_modify(|s| s.last_error = None);
                for message in &messages {
                    let Some(sink) = path_of(message) else {
                        continue;
                    };
                    if unseen.remove(&sink) {
                        info!(%sink, %marker, "Canary seen in InsightIDR.");
                        status.send_modify(|s| {
                            s.set(sink, VerifierState::Confirmed { at_ms: now_ms() })
                        });
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "Canary search failed; retrying until the deadline.");
                status.send_modify(|s| s.last_error = Some(e));
            }
        }
        if !unseen.is_empty() && tokio::time::Instant::now() >= give_up {
            let at_ms = now_ms();
            for sink in std::mem::take(&mut unseen) {
                warn!(%sink, %marker, "Canary not seen in InsightIDR before the deadline.");
                status.send_modify(|s| s.set(sink, VerifierState::NotSeen { at_ms }));
            }
        }
    }
    false
}

/// One search over every log the key can query (listed once per round).
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

/// Which path a found message came by: a canary UEF line is the Collector's, a canary raw
/// record is Log Search's. Anything else that merely contains the marker confirms nothing.
pub fn path_of(message: &str) -> Option<SinkId> {
    let value: Value = serde_json::from_str(message).ok()?;
    let flag = |v: &Value| v.get("boxidr_canary").and_then(Value::as_bool) == Some(true);
    if value.get("event_type").and_then(Value::as_str) == Some("INGRESS_AUTHENTICATION")
        && value.get("custom_data").is_some_and(flag)
    {
        Some(SinkId::Collector)
    } else if value.get("boxidr_kind").is_some() && flag(&value) {
        Some(SinkId::LogSearch)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup should panic loudly

    use std::sync::Arc;

    use boxidr_forward::{
        BackoffPolicy, CollectorSettings, CollectorSink, CollectorTransport, Forwarder,
        ForwarderOptions, LogSearchSettings, LogSearchSink, LogToken, Render,
    };
    use boxidr_store::{Secret, StoreOptions};

    use super::*;
    use crate::pipeline::{Directory, Renderer};

    /// Generous bound for conditions polled under emulation (qemu is 5-10x slower).
    const WAIT: Duration = Duration::from_secs(120);

    struct Rig {
        _dir: tempfile::TempDir,
        store: Store,
        sim: idr_sim::SimHandle,
        tasks: JoinSet<anyhow::Result<()>>,
        stop: watch::Sender<bool>,
        stop_rx: watch::Receiver<bool>,
    }

    /// A store with both sinks enabled and their real forwarders running against idr-sim,
    /// rendering through `boxidr-normalize`; `token` is the Log Search token the appliance uses.
    async fn rig(token: Option<&str>) -> Rig {
        let sim = idr_sim::IdrSim::start(idr_sim::SimConfig::default(), idr_sim::Listen::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path().join("boxidr.redb")))
            .await
            .unwrap();
        store.set_enabled_sinks(&SinkId::ALL).await.unwrap();
        let render: Arc<dyn Render> = Arc::new(Renderer {
            settings: boxidr_normalize::Settings {
                send_unparsed: false,
                ..boxidr_normalize::Settings::default()
            },
            directory: Arc::new(Directory::default()),
        });
        let options = ForwarderOptions {
            idle_poll: Duration::from_millis(50),
            backoff: BackoffPolicy {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(200),
            },
            ..ForwarderOptions::default()
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let collector = CollectorSink::new(CollectorSettings::new(
            "127.0.0.1",
            sim.uef_addr().port(),
            CollectorTransport::Tls {
                ca_pem: sim.ca_pem().into_bytes(),
                server_name: None,
            },
        ))
        .unwrap();
        let token = token.map_or_else(|| sim.config().tokens[0].clone(), str::to_owned);
        let log_search = LogSearchSink::new(LogSearchSettings::new(
            sim.logsearch_base().parse().unwrap(),
            LogToken::new(token),
        ))
        .unwrap();
        let (f, _) = Forwarder::new(store.clone(), collector, render.clone(), options.clone());
        let halt = stop_rx.clone();
        tasks.spawn(async move {
            f.run(halt).await;
            Ok(())
        });
        let (f, _) = Forwarder::new(store.clone(), log_search, render, options);
        let halt = stop_rx.clone();
        tasks.spawn(async move {
            f.run(halt).await;
            Ok(())
        });
        Rig {
            _dir: dir,
            store,
            sim,
            tasks,
            stop,
            stop_rx,
        }
    }

    impl Rig {
        /// The verifier as `plan` builds it from a config pointing at the simulator, with
        /// short test timings.
        async fn plan(&self, with_key: bool) -> Canary {
            if with_key {
                self.store
                    .put_secrets(vec![(
                        keys::PLATFORM_API_KEY.to_owned(),
                        Secret::from(self.sim.config().api_key.as_str()),
                    )])
                    .await
                    .unwrap();
            }
            let mut config = Config::default();
            config.insightidr.verifier.api_base = Some(self.sim.api_base().parse().unwrap());
            config.insightidr.verifier.first_after_secs = 0;
            config.insightidr.verifier.search_every_secs = 1;
            config.insightidr.verifier.deadline_secs = 8;
            match plan(&config, &self.store).await {
                Canary::Run(mut plan) => {
                    plan.search_every = Duration::from_millis(200);
                    Canary::Run(plan)
                }
                other => other,
            }
        }

        /// Waits until neither sink's state is pending (or not yet started).
        async fn settled(&self, status: &mut watch::Receiver<CanaryStatus>) -> CanaryStatus {
            let done = |s: &CanaryStatus| {
                SinkId::ALL.iter().all(|sink| {
                    matches!(
                        s.state(*sink),
                        VerifierState::Confirmed { .. } | VerifierState::NotSeen { .. }
                    )
                })
            };
            tokio::time::timeout(WAIT, status.wait_for(done))
                .await
                .expect("the round settles")
                .unwrap()
                .clone()
        }

        async fn stop(mut self) {
            let _ = self.stop.send(true);
            while let Some(r) = self.tasks.join_next().await {
                r.unwrap().unwrap();
            }
            self.store.close().await.unwrap();
            self.sim.shutdown().await;
        }
    }

    /// With a key and both paths working, the round's UEF line and raw records reach
    /// InsightIDR and both sinks are confirmed; the canary UEF line is valid (nothing was
    /// discarded) and marked, and its records left the queue like any other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confirmed_when_everything_works() {
        let mut rig = rig(None).await;
        let canary = rig.plan(true).await;
        assert!(matches!(canary, Canary::Run(_)), "{canary:?}");
        let mut status = start(
            canary,
            rig.store.clone(),
            &SinkId::ALL,
            &mut rig.tasks,
            &rig.stop_rx,
        );
        let done = rig.settled(&mut status).await;
        assert!(
            matches!(done.collector, VerifierState::Confirmed { .. }),
            "{done:?}"
        );
        assert!(
            matches!(done.log_search, VerifierState::Confirmed { .. }),
            "{done:?}"
        );
        assert_eq!(done.rounds, 1);
        let marker = done.marker.clone().unwrap();
        let uef = rig.sim.uef_records();
        assert_eq!(uef.len(), 1, "one canary login: {uef:?}");
        assert_eq!(uef[0]["custom_data"]["boxidr_canary"], true);
        assert_eq!(
            uef[0]["custom_data"]["box_event_id"],
            format!("{marker}-login")
        );
        assert!(rig.sim.uef_rejected().is_empty());
        let raw = rig.sim.delivery_counts().logsearch.ids();
        let want: BTreeSet<String> = [format!("{marker}-login"), format!("{marker}-raw")].into();
        assert_eq!(raw, want, "both raw records, even with send_unparsed off");
        assert_eq!(
            rig.store
                .counter(COUNTER_CANARY_RECORDS.to_owned())
                .await
                .unwrap(),
            2
        );
        rig.stop().await;
    }

    /// When Log Search answers 204 but keeps nothing (a token it does not know, accepted and
    /// dropped silently), the Log Search path is reported NotSeen at the deadline while the
    /// Collector path is still confirmed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_seen_when_log_search_drops_silently() {
        let mut rig = rig(Some("00000000-0000-4000-8000-000000000000")).await;
        assert_eq!(
            rig.sim.config().unknown_token,
            idr_sim::UnknownTokenBehaviour::AcceptAndDrop
        );
        let canary = rig.plan(true).await;
        let mut status = start(
            canary,
            rig.store.clone(),
            &SinkId::ALL,
            &mut rig.tasks,
            &rig.stop_rx,
        );
        let done = rig.settled(&mut status).await;
        assert!(
            matches!(done.log_search, VerifierState::NotSeen { .. }),
            "{done:?}"
        );
        assert!(
            matches!(done.collector, VerifierState::Confirmed { .. }),
            "{done:?}"
        );
        // The sink did deliver (2xx): only the verifier can tell that nothing arrived.
        let pending = rig.store.stats().await.unwrap().pending_per_sink;
        assert!(pending.iter().all(|p| p.pending == 0), "{pending:?}");
        assert!(!rig.sim.rejected().is_empty(), "the simulator dropped them");
        rig.stop().await;
    }

    /// Without a Platform API key the verifier is off: both states stay NotConfigured and no
    /// canary is queued (the queue and its sequence stay untouched).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_key_no_canary() {
        let mut rig = rig(None).await;
        let canary = rig.plan(false).await;
        assert!(matches!(canary, Canary::Off), "{canary:?}");
        let tasks_before = rig.tasks.len();
        let status = start(
            canary,
            rig.store.clone(),
            &SinkId::ALL,
            &mut rig.tasks,
            &rig.stop_rx,
        );
        assert_eq!(rig.tasks.len(), tasks_before, "no verifier task");
        assert_eq!(*status.borrow(), CanaryStatus::default());
        assert_eq!(status.borrow().collector, VerifierState::NotConfigured);
        let stats = rig.store.stats().await.unwrap();
        assert_eq!((stats.queue_records, stats.newest_seq), (0, None));
        rig.stop().await;
    }

    /// Only marked canary messages confirm a path, and each by its own shape.
    #[test]
    fn paths_by_shape() {
        let uef = r#"{"version":"v1","event_type":"INGRESS_AUTHENTICATION","custom_data":{"boxidr_canary":true}}"#;
        assert_eq!(path_of(uef), Some(SinkId::Collector));
        let raw = r#"{"boxidr_kind":"other","boxidr_canary":true}"#;
        assert_eq!(path_of(raw), Some(SinkId::LogSearch));
        for other in [
            r#"{"boxidr_kind":"other","note":"boxidr-canary-1"}"#,
            r#"{"event_type":"INGRESS_AUTHENTICATION","custom_data":{}}"#,
            "boxidr-canary-1 plain text",
        ] {
            assert_eq!(path_of(other), None, "{other}");
        }
    }
}
