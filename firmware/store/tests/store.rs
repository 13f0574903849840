//! Public behaviour of the store core: schema, page commits, sinks, quota, seen expiry and the
//! small tables. Each test runs on a real file in a temporary directory or on `MemDisk`.

// Test crate: helpers outside #[test] fns may unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use boxidr_model::{BoxEvent, Secret, StreamType};
use boxidr_store::schema;
use boxidr_store::{
    CursorKey, CursorUpdate, PageCommit, SinkId, StoreCore, StoreError, StoreOptions, SweepWindow,
    UserEntry,
};
use common::*;
use redb::{Database, ReadableDatabase, ReadableTableMetadata};

fn file_store(dir: &tempfile::TempDir) -> (StoreOptions, StoreCore) {
    let options = StoreOptions::new(dir.path().join("boxidr.redb"));
    let core = StoreCore::open(options.clone()).unwrap();
    (options, core)
}

fn all(core: &mut StoreCore, sink: SinkId) -> Vec<boxidr_store::QueuedRecord> {
    core.read_batch(sink, usize::MAX, usize::MAX).unwrap()
}

fn ids(records: &[boxidr_store::QueuedRecord]) -> Vec<String> {
    records.iter().map(|r| r.event_id.to_string()).collect()
}

/// The stored position of the streaming cursor.
fn stream_position(core: &mut StoreCore) -> String {
    let cursor = core.cursor(&streaming()).unwrap().unwrap();
    cursor.position.unwrap().as_str().to_owned()
}

/// A user whose JSON is only its id.
fn user(id: &str) -> UserEntry {
    UserEntry {
        id: id.to_owned(),
        json: format!("{{\"id\":\"{id}\"}}"),
    }
}

/// The ids of the stored users, in order (the first ten).
fn user_ids(core: &mut StoreCore) -> Vec<String> {
    let users = core.users_after(None, 10).unwrap();
    users.into_iter().map(|u| u.id).collect()
}

// ---------------------------------------------------------------------------------------------
// schema

/// A new file is stamped with the current schema version and `next_seq` 1.
#[test]
fn new_file_gets_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let (options, mut core) = file_store(&dir);
    core.close().unwrap();
    let db = Database::open(&options.path).unwrap();
    assert_eq!(meta_value(&db, schema::META_SCHEMA_VERSION), Some(2));
    assert_eq!(schema::SCHEMA_VERSION, 2);
    assert_eq!(meta_value(&db, schema::META_NEXT_SEQ), Some(1));
}

/// A file stamped with a newer schema (99) is refused with SchemaTooNew, and left unmodified.
#[test]
fn newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (options, mut core) = file_store(&dir);
    core.commit_page(page(&["a"], Some("10"), 1)).unwrap();
    core.close().unwrap();
    {
        let db = Database::open(&options.path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::META)
            .unwrap()
            .insert(schema::META_SCHEMA_VERSION, 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&options.path).unwrap();
    let err = StoreCore::open(options.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: schema::SCHEMA_VERSION
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("99"), "{err}");
    assert!(
        std::fs::read(&options.path).unwrap() == before,
        "refused file was modified"
    );
}

/// A redb file that is not a boxidr store (tables but no schema version) is refused.
#[test]
fn foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::USERS)
            .unwrap()
            .insert("u", "{}")
            .unwrap();
        txn.commit().unwrap();
    }
    let err = StoreCore::open(StoreOptions::new(&path)).unwrap_err();
    assert!(matches!(err, StoreError::BadMeta { .. }), "{err:?}");
}

/// Closing and reopening keeps queue, cursor, sink cursors, seen ids and the sequence counter.
#[test]
fn reopen_preserves_data() {
    let dir = tempfile::tempdir().unwrap();
    let (options, mut core) = file_store(&dir);
    core.set_enabled_sinks(&[SinkId::Collector, SinkId::LogSearch])
        .unwrap();
    core.commit_page(page(&["a", "b", "c"], Some("100"), 5))
        .unwrap();
    core.ack(SinkId::Collector, 2).unwrap();
    core.close().unwrap();
    drop(core);

    let mut core = StoreCore::open(options).unwrap();
    assert_eq!(stream_position(&mut core), "100");
    assert_eq!(ids(&all(&mut core, SinkId::Collector)), ["c"]);
    assert_eq!(ids(&all(&mut core, SinkId::LogSearch)), ["a", "b", "c"]);
    // Seen survives: "a" is a duplicate; the sequence continues at 4.
    let outcome = core.commit_page(page(&["a", "d"], Some("101"), 6)).unwrap();
    assert_eq!(
        (outcome.appended, outcome.duplicates, outcome.first_seq),
        (1, 1, Some(4))
    );
}

