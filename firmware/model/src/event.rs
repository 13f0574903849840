//! A Box enterprise event: the original JSON, kept whole, plus lenient typed views.
//!
//! The queue stores Box's own event (ARCHITECTURE invariant 1); sinks render it at send time.
//! Fields are read leniently because Box's payloads drift (`shared/box/CONTRACT.md` §2.5): ids
//! arrive as strings or numbers, `created_by`, `source` and `additional_details` may be absent
//! or null, and `event_type` is an open set.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest event id accepted (real ones are 36-char UUIDs or 40-hex strings).
pub const MAX_EVENT_ID_LEN: usize = 128;

/// Box's `event_id`, the deduplication key across both admin streams.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub fn new(text: impl Into<String>) -> Result<Self, EventError> {
        let text = text.into();
        if text.is_empty() || text.len() > MAX_EVENT_ID_LEN || text.chars().any(char::is_control) {
            return Err(EventError::BadEventId);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a JSON value is not a usable Box event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not a JSON object")]
    NotAnObject,
    #[error("event has no event_id")]
    MissingEventId,
    #[error("event_id is empty, too long, or contains control characters")]
    BadEventId,
}

/// The `type/id/name/login` mini form Box uses for `created_by`, `source` users and the like.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserMini {
    pub id: Option<String>,
    pub name: Option<String>,
    pub login: Option<String>,
}

impl UserMini {
    /// Box's internal identifier for anonymous actors (open shared links, unknown logins).
    pub const ANONYMOUS_ID: &'static str = "2";

    fn from_value(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        Some(Self {
            id: obj.get("id").and_then(id_text),
            name: obj.get("name").and_then(Value::as_str).map(str::to_owned),
            login: obj.get("login").and_then(Value::as_str).map(str::to_owned),
        })
    }

    pub fn is_anonymous(&self) -> bool {
        self.id.as_deref() == Some(Self::ANONYMOUS_ID)
    }
}

/// One Box event as received, with its id extracted.
///
/// Two forms, one meaning. An event read from a page ([`BoxEvent::from_json_text`]) keeps
/// Box's own text and the few fields the collector reads (id, type, time), and parses the
/// whole object only when asked: collecting never asks, so the text goes to the queue as it
/// came, without a map of the object being built, written out again and freed. An event built
/// from a value ([`BoxEvent::from_value`]: rendering, tests) keeps the object and writes its
/// text only when asked.
#[derive(Clone)]
pub struct BoxEvent {
    id: EventId,
    form: Form,
}

#[derive(Clone)]
enum Form {
    Text {
        /// One line of JSON: an object whose `event_id` is `id`.
        json: Box<str>,
        event_type: Option<String>,
        created_at: Option<String>,
        raw: OnceLock<Map<String, Value>>,
    },
    Value {
        raw: Map<String, Value>,
        json: OnceLock<Box<str>>,
    },
}

/// The fields of an event the collector reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    event_id: Option<Value>,
    #[serde(default)]
    event_type: Option<Value>,
    #[serde(default)]
    created_at: Option<Value>,
}

impl BoxEvent {
    /// Accepts any JSON object that carries an `event_id` (string or number).
    pub fn from_value(value: Value) -> Result<Self, EventError> {
        Self::try_from_value(value).map_err(|(_, err)| err)
    }

    /// [`BoxEvent::from_value`] that hands the value back when it is not an event, so a
    /// caller that keeps rejected entries need not clone every entry first.
    pub fn try_from_value(value: Value) -> Result<Self, (Value, EventError)> {
        let raw = match value {
            Value::Object(raw) => raw,
            other => return Err((other, EventError::NotAnObject)),
        };
        let id = match raw.get("event_id").and_then(id_text) {
            None => Err(EventError::MissingEventId),
            Some(text) => EventId::new(text),
        };
        match id {
            Ok(id) => Ok(Self {
                id,
                form: Form::Value {
                    raw,
                    json: OnceLock::new(),
                },
            }),
            Err(err) => Err((Value::Object(raw), err)),
        }
    }

