//! The Collector sink against idr-sim's UEF listener: every login delivered, faults (outage,
//! reset mid-batch, TLS failures, stall, half-close) cost at most one re-sent batch, and no
//! line is ever silently discarded by the listener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use boxidr_forward::{CollectorSink, CollectorTransport, SinkState};
use boxidr_store::SinkId;
use common::*;
use idr_sim::{FaultKind, FaultSpec, Surface, TestCa, TlsFailMode};

/// Every queued login reaches the Collector exactly once; other events are passed, not sent;
/// the queue is emptied and the listener discarded nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_login_once() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    let logins = ids("login-", 120);
    seed(&store, &logins, "LOGIN").await;
    seed(&store, &ids("dl-", 30), "DOWNLOAD").await;

    let status = deliver_all(&store, collector(&sim), options(50)).await;

    let counts = sim.delivery_counts().uef;
    assert_eq!(counts.delivered(), 120);
    assert_eq!(counts.duplicates(), 0);
    assert_eq!(counts.ids(), logins.into_iter().collect());
    assert!(sim.uef_rejected().is_empty(), "{:?}", sim.uef_rejected());
    assert_eq!(queued(&store).await, 0);
    assert_eq!(status.delivered, 120);
    assert_eq!(status.skipped, 30);
    assert_eq!(status.cursor, 150);
    assert_eq!(status.state, SinkState::Stopped);
    assert!(status.last_delivered_at.is_some());
    // One persistent connection for all three batches.
    assert_eq!(sim.connections(Surface::Uef), 1);
}

/// While the Collector is down nothing is acknowledged and the sink backs off; when it comes
/// back everything is delivered, with no duplicate (nothing was written meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    let first = ids("a-", 20);
    seed(&store, &first, "LOGIN").await;
    let run = spawn(&store, collector(&sim), options(50));
    caught_up(&store, SinkId::Collector).await;

    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Down))
        .unwrap();
    let second = ids("b-", 20);
    seed(&store, &second, "LOGIN").await;
    run.retrying(3).await;
    assert_eq!(pending(&store, SinkId::Collector).await, 20);

    sim.faults().clear(Surface::Uef);
    caught_up(&store, SinkId::Collector).await;
    let status = run.stop().await;
    let counts = sim.delivery_counts().uef;
    assert_eq!(counts.delivered(), 40);
    assert_eq!(counts.duplicates(), 0);
    assert!(sim.uef_rejected().is_empty());
    assert_eq!(status.delivered, 40);
    assert!(status.last_error.unwrap().contains("Collector"));
}

/// A reset after part of a batch was read: the whole batch is sent again on a new connection,
/// so the only duplicates are the lines the first connection processed (fewer than one batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_batch_resends_the_batch() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("r-", 200), "LOGIN").await;
    // A batch of 100 lines (~28 KB) spans two TLS records (16 KiB max): the handshake (< 2 KB)
    // and the first record get through, the reset lands inside the second. The listener
    // processes the lines of the first record.
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Uef,
                FaultKind::Reset {
                    after_bytes: 20_000,
                },
            )
            .times(1),
        )
        .unwrap();

    let status = deliver_all(&store, collector(&sim), options(100)).await;

    let counts = sim.delivery_counts().uef;
    let on_first_connection = sim.uef_accepted().iter().filter(|r| r.conn == 1).count();
    assert!(
        (1..100).contains(&on_first_connection),
        "the reset must land mid-batch: {on_first_connection} lines before it"
    );
    assert_eq!(counts.delivered(), 200);
    assert_eq!(counts.duplicates(), on_first_connection as u64);
    assert!(
        sim.uef_rejected()
            .iter()
            .all(|r| matches!(r.reason, idr_sim::RejectReason::IncompleteLine(_)))
    );
    assert_eq!(status.delivered, 200);
}

