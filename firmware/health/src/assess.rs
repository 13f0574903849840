//! The fold of [`Facts`] into [`Health`]: thresholds, per-component verdicts, derived numbers.

use serde::{Deserialize, Serialize};

use crate::VerifierState;
use crate::facts::{AuthState, BoxFacts, Facts, SinkFacts, SinkState};
use crate::problem::{Component, Level, Problem, ProblemCode, Severity};

/// Box is failing after this many consecutive failed calls (with the poller's backoff of 1 s
/// doubling, about ten minutes of failures).
pub const BOX_FAILING_FAILURES: u32 = 10;

/// Box is failing when no call succeeded for this long (10 min), unless Box asked us to wait,
/// the queue is full, or the clock is not synchronised (the poller is waiting on purpose then).
/// Before the first success the firmware's uptime is measured instead.
pub const BOX_STALE_AFTER_MS: u64 = 10 * 60 * 1000;

/// A sink is failing after this many consecutive failed attempts (with the forwarder's backoff
/// of 1 s doubling up to 5 min, about 13 minutes).
pub const SINK_FAILING_ATTEMPTS: u32 = 10;

/// A sink is failing when its current run of failures started this long ago (15 min). Only
/// judged once the clock is synchronised.
pub const SINK_FAILING_AFTER_MS: u64 = 15 * 60 * 1000;

/// A verifier canary still pending after this long (15 min) makes the sink degraded.
pub const VERIFY_PENDING_GRACE_MS: u64 = 15 * 60 * 1000;

/// The queue is "nearly full" from this share of its quota (percent).
pub const QUEUE_NEARLY_FULL_PERCENT: u64 = 80;

/// The queue is "full" from this share of its quota (percent): the poller stops advancing.
pub const QUEUE_FULL_PERCENT: u64 = 100;

/// How long (monotonic seconds) the clock may take to synchronise after start before a person
/// is asked to look (5 min).
pub const CLOCK_GRACE_SECS: u64 = 5 * 60;

/// Longest component-supplied text (error messages, reasons) copied into a problem message, in
/// characters. Longer texts are cut and end with `…`.
pub const MAX_DETAIL_CHARS: usize = 300;

/// The appliance as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// Everything configured works.
    Ok,
    /// Working through trouble by itself (retrying, throttled, catching up, waiting).
    Degraded,
    /// Setup is not complete (and nothing critical is wrong).
    SetupNeeded,
    /// Something is critical, or a person is needed.
    Failing,
}

impl Overall {
    /// Every overall level.
    pub const ALL: [Self; 4] = [Self::Ok, Self::Degraded, Self::SetupNeeded, Self::Failing];

    /// The spelling used in JSON and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::SetupNeeded => "setup_needed",
            Self::Failing => "failing",
        }
    }
}

/// The verdict on one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentHealth {
    /// How it is doing (the worst level among its problems).
    pub level: Level,
    /// One line in plain words (its most important problem, or what it is doing).
    pub summary: String,
    /// What the administrator should do, if anything.
    pub fix: Option<String>,
}

/// The verdict on every component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// Box (authorisation, poller, sweep).
    #[serde(rename = "box")]
    pub box_: ComponentHealth,
    /// The Collector sink.
    pub collector: ComponentHealth,
    /// The Log Search sink.
    pub log_search: ComponentHealth,
    /// The store and its queue.
    pub store: ComponentHealth,
    /// The clock.
    pub clock: ComponentHealth,
    /// The LEDs.
    pub board: ComponentHealth,
}

impl Components {
    /// The verdict on `component` (`System` has none of its own: `None`).
    pub fn get(&self, component: Component) -> Option<&ComponentHealth> {
        match component {
            Component::System => None,
            Component::Box => Some(&self.box_),
            Component::Collector => Some(&self.collector),
            Component::LogSearch => Some(&self.log_search),
            Component::Store => Some(&self.store),
            Component::Clock => Some(&self.clock),
            Component::Board => Some(&self.board),
        }
    }
}

