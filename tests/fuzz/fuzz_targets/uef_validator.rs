//! The InsightIDR simulator's UEF validator (`idr_sim::uef::validate_line`), the referee of
//! every delivery count in the tests: one framed line, with fuzzed strictness rules.
//!
//! Invariants: it never panics (a panic would take the Collector listener's connection task
//! down and lose the count); an accepted line is a JSON object with `version` `v1` and
//! `event_type` `INGRESS_AUTHENTICATION`; without `allow_unknown_fields` it has only the known
//! top-level fields; the normalised time is `YYYY-MM-DDTHH:MM:SS.mmmZ` and reads back to itself;
//! a line accepted under strict rules is accepted under lenient ones too.
#![no_main]

use std::time::{Duration, SystemTime};

use idr_sim::uef::{KNOWN_FIELDS, UefRules, format_ms_utc, parse_uef_time, validate_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(rest) else {
        return;
    };
    let rules = UefRules {
        accept_offsets: flags & 1 != 0,
        allow_unknown_fields: flags & 2 != 0,
        max_past: (flags & 4 != 0).then(|| Duration::from_secs(u64::from(flags) * 86_400)),
        max_future: (flags & 8 != 0).then(|| Duration::from_secs(u64::from(flags) * 3_600)),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let Ok(valid) = validate_line(line, &rules, now) else {
        return;
    };
    let object = valid.value.as_object().expect("accepted line is an object");
    assert_eq!(object.get("version").and_then(|v| v.as_str()), Some("v1"));
    assert_eq!(
        object.get("event_type").and_then(|v| v.as_str()),
        Some("INGRESS_AUTHENTICATION")
    );
    if !rules.allow_unknown_fields {
        assert!(object.keys().all(|k| KNOWN_FIELDS.contains(&k.as_str())));
    }
    let t = &valid.time_normalized;
    assert_eq!(t.len(), 24, "{t}");
    let again = parse_uef_time(t, false).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(&format_ms_utc(again), t);
    if let Some(id) = &valid.box_event_id {
        assert!(!id.is_empty());
    }
    let lenient = UefRules {
        accept_offsets: true,
        allow_unknown_fields: true,
        max_past: None,
        max_future: None,
    };
    assert!(
        validate_line(line, &lenient, now).is_ok(),
        "accepted strictly but not leniently"
    );
});
