//! The whole Box side on loopback: streaming poller + `admin_logs` sweep → redb store, against
//! the Box simulator. Completeness (a gap in the streaming feed), backfill, catch-up after a
//! rejected or stale stream position, and what the sweep costs in API calls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

mod common;
use common::{Rig, open_store, rig};

use std::collections::BTreeMap;
use std::time::Duration;

use box_sim::SimConfig;
use boxidr_boxapi::TokenManager;
use boxidr_boxapi::collect::{self, CollectConfig, CollectStatus, Mode};
use boxidr_boxapi::utc::format_utc;
use boxidr_model::{BoxEvent, StreamPosition, StreamType};
use boxidr_store::{CursorKey, PageCommit, SinkId, Store};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;

const DAY: i64 = 86_400;

fn config(mode: Mode, backfill_days: u64) -> CollectConfig {
    CollectConfig {
        mode,
        limit: 50,
        interval: Duration::from_millis(100),
        lag: Duration::from_secs(2),
        min_step: Duration::from_secs(1),
        max_window: Duration::from_secs(86_400),
        backfill: Duration::from_secs(backfill_days * 86_400),
    }
}

async fn queued(store: &Store) -> Vec<boxidr_store::QueuedRecord> {
    store
        .read_batch(SinkId::LogSearch, 1_000_000, usize::MAX)
        .await
        .unwrap()
}

