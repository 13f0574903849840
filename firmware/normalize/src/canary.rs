//! Canary records: synthetic events the appliance queues itself so that the verifier can look
//! for them in InsightIDR (`shared/insightidr/CONTRACT.md` §3.3, §6.1 item 4).
//!
//! A canary travels the real path (queue → render → both sinks), so it must render like a Box
//! event, yet nobody reading InsightIDR may mistake it for real activity. Every canary:
//!
//! - has an `event_id` that starts with [`CANARY_ID_PREFIX`] (Box ids are UUIDs or hex, never
//!   this) and carries `"boxidr_canary": true` at the top level; [`is_canary`] wants both;
//! - is done by a user that cannot exist in Box: id `boxidr-canary` (Box user ids are
//!   numeric), login `boxidr-canary@canary.invalid` (`.invalid` is reserved, RFC 2606), from
//!   `192.0.2.1` (TEST-NET-1, RFC 5737: documentation only, never routed);
//! - renders with `"boxidr_canary": true` in the UEF line's `custom_data` and in the raw
//!   record, and always gets a raw record, whatever "send unparsed logs" says.
//!
//! [`events`] builds one round: a `LOGIN` (a UEF line for the Collector and a raw copy for Log
//! Search) and a `BOXIDR_CANARY` event (raw only), both carrying the round's marker in their ids.

use boxidr_model::BoxEvent;
use serde_json::{Value, json};

use crate::time_utc::ms_to_utc;

/// Start of every canary event id (and of the marker the verifier searches for).
pub const CANARY_ID_PREFIX: &str = "boxidr-canary-";

/// The `event_type` of the raw-only canary (not a Box event type).
pub const CANARY_EVENT_TYPE: &str = "BOXIDR_CANARY";

/// The synthetic actor's login; `.invalid` can never be a real mailbox.
pub const CANARY_LOGIN: &str = "boxidr-canary@canary.invalid";

/// The synthetic source address (TEST-NET-1, documentation only).
pub const CANARY_IP: &str = "192.0.2.1";

/// Whether `event` is a canary the appliance made (id prefix and flag both present).
pub fn is_canary(event: &BoxEvent) -> bool {
    is_canary_id(event.id().as_str())
        && event.raw().get("boxidr_canary").and_then(Value::as_bool) == Some(true)
}

/// Whether an event id is shaped like a canary's (for counting at the simulators).
pub fn is_canary_id(id: &str) -> bool {
    id.starts_with(CANARY_ID_PREFIX)
}

/// One canary round for `marker` (which must start with [`CANARY_ID_PREFIX`]), timed
/// `now_ms`: a `LOGIN` and a raw-only `BOXIDR_CANARY` event, both with ids `<marker>-…`.
pub fn events(marker: &str, now_ms: u64) -> Vec<Value> {
    let created_at = ms_to_utc(now_ms);
    let actor = json!({
        "type": "user",
        "id": "boxidr-canary",
        "name": "boxidr canary (synthetic, not a person)",
        "login": CANARY_LOGIN,
    });
    let common = |suffix: &str, event_type: &str| {
        json!({
            "type": "event",
            "event_id": format!("{marker}-{suffix}"),
            "event_type": event_type,
            "created_at": created_at,
            "created_by": actor,
            "ip_address": CANARY_IP,
            "session_id": marker,
            "boxidr_canary": true,
            "boxidr_canary_marker": marker,
            "additional_details": {
                "note": "Synthetic record sent by the boxidr appliance to confirm delivery; not Box activity."
            },
        })
    };
    vec![common("login", "LOGIN"), common("raw", CANARY_EVENT_TYPE)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::NoDirectory;
    use crate::record::render_record;

    const MARKER: &str = "boxidr-canary-00112233445566778899aabbccddeeff";

    use crate::settings::test_settings as settings;

    /// The login renders to a valid UEF line and a raw record, both marked as a canary and
    /// carrying the marker; the raw-only event is sent even with "send unparsed logs" off.
    #[test]
    fn a_round_renders_marked_for_both_sinks() {
        let events = events(MARKER, 1_714_683_600_123);
        assert_eq!(events.len(), 2);
        for send_unparsed in [true, false] {
            let login = render_record(
                &events[0].to_string(),
                0,
                &NoDirectory,
                &settings(send_unparsed),
            );
            let uef: Value = serde_json::from_str(login.uef.as_deref().unwrap()).unwrap();
            assert_eq!(uef["event_type"], "INGRESS_AUTHENTICATION");
            assert_eq!(uef["time"], "2024-05-02T21:00:00.123Z");
            assert_eq!(uef["account"], "boxidr-canary");
            assert_eq!(uef["source_ip"], CANARY_IP);
            assert_eq!(uef["custom_data"]["boxidr_canary"], true);
            assert!(login.uef.unwrap().contains(MARKER));
            let raw: Value = serde_json::from_str(login.raw.as_deref().unwrap()).unwrap();
            assert_eq!(raw["boxidr_canary"], true);
            assert_eq!(raw["boxidr_kind"], "ingress");

            let other = render_record(
                &events[1].to_string(),
                0,
                &NoDirectory,
                &settings(send_unparsed),
            );
            assert!(other.uef.is_none());
            assert_eq!(other.uef_rejected, None);
            let raw = other.raw.expect("a canary always gets a raw record");
            assert!(raw.contains(MARKER));
            let raw: Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(raw["boxidr_canary"], true);
            assert_eq!(raw["event_type"], CANARY_EVENT_TYPE);
        }
    }

    /// Only the appliance's own records are canaries: the flag without the id prefix (or the
    /// prefix without the flag) is ordinary Box data, rendered without the mark.
    #[test]
    fn recognition_needs_prefix_and_flag() {
        let ok = BoxEvent::from_value(events(MARKER, 0).remove(0)).unwrap();
        assert!(is_canary(&ok));
        let flag_only = BoxEvent::from_value(
            json!({"event_id": "1", "event_type": "LOGIN", "boxidr_canary": true}),
        )
        .unwrap();
        assert!(!is_canary(&flag_only));
        let prefix_only = json!({"event_id": format!("{MARKER}-x"), "event_type": "UPLOAD",
            "boxidr_canary": "true"});
        assert!(!is_canary(
            &BoxEvent::from_value(prefix_only.clone()).unwrap()
        ));
        let r = render_record(&prefix_only.to_string(), 0, &NoDirectory, &settings(true));
        let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw.get("boxidr_canary"), None);
        assert!(
            render_record(&prefix_only.to_string(), 0, &NoDirectory, &settings(false))
                .raw
                .is_none()
        );
    }
}
