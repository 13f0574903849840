//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Every family has `# HELP` and `# TYPE` lines, names start with `boxidr_`, counters end in
//! `_total`, times are Unix seconds, sizes bytes. Label values are escaped (`\\`, `\"`, `\n`).
//! Families whose value is unknown (no delivery yet, no quota) emit no sample.

use std::fmt::Write as _;

use crate::VerifierState;
use crate::assess::{Health, Overall};
use crate::facts::{AuthState, Facts, SinkFacts, SinkState};
use crate::problem::{Component, Level};

/// The content type to serve the output of [`metrics`] with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the facts and the health verdict as Prometheus text.
pub fn metrics(facts: &Facts, health: &Health) -> String {
    let mut m = Writer::default();
    let b = &facts.box_;

    m.family("boxidr_build_info", "gauge", "Firmware version (always 1).");
    m.sample("boxidr_build_info", &[("version", &facts.version)], 1);
    m.family(
        "boxidr_uptime_seconds",
        "gauge",
        "Seconds since the firmware started.",
    );
    m.sample("boxidr_uptime_seconds", &[], facts.uptime_secs);
    m.family(
        "boxidr_setup_complete",
        "gauge",
        "1 when the setup page has been completed.",
    );
    m.sample(
        "boxidr_setup_complete",
        &[],
        u64::from(facts.setup_complete),
    );

    m.family(
        "boxidr_health",
        "gauge",
        "Overall health: 1 for the current level, 0 for the others.",
    );
    for level in Overall::ALL {
        let value = u64::from(health.overall == level);
        m.sample("boxidr_health", &[("level", level.as_str())], value);
    }
    m.family(
        "boxidr_component_health",
        "gauge",
        "Health per component: 1 for its current level, 0 for the others.",
    );
    for component in Component::ALL {
        let Some(verdict) = health.components.get(component) else {
            continue;
        };
        for level in Level::ALL {
            let value = u64::from(verdict.level == level);
            let labels = [("component", component.as_str()), ("level", level.as_str())];
            m.sample("boxidr_component_health", &labels, value);
        }
    }
    m.family(
        "boxidr_problem",
        "gauge",
        "Current problems (1 each), by stable code.",
    );
    for p in &health.problems {
        let labels = [
            ("code", p.code.as_str()),
            ("component", p.component.as_str()),
            ("severity", p.severity.as_str()),
        ];
        m.sample("boxidr_problem", &labels, 1);
    }

    m.family(
        "boxidr_box_configured",
        "gauge",
        "1 when Box credentials are configured.",
    );
    m.sample("boxidr_box_configured", &[], u64::from(b.configured));
    m.family(
        "boxidr_box_auth",
        "gauge",
        "Box authorisation: 1 for the current state, 0 for the others.",
    );
    let auth = match b.auth {
        AuthState::NotConnected => "not_connected",
        AuthState::Ok => "ok",
        AuthState::RefreshFailing { .. } => "refresh_failing",
        AuthState::ReauthorisationNeeded { .. } => "reauthorisation_needed",
    };
    for state in [
        "not_connected",
        "ok",
        "refresh_failing",
        "reauthorisation_needed",
    ] {
        m.sample(
            "boxidr_box_auth",
            &[("state", state)],
            u64::from(state == auth),
        );
    }
    m.family(
        "boxidr_box_last_success_timestamp_seconds",
        "gauge",
        "When a Box events call last succeeded.",
    );
    if let Some(t) = b.last_success_ms {
        m.sample_f(
            "boxidr_box_last_success_timestamp_seconds",
            &[],
            ms_to_secs(t),
        );
    }
    m.family(
        "boxidr_box_consecutive_failures",
        "gauge",
        "Failed Box calls since the last success.",
    );
    m.sample(
        "boxidr_box_consecutive_failures",
        &[],
        u64::from(b.consecutive_failures),
    );
    m.family(
        "boxidr_box_throttled",
        "gauge",
        "1 while Box asks us to wait (429 Retry-After).",
    );
    let throttled = b.throttled_until_ms.is_some_and(|t| t > facts.now_ms);
    m.sample("boxidr_box_throttled", &[], u64::from(throttled));
    m.family(
        "boxidr_box_halted",
        "gauge",
        "1 when the Box poller has stopped.",
    );
    m.sample("boxidr_box_halted", &[], u64::from(b.halted.is_some()));
    m.family(
        "boxidr_box_lag_seconds",
        "gauge",
        "Seconds between now and the newest Box event seen.",
    );
    if let Some(lag) = health.derived.lag_secs {
        m.sample("boxidr_box_lag_seconds", &[], lag);
    }
    m.family(
        "boxidr_box_catch_up_remaining_seconds",
        "gauge",
        "Seconds of Box history a running backfill or catch-up still has to read.",
    );
    m.sample(
        "boxidr_box_catch_up_remaining_seconds",
        &[],
        health.derived.catch_up_remaining_secs.unwrap_or(0),
    );
    let counters = [
        (
            "boxidr_box_events_collected_total",
            "Box events appended to the queue.",
            b.events_collected,
        ),
        (
            "boxidr_box_duplicates_dropped_total",
            "Duplicate Box events dropped by event id.",
            b.duplicates_dropped,
        ),
        (
            "boxidr_box_flagged_events_total",
            "Malformed Box events kept as flagged raw records.",
            b.flagged_events,
        ),
        (
            "boxidr_box_stream_recoveries_total",
            "Lost stream positions recovered through a catch-up.",
            b.stream_recoveries,
        ),
        (
            "boxidr_box_unreadable_pages_total",
            "Stream positions given up or admin_logs windows halved because Box's pages could not be read.",
            b.unreadable_pages,
        ),
    ];
    for (name, help, value) in counters {
        m.family(name, "counter", help);
        m.sample(name, &[], value);
    }

    sink_families(&mut m, facts);

    let st = &facts.store;
    m.family("boxidr_queue_records", "gauge", "Records in the queue.");
    m.sample("boxidr_queue_records", &[], st.queue_records);
    m.family(
        "boxidr_store_file_bytes",
        "gauge",
        "Size of the database file.",
    );
    m.sample("boxidr_store_file_bytes", &[], st.file_bytes);
    m.family(
        "boxidr_store_quota_bytes",
        "gauge",
        "Disk quota of the queue (0: unknown).",
    );
    m.sample("boxidr_store_quota_bytes", &[], st.quota_bytes);
    m.family(
        "boxidr_queue_use_ratio",
        "gauge",
        "Database file size over its quota (1 = full).",
    );
    if st.quota_bytes > 0 {
        // A ratio for display: f64 precision is plenty.
        let ratio = st.file_bytes as f64 / st.quota_bytes as f64;
        m.sample_f("boxidr_queue_use_ratio", &[], ratio);
    }
    m.family(
        "boxidr_queue_oldest_undelivered_seconds",
        "gauge",
        "Age of the oldest record a configured sink still has to deliver (0: none).",
    );
    m.sample(
        "boxidr_queue_oldest_undelivered_seconds",
        &[],
        health.derived.oldest_undelivered_secs.unwrap_or(0),
    );
    m.family(
        "boxidr_store_error",
        "gauge",
        "1 while the store cannot be written.",
    );
    m.sample("boxidr_store_error", &[], u64::from(st.error.is_some()));
    m.family(
        "boxidr_store_repaired",
        "gauge",
        "1 when opening the store needed a full repair.",
    );
    m.sample("boxidr_store_repaired", &[], u64::from(st.repaired));
    m.family(
        "boxidr_store_reopens_total",
        "counter",
        "Reopens of the store after a storage error.",
    );
    m.sample("boxidr_store_reopens_total", &[], st.reopens);
    m.family(
        "boxidr_store_self_test_failed",
        "gauge",
        "1 when the last storage self-test (write, fsync, read back) failed.",
    );
    m.sample(
        "boxidr_store_self_test_failed",
        &[],
        u64::from(st.self_test_error.is_some()),
    );
    m.family(
        "boxidr_store_commits_total",
        "counter",
        "Write transactions committed (group commit: several per durable commit).",
    );
    m.sample("boxidr_store_commits_total", &[], st.commits);
    m.family(
        "boxidr_store_durable_commits_total",
        "counter",
        "Durable commits of the store.",
    );
    m.sample(
        "boxidr_store_durable_commits_total",
        &[],
        st.durable_commits,
    );
    m.family(
        "boxidr_store_fsyncs_total",
        "counter",
        "fsyncs of the database file.",
    );
    m.sample("boxidr_store_fsyncs_total", &[], st.fsyncs);
    m.family(
        "boxidr_store_write_bytes_total",
        "counter",
        "Bytes written to the database file.",
    );
    m.sample("boxidr_store_write_bytes_total", &[], st.write_bytes);
    m.family(
        "boxidr_store_dead_letters",
        "gauge",
        "Records a destination refused for good, kept for download on the Maintenance page.",
    );
    m.sample("boxidr_store_dead_letters", &[], st.dead_letters);
    m.family(
        "boxidr_store_dead_letter_bytes",
        "gauge",
        "Stored size of the dead letters in bytes.",
    );
    m.sample("boxidr_store_dead_letter_bytes", &[], st.dead_letter_bytes);
    m.family(
        "boxidr_store_dead_letters_full",
        "gauge",
        "1 when the dead letters are at their bound and a sink holds until they are removed.",
    );
    m.sample(
        "boxidr_store_dead_letters_full",
        &[],
        u64::from(st.dead_letters_full),
    );

    m.family(
        "boxidr_clock_synchronised",
        "gauge",
        "1 when the system clock is synchronised.",
    );
    m.sample(
        "boxidr_clock_synchronised",
        &[],
        u64::from(facts.clock.synchronised),
    );
    m.family(
        "boxidr_leds_available",
        "gauge",
        "1 when the LEDs are being driven.",
    );
    m.sample(
        "boxidr_leds_available",
        &[],
        u64::from(facts.board.gpio_error.is_none()),
    );
    m.out
}