    /// One entry of an events page, as its JSON text. `Err`: the text is not JSON.
    /// `Ok(Err((value, why)))`: JSON, but not an event, handed back parsed.
    ///
    /// The same events are accepted, with the same fields, as by [`BoxEvent::from_value`] on
    /// the parsed text; only the work differs. When the text is one line and its `event_id`,
    /// `event_type` and `created_at` read as a struct, the text is kept and the rest of the
    /// object is skipped unparsed. Anything else (a text over several lines, a repeated
    /// key, a value that is not an object or has no usable id) takes the full parse.
    pub fn from_json_text(text: &str) -> serde_json::Result<Result<Self, (Value, EventError)>> {
        let one_line = !text.bytes().any(|b| b == b'\n' || b == b'\r');
        // serde also reads a struct from an array (its fields by position): objects only.
        if one_line
            && text.trim_start().starts_with('{')
            && let Ok(head) = serde_json::from_str::<Head>(text)
            && let Some(Ok(id)) = head.event_id.as_ref().and_then(id_text).map(EventId::new)
        {
            let string = |v: Option<Value>| match v {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            return Ok(Ok(Self {
                id,
                form: Form::Text {
                    json: text.into(),
                    event_type: string(head.event_type),
                    created_at: string(head.created_at),
                    raw: OnceLock::new(),
                },
            }));
        }
        let value: Value = serde_json::from_str(text)?;
        Ok(Self::try_from_value(value))
    }

    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The original JSON object, untouched.
    pub fn raw(&self) -> &Map<String, Value> {
        match &self.form {
            Form::Value { raw, .. } => raw,
            // The text parsed as an object when the event was made (serde_json skips and
            // parses by the same grammar and depth limit); an empty map is unreachable.
            Form::Text { json, raw, .. } => {
                raw.get_or_init(|| match serde_json::from_str::<Value>(json) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                })
            }
        }
    }

    /// The event's JSON text, one line: Box's own text when it was read from a page, else
    /// the compact form of the object.
    pub fn json(&self) -> &str {
        match &self.form {
            Form::Text { json, .. } => json,
            // A map of JSON values always serialises.
            Form::Value { raw, json } => {
                json.get_or_init(|| serde_json::to_string(raw).unwrap_or_default().into())
            }
        }
    }

    /// [`BoxEvent::json`], owned.
    pub fn to_json(&self) -> String {
        self.json().to_owned()
    }

    /// `event_type`, an open set of strings (`LOGIN`, `SHIELD_ALERT`, ... and new ones).
    pub fn event_type(&self) -> Option<&str> {
        match &self.form {
            Form::Text { event_type, .. } => event_type.as_deref(),
            Form::Value { .. } => self.str_field("event_type"),
        }
    }

    /// `created_at` as Box wrote it, with its offset (`2015-12-02T09:41:31-08:00`).
    pub fn created_at(&self) -> Option<&str> {
        match &self.form {
            Form::Text { created_at, .. } => created_at.as_deref(),
            Form::Value { .. } => self.str_field("created_at"),
        }
    }

    /// `ip_address`: an IP literal or the text `Unknown IP`; validate before use.
    pub fn ip_address(&self) -> Option<&str> {
        self.str_field("ip_address")
    }

    pub fn created_by(&self) -> Option<UserMini> {
        self.raw().get("created_by").and_then(UserMini::from_value)
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.raw().get(key).and_then(Value::as_str)
    }
}

impl PartialEq for BoxEvent {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.raw() == other.raw()
    }
}

impl fmt::Debug for BoxEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxEvent")
            .field("id", &self.id)
            .field("json", &self.json())
            .finish()
    }
}

