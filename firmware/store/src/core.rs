//! The synchronous store: every transaction, owned by exactly one thread.
//!
//! [`StoreCore`] owns the `redb::Database`. Each public method is one read or one write
//! transaction; each write transaction is the durability boundary of what it changes. After a
//! storage error the database is dropped and reopened (redb refuses writes on a handle whose
//! commit failed; the reopen repairs the file) before the next call is served.

use std::collections::{BTreeSet, HashSet};
use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use boxidr_model::Secret;
use redb::{
    Builder, Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, StorageBackend, TableDefinition, TableError, WriteTransaction,
};
use tracing::{debug, info, warn};

use crate::backend::{BackendFactory, IoCounters, SharedBackend};
use crate::error::{Op, StorageResultExt, StoreError};
use crate::schema::{self, decode_record, encode_record};
use crate::types::{
    AckOutcome, CompactReport, CursorKey, CursorState, CursorUpdate, DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_MAX_RECORDS, DeadLetter, IoStats, PageCommit, PageOutcome, QueuedRecord,
    ReadLimits, RecordFilter, Rejection, SinkBatch, SinkId, SinkStats, Stats, StoreOptions,
    UserEntry, validate_key,
};

/// Most compaction rounds one [`StoreCore::compact`] runs (redb may need several to shrink).
const MAX_COMPACT_ROUNDS: u32 = 16;

/// Where the database bytes live.
enum Location {
    File(PathBuf),
    Backend(BackendFactory),
}

/// Everything but the database handle, so transactions can borrow both at once.
struct Env {
    options: StoreOptions,
    location: Location,
    /// The backend handed to the current database (non-file locations), for `len()`.
    backend: Option<Arc<dyn StorageBackend>>,
    /// Set by the repair callback when an open had to repair the file.
    repaired: Arc<AtomicBool>,
    reopens: u64,
    /// fsyncs and bytes written, across reopens.
    io: Arc<IoCounters>,
    group: GroupState,
    /// An ack was refused at the dead-letter bound (until dead letters are removed).
    dead_letters_full: bool,
}

/// Group-commit bookkeeping (see [`Env::begin_write`]).
#[derive(Debug, Default)]
struct GroupState {
    /// Commits this store has answered, as stamped in `meta` (`commit_count`).
    commit_count: u64,
    /// Non-durable commits since the last durable one.
    pending: u64,
    last_durable: Option<Instant>,
    commits: u64,
    durable_commits: u64,
    rollbacks: u64,
    /// Set when a reopen lost answered commits; grouped writes are refused until lifted.
    fenced: bool,
}

/// A write transaction and whether it commits durably.
struct Txn {
    txn: WriteTransaction,
    durable: bool,
}

impl std::ops::Deref for Txn {
    type Target = WriteTransaction;
    fn deref(&self) -> &WriteTransaction {
        &self.txn
    }
}

impl Txn {
    fn abort(self, op: Op) -> Result<(), StoreError> {
        self.txn.abort().op(op)
    }
}

/// The writes group commit may leave non-durable for up to one commit interval: the ones that
/// come at the event rate. Settings, secrets and sink changes are always durable at once
/// (a rotated refresh token must be on the medium before it is used: invariant 5).
fn is_grouped(op: Op) -> bool {
    matches!(
        op,
        Op::CommitPage | Op::Ack | Op::PutUsers | Op::RetainUsers | Op::ExpireSeen | Op::AddCounter
    )
}

/// The synchronous store. Not `Sync`: one thread owns it (see [`crate::Store`]).
pub struct StoreCore {
    env: Env,
    /// `None` after a storage error until the reopen succeeds, and after [`StoreCore::close`].
    db: Option<Arc<Database>>,
    /// The same database for [`UserReader`]s (point reads from other threads); emptied under
    /// its write lock before the database is dropped, compacted or reopened.
    readers: Arc<RwLock<Option<Arc<Database>>>>,
    closed: bool,
    /// Entries deleted since the file was last compacted: only deletions can make compacting a
    /// full file free room (see [`StoreCore::commit_page`]). A queue length compared with the
    /// one at the last compaction is not enough: records appended and deleted since leave it
    /// unchanged (an empty queue twice) though their pages are free.
    deleted_since_compaction: u64,
    /// How many deletions make a full file worth compacting again: a quarter of the records
    /// queued when it last filled up (1 after open). Compacting reads and moves the whole
    /// file; a sink draining a full queue deletes something between any two page commits,
    /// and compacting on each of those kept the store's thread busy moving pages instead of
    /// serving the sinks (a 1,000,000-event drain went from 65 s to not done in 10 minutes).
    compact_after_deletions: u64,
    /// Compactions run since open.
    compactions: u64,
    /// Entries written and deleted since the last compaction (or open): what a compaction
    /// after a drain could give back (see [`IoStats::deleted_since_compaction`]).
    churn: Churn,
}

/// Entries stored and deleted since the last compaction.
#[derive(Debug, Clone, Copy, Default)]
struct Churn {
    /// Records queued and users added (a user stored again replaces its entry).
    written: u64,
    /// Records, seen ids, dead letters and users deleted.
    deleted: u64,
}

impl std::fmt::Debug for StoreCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCore")
            .field("path", &self.env.options.path)
            .field("open", &self.db.is_some())
            .field("reopens", &self.env.reopens)
            .finish_non_exhaustive()
    }
}

impl StoreCore {
    /// Opens (or creates, mode 0600) the database file at `options.path` and checks its schema.
    ///
    /// Invariant: a file with a newer schema is refused ([`StoreError::SchemaTooNew`]) without
    /// being written; a new file is stamped with [`schema::SCHEMA_VERSION`] in its first commit.
    pub fn open(options: StoreOptions) -> Result<Self, StoreError> {
        let location = Location::File(options.path.clone());
        Self::open_at(options, location)
    }

    /// Opens the store on a custom backend (tests: fault injection, power-loss images).
    /// `options.path` is then only a label; file size means `backend.len()`.
    pub fn open_with_backend(
        options: StoreOptions,
        factory: BackendFactory,
    ) -> Result<Self, StoreError> {
        Self::open_at(options, Location::Backend(factory))
    }

    fn open_at(options: StoreOptions, location: Location) -> Result<Self, StoreError> {
        let mut env = Env {
            options,
            location,
            backend: None,
            repaired: Arc::new(AtomicBool::new(false)),
            reopens: 0,
            io: Arc::new(IoCounters::default()),
            group: GroupState::default(),
            dead_letters_full: false,
        };
        let db = Arc::new(env.open_database(Op::Open)?);
        Ok(Self {
            env,
            readers: Arc::new(RwLock::new(Some(db.clone()))),
            db: Some(db),
            closed: false,
            deleted_since_compaction: 1,
            compact_after_deletions: 1,
            compactions: 0,
            churn: Churn::default(),
        })
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.env.options
    }

    /// Appends a Box page and advances its cursor in ONE durable write transaction.
    ///
    /// Invariants: (1) events and cursor commit together or not at all; (3) an event id already
    /// in `seen` (or earlier in the same page) is skipped and counted, never queued twice; the
    /// cursor never moves to `None` or to Box's legacy reset `"0"`; (4) at or above the quota
    /// nothing is written and [`StoreError::QueueFull`] is returned, so the poller does not
    /// advance and Box keeps the events. There is no "drop oldest" path.
    pub fn commit_page(&mut self, page: PageCommit) -> Result<PageOutcome, StoreError> {
        let op = Op::CommitPage;
        page.cursor
            .validate()
            .map_err(|detail| StoreError::InvalidInput { op, detail })?;
        if matches!(page.cursor, CursorKey::Stream(_)) && page.window.is_some() {
            return Err(StoreError::InvalidInput {
                op,
                detail: "a stream cursor has no sweep window".to_owned(),
            });
        }
        let outcome = match self.commit_page_once(&page) {
            // The sinks deleted enough records since the file last filled up: the file is
            // measured by its size, which redb does not shrink by itself, so compact once and
            // try again. Without deletions since, compaction cannot help.
            Err(StoreError::QueueFull { queue_records, .. })
                if self.deleted_since_compaction >= self.compact_after_deletions =>
            {
                self.deleted_since_compaction = 0;
                self.compact_after_deletions = (queue_records / 4).max(1);
                self.compact()?;
                self.commit_page_once(&page)
            }
            other => other,
        };
        if let Ok(committed) = &outcome {
            self.note_written(committed.appended);
        }
        outcome
    }

