//! The catalogue of problems the health model can report.
//!
//! Each [`ProblemCode`] has fixed properties: a [`Severity`], the [`Level`] it puts its component
//! in, and at most one [`AttentionCode`]. The LED look of every problem follows from these alone
//! (see [`crate::leds`]), so the catalogue *is* the LED table.
//!
//! # Priority
//!
//! Problems sort by severity (critical first), then by their position in [`ProblemCode::ALL`],
//! then by component. The first problem that carries an attention code decides the ATTENTION
//! LED and the code flashed after a short button press. For the problems that light ATTENTION
//! that order is:
//!
//! 1. `storage_fault` (critical, fast blink, 1 flash)
//! 2. `queue_full` (critical, fast blink, 5 flashes)
//! 3. `setup_needed` (error, on, 2 flashes)
//! 4. `box_reauthorisation_needed` (error, on, 3 flashes)
//! 5. `clock_not_synchronised` (error, on, 4 flashes)
//! 6. `queue_nearly_full` (warning, slow blink, 5 flashes)
//! 7. `leds_unavailable` (warning, slow blink, 6 flashes)
//! 8. `box_data_unreadable`, `dead_letters` (warning, slow blink, 7 flashes)

use boxidr_model::AttentionCode;
use serde::{Deserialize, Serialize};

/// How much a problem matters to the administrator. Ordered from least to most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing to do.
    Info,
    /// Trouble the box is working through by itself (retrying, waiting), or that will need a
    /// person soon.
    Warning,
    /// A person is needed; it will not get better by itself.
    Error,
    /// A person is needed now: events cannot be taken in.
    Critical,
}

impl Severity {
    /// The spelling used in JSON and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

/// The health of one component. Ordered from "nothing to say" to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Not set up (no credentials, sink disabled).
    NotConfigured,
    /// Working.
    Ok,
    /// Working through trouble by itself: retrying, throttled, catching up, waiting.
    Degraded,
    /// Not working and will not get better by itself.
    Failing,
}

impl Level {
    /// Every level, from "nothing to say" to worst.
    pub const ALL: [Self; 4] = [Self::NotConfigured, Self::Ok, Self::Degraded, Self::Failing];

    /// The spelling used in JSON and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Failing => "failing",
        }
    }
}

/// The part of the appliance a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The appliance as a whole (setup).
    System,
    /// Box: authorisation, events poller, completeness sweep.
    Box,
    /// The Collector sink (UEF over TLS).
    Collector,
    /// The Log Search sink (HTTPS).
    LogSearch,
    /// The redb store and its queue.
    Store,
    /// The system clock.
    Clock,
    /// LEDs and reset button.
    Board,
}

impl Component {
    /// Every component, in the order the status page lists them.
    pub const ALL: [Self; 7] = [
        Self::System,
        Self::Box,
        Self::Collector,
        Self::LogSearch,
        Self::Store,
        Self::Clock,
        Self::Board,
    ];

    /// The spelling used in JSON and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Box => "box",
            Self::Collector => "collector",
            Self::LogSearch => "log_search",
            Self::Store => "store",
            Self::Clock => "clock",
            Self::Board => "board",
        }
    }

    /// The name shown to people.
    pub const fn title(self) -> &'static str {
        match self {
            Self::System => "Appliance",
            Self::Box => "Box",
            Self::Collector => "Collector",
            Self::LogSearch => "Log Search",
            Self::Store => "Store",
            Self::Clock => "Clock",
            Self::Board => "LEDs",
        }
    }
}

/// Which components a problem code can be raised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// [`Component::System`].
    System,
    /// [`Component::Box`].
    Box,
    /// [`Component::Collector`] or [`Component::LogSearch`].
    Sink,
    /// [`Component::Store`].
    Store,
    /// [`Component::Clock`].
    Clock,
    /// [`Component::Board`].
    Board,
}

