//! The systemd watchdog, fed only while every supervised part makes progress.
//!
//! The unit sets `WatchdogSec=`; systemd then expects `WATCHDOG=1` at least that often and
//! restarts the service when it stops coming. A timer that feeds it unconditionally would only
//! prove that the runtime ticks, so instead each long-running part (the supervisor, the Box
//! stream and sweep, each forwarder, the store thread, the setup page's workers) holds a
//! [`Pulse`] registered here with a budget, and reports at every iteration how long it is about
//! to wait ([`Pulse::waiting`]; an idle wait for outside work is [`Pulse::idle`]). A part is
//! **late** when its last report plus that wait plus its budget has passed: it is blocked
//! somewhere no timeout bounds. While any part is late the feeder stops feeding (and logs the
//! part by name once), so systemd restarts the service within `WatchdogSec`. The restart loses
//! nothing: pages and cursors commit together, records are deleted only after delivery.
//!
//! A part whose task ends drops its pulse and leaves the registry; the supervisor restarts the
//! pipeline in that case. During a normal stop ([`Watchdog::stopping`]) parts end one by one
//! and the feeder keeps feeding, so a stop never trips the watchdog (systemd's stop timeout
//! bounds it instead).
//!
//! Time is tokio's clock, so the tests drive it with `tokio::time::pause`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use boxidr_health::{WatchdogPart, WatchdogReport};
use boxidr_model::{Liveness, Pulse};
use tokio::time::Instant;

/// Check interval when systemd has no watchdog for us (the status still shows the parts).
const CHECK_WITHOUT_SYSTEMD: Duration = Duration::from_secs(5);
/// Longest interval between checks (and feeds) even with a long `WatchdogSec=`.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Budget of the supervisor loop: a status round, a pipeline rebuild (the Box token load), a
/// control command (a factory reset revokes the Box token), each bounded by request timeouts.
pub const SUPERVISOR_BUDGET: Duration = Duration::from_secs(180);
/// Budget of a forwarder iteration: read a batch, send it (connect and write timeouts of 10 s
/// and 30 s; Log Search's request timeout), acknowledge it.
pub const FORWARDER_BUDGET: Duration = Duration::from_secs(180);
/// Budget of the store thread: one trivial read through its request channel. A long commit
/// on a slow card queues it; a storage thread that is stuck never answers it.
pub const STORE_BUDGET: Duration = Duration::from_secs(120);
/// Budget of the setup page: one plain request to its worker threads answered.
pub const SETUP_BUDGET: Duration = Duration::from_secs(120);
/// How often the store is pinged.
pub const STORE_PING_EVERY: Duration = Duration::from_secs(10);
/// How often the setup page's workers are probed.
pub const SETUP_PROBE_EVERY: Duration = Duration::from_secs(15);
/// Longest a single setup-page probe may take before it counts as unanswered.
const SETUP_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Budget of the Box readers: one iteration is at most a token refresh and an events call
/// (each bounded by `request_timeout`) and one commit.
pub fn box_budget(request_timeout: Duration) -> Duration {
    request_timeout.saturating_mul(2) + Duration::from_secs(60)
}

/// What the pipeline needs to register its parts: the registry and the Box readers' budget.
#[derive(Debug, Clone)]
pub struct Supervision {
    pub watchdog: Watchdog,
    /// See [`box_budget`].
    pub box_budget: Duration,
}

/// The registry of supervised parts. Cheap to clone; clones share the registry.
#[derive(Debug, Clone, Default)]
pub struct Watchdog {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    parts: Mutex<Vec<Weak<Part>>>,
    stopping: AtomicBool,
    next_id: AtomicU64,
    /// The systemd watchdog interval, once the feeder runs with one.
    systemd: Mutex<Option<Duration>>,
    /// Whether the last check fed systemd (or would have, without one).
    feeding: AtomicBool,
}

#[derive(Debug)]
struct Part {
    id: u64,
    name: String,
    budget: Duration,
    state: Mutex<PartState>,
}

#[derive(Debug, Clone, Copy)]
struct PartState {
    /// When the part last reported.
    last: Instant,
    /// When it is late (`None`: idle, waiting for outside work).
    due: Option<Instant>,
}

impl Liveness for Part {
    fn report(&self, wait: Option<Duration>) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last = now;
        state.due = wait.map(|wait| now + wait + self.budget);
    }
}

