//! The forwarding window: reads run ahead of the cursor only as far as the sink's window and
//! `max_unacked` allow (the duplicate bound), and across a WAN many requests are in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use boxidr_forward::{Delivery, ForwarderOptions, LogSearchSink, Rendered, Sink, Window};
use boxidr_store::SinkId;
use common::*;
use idr_sim::Surface;

/// A sink that accepts everything and delivers nothing: how far does the loop read ahead?
struct Holding {
    window: Window,
    submitted: Arc<AtomicUsize>,
}

impl Sink for Holding {
    fn id(&self) -> SinkId {
        SinkId::LogSearch
    }
    fn window(&self) -> Window {
        self.window
    }
    fn submit(&mut self, batch: Vec<Rendered>, _through: u64) {
        let lines = batch.iter().filter(|r| r.line.is_some()).count();
        self.submitted.fetch_add(lines, Ordering::SeqCst);
    }
    async fn progress(&mut self) -> Delivery {
        std::future::pending().await
    }
    fn reset(&mut self) {}
    async fn close(&mut self) {}
}

async fn read_ahead(window: Window, max_unacked: usize) -> usize {
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    for page in 0..6 {
        seed(&store, &ids(&format!("p{page}-"), 500), "DOWNLOAD").await;
    }
    let submitted = Arc::new(AtomicUsize::new(0));
    let sink = Holding {
        window,
        submitted: submitted.clone(),
    };
    let options = ForwarderOptions {
        max_unacked,
        ..options(100)
    };
    let run = spawn(&store, sink, options);
    let expected = window.records.min(max_unacked);
    wait_until("the window filled", async || {
        submitted.load(Ordering::SeqCst) >= expected
    })
    .await;
    // Long enough for many more reads if the bound did not hold.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = submitted.load(Ordering::SeqCst);
    run.stop().await;
    assert_eq!(
        pending(&store, SinkId::LogSearch).await,
        3000,
        "nothing acked"
    );
    read
}

/// Nothing delivered: the loop hands the sink exactly its window, never more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stop_at_the_sink_window() {
    let window = Window {
        records: 300,
        bytes: usize::MAX,
    };
    assert_eq!(read_ahead(window, 10_000).await, 300);
}

/// ... and never more than `max_unacked` (the duplicate bound after a crash), whatever the
/// sink's window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stop_at_max_unacked() {
    let window = Window {
        records: 100_000,
        bytes: usize::MAX,
    };
    assert_eq!(read_ahead(window, 700).await, 700);
}

/// Over HTTPS the simulator negotiates HTTP/2: the sink widens its window to connections ×
/// streams, and a 503 storm costs retries, not duplicates (answers behind a failure are kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_window_and_no_duplicates_in_a_503_storm() {
    let sim = sim(|c| c.logsearch_tls = true).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    let all = ids("h-", 400);
    seed(&store, &all, "DOWNLOAD").await;
    let mut settings = logsearch_settings(&sim, sim.logsearch_base().parse().unwrap());
    settings.connections = 2;
    settings.streams = 64;
    let mut probe = LogSearchSink::new(settings.clone()).unwrap();
    assert_eq!(probe.window().records, settings.concurrency);
    probe.submit(
        vec![Rendered {
            seq: 1,
            line: Some(r#"{"probe":true}"#.into()),
        }],
        1,
    );
    let delivery = probe.progress().await;
    assert_eq!((delivery.through, delivery.error), (Some(1), None));
    assert_eq!(probe.window().records, 128, "HTTP/2 negotiated: 2 × 64");
    assert!(format!("{probe:?}").contains("http2: true"));

    let failures = 10;
    sim.faults()
        .set(logsearch_status(503, None).times(failures))
        .unwrap();

    let status = deliver_all(&store, LogSearchSink::new(settings).unwrap(), options(100)).await;
    let counts = sim.delivery_counts().logsearch;
    assert_eq!(counts.ids(), all.into_iter().collect());
    assert_eq!(counts.duplicates(), 0);
    assert_eq!(status.delivered, 400);
    assert!(status.last_error.unwrap().contains("503"));
}

/// Once HTTP/2 is negotiated, each client shares one connection among its streams: a backlog
/// posted through 4 clients × 128 streams opens about one connection per client, not one per
/// request that found no connection ready (before: hundreds of TLS connections at the switch
/// to HTTP/2, each holding its buffers while idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_opens_one_connection_per_client() {
    let sim = sim(|c| c.logsearch_tls = true).await;
    let (store, _dir) = store_for(&[SinkId::LogSearch]).await;
    let all = ids("c-", 3000);
    for chunk in all.chunks(500) {
        seed(&store, chunk, "DOWNLOAD").await;
    }
    let mut settings = logsearch_settings(&sim, sim.logsearch_base().parse().unwrap());
    settings.connections = 4;
    settings.streams = 128;
    let before = sim.connections(Surface::Logsearch);
    let run = spawn(
        &store,
        LogSearchSink::new(settings.clone()).unwrap(),
        options(100),
    );
    caught_up(&store, SinkId::LogSearch).await;
    run.stop().await;
    let opened = sim.connections(Surface::Logsearch) - before;
    let counts = sim.delivery_counts().logsearch;
    assert_eq!(counts.ids(), all.into_iter().collect());
    println!("3,000 records through 4 × 128 HTTP/2 streams: {opened} connections");
    // Negotiation (at most `concurrency` ALPN connections) plus one per HTTP/2 client.
    let bound = (settings.concurrency + settings.connections) as u64;
    assert!(
        opened <= bound,
        "{opened} connections opened (bound {bound})"
    );
}