/// The database file is created with mode 0600, and a looser mode is tightened on open.
#[cfg(unix)]
#[test]
fn file_mode_is_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (options, mut core) = file_store(&dir);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&options.path), 0o600);
    core.close().unwrap();
    std::fs::set_permissions(&options.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _core = StoreCore::open(options.clone()).unwrap();
    assert_eq!(mode(&options.path), 0o600);
}

// ---------------------------------------------------------------------------------------------
// commit_page

/// Events are appended in page order with sequential seqs and their JSON byte-for-byte.
#[test]
fn events_appended_in_order_with_original_json() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let events = vec![event("e1"), big_event("e2", 10), event("e3")];
    let outcome = core
        .commit_page(PageCommit {
            cursor: streaming(),
            events: events.clone(),
            next_position: Some(pos("1152923169531664551")),
            last_created_at: Some("2024-05-02T14:03:11-07:00".into()),
            window: None,
            collected_at_ms: 42,
        })
        .unwrap();
    assert_eq!(outcome.appended, 3);
    assert_eq!((outcome.first_seq, outcome.last_seq), (Some(1), Some(3)));
    assert_eq!(outcome.cursor, CursorUpdate::Stored);
    let records = all(&mut core, SinkId::Collector);
    assert_eq!(records.len(), 3);
    for (i, (record, event)) in records.iter().zip(&events).enumerate() {
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(&record.event_id, event.id());
        assert_eq!(
            record.event_json,
            event.to_json(),
            "JSON changed for {}",
            event.id()
        );
        let reparsed: serde_json::Value = serde_json::from_str(&record.event_json).unwrap();
        assert_eq!(reparsed.as_object().unwrap(), event.raw());
        assert_eq!(record.stream, StreamType::AdminLogsStreaming);
        assert_eq!(record.collected_at_ms, 42);
    }
    assert_eq!(records[0].event_type.as_deref(), Some("LOGIN"));
    let cursor = core.cursor(&streaming()).unwrap().unwrap();
    assert_eq!(cursor.position.unwrap().as_str(), "1152923169531664551");
    assert_eq!(cursor.updated_at_ms, 42);
    assert_eq!(
        cursor.last_created_at.as_deref(),
        Some("2024-05-02T14:03:11-07:00")
    );
}

/// Duplicate ids within a page and across pages are skipped and counted, never queued twice.
#[test]
fn duplicates_within_and_across_pages_are_skipped() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let first = core
        .commit_page(page(&["a", "b", "a"], Some("1"), 1))
        .unwrap();
    assert_eq!((first.appended, first.duplicates), (2, 1));
    let second = core
        .commit_page(page(&["b", "c", "c", "a"], Some("2"), 2))
        .unwrap();
    assert_eq!((second.appended, second.duplicates), (1, 3));
    assert_eq!((second.first_seq, second.last_seq), (Some(3), Some(3)));
    let all_dups = core.commit_page(page(&["a"], Some("3"), 3)).unwrap();
    assert_eq!((all_dups.appended, all_dups.first_seq), (0, None));
    assert_eq!(ids(&all(&mut core, SinkId::Collector)), ["a", "b", "c"]);
    assert_eq!(core.counter(schema::COUNTER_APPENDED).unwrap(), 3);
    assert_eq!(core.counter(schema::COUNTER_DUPLICATES).unwrap(), 5);
    // The cursor still advances on an all-duplicate page.
    assert_eq!(stream_position(&mut core), "3");
}

/// Box's legacy reset position "0" never overwrites a good cursor; None keeps the old one.
#[test]
fn reset_or_missing_position_keeps_cursor() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    assert_eq!(core.cursor(&streaming()).unwrap(), None);
    let outcome = core.commit_page(page(&[], Some("0"), 1)).unwrap();
    assert_eq!(outcome.cursor, CursorUpdate::KeptReset);
    assert_eq!(
        core.cursor(&streaming()).unwrap(),
        None,
        "reset stored on an empty cursor"
    );
    core.commit_page(page(&["a"], Some("555"), 2)).unwrap();
    let good = core.cursor(&streaming()).unwrap();
    let outcome = core.commit_page(page(&["b"], Some("0"), 3)).unwrap();
    assert_eq!(
        (outcome.cursor, outcome.appended),
        (CursorUpdate::KeptReset, 1)
    );
    assert_eq!(core.cursor(&streaming()).unwrap(), good);
    let outcome = core.commit_page(page(&["c"], Some("000"), 4)).unwrap();
    assert_eq!(outcome.cursor, CursorUpdate::KeptReset);
    let outcome = core.commit_page(page(&["d"], None, 5)).unwrap();
    assert_eq!(outcome.cursor, CursorUpdate::KeptNoPosition);
    assert_eq!(core.cursor(&streaming()).unwrap(), good);
    assert_eq!(
        ids(&all(&mut core, SinkId::Collector)),
        ["a", "b", "c", "d"]
    );
}

fn window(after: &str, before: &str) -> Option<SweepWindow> {
    Some(SweepWindow {
        after: after.into(),
        before: before.into(),
    })
}

