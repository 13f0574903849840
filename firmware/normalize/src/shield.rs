//! Box Shield alerts unpacked into flat fields of the raw record.
//!
//! A `SHIELD_ALERT` carries its substance deep inside `additional_details.shield_alert`, in a
//! shape that differs per rule category (`alert_summary.download_ips`, `.sessions[].activities`,
//! `.alert_activities`, `.upload_activity`, `malware_info`, …; `shared/box/CONTRACT.md` §2.5).
//! Log Search queries and alerts need the rule, the risk and who and where without walking
//! those shapes, so the raw record gets a `shield` object with the fields Elastic's Box
//! integration also extracts (`rule.*`, risk score, `related.ip`, `related.user`, malware
//! indicators; `shared/PEERS.md` §2.2), while `event` keeps Box's alert untouched.
//!
//! Everything here is untrusted input: strings are capped at [`MAX_FIELD_CHARS`], lists at
//! [`MAX_LIST`] entries, IP addresses are kept only when they parse (Box writes `Unknown IP`),
//! and ids arrive as numbers or strings and leave as strings.

use std::collections::BTreeSet;
use std::net::IpAddr;

use boxidr_model::BoxEvent;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::line::cap_chars;
use crate::raw::MAX_FIELD_CHARS;

/// Longest `description` kept, in characters (Box's summaries are a sentence or three).
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Most entries in each list of a [`Shield`] (IPs, users, countries, items, categories).
pub const MAX_LIST: usize = 16;

/// The unpacked alert, written as `shield` into the raw record (absent fields are left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shield {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// `Suspicious Locations`, `Suspicious Sessions`, `Anomalous Download`,
    /// `Malicious Content`, `Ransomware Activity`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_category: Option<String>,
    /// 0-100 as Box scores it (a number as Box sent it, or parsed from a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The alert in the Box Admin Console.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The user the alert is about (`shield_alert.user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    /// Actions the rule took (`rule_response_action` keys set to true, e.g. `restrict_user`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_actions: Vec<String>,
    /// Every valid IP address named anywhere in the alert, first seen first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_ips: Vec<String>,
    /// Every user (email, else name) named in the alert: the subject, file creators, uploaders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_users: Vec<String>,
    /// Country codes of the alert's IP information.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// Names of the items the alert's activities touched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malware: Option<Malware>,
}

