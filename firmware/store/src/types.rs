//! The values that cross the store's API: what goes in, what comes out.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use boxidr_model::{BoxEvent, EventId, StreamPosition, StreamType};
use serde::{Deserialize, Serialize};

/// Default cap on the database file: matches `queue.quota_bytes` in the config crate.
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
/// Default redb page cache: small, because the smallest board (Pi Zero 2 W) has 512 MB of RAM
/// shared with the OS, and the working set (queue tail, cursors, seen index leaves) is small.
pub const DEFAULT_CACHE_BYTES: usize = 4 * 1024 * 1024;
/// Default lifetime of a `seen` entry: 15 days, one day longer than Box keeps events on
/// `admin_logs_streaming` (14 days), so a repeat can never outlive its dedup entry.
pub const DEFAULT_SEEN_TTL: Duration = Duration::from_secs(15 * 24 * 60 * 60);
/// Default [`StoreOptions::commit_interval`]: at most 3.3 durable commits a second, so with
/// two-phase commit (about three fsyncs each after a group: the slot, the god byte, and the
/// file growing) under ten fsyncs a second whatever the event rate (`commit_bench --group`).
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(300);
/// Most dead letters kept (records a destination refused for good). At the bound the ack
/// that would add one more is refused: that sink holds, nothing is dropped, and the status
/// says to download and remove them.
pub const DEAD_LETTER_MAX_RECORDS: u64 = 10_000;
/// Most bytes of dead letters kept (their stored size), with the same effect at the bound.
pub const DEAD_LETTER_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Longest sweep name, settings key, secret key, counter name or user id accepted.
pub const MAX_KEY_LEN: usize = 128;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The database file. Its directory must exist; the file is created (mode 0600) if absent.
    pub path: PathBuf,
    /// Cap on the database *file* size in bytes. At or above it, [`crate::StoreCore::commit_page`]
    /// refuses with [`crate::StoreError::QueueFull`] (backpressure, never loss). redb grows its file
    /// in steps (up to 2x), so the file can overshoot the quota by one growth step: size the quota
    /// to at most half of the free space on the data partition.
    pub quota_bytes: u64,
    /// redb page cache (`Builder::set_cache_size`), set explicitly: redb's default is 1 GiB.
    pub cache_bytes: usize,
    /// Two-phase commit on every write transaction (two fsyncs per commit). See [`crate::durability`].
    pub two_phase_commit: bool,
    /// Quick-repair on every write transaction (implies two-phase commit; near-instant recovery).
    pub quick_repair: bool,
    /// How long an event id stays in `seen`.
    pub seen_ttl: Duration,
    /// Group commit: the shortest time between two durable commits. Page commits, acks and
    /// users pages that arrive sooner commit without an fsync (`Durability::None`) and become
    /// durable together with the next durable commit, at most this long later (the storage
    /// thread flushes on a timer). Zero: every write transaction is durable on its own.
    /// See [`crate::durability`] for what a crash can roll back and how callers are protected.
    pub commit_interval: Duration,
}

impl StoreOptions {
    /// Options with the documented defaults (see [`crate::durability`] for the commit mode).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            quota_bytes: DEFAULT_QUOTA_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
            two_phase_commit: crate::durability::DEFAULT_TWO_PHASE_COMMIT,
            quick_repair: crate::durability::DEFAULT_QUICK_REPAIR,
            seen_ttl: DEFAULT_SEEN_TTL,
            commit_interval: DEFAULT_COMMIT_INTERVAL,
        }
    }
}

/// Which cursor a page advances: one per Box stream, plus named catch-up sweeps (an `admin_logs`
/// read with `created_after`, used when the streaming window is at risk).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CursorKey {
    /// The live cursor of a Box stream.
    Stream(StreamType),
    /// A named sweep over `admin_logs` (its own cursor, independent of the live one).
    Sweep(String),
}