/// A sweep stores its window with the position; a page from a new window starts it (the old
/// window's position is dropped even if the page has none), a page from the same window without a
/// position keeps it, and `last_created_at` only grows.
#[test]
fn sweep_windows_carry_their_position() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let key = CursorKey::Sweep("history".into());
    let sweep = |ids: &[&str], next: Option<&str>, w: Option<SweepWindow>, last: Option<&str>| {
        let mut p = page(ids, next, 1);
        p.cursor = key.clone();
        p.window = w;
        p.last_created_at = last.map(str::to_owned);
        p
    };
    let w1 = window("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z");
    let w2 = window("2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z");
    core.commit_page(sweep(
        &["a"],
        Some("10"),
        w1.clone(),
        Some("2024-01-01T00:30:00Z"),
    ))
    .unwrap();
    // Same window, legacy reset position: position kept.
    let out = core
        .commit_page(sweep(&[], Some("0"), w1.clone(), None))
        .unwrap();
    assert_eq!(out.cursor, CursorUpdate::KeptReset);
    let state = core.cursor(&key).unwrap().unwrap();
    assert_eq!(state.position, Some(pos("10")));
    assert_eq!(state.window, w1);
    // New window without a position: the window moves, the old position is gone.
    core.commit_page(sweep(&[], None, w2.clone(), Some("2024-01-01T00:10:00Z")))
        .unwrap();
    let state = core.cursor(&key).unwrap().unwrap();
    assert_eq!(state.position, None);
    assert_eq!(state.window, w2);
    assert_eq!(
        state.last_created_at.as_deref(),
        Some("2024-01-01T00:30:00Z")
    );
    // A stream cursor refuses a window.
    let mut bad = page(&["z"], Some("5"), 2);
    bad.window = w1;
    assert!(matches!(
        core.commit_page(bad),
        Err(StoreError::InvalidInput { .. })
    ));
    assert_eq!(ids(&all(&mut core, SinkId::Collector)), ["a"]);
}

