//! Checks written from the contracts, independently of the crate's own code, that every
//! rendered line must pass. The UEF rules follow `shared/insightidr/CONTRACT.md` §1.1–1.2 as
//! the InsightIDR simulator (`tools/idr-sim`, module `uef`) reads them: only the nine known
//! fields, `Z` times with exactly three fraction digits, IPv4 `source_ip`, and so on.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The top-level fields `INGRESS_AUTHENTICATION` v1 knows.
pub const UEF_FIELDS: [&str; 9] = [
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

/// The `boxidr_kind` values a raw record may carry.
pub const KINDS: [&str; 5] = [
    "ingress",
    "admin_activity",
    "file_activity",
    "alert",
    "other",
];

/// One line of one JSON object: no LF/CR byte, at most `cap` bytes.
pub fn check_framing(line: &str, cap: usize) -> Result<Map<String, Value>, String> {
    if line.contains(['\n', '\r']) {
        return Err(format!("line break inside the line: {line:?}"));
    }
    if line.len() > cap {
        return Err(format!("{} bytes, over the cap of {cap}", line.len()));
    }
    for c in [
        '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}', '\u{2066}', '\u{feff}',
    ] {
        if line.contains(c) {
            return Err(format!("raw {c:?} in the line"));
        }
    }
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// A UEF line InsightIDR (and idr-sim) would accept; returns the parsed object.
pub fn check_uef(line: &str) -> Result<Map<String, Value>, String> {
    let obj = check_framing(line, 16 * 1024)?;
    if let Some(extra) = obj.keys().find(|k| !UEF_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown top-level field {extra}"));
    }
    let string = |field: &str| -> Result<&str, String> {
        obj.get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field} missing or not a string"))
    };
    if string("version")? != "v1" {
        return Err("version is not v1".into());
    }
    if string("event_type")? != "INGRESS_AUTHENTICATION" {
        return Err("event_type is not INGRESS_AUTHENTICATION".into());
    }
    let time = string("time")?;
    check_uef_time(time)?;
    if string("account")?.trim().is_empty() {
        return Err("account is empty".into());
    }
    match obj.get("account_domain") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(other) => return Err(format!("account_domain {other} is not null or non-empty")),
    }
    let ip = string("source_ip")?;
    if ip.parse::<Ipv4Addr>().is_err() {
        return Err(format!(
            "source_ip {ip:?} is not a dotted-quad IPv4 address"
        ));
    }
    let result = string("authentication_result")?;
    if result != "SUCCESS" && result != "FAILURE" {
        return Err(format!("authentication_result {result:?}"));
    }
    match obj.get("authentication_target") {
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(other) => return Err(format!("authentication_target {other}")),
    }
    match obj.get("custom_data") {
        None | Some(Value::Object(_)) => {}
        Some(other) => return Err(format!("custom_data {other} is not an object")),
    }
    Ok(obj)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, a real UTC instant, byte for byte.
pub fn check_uef_time(time: &str) -> Result<OffsetDateTime, String> {
    let b = time.as_bytes();
    let shape_ok = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!("time {time:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"));
    }
    OffsetDateTime::parse(time, &Rfc3339).map_err(|e| format!("time {time:?}: {e}"))
}

/// A raw record with the documented fixed fields; returns the parsed object.
pub fn check_raw(line: &str, cap: usize) -> Result<Map<String, Value>, String> {
    let obj = check_framing(line, cap)?;
    let kind = obj
        .get("boxidr_kind")
        .and_then(Value::as_str)
        .ok_or("boxidr_kind missing")?;
    if !KINDS.contains(&kind) {
        return Err(format!("boxidr_kind {kind:?}"));
    }
    if !obj.get("collected_at_ms").is_some_and(Value::is_u64) {
        return Err("collected_at_ms missing".into());
    }
    if let Some(time) = obj.get("event_time").and_then(Value::as_str) {
        check_uef_time(time)?;
    }
    if let Some(time) = obj.get("collected_at").and_then(Value::as_str) {
        check_uef_time(time)?;
    }
    let truncated = obj.get("truncated") == Some(&Value::Bool(true));
    let has_event = obj.contains_key("event") || obj.contains_key("event_text");
    if !truncated && !has_event {
        return Err("no event and not marked truncated".into());
    }
    Ok(obj)
}

/// The instant of a Box time, truncated to milliseconds, computed with `time` directly.
pub fn box_instant_ms(box_time: &str) -> Option<i128> {
    let t = OffsetDateTime::parse(box_time, &Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos().div_euclid(1_000_000))
}