/// With a long confirm window several batches are written and still unconfirmed when the
/// Collector resets the connection: every one of them is sent again (what the first connection
/// processed arrives twice), nothing is lost, and nothing beyond the window is re-sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_resends_every_unconfirmed_batch() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("u-", 400), "LOGIN").await;
    // Batches of 50 lines (~14 KB): the reset lands after about four of them were written.
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Uef,
                FaultKind::Reset {
                    after_bytes: 60_000,
                },
            )
            .times(1),
        )
        .unwrap();
    let mut settings = collector_settings(&sim);
    settings.confirm_window = Duration::from_secs(3);
    let status = deliver_all(&store, CollectorSink::new(settings).unwrap(), options(50)).await;
    let counts = sim.delivery_counts().uef;
    let on_first_connection = sim.uef_accepted().iter().filter(|r| r.conn == 1).count();
    assert!(
        on_first_connection > 100,
        "several batches were on the wire before the reset: {on_first_connection}"
    );
    assert_eq!(counts.delivered(), 400);
    assert_eq!(counts.duplicates(), on_first_connection as u64);
    assert_eq!(status.delivered, 400);
    assert!(status.last_error.is_some());
}

/// A Collector presenting a certificate from a CA we do not trust is never sent a byte; once
/// the right certificate is back, everything arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_failures_are_retried_never_trusted() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("t-", 10), "LOGIN").await;
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Uef,
                FaultKind::TlsHandshakeFail {
                    mode: TlsFailMode::UntrustedCert,
                },
            )
            .times(3),
        )
        .unwrap();

    let status = deliver_all(&store, collector(&sim), options(50)).await;
    assert_eq!(sim.untrusted_handshakes(), 0);
    assert_eq!(sim.connections(Surface::Uef), 4);
    let counts = sim.delivery_counts().uef;
    assert_eq!((counts.delivered(), counts.duplicates()), (10, 0));
    assert!(status.last_error.unwrap().contains("TLS handshake"));
}

/// Trusting the wrong CA: the sink retries with backoff, delivers nothing, acks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_delivers_nothing() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("w-", 5), "LOGIN").await;
    let mut settings = collector_settings(&sim);
    settings.transport = CollectorTransport::Tls {
        ca_pem: TestCa::generate().unwrap().ca_cert_pem.into_bytes(),
        server_name: None,
    };
    let run = spawn(&store, CollectorSink::new(settings).unwrap(), options(50));
    let seen = run.retrying(3).await;
    let SinkState::Retrying { error, .. } = seen.state else {
        unreachable!()
    };
    assert!(error.contains("TLS handshake"), "{error}");
    run.stop().await;
    assert_eq!(pending(&store, SinkId::Collector).await, 5);
    assert_eq!(sim.delivery_counts().uef.deliveries(), 0);
}

/// A Collector that accepts the connection but never reads: the connect deadline fails the
/// attempt, the next connection delivers everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_collector_is_abandoned() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("s-", 10), "LOGIN").await;
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Stall).times(1))
        .unwrap();
    let mut settings = collector_settings(&sim);
    settings.connect_timeout = Duration::from_millis(300);
    let status = deliver_all(&store, CollectorSink::new(settings).unwrap(), options(50)).await;
    let counts = sim.delivery_counts().uef;
    assert_eq!((counts.delivered(), counts.duplicates()), (10, 0));
    assert!(status.last_error.unwrap().contains("no TLS session"));
}

/// A Collector that closes its side right after the handshake: the close is noticed before or
/// right after the batch, and the batch goes again on a new connection (at most one batch of
/// duplicates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_peer_is_noticed() {
    let sim = sim(|_| {}).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("h-", 30), "LOGIN").await;
    sim.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::HalfClose).times(1))
        .unwrap();
    deliver_all(&store, collector(&sim), options(30)).await;
    let counts = sim.delivery_counts().uef;
    assert_eq!(counts.delivered(), 30);
    assert!(counts.duplicates() <= 30, "{}", counts.duplicates());
    assert_eq!(sim.connections(Surface::Uef), 2);
    assert!(sim.uef_rejected().is_empty());
}