/// Each stream and each named sweep keeps its own cursor; records carry the stream type.
#[test]
fn cursors_are_per_stream_and_sweep() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let mut sweep = page(&["s1"], Some("900"), 1);
    sweep.cursor = CursorKey::Sweep("catchup-2024".into());
    sweep.last_created_at = Some("2024-01-01T00:00:00Z".into());
    core.commit_page(sweep).unwrap();
    core.commit_page(page(&["l1"], Some("100"), 2)).unwrap();
    assert_eq!(stream_position(&mut core), "100");
    let sweep_cursor = core
        .cursor(&CursorKey::Sweep("catchup-2024".into()))
        .unwrap()
        .unwrap();
    assert_eq!(sweep_cursor.position.unwrap().as_str(), "900");
    assert_eq!(
        core.cursor(&CursorKey::Stream(StreamType::AdminLogs))
            .unwrap(),
        None
    );
    let records = all(&mut core, SinkId::Collector);
    assert_eq!(records[0].stream, StreamType::AdminLogs);
    assert_eq!(records[1].stream, StreamType::AdminLogsStreaming);
    // A later page without last_created_at keeps the previous one.
    let mut next = page(&[], Some("901"), 3);
    next.cursor = CursorKey::Sweep("catchup-2024".into());
    core.commit_page(next).unwrap();
    let sweep_cursor = core
        .cursor(&CursorKey::Sweep("catchup-2024".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        sweep_cursor.last_created_at.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    let mut bad = page(&[], Some("1"), 4);
    bad.cursor = CursorKey::Sweep("has space".into());
    assert!(matches!(
        core.commit_page(bad),
        Err(StoreError::InvalidInput { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// sinks

/// Two sinks read independently; a record is deleted only when both enabled sinks acked it.
#[test]
fn record_deleted_only_after_both_enabled_sinks_acked() {
    let mut core = open_mem_queue(
        &MemDisk::new(),
        &[SinkId::Collector, SinkId::LogSearch],
        page(&["a", "b", "c", "d"], Some("1"), 1),
    );

    let ack = core.ack(SinkId::Collector, 3).unwrap();
    assert_eq!((ack.cursor, ack.advanced, ack.deleted), (3, true, 0));
    // Log Search is "down": it holds records but the collector still reads on.
    assert_eq!(ids(&all(&mut core, SinkId::Collector)), ["d"]);
    assert_eq!(
        ids(&all(&mut core, SinkId::LogSearch)),
        ["a", "b", "c", "d"]
    );
    assert_eq!(core.stats().unwrap().queue_records, 4);

    let ack = core.ack(SinkId::LogSearch, 2).unwrap();
    assert_eq!(ack.deleted, 2);
    let stats = core.stats().unwrap();
    assert_eq!(
        (stats.queue_records, stats.oldest_seq, stats.newest_seq),
        (2, Some(3), Some(4))
    );
    let pending: Vec<_> = stats
        .pending_per_sink
        .iter()
        .map(|s| (s.sink, s.pending))
        .collect();
    assert_eq!(pending, [(SinkId::Collector, 1), (SinkId::LogSearch, 2)]);
    assert_eq!(core.ack(SinkId::LogSearch, 4).unwrap().deleted, 1);
    assert_eq!(core.ack(SinkId::Collector, 4).unwrap().deleted, 1);
    assert_eq!(core.stats().unwrap().queue_records, 0);
}

/// The churn a compaction after a drain could give back: records queued and new users count
/// as written, a user stored again does not, delivered records count as deleted, and a
/// compaction starts both over.
#[test]
fn churn_since_compaction() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    core.set_enabled_sinks(&[SinkId::Collector]).unwrap();
    let user = |id: &str| UserEntry {
        id: id.into(),
        json: format!(r#"{{"id":"{id}"}}"#),
    };
    core.put_users(&[user("1"), user("2")]).unwrap();
    core.put_users(&[user("2"), user("3")]).unwrap();
    core.commit_page(page(&["a", "b", "c"], Some("1"), 1))
        .unwrap();
    core.ack(SinkId::Collector, 2).unwrap();
    let io = core.io_stats();
    assert_eq!(
        (io.written_since_compaction, io.deleted_since_compaction),
        (6, 2)
    );
    core.compact().unwrap();
    let io = core.io_stats();
    assert_eq!(
        (io.written_since_compaction, io.deleted_since_compaction),
        (0, 0)
    );
}

/// A disabled sink holds nothing back; disabling a lagging sink releases its records.
#[test]
fn disabled_sink_does_not_hold_records() {
    let mut core = open_mem_queue(
        &MemDisk::new(),
        &[SinkId::Collector, SinkId::LogSearch],
        page(&["a", "b", "c"], Some("1"), 1),
    );
    core.ack(SinkId::Collector, 2).unwrap();
    assert_eq!(core.stats().unwrap().queue_records, 3);
    assert_eq!(core.set_enabled_sinks(&[SinkId::Collector]).unwrap(), 2);
    assert_eq!(ids(&all(&mut core, SinkId::Collector)), ["c"]);
    assert_eq!(core.ack(SinkId::Collector, 3).unwrap().deleted, 1);
    let stats = core.stats().unwrap();
    assert_eq!(stats.queue_records, 0);
    assert!(!stats.pending_per_sink[1].enabled);
}

/// With no sink enabled, acks delete nothing (records wait for a configured sink).
#[test]
fn no_enabled_sink_deletes_nothing() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    core.commit_page(page(&["a", "b"], Some("1"), 1)).unwrap();
    assert_eq!(core.ack(SinkId::Collector, 2).unwrap().deleted, 0);
    assert_eq!(core.stats().unwrap().queue_records, 2);
}

/// An ack never moves a sink cursor backwards, and an ack beyond the newest seq is refused.
#[test]
fn ack_never_moves_backwards() {
    let mut core = open_mem_queue(
        &MemDisk::new(),
        &[SinkId::Collector, SinkId::LogSearch],
        page(&["a", "b", "c"], Some("1"), 1),
    );
    core.ack(SinkId::Collector, 3).unwrap();
    let stale = core.ack(SinkId::Collector, 1).unwrap();
    assert_eq!((stale.cursor, stale.advanced, stale.deleted), (3, false, 0));
    assert!(
        core.read_batch(SinkId::Collector, 10, usize::MAX)
            .unwrap()
            .is_empty()
    );
    let err = core.ack(SinkId::LogSearch, 4).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AckBeyondNewest {
                up_to: 4,
                newest: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(core.stats().unwrap().pending_per_sink[1].cursor, 0);
}

/// read_batch stops at max_records and before max_bytes, but always returns one pending record.
#[test]
fn read_batch_respects_limits() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let events = (0..5)
        .map(|i| big_event(&format!("e{i}"), 100))
        .collect::<Vec<_>>();
    let size = events[0].to_json().len();
    core.commit_page(events_page(events, Some("1"), 1)).unwrap();
    assert_eq!(
        core.read_batch(SinkId::Collector, 2, usize::MAX)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        core.read_batch(SinkId::Collector, 10, size * 3)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        core.read_batch(SinkId::Collector, 10, size * 3 - 1)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        core.read_batch(SinkId::Collector, 10, 1).unwrap().len(),
        1,
        "oversized wedges"
    );
    assert!(
        core.read_batch(SinkId::Collector, 0, usize::MAX)
            .unwrap()
            .is_empty()
    );
    core.ack(SinkId::Collector, 4).unwrap();
    let rest = core.read_batch(SinkId::Collector, 10, usize::MAX).unwrap();
    assert_eq!(rest.iter().map(|r| r.seq).collect::<Vec<_>>(), [5]);
}

/// read_after starts after the given position (or the stored cursor), passes over what the
/// filter refuses without returning it, and says how far it looked, within its scan bound.
#[test]
fn read_after_filters_on_the_header() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    // seq 1..=3 LOGIN, 4..=8 UPLOAD, 9..=10 LOGIN
    let mut events: Vec<_> = ["a", "b", "c"].iter().map(|id| event(id)).collect();
    events.extend((0..5).map(|i| big_event(&format!("u{i}"), 10)));
    events.extend(["d", "e"].iter().map(|id| event(id)));
    core.commit_page(events_page(events, Some("1"), 1)).unwrap();
    let logins: boxidr_store::RecordFilter =
        std::sync::Arc::new(|t: Option<&str>| t == Some("LOGIN"));
    let limits = |max_records, max_scan| boxidr_store::ReadLimits {
        max_records,
        max_bytes: usize::MAX,
        max_scan,
    };
    let seqs = |b: &boxidr_store::SinkBatch| b.records.iter().map(|r| r.seq).collect::<Vec<_>>();

    let b = core
        .read_after(SinkId::Collector, None, limits(100, 100), Some(&logins))
        .unwrap();
    assert_eq!(
        (b.after, seqs(&b), b.through),
        (0, vec![1, 2, 3, 9, 10], Some(10))
    );
    // From a position ahead of the stored cursor (pipelined reads), two records at most.
    let b = core
        .read_after(SinkId::Collector, Some(2), limits(2, 100), Some(&logins))
        .unwrap();
    assert_eq!((b.after, seqs(&b), b.through), (2, vec![3, 9], Some(9)));
    // The scan bound stops inside the uploads: nothing returned, but passed over up to 6.
    let b = core
        .read_after(SinkId::Collector, Some(3), limits(100, 3), Some(&logins))
        .unwrap();
    assert_eq!((seqs(&b), b.through), (vec![], Some(6)));
    // Without a filter everything comes back; after the newest, nothing.
    let b = core
        .read_after(SinkId::LogSearch, Some(7), limits(100, 100), None)
        .unwrap();
    assert_eq!((seqs(&b), b.through), (vec![8, 9, 10], Some(10)));
    let b = core
        .read_after(SinkId::LogSearch, Some(10), limits(100, 100), None)
        .unwrap();
    assert_eq!((seqs(&b), b.through), (vec![], None));
    // None starts at the stored cursor.
    core.ack(SinkId::Collector, 9).unwrap();
    let b = core
        .read_after(SinkId::Collector, None, limits(100, 100), Some(&logins))
        .unwrap();
    assert_eq!((b.after, seqs(&b)), (9, vec![10]));
}

/// Stats report the oldest record some enabled sink still has to deliver.
#[test]
fn stats_oldest_pending() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    core.set_enabled_sinks(&[SinkId::Collector]).unwrap();
    assert_eq!(core.stats().unwrap().oldest_pending_collected_at_ms, None);
    core.commit_page(page(&["a"], Some("1"), 100)).unwrap();
    core.commit_page(page(&["b"], Some("2"), 200)).unwrap();
    assert_eq!(
        core.stats().unwrap().oldest_pending_collected_at_ms,
        Some(100)
    );
    core.ack(SinkId::Collector, 1).unwrap();
    assert_eq!(
        core.stats().unwrap().oldest_pending_collected_at_ms,
        Some(200)
    );
}

// ---------------------------------------------------------------------------------------------
// quota

/// A store file with a 2 MiB quota, delivering to the Collector.
fn quota_store(dir: &tempfile::TempDir) -> (StoreOptions, StoreCore) {
    let mut options = StoreOptions::new(dir.path().join("boxidr.redb"));
    options.quota_bytes = 2 * 1024 * 1024;
    let mut core = StoreCore::open(options.clone()).unwrap();
    core.set_enabled_sinks(&[SinkId::Collector]).unwrap();
    (options, core)
}

/// Page number `n` of the quota tests: `events` events of 4 kB each.
fn big_page(n: u64, events: usize) -> PageCommit {
    let mut p = page(&[], Some(&format!("{}", n + 1)), n);
    p.events = (0..events)
        .map(|i| big_event(&format!("e{n}-{i}"), 4000))
        .collect();
    p
}

/// Commits big pages, numbered on from `pages` (which counts the committed ones), until the
/// store refuses one: the records appended, and the refusal.
fn fill(core: &mut StoreCore, pages: &mut u64, events: usize) -> (u64, StoreError) {
    let mut appended = 0;
    loop {
        match core.commit_page(big_page(*pages, events)) {
            Ok(outcome) => appended += outcome.appended,
            Err(e) => return (appended, e),
        }
        *pages += 1;
        assert!(*pages < 5000, "quota never reached");
    }
}

/// At the quota commit_page returns QueueFull and changes nothing; after the sinks drain it
/// compacts the file by itself and commits succeed again (so does a raised quota).
#[test]
fn quota_backpressure_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (options, mut core) = quota_store(&dir);
    let mut n = 0;
    let (_, full) = fill(&mut core, &mut n, 20);
    let StoreError::QueueFull {
        file_bytes,
        quota_bytes,
        queue_records,
    } = full
    else {
        panic!("expected QueueFull, got {full:?}");
    };
    assert!(full.is_retryable() && full.is_queue_full());
    assert!(file_bytes >= quota_bytes && queue_records == n * 20);
    let cursor_before = core.cursor(&streaming()).unwrap();
    let stats_before = core.stats().unwrap();
    let rejected = core.commit_page(page(&["late"], Some("999999"), 1));
    assert!(matches!(rejected, Err(StoreError::QueueFull { .. })));
    assert_eq!(
        core.cursor(&streaming()).unwrap(),
        cursor_before,
        "cursor moved while full"
    );
    assert_eq!(
        core.stats().unwrap(),
        stats_before,
        "queue changed while full"
    );

    // Drain: the next commit finds the file still at the quota (redb keeps freed pages inside
    // the file), compacts by itself because records were deleted since the last attempt, and
    // succeeds. "late" was never recorded as seen, so the re-polled page is appended, not
    // dropped as a duplicate.
    core.ack(SinkId::Collector, n * 20).unwrap();
    assert!(core.stats().unwrap().file_bytes >= options.quota_bytes);
    let outcome = core
        .commit_page(page(&["late"], Some("999999"), 1))
        .unwrap();
    assert_eq!(outcome.appended, 1);
    assert!(core.stats().unwrap().file_bytes < options.quota_bytes);

    // A larger quota also lifts the backpressure (reopen with new options).
    core.close().unwrap();
    let mut tight = options.clone();
    tight.quota_bytes = 1;
    let mut core = StoreCore::open(tight).unwrap();
    assert!(matches!(
        core.commit_page(page(&["x"], None, 1)),
        Err(StoreError::QueueFull { .. })
    ));
    core.close().unwrap();
    let mut core = StoreCore::open(options).unwrap();
    assert_eq!(core.commit_page(page(&["x"], None, 1)).unwrap().appended, 1);
}

/// A second fill after a drain: the first drain's compaction ran with an empty queue, the file
/// then refilled (redb grows it in steps, past the quota) and the sinks drained it again. The
/// queue is empty once more, but it is not shorter than at that compaction, which is what the
/// store used to ask before compacting again: it answered QueueFull for good with 0 records
/// queued, and Box's events waited there until a restart (recovery.rs with a 40,000-event
/// backlog: 12,063 undelivered). Deletions since the last compaction are what make it useful.
#[test]
fn quota_refill_after_a_drain_compacts_again() {
    let dir = tempfile::tempdir().unwrap();
    let (options, mut core) = quota_store(&dir);
    // Queue sequences are assigned 1, 2, ... in commit order: `queued` is the newest one.
    let (mut pages, mut queued) = (0u64, 0u64);
    for round in 0..3 {
        let (appended, full) = fill(&mut core, &mut pages, 20);
        assert!(full.is_queue_full(), "{full:?}");
        queued += appended;
        core.ack(SinkId::Collector, queued).unwrap();
        assert_eq!(core.stats().unwrap().queue_records, 0);
        let outcome = core
            .commit_page(page(&[&format!("after-drain-{round}")], Some("1"), 1))
            .unwrap_or_else(|e| panic!("round {round}: still full with an empty queue: {e:?}"));
        assert_eq!(outcome.appended, 1);
        queued += 1;
        let stats = core.stats().unwrap();
        assert!(
            stats.file_bytes < options.quota_bytes,
            "round {round}: {stats:?}"
        );
    }
}

/// A sink draining a full queue one record at a time does not make every page commit compact
/// the whole file: it compacts again once a quarter of what was queued has gone, and the
/// poller gets room then.
#[test]
fn draining_a_full_queue_compacts_now_and_then_not_on_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut core) = quota_store(&dir);
    let mut pages = 0u64;
    let (queued, full) = fill(&mut core, &mut pages, 5);
    assert!(full.is_queue_full(), "{full:?}");
    let compactions_at_full = core.io_stats().compactions;
    let (mut acked, mut attempts, mut admitted) = (0u64, 0u64, 0u64);
    while acked < queued / 2 {
        acked += 1;
        core.ack(SinkId::Collector, acked).unwrap();
        attempts += 1;
        match core.commit_page(big_page(pages, 5)) {
            Ok(outcome) => admitted += outcome.appended,
            Err(e) if e.is_queue_full() => {}
            Err(e) => panic!("{e:?}"),
        }
        pages += 1;
    }
    let compactions = core.io_stats().compactions - compactions_at_full;
    assert!(
        compactions <= 3,
        "{compactions} compactions for {attempts} page commits while {acked} of {queued} records drained"
    );
    assert!(
        admitted > 0,
        "the poller never got room: {compactions} compactions"
    );
}

