//! The async handle: requests from many tokio tasks are served by the one storage thread, and
//! the thread stops (closing the database) when the handles go away.

// Test crate: helpers outside #[test] fns may unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use boxidr_model::StreamType;
use boxidr_store::settings::{self, SecretKey, SettingKey};
use boxidr_store::{CursorKey, PageCommit, SinkId, Store, StoreCore, StoreError, StoreOptions};
use common::*;

/// Concurrent callers from several tasks on a multi-thread runtime all get their replies, and
/// every event lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_all_get_replies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path().join("boxidr.redb")))
        .await
        .unwrap();
    store.set_enabled_sinks(&[SinkId::Collector]).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut appended = 0;
            for n in 0..10 {
                let ids: Vec<String> = (0..5).map(|i| format!("t{task}-p{n}-e{i}")).collect();
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                let mut p = page(&refs, Some(&format!("{}", task * 100 + n + 1)), 1);
                p.cursor = CursorKey::Sweep(format!("task{task}"));
                appended += store.commit_page(p).await.unwrap().appended;
                store.stats().await.unwrap();
                store.add_counter("calls".into(), 1).await.unwrap();
            }
            appended
        }));
    }
    // Readers run alongside the writers.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                store
                    .read_batch(SinkId::Collector, 50, usize::MAX)
                    .await
                    .unwrap();
            }
        })
    };
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    reader.await.unwrap();
    assert_eq!(total, 400);
    assert_eq!(store.stats().await.unwrap().queue_records, 400);
    assert_eq!(store.counter("calls".into()).await.unwrap(), 80);
    let records = store
        .read_batch(SinkId::Collector, usize::MAX, usize::MAX)
        .await
        .unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    let cursor = store
        .cursor(CursorKey::Sweep("task3".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cursor.position.unwrap().as_str(), "310");
}

/// Dropping every handle stops the storage thread, which closes the database: the file can be
/// opened again (redb holds an exclusive lock while a Database is open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_all_handles_stops_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().join("boxidr.redb"));
    let store = Store::open(options.clone()).await.unwrap();
    let clone = store.clone();
    store.commit_page(page(&["a"], Some("5"), 1)).await.unwrap();
    // While a handle lives, the database is held open by the thread.
    assert!(StoreCore::open(options.clone()).is_err());
    drop(store);
    clone.stats().await.unwrap();
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut core = loop {
        match StoreCore::open(options.clone()) {
            Ok(core) => break core,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("database still held after all handles dropped: {e}"),
        }
    };
    assert_eq!(core.stats().unwrap().queue_records, 1);
}

/// close() closes the database at once; later calls on any clone report Closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_serving() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path().join("boxidr.redb"));
    let store = Store::open(options.clone()).await.unwrap();
    let clone = store.clone();
    store.close().await.unwrap();
    assert!(matches!(clone.stats().await, Err(StoreError::Closed)));
    let _core = StoreCore::open(options).unwrap();
}

/// Opening through the handle reports open errors (here: a newer schema) instead of panicking,
/// and works from a current-thread runtime too (no blocking on the runtime's only worker).
#[tokio::test]
async fn open_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boxidr.redb");
    StoreCore::open(StoreOptions::new(&path))
        .unwrap()
        .close()
        .unwrap();
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(boxidr_store::schema::META)
            .unwrap()
            .insert(boxidr_store::schema::META_SCHEMA_VERSION, 3)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(StoreOptions::new(&path)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 3, .. }),
        "{err:?}"
    );
    let missing = Store::open(StoreOptions::new(dir.path().join("no/such/dir/x.redb"))).await;
    assert!(matches!(missing, Err(StoreError::Io { .. })), "{missing:?}");
}

