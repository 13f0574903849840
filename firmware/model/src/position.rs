//! The Box events cursor, kept exactly as Box sent it.
//!
//! Box returns `next_stream_position` either as a JSON string or as a JSON integer, and the
//! values exceed 2^53 (`1152923169531664551`). A peer that round-tripped it through `f64`
//! skipped and repeated events (`shared/PEERS.md` §3). This type never touches floating point:
//! it accepts a string or an integer token and keeps the decimal text verbatim.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest cursor accepted; real ones are about 19 digits.
pub const MAX_POSITION_LEN: usize = 128;

/// An opaque `stream_position` as returned by Box, sent back verbatim.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPosition(String);

/// Why a cursor from Box was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("stream position is empty")]
    Empty,
    #[error("stream position is longer than {MAX_POSITION_LEN} bytes")]
    TooLong,
    #[error("stream position contains characters other than printable ASCII")]
    BadCharacters,
    #[error("stream position {0} is a floating-point number; refusing to lose precision")]
    Float(String),
}

impl StreamPosition {
    /// Validates an opaque cursor: non-empty, bounded, printable ASCII without spaces, so it can
    /// be put in a query string and a log line without escaping surprises.
    pub fn new(text: impl Into<String>) -> Result<Self, PositionError> {
        let text = text.into();
        if text.is_empty() {
            return Err(PositionError::Empty);
        }
        if text.len() > MAX_POSITION_LEN {
            return Err(PositionError::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PositionError::BadCharacters);
        }
        Ok(Self(text))
    }

    /// The cursor text to send back as `stream_position`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Box's legacy "no usable position" answer on an empty page (`"0"`): storing it would
    /// rewind the cursor to the start of the retention window, so callers keep their old one.
    pub fn is_reset(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }
}

impl fmt::Debug for StreamPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamPosition({})", self.0)
    }
}

impl fmt::Display for StreamPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StreamPosition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamPosition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PositionVisitor)
    }
}

struct PositionVisitor;

impl Visitor<'_> for PositionVisitor {
    type Value = StreamPosition;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stream position as a string or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        StreamPosition::new(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        StreamPosition::new(v.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        StreamPosition::new(v.to_string()).map_err(E::custom)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        StreamPosition::new(v.to_string()).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(PositionError::Float(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Page {
        next_stream_position: StreamPosition,
    }

    /// An integer cursor above 2^53 survives parsing digit for digit (no f64 on the way).
    #[test]
    fn integer_above_2_pow_53_is_exact() {
        let page: Page =
            serde_json::from_str(r#"{"next_stream_position":1152923169531664551}"#).unwrap();
        assert_eq!(page.next_stream_position.as_str(), "1152923169531664551");
    }

    /// The string form is kept verbatim.
    #[test]
    fn string_form_is_verbatim() {
        let page: Page =
            serde_json::from_str(r#"{"next_stream_position":"1152922986252290886"}"#).unwrap();
        assert_eq!(page.next_stream_position.as_str(), "1152922986252290886");
        assert_eq!(
            serde_json::to_string(&page.next_stream_position).unwrap(),
            r#""1152922986252290886""#
        );
    }

    /// Floats (what a sloppy encoder writes, `1.152923169531665e18`) are refused, not rounded.
    #[test]
    fn floats_are_refused() {
        let err = serde_json::from_str::<Page>(r#"{"next_stream_position":1.152923169531665e18}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("floating-point"), "{err}");
    }

    /// Empty, overlong and whitespace-carrying cursors are refused.
    #[test]
    fn malformed_cursors_are_refused() {
        assert_eq!(StreamPosition::new(""), Err(PositionError::Empty));
        assert_eq!(
            StreamPosition::new("1 2"),
            Err(PositionError::BadCharacters)
        );
        assert_eq!(
            StreamPosition::new("9".repeat(MAX_POSITION_LEN + 1)),
            Err(PositionError::TooLong)
        );
    }

    /// The legacy `0` answer is recognised so the poller can keep its old cursor.
    #[test]
    fn zero_is_a_reset() {
        assert!(StreamPosition::new("0").unwrap().is_reset());
        assert!(!StreamPosition::new("10").unwrap().is_reset());
    }
}
