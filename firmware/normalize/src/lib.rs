//! Pure rendering of Box events into what InsightIDR ingests: UEF `INGRESS_AUTHENTICATION`
//! lines for the Collector and raw JSON records for Log Search. No I/O: sinks call this at
//! send time with the queued Box event, the user directory and the current settings.

mod time_utc;

pub use time_utc::{TimeError, to_uef_time};
