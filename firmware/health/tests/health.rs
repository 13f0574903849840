//! `assess` at its thresholds, the overall verdict, derived numbers, serialisation, the
//! `/metrics` text checked line by line against the exposition format, and properties over any
//! facts.

use std::collections::{HashMap, HashSet};

use boxidr_health::scenarios::{NOW_MS, all_well, first_start, raising};
use boxidr_health::{
    AuthState, BOX_FAILING_FAILURES, BOX_STALE_AFTER_MS, BoardFacts, BoxFacts, CLOCK_GRACE_SECS,
    ClockFacts, Facts, Health, Level, Overall, ProblemCode, QUEUE_NEARLY_FULL_PERCENT,
    SINK_FAILING_AFTER_MS, SINK_FAILING_ATTEMPTS, Severity, SinkFacts, SinkState, StoreFacts,
    VERIFY_PENDING_GRACE_MS, VerifierState, assess, attention_code, led_frame, metrics,
    summary_frame,
};
use boxidr_model::{LedFrame, LedLook};
use proptest::prelude::*;

fn codes(health: &Health) -> Vec<ProblemCode> {
    health.problems.iter().map(|p| p.code).collect()
}

/// Box: retrying below the failure count, failing at it.
#[test]
fn box_failure_count_threshold() {
    let mut f = all_well();
    f.box_.consecutive_failures = BOX_FAILING_FAILURES - 1;
    let h = assess(&f);
    assert_eq!(codes(&h), [ProblemCode::BoxRetrying]);
    assert_eq!(h.components.box_.level, Level::Degraded);
    assert_eq!(h.overall, Overall::Degraded);
    f.box_.consecutive_failures = BOX_FAILING_FAILURES;
    let h = assess(&f);
    assert_eq!(codes(&h), [ProblemCode::BoxUnreachable]);
    assert_eq!(h.components.box_.level, Level::Failing);
    assert_eq!(h.overall, Overall::Failing);
}

/// Box: silent for the stale period is failing, unless the poller waits on purpose.
#[test]
fn box_silence_threshold_and_excuses() {
    let mut f = all_well();
    f.box_.last_success_ms = Some(NOW_MS - BOX_STALE_AFTER_MS + 1);
    assert!(assess(&f).problems.is_empty());
    f.box_.last_success_ms = Some(NOW_MS - BOX_STALE_AFTER_MS);
    assert_eq!(codes(&assess(&f)), [ProblemCode::BoxUnreachable]);

    let mut throttled = f.clone();
    throttled.box_.throttled_until_ms = Some(NOW_MS + 1);
    assert_eq!(codes(&assess(&throttled)), [ProblemCode::BoxThrottled]);

    let mut paused = f.clone();
    paused.box_.queue_full = true;
    assert!(!assess(&paused).has(ProblemCode::BoxUnreachable));

    let mut clockless = f.clone();
    clockless.clock = ClockFacts {
        synchronised: false,
        waiting_secs: 10,
    };
    let h = assess(&clockless);
    assert!(!h.has(ProblemCode::BoxUnreachable));
    assert!(h.has(ProblemCode::BoxWaitingForClock));

    // Before the first success, uptime stands in for the silence.
    let mut fresh = all_well();
    fresh.box_.last_success_ms = None;
    fresh.uptime_secs = BOX_STALE_AFTER_MS / 1000 - 1;
    let h = assess(&fresh);
    assert!(h.problems.is_empty());
    assert_eq!(h.components.box_.summary, "connected, first poll pending");
    fresh.uptime_secs += 1;
    assert_eq!(codes(&assess(&fresh)), [ProblemCode::BoxUnreachable]);
}

