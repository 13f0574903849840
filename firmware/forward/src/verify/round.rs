//! The canary rounds as a sans-IO state machine ([`Rounds`]): when to queue a canary, when to
//! search for its marker, and what each search answer means for each sink's path. The thin task
//! that performs it against the store and the Platform API is [`super::task`].
//!
//! The task asks [`Rounds::step`] what to do (wait until an instant, queue a round's records,
//! search for a marker), does it, and reports back ([`Rounds::on_queued`],
//! [`Rounds::on_searched`]). The clock is read by the task and passed in ([`Now`]): a monotonic
//! instant for every wait and deadline (a wall clock stepped by NTP on an appliance without an
//! RTC moves neither) and the wall clock only for the times shown in the status.
//!
//! A round: the first after `first_after`, then one every `every` counted from the end of the
//! previous one (a round ends when every enabled sink's path is confirmed or at the deadline).
//! Each enabled sink's [`VerifierState`] goes Pending → Confirmed or NotSeen; a sink that is off
//! is never looked for; with no sink on, no canary is queued at all.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use boxidr_model::VerifierState;
use boxidr_store::SinkId;
use serde_json::Value;
use tracing::{info, warn};

/// Margin before the canary's queue time for the query window (clock skew between the
/// appliance and InsightIDR).
pub const SINCE_MARGIN: Duration = Duration::from_secs(60);

/// The moment the task passes in: monotonic for waits and deadlines, wall clock for stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub at: Instant,
    /// Wall clock, ms since the epoch.
    pub wall_ms: u64,
}

/// The schedule of the rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTimings {
    /// Before the first round.
    pub first_after: Duration,
    /// Between the end of one round and the start of the next.
    pub every: Duration,
    /// How long a canary may take to show up.
    pub deadline: Duration,
    /// Between searches while a canary is pending.
    pub search_every: Duration,
}

/// What the verifier publishes: the status report's `verifier` section, one
/// [`VerifierState`] per sink's path (`NotConfigured` for a path not looked at: no key, the
/// sink is off, or no round has started yet).
pub use boxidr_model::VerifierReport as CanaryStatus;

/// One sink's path in `status`.
fn set(status: &mut CanaryStatus, sink: SinkId, state: VerifierState) {
    match sink {
        SinkId::Collector => status.collector = state,
        SinkId::LogSearch => status.log_search = state,
    }
}

/// What the task should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing until this instant, then ask again.
    WaitUntil(Instant),
    /// Queue a round's canary records timed `at_ms` under a fresh marker, then report with
    /// [`Rounds::on_queued`].
    Queue {
        /// The records' time (ms since the epoch).
        at_ms: u64,
    },
    /// Search InsightIDR for `marker` in what arrived since `since_ms`, then report with
    /// [`Rounds::on_searched`].
    Search {
        /// The round's marker.
        marker: String,
        /// Start of the query window (ms since the epoch).
        since_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Between rounds.
    Idle { next_round: Instant },
    /// A round's records are being queued.
    Queueing { at_ms: u64 },
    /// A round's records are queued; looking for them.
    Searching {
        marker: String,
        since_ms: u64,
        give_up: Instant,
        next_search: Instant,
        unseen: BTreeSet<SinkId>,
    },
}

/// The sans-IO canary schedule and rounds for the enabled sinks.
#[derive(Debug, Clone)]
pub struct Rounds {
    timings: RoundTimings,
    sinks: Vec<SinkId>,
    phase: Phase,
    status: CanaryStatus,
}

impl Rounds {
    /// The schedule for the enabled `sinks`, started at `now` (the first round is due
    /// `first_after` later).
    pub fn new(timings: RoundTimings, sinks: &[SinkId], now: Now) -> Self {
        Self {
            timings,
            sinks: sinks.to_vec(),
            phase: Phase::Idle {
                next_round: now.at + timings.first_after,
            },
            status: CanaryStatus {
                configured: true,
                ..CanaryStatus::default()
            },
        }
    }

