//! Shared vocabulary of the boxidr pipeline, free of I/O.
//!
//! Every stage speaks in these types: the Box poller produces [`BoxEvent`]s and a
//! [`StreamPosition`], the store queues them, the sinks render them. Nothing here depends on
//! tokio, reqwest, redb, tiny_http or rppal (checked by `tools/test-all.sh`).

pub mod clock;
pub mod error;
mod event;
pub mod led;
mod position;
pub mod pulse;
pub mod retry;
mod secret;
pub mod verifier;

pub use event::{BoxEvent, EventError, EventId, UserMini};
pub use led::{AttentionCode, Led, LedFrame, LedLook};
pub use position::{PositionError, StreamPosition};
pub use pulse::{Liveness, Pulse};
pub use retry::BackoffPolicy;
pub use secret::Secret;
pub use verifier::{VerifierReport, VerifierState};

use serde::{Deserialize, Serialize};

/// The two enterprise event streams of `GET /2.0/events` that the appliance reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    /// "Enterprise Event History": chronological, no duplicates, 365 days, `created_after`/`created_before`.
    AdminLogs,
    /// "Enterprise Event Stream": low latency, at-least-once, out of order, 14 days.
    AdminLogsStreaming,
}

impl StreamType {
    /// The value of the `stream_type` query parameter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AdminLogs => "admin_logs",
            Self::AdminLogsStreaming => "admin_logs_streaming",
        }
    }

    /// How long Box keeps events on this stream, in days.
    pub const fn retention_days(self) -> u32 {
        match self {
            Self::AdminLogs => 365,
            Self::AdminLogsStreaming => 14,
        }
    }
}

impl std::fmt::Display for StreamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StreamType {
    type Err = UnknownStreamType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin_logs" => Ok(Self::AdminLogs),
            "admin_logs_streaming" => Ok(Self::AdminLogsStreaming),
            other => Err(UnknownStreamType(other.to_owned())),
        }
    }
}

/// A `stream_type` other than the two enterprise streams.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stream type {0:?}: expected admin_logs or admin_logs_streaming")]
pub struct UnknownStreamType(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    /// Stream types round-trip through their query-parameter spelling and reject anything else.
    #[test]
    fn stream_type_round_trips() {
        for t in [StreamType::AdminLogs, StreamType::AdminLogsStreaming] {
            assert_eq!(t.as_str().parse::<StreamType>(), Ok(t));
        }
        assert!("all".parse::<StreamType>().is_err());
        assert_eq!(StreamType::AdminLogsStreaming.retention_days(), 14);
    }
}
