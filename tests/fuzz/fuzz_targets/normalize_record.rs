//! A queued record (Box's event JSON as stored) → what both sinks send
//! (`boxidr_normalize::render_record`), under fuzzed settings and a directory that knows every
//! user or nobody.
//!
//! Invariants: rendering is total (never panics); every line is one line (no CR, LF, NUL or
//! other control character, no U+0085/U+2028/U+2029, bidi control or BOM left raw), valid JSON,
//! and within its cap; a UEF line passes the InsightIDR simulator's strict validator (InsightIDR
//! drops invalid UEF silently) and names the event's id; nothing is dropped silently: a
//! malformed record and an ingress event refused as UEF still go to Log Search, and only an
//! out-of-scope event renders to nothing.
#![no_main]

use std::time::{Duration, SystemTime};

use boxidr_config::{AccountFormat, Mapping};
use boxidr_model::BoxEvent;
use boxidr_normalize::{
    DirectoryUser, FnDirectory, NoDirectory, RAW_MIN_LINE_BYTES, Rendered, Settings,
    UEF_MAX_LINE_BYTES, render_record,
};
use idr_sim::uef::{UefRules, validate_line};
use libfuzzer_sys::fuzz_target;

/// Characters no line may carry raw.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn one_line(what: &str, line: &str, cap: usize) {
    assert!(
        line.len() <= cap,
        "{what} is {} bytes, cap {cap}",
        line.len()
    );
    if let Some(c) = line.chars().find(|&c| forbidden(c)) {
        panic!("{what} carries {c:?} raw: {line}");
    }
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {line}"));
    assert!(value.is_object(), "{what} is not an object");
}

fn render(json: &str, flags: u8, settings: &Settings) -> Rendered {
    let collected_at_ms = 1_780_000_000_000 + u64::from(flags);
    if flags & 16 != 0 {
        let everyone = FnDirectory(|id: &str| {
            Some(DirectoryUser {
                login: Some(format!("{id}@example.com")),
                name: Some(format!("User {id}")),
                ..DirectoryUser::default()
            })
        });
        render_record(json, collected_at_ms, &everyone, settings)
    } else {
        render_record(json, collected_at_ms, &NoDirectory, settings)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(rest) else {
        return;
    };
    let mut settings = Settings::from_mapping(&Mapping::default(), "0.1.0-fuzz");
    settings.send_unparsed = flags & 1 != 0;
    settings.oauth_as_ingress = flags & 2 != 0;
    if flags & 4 != 0 {
        settings.account_format = AccountFormat::Upn;
    }
    if flags & 8 != 0 {
        settings.raw_max_line_bytes = RAW_MIN_LINE_BYTES;
        settings.default_domain = Some("CORP".to_owned());
    }
    let rendered = render(json, flags, &settings);

    if let Some(uef) = &rendered.uef {
        one_line("UEF line", uef, UEF_MAX_LINE_BYTES);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let valid = validate_line(uef, &UefRules::default(), now)
            .unwrap_or_else(|e| panic!("InsightIDR would drop our UEF ({e}): {uef}"));
        let event = serde_json::from_str(json)
            .ok()
            .and_then(|v| BoxEvent::from_value(v).ok());
        let event = event.expect("a UEF line comes from a usable event");
        assert_eq!(valid.box_event_id.as_deref(), Some(event.id().as_str()));
        assert!(rendered.malformed.is_none());
    }
    if let Some(raw) = &rendered.raw {
        one_line("raw record", raw, settings.raw_cap());
    }
    if rendered.out_of_scope {
        assert!(rendered.uef.is_none() && rendered.raw.is_none());
    }
    if rendered.malformed.is_some() {
        assert!(rendered.raw.is_some(), "a malformed record was dropped");
    }
    if rendered.uef_rejected.is_some() {
        assert!(
            rendered.raw.is_some(),
            "a refused ingress event was dropped"
        );
        assert!(rendered.uef.is_none());
    }
});
