//! The commit mode of every write transaction, and why.
//!
//! Every write transaction commits with `Durability::Immediate`: when `commit()` returns the
//! data is on the medium (as far as `fsync` can promise), which is what lets the poller advance
//! Box's cursor and the sinks forget a record.
//!
//! On top of that, two per-transaction switches (RELIABILITY.md §1.1):
//! - two-phase commit: two fsyncs per commit instead of one; the documented choice when the
//!   written data is attacker-influenced (Box payloads are), and unaffected by the 4.2.0
//!   "second crash during recovery" bug.
//! - quick-repair: saves the allocator state in each commit (implies 2PC), so the open after a
//!   crash does not walk every tree; bounds start-up time under the systemd watchdog.
//!
//! # Measurements (`examples/commit_bench.rs`, release build, 100-event pages)
//!
//! On the development VM (2 vCPU, ext4 on virtio with a write-back cache: `fdatasync` p50
//! 0.07 ms, so these figures are CPU-bound and flatter the fsync-heavy modes):
//!
//! ```text
//! mode               commits/s  events/s  p50 ms  p99 ms  ack p50 ms  reopen after abort (300k records, 272 MiB)
//! 1pc                  650-710    ~68k     1.45    1.7-2.3    0.31     175-187 ms, full repair
//! 2pc                  490-670    ~64k     1.50    1.9-2.3    0.39     185-187 ms, full repair
//! 2pc+quick_repair     580-615    ~59k     1.65    2.0-2.5    0.52     0.5-0.6 ms, no repair walk
//! ```
//!
//! Commit p50 with a 272 MiB file: 1.81 ms (1pc), 1.95 ms (2pc), 2.15 ms (2pc+quick_repair).
//!
//! # Defaults: two-phase commit ON, quick-repair ON
//!
//! - Cost: about +15% commit latency here. On an SD card a commit is dominated by device flushes
//!   (2PC: two per commit instead of one), so expect up to ~2x fewer commits/s there; at even
//!   10-20 ms per flush that is still 25-50 pages/s, i.e. 2,500-5,000 events/s, far above an
//!   enterprise's Box event rate, and commits are batched per page / per forwarded batch.
//! - Benefit, quick-repair: the reopen after kill -9 does not walk the trees. The full repair
//!   read 272 MiB (from the page cache) in ~180 ms here; on an SD card at 20-40 MB/s a store at
//!   its 1 GiB quota would need tens of seconds, which is the systemd watchdog's budget. With
//!   quick-repair it is constant time.
//! - Benefit, 2PC: the documented choice for attacker-influenced data (Box payloads), and not
//!   affected by the 4.2.0 "second crash during recovery" bug.
//! - Both modes and plain 1PC pass the crash tests in `tests/crash.rs`.
//!
//! Re-measure on the target card (RELIABILITY.md §6 scenarios 6 and 15):
//! `commit_bench /var/lib/boxidr 300 3000`.

/// Default for [`crate::StoreOptions::two_phase_commit`].
pub const DEFAULT_TWO_PHASE_COMMIT: bool = true;
/// Default for [`crate::StoreOptions::quick_repair`].
pub const DEFAULT_QUICK_REPAIR: bool = true;
