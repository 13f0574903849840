//! Rendering is injected: the pure `boxidr-normalize` crate turns a queued Box event into the
//! line a sink sends; this crate only moves those lines.

use boxidr_store::{QueuedRecord, RecordFilter, SinkId};

/// Turns a queued Box event into what one sink sends, at send time.
///
/// Implementations must be pure and cheap enough to run on a tokio worker (no I/O, no
/// blocking). For the Collector the result must be one complete UEF JSON object on one line
/// (no `\n` or `\r`); for Log Search, one JSON object (the request body).
pub trait Render: Send + Sync {
    /// The text to send for `record` on `sink`, or `None` when the record is not for this sink
    /// (for example a file download on the Collector, which only takes logins). A `None` record
    /// is still acknowledged: the sink's cursor passes it.
    fn render(&self, sink: SinkId, record: &QueuedRecord) -> Option<String>;

    /// Which records can render to something for `sink`, judged from the Box `event_type` in
    /// the record header alone (`None` when the header has none): the store passes over the
    /// others without decoding them, and the sink's cursor passes them like `None` renders.
    /// The filter must keep every record [`Render::render`] could send (when unsure: keep).
    /// Default: no filter, every record is read.
    fn wanted(&self, sink: SinkId) -> Option<RecordFilter> {
        let _ = sink;
        None
    }
}

/// One queued record after rendering, in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The record's queue sequence.
    pub seq: u64,
    /// What to send; `None`: nothing to send for this sink (acknowledged all the same).
    pub line: Option<String>,
}
