//! The status report: the one document the setup page, `/status.json`, `/metrics`, the control
//! socket (`boxidr status`), the demo and the tests read.
//!
//! The firmware builds it in one place (`boxidr`'s `report` module) from the pipeline's watch
//! channels and the store's figures, every few seconds; everyone else deserialises it (or, in
//! process, reads it as it is). It carries the [`Facts`] the verdict was judged from, so
//! `/metrics` is computed on request ([`StatusReport::metrics`]) instead of being kept as text.
//!
//! Sections that only exist while Box is being read (`box`, `sinks`, `verifier`) and the LEDs
//! (absent without a board) are `None` and left out of the JSON. A section's missing fields read
//! as their defaults, so a reader tolerates a report from a slightly older firmware. Every string is untrusted
//! (errors quote Box and InsightIDR): renderers escape and bound them.

use std::collections::BTreeMap;

use boxidr_model::LedFrame;
use serde::{Deserialize, Serialize};

use crate::{Facts, Health, VerifierReport};

/// The status of a running service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Always [`ServiceState::Running`]: a stopped service has no report, only
    /// [`StoppedReport`].
    pub service: ServiceState,
    /// Firmware version, as printed by `boxidr --version`.
    pub version: String,
    /// Seconds since the firmware started (monotonic).
    pub uptime_secs: u64,
    /// Whether Box is being read.
    pub state: CollectingState,
    /// Why not, when [`state`](Self::state) is not `running`.
    pub reason: Option<String>,
    /// The Box readers, while they run.
    #[serde(rename = "box", default, skip_serializing_if = "Option::is_none")]
    pub box_: Option<BoxReport>,
    /// Both InsightIDR sinks, while they run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<SinksReport>,
    /// The canary verifier, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<VerifierReport>,
    /// The queue as the store holds it.
    pub store: StoreSection,
    /// What the LEDs show, when a board (physical or simulated) is driven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leds: Option<LedsReport>,
    /// The verdict on [`facts`](Self::facts).
    pub health: Health,
    /// The watchdog over the supervised parts.
    pub watchdog: WatchdogReport,
    /// What the verdict was judged from (and `/metrics` is computed from).
    pub facts: Facts,
}

impl StatusReport {
    /// The Prometheus text exposition of this report (`GET /metrics`).
    #[must_use]
    pub fn metrics(&self) -> String {
        crate::metrics(&self.facts, &self.health)
    }

    /// A report with only what `facts` say (the verdict judged from them), no reader, sink,
    /// verifier or LED section and an empty store: a base for tests and for tools that patch in
    /// what they need.
    #[must_use]
    pub fn from_facts(facts: Facts, state: CollectingState, reason: Option<String>) -> Self {
        let health = crate::assess(&facts);
        Self {
            service: ServiceState::Running,
            version: facts.version.clone(),
            uptime_secs: facts.uptime_secs,
            state,
            reason,
            box_: None,
            sinks: None,
            verifier: None,
            store: StoreSection::Figures(Box::default()),
            leds: None,
            health,
            watchdog: WatchdogReport::default(),
            facts,
        }
    }
}

/// What `boxidr status` prints with the service stopped: the store read directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedReport {
    /// Always [`ServiceState::Stopped`].
    pub service: ServiceState,
    /// Version of the `boxidr` binary that read the store.
    pub version: String,
    /// The queue as the store holds it.
    pub store: StoreSection,
}

/// What `boxidr status` reads: the running service's report, or the store alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceStatus {
    /// The service answered on its control socket.
    Running(Box<StatusReport>),
    /// No service is running.
    Stopped(StoppedReport),
}

impl ServiceStatus {
    /// The store section, which both carry.
    #[must_use]
    pub fn store(&self) -> &StoreSection {
        match self {
            Self::Running(r) => &r.store,
            Self::Stopped(s) => &s.store,
        }
    }
}

/// Whether the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// The service answered.
    Running,
    /// No service: the figures were read from the store.
    Stopped,
}

impl ServiceState {
    /// As in the JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// Whether Box is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectingState {
    /// The pipeline runs.
    Running,
    /// Waiting for the system clock to synchronise before anything starts.
    WaitingForTime,
    /// Box is not connected, or the pipeline cannot start (the report's `reason`).
    NotCollecting,
}

impl CollectingState {
    /// As in the JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::WaitingForTime => "waiting_for_time",
            Self::NotCollecting => "not_collecting",
        }
    }
}

