//! Box's `next_stream_position` → [`StreamPosition`]: from text, and from a JSON value (Box
//! sends a string or an integer above 2^53).
//!
//! Invariants: an accepted cursor is kept byte for byte (no floating point on the way: an
//! integer token keeps every digit), is printable ASCII without spaces (it goes into a query
//! string and log lines unescaped), is at most `MAX_POSITION_LEN` bytes, and survives
//! serialise → deserialise unchanged.
#![no_main]

use boxidr_model::StreamPosition;
use libfuzzer_sys::fuzz_target;

/// `boxidr_model::position::MAX_POSITION_LEN` (the module is private).
const MAX_POSITION_LEN: usize = 128;

fn check(position: &StreamPosition) {
    let text = position.as_str();
    assert!(!text.is_empty());
    assert!(text.len() <= MAX_POSITION_LEN);
    assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
    let json = serde_json::to_string(position).expect("serialises");
    let back: StreamPosition = serde_json::from_str(&json).expect("reads back");
    assert_eq!(&back, position);
    assert_eq!(back.as_str(), text);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(position) = StreamPosition::new(text) {
        assert_eq!(position.as_str(), text, "cursor not kept verbatim");
        check(&position);
    }
    // The same bytes as the JSON value of `next_stream_position`.
    if let Ok(position) = serde_json::from_str::<StreamPosition>(text) {
        check(&position);
        let trimmed = text.trim();
        if trimmed.bytes().all(|b| b.is_ascii_digit()) {
            assert_eq!(position.as_str(), trimmed, "integer cursor lost digits");
        }
    }
});
