//! A loopback-only TCP proxy that injects network faults, switchable while it runs.
//!
//! This kernel has no `netem`, and tests and benchmarks must talk only to loopback, so a WAN
//! between the appliance and InsightIDR (or Box) is played by this proxy: it listens on one
//! loopback port and forwards every connection to one loopback target, byte for byte (TLS
//! passes through untouched), with these faults, per direction where that makes sense:
//!
//! - **latency** (`delay_ms`) and **jitter** (`jitter_ms`, uniform in `0..=jitter`): each chunk
//!   is held until `arrival + delay + jitter`, never reordered, and chunks stay pipelined, so a
//!   round trip gains `up.delay + down.delay` while throughput is not capped by it (as on a
//!   real long fat pipe);
//! - **bandwidth** (`bytes_per_sec`): writes are paced to the cap;
//! - **reset after N bytes** (`reset_after_bytes`): once N bytes have been forwarded in that
//!   direction on a connection, both sockets are closed with a TCP RST (`SO_LINGER` 0). The
//!   receiver gets at most N bytes: exactly N unless its receive buffer was full at the cut
//!   (the kernel discards unsent data on a reset);
//! - **stall**: nothing moves in either direction and nothing is read (the senders' buffers
//!   fill and they block), connections stay open, until the stall is cleared;
//! - **half open**: bytes in both directions are read and discarded; nothing is closed. Each
//!   end sees a live connection whose writes succeed and whose peer never answers: the peer
//!   that vanished without a FIN;
//! - **slow close**: an end-of-stream (FIN) is passed on only after `slow_close_ms`;
//! - **refuse**: new connections are accepted and reset at once (a service that is down).
//!
//! Faults apply to connections already open and to new ones, from the next chunk on. Tests
//! switch them through [`ProxyHandle::set_faults`] / [`ProxyHandle::update`]; people through
//! the `fault-proxy` command's control endpoint ([`control`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use fault_proxy::{FaultProxy, Faults};
//! let target = "127.0.0.1:9514".parse().unwrap();
//! let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), target,
//!     Faults::round_trip(Duration::from_millis(50))).await?;
//! // connect the client to proxy.addr() instead of the target …
//! proxy.update(|f| f.stall = true);
//! # proxy.shutdown().await; Ok(()) }
//! ```

pub mod control;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;
/// Chunks held per direction while they wait out their delay. With 16 KiB chunks this is 4 MiB
/// in flight per direction: more than 50 ms of anything this machine can push.
const IN_FLIGHT_CHUNKS: usize = 256;

/// What happens to bytes travelling one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Leg {
    /// Added one-way latency, milliseconds.
    pub delay_ms: u64,
    /// Extra latency drawn uniformly from `0..=jitter_ms` per chunk (order is kept).
    pub jitter_ms: u64,
    /// Bandwidth cap, bytes per second (`None`: as fast as loopback goes).
    pub bytes_per_sec: Option<u64>,
    /// Reset the connection once this many bytes have been forwarded this way.
    pub reset_after_bytes: Option<u64>,
}

/// The faults in force. `Faults::default()` is a transparent proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Client → target.
    pub up: Leg,
    /// Target → client.
    pub down: Leg,
    /// Nothing moves and nothing is read, in either direction.
    pub stall: bool,
    /// Everything is read and discarded, nothing answers, nothing is closed.
    pub half_open: bool,
    /// New connections are reset as soon as they are accepted.
    pub refuse: bool,
    /// Delay before an end-of-stream is passed on, milliseconds.
    pub slow_close_ms: u64,
}

impl Faults {
    /// `rtt` added to every round trip, half each way.
    pub fn round_trip(rtt: Duration) -> Self {
        let ms = u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX);
        let mut f = Self::default();
        f.up.delay_ms = ms / 2;
        f.down.delay_ms = ms - ms / 2;
        f
    }

    fn leg(&self, dir: Dir) -> &Leg {
        match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        }
    }
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Listen or target address is not loopback.
    #[error(
        "{what} address {addr} is not loopback; fault-proxy only listens on and connects to 127.0.0.1 / ::1"
    )]
    NotLoopback {
        /// `listen` or `target`.
        what: &'static str,
        /// The refused address.
        addr: SocketAddr,
    },
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

