//! The commit mode of every write transaction, and why.
//!
//! # Group commit
//!
//! Flushes per second are bounded whatever the event rate: a page commit, ack, users page,
//! seen expiry or counter that comes less than [`crate::StoreOptions::commit_interval`]
//! (default 300 ms) after the last durable commit commits with `Durability::None`, without an
//! fsync; the next durable commit, at most one interval later (the storage thread's timer, or
//! the next write after the interval), makes the whole group durable with one or two fsyncs.
//! When the appliance is behind, many Box pages and forwarder acks thus share one durable
//! commit; when it is idle, every write is durable at once (the interval has long passed).
//! Settings, secrets and the enabled sinks are always durable at once (a rotated refresh token
//! must be on the medium before it is used: invariant 5).
//!
//! Invariant 1 still holds: each page and its cursor are ONE transaction, and redb's commits
//! are a linear history, so after a crash or power loss the store holds exactly the state after
//! some prefix of the answered writes, never less than the last durable commit: a page whose
//! commit was lost is lost with its cursor, and is read from Box again. What a crash can cost
//! is duplicates: records delivered in the last interval, or acks from it, are delivered again.
//!
//! In-process, a storage error that rolls back answered commits (the reopen finds a lower
//! `commit_count` than the store answered) would leave the pollers' in-memory positions ahead of
//! the store, and their next page would commit past the lost ones. So the store then *fences*:
//! page commits, acks and users writes fail with [`crate::StoreError::RolledBack`] (retryable)
//! until [`crate::Store::lift_fence`]; [`crate::Store::rollbacks`] changes, and the pipeline
//! restarts every task from the stored cursors before lifting the fence.
//!
//! `tests/crash.rs` crashes at every disk operation and loses power at every sync of a grouped
//! workload in the three modes below, and checks the prefix property and the fence.
//!
//! Measured with `commit_bench --group target/bench 5` (500-event pages of ~560 bytes, a commit
//! and an ack per page, this 2-vCPU VM, shared): "each" is one durable commit per write (before
//! group commit), "sync15ms" the file with a 15 ms sleep per fsync (an SD card).
//!
//! ```text
//! mode                     events/s  durable/s  fsyncs/s  bytes written per event byte
//! 1pc each file              19,156       76.6      79.3   2.38
//! 1pc each sync15ms           7,719       30.9      33.2   2.36
//! 2pc each file              16,090       64.4     131.4   2.38
//! 2pc each sync15ms           4,714       18.9      39.7   2.37
//! 2pc+qr each sync15ms        4,807       19.2      40.4   2.51
//! 1pc group file         28-40,000        3.6       6.6    0.68
//! 1pc group sync15ms     26-31,000        3.6       6.6    0.70
//! 2pc group file         28-34,000        3.6      10.3    0.65
//! 2pc group sync15ms     22-23,000        3.3       9.2    0.68
//! 2pc+qr group sync15ms  20-25,000        3.3       9.5    0.81
//! ```
//!
//! # Durability of each commit
//!
//! A durable commit uses `Durability::Immediate`: when `commit()` returns the data is on the
//! medium (as far as `fsync` can promise).
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
//!   (2PC: two per commit instead of one): one durable commit per page would cap a 15 ms card at
//!   ~19 commits/s (4,700 events/s, table above). With group commit the durable commits are a
//!   few a second whatever the mode, so 2PC costs about 3 fsyncs/s more than 1PC, not half the
//!   throughput.
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
