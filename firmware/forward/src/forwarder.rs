//! The per-sink forwarding loop: read a bounded batch after the sink's cursor, render, send,
//! acknowledge the delivered prefix, repeat; wait when caught up; back off when failing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use boxidr_store::{QueuedRecord, SinkId, Store};
use tokio::sync::watch;

use crate::backoff::BackoffPolicy;
use crate::render::{Render, Rendered};
use crate::sink::{Delivery, Sink, SinkError};
use crate::status::{SinkState, SinkStatus};

/// Tuning of one forwarding loop. `Default` is the production setting.
#[derive(Debug, Clone)]
pub struct ForwarderOptions {
    /// Most records read (and so, at most, re-sent after a failure) per batch.
    pub max_records: usize,
    /// Most bytes of Box event JSON per batch (at least one record is always read).
    pub max_bytes: usize,
    /// When caught up and no wake-up arrives, look at the queue again this often.
    pub idle_poll: Duration,
    /// Backoff after failures.
    pub backoff: BackoffPolicy,
    /// Longest `Retry-After` honoured; a larger value is cut to this.
    pub max_retry_after: Duration,
    /// On shutdown, how long a batch already on the wire may take to finish and be acked.
    pub shutdown_grace: Duration,
}

impl Default for ForwarderOptions {
    fn default() -> Self {
        Self {
            max_records: 500,
            max_bytes: 512 * 1024,
            idle_poll: Duration::from_secs(2),
            backoff: BackoffPolicy::DEFAULT,
            max_retry_after: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// One sink's forwarding task: its own cursor in the store, its own backoff, its own status,
/// so a sink that is down never holds back the other.
///
/// Delivery is at-least-once: the store cursor only moves past records the sink reported as
/// delivered, in one durable ack per batch. A failure or a crash re-sends at most the
/// unacknowledged batch (`max_records` records).
pub struct Forwarder<S: Sink> {
    store: Store,
    sink: S,
    render: Arc<dyn Render>,
    options: ForwarderOptions,
    status: watch::Sender<SinkStatus>,
    wake: Option<watch::Receiver<u64>>,
}

impl<S: Sink> std::fmt::Debug for Forwarder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("sink", &self.sink.id())
            .field("options", &self.options)
            .finish_non_exhaustive()
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

    /// Runs until `shutdown` turns `true` (or its sender is dropped). A batch already on the
    /// wire gets [`ForwarderOptions::shutdown_grace`] to finish and be acknowledged; then the
    /// sink is closed and the status says [`SinkState::Stopped`].
    ///
    /// After a configuration error the loop sends nothing more and waits for shutdown; the
    /// binary starts a new forwarder when the settings change.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let sink_id = self.sink.id();
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let batch = match self
                .store
                .read_batch(sink_id, self.options.max_records, self.options.max_bytes)
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    let error = SinkError::transient(format!("reading the queue failed: {e}"));
                    if !self.wait_after(&error, &mut failures, &mut shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                self.publish(|s| s.state = SinkState::Idle);
                if !self.wait_for_work(&mut shutdown).await {
                    break;
                }
                continue;
            }
            let rendered = self.render_batch(sink_id, &batch);
            self.publish(|s| s.state = SinkState::Delivering);
            let (delivery, stopping) = self.deliver(&rendered, &mut shutdown).await;
            let acked = self.acknowledge(sink_id, &rendered, &delivery).await;
            match (delivery.error, acked) {
                (None, Ok(())) => failures = 0,
                (Some(SinkError::Config { reason }), _) => {
                    tracing::error!(sink = %sink_id, reason = %reason, "Sink stopped: configuration error; the queue is kept.");
                    self.publish(|s| {
                        s.last_error = Some(reason.clone());
                        s.state = SinkState::ConfigError { reason };
                    });
                    if !stopping {
                        wait_shutdown(&mut shutdown).await;
                    }
                    break;
                }
                (Some(error), _) | (None, Err(error)) => {
                    if stopping || !self.wait_after(&error, &mut failures, &mut shutdown).await {
                        break;
                    }
                }
            }
            if stopping {
                break;
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

    fn render_batch(&self, sink: SinkId, batch: &[QueuedRecord]) -> Vec<Rendered> {
        batch
            .iter()
            .map(|record| Rendered {
                seq: record.seq,
                line: self.render.render(sink, record),
            })
            .collect()
    }

    /// Delivers one batch; on shutdown lets it finish within the grace period. Returns whether
    /// shutdown was requested meanwhile.
    async fn deliver(
        &mut self,
        batch: &[Rendered],
        shutdown: &mut watch::Receiver<bool>,
    ) -> (Delivery, bool) {
        let grace = self.options.shutdown_grace;
        let delivery = self.sink.deliver(batch);
        tokio::pin!(delivery);
        tokio::select! {
            d = &mut delivery => (d, false),
            () = wait_shutdown(shutdown) => {
                match tokio::time::timeout(grace, &mut delivery).await {
                    Ok(d) => (d, true),
                    Err(_) => (Delivery {
                        error: Some(SinkError::transient("shutdown before the batch finished")),
                        ..Delivery::default()
                    }, true),
                }
            }
        }
    }

    /// Acks the delivered prefix in the store and updates the counters.
    async fn acknowledge(
        &mut self,
        sink: SinkId,
        batch: &[Rendered],
        delivery: &Delivery,
    ) -> Result<(), SinkError> {
        let Some(through) = delivery.through else {
            return Ok(());
        };
        let passed = batch.iter().take_while(|r| r.seq <= through);
        let skipped = passed.filter(|r| r.line.is_none()).count();
        match self.store.ack(sink, through).await {
            Ok(outcome) => {
                let now = SystemTime::now();
                self.publish(|s| {
                    s.cursor = outcome.cursor;
                    s.delivered += delivery.sent;
                    s.skipped += u64::try_from(skipped).unwrap_or(u64::MAX);
                    s.rejected += delivery.rejected;
                    if delivery.sent > 0 {
                        s.last_delivered_at = Some(now);
                    }
                });
                tracing::debug!(sink = %sink, through, deleted = outcome.deleted, "Batch acknowledged.");
                Ok(())
            }
            Err(e) => {
                // Delivered but not recorded: the batch is sent again (duplicates, bounded).
                tracing::warn!(sink = %sink, error = %e, "Acknowledging a delivered batch failed; it will be sent again.");
                Err(SinkError::transient(format!(
                    "recording the delivery failed: {e}"
                )))
            }
        }
    }

    /// Publishes `Retrying` and sleeps the backoff (or `Retry-After`). `false`: shutdown.
    async fn wait_after(
        &mut self,
        error: &SinkError,
        failures: &mut u32,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
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
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = wait_shutdown(shutdown) => false,
        }
    }

    /// Waits for a wake-up, the idle poll, or shutdown. `false`: shutdown.
    async fn wait_for_work(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let idle = self.options.idle_poll;
        let woken = async {
            match self.wake.as_mut() {
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
            () = woken => true,
            () = tokio::time::sleep(idle) => true,
            () = wait_shutdown(shutdown) => false,
        }
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
