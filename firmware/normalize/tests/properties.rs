//! Property tests: whatever Box (or a corrupted queue) hands the renderer, it answers with
//! lines that pass the contract checks, under the caps, on one line each, and never panics
//! or drops an event silently.
#![allow(clippy::unwrap_used)] // test helpers: a failed check should panic loudly

mod support;

use boxidr_config::AccountFormat;
use boxidr_model::BoxEvent;
use boxidr_normalize::{
    Kind, NoDirectory, Rendered, Settings, UEF_MAX_LINE_BYTES, ingress_result, render_record,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Strings built to break framing and displays: line breaks, NUL, bidi controls, BOM, quotes,
/// escapes, non-BMP characters, and lengths from empty to far over every cap.
fn hostile_string() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\0".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\u{2028}\u{2029}".to_owned()),
        Just("\u{202e}\u{2066}\u{200f}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("\"\\".to_owned()),
        Just("\u{1b}[2J".to_owned()),
        Just("😀".to_owned()),
        Just("@".to_owned()),
        "[a-zA-Z0-9 .]{0,12}",
    ];
    prop_oneof![
        4 => proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat()),
        2 => any::<String>(),
        1 => (1usize..100_000, prop_oneof![Just('x'), Just('\u{1}'), Just('é'), Just('\u{2028}')])
            .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Binary fractions: serde_json's default float parsing round-trips them exactly.
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        hostile_string().prop_map(Value::String),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 48, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(hostile_string(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// RFC 3339 times across offsets and fractions, plus malformed ones.
fn box_time() -> BoxedStrategy<Value> {
    let valid =
        (
            1970i32..2100,
            1u8..=12,
            1u8..=28,
            0u8..24,
            0u8..60,
            0u8..60,
            prop_oneof![Just(String::new()), "\\.[0-9]{1,9}".prop_map(|s| s),],
            prop_oneof![
                Just("Z".to_owned()),
                (-14i8..=14, prop_oneof![Just(0u8), Just(30), Just(45)]).prop_map(
                    |(h, m)| format!("{}{:02}:{m:02}", if h < 0 { '-' } else { '+' }, h.abs())
                ),
            ],
        )
            .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
                Value::String(format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}"
                ))
            });
    prop_oneof![
        6 => valid,
        1 => Just(Value::Null),
        1 => hostile_string().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(json!("0000-01-01T00:00:00+14:00")),
        1 => Just(json!("9999-12-31T23:59:59-14:00")),
    ]
    .boxed()
}

fn ip_address() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => any::<[u8; 4]>().prop_map(|b| json!(std::net::Ipv4Addr::from(b).to_string())),
        1 => any::<[u8; 4]>().prop_map(|b| json!(std::net::Ipv4Addr::from(b).to_ipv6_mapped().to_string())),
        1 => any::<[u8; 16]>().prop_map(|b| json!(std::net::Ipv6Addr::from(b).to_string())),
        1 => Just(json!("Unknown IP")),
        1 => Just(Value::Null),
        1 => hostile_string().prop_map(Value::String),
    ]
    .boxed()
}

fn id_value() -> BoxedStrategy<Value> {
    prop_oneof![
        "[0-9]{1,12}".prop_map(Value::String),
        any::<u64>().prop_map(Value::from),
        Just(json!("2")),
        hostile_string().prop_map(Value::String),
    ]
    .boxed()
}

fn user() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (id_value(), prop_oneof![
                "[a-z.]{1,12}@[a-z]{1,8}\\.com".prop_map(Value::String),
                hostile_string().prop_map(Value::String),
                Just(json!("")),
                Just(Value::Null),
            ], hostile_string())
            .prop_map(|(id, login, name)| json!({"type": "user", "id": id, "login": login, "name": name})),
        1 => Just(json!({"type": "user", "id": "2", "name": "Unknown User", "login": ""})),
        1 => json_value(),
    ]
    .boxed()
}

const TYPES: &[&str] = &[
    "LOGIN",
    "FAILED_LOGIN",
    "ADMIN_LOGIN",
    "ADD_LOGIN_ACTIVITY_DEVICE",
    "USER_AUTHENTICATE_OAUTH2_ACCESS_TOKEN_CREATE",
    "NEW_USER",
    "UPLOAD",
    "ITEM_DOWNLOAD",
    "SHIELD_ALERT",
    "SHIELD_INFORMATION_BARRIER_ENABLED",
];