/// Sinks: retrying, then failing by attempts or by duration (the latter only with a good clock).
#[test]
fn sink_failure_thresholds() {
    let retrying = |attempt, since_ms| SinkState::Retrying {
        error: "timeout".to_owned(),
        attempt,
        since_ms,
    };
    let mut f = all_well();
    f.collector.state = retrying(SINK_FAILING_ATTEMPTS - 1, Some(NOW_MS - 1_000));
    assert_eq!(codes(&assess(&f)), [ProblemCode::SinkRetrying]);
    f.collector.state = retrying(SINK_FAILING_ATTEMPTS, None);
    assert_eq!(codes(&assess(&f)), [ProblemCode::SinkUnreachable]);
    f.collector.state = retrying(2, Some(NOW_MS - SINK_FAILING_AFTER_MS));
    let h = assess(&f);
    assert_eq!(codes(&h), [ProblemCode::SinkUnreachable]);
    assert_eq!(h.problems[0].component, boxidr_health::Component::Collector);
    assert_eq!(h.components.collector.level, Level::Failing);
    assert_eq!(h.components.log_search.level, Level::Ok);
    f.clock.synchronised = false;
    assert!(assess(&f).has(ProblemCode::SinkRetrying));
}

/// The verifier: a fresh canary is normal, a long-pending one or a missed one is not.
#[test]
fn verifier_thresholds() {
    let mut f = all_well();
    f.log_search.verifier = VerifierState::Pending {
        since_ms: NOW_MS - VERIFY_PENDING_GRACE_MS + 1,
    };
    assert!(assess(&f).problems.is_empty());
    f.log_search.verifier = VerifierState::Pending {
        since_ms: NOW_MS - VERIFY_PENDING_GRACE_MS,
    };
    assert_eq!(codes(&assess(&f)), [ProblemCode::SinkUnconfirmed]);
    f.log_search.verifier = VerifierState::NotSeen { at_ms: NOW_MS };
    let h = assess(&f);
    assert_eq!(codes(&h), [ProblemCode::SinkNotSeen]);
    assert_eq!(h.components.log_search.level, Level::Degraded);
}

/// The queue: nearly full from 80 %, full from 100 % or when the poller reports backpressure.
#[test]
fn queue_thresholds() {
    let mut f = all_well();
    f.store.quota_bytes = 1_000;
    f.store.file_bytes = QUEUE_NEARLY_FULL_PERCENT * 10 - 1;
    let h = assess(&f);
    assert!(h.problems.is_empty());
    assert_eq!(h.derived.queue_use_percent, Some(79));
    f.store.file_bytes += 1;
    assert_eq!(codes(&assess(&f)), [ProblemCode::QueueNearlyFull]);
    f.store.file_bytes = 1_000;
    let h = assess(&f);
    assert_eq!(codes(&h), [ProblemCode::QueueFull]);
    assert_eq!(h.overall, Overall::Failing);
    f.store.file_bytes = 10;
    f.box_.queue_full = true;
    assert_eq!(
        codes(&assess(&f)),
        [ProblemCode::QueueFull, ProblemCode::BoxPausedQueueFull]
    );
    // No quota known: no percentage, no queue problem.
    f.box_.queue_full = false;
    f.store.quota_bytes = 0;
    f.store.file_bytes = u64::MAX;
    let h = assess(&f);
    assert_eq!(h.derived.queue_use_percent, None);
    assert!(h.problems.is_empty());
    // Huge numbers do not overflow.
    f.store.quota_bytes = 1;
    assert_eq!(
        assess(&f).derived.queue_use_percent,
        Some(u64::MAX),
        "saturates"
    );
}

/// The clock: a short wait after boot is only information, a long one needs a person.
#[test]
fn clock_grace() {
    let mut f = all_well();
    f.clock = ClockFacts {
        synchronised: false,
        waiting_secs: CLOCK_GRACE_SECS - 1,
    };
    let h = assess(&f);
    assert!(h.has(ProblemCode::ClockWaiting));
    assert_eq!(attention_code(&h), None);
    assert_eq!(h.overall, Overall::Degraded);
    f.clock.waiting_secs = CLOCK_GRACE_SECS;
    let h = assess(&f);
    assert!(h.has(ProblemCode::ClockNotSynchronised));
    assert_eq!(h.overall, Overall::Failing);
    assert_eq!(h.components.clock.level, Level::Failing);
}

