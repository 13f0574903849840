//! Box timestamps to InsightIDR's UEF form.
//!
//! Box writes `created_at` with a local offset (`2015-12-02T09:41:31-08:00`); UEF wants UTC
//! with exactly three fractional digits (`2015-12-02T17:41:31.000Z`,
//! `shared/insightidr/CONTRACT.md` §1.1). The event's own time is used, never the collection
//! time (a peer stamped back-filled events with the ingest time: `shared/PEERS.md` §3).

use boxidr_model::BoxEvent;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A Box timestamp that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0:?} is not an RFC 3339 date-time with an offset")]
pub struct TimeError(pub String);

/// Converts an RFC 3339 timestamp with any offset to `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC,
/// truncating (not rounding) sub-millisecond digits as InsightIDR does.
///
/// A time whose UTC year falls outside 0000–9999 (`0000-01-01T00:00:00+01:00`) is an error:
/// UEF has exactly four year digits.
pub fn to_uef_time(box_time: &str) -> Result<String, TimeError> {
    let err = || TimeError(box_time.chars().take(64).collect());
    let parsed = OffsetDateTime::parse(box_time, &Rfc3339).map_err(|_| err())?;
    // `to_offset` panics when the UTC date leaves the supported range; this does not.
    let utc = parsed.checked_to_offset(UtcOffset::UTC).ok_or_else(err)?;
    format_utc(utc).ok_or_else(err)
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` past year 9999.
pub fn ms_to_utc(ms: u64) -> Option<String> {
    let nanos = i128::from(ms).checked_mul(1_000_000)?;
    format_utc(OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?)
}

fn format_utc(utc: OffsetDateTime) -> Option<String> {
    if !(0..=9999).contains(&utc.year()) {
        return None;
    }
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    utc.format(&format).ok()
}

/// Which Box field gave an event its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    /// `created_at`: when the action happened (every admin event has it).
    CreatedAt,
    /// `recorded_at`: when Box recorded it (user-stream events; used when `created_at` is
    /// missing).
    RecordedAt,
    /// `additional_details.shield_alert.created_at`: when Box Shield raised the alert (used
    /// only when the event has neither of the above).
    ShieldAlertCreatedAt,
}

impl TimeField {
    /// The field's path in Box's event, as written into raw records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::RecordedAt => "recorded_at",
            Self::ShieldAlertCreatedAt => "additional_details.shield_alert.created_at",
        }
    }
}

/// The time of a Box event, never the time it was collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTime {
    /// The field the time came from.
    pub field: TimeField,
    /// The time in UEF form, or why the field could not be read.
    pub utc: Result<String, TimeError>,
}

/// The event's own time: the first of `created_at`, `recorded_at` and the Shield alert's
/// `created_at` that is present (as a string); `None` when none is. A present but unparsable
/// field is reported as such, not skipped: a later field is a different instant.
pub fn event_time(event: &BoxEvent) -> Option<EventTime> {
    let raw = event.raw();
    let shield = raw
        .get("additional_details")
        .and_then(|d| d.get("shield_alert"))
        .and_then(|a| a.get("created_at"));
    [
        (TimeField::CreatedAt, raw.get("created_at")),
        (TimeField::RecordedAt, raw.get("recorded_at")),
        (TimeField::ShieldAlertCreatedAt, shield),
    ]
    .into_iter()
    .find_map(|(field, value)| match value {
        Some(Value::String(text)) => Some(EventTime {
            field,
            utc: to_uef_time(text),
        }),
        Some(Value::Null) | None => None,
        Some(other) => Some(EventTime {
            field,
            utc: Err(TimeError(other.to_string().chars().take(64).collect())),
        }),
    })
}

/// The Shield alert's own `created_at` in UEF form, when the event carries one that parses.
pub fn shield_alert_time(event: &BoxEvent) -> Option<String> {
    event
        .raw()
        .get("additional_details")?
        .get("shield_alert")?
        .get("created_at")?
        .as_str()
        .and_then(|text| to_uef_time(text).ok())
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

    /// UTC years outside four digits are refused; the edges inside are kept.
    #[test]
    fn year_range() {
        assert!(to_uef_time("0000-01-01T00:30:00+01:00").is_err());
        assert!(to_uef_time("9999-12-31T23:30:00-01:00").is_err());
        assert_eq!(
            to_uef_time("0000-01-01T00:30:00-01:00").as_deref(),
            Ok("0000-01-01T01:30:00.000Z")
        );
        assert_eq!(
            to_uef_time("9999-12-31T23:59:59.999999999Z").as_deref(),
            Ok("9999-12-31T23:59:59.999Z")
        );
    }

    /// Collection times in milliseconds format the same way; absurd values are `None`.
    #[test]
    fn collection_ms() {
        assert_eq!(ms_to_utc(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            ms_to_utc(1_709_655_262_123).as_deref(),
            Some("2024-03-05T16:14:22.123Z")
        );
        assert_eq!(ms_to_utc(u64::MAX), None);
    }

    fn event(value: serde_json::Value) -> BoxEvent {
        BoxEvent::from_value(value).unwrap()
    }

    /// `created_at` first, then `recorded_at`, then the Shield alert's time.
    #[test]
    fn event_time_fields() {
        use serde_json::json;
        let both = event(
            json!({"event_id": "1", "created_at": "2022-07-20T02:32:15-07:00",
            "recorded_at": "2022-07-20T02:32:16-07:00"}),
        );
        let t = event_time(&both).unwrap();
        assert_eq!(t.field, TimeField::CreatedAt);
        assert_eq!(t.utc.as_deref(), Ok("2022-07-20T09:32:15.000Z"));

        let recorded = event(json!({"event_id": "1", "created_at": null,
            "recorded_at": "2022-07-20T02:32:16-07:00"}));
        let t = event_time(&recorded).unwrap();
        assert_eq!(t.field, TimeField::RecordedAt);
        assert_eq!(t.utc.as_deref(), Ok("2022-07-20T09:32:16.000Z"));

        let shield = event(
            json!({"event_id": "1", "additional_details": {"shield_alert":
            {"created_at": "2019-12-20T11:38:16-08:00"}}}),
        );
        let t = event_time(&shield).unwrap();
        assert_eq!(t.field, TimeField::ShieldAlertCreatedAt);
        assert_eq!(t.utc.as_deref(), Ok("2019-12-20T19:38:16.000Z"));
        assert_eq!(
            shield_alert_time(&shield).as_deref(),
            Some("2019-12-20T19:38:16.000Z")
        );

        let bad = event(json!({"event_id": "1", "created_at": "yesterday",
            "recorded_at": "2022-07-20T02:32:16-07:00"}));
        let t = event_time(&bad).unwrap();
        assert_eq!(t.field, TimeField::CreatedAt);
        assert!(t.utc.is_err());

        let number = event(json!({"event_id": "1", "created_at": 1_700_000_000}));
        assert!(event_time(&number).unwrap().utc.is_err());

        assert_eq!(event_time(&event(json!({"event_id": "1"}))), None);
    }
}