fn id_counts(records: &[boxidr_store::QueuedRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry(r.event_id.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Runs the Box side until every id in `expected` is queued (or 30 s pass), then stops it.
/// Returns the final statuses.
async fn collect_until(
    rig: &Rig,
    store: &Store,
    config: CollectConfig,
    expected: impl Fn() -> Vec<String>,
    during: impl AsyncFnOnce(),
) -> (boxidr_boxapi::PollStatus, boxidr_boxapi::SweepStatus) {
    let tokens = TokenManager::load(rig.auth.clone(), rig.grant.clone(), store.clone())
        .await
        .unwrap();
    let status = CollectStatus::new();
    let (stream_rx, sweep_rx) = (status.stream.subscribe(), status.sweep.subscribe());
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = async {
        collect::run(config, rig.events.clone(), &tokens, store, status, stop_rx)
            .await
            .unwrap();
    };
    let watcher = async {
        during().await;
        let expected = expected();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let counts = id_counts(&queued(store).await);
            if expected.iter().all(|id| counts.contains_key(id)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop_tx.send(true).unwrap();
    };
    tokio::join!(task, watcher);
    let stream = stream_rx.borrow().clone();
    let sweep = sweep_rx.borrow().clone();
    (stream, sweep)
}

fn assert_exactly_once(records: &[boxidr_store::QueuedRecord], expected: &[String]) {
    let counts = id_counts(records);
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "missing from the queue: {missing:?}");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "queued more than once: {repeated:?}");
}

fn late_event(id: &str, created_at: OffsetDateTime) -> serde_json::Value {
    json!({
        "type": "event",
        "event_id": id,
        "event_type": "DOWNLOAD",
        "created_at": format_utc(created_at),
        "created_by": {"type": "user", "id": "11446498", "name": "Late Lee", "login": "late@example.com"},
        "ip_address": "203.0.113.9",
        "source": null,
        "additional_details": null
    })
}

/// First connection with completeness on: the backfill window arrives through the sweep, live
/// events through the stream, and an event the streaming feed never serves (its gap) is caught
/// by the sweep — every one exactly once although both feeds overlap.
#[tokio::test(flavor = "multi_thread")]
async fn sweep_catches_the_streaming_gap() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 150,
        backlog_span: Duration::from_secs(2 * 24 * 3600),
        streaming_duplicate_rate: 0.2,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let gap_id = "late-gap-1".to_owned();
    let sim = &rig.sim;
    let gap = gap_id.clone();
    let during = async move || {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sim.generate_now(30);
        // Created a moment ago, never on the streaming feed: only the sweep can see it.
        let created = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        sim.add_events_missed_by_stream(vec![late_event(&gap, created)]);
    };
    let (stream, sweep) = collect_until(
        &rig,
        &store,
        config(Mode::Streaming { completeness: true }, 3),
        || rig.sim.generated_ids(),
        during,
    )
    .await;
    let records = queued(&store).await;
    let all = rig.sim.generated_ids();
    assert_eq!(all.len(), 181);
    assert_exactly_once(&records, &all);
    assert_eq!(records.len(), all.len());
    let gap_record = records
        .iter()
        .find(|r| r.event_id.as_str() == gap_id)
        .unwrap();
    assert_eq!(
        gap_record.stream,
        StreamType::AdminLogs,
        "the sweep found it"
    );
    assert!(
        stream.reader.appended > 0 && sweep.reader.appended > 0,
        "{stream:?} {sweep:?}"
    );
    assert!(sweep.windows_finished >= 1);
    // Both feeds overlap: the store dropped what the other had queued.
    assert!(stream.reader.duplicates + sweep.reader.duplicates > 0);
}

/// The event-type filter: the include list goes to Box as `event_type=` on both feeds (the
/// simulator filters like Box), the exclude list is applied as pages arrive; exactly the
/// admitted events are queued, once each, and counted per type.
#[tokio::test(flavor = "multi_thread")]
async fn event_type_filter_server_and_client_side() {
    let mut rig = rig(SimConfig {
        rate: 0.0,
        backlog: 300,
        backlog_span: Duration::from_secs(2 * 24 * 3600),
        ..SimConfig::default()
    })
    .await;
    let events = boxidr_config::Events {
        include_types: vec!["LOGIN".into(), "FAILED_LOGIN".into(), "DOWNLOAD".into()],
        exclude_types: vec!["DOWNLOAD".into()],
        ..boxidr_config::Events::default()
    };
    rig.events = rig.events.clone().with_type_filter(&events);
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let types: BTreeMap<String, String> = rig.sim.event_types().into_iter().collect();
    let expected: Vec<String> = types
        .iter()
        .filter(|(_, t)| *t == "LOGIN" || *t == "FAILED_LOGIN")
        .map(|(id, _)| id.clone())
        .collect();
    let downloads = types.values().filter(|t| *t == "DOWNLOAD").count();
    assert!(expected.len() > 10 && downloads > 0, "{types:?}");
    let sim = &rig.sim;
    let (stream, sweep) = collect_until(
        &rig,
        &store,
        config(Mode::Streaming { completeness: true }, 3),
        || {
            sim.event_types()
                .into_iter()
                .filter(|(_, t)| t == "LOGIN" || t == "FAILED_LOGIN")
                .map(|(id, _)| id)
                .collect()
        },
        async || {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sim.generate_now(60);
        },
    )
    .await;
    let records = queued(&store).await;
    let all_types: BTreeMap<String, String> = rig.sim.event_types().into_iter().collect();
    let admitted: Vec<String> = all_types
        .iter()
        .filter(|(_, t)| *t == "LOGIN" || *t == "FAILED_LOGIN")
        .map(|(id, _)| id.clone())
        .collect();
    assert_exactly_once(&records, &admitted);
    assert_eq!(records.len(), admitted.len(), "nothing else is queued");
    // Every events call asked Box for the include list.
    let calls: Vec<_> = rig
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/events"))
        .collect();
    assert!(calls.len() >= 2);
    for call in &calls {
        assert!(
            call.query
                .contains("event_type=LOGIN%2CFAILED_LOGIN%2CDOWNLOAD"),
            "{}",
            call.query
        );
    }
    // Box served DOWNLOAD events (included); the appliance dropped them (excluded).
    assert!(
        stream.reader.filtered + sweep.reader.filtered > 0,
        "{stream:?} {sweep:?}"
    );
    let mut by_type = stream.reader.by_type.clone();
    boxidr_boxapi::page::count_types(&mut by_type, &sweep.reader.by_type);
    let mut expected_by_type = BTreeMap::new();
    for id in &admitted {
        *expected_by_type
            .entry(all_types[id].clone())
            .or_insert(0u64) += 1;
    }
    assert_eq!(by_type, expected_by_type);
}

/// Deep backfill in streaming mode: 20 days, beyond the streaming feed's 14, are read through
/// `admin_logs` (nothing older), and the sweep reports progress while it runs: it starts near
/// 0 %, only grows, counts the events it queued, and is gone once the target is reached.
#[tokio::test(flavor = "multi_thread")]
async fn deep_backfill_beyond_14_days_with_progress() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 1500,
        backlog_span: Duration::from_secs(30 * 24 * 3600),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let bound = now - 20 * DAY;
    let times = rig.sim.event_times();
    let expected: Vec<String> = times
        .iter()
        .filter(|(_, t)| *t > bound)
        .map(|(id, _)| id.clone())
        .collect();
    let older_than_14 = times
        .iter()
        .filter(|(_, t)| *t > bound && *t < now - 15 * DAY)
        .count();
    assert!(older_than_14 > 50, "{older_than_14}");

    let tokens = TokenManager::load(rig.auth.clone(), rig.grant.clone(), store.clone())
        .await
        .unwrap();
    let status = CollectStatus::new();
    let mut sweep_rx = status.sweep.subscribe();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut seen: Vec<(f64, u64)> = Vec::new();
    let task = async {
        collect::run(
            config(
                Mode::Streaming {
                    completeness: false,
                },
                20,
            ),
            rig.events.clone(),
            &tokens,
            &store,
            status,
            stop_rx,
        )
        .await
        .unwrap();
    };
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(200), sweep_rx.changed()).await;
            let s = sweep_rx.borrow_and_update().clone();
            if let Some(p) = s.progress {
                seen.push((p.percent(), p.events(s.reader.appended)));
            }
            let done = s.progress.is_none() && s.windows_finished >= 20;
            if done && id_counts(&queued(&store).await).len() >= expected.len() {
                break;
            }
        }
        stop_tx.send(true).unwrap();
    };
    tokio::join!(task, watcher);
    let records = queued(&store).await;
    assert_exactly_once(&records, &expected);
    let created: BTreeMap<_, _> = times.into_iter().collect();
    assert!(
        records
            .iter()
            .all(|r| created[r.event_id.as_str()] >= bound - 1),
        "nothing older than the backfill"
    );
    let final_sweep = sweep_rx.borrow().clone();
    assert!(final_sweep.progress.is_none(), "{final_sweep:?}");
    assert!(seen.len() >= 3, "progress was reported: {seen:?}");
    assert!(seen[0].0 < 10.0, "starts near 0 %: {seen:?}");
    assert!(
        seen.windows(2)
            .all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1),
        "percent and events only grow: {seen:?}"
    );
    assert!(seen.last().unwrap().1 > 0);
}

