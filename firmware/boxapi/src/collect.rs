//! The Box side as one unit: the streaming poller and the `admin_logs` sweep, started in the
//! mode the admin chose, with the first connection's backfill.
//!
//! | mode                          | stream task                 | sweep                          |
//! |-------------------------------|-----------------------------|--------------------------------|
//! | streaming + completeness      | `admin_logs_streaming`      | continuous, `lag` behind       |
//! | streaming only                | `admin_logs_streaming`      | bounded: backfill and catch-up |
//! | history (`admin_logs`)        | none                        | continuous: the only reader    |
//!
//! First connection (no cursor at all): the stream starts at `now`, and when that position
//! arrives — before it is committed — the backfill `[now - backfill, that moment]` is handed to
//! the sweep and persisted, so neither a crash nor the time the first call takes opens a gap.

use std::time::Duration;

use boxidr_config::Events;
use boxidr_model::StreamType;
use boxidr_store::{CursorKey, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::events::{EventsClient, From};
use crate::poller::{self, PollStatus, Poller, PollerConfig, StreamTask};
use crate::sweep::{self, Sweep, SweepConfig, SweepStatus, SweepTask};
use crate::tokens::TokenManager;

/// Longest sweep window: a long backfill is checkpointed at least once per day of history.
pub const MAX_SWEEP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Smallest completeness window: the sweep costs about two calls per window when idle.
pub const COMPLETENESS_STEP: Duration = Duration::from_secs(300);

/// Which readers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `admin_logs_streaming`, with or without the completeness sweep.
    Streaming { completeness: bool },
    /// `admin_logs` only, `lag` behind real time.
    History,
}

/// Settings of the Box side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectConfig {
    pub mode: Mode,
    pub limit: u32,
    /// Wait after a short page of the stream.
    pub interval: Duration,
    /// How far behind real time the sweep's windows end.
    pub lag: Duration,
    /// Smallest sweep window in continuous mode.
    pub min_step: Duration,
    pub max_window: Duration,
    /// First connection: how far back to read.
    pub backfill: Duration,
}

impl CollectConfig {
    /// From the `[events]` settings.
    pub fn from_events(events: &Events) -> Self {
        let mode = match events.stream_type {
            StreamType::AdminLogsStreaming => Mode::Streaming {
                completeness: events.completeness_sweep,
            },
            StreamType::AdminLogs => Mode::History,
        };
        let interval = Duration::from_secs(events.poll_interval_secs);
        Self {
            mode,
            limit: events.page_limit,
            interval,
            lag: Duration::from_secs(events.completeness_lag_secs),
            min_step: match mode {
                Mode::History => interval,
                // A third of the lag, at most COMPLETENESS_STEP: short lags (tests, demo) get
                // short windows, the default (15 min) gets 5-minute windows.
                Mode::Streaming { .. } => (Duration::from_secs(events.completeness_lag_secs) / 3)
                    .clamp(interval, COMPLETENESS_STEP.max(interval)),
            },
            max_window: MAX_SWEEP_WINDOW,
            backfill: Duration::from_secs(u64::from(events.backfill_days) * 86_400),
        }
    }

    fn continuous(&self) -> bool {
        !matches!(
            self.mode,
            Mode::Streaming {
                completeness: false
            }
        )
    }
}

/// Where the two readers report.
#[derive(Debug)]
pub struct CollectStatus {
    pub stream: watch::Sender<PollStatus>,
    pub sweep: watch::Sender<SweepStatus>,
    /// The stream task's liveness (dropped unused in `admin_logs` mode).
    pub stream_pulse: boxidr_model::Pulse,
    /// The sweep task's liveness.
    pub sweep_pulse: boxidr_model::Pulse,
}

impl CollectStatus {
    pub fn new() -> Self {
        Self {
            stream: watch::channel(PollStatus::default()).0,
            sweep: watch::channel(SweepStatus::default()).0,
            stream_pulse: boxidr_model::Pulse::default(),
            sweep_pulse: boxidr_model::Pulse::default(),
        }
    }
}

impl Default for CollectStatus {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the Box side until `shutdown` turns true.
pub async fn run(
    config: CollectConfig,
    events: EventsClient,
    tokens: &TokenManager,
    store: &Store,
    status: CollectStatus,
    shutdown: watch::Receiver<bool>,
) -> Result<(), boxidr_store::StoreError> {
    let stream_key = CursorKey::Stream(StreamType::AdminLogsStreaming);
    let stream_cursor = store.cursor(stream_key).await?;
    let sweep_cursor = store
        .cursor(CursorKey::Sweep(sweep::SWEEP_NAME.to_owned()))
        .await?;
    let now = OffsetDateTime::now_utc();
    // At least `lag` back even without a backfill: an event created just before the first
    // connection but processed after the stream's `now` would otherwise fall between the two.
    let backfill = config.backfill.max(config.lag);
    let backfill_from = now - time::Duration::try_from(backfill).unwrap_or(time::Duration::ZERO);

    let continuous = config.continuous();
    let start = if !continuous || sweep_cursor.is_some() {
        None
    } else if let Some(stream) = &stream_cursor {
        // Completeness switched on later: start where the stream's events begin to matter.
        let margin =
            time::Duration::try_from(poller::CATCH_UP_MARGIN).unwrap_or(time::Duration::HOUR);
        Some(
            stream
                .last_created_at
                .as_deref()
                .and_then(crate::utc::parse_utc)
                .map_or(now, |t| t.min(now).checked_sub(margin).unwrap_or(now)),
        )
    } else {
        Some(backfill_from)
    };
    let sweeper = Sweep::new(
        SweepConfig {
            limit: config.limit,
            continuous,
            lag: config.lag,
            min_step: config.min_step,
            max_window: config.max_window,
        },
        sweep_cursor.as_ref(),
        start,
    );
    // A stream without a cursor starts at `now`; what lies before it is handed to the sweep
    // when that position arrives, before it is committed (poller `hand_over`).
    // A stream that never stored a position (first connection, or killed before its first
    // commit) has delivered nothing yet: everything since the backfill start is handed over.
    let stream_catch_up = stream_cursor.is_none().then_some(backfill_from);
    let (orders_tx, orders_rx) = mpsc::channel(4);
    let sweep_task = sweep::run(
        sweeper,
        SweepTask {
            events: events.clone(),
            tokens,
            store,
            status: status.sweep,
            requests: orders_rx,
            shutdown: shutdown.clone(),
            interval: config.interval,
            pulse: status.sweep_pulse,
        },
    );
    match config.mode {
        Mode::History => {
            // No stream task: its pulse must not stay registered and go late.
            drop(status.stream_pulse);
            sweep_task.await;
        }
        Mode::Streaming { .. } => {
            let poller = Poller::new(
                PollerConfig {
                    stream: StreamType::AdminLogsStreaming,
                    limit: config.limit,
                    interval: config.interval,
                    start: From::Now,
                },
                stream_cursor.and_then(|c| c.position),
            )
            .with_catch_up(stream_catch_up);
            let stream_task = poller::run(
                poller,
                StreamTask {
                    events,
                    tokens,
                    store,
                    status: status.stream,
                    catch_up: Some(orders_tx),
                    shutdown,
                    pulse: status.stream_pulse,
                },
            );
            tokio::join!(stream_task, sweep_task);
        }
    }
    Ok(())
}
