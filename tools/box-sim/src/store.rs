//! The enterprise event log and the two admin stream views over it (CONTRACT §2.3–§2.4).
//!
//! Model:
//! * Every event gets a sequence number `seq` in *processing order* (the order the simulator
//!   produced or ingested it) and keeps its own `created_at`, which jitters and is sometimes late.
//! * `admin_logs_streaming` reads in `seq` order (so not chronological), from the first event
//!   processed within the last 14 days. Cursor = `STREAM_BASE + seq` of the next event to read.
//!   A cursor older than the window silently resumes at the oldest retained event (what is
//!   gone is gone). Re-deliveries are injected by the caller (at-least-once). There is no ~12 s
//!   delay buffer: an event is readable as soon as it is generated, to keep tests fast.
//! * `admin_logs` reads in `(created_at second, seq)` order within the last 365 days, filtered by
//!   `created_after`/`created_before` (both inclusive). Cursor = `ADMIN_BASE + key` of the next
//!   key to read, where `key = created_at_unix << 26 | seq`. It never repeats an event, and an
//!   event that arrives with a `created_at` behind a cursor is never delivered to that cursor —
//!   the documented "late events may be missed when consuming near real time".
//! * Both cursor spaces are above 2^60 (> 2^53, so f64 round-trips corrupt them) and disjoint:
//!   a cursor of one stream sent to the other is rejected as `Invalid stream position`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;
use time::OffsetDateTime;

/// First cursor of `admin_logs_streaming` (2^60 = 1152921504606846976).
pub const STREAM_BASE: u64 = 1 << 60;
/// First cursor of `admin_logs`.
pub const ADMIN_BASE: u64 = (1 << 60) + (1 << 58);
const SEQ_BITS: u32 = 26;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Retention of `admin_logs_streaming`.
pub const STREAMING_RETENTION: time::Duration = time::Duration::days(14);
/// Retention of `admin_logs`.
pub const ADMIN_RETENTION: time::Duration = time::Duration::days(365);

/// One stored event.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Processing-order sequence number.
    pub seq: u64,
    /// `event_id` (empty if the JSON had none).
    pub event_id: String,
    /// `event_type`.
    pub event_type: String,
    /// Parsed `created_at`.
    pub created_at: OffsetDateTime,
    /// When the simulator processed (produced/ingested) it.
    pub processed_at: OffsetDateTime,
    /// Serialized JSON, served verbatim.
    pub raw: Arc<str>,
    /// Never served on `admin_logs_streaming`: the "gap" a completeness sweep over `admin_logs`
    /// exists to catch (the streaming feed is only "at least once" in principle).
    pub streaming_hidden: bool,
}

impl StoredEvent {
    fn key(&self) -> u64 {
        let t = u64::try_from(self.created_at.unix_timestamp()).unwrap_or(0);
        (t << SEQ_BITS) | (self.seq & SEQ_MASK)
    }
}

/// Which admin stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// `admin_logs` (Enterprise Event History).
    AdminLogs,
    /// `admin_logs_streaming` (Enterprise Event Stream).
    AdminLogsStreaming,
}

impl StreamType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::AdminLogs => "admin_logs",
            StreamType::AdminLogsStreaming => "admin_logs_streaming",
        }
    }
}

/// A parsed `stream_position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// `0`, `null` or absent: start of the retention window.
    Start,
    /// `now`.
    Now,
    /// A cursor the simulator issued: the next seq (streaming) or key (admin_logs) to read.
    At(u64),
}

/// The stream position could not be used (400 `Invalid stream position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Invalid stream position")]
pub struct InvalidPosition;

/// One page request against the store.
#[derive(Debug, Clone)]
pub struct PageQuery<'a> {
    /// Where to start.
    pub cursor: Cursor,
    /// Maximum entries (already clamped, >= 1).
    pub limit: usize,
    /// Exact `event_type` values to keep (empty = all).
    pub event_types: &'a [String],
    /// `admin_logs` only: inclusive lower bound.
    pub created_after: Option<OffsetDateTime>,
    /// `admin_logs` only: inclusive upper bound.
    pub created_before: Option<OffsetDateTime>,
    /// Probability of injecting a re-delivery after each entry (streaming only).
    pub duplicate_rate: f64,
}

/// A page as the store produced it.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Raw JSON entries in delivery order (duplicates included).
    pub entries: Vec<Arc<str>>,
    /// `event_id` of each entry, same order.
    pub ids: Vec<String>,
    /// `next_stream_position` as a number.
    pub next: u64,
}

/// Append-only log of events with both stream views.
#[derive(Debug, Default)]
pub struct EventStore {
    events: Vec<StoredEvent>,
    by_key: BTreeMap<u64, usize>,
}

impl EventStore {
    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// All stored events in processing order.
    pub fn events(&self) -> &[StoredEvent] {
        &self.events
    }

