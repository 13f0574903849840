//! What each component reports: plain data, filled in by the firmware from the I/O crates'
//! status channels and handed to [`assess`](crate::assess()).
//!
//! These types are defined here, not in the I/O crates, so this crate stays pure (see
//! `tools/check-deps.sh`). Times are milliseconds since the Unix epoch on the wall clock, which
//! is only trustworthy once [`ClockFacts::synchronised`] is true; durations that must hold before
//! that (uptime, time spent waiting for the clock) are monotonic seconds. No field ever carries a
//! secret: error texts come from the components' own redacted messages.

use boxidr_model::VerifierState;
use serde::{Deserialize, Serialize};

/// Everything the health model knows at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// Wall-clock time of this snapshot (ms since the Unix epoch).
    pub now_ms: u64,
    /// Seconds since the firmware started (monotonic).
    pub uptime_secs: u64,
    /// Firmware version, as printed by `boxidr --version`.
    pub version: String,
    /// Whether the setup page has been completed (Box linked, InsightIDR target saved).
    pub setup_complete: bool,
    /// The Box side: authorisation, events poller, completeness sweep.
    #[serde(rename = "box")]
    pub box_: BoxFacts,
    /// The Collector sink (UEF over TLS).
    pub collector: SinkFacts,
    /// The Log Search sink (HTTPS ingestion).
    pub log_search: SinkFacts,
    /// The redb store and its queue.
    pub store: StoreFacts,
    /// The system clock.
    pub clock: ClockFacts,
    /// The LEDs and the reset button.
    pub board: BoardFacts,
}

/// The state of the Box authorisation (tokens).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AuthState {
    /// No grant yet: Box has not been linked on the setup page.
    #[default]
    NotConnected,
    /// A valid token pair is held.
    Ok,
    /// Refreshing the access token fails for a reason that may pass (network, Box 5xx); the
    /// token manager keeps retrying.
    RefreshFailing {
        /// The last refresh error (no secrets).
        error: String,
    },
    /// Box refused the grant for good (`invalid_grant`, revoked app): polling has stopped
    /// until an administrator authorises Box again.
    ReauthorisationNeeded {
        /// What Box said (no secrets).
        reason: String,
    },
}

/// What the Box side reports (auth, streaming poller, completeness sweep).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxFacts {
    /// Whether Box credentials (client id and secret, or a grant) are configured.
    pub configured: bool,
    /// Token state.
    pub auth: AuthState,
    /// When a `GET /events` call last succeeded (ms since the epoch).
    pub last_success_ms: Option<u64>,
    /// Failed calls since the last success (the poller's and the sweep's, whichever is larger).
    pub consecutive_failures: u32,
    /// The most recent error text, kept after recovery (no secrets).
    pub last_error: Option<String>,
    /// Box asked us to wait (`429` with `Retry-After`) until this time (ms since the epoch).
    pub throttled_until_ms: Option<u64>,
    /// The poller stopped and will not resume by itself, with the reason.
    pub halted: Option<String>,
    /// The poller is holding back because the queue is at its disk quota (backpressure).
    pub queue_full: bool,
    /// Lost or rejected stream positions recovered through an `admin_logs` catch-up.
    pub stream_recoveries: u64,
    /// What the last recovery was about.
    pub last_recovery: Option<String>,
    /// Everything Box created before this time has been read by the sweep (ms since the epoch).
    pub sweep_covered_until_ms: Option<u64>,
    /// While a backfill or catch-up runs: the time it must reach (ms since the epoch).
    pub sweep_target_until_ms: Option<u64>,
    /// `created_at` of the newest Box event seen so far (ms since the epoch).
    pub newest_event_created_ms: Option<u64>,
    /// Events appended to the queue since start.
    pub events_collected: u64,
    /// Duplicate events dropped by event id since start.
    pub duplicates_dropped: u64,
    /// Malformed events kept as flagged raw records since start.
    pub flagged_events: u64,
    /// Stream positions given up, or `admin_logs` windows halved, because Box sent pages that
    /// could not be read (malformed or oversized) every time, since start.
    #[serde(default)]
    pub unreadable_pages: u64,
    /// What the last such page was about: a person should know (ATTENTION code 7).
    #[serde(default)]
    pub unreadable: Option<String>,
}