    /// Records that a committed write deleted `deleted` entries: their pages are free inside
    /// the file, so a full file may be worth compacting again.
    fn note_freed(&mut self, deleted: u64) {
        self.deleted_since_compaction = self.deleted_since_compaction.saturating_add(deleted);
        self.churn.deleted = self.churn.deleted.saturating_add(deleted);
    }

    /// Records that a committed write stored `written` new or replaced entries.
    fn note_written(&mut self, written: u64) {
        self.churn.written = self.churn.written.saturating_add(written);
    }

    fn commit_page_once(&mut self, page: &PageCommit) -> Result<PageOutcome, StoreError> {
        let op = Op::CommitPage;
        self.run(|env, db| {
            let file_bytes = env.file_bytes(op)?;
            if file_bytes >= env.options.quota_bytes {
                let read = db.begin_read().op(op)?;
                let queue_records = open_read(&read, schema::QUEUE, op)?
                    .map(|t| t.len())
                    .transpose()
                    .op(op)?
                    .unwrap_or(0);
                return Err(StoreError::QueueFull {
                    file_bytes,
                    quota_bytes: env.options.quota_bytes,
                    queue_records,
                });
            }
            let txn = env.begin_write(db, op)?;
            let outcome = commit_page_in(&txn, page, op)?;
            env.commit(txn, op)?;
            Ok(outcome)
        })
    }