/// `shield_alert.malware_info` of a Malicious Content alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Malware {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_hash_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// The unpacked Shield alert of an event, if it carries one
/// (`additional_details.shield_alert` is an object).
pub fn shield_of(event: &BoxEvent) -> Option<Shield> {
    let alert = event
        .raw()
        .get("additional_details")?
        .get("shield_alert")?
        .as_object()?;
    let user = alert.get("user").and_then(Value::as_object);
    let mut found = Found::default();
    if let Some(summary) = alert.get("alert_summary") {
        found.walk(summary, 0);
    }
    if let Some(malware) = alert.get("malware_info") {
        found.walk(malware, 0);
    }
    // The subject first, then whoever else the alert names.
    let mut related_users = Vec::new();
    if let Some(subject) = user.and_then(person) {
        related_users.push(subject);
    }
    for other in found.users {
        if related_users.len() < MAX_LIST && !related_users.contains(&other) {
            related_users.push(other);
        }
    }
    let response_actions = alert
        .get("rule_response_action")
        .and_then(Value::as_object)
        .map(|actions| {
            actions
                .iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| capped(k))
                .take(MAX_LIST)
                .collect()
        })
        .unwrap_or_default();
    Some(Shield {
        alert_id: id_text(alert.get("alert_id")),
        rule_id: id_text(alert.get("rule_id")),
        rule_name: text(alert.get("rule_name")),
        rule_category: text(alert.get("rule_category")),
        risk_score: alert.get("risk_score").and_then(|v| match v {
            Value::Number(n) => Some(n.clone()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
        priority: text(alert.get("priority")),
        link: text(alert.get("link")),
        description: alert
            .get("alert_summary")
            .and_then(|s| s.get("description")?.as_str())
            .map(|d| cap_chars(d.trim(), MAX_DESCRIPTION_CHARS).0)
            .filter(|d| !d.is_empty()),
        user_id: user.and_then(|u| id_text(u.get("id"))),
        user_name: user.and_then(|u| text(u.get("name"))),
        user_email: user.and_then(|u| text(u.get("email"))),
        response_actions,
        related_ips: found.ips,
        related_users,
        countries: found.countries,
        items: found.items,
        malware: alert
            .get("malware_info")
            .and_then(Value::as_object)
            .map(malware),
    })
}

/// Deepest nesting walked inside an alert (Box's shapes are four or five levels deep).
const MAX_DEPTH: usize = 12;

/// What a walk over an alert's summary collects, each list in first-seen order, deduplicated.
#[derive(Default)]
struct Found {
    ips: Vec<String>,
    users: Vec<String>,
    countries: Vec<String>,
    items: Vec<String>,
    seen: BTreeSet<(u8, String)>,
}

impl Found {
    /// Walks any shape: an `ip` key anywhere is an address, `ip_info.country_code` a country,
    /// `item_name` an item, an object with `email` (or `name` and `id`) a person.
    fn walk(&mut self, value: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Array(items) => {
                for item in items {
                    self.walk(item, depth + 1);
                }
            }
            Value::Object(map) => {
                if let Some(ip) = map.get("ip").and_then(Value::as_str) {
                    if let Ok(ip) = ip.trim().parse::<IpAddr>() {
                        self.add(0, ip.to_string());
                    }
                }
                if let Some(country) = text(map.get("country_code")) {
                    self.add(1, country);
                }
                if let Some(item) = text(map.get("item_name")) {
                    self.add(2, item);
                }
                for (key, inner) in map {
                    if key.ends_with("_by") || key == "user" {
                        if let Some(who) = inner.as_object().and_then(person) {
                            self.add(3, who);
                        }
                    }
                    self.walk(inner, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn add(&mut self, list: u8, value: String) {
        let target = match list {
            0 => &mut self.ips,
            1 => &mut self.countries,
            2 => &mut self.items,
            _ => &mut self.users,
        };
        if target.len() < MAX_LIST && self.seen.insert((list, value.clone())) {
            target.push(value);
        }
    }
}

/// A person object's email, else its name.
fn person(map: &Map<String, Value>) -> Option<String> {
    text(map.get("email"))
        .or_else(|| text(map.get("login")))
        .or_else(|| text(map.get("name")))
}

fn malware(info: &Map<String, Value>) -> Malware {
    Malware {
        name: text(info.get("malware_name")),
        family: text(info.get("family")),
        status: text(info.get("status")),
        file_name: text(info.get("file_name")),
        file_hash: text(info.get("file_hash")),
        file_hash_type: text(info.get("file_hash_type")),
        categories: info
            .get("categories")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| text(Some(v)))
                    .take(MAX_LIST)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn capped(text: &str) -> String {
    cap_chars(text, MAX_FIELD_CHARS).0
}

/// A non-empty string, capped.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(capped)
}

/// An id Box sends as a number or a string, as text.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        other => text(Some(other)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alert(shield_alert: Value) -> BoxEvent {
        BoxEvent::from_value(json!({"event_id": "1", "event_type": "SHIELD_ALERT",
            "additional_details": {"shield_alert": shield_alert}}))
        .unwrap()
    }

    /// Events without an alert object get no `shield` field.
    #[test]
    fn only_alerts() {
        let login = BoxEvent::from_value(json!({"event_id": "1", "event_type": "LOGIN"})).unwrap();
        assert!(shield_of(&login).is_none());
        assert!(shield_of(&alert(json!("text"))).is_none());
        assert_eq!(shield_of(&alert(json!({}))), Some(Shield::default()));
    }

    fn sample(name: &str) -> BoxEvent {
        let path = format!(
            "{}/../../tests/fixtures/box/samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        BoxEvent::from_value(serde_json::from_str(&text).unwrap()).unwrap()
    }

    /// Each sample alert's rule, risk, subject, IPs and users, checked by hand against the
    /// sample files (the golden files pin the whole record).
    #[test]
    fn sample_alerts() {
        let s = shield_of(&sample("event-14-shield-alert-suspicious-locations.json")).unwrap();
        assert_eq!(s.rule_category.as_deref(), Some("Suspicious Locations"));
        assert_eq!(s.rule_name.as_deref(), Some("Suspicious Location"));
        assert_eq!(s.rule_id.as_deref(), Some("123"));
        assert_eq!(s.alert_id.as_deref(), Some("2398"));
        assert_eq!(s.risk_score, Some(60.into()));
        assert_eq!(s.response_actions, ["restrict_user"]);
        assert_eq!(s.related_ips, ["1.2.3.4"]);
        assert_eq!(s.related_users, ["some@email.com"]);
        assert_eq!(s.countries, ["US"]);
        assert_eq!(s.items, ["xyz.txt"]);

        let s = shield_of(&sample("event-13-shield-alert-suspicious-sessions.json")).unwrap();
        assert_eq!(s.related_ips, ["81.2.69.142", "81.2.69.144"]);
        assert_eq!(s.user_id.as_deref(), Some("50500"));
        assert!(s.description.unwrap().ends_with("faster than possible"));

        let s = shield_of(&sample(
            "elastic-shield-alert-anomalous-download-unknown-ip.json",
        ))
        .unwrap();
        assert_eq!(
            s.related_ips,
            ["175.16.199.0"],
            "Unknown IP is not an address"
        );
        assert_eq!(s.rule_category.as_deref(), Some("Anomalous Download"));
        assert_eq!(s.risk_score, Some(77.into()));

        let s = shield_of(&sample("elastic-shield-alert-malicious-content.json")).unwrap();
        assert_eq!(
            s.related_users,
            [
                "some@email.com",
                "bob@enterprise.com",
                "jane@enterprise.com"
            ]
        );
        let malware = s.malware.unwrap();
        assert_eq!(malware.name.as_deref(), Some("BadMalware"));
        assert_eq!(malware.file_hash_type.as_deref(), Some("SHA-1"));
        assert_eq!(malware.categories, ["Adware", "SpyWare"]);

        // A Shield event that is not an alert (information barrier) has nothing to unpack.
        assert!(shield_of(&sample("event-18-shield-information-barrier-enabled.json")).is_none());
    }

    /// Hostile input stays bounded: invalid IPs are dropped, lists and strings capped, deep
    /// nesting not followed for ever, ids of any JSON type never panic.
    #[test]
    fn hostile_input_is_bounded() {
        let ips: Vec<Value> = (0..100)
            .map(|i| json!({"ip": format!("10.0.0.{i}")}))
            .chain([json!({"ip": "Unknown IP"}), json!({"ip": "<script>"})])
            .collect();
        let mut deep = json!({"ip": "192.0.2.1"});
        for _ in 0..1000 {
            deep = json!({"next": deep});
        }
        let s = shield_of(&alert(json!({
            "alert_id": [1], "rule_id": 1.5, "risk_score": "high",
            "rule_name": "r".repeat(10_000),
            "alert_summary": {"download_ips": ips, "deep": deep},
        })))
        .unwrap();
        assert_eq!(s.related_ips.len(), MAX_LIST);
        assert!(s.related_ips.iter().all(|ip| ip.parse::<IpAddr>().is_ok()));
        assert!(!s.related_ips.contains(&"192.0.2.1".to_owned()), "too deep");
        assert_eq!(s.rule_name.unwrap().chars().count(), MAX_FIELD_CHARS);
        assert_eq!(s.alert_id, None);
        assert_eq!(s.rule_id.as_deref(), Some("1.5"));
        assert_eq!(s.risk_score, None);
    }
}