/// What a sink is doing now (mirrors the forwarder's own state, without its I/O types).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SinkState {
    /// Caught up: nothing queued for this sink.
    Idle,
    /// A batch is on its way.
    Delivering,
    /// The last attempt failed; another one is scheduled.
    Retrying {
        /// Why the last attempt failed (no secrets).
        error: String,
        /// Consecutive failed attempts (1 after the first failure).
        attempt: u32,
        /// When the first of these consecutive failures happened (ms since the epoch), if known.
        since_ms: Option<u64>,
    },
    /// Stopped until the settings change (refused token or credentials, bad certificate).
    ConfigError {
        /// What is wrong and what to check (no secrets).
        reason: String,
    },
    /// Not configured: holds nothing back in the queue.
    #[default]
    Disabled,
    /// The forwarding task has ended (shutdown).
    Stopped,
}

/// What one sink (Collector or Log Search) reports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFacts {
    /// Whether this sink is configured and enabled.
    pub configured: bool,
    /// What it is doing now.
    pub state: SinkState,
    /// Records delivered since start.
    pub delivered: u64,
    /// Records the destination refused for good (counted and passed) since start.
    pub rejected: u64,
    /// When a record was last delivered (ms since the epoch).
    pub last_delivered_ms: Option<u64>,
    /// Records in the queue this sink still has to deliver.
    pub pending: u64,
    /// When the oldest of those was collected from Box (ms since the epoch).
    pub oldest_pending_collected_ms: Option<u64>,
    /// The canary verifier's view.
    pub verifier: VerifierState,
}

/// What the store reports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFacts {
    /// Records in the queue.
    pub queue_records: u64,
    /// Size of the database file in bytes (what the quota is checked against).
    pub file_bytes: u64,
    /// The disk quota in bytes (0: unknown, no use percentage).
    pub quota_bytes: u64,
    /// Times the database was reopened after a storage error since start.
    pub reopens: u64,
    /// The storage error that is stopping writes now, if any (the database cannot be written).
    pub error: Option<String>,
    /// Whether opening the database needed redb's full repair after an unclean shutdown.
    pub repaired: bool,
    /// Why the last storage self-test (write, fsync, read back a probe file in the data
    /// directory; at start and daily) failed, if it did.
    #[serde(default)]
    pub self_test_error: Option<String>,
    /// Write transactions committed since start (group commit: most are not durable alone).
    #[serde(default)]
    pub commits: u64,
    /// Durable commits since start (each one or two fsyncs).
    #[serde(default)]
    pub durable_commits: u64,
    /// fsyncs of the database file since start (what wears an SD card).
    #[serde(default)]
    pub fsyncs: u64,
    /// Bytes written to the database file since start.
    #[serde(default)]
    pub write_bytes: u64,
    /// Records a destination refused for good, kept as dead letters (download and remove
    /// them on the Maintenance page).
    #[serde(default)]
    pub dead_letters: u64,
    /// Their stored size in bytes.
    #[serde(default)]
    pub dead_letter_bytes: u64,
    /// Whether the dead letters are at their bound: a sink holds until some are removed.
    #[serde(default)]
    pub dead_letters_full: bool,
}

/// What the clock reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockFacts {
    /// Whether the system clock is synchronised (systemd-timesyncd, or overridden for tests).
    pub synchronised: bool,
    /// Monotonic seconds spent waiting for synchronisation so far (0 once synchronised).
    pub waiting_secs: u64,
}

/// What the board reports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardFacts {
    /// Why the LEDs cannot be driven (not a Pi, no permission on the GPIO device), if so.
    /// `None`: the LEDs (physical or simulated) are being driven.
    pub gpio_error: Option<String>,
}