    /// Up to `max_records` records after `sink`'s cursor, in sequence order, stopping before
    /// `max_bytes` of event JSON (at least one record is returned if any is pending, so one
    /// oversized event cannot wedge a sink). One read transaction; nothing changes.
    pub fn read_batch(
        &mut self,
        sink: SinkId,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<QueuedRecord>, StoreError> {
        let op = Op::ReadBatch;
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let cursor = match open_read(&read, schema::SINK_CURSORS, op)? {
                Some(table) => table.get(sink.as_str()).op(op)?.map_or(0, |g| g.value()),
                None => 0,
            };
            let Some(queue) = open_read(&read, schema::QUEUE, op)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            let mut bytes = 0usize;
            for entry in queue.range(cursor.saturating_add(1)..).op(op)? {
                if out.len() >= max_records {
                    break;
                }
                let (key, value) = entry.op(op)?;
                let record = decode(op, key.value(), value.value())?;
                let size = record.event_json.len();
                if !out.is_empty() && bytes.saturating_add(size) > max_bytes {
                    break;
                }
                bytes = bytes.saturating_add(size);
                out.push(record);
            }
            Ok(out)
        })
    }

    /// The pipelined reader of a sink: records after `after` (the sink's stored cursor when
    /// `None`) within `limits`. `wanted` filters on the header alone: records it
    /// refuses are passed over without their event being decoded, and
    /// [`SinkBatch::through`] says how far the read looked, so the sink can acknowledge them.
    /// One read transaction; nothing changes.
    pub fn read_after(
        &mut self,
        sink: SinkId,
        after: Option<u64>,
        limits: ReadLimits,
        wanted: Option<&RecordFilter>,
    ) -> Result<SinkBatch, StoreError> {
        let op = Op::ReadBatch;
        let ReadLimits {
            max_records,
            max_bytes,
            max_scan,
        } = limits;
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let after = match after {
                Some(after) => after,
                None => match open_read(&read, schema::SINK_CURSORS, op)? {
                    Some(table) => table.get(sink.as_str()).op(op)?.map_or(0, |g| g.value()),
                    None => 0,
                },
            };
            let mut batch = SinkBatch {
                after,
                ..SinkBatch::default()
            };
            let Some(queue) = open_read(&read, schema::QUEUE, op)? else {
                return Ok(batch);
            };
            let mut bytes = 0usize;
            let mut scanned = 0usize;
            for entry in queue.range(after.saturating_add(1)..).op(op)? {
                if batch.records.len() >= max_records || scanned >= max_scan.max(1) {
                    break;
                }
                let (key, value) = entry.op(op)?;
                let (seq, value) = (key.value(), value.value());
                if let Some(wanted) = wanted {
                    let keep = schema::keep_record(value, wanted.as_ref()).map_err(|detail| {
                        StoreError::Corrupt {
                            op,
                            table: "queue",
                            key: seq.to_string(),
                            detail,
                        }
                    })?;
                    if !keep {
                        scanned += 1;
                        batch.through = Some(seq);
                        continue;
                    }
                }
                let record = decode(op, seq, value)?;
                let size = record.event_json.len();
                if !batch.records.is_empty() && bytes.saturating_add(size) > max_bytes {
                    break;
                }
                bytes = bytes.saturating_add(size);
                scanned += 1;
                batch.through = Some(seq);
                batch.records.push(record);
            }
            Ok(batch)
        })
    }

    /// Records that `sink` delivered everything up to `up_to_seq`, then deletes every record all
    /// enabled sinks have passed, in ONE durable write transaction.
    ///
    /// Invariants: (2) a record is deleted only when every enabled sink's cursor is at or past
    /// it (with no enabled sink, nothing is deleted); a sink cursor never moves backwards (an
    /// older ack is a no-op and writes nothing); acking a sequence never assigned is refused.
    pub fn ack(&mut self, sink: SinkId, up_to_seq: u64) -> Result<AckOutcome, StoreError> {
        self.ack_rejecting(sink, up_to_seq, &[], 0)
    }

    /// As [`StoreCore::ack`], and in the same transaction keeps every record of `rejected`
    /// that the ack passes (its destination refused it for good) as a dead letter, with its
    /// reason and `now_ms`. A rejection at or below the old cursor was kept by an earlier ack.
    ///
    /// Invariant: nothing Box gave us disappears silently. A refused record leaves the queue
    /// only once it is a dead letter; at the bound ([`crate::DEAD_LETTER_MAX_RECORDS`],
    /// [`crate::DEAD_LETTER_MAX_BYTES`]) the whole ack is refused with
    /// [`StoreError::DeadLettersFull`] and nothing is written, so the sink holds.
    pub fn ack_rejecting(
        &mut self,
        sink: SinkId,
        up_to_seq: u64,
        rejected: &[Rejection],
        now_ms: u64,
    ) -> Result<AckOutcome, StoreError> {
        let op = Op::Ack;
        let result = self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let outcome = {
                let mut meta = txn.open_table(schema::META).op(op)?;
                let newest = next_seq(&meta, op)?.saturating_sub(1);
                if up_to_seq > newest {
                    return Err(StoreError::AckBeyondNewest {
                        sink,
                        up_to: up_to_seq,
                        newest,
                    });
                }
                let mut cursors = txn.open_table(schema::SINK_CURSORS).op(op)?;
                let old = cursors.get(sink.as_str()).op(op)?.map_or(0, |g| g.value());
                if up_to_seq <= old {
                    AckOutcome {
                        cursor: old,
                        advanced: false,
                        deleted: 0,
                    }
                } else {
                    let passed: Vec<&Rejection> = rejected
                        .iter()
                        .filter(|r| r.seq > old && r.seq <= up_to_seq)
                        .collect();
                    if !passed.is_empty() {
                        let kept = keep_dead_letters(&txn, &mut meta, sink, &passed, now_ms, op);
                        env.dead_letters_full =
                            matches!(kept, Err(StoreError::DeadLettersFull { .. }));
                        kept?;
                    }
                    cursors.insert(sink.as_str(), up_to_seq).op(op)?;
                    drop(cursors);
                    drop(meta);
                    let deleted = purge_delivered(&txn, op)?;
                    AckOutcome {
                        cursor: up_to_seq,
                        advanced: true,
                        deleted,
                    }
                }
            };
            if outcome.advanced {
                env.commit(txn, op)?;
            } else {
                txn.abort(op)?;
            }
            Ok(outcome)
        });
        self.note_freed(result.as_ref().map_or(0, |o| o.deleted));
        result
    }

    /// Up to `limit` dead letters after `after` (a queue sequence; `None`: from the oldest),
    /// oldest first. One read transaction.
    pub fn dead_letters(
        &mut self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let op = Op::ReadDeadLetters;
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let Some(table) = open_read(&read, schema::DEAD_LETTERS, op)? else {
                return Ok(Vec::new());
            };
            let start = after.map_or(0, |a| a.saturating_add(1));
            let mut out = Vec::new();
            for entry in table.range((start, "")..).op(op)?.take(limit) {
                let (key, value) = entry.op(op)?;
                let (seq, sink_key) = key.value();
                let corrupt = |detail: String| StoreError::Corrupt {
                    op,
                    table: "dead_letters",
                    key: format!("{seq}/{sink_key}"),
                    detail,
                };
                let sink = SinkId::from_key(sink_key)
                    .ok_or_else(|| corrupt(format!("unknown sink {sink_key:?}")))?;
                let (reason, at_ms, record) =
                    schema::decode_dead_letter(seq, value.value()).map_err(corrupt)?;
                out.push(DeadLetter {
                    sink,
                    reason,
                    at_ms,
                    record,
                });
            }
            Ok(out)
        })
    }

    /// Removes the dead letters with a sequence up to `through_seq` (the newest one the
    /// administrator was shown, so one set aside meanwhile stays) in one durable write
    /// transaction. Returns how many were removed.
    pub fn remove_dead_letters(&mut self, through_seq: u64) -> Result<u64, StoreError> {
        let op = Op::RemoveDeadLetters;
        let result = self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let removed = {
                let mut table = txn.open_table(schema::DEAD_LETTERS).op(op)?;
                let (mut removed, mut bytes) = (0u64, 0u64);
                for entry in table
                    .extract_from_if(..(through_seq.saturating_add(1), ""), |_, _| true)
                    .op(op)?
                {
                    let (_, value) = entry.op(op)?;
                    removed += 1;
                    bytes += value.value().len() as u64;
                }
                drop(table);
                if removed > 0 {
                    let mut meta = txn.open_table(schema::META).op(op)?;
                    let total = meta
                        .get(schema::META_DEAD_LETTER_BYTES)
                        .op(op)?
                        .map_or(0, |g| g.value());
                    meta.insert(schema::META_DEAD_LETTER_BYTES, total.saturating_sub(bytes))
                        .op(op)?;
                }
                removed
            };
            if removed == 0 {
                txn.abort(op)?;
            } else {
                env.commit(txn, op)?;
                env.dead_letters_full = false;
            }
            Ok(removed)
        });
        self.note_freed(*result.as_ref().unwrap_or(&0));
        result
    }

    /// Replaces the set of enabled sinks and deletes records no enabled sink still needs, in one
    /// durable write transaction. Returns the number of records deleted.
    ///
    /// Invariant: a disabled sink holds nothing back; enabling a sink later lets it read only
    /// what is still queued after its cursor.
    pub fn set_enabled_sinks(&mut self, sinks: &[SinkId]) -> Result<u64, StoreError> {
        let op = Op::SetEnabledSinks;
        let result = self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            {
                let mut enabled = txn.open_table(schema::SINKS_ENABLED).op(op)?;
                enabled.retain(|_, _| false).op(op)?;
                for sink in sinks {
                    enabled.insert(sink.as_str(), ()).op(op)?;
                }
            }
            let deleted = purge_delivered(&txn, op)?;
            env.commit(txn, op)?;
            Ok(deleted)
        });
        self.note_freed(*result.as_ref().unwrap_or(&0));
        result
    }

    /// A snapshot of queue, sinks and file size (one read transaction).
    pub fn stats(&mut self) -> Result<Stats, StoreError> {
        let op = Op::Stats;
        let mut stats = self.stats_once(op)?;
        stats.io = self.io_stats();
        Ok(stats)
    }

    fn stats_once(&mut self, op: Op) -> Result<Stats, StoreError> {
        self.run(|env, db| {
            let file_bytes = env.file_bytes(op)?;
            let read = db.begin_read().op(op)?;
            let queue = open_read(&read, schema::QUEUE, op)?;
            let (mut queue_records, mut oldest_seq, mut newest_seq) = (0, None, None);
            if let Some(queue) = &queue {
                queue_records = queue.len().op(op)?;
                oldest_seq = queue.first().op(op)?.map(|(k, _)| k.value());
                newest_seq = queue.last().op(op)?.map(|(k, _)| k.value());
            }
            let enabled = enabled_sinks(&read, op)?;
            let sink_cursors = open_read(&read, schema::SINK_CURSORS, op)?;
            let mut pending_per_sink = Vec::new();
            let mut min_enabled_cursor: Option<u64> = None;
            for sink in SinkId::ALL {
                let cursor = match &sink_cursors {
                    Some(t) => t.get(sink.as_str()).op(op)?.map_or(0, |g| g.value()),
                    None => 0,
                };
                let pending = match (oldest_seq, newest_seq) {
                    // The queue is contiguous (schema invariant): pending is a subtraction.
                    (Some(oldest), Some(newest)) => {
                        newest.saturating_sub(cursor.max(oldest.saturating_sub(1)))
                    }
                    _ => 0,
                };
                let is_enabled = enabled.contains(&sink);
                if is_enabled {
                    min_enabled_cursor =
                        Some(min_enabled_cursor.map_or(cursor, |m: u64| m.min(cursor)));
                }
                pending_per_sink.push(SinkStats {
                    sink,
                    enabled: is_enabled,
                    cursor,
                    pending,
                });
            }
            let oldest_pending_collected_at_ms = match (&queue, min_enabled_cursor) {
                (Some(queue), Some(cursor)) => {
                    match queue.range(cursor.saturating_add(1)..).op(op)?.next() {
                        Some(entry) => {
                            let (key, value) = entry.op(op)?;
                            Some(decode(op, key.value(), value.value())?.collected_at_ms)
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            let (dead_letters, newest_dead_letter_seq) =
                match open_read(&read, schema::DEAD_LETTERS, op)? {
                    Some(t) => (t.len().op(op)?, t.last().op(op)?.map(|(k, _)| k.value().0)),
                    None => (0, None),
                };
            let dead_letter_bytes = match open_read(&read, schema::META, op)? {
                Some(meta) => meta
                    .get(schema::META_DEAD_LETTER_BYTES)
                    .op(op)?
                    .map_or(0, |g| g.value()),
                None => 0,
            };
            Ok(Stats {
                queue_records,
                oldest_seq,
                newest_seq,
                file_bytes,
                quota_bytes: env.options.quota_bytes,
                pending_per_sink,
                oldest_pending_collected_at_ms,
                reopens: env.reopens,
                repaired: env.repaired.load(Ordering::Relaxed),
                io: IoStats::default(),
                dead_letters,
                dead_letter_bytes,
                newest_dead_letter_seq,
                dead_letters_full: env.dead_letters_full,
            })
        })
    }

    /// The committed cursor, if any page of that cursor committed a position.
    pub fn cursor(&mut self, key: &CursorKey) -> Result<Option<CursorState>, StoreError> {
        let op = Op::Cursor;
        key.validate()
            .map_err(|detail| StoreError::InvalidInput { op, detail })?;
        let key = key.to_key();
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let Some(table) = open_read(&read, schema::CURSORS, op)? else {
                return Ok(None);
            };
            let value = table.get(key.as_str()).op(op)?;
            value
                .map(|v| decode_cursor(op, &key, v.value()))
                .transpose()
        })
    }

    /// Removes dedupe entries first seen more than `seen_ttl` before `now_ms` (one durable
    /// write transaction): a range scan of `seen_at` below the cut-off, keeping the entries of
    /// old events seen recently; and, in a file from schema 1, a range scan of its time index.
    /// Returns how many were removed.
    ///
    /// Invariant: only entries older than the TTL go; the TTL outlives Box's duplicate window.
    pub fn expire_seen(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        let op = Op::ExpireSeen;
        let result = self.run(|env, db| {
            let ttl_ms = u64::try_from(env.options.seen_ttl.as_millis()).unwrap_or(u64::MAX);
            let cutoff = now_ms.saturating_sub(ttl_ms);
            let txn = env.begin_write(db, op)?;
            let mut removed = 0u64;
            {
                let mut seen_at = txn.open_table(schema::SEEN_AT).op(op)?;
                let future = now_ms.saturating_add(schema::SEEN_FUTURE_SLACK_MS);
                for range in [
                    (Bound::Unbounded, Bound::Excluded((cutoff, ""))),
                    (Bound::Excluded((future, "")), Bound::Unbounded),
                ] {
                    for entry in seen_at
                        .extract_from_if(range, |_, first_seen| first_seen < cutoff)
                        .op(op)?
                    {
                        entry.op(op)?;
                        removed += 1;
                    }
                }
                let mut seen = txn.open_table(schema::SEEN).op(op)?;
                let mut by_time = txn.open_table(schema::SEEN_BY_TIME).op(op)?;
                for entry in by_time
                    .extract_from_if(..(cutoff, ""), |_, _| true)
                    .op(op)?
                {
                    let (key, _) = entry.op(op)?;
                    let (ms, id) = key.value();
                    // Only drop the `seen` entry this index row describes.
                    let matches = seen.get(id).op(op)?.is_some_and(|g| g.value() == ms);
                    if matches {
                        seen.remove(id).op(op)?;
                    }
                    removed += 1;
                }
            }
            if removed == 0 {
                txn.abort(op)?;
            } else {
                env.commit(txn, op)?;
            }
            Ok(removed)
        });
        self.note_freed(*result.as_ref().unwrap_or(&0));
        result
    }

    /// Stores a page of users from the users sync in one write transaction (grouped), each
    /// stamped with the current users sync generation.
    pub fn put_users(&mut self, users: &[UserEntry]) -> Result<(), StoreError> {
        let op = Op::PutUsers;
        for user in users {
            validate_key("user id", &user.id)
                .map_err(|detail| StoreError::InvalidInput { op, detail })?;
        }
        let added = self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let added = {
                let generation = txn
                    .open_table(schema::META)
                    .op(op)?
                    .get(schema::META_USERS_GENERATION)
                    .op(op)?
                    .map_or(0, |g| g.value());
                let mut table = txn.open_table(schema::USERS).op(op)?;
                let mut stamps = txn.open_table(schema::USERS_SYNC).op(op)?;
                let mut added = 0u64;
                for user in users {
                    let old = table.insert(user.id.as_str(), user.json.as_str()).op(op)?;
                    added += u64::from(old.is_none());
                    stamps.insert(user.id.as_str(), generation).op(op)?;
                }
                added
            };
            env.commit(txn, op)?;
            Ok(added)
        })?;
        // A user replaced in place frees its old pages for reuse: only new users grow the file.
        self.note_written(added);
        Ok(())
    }

    /// Starts a users sync: a new generation that every [`StoreCore::put_users`] from now on
    /// stamps on the users it writes, so [`StoreCore::prune_users`] can remove the users the
    /// sync did not list without the sync holding every listed id in memory (500,000 users).
    pub fn begin_users_sync(&mut self) -> Result<u64, StoreError> {
        let op = Op::PutUsers;
        self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let generation = {
                let mut meta = txn.open_table(schema::META).op(op)?;
                let next = meta
                    .get(schema::META_USERS_GENERATION)
                    .op(op)?
                    .map_or(0, |g| g.value())
                    .saturating_add(1);
                meta.insert(schema::META_USERS_GENERATION, next).op(op)?;
                next
            };
            env.commit(txn, op)?;
            Ok(generation)
        })
    }

    /// After a users sync that read EVERY page: removes every stored user whose stamp is older
    /// than `generation` (Box no longer lists it) in ONE write transaction, streaming through
    /// the stamps on disk. Returns how many were removed; nothing is written if none.
    pub fn prune_users(&mut self, generation: u64) -> Result<u64, StoreError> {
        let op = Op::RetainUsers;
        let result = self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let removed = {
                let mut table = txn.open_table(schema::USERS).op(op)?;
                let mut stamps = txn.open_table(schema::USERS_SYNC).op(op)?;
                let mut removed = 0u64;
                // Users stored by a firmware before stamps existed: generation 0.
                let mut unstamped = Vec::new();
                for entry in table.iter().op(op)? {
                    let (id, _) = entry.op(op)?;
                    let id = id.value();
                    if stamps.get(id).op(op)?.is_none() {
                        unstamped.push(id.to_owned());
                        if unstamped.len() > 10_000 {
                            break;
                        }
                    }
                }
                for id in unstamped {
                    stamps.insert(id.as_str(), 0).op(op)?;
                }
                for entry in stamps.extract_if(|_, stamp| stamp < generation).op(op)? {
                    let (id, _) = entry.op(op)?;
                    table.remove(id.value()).op(op)?;
                    removed += 1;
                }
                removed
            };
            if removed == 0 {
                txn.abort(op)?;
            } else {
                env.commit(txn, op)?;
            }
            Ok(removed)
        });
        self.note_freed(*result.as_ref().unwrap_or(&0));
        result
    }

    /// Keeps only the stored users whose id is in `keep`; removes every other one in ONE durable
    /// write transaction and returns how many were removed.
    ///
    /// The users sync calls this after it has read EVERY page of Box's listing, with every id
    /// it saw: users Box no longer lists (deleted accounts) leave the directory. A crash leaves
    /// either all of them or none of them removed; nothing is written when nothing is to go.
    pub fn retain_users(&mut self, keep: &HashSet<String>) -> Result<u64, StoreError> {
        let op = Op::RetainUsers;
        let result = self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let removed = {
                let mut table = txn.open_table(schema::USERS).op(op)?;
                let before = table.len().op(op)?;
                table.retain(|id, _| keep.contains(id)).op(op)?;
                txn.open_table(schema::USERS_SYNC)
                    .op(op)?
                    .retain(|id, _| keep.contains(id))
                    .op(op)?;
                before - table.len().op(op)?
            };
            if removed == 0 {
                txn.abort(op)?;
            } else {
                env.commit(txn, op)?;
            }
            Ok(removed)
        });
        self.note_freed(*result.as_ref().unwrap_or(&0));
        result
    }

    /// A user's JSON as stored by [`StoreCore::put_users`].
    pub fn get_user(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        self.get_str(Op::GetUser, schema::USERS, id)
    }

    /// Up to `limit` stored users with an id after `after`, in id order (a bounded page, so the
    /// directory can be loaded without holding every user in one reply).
    pub fn users_after(
        &mut self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserEntry>, StoreError> {
        let op = Op::ListUsers;
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let Some(table) = open_read(&read, schema::USERS, op)? else {
                return Ok(Vec::new());
            };
            let range = match after {
                Some(after) => table
                    .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
                None => table.range::<&str>(..),
            }
            .op(op)?;
            let mut users = Vec::new();
            for entry in range.take(limit) {
                let (id, json) = entry.op(op)?;
                users.push(UserEntry {
                    id: id.value().to_owned(),
                    json: json.value().to_owned(),
                });
            }
            Ok(users)
        })
    }

    /// A setting's JSON value.
    pub fn get_setting(&mut self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let op = Op::GetSetting;
        let Some(text) = self.get_str(op, schema::SETTINGS, key)? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                op,
                table: "settings",
                key: key.to_owned(),
                detail: e.to_string(),
            })
    }

    /// Stores a setting (one durable write transaction).
    pub fn set_setting(&mut self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let op = Op::SetSetting;
        validate_key("setting key", key)
            .map_err(|detail| StoreError::InvalidInput { op, detail })?;
        let text = value.to_string();
        self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            txn.open_table(schema::SETTINGS)
                .op(op)?
                .insert(key, text.as_str())
                .op(op)?;
            env.commit(txn, op)
        })
    }

    /// A secret, if set. Secrets are text: stored bytes that are not UTF-8 are
    /// [`StoreError::Corrupt`].
    pub fn get_secret(&mut self, key: &str) -> Result<Option<Secret>, StoreError> {
        let op = Op::GetSecret;
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let Some(table) = open_read(&read, schema::SECRETS, op)? else {
                return Ok(None);
            };
            let Some(guard) = table.get(key).op(op)? else {
                return Ok(None);
            };
            // Every writer stores text; anything else is corruption, like undecodable JSON.
            let text =
                String::from_utf8(guard.value().to_vec()).map_err(|_| StoreError::Corrupt {
                    op,
                    table: "secrets",
                    key: key.to_owned(),
                    detail: "not UTF-8 text".to_owned(),
                })?;
            Ok(Some(Secret::new(text)))
        })
    }

    /// Stores several secrets in ONE durable write transaction, so a rotated token pair (Box
    /// refresh + access token) is never half written (invariant 5: commit before first use).
    pub fn put_secrets<K: AsRef<str>>(
        &mut self,
        secrets: &[(K, Secret)],
    ) -> Result<(), StoreError> {
        let op = Op::PutSecrets;
        for (key, _) in secrets {
            validate_key("secret key", key.as_ref())
                .map_err(|detail| StoreError::InvalidInput { op, detail })?;
        }
        self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            {
                let mut table = txn.open_table(schema::SECRETS).op(op)?;
                for (key, secret) in secrets {
                    table
                        .insert(key.as_ref(), secret.expose().as_bytes())
                        .op(op)?;
                }
            }
            env.commit(txn, op)
        })
    }

    /// Deletes a secret; returns whether it existed.
    pub fn delete_secret(&mut self, key: &str) -> Result<bool, StoreError> {
        let op = Op::DeleteSecret;
        self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let existed = txn
                .open_table(schema::SECRETS)
                .op(op)?
                .remove(key)
                .op(op)?
                .is_some();
            env.commit(txn, op)?;
            Ok(existed)
        })
    }

    /// Adds `delta` (saturating) to a counter and returns the new value.
    pub fn add_counter(&mut self, name: &str, delta: u64) -> Result<u64, StoreError> {
        let op = Op::AddCounter;
        validate_key("counter name", name)
            .map_err(|detail| StoreError::InvalidInput { op, detail })?;
        self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            let value = {
                let mut table = txn.open_table(schema::COUNTERS).op(op)?;
                add_counter_in(&mut table, name, delta, op)?
            };
            env.commit(txn, op)?;
            Ok(value)
        })
    }

    /// A counter's value (0 if never added to).
    pub fn counter(&mut self, name: &str) -> Result<u64, StoreError> {
        let op = Op::GetCounter;
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let Some(table) = open_read(&read, schema::COUNTERS, op)? else {
                return Ok(0);
            };
            Ok(table.get(name).op(op)?.map_or(0, |g| g.value()))
        })
    }

    /// Makes every grouped (non-durable) commit durable now, with one durable commit.
    /// Returns whether there was anything to flush. The storage thread calls it when
    /// [`StoreCore::flush_due_in`] says so; a sync caller calls it when it needs durability.
    pub fn flush(&mut self) -> Result<bool, StoreError> {
        if self.env.group.pending == 0 || self.db.is_none() {
            return Ok(false);
        }
        let op = Op::Flush;
        self.run(|env, db| {
            let txn = env.begin_write(db, op)?;
            env.commit(txn, op)?;
            Ok(true)
        })
    }

    /// With grouped commits pending, how long until they are due to be made durable (zero:
    /// now); `None` when everything committed is durable.
    pub fn flush_due_in(&self) -> Option<Duration> {
        if self.env.group.pending == 0 {
            return None;
        }
        let interval = self.env.options.commit_interval;
        Some(
            self.env
                .group
                .last_durable
                .map_or(Duration::ZERO, |at| interval.saturating_sub(at.elapsed())),
        )
    }

    /// Whether answered commits were rolled back and grouped writes are refused.
    pub fn is_fenced(&self) -> bool {
        self.env.group.fenced
    }

    /// Accepts page commits and acks again after a rollback: call only once every caller
    /// that held a position has re-read it from the store (the pipeline restarts).
    pub fn lift_fence(&mut self) {
        if self.env.group.fenced {
            info!("Accepting page commits and acks again after the rollback.");
        }
        self.env.group.fenced = false;
    }

    /// Commit and I/O counters since this store was opened.
    pub fn io_stats(&self) -> IoStats {
        IoStats {
            commits: self.env.group.commits,
            durable_commits: self.env.group.durable_commits,
            fsyncs: self.env.io.fsyncs.load(Ordering::Relaxed),
            bytes_written: self.env.io.bytes_written.load(Ordering::Relaxed),
            rollbacks: self.env.group.rollbacks,
            compactions: self.compactions,
            written_since_compaction: self.churn.written,
            deleted_since_compaction: self.churn.deleted,
        }
    }

    /// Compacts the file (quiesced: the caller is the only user of this core, no transaction
    /// is live). Runs rounds until redb reports nothing more to do.
    pub fn compact(&mut self) -> Result<CompactReport, StoreError> {
        let op = Op::Compact;
        if self.closed {
            return Err(StoreError::Closed);
        }
        self.ensure_open()?;
        self.flush()?;
        let before_bytes = self.env.file_bytes(op)?;
        let mut rounds = 0;
        self.set_readers(None);
        let result = loop {
            let Some(db) = self.db.as_mut().and_then(Arc::get_mut) else {
                break Err(StoreError::Closed);
            };
            match db.compact() {
                Ok(true) if rounds < MAX_COMPACT_ROUNDS => rounds += 1,
                Ok(_) => break Ok(()),
                Err(e) => {
                    break Err(StoreError::Storage {
                        op,
                        source: e.into(),
                    });
                }
            }
        };
        self.set_readers(self.db.clone());
        if let Err(e) = result {
            self.after_error(&e);
            return Err(e);
        }
        let after_bytes = self.env.file_bytes(op)?;
        self.compactions += 1;
        self.churn = Churn::default();
        info!(before_bytes, after_bytes, rounds, "Compacted the database.");
        Ok(CompactReport {
            before_bytes,
            after_bytes,
            rounds,
        })
    }

    /// Closes the database after making any grouped (non-durable) commits durable. Later calls
    /// return [`StoreError::Closed`].
    pub fn close(&mut self) -> Result<(), StoreError> {
        // A clean stop leaves nothing non-durable behind (redb would also promote it).
        if self.db.is_some() && !self.closed {
            if let Err(e) = self.flush() {
                warn!(error = %e, "Making the last commits durable at close failed.");
            }
        }
        self.closed = true;
        self.set_readers(None);
        match self.db.take().map(Arc::try_unwrap) {
            Some(Ok(db)) => db.close().op(Op::Close),
            // Only readers' guards ever share it, and they are gone once the slot is empty.
            Some(Err(_)) | None => Ok(()),
        }
    }

    /// Whether [`StoreCore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the database handle is currently open (false between a storage error and a
    /// successful reopen).
    pub fn is_open(&self) -> bool {
        self.db.is_some()
    }

    /// Times the database was reopened after a storage error.
    pub fn reopens(&self) -> u64 {
        self.env.reopens
    }

    /// Reopens the database if a previous storage error dropped it. Called before every
    /// operation; the storage thread also calls it right after a failed request.
    pub fn ensure_open(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        if self.db.is_none() {
            let db = self.env.open_database(Op::Reopen)?;
            self.env.reopens += 1;
            warn!(
                reopens = self.env.reopens,
                "Reopened the database after a storage error."
            );
            let db = Arc::new(db);
            self.set_readers(Some(db.clone()));
            self.db = Some(db);
        }
        Ok(())
    }

    fn set_readers(&self, db: Option<Arc<Database>>) {
        match self.readers.write() {
            Ok(mut slot) => *slot = db,
            Err(poisoned) => *poisoned.into_inner() = db,
        }
    }

    /// A reader of stored users for other threads (the renderers' directory): point reads that
    /// never wait for the store's thread, bounded by the page cache, and `None` while the
    /// database is being reopened.
    pub fn user_reader(&self) -> UserReader {
        UserReader {
            slot: self.readers.clone(),
        }
    }

    /// Drops the database after an error that leaves the handle unusable, and tries to reopen.
    /// Also used by the storage thread after a caught panic.
    pub(crate) fn after_error(&mut self, error: &StoreError) {
        if !error.needs_reopen() || self.closed {
            return;
        }
        warn!(%error, "Dropping the database after a storage error.");
        self.set_readers(None);
        self.db = None;
        // Whatever was not durable is gone with the handle; the reopen tells whether answered
        // commits were among it (`commit_count`).
        self.env.group.pending = 0;
        if let Err(reopen) = self.ensure_open() {
            warn!(error = %reopen, "Reopen failed; will retry before the next request.");
        }
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Env, &Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.ensure_open()?;
        let result = match &self.db {
            Some(db) => f(&mut self.env, db),
            None => Err(StoreError::Closed),
        };
        if let Err(e) = &result {
            self.after_error(e);
        }
        result
    }

    fn get_str(
        &mut self,
        op: Op,
        def: TableDefinition<&str, &str>,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.run(|_, db| {
            let read = db.begin_read().op(op)?;
            let Some(table) = open_read(&read, def, op)? else {
                return Ok(None);
            };
            Ok(table.get(key).op(op)?.map(|g| g.value().to_owned()))
        })
    }
}