/// One part as the last check saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHealth {
    /// e.g. `stream`, `forwarder:log_search`.
    pub name: String,
    /// Its budget.
    pub budget: Duration,
    /// Time since its last report.
    pub since_report: Duration,
    /// Waiting for outside work (never late until it reports again).
    pub idle: bool,
    /// How far past its deadline it is; `None` while on time.
    pub late_by: Option<Duration>,
}

impl Watchdog {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a part: its first report is due within `budget` from now. The part leaves
    /// the registry when the last clone of the returned pulse is dropped.
    pub fn part(&self, name: impl Into<String>, budget: Duration) -> Pulse {
        let now = Instant::now();
        let part = Arc::new(Part {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            budget,
            state: Mutex::new(PartState {
                last: now,
                due: Some(now + budget),
            }),
        });
        let mut parts = self.lock_parts();
        parts.retain(|p| p.strong_count() > 0);
        parts.push(Arc::downgrade(&part));
        Pulse::new(part)
    }

    /// A normal stop has begun: parts end one after the other, and the feeder keeps feeding
    /// until the process exits (systemd's stop timeout applies instead).
    pub fn stopping(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Every registered part at `now`, in registration order.
    pub fn check(&self, now: Instant) -> Vec<PartHealth> {
        self.live_parts()
            .iter()
            .map(|part| {
                let state = *part.state.lock().unwrap_or_else(PoisonError::into_inner);
                PartHealth {
                    name: part.name.clone(),
                    budget: part.budget,
                    since_report: now.saturating_duration_since(state.last),
                    idle: state.due.is_none(),
                    late_by: state
                        .due
                        .filter(|due| now > *due)
                        .map(|due| now.saturating_duration_since(due)),
                }
            })
            .collect()
    }

    /// The watchdog for `boxidr status`: systemd's interval, whether it is fed, each part.
    pub fn report(&self) -> WatchdogReport {
        let parts = self.check(Instant::now());
        let systemd = *self
            .inner
            .systemd
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        WatchdogReport {
            systemd_secs: systemd.map(|d| d.as_secs_f64()),
            feeding: self.inner.feeding.load(Ordering::SeqCst),
            late: parts
                .iter()
                .filter(|p| p.late_by.is_some())
                .map(|p| p.name.clone())
                .collect(),
            parts: parts
                .iter()
                .map(|p| WatchdogPart {
                    name: p.name.clone(),
                    budget_secs: p.budget.as_secs(),
                    since_report_secs: p.since_report.as_secs(),
                    idle: p.idle,
                    late_by_secs: p.late_by.map(|d| d.as_secs()),
                })
                .collect(),
        }
    }

    fn lock_parts(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Part>>> {
        self.inner
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn live_parts(&self) -> Vec<Arc<Part>> {
        let mut parts = self.lock_parts();
        parts.retain(|p| p.strong_count() > 0);
        parts.iter().filter_map(Weak::upgrade).collect()
    }
}

/// How often to check (and feed): half of systemd's interval, at most
/// [`MAX_CHECK_INTERVAL`]; [`CHECK_WITHOUT_SYSTEMD`] when systemd watches nothing.
pub fn check_interval(systemd: Option<Duration>) -> Duration {
    match systemd {
        Some(interval) => (interval / 2)
            .min(MAX_CHECK_INTERVAL)
            .max(Duration::from_millis(100)),
        None => CHECK_WITHOUT_SYSTEMD,
    }
}

/// Checks the parts every [`check_interval`] and calls `feed` while they are healthy; logs
/// a part once when it goes late (by name) and when it reports again. Runs until aborted.
pub async fn feed(watchdog: Watchdog, systemd: Option<Duration>, mut feed: impl FnMut() + Send) {
    *watchdog
        .inner
        .systemd
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = systemd;
    let mut tick = tokio::time::interval(check_interval(systemd));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut late: Vec<u64> = Vec::new();
    loop {
        tick.tick().await;
        let now = Instant::now();
        let stopping = watchdog.inner.stopping.load(Ordering::SeqCst);
        let mut now_late = Vec::new();
        for part in watchdog.live_parts() {
            let state = *part.state.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(due) = state.due.filter(|due| now > *due) else {
                if late.contains(&part.id) {
                    tracing::info!(part = %part.name, "Watchdog: the part reports again.");
                }
                continue;
            };
            now_late.push(part.id);
            if !late.contains(&part.id) && !stopping {
                tracing::error!(
                    part = %part.name,
                    silent_secs = now.saturating_duration_since(state.last).as_secs(),
                    late_secs = now.saturating_duration_since(due).as_secs(),
                    budget_secs = part.budget.as_secs(),
                    "Watchdog: a supervised part is hung; no longer feeding the systemd \
                     watchdog, which restarts the service."
                );
            }
        }
        late = now_late;
        let healthy = stopping || late.is_empty();
        watchdog.inner.feeding.store(healthy, Ordering::SeqCst);
        if healthy {
            feed();
        }
    }
}

/// Feeds systemd (`WATCHDOG=1`) on the current runtime while the parts are healthy, if the
/// unit has `WatchdogSec=` (`WATCHDOG_USEC` for this process); otherwise only checks, for the
/// status. The returned task runs until aborted.
pub fn start_systemd_feeder(watchdog: &Watchdog) -> tokio::task::JoinHandle<()> {
    let systemd = sd_notify::watchdog_enabled();
    match systemd {
        Some(interval) => tracing::info!(
            interval_secs = interval.as_secs_f64(),
            "systemd watchdog armed; fed while every supervised part reports."
        ),
        None => tracing::debug!("No systemd watchdog for this process."),
    }
    tokio::spawn(feed(watchdog.clone(), systemd, || {
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]) {
            tracing::warn!(error = %e, "Cannot feed the systemd watchdog.");
        }
    }))
}

/// Pings the store through its request channel every [`STORE_PING_EVERY`]; reports after each
/// answer (an error is an answer: the storage thread is alive). Runs until aborted.
pub async fn ping_store<F, Fut>(pulse: Pulse, mut ping: F)
where
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = ()> + Send,
{
    loop {
        ping().await;
        pulse.waiting(STORE_PING_EVERY);
        tokio::time::sleep(STORE_PING_EVERY).await;
    }
}

/// Probes the setup page's worker threads every [`SETUP_PROBE_EVERY`] with a plain request to
/// their private loopback port (which answers 403 to anything that did not pass the TLS front);
/// reports after each answer. Runs until aborted.
pub async fn probe_setup(pulse: Pulse, worker: std::net::SocketAddr) {
    loop {
        match tokio::time::timeout(SETUP_PROBE_TIMEOUT, probe_once(worker)).await {
            Ok(Ok(())) => pulse.waiting(SETUP_PROBE_EVERY),
            Ok(Err(e)) => tracing::debug!(error = %e, "Setup page probe failed."),
            Err(_) => tracing::debug!("Setup page probe unanswered."),
        }
        tokio::time::sleep(SETUP_PROBE_EVERY).await;
    }
}

async fn probe_once(worker: std::net::SocketAddr) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(worker).await?;
    stream
        .write_all(b"GET /watchdog HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an HTTP answer",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// The names of the parts that are late now.
    fn late(watchdog: &Watchdog) -> Vec<String> {
        let parts = watchdog.check(Instant::now());
        parts
            .into_iter()
            .filter(|p| p.late_by.is_some())
            .map(|p| p.name)
            .collect()
    }

    fn on_time(watchdog: &Watchdog) -> bool {
        late(watchdog).is_empty()
    }

    /// Counts feeds; `step` advances the paused clock one second at a time so the feeder's
    /// interval runs as it would.
    struct Rig {
        watchdog: Watchdog,
        feeds: Arc<AtomicUsize>,
        feeder: tokio::task::JoinHandle<()>,
    }

    impl Rig {
        fn start(systemd: Duration) -> Self {
            let watchdog = Watchdog::new();
            let feeds = Arc::new(AtomicUsize::new(0));
            let counter = feeds.clone();
            let feeder = tokio::spawn(feed(watchdog.clone(), Some(systemd), move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }));
            Self {
                watchdog,
                feeds,
                feeder,
            }
        }

        async fn step(&self, secs: u64) {
            for _ in 0..secs {
                tokio::time::advance(S(1)).await;
                tokio::task::yield_now().await;
            }
        }

        fn feeds(&self) -> usize {
            self.feeds.load(Ordering::SeqCst)
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            self.feeder.abort();
        }
    }