    /// What to publish.
    pub fn status(&self) -> &CanaryStatus {
        &self.status
    }

    /// The next thing to do. Asked again before the last action is reported, it repeats it.
    pub fn step(&mut self, now: Now) -> Action {
        match &self.phase {
            Phase::Idle { next_round } if now.at < *next_round => Action::WaitUntil(*next_round),
            Phase::Idle { .. } if self.sinks.is_empty() => {
                let next_round = now.at + self.timings.every;
                self.phase = Phase::Idle { next_round };
                Action::WaitUntil(next_round)
            }
            Phase::Idle { .. } => {
                self.phase = Phase::Queueing { at_ms: now.wall_ms };
                Action::Queue { at_ms: now.wall_ms }
            }
            Phase::Queueing { at_ms } => Action::Queue { at_ms: *at_ms },
            Phase::Searching { next_search, .. } if now.at < *next_search => {
                Action::WaitUntil(*next_search)
            }
            Phase::Searching {
                marker, since_ms, ..
            } => Action::Search {
                marker: marker.clone(),
                since_ms: *since_ms,
            },
        }
    }

    /// The round's records were queued under `marker` (or could not be: the round is skipped
    /// and the next one is due `every` later).
    pub fn on_queued(&mut self, marker: String, queued: Result<(), String>, now: Now) {
        let Phase::Queueing { at_ms } = self.phase else {
            return;
        };
        if let Err(e) = queued {
            warn!(error = %e, "Cannot queue the canary; next round at the next period.");
            self.status.last_error = Some(format!("cannot queue the canary: {e}"));
            self.end_round(now);
            return;
        }
        info!(%marker, "Canary queued.");
        self.status.rounds += 1;
        self.status.marker = Some(marker.clone());
        for sink in &self.sinks {
            set(
                &mut self.status,
                *sink,
                VerifierState::Pending { since_ms: at_ms },
            );
        }
        let give_up = now.at + self.timings.deadline;
        self.phase = Phase::Searching {
            marker,
            since_ms: now.wall_ms.saturating_sub(SINCE_MARGIN.as_millis() as u64),
            give_up,
            next_search: now.at + self.timings.search_every.min(self.timings.deadline),
            unseen: self.sinks.iter().copied().collect(),
        };
    }