/// What both Box readers (the stream poller and the sweep) count since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReaderReport {
    /// Pages committed.
    pub pages: u64,
    /// Events queued.
    pub appended: u64,
    /// Events the store already held (dropped by id).
    pub duplicates: u64,
    /// Entries kept raw because they could not be parsed.
    pub rejected_entries: u64,
    /// Events the event-type filter dropped.
    pub filtered: u64,
    /// Failed calls since the last success.
    pub consecutive_failures: u32,
    /// The most recent error (kept after recovery).
    pub last_error: Option<String>,
    /// Holding back: the queue is at its disk quota.
    pub queue_full: bool,
    /// Stopped for good, with the reason.
    pub halted: Option<String>,
}

/// The streaming poller (`admin_logs_streaming`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamReport {
    /// What both readers count.
    #[serde(flatten)]
    pub reader: ReaderReport,
    /// Times the stream position was recovered (Box refused it).
    pub recoveries: u64,
    /// What the last recovery did.
    pub last_recovery: Option<String>,
}

/// The completeness sweep (`admin_logs` by time window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepReport {
    /// What both readers count.
    #[serde(flatten)]
    pub reader: ReaderReport,
    /// Windows read to their end.
    pub windows_finished: u64,
    /// Everything created before this has been read (UTC text).
    pub covered_until: Option<String>,
    /// A backfill's or catch-up's target (UTC text), while one runs.
    pub target_until: Option<String>,
    /// A backfill or catch-up under way.
    pub progress: Option<ProgressReport>,
}

/// A backfill or catch-up under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressReport {
    /// Which of the two.
    pub kind: ProgressKind,
    /// Share of the span read, to one decimal.
    pub percent: f64,
    /// Events queued by it so far.
    pub events: u64,
    /// Estimated seconds left, once there is a rate to estimate from.
    pub eta_secs: Option<u64>,
    /// The span (ms since the epoch) and how far it is read.
    pub from_ms: u64,
    pub until_ms: u64,
    pub covered_ms: u64,
}

/// What a sweep with a target is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressKind {
    /// Catching up to a target that moves with the clock.
    CatchUp,
    /// Reading a fixed span of history (a backfill, or a catch-up that has stopped moving).
    BackfillOrCatchUp,
}

/// Both Box readers, and what they queued per event type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoxReport {
    /// The streaming poller.
    pub stream: StreamReport,
    /// The completeness sweep.
    pub sweep: SweepReport,
    /// Events queued per Box event type since start (both readers, no double counting: the
    /// store drops the second copy).
    #[serde(default)]
    pub by_type: BTreeMap<String, u64>,
}

/// Both InsightIDR sinks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SinksReport {
    /// The Collector (UEF over TLS).
    pub collector: SinkReport,
    /// Log Search (HTTPS).
    pub log_search: SinkReport,
}

/// One sink's forwarder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SinkReport {
    /// What it is doing.
    pub state: SinkStateName,
    /// The retry attempt and error, or the configuration error.
    pub detail: Option<String>,
    /// Records delivered since start.
    pub delivered: u64,
    /// Records passed over (not for this sink).
    pub skipped: u64,
    /// Records refused for good (dead letters) since start.
    pub rejected: u64,
    /// Last delivered queue sequence.
    pub cursor: u64,
    /// The most recent error (kept after recovery).
    pub last_error: Option<String>,
    /// When a record was last delivered (seconds since the epoch).
    pub last_delivered_at: Option<u64>,
}

/// A sink's state, without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkStateName {
    /// Caught up.
    Idle,
    /// Sending.
    Delivering,
    /// The last attempt failed; another is scheduled.
    Retrying,
    /// Stopped until the settings change.
    ConfigError,
    /// Not configured.
    #[default]
    Disabled,
    /// The task has ended.
    Stopped,
}

/// The store's figures, or why they cannot be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoreSection {
    /// The store did not answer. (First: untagged, and a [`StoreReport`] reads any object.)
    Unreadable {
        /// Why.
        error: String,
    },
    /// What the store reports.
    Figures(Box<StoreReport>),
}

impl StoreSection {
    /// The figures, when the store answered.
    #[must_use]
    pub fn figures(&self) -> Option<&StoreReport> {
        match self {
            Self::Figures(f) => Some(f),
            Self::Unreadable { .. } => None,
        }
    }
}

