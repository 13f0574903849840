//! The redb store: queue of Box events, cursors, seen ids, users, config, secrets.
//!
//! One thread owns the `redb::Database` ([`Store`] is the async handle to it, [`StoreCore`] the
//! synchronous core that thread runs). Every operation is one redb transaction; the schema is
//! documented in [`schema`], the names and types of its settings and secrets in [`settings`],
//! the commit mode in [`durability`].
//!
//! # Design constraints
//!
//! - **One page, one transaction.** A Box page's new events, their `seen` entries and the new
//!   cursor are written in ONE write transaction: after a crash the store holds either all of
//!   it or none of it, and the poller resumes from the committed cursor.
//! - **Group commit.** Writes at the event rate share one durable commit per
//!   [`StoreOptions::commit_interval`] (fsyncs per second bounded whatever the rate); a rollback
//!   of answered commits fences page commits and acks until the pipeline restarts from the
//!   store. See [`durability`].
//! - **The cursor never goes backwards by accident.** A page without a position, or with Box's
//!   legacy reset `"0"`, leaves the committed cursor as it is.
//! - **Duplicates stop at the door.** An event id already in `seen` (or earlier in the same page)
//!   is counted and skipped. `seen` entries live longer (15 days) than Box's 14-day window.
//! - **Delete only after delivery.** Each sink has its own cursor; a record is deleted, in the
//!   same transaction as the ack that allows it, only when every *enabled* sink has passed it.
//!   A disabled sink holds nothing back; a sink that is down holds records but never blocks the
//!   other sink's reads. With no sink enabled nothing is deleted.
//! - **Backpressure, never loss.** At or above the file-size quota `commit_page` writes nothing
//!   and returns [`StoreError::QueueFull`]. No code path drops queued records to make room.
//! - **A failed commit poisons the handle, not the data.** After a storage error the database is
//!   dropped and reopened (redb repairs it) before the next request; the error is retryable and
//!   the caller retries from its last committed state.
//! - **The original event is kept.** Records store Box's event JSON untouched, with a small
//!   versioned header; sinks render at send time.
//! - **redb never runs on a tokio worker.** [`Store`] forwards requests to its own thread over a
//!   bounded channel; the database page cache is sized explicitly (4 MiB default).
//! - **Nothing disappears silently.** A record a destination refuses for good is kept as a
//!   dead letter (with its reason and time) in the same transaction as the ack that passes it;
//!   the dead letters are bounded, and at the bound the sink holds instead of dropping.
//! - **Secrets are redacted.** Secrets are [`boxidr_model::Secret`]s (`Debug` prints
//!   `[redacted]`); the file is mode 0600.

mod backend;
mod core;
pub mod durability;
mod error;
mod handle;
pub mod schema;
pub mod selftest;
pub mod settings;
mod types;

pub use backend::BackendFactory;
pub use core::{StoreCore, UserReader};
pub use error::{Op, StoreError};
pub use handle::{REQUEST_QUEUE_DEPTH, Store};
pub use selftest::self_test;
pub use types::{
    AckOutcome, CompactReport, CursorKey, CursorState, CursorUpdate, DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_MAX_RECORDS, DEFAULT_CACHE_BYTES, DEFAULT_COMMIT_INTERVAL, DEFAULT_QUOTA_BYTES,
    DEFAULT_SEEN_TTL, DeadLetter, IoStats, MAX_KEY_LEN, PageCommit, PageOutcome, QueuedRecord,
    ReadLimits, RecordFilter, Rejection, SinkBatch, SinkId, SinkStats, Stats, StoreOptions,
    SweepWindow, UserEntry,
};

/// Re-exported so callers can supply a [`BackendFactory`] without naming redb themselves.
pub use redb::StorageBackend;
