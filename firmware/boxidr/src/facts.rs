//! Gathers the health facts from the running parts (the I/O side of `boxidr-health`, which is
//! pure): reader and sink statuses, the canary verifier, the store, the clock, the board.

use boxidr_boxapi::utc::{parse_utc, unix_ms};
use boxidr_forward::SinkStatus;
use boxidr_health::{
    AuthState, BoardFacts, BoxFacts, ClockFacts, Facts, SinkFacts, SinkState, StoreFacts,
};
use boxidr_model::clock::{self, now_ms};
use boxidr_store::{CursorKey, SinkId, Stats, Store};

use crate::pipeline::Watches;

/// Why Box is not being read, when it is not: the health model needs to know which kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCollecting {
    /// Box is not connected yet (no app, secret or grant): nothing is misconfigured.
    NotConnected(String),
    /// Box refused the stored grant or its tokens: an admin must authorise again.
    Authorisation(String),
    /// Anything else: a start failure, a restart after a task stopped.
    Other(String),
}

impl NotCollecting {
    /// The reason in words, as the status page and the log show it.
    pub fn reason(&self) -> &str {
        match self {
            Self::NotConnected(r) | Self::Authorisation(r) | Self::Other(r) => r,
        }
    }
}

impl From<String> for NotCollecting {
    fn from(reason: String) -> Self {
        Self::Other(reason)
    }
}

impl std::fmt::Display for NotCollecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// What the supervisor knows beyond the watches.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub uptime_secs: u64,
    pub setup_complete: bool,
    /// Why Box is not being read (not connected, cannot start), when it is not.
    pub not_collecting: Option<NotCollecting>,
    pub clock: ClockFacts,
    pub gpio_error: Option<String>,
    /// Why the last storage self-test failed, if it did.
    pub storage_self_test: Option<String>,
}

/// The facts for [`boxidr_health::assess`].
pub async fn gather(store: &Store, watches: Option<&Watches>, context: Context) -> Facts {
    let stats = store.stats().await;
    let store_facts = match &stats {
        Ok(s) => StoreFacts {
            queue_records: s.queue_records,
            file_bytes: s.file_bytes,
            quota_bytes: s.quota_bytes,
            reopens: s.reopens,
            error: None,
            repaired: s.repaired,
            self_test_error: context.storage_self_test.clone(),
            commits: s.io.commits,
            durable_commits: s.io.durable_commits,
            fsyncs: s.io.fsyncs,
            write_bytes: s.io.bytes_written,
            dead_letters: s.dead_letters,
            dead_letter_bytes: s.dead_letter_bytes,
            dead_letters_full: s.dead_letters_full,
        },
        Err(e) => StoreFacts {
            error: Some(e.to_string()),
            self_test_error: context.storage_self_test.clone(),
            ..StoreFacts::default()
        },
    };
    let newest = match store
        .cursor(CursorKey::Stream(
            boxidr_model::StreamType::AdminLogsStreaming,
        ))
        .await
    {
        Ok(Some(c)) => c
            .last_created_at
            .as_deref()
            .and_then(parse_utc)
            .map(unix_ms),
        _ => None,
    };
    let box_ = match watches {
        Some(w) => box_facts(w, newest).await,
        None => BoxFacts {
            configured: context
                .not_collecting
                .as_ref()
                .is_some_and(|r| !matches!(r, NotCollecting::NotConnected(_))),
            auth: match &context.not_collecting {
                Some(NotCollecting::Authorisation(reason)) => AuthState::ReauthorisationNeeded {
                    reason: reason.clone(),
                },
                _ => AuthState::NotConnected,
            },
            last_error: context
                .not_collecting
                .as_ref()
                .map(|r| r.reason().to_owned()),
            newest_event_created_ms: newest,
            ..BoxFacts::default()
        },
    };
    let (collector, log_search) = match watches {
        Some(w) => (
            sink_facts(
                &w.collector.borrow(),
                stats.as_ref().ok(),
                SinkId::Collector,
                w.verifier.borrow().collector,
            ),
            sink_facts(
                &w.log_search.borrow(),
                stats.as_ref().ok(),
                SinkId::LogSearch,
                w.verifier.borrow().log_search,
            ),
        ),
        None => (SinkFacts::default(), SinkFacts::default()),
    };
    Facts {
        now_ms: now_ms(),
        uptime_secs: context.uptime_secs,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        setup_complete: context.setup_complete,
        box_,
        collector,
        log_search,
        store: store_facts,
        clock: context.clock,
        board: BoardFacts {
            gpio_error: context.gpio_error,
        },
    }
}