impl CursorKey {
    /// The stream the page's events came from (sweeps read `admin_logs`).
    pub fn stream_type(&self) -> StreamType {
        match self {
            Self::Stream(stream) => *stream,
            Self::Sweep(_) => StreamType::AdminLogs,
        }
    }

    /// The key in the `cursors` table: `admin_logs`, `admin_logs_streaming` or `sweep:<name>`.
    pub fn to_key(&self) -> String {
        match self {
            Self::Stream(stream) => stream.as_str().to_owned(),
            Self::Sweep(name) => format!("sweep:{name}"),
        }
    }

    /// A sweep name is printable ASCII without spaces, 1..=[`MAX_KEY_LEN`] bytes.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Self::Stream(_) => Ok(()),
            Self::Sweep(name) => validate_key("sweep name", name),
        }
    }
}

impl From<StreamType> for CursorKey {
    fn from(stream: StreamType) -> Self {
        Self::Stream(stream)
    }
}

impl fmt::Display for CursorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

pub(crate) fn validate_key(what: &str, key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{what} must be 1..={MAX_KEY_LEN} printable ASCII bytes without spaces"
        ));
    }
    Ok(())
}

/// The committed position of one cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    /// Box's `next_stream_position`, verbatim; never a reset value (`"0"`). Always set on a
    /// stream cursor; `None` on a sweep that has started a window but not yet stored a position
    /// inside it (the next read starts at the window's beginning).
    pub position: Option<StreamPosition>,
    /// `collected_at_ms` of the page that stored it.
    pub updated_at_ms: u64,
    /// `created_at` of the newest event seen on this cursor, as Box wrote it (for sweeps).
    #[serde(default)]
    pub last_created_at: Option<String>,
    /// Sweeps only: the `created_after`/`created_before` window `position` belongs to.
    #[serde(default)]
    pub window: Option<SweepWindow>,
}

/// The `admin_logs` time window a sweep is reading. Box pages a window with `stream_position`
/// and the SAME `created_after`/`created_before`, so the bounds are stored with the position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepWindow {
    /// `created_after`, RFC 3339 UTC (`2024-05-02T21:03:11Z`).
    pub after: String,
    /// `created_before`, RFC 3339 UTC.
    pub before: String,
}

/// One Box page to commit: its events and the cursor that follows them.
#[derive(Debug, Clone)]
pub struct PageCommit {
    /// The cursor this page advances (and, through it, the records' stream type).
    pub cursor: CursorKey,
    /// Events in the order Box returned them.
    pub events: Vec<BoxEvent>,
    /// `next_stream_position` from the page; `None` or a reset (`"0"`) keeps the old cursor.
    pub next_position: Option<StreamPosition>,
    /// `created_at` of the newest event in the page, as fixed-width RFC 3339 UTC
    /// (`2024-05-02T21:03:11Z`) so that text order is time order; the store keeps the maximum of
    /// this and the previous value. `None` keeps the previous value.
    pub last_created_at: Option<String>,
    /// Sweeps only: the window this page was read from. A page from a different window than the
    /// stored one starts that window: its position replaces the old one, or the position is
    /// cleared if the page carries none. Must be `None` for stream cursors.
    pub window: Option<SweepWindow>,
    /// Wall-clock time of collection (ms since the epoch); also the `seen` timestamp.
    pub collected_at_ms: u64,
}

/// What happened to the cursor in a [`PageCommit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorUpdate {
    /// The new position was stored.
    Stored,
    /// The page carried no position: the old cursor stays.
    KeptNoPosition,
    /// The page carried Box's legacy reset (`"0"`): ignored, the old cursor stays.
    KeptReset,
}

/// The result of a committed page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOutcome {
    /// Events appended to the queue.
    pub appended: u64,
    /// Events skipped because their id was already seen (earlier page or same page).
    pub duplicates: u64,
    /// Sequence of the first appended record.
    pub first_seq: Option<u64>,
    /// Sequence of the last appended record.
    pub last_seq: Option<u64>,
    /// What happened to the cursor.
    pub cursor: CursorUpdate,
    /// Appended events per Box event type (for the status page's counts per type).
    pub appended_by_type: std::collections::BTreeMap<String, u64>,
}

