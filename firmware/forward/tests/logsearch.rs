//! The Log Search sink against idr-sim's HTTP ingest: every record delivered over HTTPS with a
//! custom CA, 5xx/429 storms retried (Retry-After honoured) with duplicates bounded by the
//! requests in flight, an unknown token stops the sink with the queue kept, and an oversized
//! record (413) or one refused as a bad request (400) is kept as a dead letter, not wedging
//! the queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use boxidr_forward::SinkState;
use boxidr_store::SinkId;
use common::*;
use idr_sim::{SimHandle, UnknownTokenBehaviour};

/// Requests the Log Search surface has received, from the simulator's control surface.
async fn logsearch_requests(sim: &SimHandle) -> u64 {
    let stats: serde_json::Value = reqwest::get(format!("{}/_sim/stats", sim.api_base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["logsearch"]["requests"].as_u64().unwrap()
}

/// Every record is posted once over HTTPS (trusting the simulator's CA) and the queue empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_record_once_over_https() {
    let sim = sim(|c| c.logsearch_tls = true).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    let all = ids("x-", 150);
    seed(&store, &all, "DOWNLOAD").await;

    let status = deliver_all(&store, logsearch(&sim), options(40)).await;

    let counts = sim.delivery_counts().logsearch;
    assert_eq!(counts.ids(), all.into_iter().collect());
    assert_eq!(counts.duplicates(), 0);
    assert_eq!(queued(&store).await, 0);
    assert_eq!(
        (status.delivered, status.skipped, status.rejected),
        (150, 0, 0)
    );
    assert!(sim.rejected().is_empty());
}

/// A storm of 503s: retried with backoff until it passes; each failed attempt re-sends at most
/// the other requests that were in flight (concurrency − 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_storm_is_retried() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    seed(&store, &ids("s-", 60), "DOWNLOAD").await;
    let failures = 12;
    sim.faults()
        .set(logsearch_status(503, None).times(failures))
        .unwrap();

    let status = deliver_all(&store, logsearch(&sim), options(20)).await;

    let counts = sim.delivery_counts().logsearch;
    assert_eq!(counts.delivered(), 60);
    assert!(
        counts.duplicates() <= u64::from(failures) * 3,
        "{} duplicates",
        counts.duplicates()
    );
    assert_eq!(
        logsearch_requests(&sim).await,
        60 + u64::from(failures) + counts.duplicates()
    );
    assert_eq!(status.delivered, 60);
    assert!(status.last_error.unwrap().contains("503"));
}

/// A 429 with `Retry-After: 1`: the next attempt is scheduled at least that far ahead, then
/// everything is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    seed(&store, &ids("r-", 10), "DOWNLOAD").await;
    sim.faults()
        .set(logsearch_status(429, Some(1)).times(1))
        .unwrap();

    let run = spawn(&store, logsearch(&sim), options(50));
    let mut status = run.status.clone();
    let retrying = status
        .wait_for(|s| matches!(s.state, SinkState::Retrying { .. }))
        .await
        .unwrap()
        .clone();
    let seen_at = SystemTime::now();
    let SinkState::Retrying { next_attempt, .. } = retrying.state else {
        unreachable!()
    };
    let ahead = next_attempt.duration_since(seen_at).unwrap_or_default();
    assert!(ahead >= Duration::from_millis(800), "{ahead:?}");
    assert!(retrying.last_error.unwrap().contains("429"));

    caught_up(&store, SinkId::LogSearch).await;
    run.stop().await;
    assert_eq!(sim.delivery_counts().logsearch.delivered(), 10);
}

/// An unknown token (404) is a configuration error: the sink stops without a retry loop, the
/// queue is kept, and the reason and status never show the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_token_stops_the_sink_and_keeps_the_queue() {
    let sim = sim(|c| c.unknown_token = UnknownTokenBehaviour::Reject(404)).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    seed(&store, &ids("u-", 20), "DOWNLOAD").await;
    let wrong = idr_sim::random_uuid();

    let run = spawn(&store, logsearch_with(&sim, &wrong), options(50));
    let mut status = run.status.clone();
    let stopped = status
        .wait_for(|s| matches!(s.state, SinkState::ConfigError { .. }))
        .await
        .unwrap()
        .clone();
    let SinkState::ConfigError { reason } = &stopped.state else {
        unreachable!()
    };
    assert!(reason.contains("404"), "{reason}");
    assert!(!format!("{stopped:?}").contains(&wrong));

    let requests = logsearch_requests(&sim).await;
    assert!((1..=4).contains(&requests), "{requests}");
    // Long enough for dozens of retries at the test backoff (10–100 ms) if there were a loop.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(logsearch_requests(&sim).await, requests);
    assert_eq!(pending(&store, SinkId::LogSearch).await, 20);
    assert_eq!(queued(&store).await, 20);

    let end = run.stop().await;
    assert!(matches!(end.state, SinkState::ConfigError { .. }));
    assert_eq!(end.delivered, 0);
}

/// A record the service refuses as too large (413) is kept as a dead letter (with the reason)
/// by the ack that passes it, counted, and the rest flows: nothing wedges, nothing vanishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_becomes_a_dead_letter_not_a_wedge() {
    let sim = sim(|c| c.body_limit = 4096).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    seed(&store, &ids("a-", 5), "DOWNLOAD").await;
    seed_padded(&store, &["big".to_owned()], "DOWNLOAD", 5000).await;
    seed(&store, &ids("b-", 5), "DOWNLOAD").await;

    let status = deliver_all(&store, logsearch(&sim), options(50)).await;
    assert_eq!((status.delivered, status.rejected), (10, 1));
    let counts = sim.delivery_counts().logsearch;
    assert_eq!((counts.delivered(), counts.duplicates()), (10, 0));

    let letters = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.sink, SinkId::LogSearch);
    assert_eq!(letter.record.event_id.as_str(), "big");
    assert!(letter.reason.contains("413"), "{}", letter.reason);
    assert!(letter.record.event_json.len() > 5000);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.queue_records, stats.dead_letters), (0, 1));
}

/// A 400 answers one request, which carries one record: that record becomes a dead letter
/// (with the reason) and the sink goes on with the rest. It is not a configuration error: the
/// sink neither stops nor retries the record in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_for_one_record_becomes_a_dead_letter_not_a_stop() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    seed(&store, &ids("r-", 12), "DOWNLOAD").await;
    sim.faults()
        .set(logsearch_status(400, None).times(1))
        .unwrap();

    let status = deliver_all(&store, logsearch(&sim), options(4)).await;
    assert!(
        !matches!(status.state, SinkState::ConfigError { .. }),
        "{:?}",
        status.state
    );
    assert_eq!((status.delivered, status.rejected), (11, 1));
    let counts = sim.delivery_counts().logsearch;
    assert_eq!((counts.delivered(), counts.duplicates()), (11, 0));
    // One request per record: the refused one was not sent again.
    assert_eq!(logsearch_requests(&sim).await, 12);

    let letters = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].reason.contains("400"), "{}", letters[0].reason);
    assert!(!counts.ids().contains(letters[0].record.event_id.as_str()));
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.queue_records, stats.dead_letters), (0, 1));
}
