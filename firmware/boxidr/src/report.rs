//! Builds the [`StatusReport`] — the one place the status is put together: the pipeline's
//! watch channels (readers, sinks, verifier), the store's figures, the health verdict, the LEDs
//! and the watchdog. The supervisor calls [`build`] every round and publishes the result in
//! [`StatusCache`](crate::status::StatusCache); `boxidr status` with the service stopped calls
//! [`store_section`] alone.

use boxidr_boxapi::sweep::SweepProgress;
use boxidr_forward::{SinkState, SinkStatus};
use boxidr_health::{
    BoxReport, CollectingState, CountersReport, CursorReport, Facts, Health, LedsReport,
    PendingReport, ProgressKind, ProgressReport, ReaderReport, ServiceState, SinkReport,
    SinkStateName, SinksReport, StatusReport, StoreReport, StoreSection, StreamReport, SweepReport,
    WatchdogReport, WindowReport,
};
use boxidr_model::clock::{now_ms, unix_ms};
use boxidr_store::{CursorKey, Store};

use crate::facts::NotCollecting;
use crate::pipeline::Watches;

/// Where the pipeline is, as the report tells it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage<'a> {
    WaitingForTime,
    NotConnected(&'a NotCollecting),
    Running(&'a Watches),
}

/// Everything the report is built from besides the store.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    pub stage: Stage<'a>,
    pub uptime_secs: u64,
    pub facts: Facts,
    pub health: Health,
    pub leds: Option<LedsReport>,
    pub watchdog: WatchdogReport,
}

/// The status report: what `boxidr status --json` prints and the page shows.
pub(crate) async fn build(store: &Store, parts: Parts<'_>) -> StatusReport {
    let (state, reason) = match parts.stage {
        Stage::WaitingForTime => (
            CollectingState::WaitingForTime,
            Some("waiting for the system clock to synchronise (systemd-timesyncd)".to_owned()),
        ),
        Stage::NotConnected(reason) => (
            CollectingState::NotCollecting,
            Some(reason.reason().to_owned()),
        ),
        Stage::Running(_) => (CollectingState::Running, None),
    };
    let (box_, sinks, verifier) = match parts.stage {
        Stage::Running(w) => (
            Some(box_report(w)),
            Some(SinksReport {
                collector: sink_report(&w.collector.borrow()),
                log_search: sink_report(&w.log_search.borrow()),
            }),
            Some(w.verifier.borrow().clone()),
        ),
        _ => (None, None, None),
    };
    StatusReport {
        service: ServiceState::Running,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: parts.uptime_secs,
        state,
        reason,
        box_,
        sinks,
        verifier,
        store: store_section(store).await,
        leds: parts.leds,
        health: parts.health,
        watchdog: parts.watchdog,
        facts: parts.facts,
    }
}

fn box_report(w: &Watches) -> BoxReport {
    let stream = w.stream.borrow().clone();
    let sweep = w.sweep.borrow().clone();
    let reader = |r: &boxidr_boxapi::page::ReaderStatus| ReaderReport {
        pages: r.pages,
        appended: r.appended,
        duplicates: r.duplicates,
        rejected_entries: r.rejected_entries,
        filtered: r.filtered,
        consecutive_failures: r.consecutive_failures,
        last_error: r.last_error.clone(),
        queue_full: r.queue_full,
        halted: r.halted.clone(),
    };
    // Queued events per Box event type since start (the store drops the second copy of an
    // event both readers fetched, so the two add up without double counting).
    let mut by_type = stream.reader.by_type.clone();
    boxidr_boxapi::page::count_types(&mut by_type, &sweep.reader.by_type);
    BoxReport {
        stream: StreamReport {
            reader: reader(&stream.reader),
            recoveries: stream.recoveries,
            last_recovery: stream.last_recovery.clone(),
        },
        sweep: SweepReport {
            reader: reader(&sweep.reader),
            windows_finished: sweep.windows_finished,
            covered_until: sweep.covered_until.clone(),
            target_until: sweep.target_until.clone(),
            progress: sweep
                .progress
                .as_ref()
                .map(|p| progress_report(p, sweep.reader.appended, now_ms())),
        },
        by_type,
    }
}

