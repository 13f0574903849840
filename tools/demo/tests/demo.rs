//! `boxidr-demo` as a newcomer runs it: the summary's counts, and the fault tour on the LEDs.
#![allow(clippy::unwrap_used)] // a failed run should panic loudly

use std::process::Command;

fn demo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxidr-demo"))
}

/// `demo --auto --for 2s --json` ends with one JSON object carrying every documented count,
/// and the counts are consistent with each other.
#[test]
fn demo_auto_json_summary() {
    let out = demo()
        .args([
            "--auto",
            "--for",
            "2s",
            "--json",
            "--backlog",
            "20",
            "--rate",
            "20",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("some output");
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    let generated = summary["box_events_generated"].as_u64().unwrap();
    assert!(generated >= 20, "backlog alone is 20 events: {summary}");
    // The run ends with a drain: everything generated is collected and delivered.
    assert_eq!(summary["collected"].as_u64(), Some(generated), "{summary}");
    assert_eq!(summary["lost"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["uef_rejected"].as_u64(), Some(0), "{summary}");
    // Every event goes to Log Search (send-unparsed is on); only logins go to the Collector.
    let delivered = summary["delivered"].as_object().unwrap();
    assert_eq!(
        delivered["logsearch"].as_u64(),
        Some(generated),
        "{summary}"
    );
    let uef = delivered["uef"].as_u64().unwrap();
    assert!(uef > 0 && uef < generated, "{summary}");
    // Duplicates only come from re-delivery after a failure; this run has none.
    assert_eq!(summary["duplicates"].as_u64(), Some(0), "{summary}");
}

/// `demo --auto --faults`: the real service between the simulators goes through a Box outage,
/// an InsightIDR outage and a revoked Box authorisation (then the demo grants consent again).
/// The LEDs show each fault on the right LED, recover at the end, and nothing is lost.
#[test]
fn demo_fault_tour_shows_on_the_leds_and_loses_nothing() {
    let out = demo()
        .args([
            "--auto",
            "--faults",
            "--for",
            "48s",
            "--json",
            "--backlog",
            "30",
            "--rate",
            "5",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("some output")).unwrap();
    assert_eq!(summary["lost"].as_u64(), Some(0), "{summary}");
    assert_eq!(
        summary["collected"].as_u64(),
        summary["box_events_generated"].as_u64(),
        "{summary}"
    );
    let tour = summary["fault_tour"].as_array().expect("a fault tour");
    let phase = |name: &str| {
        tour.iter()
            .find(|p| p["fault"] == name)
            .unwrap_or_else(|| panic!("no {name} phase: {summary}"))
    };
    let saw = |name: &str, led: &str, pred: &dyn Fn(&str) -> bool| {
        phase(name)["leds_seen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| pred(f[led].as_str().unwrap_or("?")))
    };
    assert!(
        saw("box_outage", "box", &|look| look != "on"),
        "BOX never left 'on' during the Box outage: {summary}"
    );
    assert!(
        saw("insightidr_outage", "insightidr", &|look| look != "on"),
        "INSIGHTIDR never left 'on' during its outage: {summary}"
    );
    let problems = &phase("box_authorisation_revoked")["problems_seen"];
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "box_reauthorisation_needed"),
        "{summary}"
    );
    assert!(
        saw("box_authorisation_revoked", "box", &|look| look
            == "fast_blink"),
        "{summary}"
    );
    // Recovered by the end: both links lit steadily again.
    let end = &summary["leds_at_end"];
    assert_eq!(end["box"], "on", "{summary}");
    assert_eq!(end["insightidr"], "on", "{summary}");
}
