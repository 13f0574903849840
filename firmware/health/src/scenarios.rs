//! Ready-made [`Facts`] for the LED table, tests and demos: a healthy box, and a box showing any
//! one [`ProblemCode`].

use crate::VerifierState;
use crate::facts::{
    AuthState, BoardFacts, BoxFacts, ClockFacts, Facts, SinkFacts, SinkState, StoreFacts,
};
use crate::problem::ProblemCode;

/// The wall-clock time of every scenario (2025-06-15T15:06:40Z, in ms since the epoch).
pub const NOW_MS: u64 = 1_750_000_000_000;

const MINUTE_MS: u64 = 60_000;
const MIB: u64 = 1_048_576;

/// A box where everything is set up and works.
pub fn all_well() -> Facts {
    Facts {
        now_ms: NOW_MS,
        uptime_secs: 3_600,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        setup_complete: true,
        box_: BoxFacts {
            configured: true,
            auth: AuthState::Ok,
            last_success_ms: Some(NOW_MS - 5_000),
            newest_event_created_ms: Some(NOW_MS - MINUTE_MS),
            sweep_covered_until_ms: Some(NOW_MS - 10 * MINUTE_MS),
            events_collected: 1_000,
            ..BoxFacts::default()
        },
        collector: SinkFacts {
            configured: true,
            state: SinkState::Idle,
            delivered: 400,
            last_delivered_ms: Some(NOW_MS - 10_000),
            verifier: VerifierState::Confirmed {
                at_ms: NOW_MS - 10 * MINUTE_MS,
            },
            ..SinkFacts::default()
        },
        log_search: SinkFacts {
            configured: true,
            state: SinkState::Idle,
            delivered: 1_000,
            last_delivered_ms: Some(NOW_MS - 10_000),
            ..SinkFacts::default()
        },
        store: StoreFacts {
            file_bytes: 4 * MIB,
            quota_bytes: 1_024 * MIB,
            ..StoreFacts::default()
        },
        clock: ClockFacts {
            synchronised: true,
            waiting_secs: 0,
        },
        board: BoardFacts::default(),
    }
}

/// A box just unpacked: nothing set up yet, clock already synchronised.
pub fn first_start() -> Facts {
    Facts {
        uptime_secs: 60,
        setup_complete: false,
        box_: BoxFacts::default(),
        collector: SinkFacts::default(),
        log_search: SinkFacts::default(),
        store: StoreFacts {
            quota_bytes: 1_024 * MIB,
            file_bytes: MIB,
            ..StoreFacts::default()
        },
        ..all_well()
    }
}

/// A healthy box with the facts changed so that `code` is raised, and is the most important
/// problem on the LEDs it changes. Some codes bring a companion (the poller pauses when the queue
/// is full; it waits while the clock is not synchronised).
pub fn raising(code: ProblemCode) -> Facts {
    let mut f = all_well();
    let now = f.now_ms;
    match code {
        ProblemCode::StorageFault => {
            f.store.error = Some("commit failed: Input/output error (os error 5)".to_owned());
        }
        ProblemCode::QueueFull | ProblemCode::BoxPausedQueueFull => {
            f.store.file_bytes = f.store.quota_bytes;
            f.box_.queue_full = true;
        }
        ProblemCode::SetupNeeded => f = first_start(),
        ProblemCode::BoxReauthorisationNeeded => {
            f.box_.auth = AuthState::ReauthorisationNeeded {
                reason: "invalid_grant: refresh token has expired".to_owned(),
            };
            f.box_.halted = Some("Box authorisation needed".to_owned());
        }
        ProblemCode::ClockNotSynchronised => {
            f.clock = ClockFacts {
                synchronised: false,
                waiting_secs: 15 * 60,
            };
        }
        ProblemCode::BoxWaitingForClock | ProblemCode::ClockWaiting => {
            f.clock = ClockFacts {
                synchronised: false,
                waiting_secs: 30,
            };
        }
        ProblemCode::BoxHalted => {
            f.box_.halted = Some("the enterprise has no admin events access".to_owned());
        }
        ProblemCode::BoxUnreachable => {
            f.box_.consecutive_failures = 12;
            f.box_.last_error = Some("connection to api.box.com timed out".to_owned());
            f.box_.last_success_ms = Some(now - 20 * MINUTE_MS);
        }
        ProblemCode::SinkConfigError => {
            f.collector.state = SinkState::ConfigError {
                reason: "the Collector refused the TLS handshake (unknown CA)".to_owned(),
            };
        }
        ProblemCode::SinkUnreachable => {
            f.collector.state = SinkState::Retrying {
                error: "connection refused".to_owned(),
                attempt: 12,
                since_ms: Some(now - 20 * MINUTE_MS),
            };
            f.collector.pending = 5_000;
            f.collector.oldest_pending_collected_ms = Some(now - 20 * MINUTE_MS);
        }
        ProblemCode::QueueNearlyFull => {
            f.store.file_bytes = f.store.quota_bytes / 100 * 85;
        }
        ProblemCode::LedsUnavailable => {
            f.board.gpio_error = Some("no GPIO chip found: not a Raspberry Pi?".to_owned());
        }
        ProblemCode::BoxRefreshFailing => {
            f.box_.auth = AuthState::RefreshFailing {
                error: "token endpoint answered 503".to_owned(),
            };
        }
        ProblemCode::BoxRetrying => {
            f.box_.consecutive_failures = 2;
            f.box_.last_error = Some("Box answered 502".to_owned());
            f.box_.last_success_ms = Some(now - MINUTE_MS);
        }
        ProblemCode::SinkRetrying => {
            f.log_search.state = SinkState::Retrying {
                error: "HTTP 503 from the ingestion endpoint".to_owned(),
                attempt: 2,
                since_ms: Some(now - 30_000),
            };
            f.log_search.pending = 200;
            f.log_search.oldest_pending_collected_ms = Some(now - 40_000);
        }
        ProblemCode::SinkNotSeen => {
            f.collector.verifier = VerifierState::NotSeen {
                at_ms: now - MINUTE_MS,
            };
        }
        ProblemCode::SinkStopped => f.log_search.state = SinkState::Stopped,
        ProblemCode::BoxThrottled => {
            f.box_.throttled_until_ms = Some(now + 30_000);
        }
        ProblemCode::BoxCatchingUp => {
            f.box_.sweep_covered_until_ms = Some(now - 3 * 24 * 60 * MINUTE_MS);
            f.box_.sweep_target_until_ms = Some(now - 60 * MINUTE_MS);
        }
        ProblemCode::SinkUnconfirmed => {
            f.collector.verifier = VerifierState::Pending {
                since_ms: now - 20 * MINUTE_MS,
            };
        }
        ProblemCode::BoxStreamRecovered => {
            f.box_.stream_recoveries = 1;
            f.box_.last_recovery =
                Some("Box rejected the stream position; caught up through admin_logs".to_owned());
        }
        ProblemCode::StoreRepaired => f.store.repaired = true,
        ProblemCode::StoreReopened => f.store.reopens = 1,
        ProblemCode::DeadLetters => {
            f.store.dead_letters = 2;
            f.store.dead_letter_bytes = 3 * 1024 * 1024;
        }
        ProblemCode::BoxDataUnreadable => {
            f.box_.unreadable_pages = 1;
            f.box_.unreadable = Some(
                "Box sent an unreadable page 5 times in a row at the same stream position"
                    .to_owned(),
            );
        }
    }
    f
}

