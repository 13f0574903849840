//! Box `created_at` text → time, both ways the appliance reads it: UEF time
//! (`boxidr_normalize::to_uef_time`) and the readers' stored UTC second
//! (`boxidr_boxapi::utc::{parse_utc, format_utc}`), checked against the InsightIDR
//! simulator's strict UEF time parser as a second, independent implementation.
//!
//! Invariants: nothing panics (issue 13: `9999-12-31T23:30:00-01:00` wedged a reader); a UEF
//! time is exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` and the simulator reads it back to the same text;
//! where both succeed the two forms name the same second; a timestamp the simulator accepts is
//! accepted by the appliance with the same UTC millisecond; `format_utc` is fixed width and
//! round-trips through `parse_utc`; `ms_to_utc` is the inverse of the simulator's parse.
#![no_main]

use boxidr_boxapi::utc::{format_utc, parse_utc};
use boxidr_normalize::{ms_to_utc, to_uef_time};
use idr_sim::uef::{format_ms_utc, parse_uef_time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 8 && data[0] == b'#' {
        // Milliseconds since the epoch, as the canary and `collected_at` use.
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&data[data.len() - 8..]);
        let ms = u64::from_le_bytes(ms);
        if let Some(text) = ms_to_utc(ms) {
            let parsed = parse_uef_time(&text, false).expect("the simulator reads our time");
            let back = parsed.unix_timestamp_nanos() / 1_000_000;
            assert_eq!(back, i128::from(ms), "{text}");
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let uef = to_uef_time(text);
    if let Ok(uef) = &uef {
        assert_eq!(uef.len(), 24, "{uef}");
        let parsed = parse_uef_time(uef, false)
            .unwrap_or_else(|e| panic!("the simulator refuses our UEF time {uef}: {e}"));
        assert_eq!(&format_ms_utc(parsed), uef);
    }
    if let Some(t) = parse_utc(text) {
        let stored = format_utc(t);
        assert_eq!(stored.len(), 20, "{stored}");
        let again = parse_utc(&stored).expect("stored form parses");
        assert_eq!(format_utc(again), stored, "format_utc is not idempotent");
        if let Ok(uef) = &uef {
            assert_eq!(&stored[..19], &uef[..19], "{text}: two readings disagree");
        }
    }
    // What the InsightIDR simulator accepts, the appliance must read the same way.
    if let Ok(strict) = parse_uef_time(text, true) {
        let ours = uef
            .as_ref()
            .unwrap_or_else(|e| panic!("simulator accepts {text:?}, we refuse: {e}"));
        assert_eq!(ours, &format_ms_utc(strict), "{text}");
    }
});
