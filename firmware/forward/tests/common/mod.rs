//! Shared helpers for the forwarding tests: a temp-dir store seeded with Box events, a simple
//! renderer, idr-sim with fast settings and its faults, and a spawned forwarder per sink (run
//! until its queue is empty, or until it retries). The `wan` example shares the store helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: a panic is a failure

use std::sync::Arc;
use std::time::Duration;

use boxidr_forward::{
    BackoffPolicy, CollectorSettings, CollectorSink, CollectorTransport, Forwarder,
    ForwarderOptions, LogSearchSettings, LogSearchSink, Render, Sink, SinkState, SinkStatus,
    TrustRoots,
};
use boxidr_model::{BoxEvent, Secret, StreamType};
use boxidr_store::{CursorKey, PageCommit, QueuedRecord, SinkId, Store, StoreOptions};
use idr_sim::{FaultKind, FaultSpec, IdrSim, Listen, SimConfig, SimHandle, Surface};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Renders a login as a valid UEF line for the Collector (other events: not for it), and every
/// event as its own JSON for Log Search.
#[derive(Debug, Default)]
pub struct TestRender;

impl Render for TestRender {
    fn render(&self, sink: SinkId, record: &QueuedRecord) -> Option<String> {
        match sink {
            SinkId::Collector => (record.event_type.as_deref() == Some("LOGIN")).then(|| {
                json!({
                    "version": "v1",
                    "event_type": "INGRESS_AUTHENTICATION",
                    "time": "2024-05-02T21:03:11.000Z",
                    "account": "jdoe",
                    "account_domain": "CORP",
                    "source_ip": "198.51.100.23",
                    "authentication_result": "SUCCESS",
                    "authentication_target": "Box",
                    "custom_data": {"box_event_id": record.event_id.as_str(), "seq": record.seq},
                })
                .to_string()
            }),
            SinkId::LogSearch => Some(record.event_json.clone()),
        }
    }
}

/// A temp-dir store (kept alive by the returned dir).
pub async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path().join("boxidr.redb")))
        .await
        .unwrap();
    (store, dir)
}

/// A temp-dir store (kept alive by the returned dir) delivering to `sinks`.
pub async fn store_for(sinks: &[SinkId]) -> (Store, tempfile::TempDir) {
    let (store, dir) = store().await;
    store.set_enabled_sinks(sinks).await.unwrap();
    (store, dir)
}

/// Box event ids `e0001…` for `n` events.
pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Appends one page of events with the given ids and type.
pub async fn seed(store: &Store, ids: &[String], event_type: &str) {
    seed_padded(store, ids, event_type, 0).await;
}

/// As [`seed`], each event carrying `pad` bytes of filler.
pub async fn seed_padded(store: &Store, ids: &[String], event_type: &str, pad: usize) {
    let events = ids
        .iter()
        .map(|id| {
            BoxEvent::from_value(json!({
                "type": "event", "event_id": id, "event_type": event_type,
                "created_at": "2024-05-02T14:03:11-07:00", "ip_address": "198.51.100.23",
                "created_by": {"type": "user", "id": "262196057", "login": "jdoe@example.com"},
                "additional_details": {"pad": "x".repeat(pad)},
            }))
            .unwrap()
        })
        .collect();
    commit(store, events).await;
}

/// Appends `events` as one page of the admin-logs stream.
pub async fn commit(store: &Store, events: Vec<BoxEvent>) {
    store
        .commit_page(PageCommit {
            cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
            events,
            next_position: None,
            last_created_at: None,
            window: None,
            collected_at_ms: 1_714_683_791_000,
        })
        .await
        .unwrap();
}

/// idr-sim with its defaults changed by `f`.
pub async fn sim(f: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig::default();
    f(&mut config);
    IdrSim::start(config, Listen::default()).await.unwrap()
}

/// Log Search answering every request with `status` (and `Retry-After`, when given); the
/// caller says for how long (`times`, `for_duration`).
pub fn logsearch_status(status: u16, retry_after_secs: Option<u64>) -> FaultSpec {
    FaultSpec::new(
        Surface::Logsearch,
        FaultKind::Status {
            status,
            retry_after_secs,
        },
    )
}

/// Fast loop settings for tests.
pub fn options(max_records: usize) -> ForwarderOptions {
    ForwarderOptions {
        max_records,
        idle_poll: Duration::from_millis(20),
        backoff: BackoffPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        },
        shutdown_grace: Duration::from_secs(2),
        ..ForwarderOptions::default()
    }
}

