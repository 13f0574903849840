//! UEF `INGRESS_AUTHENTICATION` v1 validation, as documented in CONTRACT.md §1.1–1.2.
//!
//! This module is pure (no I/O): it takes one line of text (already framed, CR stripped, UTF-8
//! checked) and either accepts it, returning the parsed object and its normalised time, or
//! names the first contract violation.
//!
//! Rules, and the decisions taken where the contract has a gap (each is marked *decision*):
//! - The line is exactly one JSON object (`serde_json::from_str`: surrounding whitespace is
//!   allowed, trailing data is not). Arrays, scalars and several objects on one line are
//!   rejected. Duplicate keys are not detected (serde keeps the last one) — *gap, not modelled*.
//! - `version` must be the string `"v1"`; `event_type` the string `"INGRESS_AUTHENTICATION"`
//!   (both case-sensitive).
//! - `time`: ISO 8601 *extended* format `YYYY-MM-DDTHH:MM:SS[.f+]Z`, a real calendar date and a
//!   time of day with hour 00–23, minute 00–59, second 00–59. Fractions of any length are
//!   normalised to milliseconds (padded or truncated, as documented); no fraction means `.000`.
//!   *Decision:* only the `Z` designator is accepted (uppercase `T` and `Z`); numeric offsets,
//!   even `+00:00`, are rejected by default because the documented form is
//!   `yyyy-MM-ddTHH:mm:SS.SSSZ` and the forwarder must convert Box offsets to UTC (§1.1). The
//!   [`UefRules::accept_offsets`] switch accepts `±HH:MM` and converts to UTC instead.
//!   The undocumented "Time Validation" (how old or new `time` may be) is a knob:
//!   [`UefRules::max_past`] / [`UefRules::max_future`], off by default.
//! - `account`: a string that is non-empty. *Decision:* whitespace-only counts as empty.
//! - `account_domain`: absent, `null`, or a non-empty (not whitespace-only) string.
//! - `source_ip`: a string holding a dotted-quad IPv4 address (Rust's strict parser: no leading
//!   zeros, no ports) or an IPv4-mapped IPv6 address (`::ffff:a.b.c.d` or `::ffff:xxxx:xxxx`).
//!   Other IPv6, brackets, zone ids, host names and `"Unknown IP"` are rejected. Private and
//!   loopback IPv4 addresses are valid UEF (the doc only says they are not used for ingress).
//! - `authentication_result`: *decision (gap):* required, exactly `"SUCCESS"` or `"FAILURE"`.
//! - `authentication_target`: *decision (gap):* optional; when present a non-empty string
//!   (`null` is rejected, unlike `account_domain`, because the doc allows null only there).
//! - `custom_data`: absent or a JSON object (`null` is rejected: "Must be a JSON object").
//! - Unknown top-level fields: *decision:* rejected by default ("exact format stipulated for a
//!   given event_type and version"); [`UefRules::allow_unknown_fields`] turns that off.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The top-level fields `INGRESS_AUTHENTICATION` v1 knows.
pub const KNOWN_FIELDS: [&str; 9] = [
    "version",
    "event_type",
    "time",
    "account",
    "account_domain",
    "source_ip",
    "authentication_result",
    "authentication_target",
    "custom_data",
];

/// Strictness knobs for the places where the contract has a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UefRules {
    /// Accept `±HH:MM` offsets (converted to UTC) instead of rejecting anything but `Z`.
    pub accept_offsets: bool,
    /// Accept top-level fields not listed in [`KNOWN_FIELDS`].
    pub allow_unknown_fields: bool,
    /// Reject events whose `time` is older than this relative to receipt (unknown real rule).
    pub max_past: Option<Duration>,
    /// Reject events whose `time` is further ahead than this relative to receipt.
    pub max_future: Option<Duration>,
}

/// Why a UEF line was not accepted. Never sent to the client; only kept in the side channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UefViolation {
    /// The line is not a JSON document.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The line is JSON but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A required field is absent.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// Field name.
        field: &'static str,
        /// What the contract expects, in words.
        expected: &'static str,
    },
    /// A field has the right type but a value the contract does not allow.
    #[error("field `{field}` is invalid: {detail}")]
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A top-level field that `INGRESS_AUTHENTICATION` v1 does not define.
    #[error("unknown top-level field `{0}`")]
    UnknownField(String),
}

