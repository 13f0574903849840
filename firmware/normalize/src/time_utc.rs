//! Box timestamps to InsightIDR's UEF form.
//!
//! Box writes `created_at` with a local offset (`2015-12-02T09:41:31-08:00`); UEF wants UTC
//! with exactly three fractional digits (`2015-12-02T17:41:31.000Z`,
//! `shared/insightidr/CONTRACT.md` §1.1). The event's own time is used, never the collection
//! time (a peer stamped back-filled events with the ingest time: `shared/PEERS.md` §3).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A Box timestamp that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0:?} is not an RFC 3339 date-time with an offset")]
pub struct TimeError(pub String);

/// Converts an RFC 3339 timestamp with any offset to `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC,
/// truncating (not rounding) sub-millisecond digits as InsightIDR does.
pub fn to_uef_time(box_time: &str) -> Result<String, TimeError> {
    let parsed = OffsetDateTime::parse(box_time, &Rfc3339)
        .map_err(|_| TimeError(box_time.chars().take(64).collect()))?;
    let utc = parsed.to_offset(UtcOffset::UTC);
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    utc.format(&format)
        .map_err(|_| TimeError(box_time.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden conversions: Pacific offsets, fractional seconds, UTC, day and year rollover.
    #[test]
    fn golden() {
        for (box_time, uef) in [
            ("2015-12-02T09:41:31-08:00", "2015-12-02T17:41:31.000Z"),
            ("2024-05-02T14:03:11-07:00", "2024-05-02T21:03:11.000Z"),
            ("2024-12-31T20:00:00-08:00", "2025-01-01T04:00:00.000Z"),
            ("2024-05-02T21:03:11Z", "2024-05-02T21:03:11.000Z"),
            ("2024-05-02T21:03:11.5+02:00", "2024-05-02T19:03:11.500Z"),
            (
                "2024-05-02T21:03:11.123456-07:00",
                "2024-05-03T04:03:11.123Z",
            ),
            ("2024-05-02T21:03:11.999999Z", "2024-05-02T21:03:11.999Z"),
        ] {
            assert_eq!(to_uef_time(box_time).as_deref(), Ok(uef), "{box_time}");
        }
    }

    /// Anything else is an error carrying (a bounded prefix of) the input.
    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "",
            "yesterday",
            "2024-05-02 21:03:11",
            "2024-05-02T21:03:11",
            "2024-13-02T00:00:00Z",
        ] {
            assert!(to_uef_time(bad).is_err(), "{bad}");
        }
        let long = "x".repeat(10_000);
        assert_eq!(to_uef_time(&long).unwrap_err().0.len(), 64);
    }
}