/// Queue, quota, cursors and I/O as the store holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreReport {
    /// Records in the queue.
    pub queue_records: u64,
    /// Size of the database file.
    pub file_bytes: u64,
    /// The disk quota (0: unknown).
    pub quota_bytes: u64,
    /// `file_bytes` as a share of the quota, to one decimal.
    pub quota_used_percent: f64,
    /// Age of the oldest record not yet delivered everywhere.
    pub oldest_pending_age_secs: Option<u64>,
    /// Each sink's place in the queue, by sink name.
    pub sinks: BTreeMap<String, PendingReport>,
    /// The readers' committed positions, by cursor key.
    pub cursors: BTreeMap<String, CursorReport>,
    /// Lifetime counters the store keeps.
    pub counters: CountersReport,
    /// Times the database was reopened after a storage error since start.
    pub reopens: u64,
    /// Whether opening needed redb's repair.
    pub repaired: bool,
    /// Write transactions committed since start.
    pub commits: u64,
    /// Durable commits since start.
    pub durable_commits: u64,
    /// fsyncs of the database file since start.
    pub fsyncs: u64,
    /// Bytes written to the database file since start.
    pub write_bytes: u64,
    /// Write transactions rolled back since start.
    pub rollbacks: u64,
    /// Records a destination refused for good, kept.
    pub dead_letters: u64,
    /// Their stored size.
    pub dead_letter_bytes: u64,
    /// Whether the dead letters are at their bound.
    pub dead_letters_full: bool,
}

/// One sink's place in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PendingReport {
    /// Whether the sink is enabled (a disabled one holds nothing back).
    pub enabled: bool,
    /// Last delivered sequence (0: nothing yet).
    pub cursor: u64,
    /// Records after it.
    pub pending: u64,
}

/// One reader's committed position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CursorReport {
    /// Box's stream position, verbatim.
    pub position: Option<String>,
    /// When the page that stored it was collected (ms since the epoch).
    pub updated_at_ms: u64,
    /// `created_at` of the newest event seen on it.
    pub last_created_at: Option<String>,
    /// Sweeps: the time window the position belongs to.
    pub window: Option<WindowReport>,
}

/// A sweep's `created_after`/`created_before` window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowReport {
    pub after: String,
    pub before: String,
}

/// The store's lifetime counters (each left out when it cannot be read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CountersReport {
    /// Records queued, canary records included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_appended: Option<u64>,
    /// Events dropped as already held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_duplicate: Option<u64>,
    /// Canary records queued (subtract from `events_appended` to count Box events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_records: Option<u64>,
}

/// What the LEDs show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedsReport {
    /// The looks of the four LEDs.
    pub frame: LedFrame,
    /// The board's own rendering of what it drives (simulated boards draw it in text).
    #[serde(default)]
    pub render: String,
}

/// The watchdog over the supervised parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchdogReport {
    /// systemd's watchdog interval, when systemd asks for one.
    pub systemd_secs: Option<f64>,
    /// Whether systemd is being fed (every part reports in time).
    pub feeding: bool,
    /// The parts that are late.
    pub late: Vec<String>,
    /// Every supervised part.
    pub parts: Vec<WatchdogPart>,
}