/// A TLS Collector sink trusting the simulator's CA, with short timeouts.
pub fn collector_settings(sim: &SimHandle) -> CollectorSettings {
    let mut settings = CollectorSettings::new(
        "127.0.0.1",
        sim.uef_addr().port(),
        CollectorTransport::Tls {
            ca_pem: sim.ca_pem().into_bytes(),
            server_name: None,
        },
    );
    settings.connect_timeout = Duration::from_secs(2);
    settings.write_timeout = Duration::from_secs(2);
    settings.confirm_window = Duration::from_millis(150);
    settings
}

pub fn collector(sim: &SimHandle) -> CollectorSink {
    CollectorSink::new(collector_settings(sim)).unwrap()
}

/// The first token the simulator knows.
pub fn token(sim: &SimHandle) -> String {
    sim.config().tokens[0].clone()
}

/// Log Search settings posting to `base` with the simulator's first token, trusting its CA.
pub fn logsearch_settings(sim: &SimHandle, base: url::Url) -> LogSearchSettings {
    let mut settings = LogSearchSettings::new(base, Secret::new(token(sim)));
    settings.roots = TrustRoots::CustomCa(sim.ca_pem().into_bytes());
    settings
}

/// A Log Search sink posting to the simulator with `token` (trusting its CA if it serves TLS).
pub fn logsearch_with(sim: &SimHandle, token: &str) -> LogSearchSink {
    let mut settings = logsearch_settings(sim, sim.logsearch_base().parse().unwrap());
    settings.token = Secret::new(token);
    settings.request_timeout = Duration::from_secs(5);
    LogSearchSink::new(settings).unwrap()
}

pub fn logsearch(sim: &SimHandle) -> LogSearchSink {
    logsearch_with(sim, &token(sim))
}

/// A running forwarder: its status, its shutdown switch and its task.
pub struct Running {
    pub status: watch::Receiver<SinkStatus>,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<()>,
}

impl Running {
    /// Requests shutdown and waits for the task.
    pub async fn stop(self) -> SinkStatus {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("forwarder stops within 10 s")
            .unwrap();
        self.status.borrow().clone()
    }

    /// Waits until the status says `Retrying` after at least `attempts` failed attempts; that
    /// status.
    pub async fn retrying(&self, attempts: u32) -> SinkStatus {
        self.status
            .clone()
            .wait_for(
                |s| matches!(s.state, SinkState::Retrying { attempt, .. } if attempt >= attempts),
            )
            .await
            .unwrap()
            .clone()
    }
}

pub fn spawn<S: Sink + 'static>(store: &Store, sink: S, options: ForwarderOptions) -> Running {
    spawn_with(store, options, |_| sink)
}

/// As [`spawn`], with a sink made from the forwarder's shutdown switch.
pub fn spawn_with<S: Sink + 'static>(
    store: &Store,
    options: ForwarderOptions,
    sink: impl FnOnce(watch::Receiver<bool>) -> S,
) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let sink = sink(stop_rx.clone());
    let (forwarder, status) = Forwarder::new(store.clone(), sink, Arc::new(TestRender), options);
    let task = tokio::spawn(forwarder.run(stop_rx));
    Running { status, stop, task }
}

/// Runs a forwarder with `sink` until nothing is pending for it, then stops it: its last status.
pub async fn deliver_all<S: Sink + 'static>(
    store: &Store,
    sink: S,
    options: ForwarderOptions,
) -> SinkStatus {
    let id = sink.id();
    let run = spawn(store, sink, options);
    caught_up(store, id).await;
    run.stop().await
}

/// Polls `pred` every 10 ms for up to 20 s; panics with `what` on timeout.
pub async fn wait_until(what: &str, mut pred: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !pred().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until nothing is pending for `sink`.
pub async fn caught_up(store: &Store, sink: SinkId) {
    wait_until(&format!("{sink:?} caught up"), async || {
        pending(store, sink).await == 0
    })
    .await;
}

/// Records still queued for `sink`.
pub async fn pending(store: &Store, sink: SinkId) -> u64 {
    let stats = store.stats().await.unwrap();
    stats
        .pending_per_sink
        .iter()
        .find(|s| s.sink == sink)
        .map_or(0, |s| s.pending)
}

/// Records in the queue.
pub async fn queued(store: &Store) -> u64 {
    store.stats().await.unwrap().queue_records
}