// ---------------------------------------------------------------------------------------------
// seen expiry

/// 2024-05-02T21:03:11Z, the `created_at` of the events below, in ms.
const T: u64 = 1_714_683_791_000;

/// An event created `offset_ms` after [`T`].
fn created(id: &str, offset_ms: i64) -> BoxEvent {
    let at = T.checked_add_signed(offset_ms).unwrap();
    let secs = i64::try_from(at / 1000).unwrap();
    let time = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    BoxEvent::from_value(serde_json::json!({"event_id": id, "created_at": time})).unwrap()
}

/// A page of `events` first seen at `at`, without a position.
fn timed_page(events: Vec<BoxEvent>, at: u64) -> PageCommit {
    events_page(events, None, at)
}

/// expire_seen removes the entries created and first seen before the cut-off: not a
/// back-filled event seen recently, and not (forever) one dated far in the future.
#[test]
fn seen_expiry_removes_only_old_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().join("boxidr.redb"));
    options.seen_ttl = std::time::Duration::from_millis(1000);
    let mut core = StoreCore::open(options.clone()).unwrap();
    core.commit_page(timed_page(vec![created("old1", 0), created("old2", 0)], T))
        .unwrap();
    core.commit_page(timed_page(vec![created("new", 4_000)], T + 4_000))
        .unwrap();
    // A back-filled event: created a day ago, first seen now.
    core.commit_page(timed_page(vec![created("late", -86_400_000)], T + 4_000))
        .unwrap();
    // cut-off = T + 4_500 - 1_000: old1 and old2 go; new (created after) and late (seen after) stay.
    assert_eq!(core.expire_seen(T + 4_500).unwrap(), 2);
    assert_eq!(core.expire_seen(T + 4_500).unwrap(), 0);
    let outcome = core
        .commit_page(timed_page(
            vec![
                created("old1", 0),
                created("new", 4_000),
                created("late", -86_400_000),
            ],
            T + 6_000,
        ))
        .unwrap();
    assert_eq!(
        (outcome.appended, outcome.duplicates),
        (1, 2),
        "old1 is new again, new and late are dups"
    );
    assert_eq!(core.expire_seen(T + 5_500).unwrap(), 2, "late and new");

    // Dated far in the future (hostile): still forgotten a TTL after it was first seen.
    let far = BoxEvent::from_value(
        serde_json::json!({"event_id": "far", "created_at": "9999-12-31T23:30:00-01:00"}),
    )
    .unwrap();
    core.commit_page(timed_page(vec![far], T + 10_000)).unwrap();
    assert_eq!(core.expire_seen(T + 10_000).unwrap(), 1, "old1");
    assert_eq!(core.expire_seen(T + 11_001).unwrap(), 1, "far");
    core.close().unwrap();
}

