//! Raw records for Log Search: one JSON object per Box event, carrying the original event.
//!
//! Shape (fields in this order; optional ones are left out when they do not apply):
//!
//! ```json
//! {"boxidr_kind":"ingress","forwarder":"boxidr/0.1.0","event_id":"…","event_type":"LOGIN",
//!  "event_time":"2024-03-05T16:14:22.000Z","event_time_field":"created_at",
//!  "collected_at":"2024-03-05T16:15:00.000Z","collected_at_ms":1709655300000,
//!  "account":"alice","account_domain":"CORP","box_user_id":"14750419433",
//!  "box_login":"alice@example.com","box_admin":false,"box_user_disabled":false,
//!  "uef_rejected":"source_ip_not_ipv4","event":{…Box's event…}}
//! ```
//!
//! - `event_time` is the event's own time in UTC (`null` when Box gave none that parses;
//!   `event_time_field` names the field tried). `collected_at` is when the appliance fetched
//!   it. `alert_time` is a Shield alert's own `created_at`.
//! - `shield` unpacks a Shield alert: rule, risk, priority, the users and IPs involved,
//!   countries, items, malware ([`crate::shield`]); `event` keeps the alert as Box sent it.
//! - `account`/`account_domain` are the actor's mapped account, as a UEF line would carry it.
//! - `malformed` (with `event_text` instead of `event` when the text is not JSON) marks a
//!   queued record that is not a usable Box event (ARCHITECTURE invariant 6).
//! - `"boxidr_canary":true` marks the verifier's synthetic records ([`crate::canary`]).
//! - A record longer than [`Settings::raw_cap`] is cut to fit and says so with
//!   `"truncated":true`, `truncation` (`strings`: long strings inside `event` were shortened
//!   and end in `…[truncated]`; `event_text`: `event` was replaced by a prefix of its JSON
//!   text; `event_dropped`: nothing of it fit) and `event_bytes` (the original event's size).
//!   Derived fields are capped at [`MAX_FIELD_CHARS`] characters, so the fixed part of a
//!   record always fits and every record is valid JSON.

use boxidr_model::BoxEvent;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::actor::Actor;
use crate::directory::UserDirectory;
use crate::kind::kind;
use crate::line::{cap_chars, prefix_bytes, to_line};
use crate::settings::Settings;
use crate::shield::{Shield, shield_of};
use crate::time_utc::{event_time, ms_to_utc, shield_alert_time};
use crate::uef::Reason;

/// Longest derived text field of a raw record (account, login, ids, event type), in
/// characters.
pub const MAX_FIELD_CHARS: usize = 128;

/// Appended to every string shortened inside `event`.
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// Why a queued record is not a usable Box event. Stable string forms, as for [`Reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Malformed {
    /// The text is not JSON (or nests deeper than the parser allows).
    NotJson,
    /// JSON, but not an object.
    NotAnObject,
    /// No `event_id` (string or integer).
    MissingEventId,
    /// `event_id` is empty, longer than 128 bytes, or holds control characters.
    BadEventId,
}

impl Malformed {
    /// Every variant, in a stable order.
    pub const ALL: [Malformed; 4] = [
        Malformed::NotJson,
        Malformed::NotAnObject,
        Malformed::MissingEventId,
        Malformed::BadEventId,
    ];

    /// The stable snake_case name, written as `malformed` into the raw record.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingEventId => "missing_event_id",
            Self::BadEventId => "bad_event_id",
        }
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&boxidr_model::EventError> for Malformed {
    fn from(err: &boxidr_model::EventError) -> Self {
        match err {
            boxidr_model::EventError::NotAnObject => Self::NotAnObject,
            boxidr_model::EventError::MissingEventId => Self::MissingEventId,
            boxidr_model::EventError::BadEventId => Self::BadEventId,
        }
    }
}

/// A rendered raw record: one line of JSON (no trailing newline), at most the raw cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// The JSON text.
    pub text: String,
    /// Whether anything of the event was cut to fit.
    pub truncated: bool,
}

/// Renders any Box event as a raw record. `uef_rejected` is the reason an ingress event was
/// not sent as UEF (pass `None` for [`Reason::NotIngress`]).
pub fn render_raw<D: UserDirectory + ?Sized>(
    event: &BoxEvent,
    directory: &D,
    settings: &Settings,
    collected_at_ms: u64,
    uef_rejected: Option<Reason>,
) -> RawLine {
    let actor = Actor::of(event, directory);
    render_with_actor(
        event,
        actor.as_ref(),
        settings,
        collected_at_ms,
        uef_rejected,
    )
}