/// A failing storage self-test (scenario 16) is a storage fault: ATTENTION fast blink and code
/// 1 on the button, the self-test's reason in the message; a reopen after an I/O error lights
/// code 1 as well.
#[test]
fn storage_self_test_and_reopen_need_a_person() {
    let mut f = all_well();
    f.store.self_test_error = Some("fsync /var/lib/boxidr/.boxidr-selftest: EIO".to_owned());
    let h = assess(&f);
    assert!(h.has(ProblemCode::StorageFault), "{:?}", h.problems);
    assert_eq!(
        boxidr_health::attention_code(&h),
        Some(boxidr_model::AttentionCode::StorageFault)
    );
    assert_eq!(led_frame(&h).attention, LedLook::FastBlink);
    assert!(
        h.problems
            .iter()
            .any(|p| p.message.contains("self-test failed: fsync"))
    );
    let mut f = all_well();
    f.store.reopens = 2;
    let h = assess(&f);
    assert_eq!(
        boxidr_health::attention_code(&h),
        Some(boxidr_model::AttentionCode::StorageFault)
    );
    let metrics = boxidr_health::metrics(&f, &h);
    assert!(
        metrics.contains("boxidr_store_reopens_total 2"),
        "{metrics}"
    );
}

/// The overall verdict: critical beats setup, setup beats errors, information alone is fine.
#[test]
fn overall_levels() {
    assert_eq!(assess(&all_well()).overall, Overall::Ok);
    assert_eq!(assess(&first_start()).overall, Overall::SetupNeeded);
    let mut f = first_start();
    f.store.error = Some("disk I/O error".to_owned());
    assert_eq!(assess(&f).overall, Overall::Failing);
    let mut f = first_start();
    f.clock = raising(ProblemCode::ClockNotSynchronised).clock;
    assert_eq!(assess(&f).overall, Overall::SetupNeeded);
    for code in [ProblemCode::BoxStreamRecovered, ProblemCode::StoreRepaired] {
        assert_eq!(assess(&raising(code)).overall, Overall::Ok, "{code}");
    }
    // A storage error a reopen got past still needs a person (the card may be failing).
    for code in [
        ProblemCode::BoxCatchingUp,
        ProblemCode::BoxThrottled,
        ProblemCode::StoreReopened,
    ] {
        assert_eq!(assess(&raising(code)).overall, Overall::Degraded, "{code}");
    }
    for code in ProblemCode::ALL {
        let h = assess(&raising(code));
        let expected = match code.severity() {
            Severity::Critical => Overall::Failing,
            _ if code == ProblemCode::SetupNeeded => Overall::SetupNeeded,
            Severity::Error => Overall::Failing,
            Severity::Warning => Overall::Degraded,
            Severity::Info => h.overall, // checked above
        };
        assert_eq!(h.overall, expected, "{code}");
    }
}

/// Component summaries name the problem and carry its fix; healthy ones say what they do.
#[test]
fn summaries_and_fixes() {
    let h = assess(&raising(ProblemCode::BoxReauthorisationNeeded));
    assert!(h.components.box_.summary.contains("invalid_grant"));
    assert_eq!(
        h.components.box_.fix.as_deref(),
        Some("Authorise Box again on the setup page.")
    );
    let h = assess(&all_well());
    assert_eq!(
        h.components.box_.summary,
        "events flowing (last poll 5 s ago)"
    );
    assert_eq!(
        h.components.collector.summary,
        "caught up, confirmed in InsightIDR"
    );
    assert_eq!(h.components.store.summary, "queue at 0 % of its quota");
    let h = assess(&first_start());
    assert_eq!(h.components.box_.level, Level::NotConfigured);
    assert_eq!(
        h.problems[0].message,
        "setup is not complete: Box and InsightIDR not set up"
    );
}

/// Derived numbers: lag, last poll, catch-up left, oldest undelivered over configured sinks.
#[test]
fn derived_numbers() {
    let mut f = all_well();
    f.collector.pending = 3;
    f.collector.oldest_pending_collected_ms = Some(NOW_MS - 90_000);
    f.log_search.pending = 1;
    f.log_search.oldest_pending_collected_ms = Some(NOW_MS - 30_000);
    let d = assess(&f).derived;
    assert_eq!(d.lag_secs, Some(60));
    assert_eq!(d.since_last_poll_secs, Some(5));
    assert_eq!(d.catch_up_remaining_secs, None);
    assert_eq!(d.oldest_undelivered_secs, Some(90));
    f.collector.configured = false;
    assert_eq!(assess(&f).derived.oldest_undelivered_secs, Some(30));
    let d = assess(&raising(ProblemCode::BoxCatchingUp)).derived;
    assert_eq!(d.catch_up_remaining_secs, Some(3 * 86_400 - 3_600));
}

