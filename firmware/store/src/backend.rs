//! Where the database bytes live: the file (production) or any `redb::StorageBackend` (tests
//! that inject I/O errors or simulate power loss).

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{BackendError, StorageBackend};

/// Produces a backend over the same bytes each time the store (re)opens the database.
///
/// Reopening after a storage error calls it again, so a fault-injecting test backend decides
/// here whether the "medium" is healthy again.
pub type BackendFactory = Arc<dyn Fn() -> Arc<dyn StorageBackend> + Send + Sync>;

/// Counts what the store asks of the medium: fsyncs and bytes written (shared with the
/// [`crate::Stats`] reader, and surviving reopens).
#[derive(Debug, Default)]
pub(crate) struct IoCounters {
    pub(crate) fsyncs: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
}

/// Lets an `Arc<dyn StorageBackend>` be handed to redb while the store keeps a clone to ask the
/// size (the quota check needs `len()` for non-file backends).
/// It also counts fsyncs and bytes written into [`IoCounters`].
pub(crate) struct SharedBackend(
    pub(crate) Arc<dyn StorageBackend>,
    pub(crate) Arc<IoCounters>,
);

impl fmt::Debug for SharedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedBackend").field(&self.0).finish()
    }
}

impl StorageBackend for SharedBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.0.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.1.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        self.1.bytes_written.fetch_add(len, Ordering::Relaxed);
        self.0.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.0.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.0.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.0.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.0.query_lock_range(start, end)
    }
}
