//! A Box enterprise event: the original JSON, kept whole, plus lenient typed views.
//!
//! The queue stores Box's own event (ARCHITECTURE invariant 1); sinks render it at send time.
//! Fields are read leniently because Box's payloads drift (`shared/box/CONTRACT.md` §2.5): ids
//! arrive as strings or numbers, `created_by`, `source` and `additional_details` may be absent
//! or null, and `event_type` is an open set.

use std::fmt;

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
#[derive(Debug, Clone, PartialEq)]
pub struct BoxEvent {
    id: EventId,
    raw: Map<String, Value>,
}

impl BoxEvent {
    /// Accepts any JSON object that carries an `event_id` (string or number).
    pub fn from_value(value: Value) -> Result<Self, EventError> {
        let Value::Object(raw) = value else {
            return Err(EventError::NotAnObject);
        };
        let id = raw
            .get("event_id")
            .and_then(id_text)
            .ok_or(EventError::MissingEventId)
            .and_then(EventId::new)?;
        Ok(Self { id, raw })
    }

    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The original JSON object, untouched.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// The event's compact JSON text as Box sent it (modulo whitespace).
    pub fn to_json(&self) -> String {
        Value::Object(self.raw.clone()).to_string()
    }

    /// `event_type`, an open set of strings (`LOGIN`, `SHIELD_ALERT`, ... and new ones).
    pub fn event_type(&self) -> Option<&str> {
        self.str_field("event_type")
    }

    /// `created_at` as Box wrote it, with its offset (`2015-12-02T09:41:31-08:00`).
    pub fn created_at(&self) -> Option<&str> {
        self.str_field("created_at")
    }

    /// `ip_address`: an IP literal or the text `Unknown IP`; validate before use.
    pub fn ip_address(&self) -> Option<&str> {
        self.str_field("ip_address")
    }

    pub fn created_by(&self) -> Option<UserMini> {
        self.raw.get("created_by").and_then(UserMini::from_value)
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
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
}
