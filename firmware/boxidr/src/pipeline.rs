//! The wiring shared by `run` and `demo`: the Box side (stream + sweep) filling the store, the
//! user directory read from the store for rendering, and one forwarder per configured sink.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use boxidr_boxapi::collect::{self, CollectConfig, CollectStatus};
use boxidr_boxapi::{EventsClient, PollStatus, SweepStatus, TokenManager, UsersClient};
use boxidr_forward::{
    CollectorSettings, CollectorSink, Forwarder, ForwarderOptions, LogSearchSettings,
    LogSearchSink, Render, SinkState, SinkStatus,
};
use boxidr_normalize::{DirectoryUser, Settings, UserDirectory};
use boxidr_store::{QueuedRecord, SinkId, Store, UserReader};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Users kept parsed in memory; beyond it the cache starts over (a bounded working set: the
/// users active in the current stretch of events), so memory does not grow with the enterprise.
const DIRECTORY_CACHE: usize = 2048;

/// The Box user directory for rendering at send time (id → login, status, role, scoped
/// groups), and the count of records the `[scope]` kept from each sink.
///
/// The users live in the store (500,000 users are ~100 MB of JSON there); this holds only a
/// bounded cache of parsed users, and looks the others up in redb through a [`UserReader`]
/// (a read transaction: it never waits for the store's thread, microseconds from the page cache).
#[derive(Debug, Default)]
pub struct Directory {
    reader: RwLock<Option<UserReader>>,
    /// Parsed users, and ids known to be absent (`None`).
    cache: Mutex<HashMap<String, Option<DirectoryUser>>>,
    /// Records rendered to nothing because they concern no monitored user: Collector, Log Search.
    out_of_scope: [std::sync::atomic::AtomicU64; 2],
}

impl Directory {
    /// Points the directory at the store's users and forgets the cache (after a users sync);
    /// returns how many users are stored.
    pub async fn reload(&self, store: &Store) -> Result<usize, boxidr_store::StoreError> {
        let reader = store.user_reader().await?;
        let count = usize::try_from(reader.count()).unwrap_or(usize::MAX);
        if let Ok(mut current) = self.reader.write() {
            *current = Some(reader);
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        Ok(count)
    }

    fn lookup(&self, id: &str) -> Option<DirectoryUser> {
        let reader = self.reader.read().ok()?.clone()?;
        // A user Box sent in an unexpected shape reads as unknown, not fatal: the event is
        // still rendered, only without directory facts.
        reader
            .get(id)
            .and_then(|json| DirectoryUser::from_json(&json).ok())
    }
}

impl Directory {
    /// Records kept from `sink` because they concern no monitored user (`[scope]`).
    pub fn out_of_scope(&self, sink: SinkId) -> u64 {
        self.out_of_scope_counter(sink)
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn out_of_scope_counter(&self, sink: SinkId) -> &std::sync::atomic::AtomicU64 {
        &self.out_of_scope[usize::from(sink == SinkId::LogSearch)]
    }
}

impl UserDirectory for Directory {
    fn user(&self, id: &str) -> Option<DirectoryUser> {
        if let Some(hit) = self.cache.lock().ok()?.get(id) {
            return hit.clone();
        }
        let user = self.lookup(id);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= DIRECTORY_CACHE {
                cache.clear();
            }
            cache.insert(id.to_owned(), user.clone());
        }
        user
    }
}

/// Renders queued Box events through `boxidr-normalize`: UEF lines for the Collector, raw
/// records for Log Search.
#[derive(Debug)]
pub struct Renderer {
    pub settings: Settings,
    pub directory: Arc<Directory>,
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
            self.directory
                .out_of_scope_counter(sink)
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    render.directory.reload(&store).await?;
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
        let (store, tokens, directory, stop) = (
            store.clone(),
            tokens.clone(),
            render.directory.clone(),
            shutdown.clone(),
        );
        let scope = render.settings.scope.scope().clone();
        tasks.spawn(users_sync(
            UsersSync {
                store,
                tokens,
                client: users,
                directory,
                every: users_every,
                scope,
                synced: synced_tx,
            },
            stop,
        ));
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
                if wait_for_directory(synced, stop.clone(), SinkId::Collector).await {
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
                if wait_for_directory(synced_rx, stop.clone(), SinkId::LogSearch).await {
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

/// Waits until the user directory can judge the scope; `false` if shut down first.
async fn wait_for_directory(
    mut synced: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
    sink: SinkId,
) -> bool {
    if !*synced.borrow() {
        tracing::info!(%sink, "Forwarding waits for the first Box users sync: the scope names groups.");
    }
    tokio::select! {
        ready = synced.wait_for(|ready| *ready) => ready.is_ok(),
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

/// What the users sync task needs.
struct UsersSync {
    store: Store,
    tokens: Arc<TokenManager>,
    client: UsersClient,
    directory: Arc<Directory>,
    every: Duration,
    scope: boxidr_config::Scope,
    /// Turned true after the first successful sync.
    synced: watch::Sender<bool>,
}

/// First retry of a failed users sync; doubles up to the sync period.
const USERS_RETRY: Duration = Duration::from_secs(30);

/// The users sync's retry schedule: [`USERS_RETRY`] doubling up to `every`, without jitter
/// (one call a sync period at most; no fleet reconnects in step on it).
fn users_backoff(every: Duration) -> boxidr_model::BackoffPolicy {
    boxidr_model::BackoffPolicy {
        initial: USERS_RETRY,
        max: every,
    }
}

/// Syncs Box users now and then every `every`, reloading the directory after each sync. A
/// failed sync is retried after 30 s, doubling up to the period (rendering meanwhile uses
/// what is stored).
async fn users_sync(sync: UsersSync, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let UsersSync {
        store,
        tokens,
        client,
        directory,
        every,
        scope,
        synced,
    } = sync;
    let backoff = users_backoff(every);
    let mut failures = 0u32;
    loop {
        let wait = match boxidr_boxapi::users::sync(&tokens, &client, &store, &scope).await {
            Ok(report) => {
                tracing::info!(
                    users = report.users,
                    pages = report.pages,
                    pruned = report.pruned,
                    scope_groups = report.scope_groups,
                    scope_members = report.scope_members,
                    unknown_groups = ?report.unknown_groups,
                    out_of_scope_collector = directory.out_of_scope(SinkId::Collector),
                    out_of_scope_log_search = directory.out_of_scope(SinkId::LogSearch),
                    "Box users synced."
                );
                match directory.reload(&store).await {
                    Ok(_) => {
                        synced.send_replace(true);
                    }
                    Err(e) => tracing::warn!(error = %e, "Cannot reload the user directory."),
                }
                failures = 0;
                every
            }
            Err(e) => {
                // Jitter 0.5 is the middle of the range: the schedule itself, unscaled.
                let wait = backoff.delay(failures, 0.5);
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "Box users sync failed.");
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "pipeline_scope_tests.rs"]
mod scope_tests;

#[cfg(test)]
mod wait_tests {
    use super::*;

    /// A failed users sync retries after 30 s, doubling up to the sync period.
    #[test]
    fn users_sync_retries_double_up_to_the_period() {
        let backoff = users_backoff(Duration::from_secs(3600));
        let waits: Vec<u64> = (0..9).map(|n| backoff.delay(n, 0.5).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(
            users_backoff(Duration::from_secs(10)).delay(0, 0.5),
            Duration::from_secs(10)
        );
    }

    /// Forwarders held for the first users sync start once it succeeds, and a shutdown while
    /// waiting ends the wait without starting them.
    #[tokio::test]
    async fn forwarders_wait_for_the_first_users_sync() {
        let (synced_tx, synced_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let waiting = tokio::spawn(wait_for_directory(
            synced_rx.clone(),
            stop_rx.clone(),
            SinkId::Collector,
        ));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        synced_tx.send_replace(true);
        assert!(waiting.await.unwrap());

        let (_never_tx, never_rx) = watch::channel(false);
        let stopped = tokio::spawn(wait_for_directory(never_rx, stop_rx, SinkId::LogSearch));
        stop_tx.send_replace(true);
        assert!(!stopped.await.unwrap());
    }
}