impl From<StartError> for io::Error {
    fn from(e: StartError) -> Self {
        let kind = match &e {
            StartError::NotLoopback { .. } => io::ErrorKind::InvalidInput,
            StartError::Bind { source, .. } => source.kind(),
        };
        io::Error::new(kind, e.to_string())
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections refused by the `refuse` fault.
    pub refused: u64,
    /// Connections cut by `reset_after_bytes`.
    pub resets_injected: u64,
    /// Connections that could not reach the target (reset towards the client).
    pub target_unreachable: u64,
    /// Bytes written to the target.
    pub bytes_up: u64,
    /// Bytes written to clients.
    pub bytes_down: u64,
    /// Bytes read and thrown away by the `half_open` fault.
    pub bytes_discarded: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    resets_injected: AtomicU64,
    target_unreachable: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    bytes_discarded: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Inner {
    target: SocketAddr,
    faults: watch::Sender<Faults>,
    shutdown: watch::Sender<bool>,
    counters: Counters,
}

/// Entry point.
#[derive(Debug)]
pub struct FaultProxy;

impl FaultProxy {
    /// Listens on `listen` and forwards each connection to `target`, both loopback only.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        faults: Faults,
    ) -> Result<ProxyHandle, StartError> {
        for (what, addr) in [("listen", listen), ("target", target)] {
            if !addr.ip().is_loopback() {
                return Err(StartError::NotLoopback { what, addr });
            }
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let inner = Arc::new(Inner {
            target,
            faults: watch::channel(faults).0,
            shutdown: watch::channel(false).0,
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(inner.clone(), listener));
        tracing::info!(%addr, %target, "fault-proxy started.");
        Ok(ProxyHandle {
            inner,
            addr,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }
}

/// A running proxy. Cheap to clone; [`ProxyHandle::shutdown`] stops it.
#[derive(Debug, Clone)]
pub struct ProxyHandle {
    inner: Arc<Inner>,
    addr: SocketAddr,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl ProxyHandle {
    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections go.
    pub fn target(&self) -> SocketAddr {
        self.inner.target
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        *self.inner.faults.borrow()
    }

    /// Replaces the faults (open connections follow from their next chunk).
    pub fn set_faults(&self, faults: Faults) {
        self.inner.faults.send_replace(faults);
    }

    /// Changes some faults in place.
    pub fn update(&self, change: impl FnOnce(&mut Faults)) {
        self.inner.faults.send_modify(change);
    }

    /// Back to a transparent proxy.
    pub fn clear(&self) {
        self.set_faults(Faults::default());
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            accepted: get(&c.accepted),
            open: get(&c.open),
            refused: get(&c.refused),
            resets_injected: get(&c.resets_injected),
            target_unreachable: get(&c.target_unreachable),
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
            bytes_discarded: get(&c.bytes_discarded),
        }
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Resolves once shutdown is asked for.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    conns.spawn(connection(inner.clone(), client, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fault-proxy: accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Direction of travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Client → target.
    Up,
    /// Target → client.
    Down,
}

/// How one direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The source closed and the FIN was passed on.
    Closed,
    /// `reset_after_bytes` was reached.
    Injected,
    /// A socket error (e.g. the other side reset): passed on as a reset.
    Failed,
}

/// Decrements `open` when the connection ends however it ends.
struct OpenGuard<'a>(&'a AtomicU64);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(inner: Arc<Inner>, mut client: TcpStream, peer: SocketAddr) {
    let counters = &inner.counters;
    counters.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(&counters.open);
    if inner.faults.borrow().refuse {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_zero_linger();
        return;
    }
    let mut shutdown = inner.shutdown.subscribe();
    let mut target = match TcpStream::connect(inner.target).await {
        Ok(target) => target,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "fault-proxy: target unreachable.");
            counters.target_unreachable.fetch_add(1, Ordering::Relaxed);
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = target.set_nodelay(true);
    let ends = {
        let (client_read, client_write) = client.split();
        let (target_read, target_write) = target.split();
        let up = pump(&inner, Dir::Up, client_read, target_write);
        let down = pump(&inner, Dir::Down, target_read, client_write);
        tokio::pin!(up, down);
        let (mut up_end, mut down_end) = (None, None);
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => break None,
                end = &mut up, if up_end.is_none() => up_end = Some(end),
                end = &mut down, if down_end.is_none() => down_end = Some(end),
            }
            match (up_end, down_end) {
                (Some(End::Closed), Some(End::Closed)) => break Some(End::Closed),
                (Some(End::Injected), _) | (_, Some(End::Injected)) => break Some(End::Injected),
                (Some(End::Failed), _) | (_, Some(End::Failed)) => break Some(End::Failed),
                _ => {}
            }
        }
    };
    match ends {
        Some(End::Closed) => {}
        Some(End::Injected) => {
            counters.resets_injected.fetch_add(1, Ordering::Relaxed);
            let _ = client.set_zero_linger();
            let _ = target.set_zero_linger();
        }
        Some(End::Failed) | None => {
            let _ = client.set_zero_linger();
            let _ = target.set_zero_linger();
        }
    }
}

/// What the reader hands the writer.
enum Chunk {
    Data { due: Instant, bytes: Vec<u8> },
    Eof { due: Instant },
}

/// Moves one direction: a reader that timestamps chunks and a writer that releases them when
/// their delay is over, at the capped rate, up to the reset point.
async fn pump<R, W>(inner: &Inner, dir: Dir, mut from: R, mut to: W) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<Chunk>(IN_FLIGHT_CHUNKS);
    let reader = async {
        let mut faults = inner.faults.subscribe();
        let mut buf = vec![0u8; CHUNK];
        let mut last_due = Instant::now();
        loop {
            if faults.wait_for(|f| !f.stall).await.is_err() {
                return End::Failed;
            }
            let cap = faults.borrow().leg(dir).bytes_per_sec;
            // Small reads under a cap, so pacing is smooth rather than 16 KiB bursts.
            let want = match cap {
                Some(bps) => usize::try_from(bps / 20).unwrap_or(CHUNK).clamp(1, CHUNK),
                None => CHUNK,
            };
            let n = match from.read(&mut buf[..want]).await {
                Ok(n) => n,
                Err(_) => return End::Failed,
            };
            let f = *faults.borrow();
            let leg = f.leg(dir);
            let mut delay = Duration::from_millis(leg.delay_ms);
            if leg.jitter_ms > 0 {
                delay += Duration::from_millis(rand::rng().random_range(0..=leg.jitter_ms));
            }
            // Never before an earlier chunk: TCP does not reorder.
            let due = (Instant::now() + delay).max(last_due);
            last_due = due;
            if n == 0 {
                let _ = tx.send(Chunk::Eof { due }).await;
                return End::Closed;
            }
            if f.half_open {
                Counters::add(&inner.counters.bytes_discarded, n);
                continue;
            }
            let chunk = Chunk::Data {
                due,
                bytes: buf[..n].to_vec(),
            };
            if tx.send(chunk).await.is_err() {
                return End::Failed;
            }
        }
    };
    let writer = async {
        let mut faults = inner.faults.subscribe();
        let counter = match dir {
            Dir::Up => &inner.counters.bytes_up,
            Dir::Down => &inner.counters.bytes_down,
        };
        let mut forwarded: u64 = 0;
        let mut next_free = Instant::now();
        while let Some(chunk) = rx.recv().await {
            let (due, bytes) = match chunk {
                Chunk::Data { due, bytes } => (due, bytes),
                Chunk::Eof { due } => {
                    tokio::time::sleep_until(due).await;
                    // A half-open peer closes nothing; the FIN waits until the fault clears.
                    if faults.wait_for(|f| !f.half_open && !f.stall).await.is_err() {
                        return End::Failed;
                    }
                    let slow = faults.borrow().slow_close_ms;
                    tokio::time::sleep(Duration::from_millis(slow)).await;
                    let _ = to.shutdown().await;
                    return End::Closed;
                }
            };
            tokio::time::sleep_until(due).await;
            if faults.wait_for(|f| !f.stall).await.is_err() {
                return End::Failed;
            }
            let f = *faults.borrow();
            if f.half_open {
                Counters::add(&inner.counters.bytes_discarded, bytes.len());
                continue;
            }
            let leg = f.leg(dir);
            let mut send: &[u8] = &bytes;
            let mut cut = false;
            if let Some(limit) = leg.reset_after_bytes {
                let room = usize::try_from(limit.saturating_sub(forwarded)).unwrap_or(usize::MAX);
                if room <= send.len() {
                    send = &send[..room];
                    cut = true;
                }
            }
            if let Some(bps) = leg.bytes_per_sec.filter(|b| *b > 0) {
                tokio::time::sleep_until(next_free).await;
                let cost = Duration::from_secs_f64(send.len() as f64 / bps as f64);
                next_free = next_free.max(Instant::now()) + cost;
            }
            if !send.is_empty() {
                if to.write_all(send).await.is_err() || to.flush().await.is_err() {
                    return End::Failed;
                }
                forwarded += u64::try_from(send.len()).unwrap_or(u64::MAX);
                Counters::add(counter, send.len());
            }
            if cut {
                return End::Injected;
            }
        }
        End::Failed
    };
    tokio::pin!(reader, writer);
    // The writer decides how this direction ends; a reader that stops first (EOF sent, or a
    // read error) leaves the writer to drain what is in flight.
    let mut reader_end = None;
    loop {
        tokio::select! {
            end = &mut writer => return end,
            end = &mut reader, if reader_end.is_none() => {
                reader_end = Some(end);
                if end == End::Failed {
                    return End::Failed;
                }
            }
        }
    }
}