/// Point reads of the `users` table from any thread (see [`StoreCore::user_reader`]).
///
/// A read transaction is MVCC in redb: it never waits for the store's write transaction, and
/// a lookup served from the page cache takes microseconds, so renderers may call it inline; a
/// lookup is one B-tree descent (a few pages) when it misses the cache.
#[derive(Clone)]
pub struct UserReader {
    slot: Arc<RwLock<Option<Arc<Database>>>>,
}

impl std::fmt::Debug for UserReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserReader").finish_non_exhaustive()
    }
}

impl UserReader {
    /// The user's JSON as stored by the users sync; `None` if unknown or the store is closed
    /// or being reopened (the event then renders without directory facts).
    pub fn get(&self, id: &str) -> Option<String> {
        let slot = self.slot.read().ok()?;
        let db = slot.as_ref()?;
        let read = db.begin_read().ok()?;
        let table = read.open_table(schema::USERS).ok()?;
        let user = table.get(id).ok()??.value().to_owned();
        Some(user)
    }

    /// How many users are stored (0 when unknown).
    pub fn count(&self) -> u64 {
        let Ok(slot) = self.slot.read() else { return 0 };
        let Some(db) = slot.as_ref() else { return 0 };
        db.begin_read()
            .ok()
            .and_then(|read| read.open_table(schema::USERS).ok())
            .and_then(|table| table.len().ok())
            .unwrap_or(0)
    }
}