/// Component-supplied text is bounded in problem messages.
#[test]
fn long_errors_are_clipped() {
    let mut f = all_well();
    f.store.error = Some("x".repeat(10_000));
    let h = assess(&f);
    assert!(h.problems[0].message.chars().count() < 400);
}

/// Facts and health round-trip through JSON with readable names (`box`, snake_case states).
#[test]
fn serialisation() {
    for code in ProblemCode::ALL {
        let facts = raising(code);
        let json = serde_json::to_string(&facts).unwrap();
        assert_eq!(serde_json::from_str::<Facts>(&json).unwrap(), facts);
        let health = assess(&facts);
        let json = serde_json::to_string(&health).unwrap();
        assert_eq!(serde_json::from_str::<Health>(&json).unwrap(), health);
    }
    let json =
        serde_json::to_value(assess(&raising(ProblemCode::BoxReauthorisationNeeded))).unwrap();
    assert_eq!(json["overall"], "failing");
    assert_eq!(json["components"]["box"]["level"], "failing");
    assert_eq!(json["problems"][0]["code"], "box_reauthorisation_needed");
    assert_eq!(json["problems"][0]["attention"], "reauthorisation_needed");
    let facts = serde_json::to_value(raising(ProblemCode::SinkRetrying)).unwrap();
    assert_eq!(facts["log_search"]["state"]["state"], "retrying");
    assert_eq!(facts["box"]["auth"]["state"], "ok");
}

// ---- Prometheus text exposition format 0.0.4 -------------------------------------------------

/// A parsed sample line.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse::<f64>().map_err(|e| format!("value {s:?}: {e}")),
    }
}

/// Parses `name{a="x",b="y"} value` with the format's escapes in label values.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = chars.next().ok_or("unterminated labels")?;
            if c == '}' {
                rest = &body[start + 1..];
                break;
            }
            let eq = body[start..].find('=').ok_or("label without =")? + start;
            let key = &body[start..eq];
            if !is_label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".to_owned());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => return Err(format!("bad escape \\{other}")),
                    },
                    '\n' => return Err("raw newline in label value".to_owned()),
                    c => value.push(c),
                }
            }
            labels.push((key.to_owned(), value));
            match chars.peek().map(|(_, c)| *c) {
                Some(',') => {
                    chars.next();
                }
                Some('}') => {}
                other => return Err(format!("expected , or }} after label, got {other:?}")),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before value in {line:?}"))?;
    let value = parse_value(value.split(' ').next().unwrap_or_default())?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Checks the whole text: every line is HELP, TYPE or a sample; each family has one HELP and
/// one TYPE before its samples, its samples are contiguous, no series repeats, counters end in
/// `_total` and are non-negative. Returns the samples.
fn check_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("no final newline".to_owned());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if !is_metric_name(name) || !helps.insert(name.to_owned()) {
                return Err(format!("bad or repeated HELP for {name:?}"));
            }
            if help.contains("\\") && help.replace("\\\\", "").replace("\\n", "").contains('\\') {
                return Err(format!("bad escape in HELP {help:?}"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or("TYPE without kind")?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(format!("bad type {kind:?}"));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(format!("repeated TYPE for {name}"));
            }
            if let Some(prev) = current.replace(name.to_owned()) {
                finished.insert(prev);
            }
        } else if line.starts_with('#') {
            // Other comments are allowed by the format; we write none.
            return Err(format!("unexpected comment {line:?}"));
        } else {
            let sample = parse_sample(line)?;
            let kind = types
                .get(&sample.name)
                .ok_or_else(|| format!("sample before TYPE: {line:?}"))?;
            if finished.contains(&sample.name) || current.as_deref() != Some(&sample.name) {
                return Err(format!("family {} not contiguous", sample.name));
            }
            if kind == "counter" && (!sample.name.ends_with("_total") || sample.value < 0.0) {
                return Err(format!("bad counter {line:?}"));
            }
            if !sample.name.starts_with("boxidr_") {
                return Err(format!("not a boxidr metric: {line:?}"));
            }
            let mut key = sample.labels.clone();
            key.sort();
            if !series.insert((sample.name.clone(), key)) {
                return Err(format!("repeated series {line:?}"));
            }
            samples.push(sample);
        }
    }
    for name in types.keys() {
        if !helps.contains(name) {
            return Err(format!("no HELP for {name}"));
        }
    }
    Ok(samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels.len() == s.labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|s| s.value)
}

