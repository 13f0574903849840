//! The poller task end to end on loopback: Box simulator → poller → redb store.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

mod common;
use common::{Rig, open_store, rig};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use box_sim::SimConfig;
use boxidr_boxapi::events::From;
use boxidr_boxapi::poller::StreamTask;
use boxidr_boxapi::{Grant, PollStatus, Poller, PollerConfig, TokenManager, http, poller};
use boxidr_model::StreamType;
use boxidr_store::{CursorKey, SinkId, Store};
use serde_json::json;
use tokio::sync::watch;
use url::Url;

/// Runs the poller until `done` holds for its status (or 20 s pass), then stops it.
async fn poll_until(rig: &Rig, store: &Store, done: impl Fn(&PollStatus) -> bool) -> PollStatus {
    let tokens = TokenManager::load(rig.auth.clone(), rig.grant.clone(), store.clone())
        .await
        .unwrap();
    let committed = store
        .cursor(CursorKey::Stream(StreamType::AdminLogsStreaming))
        .await
        .unwrap()
        .and_then(|c| c.position);
    let config = PollerConfig {
        stream: StreamType::AdminLogsStreaming,
        limit: 20,
        interval: Duration::from_millis(50),
        start: From::Start,
    };
    let (status_tx, mut status_rx) = watch::channel(PollStatus::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = async {
        poller::run(
            Poller::new(config, committed),
            StreamTask {
                events: rig.events.clone(),
                tokens: &tokens,
                store,
                status: status_tx,
                catch_up: None,
                shutdown: stop_rx,
                pulse: boxidr_model::Pulse::default(),
            },
        )
        .await;
    };
    let watcher = async {
        let _ =
            tokio::time::timeout(Duration::from_secs(20), status_rx.wait_for(|s| done(s))).await;
        stop_tx.send(true).unwrap();
    };
    tokio::join!(task, watcher);
    status_rx.borrow().clone()
}

async fn queued_ids(store: &Store) -> Vec<String> {
    store
        .read_batch(SinkId::LogSearch, 1_000_000, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id.to_string())
        .collect()
}

/// Every generated event reaches the queue exactly once although the streaming feed repeats
/// events (duplicate rate 30 %), and a restarted poller resumes from the committed cursor
/// without re-appending anything.
#[tokio::test(flavor = "multi_thread")]
async fn every_event_once_across_restart() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 120,
        streaming_duplicate_rate: 0.3,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    store.set_enabled_sinks(&[SinkId::LogSearch]).await.unwrap();

    let status = poll_until(&rig, &store, |s| s.reader.appended >= 120).await;
    assert_eq!(status.reader.appended, 120, "{status:?}");
    assert!(
        status.reader.duplicates > 0,
        "the sim injected duplicates: {status:?}"
    );

    // New events while "down", then a restart from the committed cursor.
    rig.sim.generate_now(30);
    let status = poll_until(&rig, &store, |s| s.reader.appended >= 30).await;
    assert_eq!(status.reader.appended, 30, "{status:?}");

    let ids = queued_ids(&store).await;
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for id in &ids {
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "duplicates in the queue");
    let generated: BTreeSet<String> = rig.sim.generated_ids().into_iter().collect();
    let queued: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(queued, generated);
}

/// Faults on the way (429, 5xx, a malformed body, a revoked token) delay but never lose or
/// duplicate events, and the poller keeps going on its own.
#[tokio::test(flavor = "multi_thread")]
async fn faults_do_not_lose_events() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 60,
        ..SimConfig::default()
    })
    .await;
    let faults = rig.sim.faults();
    faults
        .add_json(&json!([
            {"fault":"rate_limit","retry_after":1,"endpoint":"events","count":1},
            {"fault":"server_error","status":502,"body":"html","endpoint":"events","count":1},
            {"fault":"malformed_json","endpoint":"events","count":1},
        ]))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    store.set_enabled_sinks(&[SinkId::LogSearch]).await.unwrap();
    let status = poll_until(&rig, &store, |s| s.reader.appended >= 60).await;
    assert_eq!(status.reader.appended, 60, "{status:?}");
    let generated: BTreeSet<String> = rig.sim.generated_ids().into_iter().collect();
    let queued: BTreeSet<String> = queued_ids(&store).await.into_iter().collect();
    assert_eq!(queued, generated);
}

/// A spent refresh token (the sim rotated it but the client never saw the answer) stops the
/// poller with a re-authorisation message instead of a retry loop.
#[tokio::test(flavor = "multi_thread")]
async fn dead_grant_halts() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 5,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let rig = Rig {
        grant: Grant::AuthorizationCode,
        ..rig
    };
    let status = poll_until(&rig, &store, |s| s.reader.halted.is_some()).await;
    let reason = status.reader.halted.expect("halted");
    assert!(reason.contains("connect Box again"), "{reason}");
    let token_calls = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/token")
        .count();
    assert_eq!(token_calls, 0, "no refresh token stored: nothing to spend");
}

/// The users sync walks every marker page into the store: every managed user is there with
/// the status and role the normaliser needs.
#[tokio::test(flavor = "multi_thread")]
async fn users_sync_stores_every_user() {
    let rig = rig(SimConfig {
        rate: 0.0,
        backlog: 0,
        users: 2500,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let tokens = TokenManager::load(rig.auth.clone(), rig.grant.clone(), store.clone())
        .await
        .unwrap();
    let client = boxidr_boxapi::UsersClient::new(
        http::client(Duration::from_secs(5)).unwrap(),
        &Url::parse(&rig.sim.api_base()).unwrap(),
        8 << 20,
    );
    let report = boxidr_boxapi::users::sync(&tokens, &client, &store, &Default::default())
        .await
        .unwrap();
    let ids = rig.sim.managed_user_ids();
    assert_eq!(report.users, ids.len(), "{report:?}");
    assert_eq!(report.pages, ids.len().div_ceil(1000), "{report:?}");
    for id in &ids {
        let json = store.get_user(id.clone()).await.unwrap().expect("stored");
        let user: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(
            user["status"].is_string() && user["role"].is_string(),
            "{user}"
        );
        assert!(user["login"].as_str().unwrap().contains('@'), "{user}");
    }
}