impl Env {
    /// Opens the database with the configured cache and repair logging, then checks the schema.
    fn open_database(&mut self, op: Op) -> Result<Database, StoreError> {
        let mut builder = Builder::new();
        builder.set_cache_size(self.options.cache_bytes);
        let repaired = self.repaired.clone();
        builder.set_repair_callback(move |session| {
            if !repaired.swap(true, Ordering::Relaxed) {
                warn!("The database was not closed cleanly; repairing it.");
            }
            debug!(progress = session.progress(), "Database repair progress.");
        });
        let db = match &self.location {
            Location::File(path) => {
                // Refuse a newer schema before opening read-write, so a downgrade leaves the
                // file byte-for-byte untouched (a read-write open rewrites header bytes).
                if let Ok(read_only) = Builder::new()
                    .set_cache_size(1024 * 1024)
                    .open_read_only(path)
                {
                    let found = read_only
                        .begin_read()
                        .ok()
                        .and_then(|read| read.open_table(schema::META).ok())
                        .and_then(|meta| meta.get(schema::META_SCHEMA_VERSION).ok().flatten())
                        .map(|g| g.value());
                    drop(read_only);
                    if let Some(found) = found.filter(|&v| v > u64::from(schema::SCHEMA_VERSION)) {
                        return Err(StoreError::SchemaTooNew {
                            found: u32::try_from(found).unwrap_or(u32::MAX),
                            supported: schema::SCHEMA_VERSION,
                        });
                    }
                }
                let file = create_private(path, op)?;
                let backend = redb::backends::FileBackend::new(file).op(op)?;
                builder
                    .create_with_backend(SharedBackend(Arc::new(backend), self.io.clone()))
                    .op(op)?
            }
            Location::Backend(factory) => {
                let backend = factory();
                self.backend = Some(backend.clone());
                builder
                    .create_with_backend(SharedBackend(backend, self.io.clone()))
                    .op(op)?
            }
        };
        self.check_schema(&db, op)?;
        let stored = {
            let read = db.begin_read().op(op)?;
            match open_read(&read, schema::META, op)? {
                Some(meta) => meta
                    .get(schema::META_COMMIT_COUNT)
                    .op(op)?
                    .map_or(0, |g| g.value()),
                None => 0,
            }
        };
        if stored < self.group.commit_count {
            // Commits already answered (non-durable, inside a group) did not survive: their
            // callers hold positions the store no longer has. Fence the grouped writes until
            // they have re-read them (see `StoreError::RolledBack`).
            self.group.rollbacks += 1;
            self.group.fenced = true;
            warn!(
                lost_commits = self.group.commit_count - stored,
                "A storage error rolled back answered commits; refusing page commits and acks until the pipeline restarts from the store."
            );
        }
        self.group.commit_count = stored;
        self.group.pending = 0;
        self.group.last_durable = None;
        if self.repaired.load(Ordering::Relaxed) {
            info!("Database repaired and opened.");
        }
        Ok(db)
    }

