//! The per-sink forwarding loop: read bounded batches ahead of the sink's cursor, render,
//! submit them to the sink while earlier ones are still on the wire, acknowledge the delivered
//! prefix in the store now and then; wait when caught up; back off when failing.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use boxidr_store::{
    AckOutcome, QueuedRecord, ReadLimits, Rejection, SinkBatch, SinkId, Store, StoreError,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::render::{Render, Rendered};
use crate::sink::{Delivery, Sink, SinkError};
use crate::status::{SinkState, SinkStatus};
use boxidr_model::BackoffPolicy;

/// Tuning of one forwarding loop. `Default` is the production setting.
#[derive(Debug, Clone)]
pub struct ForwarderOptions {
    /// Most records read (and handed to the sink) per store read.
    pub max_records: usize,
    /// Most bytes of Box event JSON per read (at least one record is always read).
    pub max_bytes: usize,
    /// Most records one read looks at, counting those the sink's filter passes over.
    pub max_scan: usize,
    /// Most records with a line read but not yet acknowledged in the store. After a crash or
    /// a reset, at most this many are sent again: the duplicate bound per sink.
    pub max_unacked: usize,
    /// How often the delivered prefix is written to the store (one durable write per sink per
    /// interval at most, so the flush rate stays bounded whatever the event rate).
    pub ack_every: Duration,
    /// When caught up and no wake-up arrives, look at the queue again this often.
    pub idle_poll: Duration,
    /// Backoff after failures.
    pub backoff: BackoffPolicy,
    /// Longest `Retry-After` honoured; a larger value is cut to this.
    pub max_retry_after: Duration,
    /// On shutdown, how long what is already on the wire may take to finish and be acked.
    pub shutdown_grace: Duration,
}

/// Backoff between delivery attempts: 1 s doubling to a minute. A retry is one request (Log
/// Search) or one connection (the Collector), so a minute apart costs InsightIDR nothing, and
/// delivery resumes at most a minute after an outage ends (the shared 5-minute cap kept a
/// backlog waiting up to 5 minutes after the destination was back).
pub const DELIVERY_BACKOFF: BackoffPolicy = BackoffPolicy {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(60),
};