/// A schema 1 file is migrated to 2 on open: an event its `seen` table knows is still a
/// duplicate, expiry still empties the old tables, and nothing new is written to them.
#[test]
fn schema_1_file_is_migrated_and_still_dedupes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boxidr.redb");
    {
        // What schema 1 firmware left: its meta and its dedupe table with its time index.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(schema::META).unwrap();
            meta.insert(schema::META_SCHEMA_VERSION, 1).unwrap();
            meta.insert(schema::META_NEXT_SEQ, 1).unwrap();
            txn.open_table(schema::SEEN)
                .unwrap()
                .insert("before", T)
                .unwrap();
            txn.open_table(schema::SEEN_BY_TIME)
                .unwrap()
                .insert((T, "before"), ())
                .unwrap();
            txn.open_table(schema::QUEUE).unwrap();
        }
        txn.commit().unwrap();
    }
    let mut options = StoreOptions::new(&path);
    options.seen_ttl = std::time::Duration::from_millis(1000);
    let mut core = StoreCore::open(options.clone()).unwrap();
    let outcome = core
        .commit_page(timed_page(
            vec![created("before", 0), created("after", 0)],
            T + 10,
        ))
        .unwrap();
    assert_eq!((outcome.appended, outcome.duplicates), (1, 1));
    core.close().unwrap();
    {
        let db = Database::open(&path).unwrap();
        assert_eq!(meta_value(&db, schema::META_SCHEMA_VERSION), Some(2));
        let read = db.begin_read().unwrap();
        assert_eq!(read.open_table(schema::SEEN).unwrap().len().unwrap(), 1);
        assert_eq!(read.open_table(schema::SEEN_AT).unwrap().len().unwrap(), 1);
    }
    let mut core = StoreCore::open(options).unwrap();
    assert_eq!(
        core.expire_seen(T + 5_000).unwrap(),
        2,
        "before (schema 1) and after"
    );
    let outcome = core
        .commit_page(timed_page(vec![created("before", 0)], T + 6_000))
        .unwrap();
    assert_eq!(
        outcome.appended, 1,
        "forgotten after the TTL, as before the upgrade"
    );
    core.close().unwrap();
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    assert!(read.open_table(schema::SEEN).unwrap().is_empty().unwrap());
    assert!(
        read.open_table(schema::SEEN_BY_TIME)
            .unwrap()
            .is_empty()
            .unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// users, settings, secrets, counters

/// Users, settings, secrets and counters round-trip; secrets delete; bad keys are refused.
#[test]
fn small_tables_round_trip() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    core.put_users(&[
        UserEntry {
            id: "1".into(),
            json: r#"{"id":"1","login":"a@x"}"#.into(),
        },
        UserEntry {
            id: "2".into(),
            json: r#"{"id":"2"}"#.into(),
        },
    ])
    .unwrap();
    assert_eq!(
        core.get_user("1").unwrap().as_deref(),
        Some(r#"{"id":"1","login":"a@x"}"#)
    );
    assert_eq!(core.get_user("3").unwrap(), None);

    let value = serde_json::json!({"domain": "example.com", "n": 3});
    core.set_setting("default_domain", &value).unwrap();
    assert_eq!(core.get_setting("default_domain").unwrap(), Some(value));
    assert_eq!(core.get_setting("missing").unwrap(), None);

    core.put_secrets(&[
        ("box.refresh", Secret::from("r2")),
        ("box.access", Secret::from("a2")),
    ])
    .unwrap();
    let secret = core.get_secret("box.refresh").unwrap().unwrap();
    assert_eq!(secret.expose(), "r2");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert!(core.delete_secret("box.refresh").unwrap());
    assert!(!core.delete_secret("box.refresh").unwrap());
    assert_eq!(core.get_secret("box.refresh").unwrap(), None);

    assert_eq!(core.add_counter("polls", 2).unwrap(), 2);
    assert_eq!(core.add_counter("polls", u64::MAX).unwrap(), u64::MAX);
    assert_eq!(core.counter("polls").unwrap(), u64::MAX);
    assert_eq!(core.counter("never").unwrap(), 0);
    assert!(matches!(
        core.set_setting("", &value_null()),
        Err(StoreError::InvalidInput { .. })
    ));
}

fn value_null() -> serde_json::Value {
    serde_json::Value::Null
}

/// Pruning keeps exactly the listed users, counts what it removed, and removes nothing (and
/// writes nothing) when every stored user is still listed.
#[test]
fn retain_users_removes_only_unlisted() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let users = ["1", "2", "3", "4"].map(user);
    core.put_users(&users).unwrap();
    let keep: std::collections::HashSet<String> =
        ["2", "4", "99"].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(core.retain_users(&keep).unwrap(), 2);
    let left = user_ids(&mut core);
    assert_eq!(left, ["2", "4"]);
    assert_eq!(core.get_user("1").unwrap(), None);
    let ops = disk.ops();
    assert_eq!(core.retain_users(&keep).unwrap(), 0);
    assert_eq!(disk.ops(), ops, "nothing to prune writes nothing");
    assert_eq!(core.retain_users(&Default::default()).unwrap(), 2);
    assert!(core.users_after(None, 10).unwrap().is_empty());
}

