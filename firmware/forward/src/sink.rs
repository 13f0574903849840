//! The boundary between the forwarding loop and a transport: one batch in, how far it got out.

use std::future::Future;
use std::time::Duration;

use boxidr_store::SinkId;

use crate::render::Rendered;

/// A transport to InsightIDR. The forwarding loop ([`crate::Forwarder`]) owns one sink and
/// hands it one rendered batch at a time, in queue order.
pub trait Sink: Send {
    /// Which store cursor this sink advances.
    fn id(&self) -> SinkId;

    /// Sends `batch` and reports the longest delivered *prefix*. Records whose `line` is `None`
    /// count as delivered without being sent. The returned future must be safe to drop at any
    /// point (shutdown): whatever was not reported as delivered is sent again later.
    fn deliver(&mut self, batch: &[Rendered]) -> impl Future<Output = Delivery> + Send;

    /// Closes connections politely (TLS `close_notify`); called once on shutdown.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// The result of [`Sink::deliver`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Every record with `seq <= through` is delivered (or not for this sink, or rejected);
    /// `None`: not even the first record.
    pub through: Option<u64>,
    /// Records inside the delivered prefix that were sent (a `line` was present and accepted).
    pub sent: u64,
    /// Records inside the delivered prefix that the destination refused for good (e.g. HTTP
    /// 413) or that could not be framed safely; counted and reported, never retried forever.
    pub rejected: u64,
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
