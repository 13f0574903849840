//! What each sink reports to the health model, on a `tokio::sync::watch` channel.

use std::time::SystemTime;

use boxidr_store::SinkId;

/// What a sink is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkState {
    /// Caught up: nothing queued for this sink.
    Idle,
    /// A batch is on its way.
    Delivering,
    /// The last attempt failed; the next one is scheduled.
    Retrying {
        /// Why the last attempt failed (no secrets).
        error: String,
        /// When the next attempt starts (wall clock; may be wrong before time sync).
        next_attempt: SystemTime,
        /// Consecutive failed attempts so far (1 after the first failure).
        attempt: u32,
    },
    /// Stopped until the settings change (unknown token, refused credentials). The queue is
    /// kept for this sink.
    ConfigError {
        /// What is wrong and what to check (no secrets).
        reason: String,
    },
    /// Not configured; holds nothing back in the queue.
    Disabled,
    /// The forwarding task has ended (shutdown).
    Stopped,
}

/// A snapshot of one sink for health, `/metrics` and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    /// Which sink.
    pub sink: SinkId,
    /// What it is doing.
    pub state: SinkState,
    /// Records sent and acknowledged in the store since start.
    pub delivered: u64,
    /// Records passed without sending (not for this sink) since start.
    pub skipped: u64,
    /// Records the destination refused for good since start (kept as dead letters, passed).
    pub rejected: u64,
    /// The sink's cursor in the store after the last ack (0: none this run).
    pub cursor: u64,
    /// When the last record was delivered.
    pub last_delivered_at: Option<SystemTime>,
    /// The most recent error text, kept after recovery (no secrets).
    pub last_error: Option<String>,
}

impl SinkStatus {
    /// A fresh status in `state`.
    pub fn new(sink: SinkId, state: SinkState) -> Self {
        Self {
            sink,
            state,
            delivered: 0,
            skipped: 0,
            rejected: 0,
            cursor: 0,
            last_delivered_at: None,
            last_error: None,
        }
    }

    /// The status of a sink that is not configured.
    pub fn disabled(sink: SinkId) -> Self {
        Self::new(sink, SinkState::Disabled)
    }
}