/// Users are listed in id order, a bounded page at a time.
#[test]
fn users_are_listed_in_pages() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    let users = ["3", "1", "2"].map(user);
    core.put_users(&users).unwrap();
    let first = core.users_after(None, 2).unwrap();
    assert_eq!(
        first.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    let rest = core.users_after(Some("2"), 2).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].json, "{\"id\":\"3\"}");
    assert!(core.users_after(Some("3"), 2).unwrap().is_empty());
}

/// A users sync by generation: users the sync wrote stay, users it did not list go (also
/// ones stored before stamps existed), and a second prune finds nothing to do.
#[test]
fn prune_users_removes_users_the_sync_did_not_list() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    core.put_users(&[user("1"), user("2"), user("3")]).unwrap();
    let generation = core.begin_users_sync().unwrap();
    core.put_users(&[user("2")]).unwrap();
    core.put_users(&[user("3"), user("4")]).unwrap();
    assert_eq!(core.prune_users(generation).unwrap(), 1);
    let left = user_ids(&mut core);
    assert_eq!(left, ["2", "3", "4"]);
    let ops = disk.ops();
    assert_eq!(core.prune_users(generation).unwrap(), 0);
    assert_eq!(disk.ops(), ops, "nothing to prune writes nothing");
    let next = core.begin_users_sync().unwrap();
    assert!(next > generation);
    core.put_users(&[user("4")]).unwrap();
    assert_eq!(core.prune_users(next).unwrap(), 2);
    assert_eq!(
        core.get_user("4").unwrap().as_deref(),
        Some("{\"id\":\"4\"}")
    );
}