/// Numbers derived from the facts (all `None` when the facts do not allow them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// Seconds between now and the newest Box event seen (a quiet enterprise also shows a lag).
    pub lag_secs: Option<u64>,
    /// Seconds since a Box call last succeeded.
    pub since_last_poll_secs: Option<u64>,
    /// While a backfill or catch-up runs: seconds of Box history still to read.
    pub catch_up_remaining_secs: Option<u64>,
    /// Database file size as a percentage of the quota (may exceed 100).
    pub queue_use_percent: Option<u64>,
    /// Age in seconds of the oldest record some configured sink still has to deliver.
    pub oldest_undelivered_secs: Option<u64>,
}

/// The appliance's health: what the LEDs, the status page, `boxidr status --json` and
/// `/metrics` say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The verdict on the whole appliance.
    pub overall: Overall,
    /// The verdict on each component.
    pub components: Components,
    /// Every current problem, most important first (see [`crate::problem`] for the order).
    pub problems: Vec<Problem>,
    /// Numbers derived from the facts.
    pub derived: Derived,
}

impl Health {
    /// The first problem that lights the ATTENTION LED, if any.
    pub fn top_attention(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.attention.is_some())
    }

    /// Whether a problem with `code` is current.
    pub fn has(&self, code: ProblemCode) -> bool {
        self.problems.iter().any(|p| p.code == code)
    }
}

/// Folds the facts into the health verdict. Pure and total: any facts give a verdict.
pub fn assess(facts: &Facts) -> Health {
    let derived = derive(facts);
    let mut problems = Vec::new();

    let setup_needed = !facts.setup_complete
        || !box_configured(&facts.box_)
        || !(sink_configured(&facts.collector) || sink_configured(&facts.log_search));
    if setup_needed {
        let mut missing = Vec::new();
        if !box_configured(&facts.box_) {
            missing.push("Box");
        }
        if !(sink_configured(&facts.collector) || sink_configured(&facts.log_search)) {
            missing.push("InsightIDR");
        }
        let detail = (!missing.is_empty()).then(|| format!("{} not set up", missing.join(" and ")));
        problems.push(Problem::new(
            ProblemCode::SetupNeeded,
            Component::System,
            detail,
        ));
    }

    let box_problems = assess_box(facts, &derived);
    let collector = assess_sink(facts, &facts.collector, Component::Collector);
    let log_search = assess_sink(facts, &facts.log_search, Component::LogSearch);
    let store = assess_store(facts, &derived);
    let clock = assess_clock(facts);
    let board = assess_board(facts);

    let components = Components {
        box_: verdict(
            box_configured(&facts.box_),
            &box_problems,
            box_ok_summary(facts),
        ),
        collector: verdict(
            sink_configured(&facts.collector),
            &collector,
            sink_ok_summary(&facts.collector),
        ),
        log_search: verdict(
            sink_configured(&facts.log_search),
            &log_search,
            sink_ok_summary(&facts.log_search),
        ),
        store: verdict(true, &store, store_ok_summary(&derived)),
        clock: verdict(true, &clock, "synchronised".to_owned()),
        board: verdict(true, &board, "LEDs driven".to_owned()),
    };

    problems.extend(box_problems);
    problems.extend(collector);
    problems.extend(log_search);
    problems.extend(store);
    problems.extend(clock);
    problems.extend(board);
    problems.sort_by_key(Problem::priority_key);

    let worst = problems.iter().map(|p| p.severity).max();
    let any_degraded = [
        &components.box_,
        &components.collector,
        &components.log_search,
        &components.store,
        &components.clock,
        &components.board,
    ]
    .iter()
    .any(|c| c.level >= Level::Degraded);
    let overall = if worst == Some(Severity::Critical) {
        Overall::Failing
    } else if setup_needed {
        Overall::SetupNeeded
    } else if worst == Some(Severity::Error) {
        Overall::Failing
    } else if any_degraded || worst == Some(Severity::Warning) {
        Overall::Degraded
    } else {
        Overall::Ok
    };

    Health {
        overall,
        components,
        problems,
        derived,
    }
}