/// The original event, borrowed or (after shrinking) owned.
#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Map(&'a Map<String, Value>),
    Value(&'a Value),
    Owned(Value),
}

#[derive(Serialize)]
struct Raw<'a> {
    boxidr_kind: &'static str,
    forwarder: &'a str,
    event_id: Option<String>,
    event_type: Option<String>,
    event_time: Option<String>,
    event_time_field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_time: Option<String>,
    /// A Shield alert unpacked ([`crate::shield`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    shield: Option<Shield>,
    collected_at: Option<String>,
    collected_at_ms: u64,
    account: Option<String>,
    account_domain: Option<&'a str>,
    box_user_id: Option<String>,
    box_login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    box_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    box_user_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uef_rejected: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    malformed: Option<&'static str>,
    /// The verifier's synthetic record (see [`crate::canary`]), never Box activity.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    boxidr_canary: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncation: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<Body<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_text: Option<String>,
}

fn capped(text: &str) -> String {
    cap_chars(text, MAX_FIELD_CHARS).0
}

pub(crate) fn render_with_actor(
    event: &BoxEvent,
    actor: Option<&Actor>,
    settings: &Settings,
    collected_at_ms: u64,
    uef_rejected: Option<Reason>,
) -> RawLine {
    let time = event_time(event);
    let account = actor
        .and_then(|a| a.account(settings.account_format))
        .filter(|a| !a.trim().is_empty())
        .map(|a| capped(&a));
    let record = Raw {
        boxidr_kind: kind(event).as_str(),
        forwarder: &settings.forwarder,
        event_id: Some(capped(event.id().as_str())),
        event_type: event.event_type().map(capped),
        event_time: time.as_ref().and_then(|t| t.utc.clone().ok()),
        event_time_field: time.as_ref().map(|t| t.field.as_str()),
        alert_time: shield_alert_time(event),
        shield: shield_of(event),
        collected_at: ms_to_utc(collected_at_ms),
        collected_at_ms,
        // A domain without an account would attribute nothing.
        account_domain: actor
            .filter(|_| account.is_some())
            .and_then(|a| a.domain(settings)),
        account,
        box_user_id: actor.and_then(|a| a.id.as_deref()).map(capped),
        box_login: actor.and_then(|a| a.login.as_deref()).map(capped),
        box_admin: actor.and_then(|a| a.user.as_ref()?.is_admin()),
        box_user_disabled: actor.and_then(|a| a.user.as_ref()?.is_disabled()),
        uef_rejected: uef_rejected
            .filter(|r| *r != Reason::NotIngress)
            .map(Reason::as_str),
        malformed: None,
        boxidr_canary: crate::canary::is_canary(event),
        truncated: false,
        truncation: None,
        event_bytes: None,
        event: Some(Body::Map(event.raw())),
        event_text: None,
    };
    fit(record, settings.raw_cap())
}

/// The raw record of a queued record that is not a usable Box event: the parsed JSON when it
/// is JSON, else the text itself (both size-capped), flagged with `malformed`.
pub(crate) fn render_malformed(
    text: &str,
    parsed: Option<&Value>,
    why: Malformed,
    settings: &Settings,
    collected_at_ms: u64,
) -> RawLine {
    let obj = parsed.and_then(Value::as_object);
    let field = |key: &str| obj.and_then(|o| o.get(key));
    let event_id = field("event_id").and_then(|v| match v {
        Value::String(s) => Some(capped(s)),
        Value::Number(n) => Some(capped(&n.to_string())),
        _ => None,
    });
    let event_type = field("event_type").and_then(Value::as_str);
    let record = Raw {
        boxidr_kind: crate::kind::kind_of_type(event_type).as_str(),
        forwarder: &settings.forwarder,
        event_id,
        event_type: event_type.map(capped),
        event_time: None,
        event_time_field: None,
        alert_time: None,
        shield: None,
        collected_at: ms_to_utc(collected_at_ms),
        collected_at_ms,
        account: None,
        account_domain: None,
        box_user_id: None,
        box_login: None,
        box_admin: None,
        box_user_disabled: None,
        uef_rejected: None,
        malformed: Some(why.as_str()),
        boxidr_canary: false,
        truncated: false,
        truncation: None,
        event_bytes: None,
        event: parsed.map(Body::Value),
        event_text: parsed.is_none().then(|| text.to_owned()),
    };
    fit(record, settings.raw_cap())
}