/// An accepted UEF event: the parsed object and the normalised `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidUef {
    /// The object exactly as sent.
    pub value: Value,
    /// `time` normalised to `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
    pub time_normalized: String,
    /// `custom_data.box_event_id`, when present (string, or a number rendered as text).
    pub box_event_id: Option<String>,
}

/// Validate one framed line against `INGRESS_AUTHENTICATION` v1.
///
/// `now` is the receipt time, used only by the optional age window.
pub fn validate_line(
    line: &str,
    rules: &UefRules,
    now: SystemTime,
) -> Result<ValidUef, UefViolation> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| UefViolation::NotJson(e.to_string()))?;
    let obj = value.as_object().ok_or(UefViolation::NotObject)?;

    exact_string(obj, "version", "v1")?;
    exact_string(obj, "event_type", "INGRESS_AUTHENTICATION")?;

    let time_str = required_string(obj, "time")?;
    let time = parse_uef_time(time_str, rules.accept_offsets).map_err(|detail| {
        UefViolation::InvalidValue {
            field: "time",
            detail,
        }
    })?;
    check_age(time, rules, now)?;

    let account = required_string(obj, "account")?;
    if account.trim().is_empty() {
        return Err(UefViolation::InvalidValue {
            field: "account",
            detail: "must be a non-empty string".into(),
        });
    }

    match obj.get("account_domain") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) => {
            return Err(UefViolation::InvalidValue {
                field: "account_domain",
                detail: "must be null or a non-empty string".into(),
            });
        }
        Some(_) => {
            return Err(UefViolation::WrongType {
                field: "account_domain",
                expected: "null or a string",
            });
        }
    }

    let ip = required_string(obj, "source_ip")?;
    if !is_ipv4_or_mapped(ip) {
        return Err(UefViolation::InvalidValue {
            field: "source_ip",
            detail: format!("{ip:?} is not an IPv4 address or IPv4-mapped IPv6 address"),
        });
    }

    let result = required_string(obj, "authentication_result")?;
    if result != "SUCCESS" && result != "FAILURE" {
        return Err(UefViolation::InvalidValue {
            field: "authentication_result",
            detail: format!("{result:?} is not SUCCESS or FAILURE"),
        });
    }

    match obj.get("authentication_target") {
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) => {
            return Err(UefViolation::InvalidValue {
                field: "authentication_target",
                detail: "must be a non-empty string when present".into(),
            });
        }
        Some(_) => {
            return Err(UefViolation::WrongType {
                field: "authentication_target",
                expected: "a string",
            });
        }
    }

    match obj.get("custom_data") {
        None | Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(UefViolation::WrongType {
                field: "custom_data",
                expected: "a JSON object",
            });
        }
    }

    if !rules.allow_unknown_fields
        && let Some(extra) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str()))
    {
        return Err(UefViolation::UnknownField(extra.clone()));
    }

    let box_event_id = obj
        .get("custom_data")
        .and_then(|c| c.get("box_event_id"))
        .and_then(id_text);
    Ok(ValidUef {
        time_normalized: format_ms_utc(time),
        box_event_id,
        value,
    })
}

/// A JSON string or integer as id text; anything else is not an id.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