/// The verdict on a component from its (unsorted) problems.
fn verdict(configured: bool, problems: &[Problem], ok_summary: String) -> ComponentHealth {
    if !configured {
        return ComponentHealth {
            level: Level::NotConfigured,
            summary: "not set up".to_owned(),
            fix: None,
        };
    }
    let mut sorted: Vec<&Problem> = problems.iter().collect();
    sorted.sort_by_key(|p| p.priority_key());
    let level = sorted
        .iter()
        .map(|p| p.code.level())
        .max()
        .unwrap_or(Level::Ok)
        .max(Level::Ok);
    let summary = sorted
        .iter()
        .find(|p| p.code.level() == level && level != Level::Ok)
        .map_or(ok_summary, |p| p.message.clone());
    let fix = sorted.iter().find_map(|p| p.fix.clone());
    ComponentHealth {
        level,
        summary,
        fix,
    }
}

fn box_configured(b: &BoxFacts) -> bool {
    b.configured && b.auth != AuthState::NotConnected
}

fn sink_configured(s: &SinkFacts) -> bool {
    s.configured && s.state != SinkState::Disabled
}

fn derive(facts: &Facts) -> Derived {
    let now = facts.now_ms;
    let secs_since = |t: u64| now.saturating_sub(t) / 1000;
    let b = &facts.box_;
    let catch_up_remaining_secs = b
        .sweep_target_until_ms
        .map(|target| target.saturating_sub(b.sweep_covered_until_ms.unwrap_or(0)) / 1000)
        .filter(|&s| s > 0);
    let queue_use_percent = (facts.store.quota_bytes > 0).then(|| {
        let percent =
            u128::from(facts.store.file_bytes) * 100 / u128::from(facts.store.quota_bytes);
        u64::try_from(percent).unwrap_or(u64::MAX)
    });
    let oldest_undelivered_secs = [&facts.collector, &facts.log_search]
        .into_iter()
        .filter(|s| sink_configured(s) && s.pending > 0)
        .filter_map(|s| s.oldest_pending_collected_ms)
        .min()
        .map(secs_since);
    Derived {
        lag_secs: b.newest_event_created_ms.map(secs_since),
        since_last_poll_secs: b.last_success_ms.map(secs_since),
        catch_up_remaining_secs,
        queue_use_percent,
        oldest_undelivered_secs,
    }
}

/// Cuts component-supplied text to [`MAX_DETAIL_CHARS`] on a character boundary.
fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn assess_box(facts: &Facts, derived: &Derived) -> Vec<Problem> {
    let b = &facts.box_;
    let mut out = Vec::new();
    if !box_configured(b) {
        return out;
    }
    let mut add =
        |code, detail: Option<String>| out.push(Problem::new(code, Component::Box, detail));

    let throttled = b.throttled_until_ms.is_some_and(|t| t > facts.now_ms);
    let reauth = matches!(b.auth, AuthState::ReauthorisationNeeded { .. });
    match &b.auth {
        AuthState::ReauthorisationNeeded { reason } => {
            add(ProblemCode::BoxReauthorisationNeeded, Some(clip(reason)));
        }
        AuthState::RefreshFailing { error } => {
            add(ProblemCode::BoxRefreshFailing, Some(clip(error)));
        }
        AuthState::Ok | AuthState::NotConnected => {}
    }
    if let Some(reason) = b.halted.as_deref().filter(|_| !reauth) {
        add(ProblemCode::BoxHalted, Some(clip(reason)));
    }
    let halted = reauth || b.halted.is_some();

    // The poller waits on purpose in these cases: silence is not a failure.
    let waiting = throttled || b.queue_full || !facts.clock.synchronised;
    let silent_ms = match b.last_success_ms {
        Some(t) => facts.now_ms.saturating_sub(t),
        None => facts.uptime_secs.saturating_mul(1000),
    };
    let last_error = b.last_error.as_deref().map(clip);
    if !halted {
        if b.consecutive_failures >= BOX_FAILING_FAILURES
            || (!waiting && silent_ms >= BOX_STALE_AFTER_MS)
        {
            let detail = match &last_error {
                Some(e) => format!("{} failures in a row, last: {e}", b.consecutive_failures),
                None => format!("no successful call for {} s", silent_ms / 1000),
            };
            add(ProblemCode::BoxUnreachable, Some(detail));
        } else if b.consecutive_failures > 0 {
            let detail = match &last_error {
                Some(e) => format!("{} failures, last: {e}", b.consecutive_failures),
                None => format!("{} failures", b.consecutive_failures),
            };
            add(ProblemCode::BoxRetrying, Some(detail));
        }
    }
    if throttled {
        let secs = b
            .throttled_until_ms
            .map_or(0, |t| t.saturating_sub(facts.now_ms).div_ceil(1000));
        add(
            ProblemCode::BoxThrottled,
            Some(format!("for {secs} s more")),
        );
    }
    if b.queue_full {
        add(ProblemCode::BoxPausedQueueFull, None);
    }
    if let Some(note) = &b.unreadable {
        add(ProblemCode::BoxDataUnreadable, Some(clip(note)));
    }
    if !facts.clock.synchronised {
        add(ProblemCode::BoxWaitingForClock, None);
    }
    if let Some(remaining) = derived.catch_up_remaining_secs {
        add(
            ProblemCode::BoxCatchingUp,
            Some(format!(
                "{} of history left to read",
                plain_duration(remaining)
            )),
        );
    }
    if b.stream_recoveries > 0 {
        let detail = match &b.last_recovery {
            Some(note) => format!("{} times, last: {}", b.stream_recoveries, clip(note)),
            None => format!("{} times", b.stream_recoveries),
        };
        add(ProblemCode::BoxStreamRecovered, Some(detail));
    }
    out
}

