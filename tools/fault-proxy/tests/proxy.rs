//! The proxy against real loopback sockets. Latencies are asserted only as lower bounds (a
//! busy machine makes them longer, never shorter); absence ("nothing arrived while stalled")
//! is checked over a short window, which a slow machine can only make easier to pass.
#![allow(clippy::unwrap_used)] // a failed setup should panic loudly

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use fault_proxy::{FaultProxy, Faults, ProxyHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const LOOPBACK: &str = "127.0.0.1:0";
/// Generous bound for things that must happen eventually (never a speed assertion).
const EVENTUALLY: Duration = Duration::from_secs(30);

fn loopback() -> SocketAddr {
    LOOPBACK.parse().unwrap()
}

/// An echo server; returns its address.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// What a sink connection saw: every byte, then how it ended.
#[derive(Debug)]
enum SinkEvent {
    Data(Vec<u8>),
    Eof,
    Error(ErrorKind),
}

/// A server that reads and reports; sends `greeting` bytes first, if any.
async fn sink_server(greeting: Vec<u8>) -> (SocketAddr, mpsc::UnboundedReceiver<SinkEvent>) {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            let greeting = greeting.clone();
            tokio::spawn(async move {
                if !greeting.is_empty() {
                    let _ = s.write_all(&greeting).await;
                }
                let mut buf = vec![0u8; 8192];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => {
                            let _ = tx.send(SinkEvent::Eof);
                            break;
                        }
                        Ok(n) => {
                            let _ = tx.send(SinkEvent::Data(buf[..n].to_vec()));
                        }
                        Err(e) => {
                            let _ = tx.send(SinkEvent::Error(e.kind()));
                            break;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Bytes the sink received until it saw the end, and how it ended.
async fn collect_until_end(rx: &mut mpsc::UnboundedReceiver<SinkEvent>) -> (usize, SinkEvent) {
    let mut total = 0;
    loop {
        match timeout(EVENTUALLY, rx.recv()).await.unwrap().unwrap() {
            SinkEvent::Data(d) => total += d.len(),
            end => return (total, end),
        }
    }
}

/// Received bytes within `window`, without waiting for an end.
async fn received_within(rx: &mut mpsc::UnboundedReceiver<SinkEvent>, window: Duration) -> usize {
    let until = Instant::now() + window;
    let mut total = 0;
    while let Ok(Some(ev)) = tokio::time::timeout_at(until, rx.recv()).await {
        match ev {
            SinkEvent::Data(d) => total += d.len(),
            other => panic!("connection ended: {other:?}"),
        }
    }
    total
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn proxy_to(target: SocketAddr, faults: Faults) -> ProxyHandle {
    FaultProxy::start(loopback(), target, faults).await.unwrap()
}

/// One round trip of `n` bytes through an echo path.
async fn round_trip(s: &mut TcpStream, n: usize) -> Duration {
    let data = pattern(n);
    let started = Instant::now();
    s.write_all(&data).await.unwrap();
    let mut back = vec![0u8; n];
    timeout(EVENTUALLY, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, data, "the echo came back altered");
    started.elapsed()
}

/// Without faults the proxy is transparent: 1 MiB goes there and back unchanged.
#[tokio::test]
async fn transparent_without_faults() {
    let proxy = proxy_to(echo_server().await, Faults::default()).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let data = pattern(1 << 20);
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let recv = r.read_to_end(&mut back);
    let (_, got) = tokio::join!(send, recv);
    got.unwrap();
    assert_eq!(back, data);
    let stats = proxy.stats();
    assert_eq!(stats.bytes_up, 1 << 20);
    assert_eq!(stats.bytes_down, 1 << 20);
}

/// Anything but loopback is refused, for listening and for the target.
#[tokio::test]
async fn refuses_non_loopback_addresses() {
    let outside: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let err = FaultProxy::start(loopback(), outside, Faults::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not loopback"), "{err}");
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = FaultProxy::start(any, loopback(), Faults::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not loopback"), "{err}");
}

/// `round_trip(60 ms)` adds at least 60 ms to every round trip, measured; jitter only adds,
/// and never reorders bytes (the echo comes back identical).
#[tokio::test]
async fn added_latency_is_at_least_the_round_trip() {
    let proxy = proxy_to(
        echo_server().await,
        Faults::round_trip(Duration::from_millis(60)),
    )
    .await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    for _ in 0..3 {
        let rtt = round_trip(&mut s, 100).await;
        assert!(rtt >= Duration::from_millis(60), "round trip {rtt:?}");
    }
    proxy.update(|f| {
        f.up.jitter_ms = 20;
        f.down.jitter_ms = 20;
    });
    for _ in 0..5 {
        let rtt = round_trip(&mut s, 64 * 1024).await;
        assert!(rtt >= Duration::from_millis(60), "round trip {rtt:?}");
    }
}

/// Faults switch on an open connection: the next round trip pays the new latency.
#[tokio::test]
async fn faults_switch_at_run_time() {
    let proxy = proxy_to(echo_server().await, Faults::default()).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut s, 10).await;
    proxy.set_faults(Faults::round_trip(Duration::from_millis(120)));
    let rtt = round_trip(&mut s, 10).await;
    assert!(rtt >= Duration::from_millis(120), "round trip {rtt:?}");
    proxy.clear();
    assert_eq!(proxy.faults(), Faults::default());
    round_trip(&mut s, 10).await;
}

/// A 400 KB/s cap: 200 KB take at least (200 KB − one 20 KB burst) / 400 KB/s = 0.45 s.
#[tokio::test]
async fn bandwidth_cap_paces_the_bytes() {
    let (target, mut rx) = sink_server(Vec::new()).await;
    let mut faults = Faults::default();
    faults.up.bytes_per_sec = Some(400_000);
    let proxy = proxy_to(target, faults).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    s.write_all(&pattern(200_000)).await.unwrap();
    s.shutdown().await.unwrap();
    let (n, end) = collect_until_end(&mut rx).await;
    let elapsed = started.elapsed();
    assert_eq!(n, 200_000);
    assert!(matches!(end, SinkEvent::Eof), "{end:?}");
    assert!(elapsed >= Duration::from_millis(450), "took {elapsed:?}");
}

/// `reset_after_bytes` upstream: the target gets exactly N bytes, then a reset; the client's
/// connection is reset too.
#[tokio::test]
async fn reset_after_n_bytes_up_cuts_at_n() {
    let (target, mut rx) = sink_server(Vec::new()).await;
    let mut faults = Faults::default();
    faults.up.reset_after_bytes = Some(10_000);
    let proxy = proxy_to(target, faults).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    // More than N, in pieces, so the cut falls inside a chunk.
    for piece in pattern(30_000).chunks(7_000) {
        if s.write_all(piece).await.is_err() {
            break;
        }
    }
    let (n, end) = collect_until_end(&mut rx).await;
    assert_eq!(n, 10_000, "bytes before the cut");
    assert!(
        matches!(end, SinkEvent::Error(ErrorKind::ConnectionReset)),
        "{end:?}"
    );
    let mut buf = [0u8; 16];
    let read = timeout(EVENTUALLY, s.read(&mut buf)).await.unwrap();
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert_eq!(proxy.stats().resets_injected, 1);
}

/// `reset_after_bytes` downstream: the client receives exactly N bytes of a larger answer.
#[tokio::test]
async fn reset_after_n_bytes_down_cuts_at_n() {
    let (target, _rx) = sink_server(pattern(100_000)).await;
    let mut faults = Faults::default();
    faults.down.reset_after_bytes = Some(12_345);
    let proxy = proxy_to(target, faults).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    let end = loop {
        match timeout(EVENTUALLY, s.read(&mut buf)).await.unwrap() {
            Ok(0) => break None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e.kind()),
        }
    };
    assert_eq!(got.len(), 12_345);
    assert_eq!(got, pattern(12_345));
    assert_eq!(end, Some(ErrorKind::ConnectionReset));
}

/// A stall moves nothing (in a 300 ms window) and keeps the connection; clearing it delivers
/// everything that waited.
#[tokio::test]
async fn stall_holds_everything_until_cleared() {
    let (target, mut rx) = sink_server(Vec::new()).await;
    let proxy = proxy_to(target, Faults::default()).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"before").await.unwrap();
    let mut got = 0;
    while got < 6 {
        got += received_within(&mut rx, Duration::from_millis(100)).await;
    }
    proxy.update(|f| f.stall = true);
    s.write_all(&pattern(50_000)).await.unwrap();
    assert_eq!(
        received_within(&mut rx, Duration::from_millis(300)).await,
        0
    );
    proxy.update(|f| f.stall = false);
    s.shutdown().await.unwrap();
    let (n, end) = collect_until_end(&mut rx).await;
    assert_eq!(n, 50_000);
    assert!(matches!(end, SinkEvent::Eof), "{end:?}");
}

/// Half open: the client's writes succeed but nothing reaches the target, no answer comes back
/// and neither side is closed; the bytes are counted as discarded.
#[tokio::test]
async fn half_open_swallows_and_never_closes() {
    let (target, mut rx) = sink_server(Vec::new()).await;
    let faults = Faults {
        half_open: true,
        ..Faults::default()
    };
    let proxy = proxy_to(target, faults).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let data = pattern(256 * 1024);
    timeout(EVENTUALLY, s.write_all(&data))
        .await
        .unwrap()
        .unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(
        received_within(&mut rx, Duration::from_millis(300)).await,
        0
    );
    let mut buf = [0u8; 16];
    assert!(
        timeout(Duration::from_millis(300), s.read(&mut buf))
            .await
            .is_err(),
        "the client saw an answer or a close"
    );
    let deadline = Instant::now() + EVENTUALLY;
    while proxy.stats().bytes_discarded < data.len() as u64 {
        assert!(Instant::now() < deadline, "{:?}", proxy.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(proxy.stats().bytes_up, 0);
}

/// Slow close: the target sees the client's FIN no sooner than `slow_close_ms` after it.
#[tokio::test]
async fn slow_close_delays_the_fin() {
    let (target, mut rx) = sink_server(Vec::new()).await;
    let faults = Faults {
        slow_close_ms: 300,
        ..Faults::default()
    };
    let proxy = proxy_to(target, faults).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"bye").await.unwrap();
    let closed = Instant::now();
    s.shutdown().await.unwrap();
    let (n, end) = collect_until_end(&mut rx).await;
    assert_eq!(n, 3);
    assert!(matches!(end, SinkEvent::Eof), "{end:?}");
    assert!(
        closed.elapsed() >= Duration::from_millis(300),
        "{:?}",
        closed.elapsed()
    );
}

/// `refuse` resets new connections; once cleared, connections work again.
#[tokio::test]
async fn refuse_resets_new_connections() {
    let faults = Faults {
        refuse: true,
        ..Faults::default()
    };
    let proxy = proxy_to(echo_server().await, faults).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 4];
    let read = timeout(EVENTUALLY, s.read(&mut buf)).await.unwrap();
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert_eq!(proxy.stats().refused, 1);
    proxy.clear();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut s, 10).await;
}

/// A target that is not listening: the client's connection is reset, and counted.
#[tokio::test]
async fn unreachable_target_resets_the_client() {
    let closed = {
        let l = TcpListener::bind(loopback()).await.unwrap();
        l.local_addr().unwrap()
    };
    let proxy = proxy_to(closed, Faults::default()).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 4];
    let read = timeout(EVENTUALLY, s.read(&mut buf)).await.unwrap();
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert_eq!(proxy.stats().target_unreachable, 1);
}

/// The control endpoint: PATCH changes one field, GET shows it, DELETE clears, bad input is 400.
#[tokio::test]
async fn control_endpoint_switches_faults() {
    let proxy = proxy_to(echo_server().await, Faults::default()).await;
    let control = fault_proxy::control::ControlServer::start(loopback(), proxy.clone()).unwrap();
    let addr = control.addr();
    let http = move |method: &'static str, path: &'static str, body: &'static str| {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    let out = http("PATCH", "/faults", r#"{"down":{"delay_ms":40}}"#)
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(proxy.faults().down.delay_ms, 40);
    let out = http("GET", "/faults", "").await.unwrap();
    assert!(out.contains(r#""delay_ms":40"#), "{out}");
    let out = http("PATCH", "/faults", r#"{"nonsense":1}"#).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert_eq!(proxy.faults().down.delay_ms, 40);
    let out = http("DELETE", "/faults", "").await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(proxy.faults(), Faults::default());
    let out = http("GET", "/stats", "").await.unwrap();
    assert!(out.contains(r#""accepted":0"#), "{out}");
    let out = http("POST", "/stats", "").await.unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    drop(control);
}
