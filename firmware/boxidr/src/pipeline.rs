//! The wiring shared by `run` and `demo`: the Box side (stream + sweep) filling the store, the
//! user directory read from the store for rendering, and one forwarder per configured sink.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use boxidr_boxapi::collect::{self, CollectConfig, CollectStatus};
use boxidr_boxapi::users::{self, SyncTask};
use boxidr_boxapi::{EventsClient, PollStatus, SweepStatus, TokenManager, UsersClient};
use boxidr_forward::{
    CollectorSettings, CollectorSink, Forwarder, ForwarderOptions, LogSearchSettings,
    LogSearchSink, Render, SinkState, SinkStatus,
};
use boxidr_normalize::{CachedDirectory, Settings};
use boxidr_store::{QueuedRecord, SinkId, Store};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Renders queued Box events through `boxidr-normalize`: UEF lines for the Collector, raw
/// records for Log Search, with the Box user directory (the store's users behind a bounded
/// cache of parsed ones), and counts the records the `[scope]` kept from each sink.
#[derive(Debug)]
pub struct Renderer {
    pub settings: Settings,
    pub directory: Arc<CachedDirectory>,
    /// Records rendered to nothing because they concern no monitored user: Collector, Log Search.
    out_of_scope: [AtomicU64; 2],
}

impl Renderer {
    /// A renderer whose directory knows nobody until the pipeline attaches the store's users.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            directory: Arc::new(CachedDirectory::default()),
            out_of_scope: Default::default(),
        }
    }

    /// Records kept from `sink` because they concern no monitored user (`[scope]`).
    pub fn out_of_scope(&self, sink: SinkId) -> u64 {
        self.out_of_scope_counter(sink).load(Ordering::Relaxed)
    }

    fn out_of_scope_counter(&self, sink: SinkId) -> &AtomicU64 {
        &self.out_of_scope[usize::from(sink == SinkId::LogSearch)]
    }
}

impl Render for Renderer {
    fn render(&self, sink: SinkId, record: &QueuedRecord) -> Option<String> {
        // Each sink renders only its own output (the Collector never serialises the raw record).
        let want = match sink {
            SinkId::Collector => boxidr_normalize::Want::Uef,
            SinkId::LogSearch => boxidr_normalize::Want::Raw,
        };
        let rendered = boxidr_normalize::render_record_for(
            &record.event_json,
            record.collected_at_ms,
            self.directory.as_ref(),
            &self.settings,
            want,
        );
        if rendered.out_of_scope {
            self.out_of_scope_counter(sink)
                .fetch_add(1, Ordering::Relaxed);
        }
        match sink {
            SinkId::Collector => rendered.uef,
            SinkId::LogSearch => rendered.raw,
        }
    }

    /// The Collector only takes ingress events (logins): the store passes over the rest
    /// without decoding them. A record whose header has no type is read (render decides).
    fn wanted(&self, sink: SinkId) -> Option<boxidr_store::RecordFilter> {
        let oauth = self.settings.oauth_as_ingress;
        (sink == SinkId::Collector).then(|| {
            let filter: boxidr_store::RecordFilter = Arc::new(move |event_type: Option<&str>| {
                event_type
                    .is_none_or(|t| boxidr_normalize::ingress_result(Some(t), oauth).is_some())
            });
            filter
        })
    }
}

/// Where each part reports; the health model and the status output read these.
#[derive(Debug, Clone)]
pub struct Watches {
    pub tokens: Arc<TokenManager>,
    pub stream: watch::Receiver<PollStatus>,
    pub sweep: watch::Receiver<SweepStatus>,
    pub collector: watch::Receiver<SinkStatus>,
    pub log_search: watch::Receiver<SinkStatus>,
    /// The canary verifier (`NotConfigured` without a Platform API key).
    pub verifier: watch::Receiver<boxidr_forward::verify::CanaryStatus>,
}

/// What to do with one sink.
#[derive(Debug)]
pub enum SinkPlan<S> {
    /// Not configured: the sink holds nothing back in the queue.
    Off,
    Run(S),
    /// Configured but unusable (missing token, unreadable CA): the queue is kept for it, no
    /// forwarder runs, and its status says why until the settings are fixed.
    Broken(String),
}

impl<S> SinkPlan<S> {
    fn enabled(&self) -> bool {
        !matches!(self, Self::Off)
    }
}