    /// Stamps a new file, refuses a newer one, migrates an older one (none exist yet).
    fn check_schema(&mut self, db: &Database, op: Op) -> Result<(), StoreError> {
        let read = db.begin_read().op(op)?;
        let version = match open_read(&read, schema::META, op)? {
            Some(meta) => meta
                .get(schema::META_SCHEMA_VERSION)
                .op(op)?
                .map(|g| g.value()),
            None => None,
        };
        let table_count = read.list_tables().op(op)?.count();
        drop(read);
        match version {
            Some(found) => {
                let found = u32::try_from(found).map_err(|_| StoreError::BadMeta {
                    detail: format!("schema version {found} is out of range"),
                })?;
                if found > schema::SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        supported: schema::SCHEMA_VERSION,
                    });
                }
                if found < 1 {
                    return Err(StoreError::BadMeta {
                        detail: format!("schema version {found} never existed"),
                    });
                }
                if found < 2 {
                    self.migrate_1_to_2(db, op)?;
                }
                Ok(())
            }
            None if table_count > 0 => Err(StoreError::BadMeta {
                detail: format!("{table_count} tables but no schema version: not a boxidr store"),
            }),
            None => {
                let txn = self.begin_write(db, op)?;
                {
                    let mut meta = txn.open_table(schema::META).op(op)?;
                    meta.insert(
                        schema::META_SCHEMA_VERSION,
                        u64::from(schema::SCHEMA_VERSION),
                    )
                    .op(op)?;
                    meta.insert(schema::META_NEXT_SEQ, 1).op(op)?;
                    txn.open_table(schema::QUEUE).op(op)?;
                    txn.open_table(schema::CURSORS).op(op)?;
                    txn.open_table(schema::SEEN_AT).op(op)?;
                    txn.open_table(schema::SINK_CURSORS).op(op)?;
                    txn.open_table(schema::SINKS_ENABLED).op(op)?;
                    txn.open_table(schema::USERS).op(op)?;
                    txn.open_table(schema::USERS_SYNC).op(op)?;
                    txn.open_table(schema::SETTINGS).op(op)?;
                    txn.open_table(schema::SECRETS).op(op)?;
                    txn.open_table(schema::COUNTERS).op(op)?;
                    txn.open_table(schema::DEAD_LETTERS).op(op)?;
                }
                self.commit(txn, op)?;
                info!(version = schema::SCHEMA_VERSION, "Created a new store.");
                Ok(())
            }
        }
    }

    /// Schema 1 → 2, in one durable write transaction: creates `seen_at`. Schema 1's `seen`
    /// stays and is consulted until expiry has emptied it, so an event seen before the upgrade
    /// is still a duplicate after it.
    fn migrate_1_to_2(&mut self, db: &Database, op: Op) -> Result<(), StoreError> {
        let txn = self.begin_write(db, op)?;
        {
            let mut meta = txn.open_table(schema::META).op(op)?;
            txn.open_table(schema::SEEN_AT).op(op)?;
            meta.insert(schema::META_SCHEMA_VERSION, 2).op(op)?;
        }
        self.commit(txn, op)?;
        info!(from = 1, to = 2, "Migrated the store's schema.");
        Ok(())
    }

    /// A write transaction with the store's durability.
    ///
    /// Group commit ([`StoreOptions::commit_interval`]): a page commit, ack, users write,
    /// expiry or counter that comes less than the interval after the last durable commit
    /// commits with `Durability::None` (no fsync); anything else, and everything once the
    /// interval has passed, commits with `Durability::Immediate`, which makes the earlier
    /// non-durable commits durable with it. 2PC and quick-repair as configured. After a
    /// rollback of answered commits, the grouped writes are refused until the fence is lifted.
    fn begin_write(&self, db: &Database, op: Op) -> Result<Txn, StoreError> {
        let grouped = is_grouped(op);
        if grouped && self.group.fenced {
            return Err(StoreError::RolledBack { op });
        }
        let interval = self.options.commit_interval;
        let durable = !grouped
            || interval.is_zero()
            || self
                .group
                .last_durable
                .is_none_or(|at| at.elapsed() >= interval);
        let mut txn = db.begin_write().op(op)?;
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability)
            .map_err(|e| StoreError::Storage {
                op,
                source: e.into(),
            })?;
        txn.set_two_phase_commit(self.options.two_phase_commit);
        txn.set_quick_repair(self.options.quick_repair);
        Ok(Txn { txn, durable })
    }

    /// Commits `txn`, stamping the store's commit count into `meta` (how a reopen tells that
    /// answered commits were rolled back), and keeps the group-commit bookkeeping.
    fn commit(&mut self, txn: Txn, op: Op) -> Result<(), StoreError> {
        let count = self.group.commit_count.saturating_add(1);
        txn.txn
            .open_table(schema::META)
            .op(op)?
            .insert(schema::META_COMMIT_COUNT, count)
            .op(op)?;
        txn.txn.commit().op(op)?;
        self.group.commit_count = count;
        self.group.commits += 1;
        if txn.durable {
            self.group.durable_commits += 1;
            self.group.pending = 0;
            self.group.last_durable = Some(Instant::now());
        } else {
            self.group.pending += 1;
        }
        Ok(())
    }

    /// The database size in bytes: file metadata, or the backend's length.
    fn file_bytes(&self, op: Op) -> Result<u64, StoreError> {
        match (&self.location, &self.backend) {
            (Location::Backend(_), Some(backend)) => {
                backend.len().map_err(|source| StoreError::Io {
                    op,
                    path: self.options.path.clone(),
                    source,
                })
            }
            (Location::File(path), _) => {
                std::fs::metadata(path)
                    .map(|m| m.len())
                    .map_err(|source| StoreError::Io {
                        op,
                        path: path.clone(),
                        source,
                    })
            }
            (Location::Backend(_), None) => Ok(0),
        }
    }
}

