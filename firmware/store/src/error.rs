//! Errors of the store, with the operation that failed and a retry classification.

use std::fmt;
use std::path::PathBuf;

use crate::types::SinkId;

/// The store operation an error came from (context for logs and the status page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Open,
    Reopen,
    CommitPage,
    ReadBatch,
    Ack,
    SetEnabledSinks,
    Stats,
    Cursor,
    ExpireSeen,
    PutUsers,
    RetainUsers,
    GetUser,
    ListUsers,
    GetSetting,
    SetSetting,
    GetSecret,
    PutSecrets,
    DeleteSecret,
    AddCounter,
    GetCounter,
    ReadDeadLetters,
    RemoveDeadLetters,
    Compact,
    Flush,
    Close,
}

impl Op {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Reopen => "reopen",
            Self::CommitPage => "commit_page",
            Self::ReadBatch => "read_batch",
            Self::Ack => "ack",
            Self::SetEnabledSinks => "set_enabled_sinks",
            Self::Stats => "stats",
            Self::Cursor => "cursor",
            Self::ExpireSeen => "expire_seen",
            Self::PutUsers => "put_users",
            Self::RetainUsers => "retain_users",
            Self::GetUser => "get_user",
            Self::ListUsers => "list_users",
            Self::GetSetting => "get_setting",
            Self::SetSetting => "set_setting",
            Self::GetSecret => "get_secret",
            Self::PutSecrets => "put_secrets",
            Self::DeleteSecret => "delete_secret",
            Self::AddCounter => "add_counter",
            Self::GetCounter => "get_counter",
            Self::ReadDeadLetters => "read_dead_letters",
            Self::RemoveDeadLetters => "remove_dead_letters",
            Self::Compact => "compact",
            Self::Flush => "flush",
            Self::Close => "close",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a store operation failed. Nothing was committed unless the variant says otherwise.
///
/// [`StoreError::is_retryable`] separates transient failures (retry the same call later, from the
/// last committed state) from fatal ones (operator action or a bug: restart will not help).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file was written by newer firmware. No data was written to it (and a cleanly closed
    /// file is not modified at all: the version is read through a read-only open first).
    #[error(
        "database schema version {found} is newer than this firmware supports ({supported}); \
         nothing was written to it: install firmware that knows version {found}, or restore a backup"
    )]
    SchemaTooNew { found: u32, supported: u32 },

    /// The store's own bookkeeping (`meta` table) is missing or inconsistent.
    #[error("database metadata is invalid: {detail}")]
    BadMeta { detail: String },

    /// Backpressure: the database file is at or above its quota, nothing was written. The poller
    /// must not advance its cursor (Box keeps the events). If `queue_records` is small the space is
    /// free pages inside the file: [`crate::StoreCore::compact`] gives it back.
    #[error(
        "queue full: database file is {file_bytes} bytes, quota {quota_bytes} bytes \
         ({queue_records} records queued); nothing was written"
    )]
    QueueFull {
        file_bytes: u64,
        quota_bytes: u64,
        queue_records: u64,
    },

    /// redb failed. For I/O-class failures the database has been dropped and is reopened (which
    /// repairs it) before the next request; the failed transaction may or may not have committed.
    #[error("{op}: storage error: {source}")]
    Storage {
        op: Op,
        #[source]
        source: redb::Error,
    },

    /// A file-system call around the database failed (create, permissions, size).
    #[error("{op}: {path}: {source}", path = .path.display())]
    Io {
        op: Op,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A stored value cannot be decoded (corruption, or written by an incompatible version).
    #[error("{op}: {table} entry {key:?} is unreadable: {detail}")]
    Corrupt {
        op: Op,
        table: &'static str,
        key: String,
        detail: String,
    },

    /// The caller passed something the store refuses (a bug in the caller).
    #[error("{op}: invalid input: {detail}")]
    InvalidInput { op: Op, detail: String },

    /// An ack for a sequence that was never assigned (a bug in the caller; acking it would skip
    /// future records).
    #[error("ack for {sink} up to seq {up_to} is beyond the newest assigned seq {newest}")]
    AckBeyondNewest {
        sink: SinkId,
        up_to: u64,
        newest: u64,
    },

    /// The dead letters are at their bound ([`crate::DEAD_LETTER_MAX_RECORDS`],
    /// [`crate::DEAD_LETTER_MAX_BYTES`]): the ack that would keep one more is refused and
    /// nothing was written. The sink holds at that record (nothing is dropped) until an
    /// administrator downloads and removes dead letters. Retryable.
    #[error(
        "the dead letters are full ({records} records, {bytes} bytes): {sink} holds until they \
         are downloaded and removed on the Maintenance page"
    )]
    DeadLettersFull {
        sink: SinkId,
        records: u64,
        bytes: u64,
    },

    /// The request panicked inside the storage thread; the database is reopened before the next one.
    #[error("{op}: the storage thread panicked serving this request")]
    Panicked { op: Op },

    /// Group commit: a storage error rolled back commits that had already been answered (they
    /// were not durable yet). The callers' in-memory positions are ahead of the store, so page
    /// commits and acks are refused until the pipeline has re-read its cursors and called
    /// [`crate::Store::lift_fence`]. Retryable: nothing is lost, Box still has the events.
    #[error(
        "{op}: a storage error rolled back recent commits; refusing writes until the \
         pipeline re-reads its cursors from the store"
    )]
    RolledBack { op: Op },

    /// The storage thread has stopped (closed, or all handles dropped).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Whether the same call may succeed later without operator action: I/O-class storage errors
    /// (after which the database is reopened) and [`StoreError::QueueFull`] (after the sinks drain).
    /// Corruption, a too-new schema, bad input, a panic and a closed store are fatal.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::QueueFull { .. }
            | Self::Io { .. }
            | Self::RolledBack { .. }
            | Self::DeadLettersFull { .. } => true,
            Self::Storage { source, .. } => is_transient(source),
            Self::SchemaTooNew { .. }
            | Self::BadMeta { .. }
            | Self::Corrupt { .. }
            | Self::InvalidInput { .. }
            | Self::AckBeyondNewest { .. }
            | Self::Panicked { .. }
            | Self::Closed => false,
        }
    }

    /// Whether commits were rolled back under the caller (see [`StoreError::RolledBack`]).
    pub fn is_rolled_back(&self) -> bool {
        matches!(self, Self::RolledBack { .. })
    }

    /// Whether this is backpressure (queue at quota) rather than a failure.
    pub fn is_queue_full(&self) -> bool {
        matches!(self, Self::QueueFull { .. })
    }

    /// Whether the `Database` handle must be dropped and reopened before it is used again
    /// (redb 4.2+ refuses writes after a failed commit until reopened).
    pub(crate) fn needs_reopen(&self) -> bool {
        match self {
            Self::Storage { source, .. } => !matches!(
                source,
                redb::Error::TableTypeMismatch { .. }
                    | redb::Error::TableIsMultimap(_)
                    | redb::Error::TableIsNotMultimap(_)
                    | redb::Error::TypeDefinitionChanged { .. }
                    | redb::Error::TableDoesNotExist(_)
                    | redb::Error::TableExists(_)
                    | redb::Error::ValueTooLarge(_)
                    | redb::Error::UpgradeRequired(_)
                    | redb::Error::DatabaseAlreadyOpen
                    | redb::Error::LockProtocolMismatch
            ),
            Self::Panicked { .. } => true,
            _ => false,
        }
    }
}

