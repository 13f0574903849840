//! The canary verifier, wired into the pipeline: with a Platform API key stored, the rounds of
//! `boxidr_forward::verify` (a sans-IO machine and its thin task) run shortly after start and
//! then every `insightidr.verifier.every_secs` (6 h by default), queueing the canary records
//! `boxidr_normalize::canary` makes. Without a key nothing is queued and both states stay
//! `NotConfigured`.

use std::time::Duration;

use boxidr_config::Config;
use boxidr_forward::verify::{self, CanaryPlan, CanaryStatus, RoundTimings};
use boxidr_forward::{Verifier, VerifierSettings};
use boxidr_model::{BoxEvent, Secret};
use boxidr_store::settings;
use boxidr_store::{SinkId, Store};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::warn;

/// Whether and how the verifier runs.
#[derive(Debug)]
pub enum Canary {
    /// No Platform API key: nothing is queued, the states stay `NotConfigured`.
    Off,
    /// A key is stored but the verifier cannot be built (bad URL, unreadable CA).
    Broken(String),
    Run(Box<CanaryPlan>),
}

/// The verifier from the settings file and the stored Platform API key.
pub async fn plan(config: &Config, store: &Store) -> Canary {
    let key = match store.get_secret(settings::PLATFORM_API_KEY).await {
        Ok(Some(key)) => key.expose().trim().to_owned(),
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
    let mut settings = VerifierSettings::new(base, Secret::new(key));
    match boxidr_boxapi::http::outbound_proxy(&config.network, store).await {
        Ok(proxy) => settings.proxy = proxy,
        Err(e) => return Canary::Broken(e),
    }
    match verify::trust_roots(config) {
        Ok(roots) => settings.roots = roots,
        Err(e) => return Canary::Broken(e),
    }
    match Verifier::new(settings) {
        Ok(verifier) => Canary::Run(Box::new(CanaryPlan {
            verifier,
            timings: RoundTimings {
                first_after: Duration::from_secs(v.first_after_secs),
                every: Duration::from_secs(v.every_secs),
                deadline: Duration::from_secs(v.deadline_secs),
                search_every: Duration::from_secs(v.search_every_secs),
            },
            records,
        })),
        Err(e) => Canary::Broken(format!("Platform API client: {e}")),
    }
}

/// One round's canary records, as the queue takes them.
fn records(marker: &str, at_ms: u64) -> Vec<BoxEvent> {
    boxidr_normalize::canary::events(marker, at_ms)
        .into_iter()
        .filter_map(|v| BoxEvent::from_value(v).ok())
        .collect()
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
    let configured = CanaryStatus {
        configured: true,
        ..CanaryStatus::default()
    };
    match canary {
        Canary::Off => watch::channel(CanaryStatus::default()).1,
        Canary::Broken(reason) => {
            warn!(%reason, "The canary verifier cannot run.");
            watch::channel(CanaryStatus {
                last_error: Some(reason),
                ..configured
            })
            .1
        }
        Canary::Run(plan) => {
            let (tx, rx) = watch::channel(configured);
            let (sinks, shutdown) = (sinks.to_vec(), shutdown.clone());
            // Never ends on its own (the supervisor treats an ended task as a failure).
            tasks.spawn(async move {
                verify::task::run(*plan, store, &sinks, tx, shutdown).await;
                Ok(())
            });
            rx
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup should panic loudly

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use boxidr_forward::{
        BackoffPolicy, CollectorSettings, CollectorSink, CollectorTransport, Forwarder,
        ForwarderOptions, LogSearchSettings, LogSearchSink, Render,
    };
    use boxidr_health::VerifierState;
    use boxidr_store::StoreOptions;

    use super::*;
    use crate::pipeline::Renderer;

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
        let render: Arc<dyn Render> = Arc::new(Renderer::new(boxidr_normalize::Settings {
            send_unparsed: false,
            ..boxidr_normalize::Settings::default()
        }));
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
            Secret::new(token),
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
                        settings::PLATFORM_API_KEY,
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
                    plan.timings.search_every = Duration::from_millis(200);
                    Canary::Run(plan)
                }
                other => other,
            }
        }

        /// Starts `canary` for both sinks in the rig's task set.
        fn start(&mut self, canary: Canary) -> watch::Receiver<CanaryStatus> {
            start(
                canary,
                self.store.clone(),
                &SinkId::ALL,
                &mut self.tasks,
                &self.stop_rx,
            )
        }

        /// Starts `canary` and waits until neither sink's state is pending (or not yet
        /// started).
        async fn settled(&mut self, canary: Canary) -> CanaryStatus {
            let mut status = self.start(canary);
            let done = |s: &CanaryStatus| {
                [s.collector, s.log_search].iter().all(|v| {
                    matches!(
                        v,
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
        let done = rig.settled(canary).await;
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
                .counter(verify::COUNTER_CANARY_RECORDS.to_owned())
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
        let done = rig.settled(canary).await;
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
        let status = rig.start(canary);
        assert_eq!(rig.tasks.len(), tasks_before, "no verifier task");
        assert_eq!(*status.borrow(), CanaryStatus::default());
        assert_eq!(status.borrow().collector, VerifierState::NotConfigured);
        let stats = rig.store.stats().await.unwrap();
        assert_eq!((stats.queue_records, stats.newest_seq), (0, None));
        rig.stop().await;
    }
}