fn box_ok_summary(facts: &Facts) -> String {
    match facts.box_.last_success_ms {
        Some(t) => format!(
            "events flowing (last poll {} s ago)",
            facts.now_ms.saturating_sub(t) / 1000
        ),
        None => "connected, first poll pending".to_owned(),
    }
}

fn assess_sink(facts: &Facts, s: &SinkFacts, component: Component) -> Vec<Problem> {
    let mut out = Vec::new();
    if !sink_configured(s) {
        return out;
    }
    let now = facts.now_ms;
    let mut add = |code, detail: Option<String>| out.push(Problem::new(code, component, detail));
    match &s.state {
        SinkState::Idle | SinkState::Delivering | SinkState::Disabled => {}
        SinkState::Retrying {
            error,
            attempt,
            since_ms,
        } => {
            let long = facts.clock.synchronised
                && since_ms.is_some_and(|t| now.saturating_sub(t) >= SINK_FAILING_AFTER_MS);
            let code = if *attempt >= SINK_FAILING_ATTEMPTS || long {
                ProblemCode::SinkUnreachable
            } else {
                ProblemCode::SinkRetrying
            };
            add(
                code,
                Some(format!("attempt {attempt}, last: {}", clip(error))),
            );
        }
        SinkState::ConfigError { reason } => add(ProblemCode::SinkConfigError, Some(clip(reason))),
        SinkState::Stopped => add(ProblemCode::SinkStopped, None),
    }
    match s.verifier {
        VerifierState::NotSeen { .. } => add(ProblemCode::SinkNotSeen, None),
        VerifierState::Pending { since_ms }
            if facts.clock.synchronised
                && now.saturating_sub(since_ms) >= VERIFY_PENDING_GRACE_MS =>
        {
            add(
                ProblemCode::SinkUnconfirmed,
                Some(format!(
                    "pending for {}",
                    plain_duration(now.saturating_sub(since_ms) / 1000)
                )),
            );
        }
        VerifierState::NotConfigured
        | VerifierState::Confirmed { .. }
        | VerifierState::Pending { .. } => {}
    }
    out
}

fn sink_ok_summary(s: &SinkFacts) -> String {
    let confirmed = matches!(s.verifier, VerifierState::Confirmed { .. });
    let what = match s.state {
        SinkState::Delivering => format!("delivering ({} pending)", s.pending),
        _ if s.pending > 0 => format!("{} pending", s.pending),
        _ => "caught up".to_owned(),
    };
    if confirmed {
        format!("{what}, confirmed in InsightIDR")
    } else {
        what
    }
}

