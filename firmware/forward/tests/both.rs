//! Both sinks on one queue: a sink that is down never holds back the other, and a record is
//! deleted only once both have delivered it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use boxidr_forward::SinkState;
use boxidr_store::SinkId;
use common::*;
use idr_sim::{FaultKind, FaultSpec, Surface};

/// Collector down: Log Search delivers everything and the queue keeps every record for the
/// Collector; when the Collector returns it catches up and only then is the queue emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sink_down_the_other_keeps_delivering() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector, SinkId::LogSearch]).await;
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Down))
        .unwrap();
    let logins = ids("l-", 40);
    seed(&store, &logins, "LOGIN").await;
    seed(&store, &ids("d-", 20), "DOWNLOAD").await;

    let uef = spawn(&store, collector(&sim), options(25));
    let raw = spawn(&store, logsearch(&sim), options(25));
    caught_up(&store, SinkId::LogSearch).await;
    uef.retrying(2).await;
    assert_eq!(sim.delivery_counts().logsearch.delivered(), 60);
    assert_eq!(pending(&store, SinkId::Collector).await, 60);
    assert_eq!(
        queued(&store).await,
        60,
        "nothing deleted before both delivered"
    );

    sim.faults().clear(Surface::Uef);
    caught_up(&store, SinkId::Collector).await;
    assert_eq!(queued(&store).await, 0);
    let uef_end = uef.stop().await;
    let raw_end = raw.stop().await;

    let counts = sim.delivery_counts();
    assert_eq!((counts.uef.delivered(), counts.uef.duplicates()), (40, 0));
    assert_eq!(
        (counts.logsearch.delivered(), counts.logsearch.duplicates()),
        (60, 0)
    );
    assert!(sim.uef_rejected().is_empty());
    assert_eq!((uef_end.delivered, uef_end.skipped), (40, 20));
    assert_eq!(raw_end.delivered, 60);
}

/// Log Search refusing its token stops only Log Search: the Collector keeps delivering, and
/// records stay queued for Log Search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_error_on_one_sink_does_not_stop_the_other() {
    let sim = sim(|c| c.unknown_token = idr_sim::UnknownTokenBehaviour::Reject(403)).await;
    let (store, _dir) = store_for(&[SinkId::Collector, SinkId::LogSearch]).await;
    seed(&store, &ids("c-", 30), "LOGIN").await;

    let raw = spawn(
        &store,
        logsearch_with(&sim, &idr_sim::random_uuid()),
        options(10),
    );
    let uef = spawn(&store, collector(&sim), options(10));
    caught_up(&store, SinkId::Collector).await;
    let raw_end = raw.stop().await;
    uef.stop().await;
    assert!(matches!(raw_end.state, SinkState::ConfigError { .. }));
    assert_eq!(sim.delivery_counts().uef.delivered(), 30);
    assert_eq!(pending(&store, SinkId::LogSearch).await, 30);
    assert_eq!(queued(&store).await, 30);
}