/// Streaming only, first connection: the backfill reads exactly the configured days of history
/// through `admin_logs`, nothing older, then the sweep idles.
#[tokio::test(flavor = "multi_thread")]
async fn backfill_reads_the_configured_days() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 200,
        backlog_span: Duration::from_secs(5 * 24 * 3600),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let bound = OffsetDateTime::now_utc().unix_timestamp() - 2 * DAY;
    let times = rig.sim.event_times();
    // One-second slack at the bound: the window's start is computed a moment after `bound`.
    let expected: Vec<String> = times
        .iter()
        .filter(|(_, t)| *t > bound)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(expected.len() > 20 && expected.len() < times.len() - 20);
    let (_, sweep) = collect_until(
        &rig,
        &store,
        config(
            Mode::Streaming {
                completeness: false,
            },
            2,
        ),
        || expected.clone(),
        async || {},
    )
    .await;
    let records = queued(&store).await;
    assert_exactly_once(&records, &expected);
    let created: BTreeMap<_, _> = times.into_iter().collect();
    for r in &records {
        assert!(
            created[r.event_id.as_str()] >= bound - 1,
            "{} is older than the backfill",
            r.event_id
        );
    }
    assert!(sweep.target_until.is_none() || sweep.windows_finished >= 1);
}

/// Box rejects the stored stream position (`400 Invalid stream position`, PEERS §3): the gap is
/// caught up through `admin_logs` from the last event seen, the stream restarts at `now`, and
/// nothing generated in between is lost.
#[tokio::test(flavor = "multi_thread")]
async fn rejected_stream_position_is_caught_up() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    // A previous run stored a position the streaming feed no longer accepts, after an event
    // seen an hour ago.
    let seen = OffsetDateTime::now_utc() - time::Duration::hours(1);
    store
        .commit_page(PageCommit {
            cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
            events: vec![BoxEvent::from_value(late_event("old-1", seen)).unwrap()],
            next_position: Some(StreamPosition::new("42").unwrap()),
            last_created_at: Some(format_utc(seen)),
            window: None,
            collected_at_ms: u64::try_from(seen.unix_timestamp() * 1000).unwrap(),
        })
        .await
        .unwrap();
    // Events created since, while the collector was away (processed now, created earlier).
    let missed: Vec<_> = (0..40)
        .map(|i| late_event(&format!("away-{i}"), seen + time::Duration::minutes(i)))
        .collect();
    rig.sim.add_events_keep_time(missed);
    let expected: Vec<String> = (0..40).map(|i| format!("away-{i}")).collect();
    let (stream, _) = collect_until(
        &rig,
        &store,
        config(
            Mode::Streaming {
                completeness: false,
            },
            7,
        ),
        || expected.clone(),
        async || {},
    )
    .await;
    assert_eq!(stream.recoveries, 1, "{stream:?}");
    assert!(stream.reader.halted.is_none());
    let records = queued(&store).await;
    let mut all = expected.clone();
    all.push("old-1".into());
    assert_exactly_once(&records, &all);
    let cursor = store
        .cursor(CursorKey::Stream(StreamType::AdminLogsStreaming))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        cursor.position.unwrap().as_str(),
        "42",
        "the stream restarted"
    );
}

