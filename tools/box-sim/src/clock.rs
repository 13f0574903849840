//! Box-style timestamps: RFC 3339, seconds precision, US-Pacific offsets (CONTRACT §2.5).

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

const BOX_FORMAT: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

/// The US-Pacific offset (PST -08:00 / PDT -07:00) in force at `utc`.
///
/// DST runs from the second Sunday of March 02:00 PST (10:00 UTC) to the first Sunday of
/// November 02:00 PDT (09:00 UTC).
pub fn pacific_offset(utc: OffsetDateTime) -> UtcOffset {
    let utc = utc.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let start = nth_sunday(year, Month::March, 2)
        .with_hms(10, 0, 0)
        .map(|d| d.assume_utc());
    let end = nth_sunday(year, Month::November, 1)
        .with_hms(9, 0, 0)
        .map(|d| d.assume_utc());
    let dst = matches!((start, end), (Ok(s), Ok(e)) if utc >= s && utc < e);
    let hours = if dst { -7 } else { -8 };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

fn nth_sunday(year: i32, month: Month, n: u8) -> Date {
    let first = Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN);
    let to_sunday = (7 - first.weekday().number_days_from_sunday()) % 7;
    let day = 1 + to_sunday + 7 * (n - 1);
    let date = Date::from_calendar_date(year, month, day).unwrap_or(first);
    debug_assert_eq!(date.weekday(), Weekday::Sunday);
    date
}

/// Formats `t` the way Box does: `2024-03-05T08:14:22-08:00` (Pacific offset, whole seconds).
pub fn box_time(t: OffsetDateTime) -> String {
    let local = t.to_offset(pacific_offset(t));
    local
        .replace_nanosecond(0)
        .unwrap_or(local)
        .format(BOX_FORMAT)
        .unwrap_or_else(|_| local.unix_timestamp().to_string())
}

/// Parses an RFC 3339 date-time (offset or `Z` required). A space where `+` was (an
/// un-percent-encoded offset decoded as a space) does not parse.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Proves the Pacific offset switches on the US DST dates (2024: Mar 10, Nov 3).
    #[test]
    fn pacific_offsets_follow_us_dst() {
        assert_eq!(
            box_time(datetime!(2024-03-05 16:14:22 UTC)),
            "2024-03-05T08:14:22-08:00"
        );
        assert_eq!(
            box_time(datetime!(2024-03-10 09:59:59 UTC)),
            "2024-03-10T01:59:59-08:00"
        );
        assert_eq!(
            box_time(datetime!(2024-03-10 10:00:00 UTC)),
            "2024-03-10T03:00:00-07:00"
        );
        assert_eq!(
            box_time(datetime!(2024-11-03 08:59:59 UTC)),
            "2024-11-03T01:59:59-07:00"
        );
        assert_eq!(
            box_time(datetime!(2024-11-03 09:00:00 UTC)),
            "2024-11-03T01:00:00-08:00"
        );
    }

    /// Proves `+02:00` decoded to a space is rejected while `Z` and numeric offsets parse.
    #[test]
    fn rfc3339_parsing_rejects_space_offset() {
        assert!(parse_rfc3339("2024-03-05T08:14:22-08:00").is_some());
        assert!(parse_rfc3339("2024-03-05T08:14:22Z").is_some());
        assert!(parse_rfc3339("2024-03-05T08:14:22+02:00").is_some());
        assert!(parse_rfc3339("2024-03-05T08:14:22 02:00").is_none());
        assert!(parse_rfc3339("2024-03-05").is_none());
    }
}