/// The checker itself rejects what the format forbids.
#[test]
fn checker_rejects_bad_text() {
    for bad in [
        "boxidr_x 1\n",
        "# TYPE boxidr_x gauge\nboxidr_x 1\n",
        "# HELP boxidr_x h\n# TYPE boxidr_x gauge\nboxidr_x{a=\"b} 1\n",
        "# HELP boxidr_x h\n# TYPE boxidr_x gauge\nboxidr_x{a=\"\\q\"} 1\n",
        "# HELP boxidr_x h\n# TYPE boxidr_x gauge\nboxidr_x one\n",
        "# HELP boxidr_x h\n# TYPE boxidr_x counter\nboxidr_x 1\n",
        "# HELP boxidr_x h\n# TYPE boxidr_x gauge\nboxidr_x 1\nboxidr_x 2\n",
        "# HELP boxidr_x h\n# TYPE boxidr_x gauge\nboxidr_x 1",
    ] {
        assert!(check_exposition(bad).is_err(), "accepted {bad:?}");
    }
    let good = "# HELP boxidr_x_total h\\n\n# TYPE boxidr_x_total counter\nboxidr_x_total{a=\"q\\\"\\\\\\n\"} 1.5\n";
    let samples = check_exposition(good).unwrap();
    assert_eq!(samples[0].labels[0].1, "q\"\\\n");
}

/// The metrics of every scenario parse, and carry the expected values.
#[test]
fn metrics_parse_and_say_what_the_facts_say() {
    for code in ProblemCode::ALL {
        let facts = raising(code);
        let health = assess(&facts);
        let text = metrics(&facts, &health);
        let samples = check_exposition(&text).unwrap_or_else(|e| panic!("{code}: {e}\n{text}"));
        let problem = value(
            &samples,
            "boxidr_problem",
            &[
                ("code", code.as_str()),
                (
                    "component",
                    health
                        .problems
                        .iter()
                        .find(|p| p.code == code)
                        .map(|p| p.component.as_str())
                        .unwrap_or_default(),
                ),
                ("severity", code.severity().as_str()),
            ],
        );
        assert_eq!(problem, Some(1.0), "{code}");
    }
    let facts = raising(ProblemCode::SinkUnreachable);
    let health = assess(&facts);
    let samples = check_exposition(&metrics(&facts, &health)).unwrap();
    let v = |name, labels: &[(&str, &str)]| value(&samples, name, labels);
    /// A metric's name, its labels and its value.
    type Sample = (&'static str, &'static [(&'static str, &'static str)], f64);
    let expected: [Sample; 11] = [
        ("boxidr_sink_retry_attempt", &[("sink", "collector")], 12.0),
        ("boxidr_sink_retry_attempt", &[("sink", "log_search")], 0.0),
        (
            "boxidr_sink_delivered_total",
            &[("sink", "log_search")],
            1000.0,
        ),
        (
            "boxidr_sink_pending_records",
            &[("sink", "collector")],
            5000.0,
        ),
        ("boxidr_queue_oldest_undelivered_seconds", &[], 1200.0),
        ("boxidr_health", &[("level", "failing")], 1.0),
        ("boxidr_health", &[("level", "ok")], 0.0),
        (
            "boxidr_component_health",
            &[("component", "collector"), ("level", "failing")],
            1.0,
        ),
        (
            "boxidr_box_last_success_timestamp_seconds",
            &[],
            1_749_999_995.0,
        ),
        ("boxidr_box_lag_seconds", &[], 60.0),
        ("boxidr_box_auth", &[("state", "ok")], 1.0),
    ];
    for (name, labels, want) in expected {
        assert_eq!(v(name, labels), Some(want), "{name} {labels:?}");
    }
    assert!((v("boxidr_queue_use_ratio", &[]).unwrap() - 4.0 / 1024.0).abs() < 1e-12);
}