/// Box ids are strings in the spec and numbers in some examples: accept both.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A login event exposes its id, type, time, IP and actor.
    #[test]
    fn login_fields() {
        let event = BoxEvent::from_value(json!({
            "type": "event", "event_id": "a1", "event_type": "LOGIN",
            "created_at": "2024-05-02T14:03:11-07:00", "ip_address": "198.51.100.23",
            "created_by": {"type": "user", "id": 262196057, "name": "J", "login": "j@example.com"}
        }))
        .unwrap();
        assert_eq!(event.id().as_str(), "a1");
        assert_eq!(event.event_type(), Some("LOGIN"));
        assert_eq!(event.created_at(), Some("2024-05-02T14:03:11-07:00"));
        assert_eq!(event.ip_address(), Some("198.51.100.23"));
        let user = event.created_by().unwrap();
        assert_eq!(user.id.as_deref(), Some("262196057"));
        assert!(!user.is_anonymous());
    }

    /// Events without a usable id are refused with a reason, not a panic.
    #[test]
    fn bad_events_are_refused() {
        assert_eq!(
            BoxEvent::from_value(json!([1])),
            Err(EventError::NotAnObject)
        );
        assert_eq!(
            BoxEvent::from_value(json!({})),
            Err(EventError::MissingEventId)
        );
        assert_eq!(
            BoxEvent::from_value(json!({"event_id": ""})),
            Err(EventError::BadEventId)
        );
        assert_eq!(
            BoxEvent::from_value(json!({"event_id": "a\nb"})),
            Err(EventError::BadEventId)
        );
        assert_eq!(
            BoxEvent::from_value(json!({"event_id": 1.5})),
            Err(EventError::MissingEventId)
        );
    }

    /// Reading an entry's text accepts exactly what parsing it and `from_value` accept, with
    /// the same fields, and keeps Box's text only when it is one line.
    #[test]
    fn from_json_text_agrees_with_from_value() {
        let texts = [
            r#"{"event_id":"a1","event_type":"LOGIN","created_at":"2024-05-02T14:03:11-07:00","ip_address":"198.51.100.23","created_by":{"id":7,"login":"j@example.com"}}"#,
            r#"{"event_id":42,"event_type":null,"created_at":5}"#,
            r#"{"event_id":"dup","event_type":"LOGIN","event_type":"UPLOAD"}"#,
            "{\n  \"event_id\": \"pretty\",\n  \"event_type\": \"LOGIN\"\n}",
            r#"{"event_type":"LOGIN"}"#,
            r#"{"event_id":""}"#,
            r#"{"event_id":1.5}"#,
            r#"{"event_id":"a\u0000b"}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"{"event_id":"deep","x":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}"#,
            "{\"event_id\":\"e\u{2028}\",\"s\":\"\u{202e}x\"}",
        ];
        for text in texts {
            let value: Value = serde_json::from_str(text).unwrap();
            let slow = BoxEvent::try_from_value(value.clone());
            let fast = BoxEvent::from_json_text(text).unwrap();
            match (&fast, &slow) {
                (Ok(f), Ok(s)) => {
                    assert_eq!(f, s, "{text}");
                    assert_eq!(f.event_type(), s.event_type(), "{text}");
                    assert_eq!(f.created_at(), s.created_at(), "{text}");
                    assert_eq!(f.ip_address(), s.ip_address(), "{text}");
                    assert_eq!(f.created_by(), s.created_by(), "{text}");
                    assert!(!f.json().contains('\n'), "{text}");
                    let again: Value = serde_json::from_str(f.json()).unwrap();
                    assert_eq!(again, value, "{text}");
                }
                (Err((fv, fe)), Err((sv, se))) => {
                    assert_eq!((fv, fe), (sv, se), "{text}");
                }
                _ => panic!("{text}: {fast:?} vs {slow:?}"),
            }
        }
        // Fuzzing (box_events_page): a number whose shortest text parsed back to a neighbour
        // (serde_json's default float parsing is not exact; `float_roundtrip` makes it so).
        let text = "{\"event_id\":\"x\",\n\"n\":6666663666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666.666666}";
        let event = BoxEvent::from_json_text(text).unwrap().unwrap();
        let again = BoxEvent::from_value(serde_json::from_str(event.json()).unwrap()).unwrap();
        assert_eq!(again, event);
        let kept = BoxEvent::from_json_text(texts[0]).unwrap().unwrap();
        assert_eq!(kept.json(), texts[0]);
        assert!(BoxEvent::from_json_text("{\"event_id\":").is_err());
    }
}