    /// Parts that keep reporting keep systemd fed; one that stops reporting past its budget
    /// stops the feed and is named; when it reports again the feed resumes.
    #[tokio::test(start_paused = true)]
    async fn a_hung_part_stops_the_feed_and_is_named() {
        let rig = Rig::start(S(30));
        let stream = rig.watchdog.part("stream", S(20));
        let forwarder = rig.watchdog.part("forwarder:log_search", S(20));
        for _ in 0..10 {
            stream.waiting(S(2));
            forwarder.waiting(S(2));
            rig.step(2).await;
        }
        let fed = rig.feeds();
        assert!(fed >= 4, "fed {fed} times in 20 s at a 5 s interval");
        // The forwarder hangs (no more reports); the stream carries on.
        for _ in 0..15 {
            stream.waiting(S(2));
            rig.step(2).await;
        }
        assert_eq!(late(&rig.watchdog), ["forwarder:log_search"]);
        assert!(!on_time(&rig.watchdog));
        let stalled = rig.feeds();
        for _ in 0..10 {
            stream.waiting(S(2));
            rig.step(2).await;
        }
        assert_eq!(rig.feeds(), stalled, "no feed while a part is late");
        let status = rig.watchdog.report();
        assert_eq!(status.late, ["forwarder:log_search"]);
        assert!(!status.feeding);
        assert_eq!(status.systemd_secs, Some(30.0));
        forwarder.beat();
        stream.beat();
        rig.step(6).await;
        assert!(rig.feeds() > stalled, "feeding resumes");
    }