/// The small-table calls work through the handle, and a page from the other stream too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_small_tables() {
    let disk = MemDisk::new();
    let store = Store::open_with_backend(mem_options(), disk.factory())
        .await
        .unwrap();
    store
        .put_users(vec![boxidr_store::UserEntry {
            id: "9".into(),
            json: "{}".into(),
        }])
        .await
        .unwrap();
    assert_eq!(
        store.get_user("9".into()).await.unwrap().as_deref(),
        Some("{}")
    );
    store
        .set_setting("k".into(), serde_json::json!([1]))
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("k".into()).await.unwrap(),
        Some(serde_json::json!([1]))
    );
    store
        .put_secrets(vec![(SecretKey::new("t"), boxidr_model::Secret::from("s"))])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_secret(SecretKey::new("t"))
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "s"
    );
    assert!(store.delete_secret(SecretKey::new("t")).await.unwrap());
    let p = PageCommit {
        cursor: CursorKey::Stream(StreamType::AdminLogs),
        events: vec![event("x")],
        next_position: Some(pos("7")),
        last_created_at: None,
        window: None,
        collected_at_ms: 0,
    };
    store.commit_page(p).await.unwrap();
    assert_eq!(store.expire_seen(u64::MAX).await.unwrap(), 1);
    store.ack(SinkId::Collector, 1).await.unwrap();
    let report = store.compact().await.unwrap();
    assert!(report.after_bytes <= report.before_bytes);
}

/// Typed settings keep the JSON the raw calls see: a string stays a JSON string, a cleared
/// setting is JSON `null` and reads as `None`, and so does a value of another shape.
#[tokio::test]
async fn typed_settings_keep_the_stored_json() {
    let disk = MemDisk::new();
    let store = Store::open_with_backend(mem_options(), disk.factory())
        .await
        .unwrap();
    let raw = |key: &'static str| store.get_setting(key.to_owned());
    assert_eq!(store.setting(settings::BOX_CLIENT_ID).await.unwrap(), None);
    store
        .put_setting(settings::BOX_CLIENT_ID, &"client-1".to_owned())
        .await
        .unwrap();
    assert_eq!(
        raw("box.client_id").await.unwrap(),
        Some(serde_json::json!("client-1"))
    );
    assert_eq!(
        store
            .setting(settings::BOX_CLIENT_ID)
            .await
            .unwrap()
            .as_deref(),
        Some("client-1")
    );
    store
        .put_setting(settings::TLS_UPLOADED, &true)
        .await
        .unwrap();
    assert_eq!(
        raw("setup.tls.uploaded").await.unwrap(),
        Some(serde_json::json!(true))
    );
    assert_eq!(
        store.setting(settings::TLS_UPLOADED).await.unwrap(),
        Some(true)
    );

    store.clear_setting(settings::BOX_CLIENT_ID).await.unwrap();
    assert_eq!(
        raw("box.client_id").await.unwrap(),
        Some(serde_json::Value::Null)
    );
    assert_eq!(store.setting(settings::BOX_CLIENT_ID).await.unwrap(), None);
    assert_eq!(
        store
            .setting(settings::BOX_CLIENT_ID.untyped())
            .await
            .unwrap(),
        None
    );

    store
        .set_setting("box.client_id".into(), serde_json::json!(7))
        .await
        .unwrap();
    assert_eq!(store.setting(settings::BOX_CLIENT_ID).await.unwrap(), None);
    let any: SettingKey<serde_json::Value> = SettingKey::new("box.client_id");
    assert_eq!(
        store.setting(any).await.unwrap(),
        Some(serde_json::json!(7))
    );
}

/// Group commit through the handle: a page commit answered inside a group is made durable by
/// the storage thread on its own (its timer), with no further request.
#[tokio::test]
async fn grouped_commits_become_durable_on_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().join("boxidr.redb"));
    options.commit_interval = std::time::Duration::from_millis(50);
    let store = Store::open(options).await.unwrap();
    let first = page_commit("a", "1");
    store.commit_page(first).await.unwrap();
    store.commit_page(page_commit("b", "2")).await.unwrap();
    let grouped = store.stats().await.unwrap().io;
    assert!(grouped.commits > grouped.durable_commits, "{grouped:?}");
    let mut durable = grouped;
    for _ in 0..500 {
        durable = store.stats().await.unwrap().io;
        if durable.durable_commits > grouped.durable_commits {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        durable.durable_commits,
        grouped.durable_commits + 1,
        "{durable:?}"
    );
    assert!(durable.fsyncs > grouped.fsyncs);
    assert_eq!(
        durable.commits,
        grouped.commits + 1,
        "one flush commit for the group"
    );
}

fn page_commit(id: &str, next: &str) -> PageCommit {
    let event = boxidr_model::BoxEvent::from_value(serde_json::json!({"event_id": id})).unwrap();
    events_page(vec![event], Some(next), 1)
}