/// A JSON object the model accepts as a Box event, with every field drawn from the shapes Box
/// sends and from hostile ones.
fn box_event() -> BoxedStrategy<Value> {
    let event_type = prop_oneof![
        6 => proptest::sample::select(TYPES).prop_map(|t| json!(t)),
        1 => hostile_string().prop_map(Value::String),
        1 => json_leaf(),
    ];
    (
        prop_oneof![
            "[a-f0-9-]{1,40}".prop_map(Value::String),
            any::<u64>().prop_map(Value::from)
        ],
        event_type,
        prop_oneof![3 => box_time(), 1 => Just(Value::Null)],
        proptest::option::of(box_time()),
        ip_address(),
        proptest::option::of(user()),
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(hostile_string()),
        proptest::collection::btree_map("[a-z_]{1,10}", json_value(), 0..4),
    )
        .prop_map(
            |(id, t, created_at, recorded_at, ip, created_by, source, details, session, extra)| {
                let mut obj: Map<String, Value> = extra.into_iter().collect();
                obj.insert("type".into(), json!("event"));
                obj.insert("event_id".into(), id);
                obj.insert("event_type".into(), t);
                obj.insert("created_at".into(), created_at);
                if let Some(r) = recorded_at {
                    obj.insert("recorded_at".into(), r);
                }
                obj.insert("ip_address".into(), ip);
                if let Some(u) = created_by {
                    obj.insert("created_by".into(), u);
                }
                if let Some(s) = source {
                    obj.insert("source".into(), s);
                }
                if let Some(d) = details {
                    obj.insert("additional_details".into(), d);
                }
                if let Some(s) = session {
                    obj.insert("session_id".into(), json!(s));
                }
                Value::Object(obj)
            },
        )
        .prop_filter("the model accepts it", |v| {
            BoxEvent::from_value(v.clone()).is_ok()
        })
        .boxed()
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just("CORP".to_owned()), Just(" ".to_owned())]),
        prop_oneof![Just(0usize), Just(16 * 1024), Just(64 * 1024)],
    )
        .prop_map(|(unparsed, oauth, upn, domain, cap)| Settings {
            send_unparsed: unparsed,
            oauth_as_ingress: oauth,
            account_format: if upn {
                AccountFormat::Upn
            } else {
                AccountFormat::LocalPart
            },
            default_domain: domain,
            raw_max_line_bytes: cap,
            ..Settings::default()
        })
}

/// The checks every rendering must pass; returns the raw record's parsed object.
fn check_lines(r: &Rendered, s: &Settings) -> Option<Map<String, Value>> {
    if let Some(line) = &r.uef {
        assert!(line.len() <= UEF_MAX_LINE_BYTES);
        support::check_uef(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    r.raw
        .as_deref()
        .map(|line| support::check_raw(line, s.raw_cap()).unwrap_or_else(|e| panic!("{e}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any event the model accepts yields a valid UEF line or a raw record (never neither
    /// for ingress), every line framed, valid and under its cap, the UEF time being the
    /// event's own instant, and the event carried whole unless marked truncated.
    #[test]
    fn accepted_events_render(event in box_event(), s in settings()) {
        let text = event.to_string();
        let r = render_record(&text, 1_750_000_000_000, &NoDirectory, &s);
        prop_assert_eq!(r.malformed, None);
        let raw = check_lines(&r, &s);

        let model = BoxEvent::from_value(event.clone()).unwrap();
        let ingress = ingress_result(model.event_type(), s.oauth_as_ingress).is_some();
        prop_assert_eq!(r.uef.is_some() || r.uef_rejected.is_some(), ingress);
        prop_assert!(!(r.uef.is_some() && r.uef_rejected.is_some()));
        prop_assert_eq!(
            r.raw.is_some(),
            r.kind.is_sent(s.send_unparsed) || r.uef_rejected.is_some()
        );
        if r.kind == Kind::Ingress || r.kind == Kind::AdminActivity {
            prop_assert!(r.raw.is_some());
        }

        if let Some(line) = &r.uef {
            let uef: Value = serde_json::from_str(line).unwrap();
            let source = match &event["created_at"] {
                Value::String(t) => t.clone(),
                _ => event["recorded_at"].as_str().unwrap().to_owned(),
            };
            let want = support::box_instant_ms(&source).unwrap();
            let got = support::check_uef_time(uef["time"].as_str().unwrap()).unwrap();
            prop_assert_eq!(got.unix_timestamp_nanos() / 1_000_000, want);
        }
        if let Some(raw) = raw {
            let truncated = raw.get("truncated") == Some(&Value::Bool(true));
            prop_assert_eq!(truncated, r.raw_truncated);
            if !truncated {
                prop_assert_eq!(&raw["event"], &event);
            } else {
                prop_assert!(text.len() > 1000);
            }
        }
    }

    /// Any text at all (a corrupted queue record) gives a flagged raw record, or a normal
    /// rendering if it happens to be an event; never a panic.
    #[test]
    fn any_text_renders(text in hostile_string(), s in settings()) {
        let r = render_record(&text, 0, &NoDirectory, &s);
        prop_assert!(r.raw.is_some() || r.malformed.is_none());
        check_lines(&r, &s);
        if r.malformed.is_some() {
            prop_assert!(r.uef.is_none());
            let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
            prop_assert_eq!(&raw["malformed"], r.malformed.unwrap().as_str());
            if !r.raw_truncated {
                // Kept as parsed JSON when it is JSON, else as the text itself.
                match serde_json::from_str::<Value>(&text) {
                    Ok(value) => prop_assert_eq!(&raw["event"], &value),
                    Err(_) => prop_assert_eq!(raw["event_text"].as_str().unwrap(), text.as_str()),
                }
            }
        }
    }

    /// Any JSON value (array, scalar, object without a usable id, deep nesting) is flagged and
    /// kept, and its raw record carries the value itself when it fits.
    #[test]
    fn any_json_renders(value in json_value(), s in settings()) {
        let text = value.to_string();
        let r = render_record(&text, 0, &NoDirectory, &s);
        check_lines(&r, &s);
        prop_assert!(r.raw.is_some() || r.malformed.is_none());
        if r.malformed.is_some() && !r.raw_truncated {
            let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
            prop_assert_eq!(&raw["event"], &value);
        }
    }
}