impl Default for ForwarderOptions {
    fn default() -> Self {
        Self {
            max_records: 500,
            max_bytes: 512 * 1024,
            max_scan: 4000,
            max_unacked: 8192,
            ack_every: Duration::from_millis(100),
            idle_poll: Duration::from_secs(2),
            backoff: DELIVERY_BACKOFF,
            max_retry_after: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// One sink's forwarding task: its own cursor in the store, its own backoff, its own status,
/// so a sink that is down never holds back the other.
///
/// Delivery is at-least-once: the store cursor only moves past records the sink reported as
/// delivered. Reads run ahead of the cursor by at most [`ForwarderOptions::max_unacked`]
/// records with a line (and the sink's own [`crate::sink::Window`]); a failure or a crash
/// re-sends at most those.
pub struct Forwarder<S: Sink> {
    store: Store,
    sink: S,
    render: Arc<dyn Render>,
    options: ForwarderOptions,
    status: watch::Sender<SinkStatus>,
    wake: Option<watch::Receiver<u64>>,
    pulse: boxidr_model::Pulse,
}

impl<S: Sink> std::fmt::Debug for Forwarder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("sink", &self.sink.id())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How often an ack refused because the dead letters are full is tried again.
const DEAD_LETTERS_FULL_RETRY: Duration = Duration::from_secs(10);

type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// One submitted read: the last sequence it covers, its lines and their bytes.
#[derive(Debug, Clone, Copy)]
struct Span {
    through: u64,
    lines: usize,
    bytes: usize,
}

/// Where the loop stands between the store cursor and the newest record read.
#[derive(Debug, Default)]
struct Positions {
    /// The sink's cursor as last committed in the store.
    acked: u64,
    /// Everything up to here is delivered (in memory; acked at the next interval).
    delivered: u64,
    /// The next read starts after this.
    read: u64,
    /// Submitted reads not yet acked, oldest first.
    spans: VecDeque<Span>,
    /// Delivered-prefix records the destination refused for good, not yet acked: the next
    /// ack keeps them as dead letters in the same transaction.
    rejected: Vec<Rejection>,
}

impl Positions {
    /// Lines read and not acked in the store (the duplicate bound).
    fn unacked_lines(&self) -> usize {
        self.spans.iter().map(|s| s.lines).sum()
    }

    /// Lines and bytes submitted and not yet delivered (the sink's window).
    fn in_flight(&self) -> (usize, usize) {
        self.spans
            .iter()
            .filter(|s| s.through > self.delivered)
            .fold((0, 0), |(l, b), s| (l + s.lines, b + s.bytes))
    }

    fn outstanding(&self) -> bool {
        self.read > self.delivered
    }

    /// Forgets what was submitted and not delivered: the next read starts after `delivered`.
    fn rewind(&mut self) {
        let delivered = self.delivered;
        self.spans.retain(|s| s.through <= delivered);
        self.read = delivered;
    }

    fn acked_to(&mut self, cursor: u64) {
        self.acked = self.acked.max(cursor);
        let acked = self.acked;
        self.rejected.retain(|r| r.seq > acked);
        while self.spans.front().is_some_and(|s| s.through <= acked) {
            self.spans.pop_front();
        }
    }
}

impl<S: Sink> Forwarder<S> {
    /// A forwarder for `sink`; the receiver follows its [`SinkStatus`].
    pub fn new(
        store: Store,
        sink: S,
        render: Arc<dyn Render>,
        options: ForwarderOptions,
    ) -> (Self, watch::Receiver<SinkStatus>) {
        let (status, status_rx) = watch::channel(SinkStatus::new(sink.id(), SinkState::Idle));
        let forwarder = Self {
            store,
            sink,
            render,
            options,
            status,
            wake: None,
            pulse: boxidr_model::Pulse::default(),
        };
        (forwarder, status_rx)
    }

    /// Wakes the loop as soon as the value changes (the poller bumps it after each committed
    /// page), instead of waiting for the next [`ForwarderOptions::idle_poll`].
    #[must_use]
    pub fn with_wake(mut self, wake: watch::Receiver<u64>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Reports liveness to the watchdog at every turn of the loop, with the wait ahead (a
    /// backoff, the idle poll; none while the sink or the store is working).
    #[must_use]
    pub fn with_pulse(mut self, pulse: boxidr_model::Pulse) -> Self {
        self.pulse = pulse;
        self
    }

    /// Runs until `shutdown` turns `true` (or its sender is dropped). What is already on the
    /// wire gets [`ForwarderOptions::shutdown_grace`] to finish; the delivered prefix is
    /// acknowledged, then the sink is closed and the status says [`SinkState::Stopped`].
    ///
    /// After a configuration error the loop sends nothing more and waits for shutdown; the
    /// binary starts a new forwarder when the settings change.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let sink_id = self.sink.id();
        let filter = self.render.wanted(sink_id);
        let limits = ReadLimits {
            max_records: self.options.max_records.max(1),
            max_bytes: self.options.max_bytes,
            max_scan: self.options.max_scan.max(self.options.max_records).max(1),
        };
        let mut pos = Positions::default();
        let mut started = false;
        let mut reading: Option<StoreFuture<SinkBatch>> = None;
        let mut acking: Option<StoreFuture<AckOutcome>> = None;
        let mut last_ack = Instant::now();
        let mut caught_up = false;
        let mut paused_until: Option<Instant> = None;
        let mut stopping: Option<Instant> = None;
        let mut config_error = false;
        let mut failures: u32 = 0;
        let idle = self.options.idle_poll;
        let ack_every = self.options.ack_every;
        loop {
            if stopping.is_none() && *shutdown.borrow() {
                stopping = Some(Instant::now() + self.options.shutdown_grace);
            }
            let (lines, bytes) = pos.in_flight();
            let window = self.sink.window();
            let free_lines = window
                .records
                .saturating_sub(lines)
                .min(self.options.max_unacked.saturating_sub(pos.unacked_lines()));
            let free_bytes = window.bytes.saturating_sub(bytes);
            // Read when a useful amount fits (a quarter of the window or a whole read), so a
            // wide window is not refilled one record at a time.
            let room = free_bytes > 0
                && free_lines > 0
                && free_lines >= limits.max_records.min(window.records / 4);
            if reading.is_none()
                && stopping.is_none()
                && paused_until.is_none()
                && !caught_up
                && !config_error
                && room
            {
                let store = self.store.clone();
                let after = started.then_some(pos.read);
                let filter = filter.clone();
                let limits = ReadLimits {
                    max_records: limits.max_records.min(free_lines),
                    max_bytes: limits.max_bytes.min(free_bytes),
                    ..limits
                };
                reading = Some(Box::pin(async move {
                    store.read_after(sink_id, after, limits, filter).await
                }));
            }
            let ack_due = stopping.is_some() || config_error || last_ack.elapsed() >= ack_every;
            if acking.is_none() && pos.delivered > pos.acked && ack_due {
                let (store, through) = (self.store.clone(), pos.delivered);
                let rejected = pos.rejected.clone();
                acking = Some(Box::pin(async move {
                    if rejected.is_empty() {
                        store.ack(sink_id, through).await
                    } else {
                        store
                            .ack_rejecting(
                                sink_id,
                                through,
                                rejected,
                                boxidr_model::clock::now_ms(),
                            )
                            .await
                    }
                }));
                last_ack = Instant::now();
            }
            let settled = !pos.outstanding() && acking.is_none() && pos.delivered <= pos.acked;
            if let Some(deadline) = stopping {
                if settled || (Instant::now() >= deadline && acking.is_none()) {
                    break;
                }
            } else if config_error && settled {
                self.pulse.idle();
                wait_shutdown(&mut shutdown).await;
                break;
            }
            if caught_up && !pos.outstanding() && paused_until.is_none() && !config_error {
                self.publish(|s| {
                    if matches!(s.state, SinkState::Delivering) {
                        s.state = SinkState::Idle;
                    }
                });
            }
            let outstanding = pos.outstanding() && !config_error;
            let next_ack =
                (acking.is_none() && pos.delivered > pos.acked).then(|| last_ack + ack_every);
            let waiting_for_work = caught_up && reading.is_none() && stopping.is_none();
            match paused_until {
                Some(at) => self
                    .pulse
                    .waiting(at.saturating_duration_since(Instant::now())),
                None if waiting_for_work => self.pulse.waiting(idle),
                None => self.pulse.beat(),
            }
            tokio::select! {
                batch = poll_slot(&mut reading) => {
                    reading = None;
                    match batch {
                        Ok(batch) => {
                            if !started {
                                started = true;
                                pos.acked = batch.after;
                                pos.delivered = batch.after;
                                pos.read = batch.after;
                            }
                            match batch.through {
                                // A read started before a rewind: stale, read again.
                                _ if batch.after != pos.read => {}
                                None => caught_up = true,
                                Some(through) => {
                                    let rendered = self.render_batch(sink_id, &batch.records);
                                    let (lines, bytes) = rendered.iter().filter_map(|r| r.line.as_ref())
                                        .fold((0, 0), |(l, b), line| (l + 1, b + line.len()));
                                    pos.spans.push_back(Span { through, lines, bytes });
                                    pos.read = through;
                                    self.sink.submit(rendered, through);
                                    // A retry is not delivery yet: `Retrying` stays until it
                                    // delivers something (below).
                                    if failures == 0 {
                                        self.publish(|s| s.state = SinkState::Delivering);
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            let error = SinkError::transient(format!("reading the queue failed: {e}"));
                            paused_until = Some(self.retry_later(&error, &mut failures));
                        }
                    }
                }
                delivery = self.sink.progress(), if outstanding => {
                    let advanced = self.take_delivery(&mut pos, &delivery);
                    if advanced {
                        failures = 0;
                        self.publish(|s| {
                            if matches!(s.state, SinkState::Retrying { .. }) {
                                s.state = SinkState::Delivering;
                            }
                        });
                    }
                    match delivery.error {
                        None => {}
                        Some(SinkError::Config { reason }) => {
                            tracing::error!(sink = %sink_id, reason = %reason, "Sink stopped: configuration error; the queue is kept.");
                            self.sink.reset();
                            pos.rewind();
                            config_error = true;
                            reading = None;
                            self.publish(|s| {
                                s.last_error = Some(reason.clone());
                                s.state = SinkState::ConfigError { reason };
                            });
                        }
                        Some(error) => {
                            self.sink.reset();
                            pos.rewind();
                            reading = None;
                            caught_up = false;
                            if stopping.is_none() {
                                paused_until = Some(self.retry_later(&error, &mut failures));
                            }
                        }
                    }
                }
                acked = poll_slot(&mut acking) => {
                    acking = None;
                    match acked {
                        Ok(outcome) => {
                            pos.acked_to(outcome.cursor);
                            self.publish(|s| s.cursor = outcome.cursor);
                            tracing::debug!(sink = %sink_id, through = outcome.cursor, deleted = outcome.deleted, "Delivered prefix acknowledged.");
                        }
                        Err(e) => {
                            // Delivered but not recorded: retried at the next interval; a crash
                            // meanwhile re-sends it (duplicates, bounded by `max_unacked`). At
                            // the dead-letter bound the sink holds here (nothing is dropped).
                            tracing::warn!(sink = %sink_id, error = %e, "Acknowledging delivered records failed; retrying.");
                            let message = e.to_string();
                            self.publish(|s| s.last_error = Some(message));
                            if matches!(e, StoreError::DeadLettersFull { .. }) {
                                // Only an administrator frees room: look again now and then.
                                last_ack = Instant::now() + DEAD_LETTERS_FULL_RETRY;
                            }
                            if stopping.is_some() {
                                break;
                            }
                        }
                    }
                }
                () = sleep_until_opt(next_ack) => {}
                () = sleep_until_opt(paused_until) => {
                    paused_until = None;
                    caught_up = false;
                }
                () = wait_for_work(self.wake.as_mut(), idle), if waiting_for_work => caught_up = false,
                () = wait_shutdown(&mut shutdown), if stopping.is_none() => {}
                () = sleep_until_opt(stopping) => {}
            }
        }
        self.sink.close().await;
        self.publish(|s| {
            if !matches!(s.state, SinkState::ConfigError { .. }) {
                s.state = SinkState::Stopped;
            }
        });
        tracing::debug!(sink = %sink_id, "Forwarder stopped.");
    }

    /// Moves the delivered prefix and the counters; `true` when it moved.
    fn take_delivery(&self, pos: &mut Positions, delivery: &Delivery) -> bool {
        let Some(through) = delivery.through.filter(|&t| t > pos.delivered) else {
            return false;
        };
        let passed = through - pos.delivered;
        pos.delivered = through;
        let rejected = delivery.rejected.len() as u64;
        pos.rejected.extend(delivery.rejected.iter().cloned());
        let skipped = passed.saturating_sub(delivery.sent + rejected);
        let now = SystemTime::now();
        self.publish(|s| {
            s.delivered += delivery.sent;
            s.skipped += skipped;
            s.rejected += rejected;
            if delivery.sent > 0 {
                s.last_delivered_at = Some(now);
            }
        });
        true
    }

    fn render_batch(&self, sink: SinkId, batch: &[QueuedRecord]) -> Vec<Rendered> {
        batch
            .iter()
            .map(|record| Rendered {
                seq: record.seq,
                line: self.render.render(sink, record),
            })
            .collect()
    }

    /// Publishes `Retrying` and returns when to try again: the backoff, or `Retry-After`.
    fn retry_later(&self, error: &SinkError, failures: &mut u32) -> Instant {
        let (message, retry_after) = match error {
            SinkError::Transient {
                message,
                retry_after,
            } => (message.clone(), *retry_after),
            SinkError::Config { reason } => (reason.clone(), None),
        };
        let backoff = self.options.backoff.delay(*failures, rand::random::<f64>());
        // What the destination asked for is honoured as given (not shortened by jitter).
        let delay = retry_after.map_or(backoff, |after| after.min(self.options.max_retry_after));
        *failures = failures.saturating_add(1);
        let attempt = *failures;
        let sink = self.sink.id();
        tracing::warn!(sink = %sink, error = %message, attempt, retry_in_ms = delay.as_millis(), "Delivery failed; retrying later.");
        self.publish(|s| {
            s.last_error = Some(message.clone());
            s.state = SinkState::Retrying {
                error: message,
                next_attempt: SystemTime::now() + delay,
                attempt,
            };
        });
        Instant::now() + delay
    }

    fn publish(&self, change: impl FnOnce(&mut SinkStatus)) {
        self.status.send_modify(change);
    }
}

/// Resolves when shutdown is requested (`true`) or its sender is gone.
async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    // `wait_for` fails only when the sender is dropped: also a reason to stop.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits for a wake-up or the idle poll.
async fn wait_for_work(wake: Option<&mut watch::Receiver<u64>>, idle: Duration) {
    let woken = async {
        match wake {
            // A closed wake channel falls back to the idle poll.
            Some(wake) => {
                if wake.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = woken => {}
        () = tokio::time::sleep(idle) => {}
    }
}

/// Polls the future in `slot`; pending for ever when there is none. The caller empties the
/// slot when it resolves.
async fn poll_slot<T>(slot: &mut Option<StoreFuture<T>>) -> Result<T, StoreError> {
    match slot {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However long the outage, the next delivery attempt is at most a minute away.
    #[test]
    fn delivery_retries_are_at_most_a_minute_apart() {
        let backoff = ForwarderOptions::default().backoff;
        assert_eq!(backoff.delay(0, 0.5), Duration::from_secs(1));
        for attempt in [10, 100, u32::MAX] {
            assert!(backoff.delay(attempt, 0.999) <= Duration::from_secs(60));
        }
        assert!(
            backoff.delay(20, 0.5) >= Duration::from_secs(30),
            "still backs off"
        );
    }
}
