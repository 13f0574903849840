//! InsightIDR sinks: the Collector (UEF over TLS) and Log Search (HTTPS), each driven by its own
//! forwarding loop over the store's queue.
//!
//! # Layout
//!
//! - [`render`]: the [`Render`] trait. Rendering is injected (the pure `boxidr-normalize`
//!   crate implements it); this crate never looks inside a Box event.
//! - [`sink`]: the [`Sink`] trait between the loop and a transport: a batch in, the delivered
//!   prefix out, with a transient or configuration error.
//! - [`collector`]: [`CollectorSink`], newline-delimited UEF JSON over one persistent TLS
//!   connection trusting the uploaded `Rapid7CA.pem`, batches streamed back to back while
//!   earlier ones wait out their confirm window.
//! - [`logsearch`]: [`LogSearchSink`], one `POST /v1/noformat/<token>` per record, many in
//!   flight (HTTP/2 streams over a few connections when negotiated).
//! - [`forwarder`]: [`Forwarder`], the per-sink loop: read ahead of the cursor, render, submit
//!   into the sink's window, ack the delivered prefix every 100 ms, wait, back off.
//! - [`status`]: [`SinkStatus`], what each loop publishes on a `watch` channel for health.
//! - [`verify`]: [`Verifier`], Platform API key check and canary search through Log Search;
//!   the canary rounds as a sans-IO machine ([`verify::round`]) and the thin task that queues
//!   the canary records and searches for them ([`verify::task`]).
//!
//! # Design constraints
//!
//! - **Delete only after delivery** (ARCHITECTURE invariant 2). A sink's cursor moves only past
//!   the contiguous prefix of a batch its transport reported delivered: Log Search on HTTP 2xx;
//!   the Collector when the batch was written, flushed and the connection stayed up for the
//!   confirm window (TCP has no application-level acknowledgement: see [`collector`]). The store
//!   deletes a record once every enabled sink has passed it.
//! - **Duplicates bounded by the window.** After an error or a crash what was read and not
//!   acknowledged is sent again: at most [`ForwarderOptions::max_unacked`] records per sink.
//! - **A WAN costs latency, not throughput.** Reads run ahead of the cursor and the sinks keep
//!   a window on the wire, bounded by count and bytes ([`Window`]).
//! - **Sinks are independent.** Each sink has its own task, cursor, backoff and status; a sink
//!   that is down never holds back the other.
//! - **Never spin.** Failures wait a capped, jittered exponential backoff (or `Retry-After`);
//!   an empty queue waits for a wake-up or the idle poll.
//! - **Configuration errors stop, they do not loop.** An unknown token or refused credentials
//!   stop that sink with a reason; its queue is kept.
//! - **Bad input never wedges a sink** (invariant 6). A record the destination refuses for good
//!   (HTTP 413) or that would break framing is counted as rejected and passed, loudly.
//! - **Secrets stay secret** (invariant 7). The log token is a [`boxidr_model::Secret`] (redacted
//!   `Debug`) and in a URL that is never logged, printed or put into an error.

pub mod collector;
mod error;
pub mod forwarder;
pub mod logsearch;
pub mod render;
pub mod sink;
pub mod status;
pub mod verify;

/// The retry schedule, shared with the Box readers (`boxidr_model::retry`).
pub use boxidr_model::BackoffPolicy;
pub use collector::{CollectorSettings, CollectorSink, CollectorTransport};
pub use error::SetupError;
pub use forwarder::{Forwarder, ForwarderOptions};
pub use logsearch::{LogSearchSettings, LogSearchSink, TrustRoots};
pub use render::{Render, Rendered};
pub use sink::{Delivery, Sink, SinkError, Window};
pub use status::{SinkState, SinkStatus};
pub use verify::{CanaryOutcome, Verifier, VerifierSettings, VerifyError};