/// A backfill or catch-up under way: percent, events, ETA.
fn progress_report(p: &SweepProgress, appended: u64, now_ms: u64) -> ProgressReport {
    ProgressReport {
        kind: if p.moving {
            ProgressKind::CatchUp
        } else {
            ProgressKind::BackfillOrCatchUp
        },
        percent: (p.percent() * 10.0).round() / 10.0,
        events: p.events(appended),
        eta_secs: p.eta_secs(now_ms),
        from_ms: p.from_ms,
        until_ms: p.until_ms,
        covered_ms: p.covered_ms,
    }
}

fn sink_report(status: &SinkStatus) -> SinkReport {
    let (state, detail) = match &status.state {
        SinkState::Idle => (SinkStateName::Idle, None),
        SinkState::Delivering => (SinkStateName::Delivering, None),
        SinkState::Retrying { error, attempt, .. } => (
            SinkStateName::Retrying,
            Some(format!("attempt {attempt}: {error}")),
        ),
        SinkState::ConfigError { reason } => (SinkStateName::ConfigError, Some(reason.clone())),
        SinkState::Disabled => (SinkStateName::Disabled, None),
        SinkState::Stopped => (SinkStateName::Stopped, None),
    };
    SinkReport {
        state,
        detail,
        delivered: status.delivered,
        skipped: status.skipped,
        rejected: status.rejected,
        cursor: status.cursor,
        last_error: status.last_error.clone(),
        last_delivered_at: status.last_delivered_at.map(|t| unix_ms(t) / 1000),
    }
}

/// Queue, quota and cursors as the store holds them (also used with the service stopped).
pub async fn store_section(store: &Store) -> StoreSection {
    let stats = match store.stats().await {
        Ok(stats) => stats,
        Err(e) => {
            return StoreSection::Unreadable {
                error: e.to_string(),
            };
        }
    };
    let now_ms = now_ms();
    let mut cursors = std::collections::BTreeMap::new();
    let keys = [
        CursorKey::Stream(boxidr_model::StreamType::AdminLogsStreaming),
        CursorKey::Sweep(boxidr_boxapi::sweep::SWEEP_NAME.to_owned()),
    ];
    for key in keys {
        if let Ok(Some(c)) = store.cursor(key.clone()).await {
            cursors.insert(
                key.to_key(),
                CursorReport {
                    position: c.position.as_ref().map(|p| p.as_str().to_owned()),
                    updated_at_ms: c.updated_at_ms,
                    last_created_at: c.last_created_at,
                    window: c.window.map(|w| WindowReport {
                        after: w.after,
                        before: w.before,
                    }),
                },
            );
        }
    }
    let sinks = stats
        .pending_per_sink
        .iter()
        .map(|s| {
            (
                s.sink.as_str().to_owned(),
                PendingReport {
                    enabled: s.enabled,
                    cursor: s.cursor,
                    pending: s.pending,
                },
            )
        })
        .collect();
    let counters = CountersReport {
        events_appended: counter(store, boxidr_store::schema::COUNTER_APPENDED).await,
        events_duplicate: counter(store, boxidr_store::schema::COUNTER_DUPLICATES).await,
        canary_records: counter(store, boxidr_forward::verify::COUNTER_CANARY_RECORDS).await,
    };
    let quota_percent = if stats.quota_bytes == 0 {
        0.0
    } else {
        (stats.file_bytes as f64) * 100.0 / (stats.quota_bytes as f64)
    };
    StoreSection::Figures(Box::new(StoreReport {
        queue_records: stats.queue_records,
        file_bytes: stats.file_bytes,
        quota_bytes: stats.quota_bytes,
        quota_used_percent: (quota_percent * 10.0).round() / 10.0,
        oldest_pending_age_secs: stats
            .oldest_pending_collected_at_ms
            .map(|t| now_ms.saturating_sub(t) / 1000),
        sinks,
        cursors,
        counters,
        reopens: stats.reopens,
        repaired: stats.repaired,
        commits: stats.io.commits,
        durable_commits: stats.io.durable_commits,
        fsyncs: stats.io.fsyncs,
        write_bytes: stats.io.bytes_written,
        rollbacks: stats.io.rollbacks,
        dead_letters: stats.dead_letters,
        dead_letter_bytes: stats.dead_letter_bytes,
        dead_letters_full: stats.dead_letters_full,
    }))
}

/// A store counter, `None` when it cannot be read.
async fn counter(store: &Store, name: &str) -> Option<u64> {
    store.counter(name.to_owned()).await.ok()
}