    /// A long bounded wait (backoff) and an open-ended idle wait are not hangs; a part that
    /// never reports at all is late after its budget.
    #[tokio::test(start_paused = true)]
    async fn waits_are_not_hangs() {
        let rig = Rig::start(S(30));
        let backoff = rig.watchdog.part("sweep", S(10));
        let idle = rig.watchdog.part("forwarder:collector", S(10));
        backoff.waiting(S(600));
        idle.idle();
        rig.step(300).await;
        assert!(on_time(&rig.watchdog));
        let _silent = rig.watchdog.part("store", S(10));
        rig.step(11).await;
        assert_eq!(late(&rig.watchdog), ["store"]);
        rig.step(300).await;
        assert_eq!(
            late(&rig.watchdog).len(),
            2,
            "the backoff's wait ran out too"
        );
    }

    /// A part whose task ended leaves the registry; during a stop the feeder keeps feeding
    /// although parts go quiet.
    #[tokio::test(start_paused = true)]
    async fn ended_parts_leave_and_a_stop_keeps_feeding() {
        let rig = Rig::start(S(30));
        let gone = rig.watchdog.part("stream", S(5));
        drop(gone);
        rig.step(10).await;
        assert!(rig.watchdog.check(Instant::now()).is_empty());
        assert!(on_time(&rig.watchdog));

        let quiet = rig.watchdog.part("supervisor", S(5));
        rig.watchdog.stopping();
        let before = rig.feeds();
        rig.step(60).await;
        assert!(rig.feeds() >= before + 10, "fed throughout the stop");
        drop(quiet);
    }

    /// The store ping reports only when the store answers: a storage thread that never
    /// answers makes the part late.
    #[tokio::test(start_paused = true)]
    async fn store_ping_reports_only_answers() {
        let rig = Rig::start(S(30));
        let answering = tokio::spawn(ping_store(
            rig.watchdog.part("store", STORE_BUDGET),
            || async {},
        ));
        let stuck = tokio::spawn(ping_store(
            rig.watchdog.part("store (stuck)", STORE_BUDGET),
            std::future::pending::<()>,
        ));
        rig.step(STORE_BUDGET.as_secs() + 1).await;
        assert_eq!(late(&rig.watchdog), ["store (stuck)"]);
        answering.abort();
        stuck.abort();
    }

    /// The setup probe reports when a worker answers over HTTP and not when nobody does.
    #[tokio::test]
    async fn setup_probe_needs_an_http_answer() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let answer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut conn, _) = server.accept().await.unwrap();
            conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        probe_once(addr).await.unwrap();
        answer.await.unwrap();
        // Accepted by the kernel but never answered: the probe does not succeed.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let probe = tokio::time::timeout(Duration::from_millis(200), probe_once(silent_addr)).await;
        assert!(probe.is_err(), "an unanswered probe must not count");
        drop(silent);
    }

    /// Feeds come at half of systemd's interval, at most every 5 s.
    #[test]
    fn intervals() {
        assert_eq!(check_interval(Some(S(30))), S(5));
        assert_eq!(check_interval(Some(S(4))), S(2));
        assert_eq!(check_interval(None), S(5));
        assert_eq!(box_budget(S(60)), S(180));
    }
}