/// A version string with the format's special characters is escaped, not broken.
#[test]
fn metrics_escape_label_values() {
    let mut facts = all_well();
    facts.version = "1.0 \"beta\"\\\nnext".to_owned();
    let text = metrics(&facts, &assess(&facts));
    let samples = check_exposition(&text).unwrap();
    let info = samples
        .iter()
        .find(|s| s.name == "boxidr_build_info")
        .unwrap();
    assert_eq!(info.labels, [("version".to_owned(), facts.version.clone())]);
}

// ---- Properties over any facts ---------------------------------------------------------------

/// Times near the scenarios' "now" (where thresholds bite) and anywhere at all.
fn time_ms() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (NOW_MS - 2 * BOX_STALE_AFTER_MS)..(NOW_MS + 60_000),
        1 => any::<u64>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z \"\\\\\n]{0,20}",
        1 => any::<String>(),
        1 => "x{0,1000}",
    ]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..20, 1 => any::<u64>()]
}

fn auth() -> impl Strategy<Value = AuthState> {
    prop_oneof![
        Just(AuthState::NotConnected),
        Just(AuthState::Ok),
        text().prop_map(|error| AuthState::RefreshFailing { error }),
        text().prop_map(|reason| AuthState::ReauthorisationNeeded { reason }),
    ]
}

fn box_facts() -> impl Strategy<Value = BoxFacts> {
    (
        (
            any::<bool>(),
            auth(),
            proptest::option::of(time_ms()),
            prop_oneof![0u32..15, any::<u32>()],
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(time_ms()),
            proptest::option::of(text()),
            any::<bool>(),
        ),
        (
            count(),
            proptest::option::of(text()),
            proptest::option::of(time_ms()),
            proptest::option::of(time_ms()),
        ),
        (proptest::option::of(time_ms()), count(), count(), count()),
    )
        .prop_map(
            |(
                (configured, auth, last_success_ms, consecutive_failures),
                (last_error, throttled_until_ms, halted, queue_full),
                (stream_recoveries, last_recovery, sweep_covered_until_ms, sweep_target_until_ms),
                (newest_event_created_ms, events_collected, duplicates_dropped, flagged_events),
            )| BoxFacts {
                configured,
                auth,
                last_success_ms,
                consecutive_failures,
                last_error,
                throttled_until_ms,
                halted,
                queue_full,
                stream_recoveries,
                last_recovery,
                sweep_covered_until_ms,
                sweep_target_until_ms,
                newest_event_created_ms,
                events_collected,
                duplicates_dropped,
                flagged_events,
                unreadable_pages: 0,
                unreadable: None,
            },
        )
}

fn sink_state() -> impl Strategy<Value = SinkState> {
    prop_oneof![
        Just(SinkState::Idle),
        Just(SinkState::Delivering),
        (
            text(),
            prop_oneof![0u32..15, any::<u32>()],
            proptest::option::of(time_ms())
        )
            .prop_map(|(error, attempt, since_ms)| SinkState::Retrying {
                error,
                attempt,
                since_ms
            }),
        text().prop_map(|reason| SinkState::ConfigError { reason }),
        Just(SinkState::Disabled),
        Just(SinkState::Stopped),
    ]
}

fn verifier() -> impl Strategy<Value = VerifierState> {
    prop_oneof![
        Just(VerifierState::NotConfigured),
        time_ms().prop_map(|at_ms| VerifierState::Confirmed { at_ms }),
        time_ms().prop_map(|since_ms| VerifierState::Pending { since_ms }),
        time_ms().prop_map(|at_ms| VerifierState::NotSeen { at_ms }),
    ]
}

fn sink_facts() -> impl Strategy<Value = SinkFacts> {
    (
        any::<bool>(),
        sink_state(),
        count(),
        count(),
        proptest::option::of(time_ms()),
        count(),
        proptest::option::of(time_ms()),
        verifier(),
    )
        .prop_map(
            |(
                configured,
                state,
                delivered,
                rejected,
                last_delivered_ms,
                pending,
                oldest,
                verifier,
            )| {
                SinkFacts {
                    configured,
                    state,
                    delivered,
                    rejected,
                    last_delivered_ms,
                    pending,
                    oldest_pending_collected_ms: oldest,
                    verifier,
                }
            },
        )
}