/// Opens the database file, creating it with mode 0600 if absent, and tightens a looser mode.
fn create_private(path: &std::path::Path, op: Op) -> Result<std::fs::File, StoreError> {
    let io = |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            // `mode()` applies only at creation and is masked by the umask; enforce it.
            if mode & 0o077 != 0 {
                warn!(path = %path.display(), mode = format!("{mode:o}"), "Database file was readable by others; setting mode 0600.");
            }
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path).map_err(io)
    }
}

/// Opens a table in a read transaction; a table that does not exist yet reads as empty.
fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &ReadTransaction,
    def: TableDefinition<K, V>,
    op: Op,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
    match read.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(StoreError::Storage {
            op,
            source: e.into(),
        }),
    }
}

fn next_seq(meta: &impl ReadableTable<&'static str, u64>, op: Op) -> Result<u64, StoreError> {
    meta.get(schema::META_NEXT_SEQ)
        .op(op)?
        .map(|g| g.value())
        .filter(|&seq| seq >= 1)
        .ok_or_else(|| StoreError::BadMeta {
            detail: "next_seq is missing".into(),
        })
}

fn decode(op: Op, seq: u64, bytes: &[u8]) -> Result<QueuedRecord, StoreError> {
    decode_record(seq, bytes).map_err(|detail| StoreError::Corrupt {
        op,
        table: "queue",
        key: seq.to_string(),
        detail,
    })
}

fn decode_cursor(op: Op, key: &str, bytes: &[u8]) -> Result<CursorState, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        op,
        table: "cursors",
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

fn add_counter_in(
    table: &mut redb::Table<&str, u64>,
    name: &str,
    delta: u64,
    op: Op,
) -> Result<u64, StoreError> {
    let value = table
        .get(name)
        .op(op)?
        .map_or(0, |g| g.value())
        .saturating_add(delta);
    table.insert(name, value).op(op)?;
    Ok(value)
}