/// Serialises `record`, cutting the event down until the line fits in `cap` bytes.
fn fit(mut record: Raw<'_>, cap: usize) -> RawLine {
    if let Some(text) = line_within(&record, cap) {
        return RawLine {
            text,
            truncated: false,
        };
    }
    let original = match (&record.event, &record.event_text) {
        (Some(body), _) => to_line(body).unwrap_or_default(),
        (None, Some(text)) => text.clone(),
        (None, None) => String::new(),
    };
    record.truncated = true;
    record.event_bytes = Some(original.len());

    // 1. Shorten long strings inside the event, keeping its structure.
    if let Some(value) = record.event.as_ref().map(body_value) {
        record.truncation = Some("strings");
        for max in [4096, 1024, 256, 64, 16] {
            record.event = Some(Body::Owned(shrink_strings(&value, max)));
            if let Some(text) = line_within(&record, cap) {
                return RawLine {
                    text,
                    truncated: true,
                };
            }
        }
    }

    // 2. Replace it by a prefix of its JSON text.
    record.event = None;
    record.event_text = None;
    record.truncation = Some("event_dropped");
    let Some(base) = line_within(&record, cap) else {
        return last_resort(&record, cap);
    };
    record.truncation = Some("event_text");
    // `,"event_text":""` adds 16 bytes (and `event_dropped` is 3 bytes longer than
    // `event_text`). Escaping only grows the text: start from the room left and scale the
    // prefix down by how much its escaped form overshot.
    let available = cap.saturating_sub(base.len() + 16);
    let mut room = available;
    for _ in 0..64 {
        if room == 0 {
            break;
        }
        record.event_text = Some(prefix_bytes(&original, room).to_owned());
        match to_line(&record) {
            Ok(text) if text.len() <= cap => {
                return RawLine {
                    text,
                    truncated: true,
                };
            }
            Ok(text) => {
                let used = text.len().saturating_sub(base.len() + 16).max(1);
                let scaled = room.saturating_mul(available) / used;
                room = scaled.min(room - 1);
            }
            Err(_) => break,
        }
    }
    record.event_text = None;
    record.truncation = Some("event_dropped");
    RawLine {
        text: base,
        truncated: true,
    }
}

fn line_within(record: &Raw<'_>, cap: usize) -> Option<String> {
    to_line(record).ok().filter(|text| text.len() <= cap)
}

/// Never reached with capped fields and the minimum cap; keeps the "always a valid line
/// under the cap" promise unconditional anyway.
fn last_resort(record: &Raw<'_>, cap: usize) -> RawLine {
    let minimal = serde_json::json!({
        "boxidr_kind": record.boxidr_kind,
        "collected_at_ms": record.collected_at_ms,
        "malformed": record.malformed,
        "truncated": true,
        "truncation": "event_dropped",
    });
    let text = to_line(&minimal).unwrap_or_default();
    RawLine {
        text: if text.len() <= cap {
            text
        } else {
            String::from("{}")
        },
        truncated: true,
    }
}

fn body_value(body: &Body<'_>) -> Value {
    match body {
        Body::Map(map) => Value::Object((*map).clone()),
        Body::Value(value) => (*value).clone(),
        Body::Owned(value) => value.clone(),
    }
}