/// A streaming cursor last stored 20 days ago (beyond Box's 14-day window) is not trusted: the
/// collector catches up through `admin_logs` from the last event it saw, so events older than
/// the streaming window but newer than that event still arrive.
#[tokio::test(flavor = "multi_thread")]
async fn stale_cursor_catches_up_through_history() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 300,
        backlog_span: Duration::from_secs(30 * 24 * 3600),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let seen = OffsetDateTime::now_utc() - time::Duration::days(20);
    store
        .commit_page(PageCommit {
            cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
            events: Vec::new(),
            next_position: Some(StreamPosition::new(box_sim::STREAM_BASE.to_string()).unwrap()),
            last_created_at: Some(format_utc(seen)),
            window: None,
            collected_at_ms: u64::try_from(seen.unix_timestamp() * 1000).unwrap(),
        })
        .await
        .unwrap();
    let from = (seen - time::Duration::hours(6)).unix_timestamp() + 1;
    let times = rig.sim.event_times();
    let expected: Vec<String> = times
        .iter()
        .filter(|(_, t)| *t >= from)
        .map(|(id, _)| id.clone())
        .collect();
    let older_than_stream = times
        .iter()
        .filter(|(_, t)| *t >= from && *t < OffsetDateTime::now_utc().unix_timestamp() - 15 * DAY)
        .count();
    assert!(
        older_than_stream > 10,
        "the test needs events only admin_logs still has"
    );
    let (stream, _) = collect_until(
        &rig,
        &store,
        config(
            Mode::Streaming {
                completeness: false,
            },
            7,
        ),
        || expected.clone(),
        async || {},
    )
    .await;
    assert_eq!(stream.recoveries, 1, "{stream:?}");
    assert!(
        stream
            .last_recovery
            .as_deref()
            .unwrap()
            .contains("20 days old")
    );
    assert_exactly_once(&queued(&store).await, &expected);
}