/// The body of `commit_page`, inside its write transaction.
fn commit_page_in(
    txn: &WriteTransaction,
    page: &PageCommit,
    op: Op,
) -> Result<PageOutcome, StoreError> {
    let mut meta = txn.open_table(schema::META).op(op)?;
    let mut queue = txn.open_table(schema::QUEUE).op(op)?;
    let mut seen_at = txn.open_table(schema::SEEN_AT).op(op)?;
    // Schema 1's table, consulted while a migrated file still has entries there.
    let legacy = txn.open_table(schema::SEEN).op(op)?;
    let legacy = (!legacy.is_empty().op(op)?).then_some(legacy);
    let mut cursors = txn.open_table(schema::CURSORS).op(op)?;
    let mut counters = txn.open_table(schema::COUNTERS).op(op)?;

    let mut seq = next_seq(&meta, op)?;
    let stream = page.cursor.stream_type();
    let at = page.collected_at_ms;
    let mut in_page = HashSet::new();
    let (mut appended, mut duplicates) = (0u64, 0u64);
    let (mut first_seq, mut last_seq) = (None, None);
    let mut appended_by_type = std::collections::BTreeMap::new();
    for event in &page.events {
        let id = event.id().as_str();
        let key = (schema::created_ms(event.created_at()), id);
        let known = || -> Result<bool, StoreError> {
            Ok(seen_at.get(key).op(op)?.is_some()
                || match &legacy {
                    Some(legacy) => legacy.get(id).op(op)?.is_some(),
                    None => false,
                })
        };
        if !in_page.insert(id) || known()? {
            duplicates += 1;
            continue;
        }
        seen_at.insert(key, at).op(op)?;
        let record = QueuedRecord {
            seq,
            event_id: event.id().clone(),
            event_type: event.event_type().map(str::to_owned),
            stream,
            collected_at_ms: at,
            event_json: event.to_json(),
        };
        let bytes = encode_record(&record).map_err(|e| StoreError::InvalidInput {
            op,
            detail: format!("event {id} cannot be encoded: {e}"),
        })?;
        queue.insert(seq, bytes.as_slice()).op(op)?;
        first_seq.get_or_insert(seq);
        last_seq = Some(seq);
        seq += 1;
        appended += 1;
        if let Some(event_type) = event.event_type() {
            *appended_by_type.entry(event_type.to_owned()).or_insert(0) += 1;
        }
    }
    meta.insert(schema::META_NEXT_SEQ, seq).op(op)?;

    let key = page.cursor.to_key();
    let previous = cursors
        .get(key.as_str())
        .op(op)?
        .map(|v| decode_cursor(op, &key, v.value()))
        .transpose()?;
    let usable = page.next_position.as_ref().filter(|p| !p.is_reset());
    let cursor = match (&page.next_position, usable) {
        (_, Some(_)) => CursorUpdate::Stored,
        (None, None) => CursorUpdate::KeptNoPosition,
        (Some(_), None) => CursorUpdate::KeptReset,
    };
    let previous_window = previous.as_ref().and_then(|p| p.window.clone());
    let new_window = page.window.is_some() && page.window != previous_window;
    // Write when the position moves or a sweep enters a new window; otherwise keep the row.
    if usable.is_some() || new_window {
        let previous_position = previous.as_ref().and_then(|p| p.position.clone());
        let position = match usable {
            Some(position) => Some(position.clone()),
            None if new_window => None,
            None => previous_position,
        };
        let last_created_at = match (
            page.last_created_at.clone(),
            previous.and_then(|p| p.last_created_at),
        ) {
            (Some(new), Some(old)) => Some(new.max(old)),
            (new, old) => new.or(old),
        };
        let state = CursorState {
            position,
            updated_at_ms: at,
            last_created_at,
            window: page.window.clone(),
        };
        let bytes = serde_json::to_vec(&state).map_err(|e| StoreError::InvalidInput {
            op,
            detail: format!("cursor cannot be encoded: {e}"),
        })?;
        cursors.insert(key.as_str(), bytes.as_slice()).op(op)?;
    }
    if appended > 0 {
        add_counter_in(&mut counters, schema::COUNTER_APPENDED, appended, op)?;
    }
    if duplicates > 0 {
        add_counter_in(&mut counters, schema::COUNTER_DUPLICATES, duplicates, op)?;
    }
    Ok(PageOutcome {
        appended,
        duplicates,
        first_seq,
        last_seq,
        cursor,
        appended_by_type,
    })
}

/// Copies the queue records of `passed` into `dead_letters` (inside the ack's transaction),
/// refusing the whole ack at the bound.
fn keep_dead_letters(
    txn: &WriteTransaction,
    meta: &mut redb::Table<&str, u64>,
    sink: SinkId,
    passed: &[&Rejection],
    now_ms: u64,
    op: Op,
) -> Result<(), StoreError> {
    let queue = txn.open_table(schema::QUEUE).op(op)?;
    let mut letters = txn.open_table(schema::DEAD_LETTERS).op(op)?;
    let mut bytes = meta
        .get(schema::META_DEAD_LETTER_BYTES)
        .op(op)?
        .map_or(0, |g| g.value());
    let mut records = letters.len().op(op)?;
    for rejection in passed {
        let Some(record) = queue.get(rejection.seq).op(op)? else {
            // Only possible for a sink that is not enabled: the enabled ones delivered it.
            warn!(seq = rejection.seq, %sink, "A refused record is no longer queued; the enabled sinks delivered it.");
            continue;
        };
        let value =
            schema::encode_dead_letter(&rejection.reason, now_ms, record.value()).map_err(|e| {
                StoreError::InvalidInput {
                    op,
                    detail: format!("dead letter {} cannot be encoded: {e}", rejection.seq),
                }
            })?;
        let size = value.len() as u64;
        let key = (rejection.seq, sink.as_str());
        let previous = letters.get(key).op(op)?.map(|g| g.value().len() as u64);
        if previous.is_none()
            && (records >= DEAD_LETTER_MAX_RECORDS
                || bytes.saturating_add(size) > DEAD_LETTER_MAX_BYTES)
        {
            return Err(StoreError::DeadLettersFull {
                sink,
                records,
                bytes,
            });
        }
        letters.insert(key, value.as_slice()).op(op)?;
        bytes = bytes
            .saturating_add(size)
            .saturating_sub(previous.unwrap_or(0));
        records += u64::from(previous.is_none());
        warn!(seq = rejection.seq, %sink, reason = %rejection.reason, "Kept a refused record as a dead letter.");
    }
    meta.insert(schema::META_DEAD_LETTER_BYTES, bytes).op(op)?;
    Ok(())
}

/// The enabled sinks as seen by a read transaction.
fn enabled_sinks(read: &ReadTransaction, op: Op) -> Result<BTreeSet<SinkId>, StoreError> {
    let mut out = BTreeSet::new();
    if let Some(table) = open_read(read, schema::SINKS_ENABLED, op)? {
        for entry in table.iter().op(op)? {
            let (key, _) = entry.op(op)?;
            if let Some(sink) = SinkId::from_key(key.value()) {
                out.insert(sink);
            }
        }
    }
    Ok(out)
}

/// Deletes the queue prefix every enabled sink has passed; nothing if no sink is enabled.
fn purge_delivered(txn: &WriteTransaction, op: Op) -> Result<u64, StoreError> {
    let enabled = txn.open_table(schema::SINKS_ENABLED).op(op)?;
    let cursors = txn.open_table(schema::SINK_CURSORS).op(op)?;
    let mut floor: Option<u64> = None;
    for entry in enabled.iter().op(op)? {
        let (key, _) = entry.op(op)?;
        if SinkId::from_key(key.value()).is_none() {
            continue;
        }
        let cursor = cursors.get(key.value()).op(op)?.map_or(0, |g| g.value());
        floor = Some(floor.map_or(cursor, |f| f.min(cursor)));
    }
    let Some(floor) = floor.filter(|&f| f > 0) else {
        return Ok(0);
    };
    let mut queue = txn.open_table(schema::QUEUE).op(op)?;
    let mut deleted = 0u64;
    queue
        .retain_in(..=floor, |_, _| {
            deleted += 1;
            false
        })
        .op(op)?;
    Ok(deleted)
}