    /// A search answered with the `messages` carrying the marker (or failed: retried until the
    /// deadline). Each sink whose canary is among them is confirmed; at the deadline the
    /// others are not seen.
    pub fn on_searched(&mut self, searched: Result<Vec<String>, String>, now: Now) {
        let Phase::Searching {
            marker,
            give_up,
            next_search,
            unseen,
            ..
        } = &mut self.phase
        else {
            return;
        };
        match searched {
            Ok(messages) => {
                self.status.last_error = None;
                for sink in messages.iter().filter_map(|m| path_of(m)) {
                    if unseen.remove(&sink) {
                        info!(%sink, %marker, "Canary seen in InsightIDR.");
                        set(
                            &mut self.status,
                            sink,
                            VerifierState::Confirmed { at_ms: now.wall_ms },
                        );
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "Canary search failed; retrying until the deadline.");
                self.status.last_error = Some(e);
            }
        }
        if !unseen.is_empty() && now.at >= *give_up {
            for sink in std::mem::take(unseen) {
                warn!(%sink, %marker, "Canary not seen in InsightIDR before the deadline.");
                set(
                    &mut self.status,
                    sink,
                    VerifierState::NotSeen { at_ms: now.wall_ms },
                );
            }
        }
        if unseen.is_empty() {
            self.end_round(now);
        } else {
            *next_search = now.at
                + self
                    .timings
                    .search_every
                    .min(give_up.saturating_duration_since(now.at));
        }
    }

    fn end_round(&mut self, now: Now) {
        self.phase = Phase::Idle {
            next_round: now.at + self.timings.every,
        };
    }
}

/// Which path a found message came by: a canary UEF line is the Collector's, a canary raw
/// record is Log Search's (the shapes `boxidr_normalize::canary` renders). Anything else that
/// merely contains the marker confirms nothing.
pub fn path_of(message: &str) -> Option<SinkId> {
    let value: Value = serde_json::from_str(message).ok()?;
    let flag = |v: &Value| v.get("boxidr_canary").and_then(Value::as_bool) == Some(true);
    if value.get("event_type").and_then(Value::as_str) == Some("INGRESS_AUTHENTICATION")
        && value.get("custom_data").is_some_and(flag)
    {
        Some(SinkId::Collector)
    } else if value.get("boxidr_kind").is_some() && flag(&value) {
        Some(SinkId::LogSearch)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const UEF: &str = r#"{"version":"v1","event_type":"INGRESS_AUTHENTICATION","custom_data":{"boxidr_canary":true}}"#;
    const RAW: &str = r#"{"boxidr_kind":"other","boxidr_canary":true}"#;

    const SECOND: Duration = Duration::from_secs(1);

    /// 1 s first round, 60 s between rounds, a 10 s deadline, a search every 3 s.
    const TIMINGS: RoundTimings = RoundTimings {
        first_after: SECOND,
        every: Duration::from_secs(60),
        deadline: Duration::from_secs(10),
        search_every: Duration::from_secs(3),
    };

    /// A fake clock: monotonic and wall time move together unless told otherwise.
    struct Clock {
        start: Instant,
        now: Now,
    }

    impl Clock {
        fn new() -> Self {
            let start = Instant::now();
            Self {
                start,
                now: Now {
                    at: start,
                    wall_ms: 1_700_000_000_000,
                },
            }
        }

        fn advance(&mut self, by: Duration) -> Now {
            self.now.at += by;
            self.now.wall_ms += by.as_millis() as u64;
            self.now
        }

        /// Moves to `at` (as a WaitUntil asked).
        fn until(&mut self, at: Instant) -> Now {
            let by = at - self.now.at;
            self.advance(by)
        }

        fn after(&self, by: Duration) -> Instant {
            self.now.at + by
        }

        fn elapsed(&self) -> Duration {
            self.now.at - self.start
        }
    }

    /// A clock and the rounds for both sinks on [`TIMINGS`].
    fn both() -> (Clock, Rounds) {
        let clock = Clock::new();
        let rounds = Rounds::new(TIMINGS, &SinkId::ALL, clock.now);
        (clock, rounds)
    }

    /// The round is over: the next one is due `every` later.
    fn over(rounds: &mut Rounds, clock: &Clock) {
        assert_eq!(
            rounds.step(clock.now),
            Action::WaitUntil(clock.after(TIMINGS.every))
        );
    }

    fn messages(of: &[&str]) -> Result<Vec<String>, String> {
        Ok(of.iter().map(|m| (*m).to_owned()).collect())
    }

    /// Steps through the first wait and queues a round under `marker`; the clock stands at
    /// the queue time.
    fn queued(rounds: &mut Rounds, clock: &mut Clock, marker: &str) -> u64 {
        let Action::WaitUntil(at) = rounds.step(clock.now) else {
            panic!("a wait first")
        };
        let now = clock.until(at);
        assert_eq!(rounds.step(now), Action::Queue { at_ms: now.wall_ms });
        rounds.on_queued(marker.to_owned(), Ok(()), now);
        now.wall_ms
    }

    /// Waits for the next search (if it is not due yet) and answers it with `answer`.
    fn searched(rounds: &mut Rounds, clock: &mut Clock, answer: Result<Vec<String>, String>) {
        let now = match rounds.step(clock.now) {
            Action::WaitUntil(at) => clock.until(at),
            Action::Search { .. } => clock.now,
            other @ Action::Queue { .. } => panic!("a search was due: {other:?}"),
        };
        assert!(matches!(rounds.step(now), Action::Search { .. }));
        rounds.on_searched(answer, now);
    }

    /// Nothing happens before `first_after`; then a round is queued at that moment, every
    /// enabled path goes Pending from the queue time, the round is counted and its marker
    /// shown; the first search is `search_every` later over a window from a minute before.
    #[test]
    fn first_round_after_first_after() {
        let (mut clock, mut rounds) = both();
        assert_eq!(
            *rounds.status(),
            CanaryStatus {
                configured: true,
                ..CanaryStatus::default()
            }
        );
        assert_eq!(
            rounds.step(clock.now),
            Action::WaitUntil(clock.after(SECOND))
        );
        let early = clock.advance(Duration::from_millis(999));
        assert_eq!(
            rounds.step(early),
            Action::WaitUntil(clock.after(Duration::from_millis(1)))
        );
        let now = clock.advance(Duration::from_millis(1));
        assert_eq!(rounds.step(now), Action::Queue { at_ms: now.wall_ms });
        assert_eq!(rounds.status().rounds, 0, "counted once queued");
        let after_commit = clock.advance(Duration::from_millis(40));
        rounds.on_queued("boxidr-canary-1".to_owned(), Ok(()), after_commit);
        let s = rounds.status();
        assert_eq!(s.rounds, 1);
        assert_eq!(s.marker.as_deref(), Some("boxidr-canary-1"));
        let pending = VerifierState::Pending {
            since_ms: now.wall_ms,
        };
        assert_eq!((s.collector, s.log_search), (pending, pending));
        assert_eq!(
            rounds.step(after_commit),
            Action::WaitUntil(clock.after(Duration::from_secs(3)))
        );
        let then = clock.advance(Duration::from_secs(3));
        assert_eq!(
            rounds.step(then),
            Action::Search {
                marker: "boxidr-canary-1".to_owned(),
                since_ms: after_commit.wall_ms - 60_000,
            }
        );
    }

    /// Both canaries found in one answer: both paths confirmed at that moment, the round ends
    /// and the next one is due `every` later, with a fresh Pending and a second count.
    #[test]
    fn both_confirmed_then_next_round_every() {
        let (mut clock, mut rounds) = both();
        queued(&mut rounds, &mut clock, "boxidr-canary-1");
        searched(&mut rounds, &mut clock, messages(&[RAW, UEF]));
        let confirmed = VerifierState::Confirmed {
            at_ms: clock.now.wall_ms,
        };
        let s = rounds.status().clone();
        assert_eq!((s.collector, s.log_search), (confirmed, confirmed));
        assert_eq!(s.last_error, None);
        over(&mut rounds, &clock);
        let second = queued(&mut rounds, &mut clock, "boxidr-canary-2");
        let s = rounds.status();
        assert_eq!(s.rounds, 2);
        assert_eq!(s.marker.as_deref(), Some("boxidr-canary-2"));
        assert_eq!(s.collector, VerifierState::Pending { since_ms: second });
    }

    /// The paths are confirmed one by one, each at the moment its canary shows up; an empty
    /// answer and a repeated hit change nothing.
    #[test]
    fn paths_confirmed_separately() {
        let (mut clock, mut rounds) = both();
        let queued_at = queued(&mut rounds, &mut clock, "m");
        searched(&mut rounds, &mut clock, messages(&[]));
        searched(&mut rounds, &mut clock, messages(&[UEF]));
        let collector_at = clock.now.wall_ms;
        assert_eq!(
            rounds.status().log_search,
            VerifierState::Pending {
                since_ms: queued_at
            }
        );
        searched(&mut rounds, &mut clock, messages(&[UEF, RAW]));
        let s = rounds.status();
        assert_eq!(
            s.collector,
            VerifierState::Confirmed {
                at_ms: collector_at
            },
            "a second hit does not restamp"
        );
        assert_eq!(
            s.log_search,
            VerifierState::Confirmed {
                at_ms: clock.now.wall_ms
            }
        );
        assert!(matches!(rounds.step(clock.now), Action::WaitUntil(_)));
    }

    /// A path whose canary never shows up (Log Search answered 204 and kept nothing) is
    /// NotSeen at the deadline, while the other one stays confirmed; searches run every
    /// `search_every` and the last one is pulled in to the deadline itself.
    #[test]
    fn not_seen_at_the_deadline() {
        let (mut clock, mut rounds) = both();
        queued(&mut rounds, &mut clock, "m");
        let queued_elapsed = clock.elapsed();
        let mut searches = Vec::new();
        while matches!(rounds.status().log_search, VerifierState::Pending { .. }) {
            searched(&mut rounds, &mut clock, messages(&[UEF]));
            searches.push(clock.elapsed() - queued_elapsed);
        }
        let secs = |s: u64| Duration::from_secs(s);
        assert_eq!(searches, [secs(3), secs(6), secs(9), secs(10)]);
        let s = rounds.status();
        assert!(
            matches!(s.collector, VerifierState::Confirmed { .. }),
            "{s:?}"
        );
        assert_eq!(
            s.log_search,
            VerifierState::NotSeen {
                at_ms: clock.now.wall_ms
            }
        );
        over(&mut rounds, &clock);
    }

    /// A failed search is shown as the last error and tried again every `search_every`; a
    /// later successful search clears it. Failing to the deadline leaves every path NotSeen.
    #[test]
    fn failed_searches_retry_until_the_deadline() {
        let (mut clock, mut rounds) = both();
        queued(&mut rounds, &mut clock, "m");
        searched(
            &mut rounds,
            &mut clock,
            Err("Platform API: HTTP 503".to_owned()),
        );
        assert_eq!(
            rounds.status().last_error.as_deref(),
            Some("Platform API: HTTP 503")
        );
        assert!(matches!(
            rounds.status().collector,
            VerifierState::Pending { .. }
        ));
        searched(&mut rounds, &mut clock, messages(&[]));
        assert_eq!(rounds.status().last_error, None, "cleared by a good search");
        for _ in 0..2 {
            searched(
                &mut rounds,
                &mut clock,
                Err("the Platform API key sees no logs".into()),
            );
        }
        let s = rounds.status();
        let not_seen = VerifierState::NotSeen {
            at_ms: clock.now.wall_ms,
        };
        assert_eq!((s.collector, s.log_search), (not_seen, not_seen));
        assert_eq!(
            s.last_error.as_deref(),
            Some("the Platform API key sees no logs")
        );
        over(&mut rounds, &clock);
    }

    /// When the canary cannot be queued the round does not count, the paths keep their last
    /// verdicts, the error is shown, and the next round is due `every` later.
    #[test]
    fn queue_failure_skips_the_round() {
        let (mut clock, mut rounds) = both();
        queued(&mut rounds, &mut clock, "m");
        searched(&mut rounds, &mut clock, messages(&[UEF, RAW]));
        let before = rounds.status().clone();
        let Action::WaitUntil(at) = rounds.step(clock.now) else {
            panic!()
        };
        let now = clock.until(at);
        assert!(matches!(rounds.step(now), Action::Queue { .. }));
        rounds.on_queued("m2".to_owned(), Err("the queue is full".to_owned()), now);
        let s = rounds.status();
        assert_eq!(
            s.last_error.as_deref(),
            Some("cannot queue the canary: the queue is full")
        );
        assert_eq!((s.rounds, &s.marker), (1, &before.marker));
        assert_eq!(
            (s.collector, s.log_search),
            (before.collector, before.log_search)
        );
        over(&mut rounds, &clock);
    }

    /// A sink that is off is never looked for: its path stays NotConfigured, a hit for it is
    /// ignored, and the round ends when the enabled one is confirmed.
    #[test]
    fn a_sink_that_is_off() {
        let mut clock = Clock::new();
        let mut rounds = Rounds::new(TIMINGS, &[SinkId::Collector], clock.now);
        queued(&mut rounds, &mut clock, "m");
        assert_eq!(rounds.status().log_search, VerifierState::NotConfigured);
        searched(&mut rounds, &mut clock, messages(&[RAW]));
        assert_eq!(rounds.status().log_search, VerifierState::NotConfigured);
        searched(&mut rounds, &mut clock, messages(&[UEF, RAW]));
        let s = rounds.status();
        assert!(
            matches!(s.collector, VerifierState::Confirmed { .. }),
            "{s:?}"
        );
        assert_eq!(s.log_search, VerifierState::NotConfigured);
        over(&mut rounds, &clock);
    }

    /// With no sink on, nothing is ever queued: the schedule only waits, round after round.
    #[test]
    fn no_sink_no_canary() {
        let mut clock = Clock::new();
        let mut rounds = Rounds::new(TIMINGS, &[], clock.now);
        for _ in 0..3 {
            let Action::WaitUntil(at) = rounds.step(clock.now) else {
                panic!("only waits")
            };
            clock.until(at);
        }
        assert_eq!(clock.elapsed(), SECOND + TIMINGS.every * 2);
        assert_eq!(rounds.status().rounds, 0);
        assert_eq!(rounds.status().marker, None);
    }

    /// Asked again before it hears back, the machine repeats the action it is waiting on;
    /// answers nobody asked for are ignored.
    #[test]
    fn repeats_until_answered() {
        let (mut clock, mut rounds) = both();
        rounds.on_searched(messages(&[UEF]), clock.now);
        rounds.on_queued("stray".to_owned(), Ok(()), clock.now);
        assert_eq!(rounds.status().rounds, 0);
        let now = clock.advance(SECOND);
        let queue = rounds.step(now);
        let later = clock.advance(SECOND);
        assert_eq!(rounds.step(later), queue, "the same queue time");
        rounds.on_queued("m".to_owned(), Ok(()), later);
        let search_at = clock.advance(Duration::from_secs(3));
        let search = rounds.step(search_at);
        assert!(matches!(search, Action::Search { .. }));
        assert_eq!(rounds.step(clock.advance(SECOND)), search);
    }

    /// A deadline shorter than the search interval pulls the only search in to it; a zero
    /// deadline searches once at once and then gives up.
    #[test]
    fn short_deadlines() {
        for (deadline, search_at) in [(SECOND, SECOND), (Duration::ZERO, Duration::ZERO)] {
            let mut clock = Clock::new();
            let timings = RoundTimings {
                deadline,
                ..TIMINGS
            };
            let mut rounds = Rounds::new(timings, &SinkId::ALL, clock.now);
            queued(&mut rounds, &mut clock, "m");
            let queued_elapsed = clock.elapsed();
            searched(&mut rounds, &mut clock, messages(&[]));
            assert_eq!(clock.elapsed() - queued_elapsed, search_at);
            assert!(
                matches!(rounds.status().collector, VerifierState::NotSeen { .. }),
                "{:?}",
                rounds.status()
            );
        }
    }

    /// Waits and the deadline follow the monotonic clock: a wall clock stepped by years (NTP
    /// after a boot without an RTC) neither ends a round early nor stalls it, and the stamps
    /// show the new wall time.
    #[test]
    fn deadline_ignores_wall_clock_steps() {
        let (mut clock, mut rounds) = both();
        queued(&mut rounds, &mut clock, "m");
        clock.now.wall_ms += 3 * 365 * 24 * 3_600_000;
        searched(&mut rounds, &mut clock, messages(&[]));
        assert!(matches!(
            rounds.status().collector,
            VerifierState::Pending { .. }
        ));
        clock.now.wall_ms = 1_000;
        searched(&mut rounds, &mut clock, messages(&[UEF]));
        assert_eq!(
            rounds.status().collector,
            VerifierState::Confirmed {
                at_ms: clock.now.wall_ms
            }
        );
    }

    /// Only marked canary messages confirm a path, and each by its own shape.
    #[test]
    fn paths_by_shape() {
        assert_eq!(path_of(UEF), Some(SinkId::Collector));
        assert_eq!(path_of(RAW), Some(SinkId::LogSearch));
        for other in [
            r#"{"boxidr_kind":"other","note":"boxidr-canary-1"}"#,
            r#"{"event_type":"INGRESS_AUTHENTICATION","custom_data":{}}"#,
            "boxidr-canary-1 plain text",
        ] {
            assert_eq!(path_of(other), None, "{other}");
        }
    }
}
