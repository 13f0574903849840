//! A Log Search connection that stops answering (a stalled HTTP/2 connection, through
//! `tools/fault-proxy`) while Box keeps producing: the sink must say so soon, keep saying so
//! while its retries fail, and lose nothing once the connection moves again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use boxidr_forward::{LogSearchSink, SinkState};
use boxidr_store::SinkId;
use common::*;
use fault_proxy::{FaultProxy, Faults};
use tokio::time::Instant;

/// Records keep arriving while the connection is stalled. Before: every new record was still
/// posted behind the first timed-out request, and the failure was reported only once all of
/// them had timed out too, so the sink said `delivering` for as long as records came (here
/// more than 15 s; in the service, behind a 30 s request timeout, more than 40 s); each retry
/// then said `delivering` again until it timed out. Now: nothing new is posted behind a
/// failure, what is still unanswered 2 s after it is given up, and the state stays `retrying`
/// until a retry delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_log_search_is_noticed_and_stays_retrying() {
    let sim = sim(|c| c.logsearch_tls = true).await;
    let base: url::Url = sim.logsearch_base().parse().unwrap();
    let target = base.socket_addrs(|| None).unwrap()[0];
    let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), target, Faults::default())
        .await
        .unwrap();
    let mut via_proxy = base.clone();
    via_proxy.set_port(Some(proxy.addr().port())).unwrap();
    let mut settings = logsearch_settings(&sim, via_proxy);
    settings.request_timeout = Duration::from_secs(2);
    let sink = LogSearchSink::new(settings).unwrap();

    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    let mut all = ids("before-", 20);
    seed(&store, &all, "DOWNLOAD").await;
    let run = spawn(&store, sink, options(50));
    caught_up(&store, SinkId::LogSearch).await;

    proxy.update(|f| f.stall = true);
    let stalled = Instant::now();
    let mut status = run.status.clone();
    let mut round = 0;
    // Box keeps producing: 5 records every 100 ms until the sink says it is failing.
    let noticed = loop {
        if matches!(status.borrow().state, SinkState::Retrying { .. }) {
            break stalled.elapsed();
        }
        assert!(
            stalled.elapsed() < Duration::from_secs(15),
            "a stalled Log Search not noticed in 15 s: {:?}",
            status.borrow().state
        );
        let batch = ids(&format!("stalled-{round}-"), 5);
        seed(&store, &batch, "DOWNLOAD").await;
        all.extend(batch);
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each retry meets the same stall: the state must not claim delivery meanwhile.
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(5) {
        let state = status.borrow_and_update().state.clone();
        assert!(
            matches!(state, SinkState::Retrying { .. }),
            "{:.1} s into the stall the sink says {state:?}",
            (stalled.elapsed()).as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.clear();
    caught_up(&store, SinkId::LogSearch).await;
    let final_status = run.stop().await;
    let counts = sim.delivery_counts().logsearch;
    assert_eq!(counts.ids(), all.iter().cloned().collect());
    println!(
        "stall noticed after {:.1} s with 2 s request timeout; {} records, {} duplicates",
        noticed.as_secs_f64(),
        all.len(),
        counts.duplicates()
    );
    // Noticed at the first request timeout plus the 2 s given to what was in flight.
    assert!(
        noticed <= Duration::from_secs(6),
        "noticed after {noticed:?}"
    );
    assert!(final_status.delivered >= all.len() as u64 - 20);
}

/// Log Search answers 503 for 1.5 s while 300 records wait. Before: every retry posted a
/// window's worth of requests again (each opening its own connection when none is up: after
/// an outage, hundreds of TLS handshakes per retry). Now the retry is one request, and the
/// window opens once it is answered 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_one_request_until_it_is_answered() {
    let sim = sim(|c| c.logsearch_tls = true).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    let mut all = ids("before-", 20);
    seed(&store, &all, "DOWNLOAD").await;
    let run = spawn(&store, logsearch(&sim), options(50));
    caught_up(&store, SinkId::LogSearch).await;

    let before = sim.requests(idr_sim::Surface::Logsearch);
    sim.faults()
        .set(logsearch_status(503, None).for_duration(Duration::from_millis(1500)))
        .unwrap();
    let waiting = ids("during-", 300);
    seed(&store, &waiting, "DOWNLOAD").await;
    all.extend(waiting);
    caught_up(&store, SinkId::LogSearch).await;
    let status = run.stop().await;

    let counts = sim.delivery_counts().logsearch;
    assert_eq!(counts.ids(), all.iter().cloned().collect());
    let requests = sim.requests(idr_sim::Surface::Logsearch) - before;
    let refused = requests - 300 - counts.duplicates();
    let SinkState::Stopped = status.state else {
        panic!("{:?}", status.state)
    };
    println!(
        "503 for 1.5 s with 300 records waiting: {requests} requests, {refused} refused, {} duplicates",
        counts.duplicates()
    );
    // The first attempt posts what was waiting (300) into the 503s; then one request per
    // retry (backoff 10–100 ms: at most ~60 in 1.5 s).
    assert!(refused <= 360, "{refused} requests refused");
}