/// I/O-class redb failures: the medium or the handle, not the data or the program.
fn is_transient(error: &redb::Error) -> bool {
    matches!(
        error,
        redb::Error::Io(_)
            | redb::Error::Backend(_)
            | redb::Error::PreviousIo
            | redb::Error::DatabaseClosed
            | redb::Error::TransactionPoisoned
            | redb::Error::LockPoisoned(_)
            | redb::Error::TransactionInProgress
            | redb::Error::WouldBlock
    )
}

/// Shorthand: turn any redb error into a [`StoreError::Storage`] for `op`.
pub(crate) trait StorageResultExt<T> {
    fn op(self, op: Op) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> StorageResultExt<T> for Result<T, E> {
    fn op(self, op: Op) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Storage {
            op,
            source: e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// I/O failures and a full queue are retryable; corruption and a newer schema are not.
    #[test]
    fn retry_classification() {
        let io = StoreError::Storage {
            op: Op::CommitPage,
            source: redb::Error::Io(std::io::Error::other("EIO")),
        };
        assert!(io.is_retryable());
        assert!(io.needs_reopen());
        let corrupt = StoreError::Storage {
            op: Op::CommitPage,
            source: redb::Error::Corrupted("bad".into()),
        };
        assert!(!corrupt.is_retryable());
        let full = StoreError::QueueFull {
            file_bytes: 2,
            quota_bytes: 1,
            queue_records: 0,
        };
        assert!(full.is_retryable() && full.is_queue_full() && !full.needs_reopen());
        assert!(
            !StoreError::SchemaTooNew {
                found: 99,
                supported: 1
            }
            .is_retryable()
        );
        assert!(!StoreError::Closed.is_retryable());
    }

    /// The schema error tells the operator what happened and what to do.
    #[test]
    fn schema_message_is_actionable() {
        let text = StoreError::SchemaTooNew {
            found: 99,
            supported: 1,
        }
        .to_string();
        assert!(
            text.contains("99") && text.contains("nothing was written"),
            "{text}"
        );
    }
}