/// One supervised part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchdogPart {
    pub name: String,
    /// How long it may stay silent.
    pub budget_secs: u64,
    /// How long it has been silent.
    pub since_report_secs: u64,
    /// Waiting for work (not held to its budget).
    pub idle: bool,
    /// How far past its budget, when late.
    pub late_by_secs: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{VerifierState, scenarios};
    use boxidr_model::LedLook;

    fn full() -> StatusReport {
        let mut report =
            StatusReport::from_facts(scenarios::all_well(), CollectingState::Running, None);
        report.box_ = Some(BoxReport {
            stream: StreamReport {
                reader: ReaderReport {
                    pages: 3,
                    appended: 40,
                    last_error: Some("<b>x</b>".into()),
                    ..ReaderReport::default()
                },
                recoveries: 1,
                last_recovery: Some("restarted from now".into()),
            },
            sweep: SweepReport {
                progress: Some(ProgressReport {
                    kind: ProgressKind::CatchUp,
                    percent: 42.5,
                    events: 7,
                    eta_secs: None,
                    from_ms: 1,
                    until_ms: 3,
                    covered_ms: 2,
                }),
                ..SweepReport::default()
            },
            by_type: [("LOGIN".to_owned(), 4)].into(),
        });
        report.sinks = Some(SinksReport {
            collector: SinkReport {
                state: SinkStateName::Retrying,
                detail: Some("attempt 2: refused".into()),
                last_delivered_at: Some(1_800_000_000),
                ..SinkReport::default()
            },
            log_search: SinkReport::default(),
        });
        report.verifier = Some(VerifierReport {
            collector: VerifierState::Pending { since_ms: 5 },
            ..VerifierReport::default()
        });
        report.leds = Some(LedsReport {
            frame: LedFrame {
                system: LedLook::Heartbeat,
                box_link: LedLook::On,
                insightidr: LedLook::SlowBlink,
                attention: LedLook::Code(3),
            },
            render: "● ● ◐ ○".into(),
        });
        report.watchdog.parts.push(WatchdogPart {
            name: "poller".into(),
            late_by_secs: Some(4),
            ..WatchdogPart::default()
        });
        report
    }

    /// Every section survives JSON and back, so the CLI, the demo and the tests read what the
    /// service published.
    #[test]
    fn round_trip_through_json() {
        for report in [
            full(),
            StatusReport::from_facts(
                scenarios::first_start(),
                CollectingState::NotCollecting,
                Some("Box is not connected".into()),
            ),
        ] {
            let text = serde_json::to_string(&report).unwrap();
            let back: StatusReport = serde_json::from_str(&text).unwrap();
            assert_eq!(back, report, "{text}");
            let status: ServiceStatus = serde_json::from_str(&text).unwrap();
            assert_eq!(status, ServiceStatus::Running(Box::new(report)));
        }
        let stopped = StoppedReport {
            service: ServiceState::Stopped,
            version: "1".into(),
            store: StoreSection::Unreadable {
                error: "locked".into(),
            },
        };
        let text = serde_json::to_string(&stopped).unwrap();
        let status: ServiceStatus = serde_json::from_str(&text).unwrap();
        assert_eq!(status, ServiceStatus::Stopped(stopped));
    }

    /// The field names the README, scripts and the browser test rely on.
    #[test]
    fn json_keeps_its_field_names() {
        let value = serde_json::to_value(full()).unwrap();
        assert_eq!(value["service"], "running");
        assert_eq!(value["state"], "running");
        assert_eq!(value["box"]["stream"]["appended"], 40);
        assert_eq!(value["box"]["stream"]["recoveries"], 1);
        assert_eq!(value["box"]["sweep"]["progress"]["kind"], "catch_up");
        assert_eq!(value["box"]["by_type"]["LOGIN"], 4);
        assert_eq!(value["sinks"]["collector"]["state"], "retrying");
        assert_eq!(value["verifier"]["collector"]["state"], "pending");
        assert_eq!(value["leds"]["frame"]["attention"]["code"], 3);
        assert_eq!(value["store"]["queue_records"], 0);
        assert_eq!(value["watchdog"]["parts"][0]["late_by_secs"], 4);
        assert!(value["health"]["overall"].is_string());
        assert!(value.get("metrics").is_none(), "computed on request");
        let starting = serde_json::to_value(StatusReport::from_facts(
            scenarios::first_start(),
            CollectingState::WaitingForTime,
            None,
        ))
        .unwrap();
        assert_eq!(starting["state"], "waiting_for_time");
        for absent in ["box", "sinks", "verifier", "leds"] {
            assert!(starting.get(absent).is_none(), "{absent}: {starting}");
        }
        let unreadable = serde_json::to_value(StoreSection::Unreadable {
            error: "gone".into(),
        })
        .unwrap();
        assert_eq!(unreadable, serde_json::json!({"error": "gone"}));
        let back: StoreSection = serde_json::from_value(unreadable).unwrap();
        assert_eq!(
            back,
            StoreSection::Unreadable {
                error: "gone".into()
            },
            "an error is not read as empty figures"
        );
        let partial: StoreSection =
            serde_json::from_value(serde_json::json!({"queue_records": 3})).unwrap();
        assert_eq!(partial.figures().map(|f| f.queue_records), Some(3));
    }

    /// `/metrics` comes from the report's own facts and verdict.
    #[test]
    fn metrics_from_the_report() {
        let report = full();
        assert_eq!(
            report.metrics(),
            crate::metrics(&report.facts, &report.health)
        );
        assert!(report.metrics().contains("boxidr_"), "{}", report.metrics());
    }
}