fn assess_store(facts: &Facts, derived: &Derived) -> Vec<Problem> {
    let st = &facts.store;
    let mut out = Vec::new();
    let mut add =
        |code, detail: Option<String>| out.push(Problem::new(code, Component::Store, detail));
    if let Some(error) = &st.error {
        add(ProblemCode::StorageFault, Some(clip(error)));
    } else if let Some(error) = &st.self_test_error {
        add(
            ProblemCode::StorageFault,
            Some(format!("the storage self-test failed: {}", clip(error))),
        );
    }
    let percent = derived.queue_use_percent;
    let use_detail = percent.map(|p| {
        format!(
            "{p} % of {} used, {} records",
            plain_bytes(st.quota_bytes),
            st.queue_records
        )
    });
    if facts.box_.queue_full || percent.is_some_and(|p| p >= QUEUE_FULL_PERCENT) {
        add(ProblemCode::QueueFull, use_detail);
    } else if percent.is_some_and(|p| p >= QUEUE_NEARLY_FULL_PERCENT) {
        add(ProblemCode::QueueNearlyFull, use_detail);
    }
    if st.repaired {
        add(ProblemCode::StoreRepaired, None);
    }
    if st.reopens > 0 {
        add(
            ProblemCode::StoreReopened,
            Some(format!("{} times", st.reopens)),
        );
    }
    if st.dead_letters > 0 || st.dead_letters_full {
        let full = if st.dead_letters_full {
            "; they are full, so forwarding holds until they are removed"
        } else {
            ""
        };
        add(
            ProblemCode::DeadLetters,
            Some(format!(
                "{} records ({}){full}",
                st.dead_letters,
                plain_bytes(st.dead_letter_bytes)
            )),
        );
    }
    out
}

fn store_ok_summary(derived: &Derived) -> String {
    match derived.queue_use_percent {
        Some(p) => format!("queue at {p} % of its quota"),
        None => "queue writable".to_owned(),
    }
}

fn assess_clock(facts: &Facts) -> Vec<Problem> {
    let c = facts.clock;
    if c.synchronised {
        return Vec::new();
    }
    let detail = Some(format!("waiting for {}", plain_duration(c.waiting_secs)));
    let code = if c.waiting_secs >= CLOCK_GRACE_SECS {
        ProblemCode::ClockNotSynchronised
    } else {
        ProblemCode::ClockWaiting
    };
    vec![Problem::new(code, Component::Clock, detail)]
}

fn assess_board(facts: &Facts) -> Vec<Problem> {
    facts
        .board
        .gpio_error
        .as_deref()
        .map(|e| {
            Problem::new(
                ProblemCode::LedsUnavailable,
                Component::Board,
                Some(clip(e)),
            )
        })
        .into_iter()
        .collect()
}

/// `90 s`, `12 min`, `5 h`, `3 days`: rounded down to the largest whole unit.
fn plain_duration(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7_200 => format!("{} min", secs / 60),
        7_200..172_800 => format!("{} h", secs / 3_600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// `512 B`, `40 MiB`, `2 GiB`: rounded down.
fn plain_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..1_048_576 => format!("{} KiB", bytes / KIB),
        1_048_576..1_073_741_824 => format!("{} MiB", bytes / 1_048_576),
        _ => format!("{} GiB", bytes / 1_073_741_824),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text is cut on a character boundary and marked.
    #[test]
    fn clip_respects_characters() {
        let long = "é".repeat(MAX_DETAIL_CHARS + 5);
        let cut = clip(&long);
        assert_eq!(cut.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(clip("  short "), "short");
    }

    /// Durations and sizes read naturally at each unit boundary.
    #[test]
    fn plain_units() {
        assert_eq!(plain_duration(119), "119 s");
        assert_eq!(plain_duration(120), "2 min");
        assert_eq!(plain_duration(7_200), "2 h");
        assert_eq!(plain_duration(200_000), "2 days");
        assert_eq!(plain_bytes(1023), "1023 B");
        assert_eq!(plain_bytes(3 * 1_048_576), "3 MiB");
        assert_eq!(
            plain_bytes(u64::MAX),
            format!("{} GiB", u64::MAX / 1_073_741_824)
        );
    }
}