fn required_string<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, UefViolation> {
    match obj.get(field) {
        None => Err(UefViolation::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(UefViolation::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn exact_string(
    obj: &Map<String, Value>,
    field: &'static str,
    want: &str,
) -> Result<(), UefViolation> {
    let got = required_string(obj, field)?;
    if got == want {
        Ok(())
    } else {
        Err(UefViolation::InvalidValue {
            field,
            detail: format!("{got:?} is not {want:?}"),
        })
    }
}

/// IPv4 dotted quad, or an IPv6 address that is IPv4-mapped (`::ffff:0:0/96`).
pub fn is_ipv4_or_mapped(s: &str) -> bool {
    if s.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => is_mapped(&v6),
        _ => false,
    }
}

fn is_mapped(v6: &Ipv6Addr) -> bool {
    v6.to_ipv4_mapped().is_some()
}

fn check_age(time: OffsetDateTime, rules: &UefRules, now: SystemTime) -> Result<(), UefViolation> {
    let now = OffsetDateTime::from(now);
    if let Some(max) = rules.max_past
        && time < now - max
    {
        return Err(UefViolation::InvalidValue {
            field: "time",
            detail: format!("older than the configured window of {}s", max.as_secs()),
        });
    }
    if let Some(max) = rules.max_future
        && time > now + max
    {
        return Err(UefViolation::InvalidValue {
            field: "time",
            detail: format!("more than {}s in the future", max.as_secs()),
        });
    }
    Ok(())
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)` strictly; fractions are truncated to
/// milliseconds. Offsets other than `Z` only when `accept_offsets`.
pub fn parse_uef_time(s: &str, accept_offsets: bool) -> Result<OffsetDateTime, String> {
    let b = s.as_bytes();
    let bad = |what: &str| format!("{s:?} is not an ISO 8601 extended timestamp ({what})");
    if b.len() < 20 {
        return Err(bad("too short"));
    }
    let digits = |range: std::ops::Range<usize>| -> Result<u32, String> {
        let part = &b[range];
        if part.iter().all(u8::is_ascii_digit) {
            Ok(part
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        } else {
            Err(bad("non-digit in date/time"))
        }
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    let hour = digits(11..13)?;
    let minute = digits(14..16)?;
    let second = digits(17..19)?;

    let mut i = 19;
    let mut millis = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return Err(bad("empty fraction"));
        }
        // Pad to three digits, or truncate beyond three (documented normalisation).
        for k in 0..3 {
            let d = if start + k < end {
                u32::from(b[start + k] - b'0')
            } else {
                0
            };
            millis = millis * 10 + d;
        }
        i = end;
    }
    let offset = match &b[i..] {
        b"Z" => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] if accept_offsets => {
            let hh = digits(i + 1..i + 3)?;
            let mm = digits(i + 4..i + 6)?;
            let _ = (h1, h2, m1, m2);
            if hh > 23 || mm > 59 {
                return Err(bad("offset out of range"));
            }
            let total =
                i32::try_from(hh * 3600 + mm * 60).map_err(|_| bad("offset out of range"))?;
            let total = if *sign == b'-' { -total } else { total };
            UtcOffset::from_whole_seconds(total).map_err(|_| bad("offset out of range"))?
        }
        [b'+' | b'-', ..] => return Err(bad("only the UTC designator Z is accepted")),
        _ => return Err(bad("expected Z after the seconds")),
    };

    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| bad("month out of range"))?;
    let year = i32::try_from(year).map_err(|_| bad("year out of range"))?;
    let day = u8::try_from(day).map_err(|_| bad("day out of range"))?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| bad("no such date"))?;
    let hms = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    let tod = Time::from_hms_milli(
        hms(hour),
        hms(minute),
        hms(second),
        u16::try_from(millis).unwrap_or(u16::MAX),
    )
    .map_err(|_| bad("time of day out of range"))?;
    // `to_offset` panics when the UTC date leaves time's range (`9999-12-31T23:30:00-01:00`,
    // found by tests/fuzz `uef_validator`); a UTC year outside 0000–9999 has no UEF form.
    PrimitiveDateTime::new(date, tod)
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| bad("outside years 0000-9999 in UTC"))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
pub fn format_ms_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (tests/fuzz `created_at`, `uef_validator`): an offset that carries the time
    /// past year 9999 or before year 0 in UTC is refused, not a panic in the listener.
    #[test]
    fn offsets_past_the_year_range_are_refused() {
        for text in [
            "9999-12-31T23:30:00-01:00",
            "9999-12-31T23:30:00.000-01:00",
            "0000-01-01T00:30:00+01:00",
        ] {
            let err = parse_uef_time(text, true).unwrap_err();
            assert!(err.contains("outside years"), "{text}: {err}");
        }
        let edge = parse_uef_time("9999-12-31T22:59:59.999-01:00", true).unwrap();
        assert_eq!(format_ms_utc(edge), "9999-12-31T23:59:59.999Z");
    }

    const EXAMPLE: &str = r#"{"version":"v1","event_type":"INGRESS_AUTHENTICATION","time":"2024-05-02T21:03:11.000Z","account":"jdoe","account_domain":"CORP","source_ip":"198.51.100.23","authentication_result":"SUCCESS","authentication_target":"Box","custom_data":{"box_event_id":"8f0c3a1e-5b7d-4e0a-9c11-2d7b6f0e4a55","box_event_type":"LOGIN","box_user_id":"262196057","box_login":"jdoe@example.com","forwarder":"boxidr/0.1.0"}}"#;

    fn check(line: &str) -> Result<ValidUef, UefViolation> {
        validate_line(line, &UefRules::default(), SystemTime::now())
    }

    fn with(field: &str, v: Value) -> String {
        let mut obj: Value = serde_json::from_str(EXAMPLE).unwrap();
        obj[field] = v;
        obj.to_string()
    }

    fn without(field: &str) -> String {
        let mut obj: Value = serde_json::from_str(EXAMPLE).unwrap();
        obj.as_object_mut().unwrap().remove(field);
        obj.to_string()
    }

    /// The §6.3 example line is valid, with its id and time extracted.
    #[test]
    fn contract_example_is_valid() {
        let v = check(EXAMPLE).unwrap();
        assert_eq!(v.time_normalized, "2024-05-02T21:03:11.000Z");
        assert_eq!(
            v.box_event_id.as_deref(),
            Some("8f0c3a1e-5b7d-4e0a-9c11-2d7b6f0e4a55")
        );
    }

    /// Each required field, when absent, is reported by name.
    #[test]
    fn each_required_field_missing_is_named() {
        for f in [
            "version",
            "event_type",
            "time",
            "account",
            "source_ip",
            "authentication_result",
        ] {
            assert_eq!(
                check(&without(f)),
                Err(UefViolation::MissingField(match f {
                    "version" => "version",
                    "event_type" => "event_type",
                    "time" => "time",
                    "account" => "account",
                    "source_ip" => "source_ip",
                    _ => "authentication_result",
                })),
                "{f}"
            );
        }
    }

    /// Optional fields may be left out.
    #[test]
    fn optional_fields_may_be_absent() {
        for f in ["account_domain", "authentication_target", "custom_data"] {
            assert!(check(&without(f)).is_ok(), "{f}");
        }
    }

    /// The documented padding and truncation of fractional seconds.
    #[test]
    fn time_normalisation_follows_the_doc() {
        let cases = [
            ("2018-06-07T12:34:56.1Z", "2018-06-07T12:34:56.100Z"),
            ("2018-06-07T12:34:56.12Z", "2018-06-07T12:34:56.120Z"),
            ("2018-06-07T12:34:56Z", "2018-06-07T12:34:56.000Z"),
            ("2018-06-07T12:34:56.123456Z", "2018-06-07T12:34:56.123Z"),
            (
                "2018-06-07T12:34:56.999999999999Z",
                "2018-06-07T12:34:56.999Z",
            ),
        ];
        for (input, want) in cases {
            let got = check(&with("time", Value::from(input))).unwrap();
            assert_eq!(got.time_normalized, want, "{input}");
        }
    }

    /// Malformed, non-UTC, basic-format and impossible times are rejected.
    #[test]
    fn bad_times_are_rejected() {
        for bad in [
            "garbage",
            "",
            "2018-06-07",
            "2018-06-07T12:34Z",
            "2018-06-07 12:34:56.000Z",
            "2018-06-07t12:34:56.000Z",
            "2018-06-07T12:34:56.000z",
            "20180607T123456.000Z",
            "2018-06-07T12:34:56.Z",
            "2018-06-07T12:34:56.000",
            "2018-06-07T12:34:56.000+00:00",
            "2018-06-07T12:34:56.000-08:00",
            "2018-02-30T12:34:56.000Z",
            "2018-06-07T24:00:00.000Z",
            "2018-06-07T12:60:00.000Z",
            "2018-06-07T12:34:60.000Z",
            "2018-13-07T12:34:56.000Z",
            "2018-06-07T12:34:56.000Z ",
            "+2018-06-07T12:34:56.000Z",
        ] {
            assert!(
                matches!(
                    check(&with("time", Value::from(bad))),
                    Err(UefViolation::InvalidValue { field: "time", .. })
                ),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            check(&with("time", Value::from(1_714_683_791_000_u64))),
            Err(UefViolation::WrongType { field: "time", .. })
        ));
    }

    /// With `accept_offsets`, a numeric offset is converted to UTC.
    #[test]
    fn offsets_convert_when_allowed() {
        let rules = UefRules {
            accept_offsets: true,
            ..UefRules::default()
        };
        let v = validate_line(
            &with("time", Value::from("2024-05-02T14:03:11.5-07:00")),
            &rules,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(v.time_normalized, "2024-05-02T21:03:11.500Z");
    }

    /// IPv4 (public, private, loopback) and IPv4-mapped IPv6 are valid; IPv6 and junk are not.
    #[test]
    fn source_ip_rules() {
        for ok in [
            "198.51.100.23",
            "10.0.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "::ffff:198.51.100.23",
            "::FFFF:10.0.0.1",
            "::ffff:c633:6417",
        ] {
            assert!(check(&with("source_ip", Value::from(ok))).is_ok(), "{ok}");
        }
        for bad in [
            "2001:db8::1",
            "::1",
            "Unknown IP",
            "",
            "198.51.100.023",
            "198.51.100.23:443",
            "[::ffff:1.2.3.4]",
            "1.2.3",
            "256.1.1.1",
            "fe80::1%eth0",
            " 1.2.3.4",
        ] {
            assert!(
                matches!(
                    check(&with("source_ip", Value::from(bad))),
                    Err(UefViolation::InvalidValue {
                        field: "source_ip",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    /// account must be non-empty; account_domain null is fine, "" is not.
    #[test]
    fn account_and_domain_rules() {
        assert!(check(&with("account", Value::from(""))).is_err());
        assert!(check(&with("account", Value::from("   "))).is_err());
        assert!(check(&with("account", Value::Null)).is_err());
        assert!(check(&with("account_domain", Value::Null)).is_ok());
        assert!(check(&with("account_domain", Value::from(""))).is_err());
        assert!(check(&with("account_domain", Value::from(5))).is_err());
    }

    /// authentication_result is required and limited to SUCCESS/FAILURE.
    #[test]
    fn authentication_result_values() {
        assert!(check(&with("authentication_result", Value::from("FAILURE"))).is_ok());
        for bad in ["success", "OK", "", "FAILED"] {
            assert!(
                check(&with("authentication_result", Value::from(bad))).is_err(),
                "{bad}"
            );
        }
    }

    /// custom_data must be an object when present; authentication_target a non-empty string.
    #[test]
    fn custom_data_and_target_types() {
        for bad in [
            Value::Null,
            Value::from("x"),
            Value::from(1),
            serde_json::json!([1]),
        ] {
            assert!(check(&with("custom_data", bad.clone())).is_err(), "{bad}");
        }
        assert!(check(&with("custom_data", serde_json::json!({}))).is_ok());
        assert!(check(&with("authentication_target", Value::Null)).is_err());
        assert!(check(&with("authentication_target", Value::from(""))).is_err());
    }

    /// version/event_type must match exactly; non-objects and trailing data are rejected.
    #[test]
    fn envelope_rules() {
        assert!(check(&with("version", Value::from("v2"))).is_err());
        assert!(check(&with("version", Value::from("V1"))).is_err());
        assert!(check(&with("event_type", Value::from("VPN_SESSION_IP_ASSIGNED"))).is_err());
        assert!(check(&with("event_type", Value::from("ingress_authentication"))).is_err());
        assert_eq!(check("[]"), Err(UefViolation::NotObject));
        assert!(matches!(
            check(&format!("{EXAMPLE}{EXAMPLE}")),
            Err(UefViolation::NotJson(_))
        ));
        assert!(matches!(check("{"), Err(UefViolation::NotJson(_))));
    }

    /// Unknown fields are rejected unless allowed.
    #[test]
    fn unknown_fields() {
        let line = with("user_agent", Value::from("x"));
        assert_eq!(
            check(&line),
            Err(UefViolation::UnknownField("user_agent".into()))
        );
        let rules = UefRules {
            allow_unknown_fields: true,
            ..UefRules::default()
        };
        assert!(validate_line(&line, &rules, SystemTime::now()).is_ok());
    }

    /// The optional age window rejects old and future events.
    #[test]
    fn age_window() {
        let rules = UefRules {
            max_past: Some(Duration::from_secs(3600)),
            max_future: Some(Duration::from_secs(60)),
            ..UefRules::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_683_791);
        assert!(validate_line(EXAMPLE, &rules, now).is_ok());
        assert!(validate_line(EXAMPLE, &rules, now + Duration::from_secs(7200)).is_err());
        assert!(validate_line(EXAMPLE, &rules, now - Duration::from_secs(600)).is_err());
    }
}