/// Named situations for the whole-row examples of the LED table.
pub fn examples() -> Vec<(&'static str, Facts)> {
    let box_only = {
        let mut f = first_start();
        f.box_ = all_well().box_;
        f
    };
    let queue_filling_insightidr_down = {
        let mut f = raising(ProblemCode::QueueNearlyFull);
        f.collector = raising(ProblemCode::SinkUnreachable).collector;
        f
    };
    let storage_and_reauth = {
        let mut f = raising(ProblemCode::StorageFault);
        f.box_ = raising(ProblemCode::BoxReauthorisationNeeded).box_;
        f
    };
    vec![
        ("All is well", all_well()),
        ("First start: nothing set up", first_start()),
        ("Box set up, InsightIDR not yet", box_only),
        (
            "Box rate-limits us (retrying by itself)",
            raising(ProblemCode::BoxThrottled),
        ),
        (
            "Catching up on older Box events",
            raising(ProblemCode::BoxCatchingUp),
        ),
        (
            "Box authorisation revoked",
            raising(ProblemCode::BoxReauthorisationNeeded),
        ),
        (
            "Box unreachable for long",
            raising(ProblemCode::BoxUnreachable),
        ),
        ("InsightIDR retrying", raising(ProblemCode::SinkRetrying)),
        (
            "InsightIDR refuses the settings",
            raising(ProblemCode::SinkConfigError),
        ),
        (
            "InsightIDR down for long, queue filling up",
            queue_filling_insightidr_down,
        ),
        ("Queue full", raising(ProblemCode::QueueFull)),
        ("Storage fault", raising(ProblemCode::StorageFault)),
        (
            "Storage fault and Box authorisation revoked",
            storage_and_reauth,
        ),
        (
            "Clock still not synchronised after 5 min",
            raising(ProblemCode::ClockNotSynchronised),
        ),
        (
            "LEDs cannot be driven (status page)",
            raising(ProblemCode::LedsUnavailable),
        ),
    ]
}

/// A running appliance's report from [`all_well`] facts with `patch` laid over its JSON (objects
/// merged key by key, anything else replaced): tests state only the fields they are about.
///
/// # Errors
/// When the patched document is no longer a [`StatusReport`](crate::StatusReport) (a value of the
/// wrong type, an unknown state).
pub fn report(patch: serde_json::Value) -> Result<crate::StatusReport, serde_json::Error> {
    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
    let base = crate::StatusReport::from_facts(all_well(), crate::CollectingState::Running, None);
    let mut doc = serde_json::to_value(base)?;
    merge(&mut doc, patch);
    serde_json::from_value(doc)
}