/// What completeness costs: with the stream and the sweep running against a quiet enterprise,
/// count the calls each makes. Printed, not asserted beyond sanity (figures, not timing).
#[tokio::test(flavor = "multi_thread")]
async fn sweep_cost_in_api_calls() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let sim = &rig.sim;
    // One day of backfill: events created before the first connection (the generator's
    // created_at jitters seconds into the past) belong to the backfill, not to `now`.
    let mut cfg = config(Mode::Streaming { completeness: true }, 1);
    cfg.interval = Duration::from_millis(200);
    let started = std::time::Instant::now();
    collect_until(
        &rig,
        &store,
        cfg,
        || sim.generated_ids(),
        async move || {
            for _ in 0..5 {
                sim.generate_now(10);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            // Then a quiet spell: what each reader costs when there is nothing to read.
            tokio::time::sleep(Duration::from_secs(6)).await;
        },
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let calls = |stream: &str| {
        rig.sim
            .requests()
            .iter()
            .filter(|r| {
                r.path.ends_with("/events") && r.query.contains(&format!("stream_type={stream}&"))
            })
            .count()
    };
    let (streaming, history) = (calls("admin_logs_streaming"), calls("admin_logs"));
    println!(
        "sweep cost over {elapsed:.1} s: {streaming} streaming calls (interval 0.2 s), {history} admin_logs calls (min window 1 s)"
    );
    assert!(streaming > 0 && history > 0);
    assert_eq!(id_counts(&queued(&store).await).len(), 50);
}

/// An entry Box sends without a usable `event_id` is neither dropped nor retried forever: it is
/// queued as a flagged event (content-derived id), counted, and the page's real events still
/// land.
#[tokio::test(flavor = "multi_thread")]
async fn entries_without_an_id_are_kept_flagged() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let sim = &rig.sim;
    let during = async move || {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = OffsetDateTime::now_utc();
        let mut no_id = late_event("ignored", now);
        no_id.as_object_mut().unwrap().remove("event_id");
        sim.add_events(vec![no_id, late_event("fine-1", now)]);
    };
    let (stream, sweep) = collect_until(
        &rig,
        &store,
        config(
            Mode::Streaming {
                completeness: false,
            },
            0,
        ),
        || vec!["fine-1".to_owned()],
        during,
    )
    .await;
    let records = queued(&store).await;
    let flagged: Vec<_> = records
        .iter()
        .filter(|r| {
            r.event_id
                .as_str()
                .starts_with(boxidr_boxapi::events::FLAGGED_ID_PREFIX)
        })
        .collect();
    assert_eq!(flagged.len(), 1, "{records:?}");
    assert!(
        flagged[0]
            .event_json
            .contains(boxidr_boxapi::events::FLAG_KEY)
    );
    // Counted by whichever reader met it (the stream, or the backfill sweep when the entry
    // landed before the stream's first position, as under qemu); queued once either way.
    assert!(stream.reader.rejected_entries + sweep.reader.rejected_entries >= 1);
}

/// A `created_at` whose UTC form leaves years 0000–9999 (`9999-12-31T23:30:00-01:00` parses,
/// but is 10000-01-01 in UTC) once panicked the stream reader before it committed the page, so
/// it read the same page after every restart: the pipeline never moved. Now the page commits,
/// the event is queued, and later events follow.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_created_at_does_not_wedge_the_stream() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let sim = &rig.sim;
    let during = async move || {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut late = late_event("hostile-late", OffsetDateTime::now_utc());
        late["created_at"] = json!("9999-12-31T23:30:00-01:00");
        let mut early = late_event("hostile-early", OffsetDateTime::now_utc());
        early["created_at"] = json!("0000-01-01T00:10:00+01:00");
        sim.add_events_keep_time(vec![late, early]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        sim.add_events(vec![late_event("after-1", OffsetDateTime::now_utc())]);
    };
    let expected: Vec<String> = ["hostile-late", "hostile-early", "after-1"]
        .map(str::to_owned)
        .to_vec();
    let (stream, _) = collect_until(
        &rig,
        &store,
        config(
            Mode::Streaming {
                completeness: false,
            },
            0,
        ),
        || expected.clone(),
        during,
    )
    .await;
    assert_exactly_once(&queued(&store).await, &expected);
    assert!(stream.reader.halted.is_none(), "{stream:?}");
    let cursor = store
        .cursor(CursorKey::Stream(StreamType::AdminLogsStreaming))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cursor.last_created_at.as_deref(),
        Some("9999-12-31T23:59:59Z"),
        "saturated, still text-ordered"
    );
}