fn store_facts() -> impl Strategy<Value = StoreFacts> {
    (
        count(),
        prop_oneof![0u64..2_000, any::<u64>()],
        prop_oneof![0u64..2_000, any::<u64>()],
        count(),
        proptest::option::of(text()),
        any::<bool>(),
    )
        .prop_map(
            |(queue_records, file_bytes, quota_bytes, reopens, error, repaired)| StoreFacts {
                queue_records,
                file_bytes,
                quota_bytes,
                reopens,
                error,
                repaired,
                self_test_error: None,
                ..StoreFacts::default()
            },
        )
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        (time_ms(), count(), text(), any::<bool>()),
        box_facts(),
        sink_facts(),
        sink_facts(),
        store_facts(),
        (any::<bool>(), prop_oneof![0u64..600, any::<u64>()]),
        proptest::option::of(text()),
    )
        .prop_map(
            |(
                (now_ms, uptime_secs, version, setup_complete),
                box_,
                collector,
                log_search,
                store,
                (synchronised, waiting_secs),
                gpio_error,
            )| Facts {
                now_ms,
                uptime_secs,
                version,
                setup_complete,
                box_,
                collector,
                log_search,
                store,
                clock: ClockFacts {
                    synchronised,
                    waiting_secs,
                },
                board: BoardFacts { gpio_error },
            },
        )
}

const ALLOWED: fn(LedLook) -> bool = |look| {
    matches!(
        look,
        LedLook::Off | LedLook::On | LedLook::SlowBlink | LedLook::FastBlink | LedLook::Heartbeat
    )
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any facts give a verdict and a frame that obeys the LED rules; the summary code is in
    /// range and agrees with the live frame; problems come sorted and consistent.
    #[test]
    fn any_facts_give_a_lawful_frame(facts in facts()) {
        let health = assess(&facts);
        let frame = led_frame(&health);
        prop_assert_eq!(frame.system, LedLook::Heartbeat);
        prop_assert!(frame != LedFrame::uniform(LedLook::FastBlink));
        for (_, look) in frame.iter() {
            prop_assert!(ALLOWED(look), "{:?}", look);
        }
        match summary_frame(&health) {
            Some(summary) => {
                prop_assert_ne!(frame.attention, LedLook::Off);
                let LedLook::Code(n) = summary.attention else {
                    return Err(TestCaseError::fail("summary without a code"));
                };
                prop_assert!((1..=7).contains(&n));
                prop_assert_eq!(Some(n), attention_code(&health).map(|c| c.flashes()));
            }
            None => prop_assert_eq!(frame.attention, LedLook::Off),
        }
        prop_assert!(health.problems.windows(2).all(|w| w[0].priority_key() <= w[1].priority_key()));
        for p in &health.problems {
            prop_assert_eq!(p.severity, p.code.severity());
            prop_assert_eq!(p.attention, p.code.attention());
            prop_assert!(p.message.chars().count() < 500);
        }
        let box_off = frame.box_link == LedLook::Off;
        prop_assert_eq!(box_off, !facts.box_.configured || facts.box_.auth == AuthState::NotConnected);
        let critical = health.problems.iter().any(|p| p.severity == Severity::Critical);
        if critical {
            prop_assert_eq!(health.overall, Overall::Failing);
        }
        if health.problems.is_empty() {
            prop_assert_eq!(health.overall, Overall::Ok);
        }
    }

    /// Any facts give metrics in the exposition format, and JSON that round-trips.
    #[test]
    fn any_facts_give_valid_metrics_and_json(facts in facts()) {
        let health = assess(&facts);
        let text = metrics(&facts, &health);
        if let Err(e) = check_exposition(&text) {
            return Err(TestCaseError::fail(format!("{e}\n{text}")));
        }
        let json = serde_json::to_string(&health).unwrap();
        prop_assert_eq!(serde_json::from_str::<Health>(&json).unwrap(), health);
        let json = serde_json::to_string(&facts).unwrap();
        prop_assert_eq!(serde_json::from_str::<Facts>(&json).unwrap(), facts);
    }
}
