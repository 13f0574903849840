//! Box time as the readers send and store it: fixed-width RFC 3339 UTC text.
//!
//! Shared by the stream (its last event's `created_at`, the catch-up start), the sweep (its
//! window bounds, sent to Box as `created_after`/`created_before`) and the health facts.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Formats `t` as fixed-width RFC 3339 UTC with whole seconds (`2024-05-02T21:03:11Z`): the form
/// sent to Box (no `+` to percent-encode) and stored, whose text order is time order.
///
/// Total: a time whose UTC form leaves years 0000–9999 (Box text such as
/// `9999-12-31T23:30:00-01:00` parses, but is 10000-01-01 in UTC) saturates to the first or
/// last representable second instead of panicking, which would wedge the reader that met it
/// (it would read the same page again after every restart). Text order stays time order.
pub fn format_utc(t: OffsetDateTime) -> String {
    const FIRST: OffsetDateTime = time::macros::datetime!(0000-01-01 0:00 UTC);
    const LAST: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);
    let t = match t.checked_to_offset(UtcOffset::UTC) {
        Some(t) => t.clamp(FIRST, LAST),
        None if t.offset().is_negative() => LAST,
        None => FIRST,
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an RFC 3339 date-time with any offset.
pub fn parse_utc(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The time `ms` milliseconds after the Unix epoch, if representable.
pub fn from_unix_ms(ms: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Box offsets become fixed-width UTC; text order is time order.
    #[test]
    fn utc_text() {
        let t = parse_utc("2024-03-05T08:14:22-08:00").unwrap();
        assert_eq!(format_utc(t), "2024-03-05T16:14:22Z");
        assert!(format_utc(datetime!(2024-01-01 0:00 UTC)) < format_utc(t));
    }

    /// Box text whose UTC form leaves years 0000–9999 saturates instead of panicking (it once
    /// wedged both readers on the page that carried it).
    #[test]
    fn utc_text_out_of_range_saturates() {
        let late = parse_utc("9999-12-31T23:30:00-01:00").unwrap();
        assert_eq!(format_utc(late), "9999-12-31T23:59:59Z");
        let early = parse_utc("0000-01-01T00:10:00+01:00").unwrap();
        assert_eq!(format_utc(early), "0000-01-01T00:00:00Z");
        for text in [format_utc(late), format_utc(early)] {
            assert!(parse_utc(&text).is_some(), "{text} parses back");
        }
    }

    /// Milliseconds since the epoch round-trip.
    #[test]
    fn unix_ms_round_trips() {
        let t = datetime!(2024-05-02 12:00:00.123 UTC);
        assert_eq!(from_unix_ms(unix_ms(t)), Some(t));
        assert_eq!(unix_ms(datetime!(1960-01-01 0:00 UTC)), 0);
    }
}