/// A per-sink family: name, help text, and how to read its value.
type SinkFamily = (&'static str, &'static str, fn(&SinkFacts) -> u64);

fn sink_families(m: &mut Writer, facts: &Facts) {
    let sinks: [(&str, &SinkFacts); 2] = [
        ("collector", &facts.collector),
        ("log_search", &facts.log_search),
    ];
    let gauges: [SinkFamily; 5] = [
        (
            "boxidr_sink_configured",
            "1 when the sink is configured and enabled.",
            |s| u64::from(s.configured && s.state != SinkState::Disabled),
        ),
        (
            "boxidr_sink_pending_records",
            "Records the sink still has to deliver.",
            |s| s.pending,
        ),
        (
            "boxidr_sink_retry_attempt",
            "Consecutive failed attempts (0 when not retrying).",
            |s| match s.state {
                SinkState::Retrying { attempt, .. } => u64::from(attempt),
                _ => 0,
            },
        ),
        (
            "boxidr_sink_config_error",
            "1 while the sink is stopped on refused settings.",
            |s| u64::from(matches!(s.state, SinkState::ConfigError { .. })),
        ),
        (
            "boxidr_sink_verified",
            "1 when the last verifier canary was found in InsightIDR.",
            |s| u64::from(matches!(s.verifier, VerifierState::Confirmed { .. })),
        ),
    ];
    for (name, help, value) in gauges {
        m.family(name, "gauge", help);
        for (sink, s) in sinks {
            m.sample(name, &[("sink", sink)], value(s));
        }
    }
    m.family(
        "boxidr_sink_last_delivered_timestamp_seconds",
        "gauge",
        "When the sink last delivered a record.",
    );
    for (sink, s) in sinks {
        if let Some(t) = s.last_delivered_ms {
            m.sample_f(
                "boxidr_sink_last_delivered_timestamp_seconds",
                &[("sink", sink)],
                ms_to_secs(t),
            );
        }
    }
    let counters: [SinkFamily; 2] = [
        ("boxidr_sink_delivered_total", "Records delivered.", |s| {
            s.delivered
        }),
        (
            "boxidr_sink_rejected_total",
            "Records the destination refused for good.",
            |s| s.rejected,
        ),
    ];
    for (name, help, value) in counters {
        m.family(name, "counter", help);
        for (sink, s) in sinks {
            m.sample(name, &[("sink", sink)], value(s));
        }
    }
}

/// Milliseconds to seconds; epoch milliseconds stay exact in an f64 for the next 285,000 years.
fn ms_to_secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Accumulates exposition lines.
#[derive(Debug, Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        if value.is_finite() {
            let _ = writeln!(self.out, " {value}");
        } else {
            self.out.push_str(" NaN\n");
        }
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
        }
        self.out.push('}');
    }
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `# HELP` text: backslash and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three characters the format reserves in label values are escaped, nothing else.
    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\\b\"c\nd é"), "a\\\\b\\\"c\\nd é");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
    }
}
