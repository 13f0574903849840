//! Pure fold of component facts into the appliance health, its LED look and its metrics.
//!
//! The firmware gathers a [`Facts`] snapshot from every component's status channel (Box poller
//! and auth, both sinks and the verifier, the store, the clock, the board) and calls:
//!
//! - [`assess()`] → [`Health`]: an [`Overall`] verdict, a [`ComponentHealth`] per component, the
//!   [`Problem`]s sorted by priority, and [`Derived`] numbers (lag, queue use, oldest undelivered);
//! - [`led_frame`] → the [`LedFrame`](boxidr_model::LedFrame) the board plays, and
//!   [`summary_frame`] for the status summary after a short button press;
//! - [`metrics()`] → `/metrics` text.
//!
//! No I/O, no clock reads: the time is a field of [`Facts`]. Everything is serde-serialisable
//! for the status page and `boxidr status --json`; no secret ever enters [`Facts`].
//!
//! # Layout
//! - [`facts`]: the input types, one per source.
//! - [`problem`]: the catalogue of [`ProblemCode`]s with their severity, level and attention
//!   code, and the priority order.
//! - [`assess`](mod@assess): thresholds and the fold.
//! - [`leds`]: `Health` → LEDs, and the LED table ([`led_table_markdown`], kept in `LEDS.md`).
//! - [`metrics`](mod@metrics): Prometheus text exposition.
//! - [`report`]: the [`StatusReport`] every reader of the status deserialises (built by the
//!   firmware, with the facts so `/metrics` is computed on request).
//! - [`scenarios`]: ready-made facts for tests, demos and the LED table.

pub mod assess;
pub mod facts;
pub mod leds;
pub mod metrics;
pub mod problem;
pub mod report;
pub mod scenarios;

pub use assess::{
    BOX_FAILING_FAILURES, BOX_STALE_AFTER_MS, CLOCK_GRACE_SECS, ComponentHealth, Components,
    Derived, Health, MAX_DETAIL_CHARS, Overall, QUEUE_FULL_PERCENT, QUEUE_NEARLY_FULL_PERCENT,
    SINK_FAILING_AFTER_MS, SINK_FAILING_ATTEMPTS, VERIFY_PENDING_GRACE_MS, assess,
};
/// The verifier's vocabulary lives in `boxidr_model` (the canary rounds in `boxidr_forward`
/// produce it); health judges it and the status report shows it.
pub use boxidr_model::{VerifierReport, VerifierState};
pub use facts::{
    AuthState, BoardFacts, BoxFacts, ClockFacts, Facts, SinkFacts, SinkState, StoreFacts,
};
pub use leds::{attention_code, led_frame, led_table_markdown, summary_frame};
pub use metrics::metrics;
pub use problem::{Component, Level, Problem, ProblemCode, Severity};
pub use report::{
    BoxReport, CollectingState, CountersReport, CursorReport, LedsReport, PendingReport,
    ProgressKind, ProgressReport, ReaderReport, ServiceState, ServiceStatus, SinkReport,
    SinkStateName, SinksReport, StatusReport, StoppedReport, StoreReport, StoreSection,
    StreamReport, SweepReport, WatchdogPart, WatchdogReport, WindowReport,
};