    /// Appends an event processed at `processed_at` (must not go backwards; clamped if it does).
    pub fn push(
        &mut self,
        value: &serde_json::Value,
        created_at: OffsetDateTime,
        processed_at: OffsetDateTime,
    ) -> &StoredEvent {
        let processed_at = match self.events.last() {
            Some(last) if last.processed_at > processed_at => last.processed_at,
            _ => processed_at,
        };
        let text = |k: &str| {
            value
                .get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let ev = StoredEvent {
            seq: self.events.len() as u64,
            event_id: text("event_id"),
            event_type: text("event_type"),
            created_at,
            processed_at,
            raw: Arc::from(value.to_string()),
            streaming_hidden: false,
        };
        self.by_key.insert(ev.key(), self.events.len());
        self.events.push(ev);
        &self.events[self.events.len() - 1]
    }

    /// Marks the most recently pushed event as missing from the streaming feed.
    pub fn hide_last_from_streaming(&mut self) {
        if let Some(last) = self.events.last_mut() {
            last.streaming_hidden = true;
        }
    }

    fn first_retained_seq(&self, now: OffsetDateTime) -> u64 {
        let horizon = now - STREAMING_RETENTION;
        self.events.partition_point(|e| e.processed_at < horizon) as u64
    }

    /// Parses a `stream_position` for `stream` (`None` = parameter absent).
    pub fn parse_cursor(
        &self,
        stream: StreamType,
        raw: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Cursor, InvalidPosition> {
        let s = match raw {
            None => return Ok(Cursor::Start),
            Some(s) => s.trim(),
        };
        if s == "0" || s == "null" || s.is_empty() {
            return Ok(Cursor::Start);
        }
        if s == "now" {
            return Ok(Cursor::Now);
        }
        let n: u64 = s.parse().map_err(|_| InvalidPosition)?;
        match stream {
            StreamType::AdminLogsStreaming => {
                let seq = n.checked_sub(STREAM_BASE).ok_or(InvalidPosition)?;
                if seq > self.events.len() as u64 {
                    return Err(InvalidPosition);
                }
                Ok(Cursor::At(seq))
            }
            StreamType::AdminLogs => {
                let key = n.checked_sub(ADMIN_BASE).ok_or(InvalidPosition)?;
                let t = i64::try_from(key >> SEQ_BITS).map_err(|_| InvalidPosition)?;
                if key >= 1 << 58 || t > now.unix_timestamp() + 86_400 {
                    return Err(InvalidPosition);
                }
                Ok(Cursor::At(key))
            }
        }
    }

    /// The page `admin_logs_streaming` returns for `q`.
    pub fn streaming_page<R: Rng + ?Sized>(
        &self,
        q: &PageQuery<'_>,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Page {
        let first = self.first_retained_seq(now);
        let len = self.events.len() as u64;
        let start = match q.cursor {
            Cursor::Now => len,
            Cursor::Start => first,
            Cursor::At(seq) => seq.max(first),
        };
        let mut page = Page::default();
        let mut seq = start;
        while seq < len && page.entries.len() < q.limit {
            let e = &self.events[seq as usize];
            seq += 1;
            if e.streaming_hidden
                || (!q.event_types.is_empty() && !q.event_types.contains(&e.event_type))
            {
                continue;
            }
            page.entries.push(e.raw.clone());
            page.ids.push(e.event_id.clone());
            if q.duplicate_rate > 0.0
                && page.entries.len() < q.limit
                && rng.random_bool(q.duplicate_rate.clamp(0.0, 1.0))
            {
                // Re-deliver either something already in this page or an event just before the
                // cursor (already handed out on an earlier page).
                let dup = if start > first && rng.random_bool(0.5) {
                    let back = rng.random_range(first.max(start.saturating_sub(50))..start);
                    Some(&self.events[back as usize])
                } else {
                    None
                };
                match dup {
                    Some(d)
                        if !d.streaming_hidden
                            && (q.event_types.is_empty()
                                || q.event_types.contains(&d.event_type)) =>
                    {
                        page.entries.push(d.raw.clone());
                        page.ids.push(d.event_id.clone());
                    }
                    _ => {
                        let i = rng.random_range(0..page.entries.len());
                        let (raw, id) = (page.entries[i].clone(), page.ids[i].clone());
                        page.entries.push(raw);
                        page.ids.push(id);
                    }
                }
            }
        }
        page.next = STREAM_BASE + seq;
        page
    }

    /// The page `admin_logs` returns for `q`.
    pub fn admin_page(&self, q: &PageQuery<'_>, now: OffsetDateTime) -> Page {
        let key_of = |t: OffsetDateTime| u64::try_from(t.unix_timestamp()).unwrap_or(0) << SEQ_BITS;
        let retention = key_of(now - ADMIN_RETENTION);
        let mut lower = match q.cursor {
            Cursor::Now => key_of(now) | (self.events.len() as u64 & SEQ_MASK),
            Cursor::Start => retention,
            Cursor::At(k) => k,
        };
        lower = lower.max(retention);
        if let Some(after) = q.created_after {
            lower = lower.max(key_of(after));
        }
        let upper = q.created_before.map(|b| key_of(b) | SEQ_MASK);
        let mut page = Page::default();
        let mut next = lower;
        if q.cursor != Cursor::Now {
            for (&key, &idx) in self.by_key.range(lower..) {
                if upper.is_some_and(|u| key > u) || page.entries.len() >= q.limit {
                    break;
                }
                next = key + 1;
                let e = &self.events[idx];
                if !q.event_types.is_empty() && !q.event_types.contains(&e.event_type) {
                    continue;
                }
                page.entries.push(e.raw.clone());
                page.ids.push(e.event_id.clone());
            }
        }
        page.next = ADMIN_BASE + next;
        page
    }
}
