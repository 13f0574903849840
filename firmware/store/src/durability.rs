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
//! Measured with `examples/commit_bench.rs` (see the crate README section in lib.rs docs for
//! the figures): FIGURES_PLACEHOLDER

/// Default for [`crate::StoreOptions::two_phase_commit`].
pub const DEFAULT_TWO_PHASE_COMMIT: bool = true;
/// Default for [`crate::StoreOptions::quick_repair`].
pub const DEFAULT_QUICK_REPAIR: bool = true;