/// A stable identifier for each kind of problem. Serialised in `snake_case`; the strings never
/// change meaning once released (monitoring rules match on them). Declared in priority order
/// within each severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The store reports a storage error: the queue cannot be written.
    StorageFault,
    /// The queue has reached its disk quota: Box events are held back at Box.
    QueueFull,
    /// Setup is not complete (Box not linked, or no InsightIDR target).
    SetupNeeded,
    /// Box refused the grant for good: authorise again.
    BoxReauthorisationNeeded,
    /// The clock has not synchronised within [`crate::CLOCK_GRACE_SECS`].
    ClockNotSynchronised,
    /// The Box poller stopped for a reason other than authorisation.
    BoxHalted,
    /// Box calls keep failing, or none succeeded for [`crate::BOX_STALE_AFTER_MS`].
    BoxUnreachable,
    /// A sink stopped on refused settings (token, credentials, certificate).
    SinkConfigError,
    /// A sink keeps failing ([`crate::SINK_FAILING_ATTEMPTS`] or [`crate::SINK_FAILING_AFTER_MS`]).
    SinkUnreachable,
    /// The store was reopened after a storage error: the card may be failing.
    StoreReopened,
    /// The queue is above [`crate::QUEUE_NEARLY_FULL_PERCENT`] of its quota.
    QueueNearlyFull,
    /// The LEDs cannot be driven (GPIO unavailable).
    LedsUnavailable,
    /// Box sent pages that could not be read every time at the same place: the stream was
    /// re-anchored (its gap read through `admin_logs`), or an `admin_logs` window is stuck.
    BoxDataUnreadable,
    /// Records a destination refused for good are kept as dead letters (download them on the
    /// Maintenance page); at their bound a sink holds.
    DeadLetters,
    /// Refreshing the Box access token fails; retrying.
    BoxRefreshFailing,
    /// Box calls fail; retrying with backoff.
    BoxRetrying,
    /// A sink's last attempt failed; retrying with backoff.
    SinkRetrying,
    /// The verifier's canary was not found in InsightIDR.
    SinkNotSeen,
    /// A sink's forwarding task has ended.
    SinkStopped,
    /// Box rate-limits us (`429`, `Retry-After`).
    BoxThrottled,
    /// The poller holds back because the queue is full (backpressure).
    BoxPausedQueueFull,
    /// The poller waits for the clock before it calls Box.
    BoxWaitingForClock,
    /// A backfill or catch-up through `admin_logs` is running.
    BoxCatchingUp,
    /// The verifier's canary has been pending for longer than [`crate::VERIFY_PENDING_GRACE_MS`].
    SinkUnconfirmed,
    /// The clock is not synchronised yet (within the grace period after boot).
    ClockWaiting,
    /// A lost stream position was recovered through a catch-up.
    BoxStreamRecovered,
    /// The store needed a full repair when it was opened.
    StoreRepaired,
}

