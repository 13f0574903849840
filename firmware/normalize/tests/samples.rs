//! Golden tests over every Box event sample in `tests/fixtures/box/samples/`.
//!
//! Each sample file that holds events (one event, an array of events, or an events page) is
//! rendered with fixed settings, a directory built from the user samples and a fixed
//! collection time. The output must (1) pass the contract checks in `support`, (2) carry the
//! event's own time (recomputed here with `time`, never the collection time), (3) match the
//! hand-written expectations below for the single-event samples, and (4) equal the checked-in
//! golden file `tests/golden/<sample>` (compared as JSON values, so key order is free).
//!
//! To regenerate the golden files after an intended change:
//! `BOXIDR_BLESS=1 cargo test -p boxidr-normalize --test samples`, then review the diff.
#![allow(clippy::unwrap_used)] // test helpers: a broken sample should panic loudly

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use boxidr_config::Mapping;
use boxidr_model::BoxEvent;
use boxidr_normalize::{DirectoryUser, Reason, Rendered, Settings, render_record};
use serde_json::{Value, json};

/// 2025-06-15T15:06:40.000Z: after every sample's event time, so a mix-up shows.
const COLLECTED_AT_MS: u64 = 1_750_000_000_000;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/box/samples")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sample file `name`.
fn sample(name: &str) -> Value {
    read_json(&samples_dir().join(name))
}

/// Every `*.json` sample, sorted by name.
fn sample_files() -> Vec<PathBuf> {
    let dir = samples_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (tests/fixtures/box/samples)", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn is_event(value: &Value) -> bool {
    value.get("event_id").is_some() && value.get("event_type").is_some()
}

/// The events a sample holds, or `None` if it is not an event sample.
fn events_of(value: &Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_event) => {
            Some(items.clone())
        }
        Value::Object(obj)
            if obj.contains_key("next_stream_position") || obj.contains_key("chunk_size") =>
        {
            Some(obj.get("entries")?.as_array()?.clone())
        }
        Value::Object(_) if is_event(value) => Some(vec![value.clone()]),
        _ => None,
    }
}

/// The user directory from every user sample (single users and users pages).
fn directory() -> HashMap<String, DirectoryUser> {
    let mut users = HashMap::new();
    for path in sample_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("user") {
            continue;
        }
        let value = read_json(&path);
        let list = match value.get("entries").and_then(Value::as_array) {
            Some(entries) => entries.clone(),
            None => vec![value],
        };
        for user in list {
            let id = user["id"].as_str().unwrap().to_owned();
            let parsed = DirectoryUser::from_json(&user.to_string()).unwrap();
            users.insert(id, parsed);
        }
    }
    users
}

fn settings() -> Settings {
    let mut mapping = Mapping {
        default_domain: Some("CORP".into()),
        ..Mapping::default()
    };
    mapping
        .domain_map
        .insert("user.com".into(), "USERCOM".into());
    Settings::from_mapping(&mapping, "test")
}

fn render(event: &Value, dir: &HashMap<String, DirectoryUser>, s: &Settings) -> Rendered {
    render_record(&event.to_string(), COLLECTED_AT_MS, dir, s)
}

/// The raw record `r` carries, parsed.
fn raw_json(r: &Rendered) -> Value {
    serde_json::from_str(r.raw.as_deref().expect("a raw record")).unwrap()
}

/// The UEF line `r` carries, parsed.
fn uef_json(r: &Rendered) -> Value {
    serde_json::from_str(r.uef.as_deref().expect("a UEF line")).unwrap()
}

/// The golden form of one rendered event.
fn golden_entry(event: &Value, r: &Rendered) -> Value {
    let parse = |line: &Option<String>| {
        line.as_deref()
            .map_or(Value::Null, |l| serde_json::from_str(l).unwrap())
    };
    json!({
        "event_id": event["event_id"],
        "kind": r.kind.as_str(),
        "uef": parse(&r.uef),
        "uef_rejected": r.uef_rejected.map(Reason::as_str),
        "raw": parse(&r.raw),
        "raw_truncated": r.raw_truncated,
    })
}