/// The sinks to run.
#[derive(Debug)]
pub struct Sinks {
    pub collector: SinkPlan<CollectorSettings>,
    pub log_search: SinkPlan<LogSearchSettings>,
}

/// Everything the pipeline needs.
#[derive(Debug)]
pub struct Parts {
    pub store: Store,
    pub tokens: Arc<TokenManager>,
    pub events: EventsClient,
    pub users: UsersClient,
    pub collect: CollectConfig,
    pub render: Arc<Renderer>,
    pub sinks: Sinks,
    pub forwarder: ForwarderOptions,
    /// How often the users sync runs.
    pub users_every: Duration,
    /// The canary verifier, when a Platform API key is stored.
    pub canary: crate::canary::Canary,
    /// Where the stream, the sweep and each forwarder report liveness (systemd watchdog).
    pub supervision: crate::watchdog::Supervision,
}

/// Starts the pipeline's tasks on `tasks`; they stop when `shutdown` turns true.
pub async fn start(
    parts: Parts,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Watches> {
    let Parts {
        store,
        tokens,
        events,
        users,
        collect: plan,
        render,
        sinks,
        forwarder: options,
        users_every,
        canary,
        supervision,
    } = parts;
    let mut enabled = Vec::new();
    if sinks.collector.enabled() {
        enabled.push(SinkId::Collector);
    }
    if sinks.log_search.enabled() {
        enabled.push(SinkId::LogSearch);
    }
    // Every task below starts from what the store holds, so grouped writes may go on (after
    // a rollback of answered commits, see `watch_rollbacks`).
    store.lift_fence().await?;
    {
        let (rollbacks, stop) = (store.rollbacks(), shutdown.clone());
        tasks.spawn(watch_rollbacks(rollbacks, stop));
    }
    store.set_enabled_sinks(&enabled).await?;
    // The directory reads the users where the sync stores them (one reader: it survives the
    // store's reopens) and forgets what it parsed after each sync.
    let reader = store.user_reader().await?;
    render
        .directory
        .attach(Arc::new(move |id: &str| reader.get(id)));
    let verifier = crate::canary::start(canary, store.clone(), &enabled, tasks, shutdown);

    let mut status = CollectStatus::new();
    status.stream_pulse = supervision.watchdog.part("stream", supervision.box_budget);
    status.sweep_pulse = supervision.watchdog.part("sweep", supervision.box_budget);
    let stream = status.stream.subscribe();
    let sweep = status.sweep.subscribe();
    // Wake the forwarders as soon as a page lands instead of at their idle poll.
    let (wake_tx, wake_rx) = watch::channel(0u64);
    let mut pages = (stream.clone(), sweep.clone());
    let waker_stop = shutdown.clone();
    tasks.spawn(async move {
        let mut stop = waker_stop;
        loop {
            tokio::select! {
                r = pages.0.changed() => if r.is_err() { break },
                r = pages.1.changed() => if r.is_err() { break },
                _ = stop.changed() => break,
            }
            wake_tx.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    });

    {
        let (store, tokens, stop) = (store.clone(), tokens.clone(), shutdown.clone());
        tasks.spawn(async move {
            collect::run(plan, events, &tokens, &store, status, stop).await?;
            Ok(())
        });
    }
    // With groups in the scope, membership is only known after a users sync: until the first
    // one succeeds the forwarders wait (records stay queued) rather than judge every group
    // member out of scope and acknowledge their events unsent.
    let scoped_groups = !render.settings.scope.scope().groups.is_empty();
    let (synced_tx, synced_rx) = watch::channel(!scoped_groups);
    {
        let task = SyncTask {
            store: store.clone(),
            tokens: tokens.clone(),
            client: users,
            every: users_every,
            scope: render.settings.scope.scope().clone(),
            synced: synced_tx,
        };
        let (render, stop) = (render.clone(), shutdown.clone());
        tasks.spawn(async move {
            let after_sync = move |_: &users::SyncReport| {
                render.directory.forget();
                tracing::info!(
                    out_of_scope_collector = render.out_of_scope(SinkId::Collector),
                    out_of_scope_log_search = render.out_of_scope(SinkId::LogSearch),
                    "Records kept from the sinks so far: they concern no monitored user."
                );
            };
            users::keep_synced(task, after_sync, stop).await;
            Ok(())
        });
    }

    {
        let (store, stop) = (store.clone(), shutdown.clone());
        tasks.spawn(expire_seen(store, stop));
    }

    let render: Arc<dyn Render> = render;
    let collector = match sinks.collector {
        SinkPlan::Run(settings) => {
            let sink = CollectorSink::new(settings)?;
            let (forwarder, status) =
                Forwarder::new(store.clone(), sink, render.clone(), options.clone());
            let pulse = forwarder_pulse(&supervision, SinkId::Collector);
            let forwarder = forwarder.with_wake(wake_rx.clone()).with_pulse(pulse);
            let stop = shutdown.clone();
            let synced = synced_rx.clone();
            tasks.spawn(async move {
                if users::wait_for_first_sync(synced, stop.clone(), SinkId::Collector).await {
                    forwarder.run(stop).await;
                }
                Ok(())
            });
            status
        }
        SinkPlan::Broken(reason) => broken(SinkId::Collector, reason),
        SinkPlan::Off => watch::channel(SinkStatus::disabled(SinkId::Collector)).1,
    };
    let log_search = match sinks.log_search {
        SinkPlan::Run(settings) => {
            let sink = LogSearchSink::new(settings)?;
            let (forwarder, status) = Forwarder::new(store.clone(), sink, render, options);
            let pulse = forwarder_pulse(&supervision, SinkId::LogSearch);
            let (forwarder, stop) = (
                forwarder.with_wake(wake_rx).with_pulse(pulse),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                if users::wait_for_first_sync(synced_rx, stop.clone(), SinkId::LogSearch).await {
                    forwarder.run(stop).await;
                }
                Ok(())
            });
            status
        }
        SinkPlan::Broken(reason) => broken(SinkId::LogSearch, reason),
        SinkPlan::Off => watch::channel(SinkStatus::disabled(SinkId::LogSearch)).1,
    };
    Ok(Watches {
        tokens,
        stream,
        sweep,
        collector,
        log_search,
        verifier,
    })
}

/// A forwarder's liveness part, idle until the forwarder runs (it may wait for the first
/// users sync, which retries with a growing backoff).
fn forwarder_pulse(
    supervision: &crate::watchdog::Supervision,
    sink: SinkId,
) -> boxidr_model::Pulse {
    let pulse = supervision.watchdog.part(
        format!("forwarder:{sink}"),
        crate::watchdog::FORWARDER_BUDGET,
    );
    pulse.idle();
    pulse
}

fn broken(sink: SinkId, reason: String) -> watch::Receiver<SinkStatus> {
    tracing::error!(%sink, %reason, "Sink not started; its records stay queued.");
    watch::channel(SinkStatus::new(sink, SinkState::ConfigError { reason })).1
}

/// How often event ids older than the store's seen TTL (beyond Box's duplicate window) are
/// forgotten, so the dedupe table stays bounded.
const EXPIRE_SEEN_EVERY: Duration = Duration::from_secs(3600);

/// Forgets old seen event ids now and then every [`EXPIRE_SEEN_EVERY`]. A failure is logged
/// and retried next time (the table only grows meanwhile).
async fn expire_seen(store: Store, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        let now_ms = boxidr_model::clock::now_ms();
        match store.expire_seen(now_ms).await {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(removed, "Forgot event ids older than the dedupe window.")
            }
            Err(e) => tracing::warn!(error = %e, "Cannot expire old event ids; retrying later."),
        }
        tokio::select! {
            () = tokio::time::sleep(EXPIRE_SEEN_EVERY) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Ends the pipeline with an error when the store rolls back commits it had already answered
/// (group commit, after a storage error): the pollers and forwarders hold positions the store
/// no longer has, so the supervisor stops every task and starts them again from the store. The
/// store refuses page commits and acks meanwhile, so no task can commit past the lost pages.
async fn watch_rollbacks(
    mut rollbacks: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    rollbacks.borrow_and_update();
    let rolled_back = tokio::select! {
        changed = rollbacks.changed() => changed.is_ok(),
        _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
    };
    if rolled_back {
        anyhow::bail!(
            "the store rolled back grouped commits after a storage error; restarting from the stored cursors"
        );
    }
    // The store has stopped: nothing more can roll back.
    let _ = shutdown.wait_for(|stop| *stop).await;
    Ok(())
}

#[cfg(test)]
#[path = "pipeline_scope_tests.rs"]
mod scope_tests;