impl ProblemCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 27] = [
        Self::StorageFault,
        Self::QueueFull,
        Self::SetupNeeded,
        Self::BoxReauthorisationNeeded,
        Self::ClockNotSynchronised,
        Self::BoxHalted,
        Self::BoxUnreachable,
        Self::SinkConfigError,
        Self::SinkUnreachable,
        Self::StoreReopened,
        Self::QueueNearlyFull,
        Self::LedsUnavailable,
        Self::BoxDataUnreadable,
        Self::DeadLetters,
        Self::BoxRefreshFailing,
        Self::BoxRetrying,
        Self::SinkRetrying,
        Self::SinkNotSeen,
        Self::SinkStopped,
        Self::BoxThrottled,
        Self::BoxPausedQueueFull,
        Self::BoxWaitingForClock,
        Self::BoxCatchingUp,
        Self::SinkUnconfirmed,
        Self::ClockWaiting,
        Self::BoxStreamRecovered,
        Self::StoreRepaired,
    ];

    /// The stable `snake_case` string (the same as the serde spelling).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StorageFault => "storage_fault",
            Self::QueueFull => "queue_full",
            Self::SetupNeeded => "setup_needed",
            Self::BoxReauthorisationNeeded => "box_reauthorisation_needed",
            Self::ClockNotSynchronised => "clock_not_synchronised",
            Self::BoxHalted => "box_halted",
            Self::BoxUnreachable => "box_unreachable",
            Self::SinkConfigError => "sink_config_error",
            Self::SinkUnreachable => "sink_unreachable",
            Self::QueueNearlyFull => "queue_nearly_full",
            Self::LedsUnavailable => "leds_unavailable",
            Self::BoxDataUnreadable => "box_data_unreadable",
            Self::DeadLetters => "dead_letters",
            Self::BoxRefreshFailing => "box_refresh_failing",
            Self::BoxRetrying => "box_retrying",
            Self::SinkRetrying => "sink_retrying",
            Self::SinkNotSeen => "sink_not_seen",
            Self::SinkStopped => "sink_stopped",
            Self::BoxThrottled => "box_throttled",
            Self::BoxPausedQueueFull => "box_paused_queue_full",
            Self::BoxWaitingForClock => "box_waiting_for_clock",
            Self::BoxCatchingUp => "box_catching_up",
            Self::SinkUnconfirmed => "sink_unconfirmed",
            Self::ClockWaiting => "clock_waiting",
            Self::BoxStreamRecovered => "box_stream_recovered",
            Self::StoreRepaired => "store_repaired",
            Self::StoreReopened => "store_reopened",
        }
    }

    /// How serious it is.
    pub const fn severity(self) -> Severity {
        match self {
            Self::StorageFault | Self::QueueFull => Severity::Critical,
            Self::SetupNeeded
            | Self::BoxReauthorisationNeeded
            | Self::ClockNotSynchronised
            | Self::BoxHalted
            | Self::BoxUnreachable
            | Self::SinkConfigError
            | Self::SinkUnreachable => Severity::Error,
            Self::StoreReopened
            | Self::QueueNearlyFull
            | Self::LedsUnavailable
            | Self::BoxDataUnreadable
            | Self::DeadLetters
            | Self::BoxRefreshFailing
            | Self::BoxRetrying
            | Self::SinkRetrying
            | Self::SinkNotSeen
            | Self::SinkStopped => Severity::Warning,
            Self::BoxThrottled
            | Self::BoxPausedQueueFull
            | Self::BoxWaitingForClock
            | Self::BoxCatchingUp
            | Self::SinkUnconfirmed
            | Self::ClockWaiting
            | Self::BoxStreamRecovered
            | Self::StoreRepaired => Severity::Info,
        }
    }

    /// Which components it can be raised for.
    pub const fn scope(self) -> Scope {
        match self {
            Self::SetupNeeded => Scope::System,
            Self::BoxReauthorisationNeeded
            | Self::BoxHalted
            | Self::BoxUnreachable
            | Self::BoxRefreshFailing
            | Self::BoxRetrying
            | Self::BoxThrottled
            | Self::BoxPausedQueueFull
            | Self::BoxWaitingForClock
            | Self::BoxCatchingUp
            | Self::BoxStreamRecovered
            | Self::BoxDataUnreadable => Scope::Box,
            Self::SinkConfigError
            | Self::SinkUnreachable
            | Self::SinkRetrying
            | Self::SinkNotSeen
            | Self::SinkStopped
            | Self::SinkUnconfirmed => Scope::Sink,
            Self::StorageFault
            | Self::QueueFull
            | Self::QueueNearlyFull
            | Self::StoreRepaired
            | Self::StoreReopened
            | Self::DeadLetters => Scope::Store,
            Self::ClockNotSynchronised | Self::ClockWaiting => Scope::Clock,
            Self::LedsUnavailable => Scope::Board,
        }
    }

    /// The level it puts its component in (the component takes the worst of its problems).
    pub const fn level(self) -> Level {
        match self.severity() {
            Severity::Critical | Severity::Error => Level::Failing,
            Severity::Warning => Level::Degraded,
            Severity::Info => match self {
                Self::BoxStreamRecovered | Self::StoreRepaired => Level::Ok,
                _ => Level::Degraded,
            },
        }
    }

    /// The code the ATTENTION LED flashes for it, if it needs a person to act on the box's own
    /// behalf (link failures show on their link LED instead).
    pub const fn attention(self) -> Option<AttentionCode> {
        match self {
            Self::StorageFault | Self::StoreReopened => Some(AttentionCode::StorageFault),
            Self::BoxDataUnreadable | Self::DeadLetters => Some(AttentionCode::DataSetAside),
            Self::QueueFull | Self::QueueNearlyFull => Some(AttentionCode::QueueNearlyFull),
            Self::SetupNeeded => Some(AttentionCode::SetupNeeded),
            Self::BoxReauthorisationNeeded => Some(AttentionCode::ReauthorisationNeeded),
            Self::ClockNotSynchronised => Some(AttentionCode::ClockNotSynchronised),
            Self::LedsUnavailable => Some(AttentionCode::LedsUnavailable),
            _ => None,
        }
    }

    /// What the problem means, in plain words (the LED table and the status page).
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::StorageFault => "the queue on the SD card / SSD cannot be written",
            Self::QueueFull => "the queue is full, new Box events wait at Box",
            Self::SetupNeeded => "setup is not complete",
            Self::BoxReauthorisationNeeded => "Box authorisation revoked or expired",
            Self::ClockNotSynchronised => "the clock has not synchronised for 5 minutes",
            Self::BoxHalted => "the Box poller stopped and will not resume by itself",
            Self::BoxUnreachable => "Box calls keep failing",
            Self::SinkConfigError => "InsightIDR refused the settings",
            Self::SinkUnreachable => "InsightIDR unreachable for long",
            Self::QueueNearlyFull => "the queue is filling up (80 % of its quota)",
            Self::LedsUnavailable => "the LEDs cannot be driven",
            Self::BoxRefreshFailing => "refreshing the Box token fails, retrying",
            Self::BoxRetrying => "Box calls fail, retrying",
            Self::SinkRetrying => "sending to InsightIDR fails, retrying",
            Self::SinkNotSeen => "test event not found in InsightIDR",
            Self::SinkStopped => "forwarding to InsightIDR has stopped",
            Self::BoxThrottled => "Box rate-limits us, waiting as asked",
            Self::BoxPausedQueueFull => "Box polling paused until the queue drains",
            Self::BoxWaitingForClock => "Box polling waits for the clock",
            Self::BoxCatchingUp => "catching up on older Box events",
            Self::SinkUnconfirmed => "InsightIDR has not confirmed a test event yet",
            Self::ClockWaiting => "waiting for network time after start",
            Self::BoxStreamRecovered => "a lost Box stream position was recovered",
            Self::StoreRepaired => "the store was repaired after an unclean shutdown",
            Self::StoreReopened => "the store was reopened after a storage error",
            Self::BoxDataUnreadable => "Box sent data the box could not read",
            Self::DeadLetters => {
                "InsightIDR refused records for good; they are kept as dead letters"
            }
        }
    }

    /// What the administrator should do, if anything.
    pub const fn fix(self) -> Option<&'static str> {
        match self {
            Self::StorageFault => Some("Replace the SD card or SSD; contact support."),
            Self::QueueFull | Self::QueueNearlyFull => Some(
                "Check the InsightIDR side (the INSIGHTIDR LED and the sink status say which sink is behind).",
            ),
            Self::SetupNeeded => Some("Open the setup page and complete the setup."),
            Self::BoxReauthorisationNeeded => Some("Authorise Box again on the setup page."),
            Self::ClockNotSynchronised => {
                Some("Check that the network allows NTP (UDP port 123) to a time server.")
            }
            Self::BoxHalted => Some("Read the reason on the status page; restart the service."),
            Self::BoxUnreachable => Some(
                "Check the network route to api.box.com and Box's status page; the box keeps retrying.",
            ),
            Self::SinkConfigError => Some(
                "Check the InsightIDR settings on the setup page (host, port, token, certificate).",
            ),
            Self::SinkUnreachable => Some(
                "Check the network route to InsightIDR (Collector host and port, or the region endpoint).",
            ),
            Self::LedsUnavailable => Some(
                "Check the LED wiring and that the service may use the GPIO device; the box works without LEDs.",
            ),
            Self::SinkNotSeen => {
                Some("Check that the event source exists in InsightIDR and matches the settings.")
            }
            Self::SinkStopped => Some("Restart the service if it is not shutting down."),
            Self::StoreReopened => Some(
                "The SD card or SSD failed a write and may be failing: check `journalctl -u boxidr`, replace the card if it happens again.",
            ),
            Self::BoxDataUnreadable => Some(
                "Read the detail on the status page. The events around it are read again through admin_logs; if it stays, contact support with the diagnostics.",
            ),
            Self::DeadLetters => Some(
                "Download the dead letters on the Maintenance page (JSON lines, with the reason for each), then remove them there.",
            ),
            Self::BoxRefreshFailing
            | Self::BoxRetrying
            | Self::SinkRetrying
            | Self::BoxThrottled
            | Self::BoxPausedQueueFull
            | Self::BoxWaitingForClock
            | Self::BoxCatchingUp
            | Self::SinkUnconfirmed
            | Self::ClockWaiting
            | Self::BoxStreamRecovered
            | Self::StoreRepaired => None,
        }
    }

    /// Position in [`ProblemCode::ALL`] (priority within a severity).
    pub const fn rank(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the administrator may want to know about or act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Stable identifier.
    pub code: ProblemCode,
    /// What it is about.
    pub component: Component,
    /// How serious it is (always `code.severity()`).
    pub severity: Severity,
    /// What is wrong, in plain words, with the component's own detail where there is one.
    pub message: String,
    /// What to do, if anything.
    pub fix: Option<String>,
    /// The code the ATTENTION LED flashes for it (always `code.attention()`).
    pub attention: Option<AttentionCode>,
}

