//! The boundary between the forwarding loop and a transport: one batch in, how far it got out.

use std::future::Future;
use std::time::Duration;

use boxidr_store::{Rejection, SinkId};

use crate::render::Rendered;

/// A transport to InsightIDR, driven as a window: the forwarding loop ([`crate::Forwarder`])
/// hands it rendered batches in queue order ([`Sink::submit`]) while earlier ones are still on
/// the wire, and learns how far delivery got from [`Sink::progress`]. Over a WAN this is what
/// keeps throughput from being (one batch) ÷ (round trip).
pub trait Sink: Send {
    /// Which store cursor this sink advances.
    fn id(&self) -> SinkId;

    /// How much may be outstanding (submitted, not yet reported delivered) at once. The loop
    /// submits no more while either bound is reached. It may change as the sink learns about
    /// its peer (Log Search widens it once HTTP/2 is negotiated).
    fn window(&self) -> Window;

    /// Hands over the next records in queue order, `through` being the last sequence they
    /// cover (records the reader passed over included): once every record of `batch` is
    /// delivered, everything up to `through` is. Starts sending; never waits.
    fn submit(&mut self, batch: Vec<Rendered>, through: u64);

    /// Waits until the delivered prefix of what was submitted grows, or delivery fails, and
    /// reports it. Records whose `line` is `None` count as delivered without being sent.
    /// Cancel-safe (the loop selects on it); pending for ever while nothing is outstanding.
    fn progress(&mut self) -> impl Future<Output = Delivery> + Send;

    /// After a failure: forgets everything outstanding. The loop submits again from the first
    /// record not reported delivered (what was on the wire may arrive twice: duplicates,
    /// bounded by the window).
    fn reset(&mut self);

    /// Closes connections politely (TLS `close_notify`); called once on shutdown.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// A sink's in-flight bounds (see [`Sink::window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Most records with a line outstanding.
    pub records: usize,
    /// Most bytes of rendered lines outstanding (the sink holds them until delivered).
    pub bytes: usize,
}

/// What [`Sink::progress`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Every submitted record with `seq <= through` is delivered (or not for this sink, or
    /// rejected); `None`: no progress.
    pub through: Option<u64>,
    /// Records that joined the delivered prefix with this report and were sent (a `line` was present and accepted).
    pub sent: u64,
    /// Records that joined the delivered prefix with this report that the destination refused
    /// for good (e.g. HTTP 413) or that could not be framed safely, each with its reason: the
    /// loop keeps them as dead letters in the store with the ack that passes them; never
    /// retried forever, never dropped silently.
    pub rejected: Vec<Rejection>,
    /// Why delivery stopped before the end of the batch, if it did.
    pub error: Option<SinkError>,
}

/// Why a batch was not (entirely) delivered. Texts never contain tokens or keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying after a backoff: network errors, timeouts, 408, 429, 5xx.
    #[error("{message}")]
    Transient {
        /// What happened, for the status page.
        message: String,
        /// How long the destination asked us to wait (`Retry-After`), if it did.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help until an operator changes the settings (unknown token, 401/403/404).
    /// The sink stops; the queue is kept.
    #[error("{reason}")]
    Config {
        /// What is wrong and what to check.
        reason: String,
    },
}

impl SinkError {
    /// A transient error without `Retry-After`.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}