/// Contract checks every rendered event must pass, whatever the sample.
fn check_rendered(name: &str, event: &Value, r: &Rendered, s: &Settings) {
    assert_eq!(r.malformed, None, "{name}");
    let model = BoxEvent::from_value(event.clone()).unwrap();
    assert_eq!(r.kind, boxidr_normalize::kind(&model), "{name}");

    let raw_line = r.raw.as_deref().unwrap_or_else(|| panic!("{name}: no raw"));
    let raw = support::check_raw(raw_line, s.raw_cap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(raw["boxidr_kind"], r.kind.as_str(), "{name}");
    assert_eq!(
        raw["event"], *event,
        "{name}: the original event is carried whole"
    );
    assert_eq!(raw["collected_at_ms"], COLLECTED_AT_MS, "{name}");
    assert_eq!(raw["collected_at"], "2025-06-15T15:06:40.000Z", "{name}");
    if let Some(created) = event["created_at"].as_str() {
        let want = support::box_instant_ms(created).unwrap();
        let got = support::check_uef_time(raw["event_time"].as_str().unwrap()).unwrap();
        assert_eq!(
            got.unix_timestamp_nanos() / 1_000_000,
            want,
            "{name}: event_time"
        );
        assert_eq!(raw["event_time_field"], "created_at", "{name}");
    }

    if let Some(line) = &r.uef {
        let uef = support::check_uef(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
        let want = support::box_instant_ms(event["created_at"].as_str().unwrap()).unwrap();
        let got = support::check_uef_time(uef["time"].as_str().unwrap()).unwrap();
        assert_eq!(
            got.unix_timestamp_nanos() / 1_000_000,
            want,
            "{name}: UEF time"
        );
        assert_eq!(
            uef["custom_data"]["box_event_id"], event["event_id"],
            "{name}"
        );
        assert_eq!(
            uef["custom_data"]["box_event_type"], event["event_type"],
            "{name}"
        );
        assert_eq!(uef["account"], raw["account"], "{name}");
        assert_eq!(uef["account_domain"], raw["account_domain"], "{name}");
        assert!(raw.get("uef_rejected").is_none(), "{name}");
    }
    if let Some(reason) = r.uef_rejected {
        assert!(r.uef.is_none(), "{name}");
        assert_eq!(raw["uef_rejected"], reason.as_str(), "{name}");
    }
}

/// Every event sample renders to lines that pass the contract checks and match the golden
/// files; every file named `event*` is recognised as an event sample.
#[test]
fn golden_over_every_sample() {
    let bless = std::env::var_os("BOXIDR_BLESS").is_some();
    let dir = directory();
    let s = settings();
    let mut covered = Vec::new();
    let mut mismatches = Vec::new();
    for path in sample_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(events) = events_of(&read_json(&path)) else {
            assert!(!name.starts_with("event"), "{name} holds no events");
            continue;
        };
        let mut entries = Vec::new();
        for event in &events {
            let r = render(event, &dir, &s);
            check_rendered(&name, event, &r, &s);
            entries.push(golden_entry(event, &r));
        }
        let got = Value::Array(entries);
        let golden = golden_dir().join(&name);
        if bless {
            fs::create_dir_all(golden_dir()).unwrap();
            fs::write(&golden, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        } else if !golden.exists() {
            mismatches.push(format!("{name}: no golden file (run with BOXIDR_BLESS=1)"));
        } else if read_json(&golden) != got {
            mismatches.push(format!(
                "{name}: differs from tests/golden/{name}; got:\n{}",
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
        covered.push(name);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    // The samples the brief names: 19 single events, 3 Elastic alerts, events.json, 4 pages.
    assert!(covered.len() >= 27, "only {covered:?}");
    for needed in [
        "events.json",
        "events-page-empty.json",
        "events-page-numeric-position.json",
    ] {
        assert!(covered.iter().any(|c| c == needed), "{needed} not covered");
    }
}

/// What each single-event sample must become, written by hand from the contracts (not from
/// the code's output): kind, UEF result / account / domain or the rejection reason.
#[test]
fn hand_checked_expectations() {
    // (file, kind, Ok((result, account, domain)) or Err(reason or None = not ingress))
    type Want = Result<(&'static str, &'static str, &'static str), Option<Reason>>;
    let table: &[(&str, &str, Want)] = &[
        (
            "event-01-login.json",
            "ingress",
            Ok(("SUCCESS", "alice", "CORP")),
        ),
        (
            "event-02-failed-login.json",
            "ingress",
            Ok(("FAILURE", "bob", "CORP")),
        ),
        (
            "event-03-failed-login-anonymous.json",
            "ingress",
            Err(Some(Reason::AnonymousUser)),
        ),
        (
            "event-04-admin-login.json",
            "admin_activity",
            Ok(("SUCCESS", "dana.admin", "CORP")),
        ),
        ("event-05-new-user.json", "admin_activity", Err(None)),
        (
            "event-06-change-admin-role.json",
            "admin_activity",
            Err(None),
        ),
        ("event-07-delete-user.json", "admin_activity", Err(None)),
        ("event-08-upload.json", "file_activity", Err(None)),
        ("event-09-download.json", "file_activity", Err(None)),
        ("event-10-share.json", "file_activity", Err(None)),
        (
            "event-11-collaboration-invite.json",
            "file_activity",
            Err(None),
        ),
        ("event-12-delete.json", "file_activity", Err(None)),
        (
            "event-13-shield-alert-suspicious-sessions.json",
            "alert",
            Err(None),
        ),
        (
            "event-14-shield-alert-suspicious-locations.json",
            "alert",
            Err(None),
        ),
        (
            "event-15-preview-anonymous.json",
            "file_activity",
            Err(None),
        ),
        (
            "event-16-add-login-activity-device.json",
            "ingress",
            Err(Some(Reason::SourceIpNotIpv4)),
        ),
        (
            "event-17-oauth2-access-token-create.json",
            "ingress",
            Err(None),
        ),
        (
            "event-18-shield-information-barrier-enabled.json",
            "admin_activity",
            Err(None),
        ),
        (
            "event-19-item-download-user-stream.json",
            "file_activity",
            Err(None),
        ),
        (
            "elastic-shield-alert-anomalous-download.json",
            "alert",
            Err(None),
        ),
        (
            "elastic-shield-alert-anomalous-download-unknown-ip.json",
            "alert",
            Err(None),
        ),
        (
            "elastic-shield-alert-malicious-content.json",
            "alert",
            Err(None),
        ),
    ];
    let dir = directory();
    let s = settings();
    for (file, kind, want) in table {
        let event = sample(file);
        let r = render(&event, &dir, &s);
        assert_eq!(r.kind.as_str(), *kind, "{file}");
        match want {
            Ok((result, account, domain)) => {
                let uef = support::check_uef(r.uef.as_deref().unwrap()).unwrap();
                assert_eq!(uef["authentication_result"], *result, "{file}");
                assert_eq!(uef["account"], *account, "{file}");
                assert_eq!(uef["account_domain"], *domain, "{file}");
                assert_eq!(uef["authentication_target"], "Box", "{file}");
                assert_eq!(uef["custom_data"]["forwarder"], "boxidr/test", "{file}");
                assert_eq!(r.uef_rejected, None, "{file}");
            }
            Err(reason) => {
                assert_eq!(r.uef, None, "{file}");
                assert_eq!(r.uef_rejected, *reason, "{file}");
            }
        }
    }
}

/// Directory facts reach the records: the admin flag for Dana (role admin), the disabled
/// flag for the former employee (status inactive), the domain table for `user.com`.
#[test]
fn directory_facts() {
    let dir = directory();
    let s = settings();
    let admin = render(&sample("event-04-admin-login.json"), &dir, &s);
    let uef = uef_json(&admin);
    assert_eq!(uef["custom_data"]["box_admin"], true);
    assert_eq!(uef["custom_data"]["box_user_disabled"], false);
    assert_eq!(uef["custom_data"]["box_target_login"], "alice@example.com");

    // DELETE_USER's actor is the admin; the deleted user is the source.
    let deleted = render(&sample("event-07-delete-user.json"), &dir, &s);
    let raw = raw_json(&deleted);
    assert_eq!(raw["account"], "dana.admin");
    assert_eq!(raw["box_admin"], true);

    // A login by the inactive user is still sent, flagged disabled.
    let mut login = sample("event-01-login.json");
    login["created_by"] = json!({"type": "user", "id": "2209485112",
        "name": "Former Employee", "login": "former.employee@example.com"});
    let r = render(&login, &dir, &s);
    let uef = uef_json(&r);
    assert_eq!(uef["account"], "former.employee");
    assert_eq!(uef["custom_data"]["box_user_disabled"], true);

    // A Shield alert is attributed to the alerted user, not to Box's anonymous actor.
    let alert = render(
        &sample("event-14-shield-alert-suspicious-locations.json"),
        &dir,
        &s,
    );
    let raw = raw_json(&alert);
    assert_eq!(raw["box_user_id"], "2320");
    assert_eq!(raw["box_login"], "some@email.com");
    assert_eq!(raw["account"], "some");

    // The JAVA fixture's users live at user.com, mapped to USERCOM.
    let device = render(&sample("event-16-add-login-activity-device.json"), &dir, &s);
    let raw = raw_json(&device);
    assert_eq!(raw["account"], "example");
    assert_eq!(raw["account_domain"], "USERCOM");
    assert_eq!(raw["uef_rejected"], "source_ip_not_ipv4");
}

/// Times: Pacific offsets to UTC, `recorded_at`-only events, and Shield alerts whose own
/// time is kept apart from the event's; the collection time is never the event time.
#[test]
fn timestamps() {
    let dir = directory();
    let s = settings();
    let raw_of = |event: &Value| raw_json(&render(event, &dir, &s));
    let login = sample("event-01-login.json");
    let raw = raw_of(&login);
    assert_eq!(raw["event_time"], "2024-03-05T16:14:22.000Z");
    assert_eq!(raw["collected_at"], "2025-06-15T15:06:40.000Z");

    let mut recorded_only = sample("event-19-item-download-user-stream.json");
    recorded_only.as_object_mut().unwrap().remove("created_at");
    let raw = raw_of(&recorded_only);
    assert_eq!(raw["event_time"], "2022-07-20T09:32:16.000Z");
    assert_eq!(raw["event_time_field"], "recorded_at");

    let alert = sample("event-13-shield-alert-suspicious-sessions.json");
    let raw = raw_of(&alert);
    assert_eq!(raw["event_time"], "2019-12-20T19:38:56.000Z");
    assert_eq!(raw["alert_time"], "2019-12-20T19:38:16.000Z");

    let mut alert_only = alert.clone();
    alert_only.as_object_mut().unwrap().remove("created_at");
    let raw = raw_of(&alert_only);
    assert_eq!(raw["event_time"], "2019-12-20T19:38:16.000Z");
    assert_eq!(
        raw["event_time_field"],
        "additional_details.shield_alert.created_at"
    );

    let mut timeless = login.clone();
    timeless.as_object_mut().unwrap().remove("created_at");
    let r = render(&timeless, &dir, &s);
    assert_eq!(r.uef_rejected, Some(Reason::MissingTime));
    let raw = raw_json(&r);
    assert_eq!(raw["event_time"], Value::Null);
    assert_eq!(raw["collected_at_ms"], COLLECTED_AT_MS);

    let mut fractional = login;
    fractional["created_at"] = json!("2024-03-05T08:14:22.987654-08:00");
    let uef = uef_json(&render(&fractional, &dir, &s));
    assert_eq!(uef["time"], "2024-03-05T16:14:22.987Z");
}

/// `send_unparsed = false` sends raw records for ingress and admin activity only, and
/// ingress events refused as UEF regardless.
#[test]
fn send_unparsed_off() {
    let dir = directory();
    let mut mapping = Mapping {
        send_unparsed: false,
        ..Mapping::default()
    };
    mapping.default_domain = Some("CORP".into());
    let s = Settings::from_mapping(&mapping, "test");
    let all = sample("events.json");
    for event in all.as_array().unwrap() {
        let r = render(event, &dir, &s);
        let sent = matches!(r.kind.as_str(), "ingress" | "admin_activity");
        assert_eq!(r.raw.is_some(), sent, "{}", event["event_type"]);
    }
}

/// The OAuth switch turns token grants into UEF successes.
#[test]
fn oauth_switch() {
    let mapping = Mapping {
        oauth_as_ingress: true,
        ..Mapping::default()
    };
    let s = Settings::from_mapping(&mapping, "test");
    let event = sample("event-17-oauth2-access-token-create.json");
    let r = render(&event, &directory(), &s);
    let uef = support::check_uef(r.uef.as_deref().unwrap()).unwrap();
    assert_eq!(uef["account"], "andrea.zhou");
    assert_eq!(uef["source_ip"], "192.168.1.1");
    assert_eq!(uef["account_domain"], Value::Null);
}