/// One queued Box event with what the sinks need to render it at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecord {
    /// Queue sequence, assigned at commit, strictly increasing, starting at 1.
    pub seq: u64,
    pub event_id: EventId,
    pub event_type: Option<String>,
    pub stream: StreamType,
    pub collected_at_ms: u64,
    /// Box's event as compact JSON, exactly as [`BoxEvent::to_json`] produced it.
    pub event_json: String,
}

/// Which records a sink wants, judged from the record's header alone (its Box `event_type`,
/// `None` when the header has none), so a sink that takes a quarter of the events (the
/// Collector takes logins) never decodes or copies the other three quarters.
pub type RecordFilter = std::sync::Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Bounds of one [`crate::StoreCore::read_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most records returned.
    pub max_records: usize,
    /// Most bytes of event JSON returned (at least one record is, if any is wanted).
    pub max_bytes: usize,
    /// Most records looked at, returned or passed over by the filter (at least one).
    pub max_scan: usize,
}

/// What [`crate::StoreCore::read_after`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkBatch {
    /// The position the read started after: the one asked for, or the sink's stored cursor.
    pub after: u64,
    /// The records the filter kept, in sequence order.
    pub records: Vec<QueuedRecord>,
    /// The last sequence the read looked at, kept or not (`None`: nothing after `after`). A
    /// sink that delivered every kept record may acknowledge up to here.
    pub through: Option<u64>,
}

/// A downstream consumer of the queue, with its own cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SinkId {
    /// InsightIDR Collector (UEF over TLS).
    Collector,
    /// InsightIDR Log Search (HTTPS).
    LogSearch,
}

impl SinkId {
    /// Every sink the store knows.
    pub const ALL: [SinkId; 2] = [SinkId::Collector, SinkId::LogSearch];

    /// The key in the `sink_cursors` and `sinks_enabled` tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Collector => "collector",
            Self::LogSearch => "log_search",
        }
    }

    /// The sink whose table key is `key`.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sink| sink.as_str() == key)
    }
}

impl fmt::Display for SinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of an [`crate::StoreCore::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// The sink's cursor after the ack (never lower than before).
    pub cursor: u64,
    /// Whether the cursor moved (an ack at or below the cursor is a no-op, nothing is written).
    pub advanced: bool,
    /// Queue records deleted because every enabled sink has now passed them.
    pub deleted: u64,
}

/// A record a sink's destination refused for good (HTTP 413, a line that cannot be framed):
/// passed to [`crate::StoreCore::ack_rejecting`], which keeps it as a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The record's queue sequence.
    pub seq: u64,
    /// Why, in plain words (no secrets).
    pub reason: String,
}

/// A kept dead letter: the record as it was queued, which sink refused it, why and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The sink whose destination refused it.
    pub sink: SinkId,
    /// Why.
    pub reason: String,
    /// When it was set aside (ms since the epoch).
    pub at_ms: u64,
    /// The record, byte for byte as it was queued.
    pub record: QueuedRecord,
}

impl DeadLetter {
    /// One line of the JSON-lines download: the record's fields, the reason, and Box's event
    /// as JSON (as text if it does not parse, so nothing is lost).
    pub fn to_json_line(&self) -> String {
        let event = serde_json::from_str::<serde_json::Value>(&self.record.event_json)
            .unwrap_or_else(|_| serde_json::Value::String(self.record.event_json.clone()));
        serde_json::json!({
            "seq": self.record.seq,
            "sink": self.sink.as_str(),
            "reason": self.reason,
            "dead_lettered_at_ms": self.at_ms,
            "event_id": self.record.event_id.as_str(),
            "event_type": self.record.event_type,
            "stream": self.record.stream,
            "collected_at_ms": self.record.collected_at_ms,
            "event": event,
        })
        .to_string()
    }
}

