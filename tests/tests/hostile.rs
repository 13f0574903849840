//! RELIABILITY.md §6 scenario 24 end to end: Box events whose every string field carries CR,
//! LF, NUL, bidi overrides, quotes and markup go through the real service to both sinks.
//! Pass: the receiver counts exactly one Log Search entry per event and one UEF line per login
//! it was sent (none split, none merged, none dropped as unparsable), and nothing that reached
//! it is without its Box event id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use boxidr_system_tests::{Rig, proof};
use serde_json::{Value, json};

/// What goes into every string: line breaks of every kind, NUL, bidi controls, a quote, a
/// backslash, markup, and a UTF-8 line separator.
const HOSTILE: &str =
    "\r\n\u{0}\u{202e}\u{2066}\"\\<script>alert(1)</script>\u{2028}\u{85}\r\u{7f}end";

/// Fields whose value must stay meaningful for the event to be an event at all.
const KEEP: [&str; 3] = ["created_at", "event_type", "type"];

fn poison(value: &mut Value, key: Option<&str>) {
    match value {
        Value::String(s) if !key.is_some_and(|k| KEEP.contains(&k)) => s.push_str(HOSTILE),
        Value::Array(items) => items.iter_mut().for_each(|v| poison(v, key)),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k != "event_id" {
                    poison(v, Some(k.as_str()));
                }
            }
        }
        _ => {}
    }
}

/// Every event sample of the repository, each poisoned, with a fresh id per copy.
fn hostile_events(copies: usize) -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/box/samples");
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("event-") || name.starts_with("elastic-")) {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if event.get("event_id").is_some() {
            samples.push(event);
        }
    }
    assert!(samples.len() >= 15, "samples: {}", samples.len());
    let mut out = Vec::new();
    for copy in 0..copies {
        for (n, sample) in samples.iter().enumerate() {
            let mut event = sample.clone();
            poison(&mut event, None);
            event["event_id"] = json!(format!("hostile-{copy}-{n}"));
            out.push(event);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_end_to_end() {
    let rig = Rig::new(
        box_sim::SimConfig {
            rate: 0.0,
            backlog: 0,
            ..box_sim::SimConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let service = rig.start().await.unwrap();
    let events = hostile_events(3);
    let sent = events.len();
    rig.box_sim.add_events(events);
    let missing = rig.wait_delivered(Duration::from_secs(120)).await;
    let status = service.status();
    service.stop().await.unwrap();

    let counts = rig.idr_sim.delivery_counts();
    let totals = rig.idr_sim.totals();
    let unparsable = rig.idr_sim.rejected();
    let generated = rig.box_sim.generated_ids().len();
    let logins_uef = counts.uef.delivered();
    // The appliance's own canary records (delivery verifier) are not Box events: set apart.
    let injected: std::collections::BTreeSet<String> =
        rig.box_sim.generated_ids().into_iter().collect();
    let records = rig.idr_sim.logsearch_records();
    let is_canary = |r: &idr_sim::LogRecord| {
        r.box_event_id
            .as_deref()
            .is_some_and(|id| id.starts_with("boxidr-canary-"))
    };
    let entries = records
        .iter()
        .filter(|r| {
            r.box_event_id
                .as_ref()
                .is_some_and(|id| injected.contains(id))
        })
        .count();
    let foreign: Vec<&str> = records
        .iter()
        .filter(|r| {
            !is_canary(r)
                && r.box_event_id
                    .as_ref()
                    .is_none_or(|id| !injected.contains(id))
        })
        .map(|r| r.text.as_str())
        .collect();
    proof(&json!({
        "test": "hostile_strings_end_to_end",
        "figure": format!(
            "{sent} hostile events: Log Search {entries} entries ({} dups), UEF {logins_uef} lines, {} unparsable at the receiver, {} without an id, loss {}",
            counts.logsearch.duplicates(),
            unparsable.len(),
            totals.uef.without_id + totals.logsearch.without_id,
            missing.len(),
        ),
        "events": sent,
        "loss": missing.len(),
        "log_search_entries": entries,
        "uef_lines": totals.uef.deliveries,
        "unparsable": unparsable.len(),
    }));
    assert!(missing.is_empty(), "lost: {missing:?}\n{status:#}");
    assert_eq!(
        generated, sent,
        "the simulator holds only the injected events"
    );
    // One entry per event: none split into two, none merged, none repeated.
    assert!(
        foreign.is_empty(),
        "entries that are no injected event: {foreign:?}"
    );
    assert_eq!(entries, sent, "Log Search entries of the injected events");
    assert_eq!(counts.logsearch.duplicates(), 0);
    assert_eq!(totals.uef.duplicates, 0);
    assert_eq!(
        totals.uef.without_id + totals.logsearch.without_id,
        0,
        "a fragment of a record arrived on its own"
    );
    assert!(
        unparsable.is_empty(),
        "the receiver dropped inputs: {:?}",
        unparsable
            .iter()
            .map(|r| (&r.surface, &r.reason))
            .collect::<Vec<_>>()
    );
}
