//! A Box `GET /events` page body → events, as both readers take it
//! (`boxidr_boxapi::events::parse_page`, then the flagged copies of unusable entries and the
//! page's newest `created_at` in the stored UTC form).
//!
//! Invariants: parsing never panics; every entry is either an event or rejected (none
//! vanishes); every rejected entry becomes exactly one flagged event (ARCHITECTURE invariant 6:
//! kept, not dropped); an event's JSON text reads back as the same event; a legacy `0` cursor is
//! never reported as a position; the newest `created_at` formats to fixed-width UTC text that
//! parses back (the class of `9999-12-31T23:30:00-01:00`, issue 13).
#![no_main]

use boxidr_boxapi::events::{FLAG_KEY, FLAGGED_ID_PREFIX, flag_rejected, parse_page};
use boxidr_boxapi::utc::{format_utc, parse_utc};
use boxidr_model::BoxEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(page) = parse_page(body) else {
        return;
    };
    assert_eq!(
        page.events.len() + page.rejected.len(),
        page.entry_count,
        "an entry vanished"
    );
    if let Some(position) = &page.next_position {
        assert!(!position.is_reset(), "legacy zero cursor kept: {position}");
    }
    for event in &page.events {
        let text = event.to_json();
        let value: serde_json::Value = serde_json::from_str(&text).expect("event JSON re-reads");
        let again = BoxEvent::from_value(value).expect("event re-parses");
        assert_eq!(again.id(), event.id());
        assert_eq!(&again, event);
    }
    let flagged = flag_rejected(&page.rejected);
    assert_eq!(
        flagged.len(),
        page.rejected.len(),
        "a rejected entry was dropped instead of flagged"
    );
    for event in &flagged {
        assert!(event.id().as_str().starts_with(FLAGGED_ID_PREFIX));
        assert!(event.raw().contains_key(FLAG_KEY));
    }
    // What both readers store as the page's newest `created_at`.
    let newest = page
        .events
        .iter()
        .filter_map(|e| e.created_at().and_then(parse_utc))
        .max();
    if let Some(newest) = newest {
        let text = format_utc(newest);
        assert_eq!(text.len(), 20, "not fixed width: {text}");
        assert!(text.ends_with('Z'));
        assert!(parse_utc(&text).is_some(), "{text} does not parse back");
    }
});