/// Per-sink view in [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkStats {
    pub sink: SinkId,
    pub enabled: bool,
    /// Last delivered sequence (0: nothing yet).
    pub cursor: u64,
    /// Records in the queue after the cursor.
    pub pending: u64,
}

/// A snapshot of the store for health, metrics and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub queue_records: u64,
    pub oldest_seq: Option<u64>,
    pub newest_seq: Option<u64>,
    /// Size of the database file in bytes (what the quota is checked against).
    pub file_bytes: u64,
    pub quota_bytes: u64,
    pub pending_per_sink: Vec<SinkStats>,
    /// `collected_at_ms` of the oldest record some enabled sink still has to deliver.
    pub oldest_pending_collected_at_ms: Option<u64>,
    /// Times the database was dropped and reopened after a storage error, since this process started.
    pub reopens: u64,
    /// Whether an open by this process had to run redb's full repair (tree walk) after an
    /// unclean shutdown. A quick-repair recovery (allocator state saved in the last commit) is
    /// near-instant and does not set this.
    pub repaired: bool,
    /// Storage counters since this process opened the store (see [`IoStats`]).
    pub io: IoStats,
    /// Dead letters kept (see [`DeadLetter`]).
    pub dead_letters: u64,
    /// Their stored size in bytes.
    pub dead_letter_bytes: u64,
    /// The newest dead letter's sequence (what the Maintenance page's "remove" covers).
    pub newest_dead_letter_seq: Option<u64>,
    /// Whether an ack was refused because the dead letters are at their bound (a sink holds),
    /// since this process started and until dead letters are removed.
    pub dead_letters_full: bool,
}

/// What the store has asked of the medium since this process opened it: the figures behind
/// `boxidr_store_fsyncs_total` and friends (flushes per second is what wears an SD card).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStats {
    /// Write transactions committed (durable or not).
    pub commits: u64,
    /// Of those, durable ones (`Durability::Immediate`, including group flushes).
    pub durable_commits: u64,
    /// `sync_data` calls made on the database file (fsyncs; two per durable 2PC commit).
    pub fsyncs: u64,
    /// Bytes handed to the file's `write` calls.
    pub bytes_written: u64,
    /// Times a storage error rolled back commits that had already been answered (group
    /// commit); page commits and acks were then refused until [`crate::Store::lift_fence`].
    pub rollbacks: u64,
    /// Compactions of the file (at the quota, or asked for).
    pub compactions: u64,
    /// Entries added since the last compaction (or open): records queued, users not stored
    /// before (a users sync that lists the same users again adds none).
    pub written_since_compaction: u64,
    /// Entries deleted since then: records delivered, seen ids expired, dead letters and
    /// users removed. Only their pages are free inside the file; a file that grew with entries
    /// still stored (a users sync of a big enterprise) does not shrink when compacted.
    pub deleted_since_compaction: u64,
}

/// File size before and after [`crate::StoreCore::compact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    pub before_bytes: u64,
    pub after_bytes: u64,
    /// Compaction rounds run (redb may need several).
    pub rounds: u32,
}

/// One Box user from the users sync: id and the user's JSON object as Box sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub id: String,
    pub json: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cursor keys spell the stream names and prefix sweeps; bad sweep names are refused.
    #[test]
    fn cursor_keys() {
        assert_eq!(
            CursorKey::from(StreamType::AdminLogs).to_key(),
            "admin_logs"
        );
        assert_eq!(CursorKey::Sweep("catchup".into()).to_key(), "sweep:catchup");
        assert_eq!(
            CursorKey::Sweep("x".into()).stream_type(),
            StreamType::AdminLogs
        );
        assert!(CursorKey::Sweep(String::new()).validate().is_err());
        assert!(CursorKey::Sweep("a b".into()).validate().is_err());
    }

    /// Sink ids round-trip through their table keys.
    #[test]
    fn sink_keys_round_trip() {
        for sink in SinkId::ALL {
            assert_eq!(SinkId::from_key(sink.as_str()), Some(sink));
        }
        assert_eq!(SinkId::from_key("syslog"), None);
    }
}