async fn box_facts(w: &Watches, newest: Option<u64>) -> BoxFacts {
    let stream = w.stream.borrow().clone();
    let sweep = w.sweep.borrow().clone();
    let halted = stream.reader.halted.clone().or(sweep.reader.halted.clone());
    let auth = if w.tokens.needs_reauthorisation().await {
        AuthState::ReauthorisationNeeded {
            reason: halted
                .clone()
                .unwrap_or_else(|| "Box refused the stored grant".to_owned()),
        }
    } else {
        AuthState::Ok
    };
    let (r, w) = (&stream.reader, &sweep.reader);
    BoxFacts {
        configured: true,
        auth,
        last_success_ms: r.last_success_ms.max(w.last_success_ms),
        consecutive_failures: r.consecutive_failures.max(w.consecutive_failures),
        last_error: r.last_error.clone().or(w.last_error.clone()),
        throttled_until_ms: r.throttled_until_ms.max(w.throttled_until_ms),
        halted,
        queue_full: r.queue_full || w.queue_full,
        stream_recoveries: stream.recoveries,
        last_recovery: stream.last_recovery.clone(),
        sweep_covered_until_ms: parse_ms(sweep.covered_until.as_deref()),
        sweep_target_until_ms: parse_ms(sweep.target_until.as_deref()),
        newest_event_created_ms: newest,
        events_collected: r.appended + w.appended,
        duplicates_dropped: r.duplicates + w.duplicates,
        flagged_events: r.rejected_entries + w.rejected_entries,
        unreadable_pages: stream.unreadable_pages + sweep.windows_shrunk,
        unreadable: sweep.stuck.clone().or(stream.last_unreadable.clone()),
    }
}

/// A sink's facts; `verifier` is the canary verifier's view of it.
fn sink_facts(
    status: &SinkStatus,
    stats: Option<&Stats>,
    sink: SinkId,
    verifier: boxidr_health::VerifierState,
) -> SinkFacts {
    use boxidr_forward::SinkState as S;
    let state = match &status.state {
        S::Idle => SinkState::Idle,
        S::Delivering => SinkState::Delivering,
        S::Retrying { error, attempt, .. } => SinkState::Retrying {
            error: error.clone(),
            attempt: *attempt,
            since_ms: None,
        },
        S::ConfigError { reason } => SinkState::ConfigError {
            reason: reason.clone(),
        },
        S::Disabled => SinkState::Disabled,
        S::Stopped => SinkState::Stopped,
    };
    let pending = stats
        .and_then(|s| s.pending_per_sink.iter().find(|p| p.sink == sink))
        .map_or(0, |p| p.pending);
    SinkFacts {
        configured: !matches!(status.state, S::Disabled),
        state,
        delivered: status.delivered,
        rejected: status.rejected,
        last_delivered_ms: status.last_delivered_at.map(clock::unix_ms),
        pending,
        oldest_pending_collected_ms: if pending > 0 {
            stats.and_then(|s| s.oldest_pending_collected_at_ms)
        } else {
            None
        },
        verifier,
    }
}

fn parse_ms(text: Option<&str>) -> Option<u64> {
    text.and_then(parse_utc).map(unix_ms)
}