/// Plain TCP works when the admin chose `unencrypted` explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unencrypted_when_chosen() {
    let sim = sim(|c| c.uef_tls = false).await;
    let (store, _dir) = store_for(&[SinkId::Collector]).await;
    seed(&store, &ids("p-", 7), "LOGIN").await;
    let mut settings = collector_settings(&sim);
    settings.transport = CollectorTransport::Unencrypted;
    deliver_all(&store, CollectorSink::new(settings).unwrap(), options(50)).await;
    let counts = sim.delivery_counts().uef;
    assert_eq!((counts.delivered(), counts.duplicates()), (7, 0));
}

/// TLS without a CA is refused at setup (plain TCP must be explicit); a bad PEM too.
#[test]
fn tls_needs_a_ca() {
    let config = boxidr_config::Collector {
        host: "collector.corp.example".into(),
        port: 5140,
        unencrypted: false,
        ca_file: None,
    };
    assert!(matches!(
        boxidr_forward::CollectorSettings::from_config(&config),
        Err(boxidr_forward::SetupError::MissingCa)
    ));
    let settings = boxidr_forward::CollectorSettings::new(
        "collector.corp.example",
        5140,
        CollectorTransport::Tls {
            ca_pem: b"not a pem".to_vec(),
            server_name: None,
        },
    );
    assert!(CollectorSink::new(settings).is_err());
}

/// A Collector host that stops taking data: its process reads nothing, its small receive buffer
/// fills, and its TCP then advertises a zero window. Everything written after that sits in our
/// kernel's send buffer. Only what the peer's TCP acknowledged may count as delivered, so the
/// lines confirmed never exceed what the peer's receive buffer can hold (before, every batch
/// in our send buffer was confirmed after 200 ms). The stall fails the connection within the
/// write timeout, so the unconfirmed batches go again on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_the_peers_tcp_acknowledged_is_confirmed() {
    // The sink is driven directly, without the forwarder's loop.
    use boxidr_forward::{Rendered, Sink as _};

    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // Inherited by the accepted connection; fixes its buffer (no autotuning).
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(1).unwrap();
    socket.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(socket.into()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = tokio::spawn(async move { listener.accept().await.unwrap().0 });

    let mut settings =
        boxidr_forward::CollectorSettings::new("127.0.0.1", port, CollectorTransport::Unencrypted);
    settings.write_timeout = Duration::from_secs(2);
    settings.confirm_window = Duration::from_millis(50);
    let mut sink = CollectorSink::new(settings).unwrap();

    let line = format!("{{\"pad\":\"{}\"}}", "x".repeat(200));
    let line_bytes = line.len() as u64 + 1;
    let (mut confirmed, mut error, mut seq) = (0u64, None, 0u64);
    let started = tokio::time::Instant::now();
    // 10 lines every 10 ms (about 200 kB/s), far more than both buffers hold, until the sink
    // gives up on the connection.
    while error.is_none() && started.elapsed() < Duration::from_secs(20) {
        let batch: Vec<Rendered> = (0..10)
            .map(|_| {
                seq += 1;
                Rendered {
                    seq,
                    line: Some(line.clone()),
                }
            })
            .collect();
        sink.submit(batch, seq);
        let tick = tokio::time::Instant::now() + Duration::from_millis(10);
        while let Ok(delivery) = tokio::time::timeout_at(tick, sink.progress()).await {
            confirmed += delivery.sent;
            if let Some(e) = delivery.error {
                error = Some((e.to_string(), started.elapsed()));
                break;
            }
        }
    }
    let peer = peer.await.unwrap();
    let held = socket2::SockRef::from(&peer).recv_buffer_size().unwrap() as u64;
    let (error, after) = error.expect("the stalled Collector was never noticed");
    println!(
        "stalled peer (receive buffer {held} B): {confirmed} lines ({} B) confirmed of {seq} written, then after {after:?}: {error}",
        confirmed * line_bytes
    );
    assert!(
        confirmed * line_bytes <= held,
        "{confirmed} lines ({} B) confirmed, more than the peer's receive buffer ({held} B) can hold",
        confirmed * line_bytes
    );
    assert!(
        error.contains("not acknowledged") || error.contains("not accepted"),
        "{error}"
    );
    assert!(
        after < Duration::from_secs(10),
        "noticed only after {after:?}"
    );
    drop(peer);
}