/// A copy of `value` whose strings (values and keys) longer than `max` characters are cut and
/// end in [`TRUNCATION_MARK`].
fn shrink_strings(value: &Value, max: usize) -> Value {
    let cut = |text: &str| match cap_chars(text, max) {
        (short, true) => short + TRUNCATION_MARK,
        (same, false) => same,
    };
    match value {
        Value::String(s) => Value::String(cut(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| shrink_strings(v, max)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (cut(k), shrink_strings(v, max)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::directory::NoDirectory;
    use crate::settings::RAW_MIN_LINE_BYTES;

    fn event(value: Value) -> BoxEvent {
        BoxEvent::from_value(value).unwrap()
    }

    fn small_cap() -> Settings {
        Settings {
            raw_max_line_bytes: RAW_MIN_LINE_BYTES,
            forwarder: "boxidr/test".into(),
            ..Settings::default()
        }
    }

    fn parse(line: &RawLine) -> Value {
        assert!(!line.text.contains(['\n', '\r']));
        serde_json::from_str(&line.text).unwrap()
    }

    /// A small event is carried whole, with event and collection times apart.
    #[test]
    fn whole_event() {
        let e = event(json!({"event_id": "1", "event_type": "UPLOAD",
            "created_at": "2024-03-05T10:01:17-08:00",
            "created_by": {"id": "5", "login": "bob@example.com"}}));
        let line = render_raw(&e, &NoDirectory, &small_cap(), 1_709_661_700_000, None);
        assert!(!line.truncated);
        let v = parse(&line);
        assert_eq!(v["boxidr_kind"], "file_activity");
        assert_eq!(v["event_time"], "2024-03-05T18:01:17.000Z");
        assert_eq!(v["collected_at"], "2024-03-05T18:01:40.000Z");
        assert_eq!(v["account"], "bob");
        assert_eq!(v["event"], Value::Object(e.raw().clone()));
        assert!(v.get("truncated").is_none());
        assert!(v.get("uef_rejected").is_none());
    }

    /// One huge string is shortened in place; the structure stays.
    #[test]
    fn long_strings_are_shortened() {
        let e = event(json!({"event_id": "1", "event_type": "UPLOAD",
            "source": {"item_name": "n".repeat(200_000)}}));
        let line = render_raw(&e, &NoDirectory, &small_cap(), 0, None);
        assert!(line.truncated);
        assert!(line.text.len() <= RAW_MIN_LINE_BYTES);
        let v = parse(&line);
        assert_eq!(v["truncated"], true);
        assert_eq!(v["truncation"], "strings");
        assert!(v["event_bytes"].as_u64().unwrap() > 200_000);
        let name = v["event"]["source"]["item_name"].as_str().unwrap();
        assert!(name.ends_with(TRUNCATION_MARK));
        assert_eq!(v["event"]["event_id"], "1");
    }

    /// Many small values cannot be shortened: a prefix of the event's text is kept instead.
    #[test]
    fn wide_events_become_text() {
        let wide: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
        let e = event(json!({"event_id": "1", "event_type": "SHIELD_ALERT", "list": wide}));
        let line = render_raw(&e, &NoDirectory, &small_cap(), 0, None);
        assert!(line.truncated);
        assert!(line.text.len() <= RAW_MIN_LINE_BYTES);
        let v = parse(&line);
        assert_eq!(v["truncation"], "event_text");
        assert_eq!(v["boxidr_kind"], "alert");
        let text = v["event_text"].as_str().unwrap();
        assert!(text.len() > RAW_MIN_LINE_BYTES / 2, "{}", text.len());
        assert!(e.to_json().starts_with(text));
    }

    /// Escaping that multiplies the size (control characters) still ends under the cap.
    #[test]
    fn escape_heavy_text_fits() {
        let text = "\u{1}".repeat(100_000);
        let line = render_malformed(&text, None, Malformed::NotJson, &small_cap(), 0);
        assert!(line.truncated);
        assert!(line.text.len() <= RAW_MIN_LINE_BYTES, "{}", line.text.len());
        let v = parse(&line);
        assert_eq!(v["malformed"], "not_json");
        assert_eq!(v["truncation"], "event_text");
        assert!(v["event_text"].as_str().unwrap().len() > 1000);
    }

    /// Malformed records keep what was parsed, classified when possible.
    #[test]
    fn malformed_records() {
        let parsed = json!({"event_type": "LOGIN", "event_id": ""});
        let line = render_malformed(
            "ignored",
            Some(&parsed),
            Malformed::BadEventId,
            &small_cap(),
            5,
        );
        let v = parse(&line);
        assert_eq!(v["malformed"], "bad_event_id");
        assert_eq!(v["boxidr_kind"], "ingress");
        assert_eq!(v["event"], parsed);
        assert_eq!(v["collected_at_ms"], 5);
        let line = render_malformed(
            "[1,2]",
            Some(&json!([1, 2])),
            Malformed::NotAnObject,
            &small_cap(),
            5,
        );
        let v = parse(&line);
        assert_eq!(v["boxidr_kind"], "other");
        assert_eq!(v["event"], json!([1, 2]));
    }

    /// The rejection reason is written for ingress events refused as UEF, never `not_ingress`.
    #[test]
    fn uef_rejected_field() {
        let e = event(json!({"event_id": "1", "event_type": "LOGIN"}));
        let v = parse(&render_raw(
            &e,
            &NoDirectory,
            &small_cap(),
            0,
            Some(Reason::SourceIpNotIpv4),
        ));
        assert_eq!(v["uef_rejected"], "source_ip_not_ipv4");
        let v = parse(&render_raw(
            &e,
            &NoDirectory,
            &small_cap(),
            0,
            Some(Reason::NotIngress),
        ));
        assert!(v.get("uef_rejected").is_none());
    }

    /// Malformed variant names are stable and map from the model's errors.
    #[test]
    fn malformed_names() {
        assert_eq!(
            Malformed::from(&boxidr_model::EventError::MissingEventId).as_str(),
            "missing_event_id"
        );
        let names: std::collections::BTreeSet<_> =
            Malformed::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names.len(), Malformed::ALL.len());
    }
}