/// The same hostile date on an `admin_logs` page (box-sim's `rewrite_created_at` fault: Box
/// serving a date no window asked for) does not wedge the history sweep either.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_created_at_does_not_wedge_the_sweep() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 120,
        backlog_span: Duration::from_secs(12 * 3600),
        ..SimConfig::default()
    })
    .await;
    rig.sim
        .faults()
        .add_json(&json!({
            "fault": "rewrite_created_at",
            "created_at": "9999-12-31T23:30:00-01:00",
            "endpoint": "events",
            "count": 2
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let (_, sweep) = collect_until(
        &rig,
        &store,
        config(Mode::History, 1),
        || rig.sim.generated_ids(),
        async || {},
    )
    .await;
    assert_exactly_once(&queued(&store).await, &rig.sim.generated_ids());
    assert!(sweep.reader.halted.is_none(), "{sweep:?}");
    assert!(
        rig.sim.requests().iter().any(|r| r
            .fault
            .as_deref()
            .is_some_and(|f| f.contains("rewrite_created_at"))),
        "the fault was served"
    );
}

/// A streaming page that is malformed every time at the same position (a box-sim fault that
/// never clears, on the streaming feed only) used to be retried forever, silently. Now the
/// stream gives up on the position after a bounded number of tries, says so, re-anchors at
/// `now`, and the `admin_logs` sweep reads the gap: every event still arrives exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn always_unreadable_stream_page_is_given_up_and_caught_up() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 0,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    // A previous run left a stream position after an event seen ten minutes ago.
    let seen = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    store
        .commit_page(PageCommit {
            cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
            events: vec![BoxEvent::from_value(late_event("old-1", seen)).unwrap()],
            next_position: Some(StreamPosition::new("42").unwrap()),
            last_created_at: Some(format_utc(seen)),
            window: None,
            collected_at_ms: u64::try_from(seen.unix_timestamp() * 1000).unwrap(),
        })
        .await
        .unwrap();
    let missed: Vec<_> = (0..30)
        .map(|i| {
            late_event(
                &format!("behind-{i}"),
                seen + time::Duration::seconds(i * 10),
            )
        })
        .collect();
    rig.sim.add_events_keep_time(missed);
    // Never clears, and only the streaming feed meets it.
    rig.sim
        .faults()
        .add_json(&json!({"fault": "malformed_json", "endpoint": "events_streaming"}))
        .unwrap();
    let expected: Vec<String> = (0..30).map(|i| format!("behind-{i}")).collect();
    let (stream, _) = collect_until(
        &rig,
        &store,
        config(
            Mode::Streaming {
                completeness: false,
            },
            0,
        ),
        || expected.clone(),
        async || {},
    )
    .await;
    let mut all = expected.clone();
    all.push("old-1".into());
    assert_exactly_once(&queued(&store).await, &all);
    assert!(stream.unreadable_pages >= 1, "{stream:?}");
    assert!(
        stream
            .last_unreadable
            .as_deref()
            .is_some_and(|m| m.contains("unreadable page")),
        "{stream:?}"
    );
    assert!(stream.recoveries >= 1, "re-anchored: {stream:?}");
    let bad_tries = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some("malformed_json"))
        .count();
    assert!(
        bad_tries >= boxidr_boxapi::poller::UNREADABLE_PAGE_TRIES as usize,
        "{bad_tries}"
    );
}