impl Problem {
    /// A problem of `code` about `component`, with `detail` (already bounded) after the meaning.
    pub fn new(code: ProblemCode, component: Component, detail: Option<String>) -> Self {
        let message = match detail {
            Some(detail) if !detail.is_empty() => format!("{}: {detail}", code.meaning()),
            _ => code.meaning().to_owned(),
        };
        Self {
            code,
            component,
            severity: code.severity(),
            message,
            fix: code.fix().map(str::to_owned),
            attention: code.attention(),
        }
    }

    /// The sort key: most serious first, then catalogue order, then component order.
    pub fn priority_key(&self) -> (std::cmp::Reverse<Severity>, usize, Component) {
        (
            std::cmp::Reverse(self.severity),
            self.code.rank(),
            self.component,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` lists every code once, in declaration order, and the strings are the serde names.
    #[test]
    fn catalogue_is_complete_and_stable() {
        for (i, code) in ProblemCode::ALL.into_iter().enumerate() {
            assert_eq!(code.rank(), i);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    /// Within the catalogue, severities never increase: declaration order is priority order.
    #[test]
    fn catalogue_is_sorted_by_severity() {
        for pair in ProblemCode::ALL.windows(2) {
            assert!(pair[0].severity() >= pair[1].severity(), "{pair:?}");
        }
    }

    /// Only problems a person must act on light ATTENTION, and every attention code is used.
    #[test]
    fn attention_codes_need_a_person() {
        for code in ProblemCode::ALL {
            if code.attention().is_some() {
                assert!(code.severity() >= Severity::Warning, "{code}");
                assert!(code.fix().is_some(), "{code}");
            }
        }
        for attention in AttentionCode::ALL {
            assert!(
                ProblemCode::ALL
                    .iter()
                    .any(|c| c.attention() == Some(attention)),
                "{attention:?} unused"
            );
        }
    }
}
