//! Listener supervision and the per-connection preamble shared by every surface: the `down`
//! fault (listener closed, open connections reset), connection faults (reset, stall,
//! half-close, slow read, TLS handshake failure) and the TLS handshake itself.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::Inner;
use crate::faults::{FaultKind, Surface, TlsFailMode};

/// Receive buffer asked for on a stalled connection (the kernel doubles and floors it).
const STALL_RCVBUF: usize = 4096;
/// A TLS handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Byte stream after the preamble (plain TCP or TLS over it).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(crate) type BoxIo = Box<dyn Io>;

/// What a surface speaks once the preamble is done.
#[derive(Clone)]
pub(crate) enum Proto {
    /// LF-framed lines (UEF or token TCP).
    Lines,
    /// HTTP/1.1 served by this router.
    Http(axum::Router),
}

/// TCP stream wrapper: optional read-rate limit, optional reset after N bytes, RST on drop.
struct TcpIo {
    stream: TcpStream,
    reset_on_drop: Arc<AtomicBool>,
    remaining: Option<u64>,
    slow: Option<Slow>,
}

struct Slow {
    per_tick: usize,
    budget: usize,
    sleep: Option<Pin<Box<Sleep>>>,
    scratch: Vec<u8>,
}

/// Rate limiting refills the budget every tick.
const SLOW_TICK: Duration = Duration::from_millis(100);

impl Drop for TcpIo {
    fn drop(&mut self) {
        if self.reset_on_drop.load(Ordering::SeqCst) {
            // SO_LINGER 0: close() sends RST instead of FIN.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for TcpIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut cap = buf.remaining();
        if let Some(rem) = this.remaining {
            if rem == 0 {
                this.reset_on_drop.store(true, Ordering::SeqCst);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "idr-sim: injected reset",
                )));
            }
            cap = cap.min(usize::try_from(rem).unwrap_or(usize::MAX));
        }
        if let Some(slow) = &mut this.slow {
            if slow.budget == 0 {
                let sleep = slow
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(SLOW_TICK)));
                ready!(sleep.as_mut().poll(cx));
                slow.sleep = None;
                slow.budget = slow.per_tick;
            }
            cap = cap.min(slow.budget);
        }
        let n = if cap == buf.remaining() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
            buf.filled().len() - before
        } else {
            let scratch = match &mut this.slow {
                Some(s) => &mut s.scratch,
                None => &mut Vec::new(),
            };
            scratch.resize(cap, 0);
            let mut tmp = ReadBuf::new(&mut scratch[..cap]);
            ready!(Pin::new(&mut this.stream).poll_read(cx, &mut tmp))?;
            let n = tmp.filled().len();
            buf.put_slice(tmp.filled());
            n
        };
        if let Some(rem) = &mut this.remaining {
            *rem -= u64::try_from(n).unwrap_or(0).min(*rem);
        }
        if let Some(slow) = &mut this.slow {
            slow.budget -= n.min(slow.budget);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TcpIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Accept loop for one surface. Closes the listener while the surface is `down` and binds the
/// same address again when it comes back.
pub(crate) async fn run_listener(
    inner: Arc<Inner>,
    surface: Surface,
    listener: TcpListener,
    proto: Proto,
) {
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(%surface, error = %e, "Listener has no local address; surface not served.");
            return;
        }
    };
    let mut listener = Some(listener);
    let mut changed = inner.faults.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Some(until) = inner.faults.down(surface) {
            if listener.take().is_some() {
                tracing::info!(%surface, %addr, "Surface down: listener closed.");
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = sleep_until_opt(until) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let Some(l) = listener.as_ref() else {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!(%surface, %addr, "Surface up: listening again.");
                    listener = Some(l);
                }
                Err(e) => {
                    tracing::warn!(%surface, %addr, error = %e, "Rebinding failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            continue;
        };
        tokio::select! {
            res = l.accept() => match res {
                Ok((stream, peer)) => {
                    let conn = inner.next_conn(surface);
                    let inner2 = inner.clone();
                    let proto = proto.clone();
                    tokio::spawn(async move { serve_conn(inner2, surface, stream, peer, conn, proto).await });
                }
                Err(e) => {
                    tracing::warn!(%surface, error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            r = changed.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

async fn sleep_until_opt(until: Option<Instant>) {
    match until {
        Some(u) => tokio::time::sleep_until(u).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the surface goes down or the simulator shuts down.
async fn killed(inner: &Inner, surface: Surface) {
    let mut changed = inner.faults.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if *shutdown.borrow() || inner.faults.down(surface).is_some() {
            return;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { std::future::pending::<()>().await },
            r = shutdown.changed() => if r.is_err() { std::future::pending::<()>().await },
        }
    }
}

async fn serve_conn(
    inner: Arc<Inner>,
    surface: Surface,
    stream: TcpStream,
    peer: SocketAddr,
    conn: u64,
    proto: Proto,
) {
    tracing::debug!(%surface, %peer, conn, "Connection accepted.");
    let reset = Arc::new(AtomicBool::new(false));
    let work = async {
        if let Some(io) = preamble(&inner, surface, stream, reset.clone(), conn).await {
            match proto {
                Proto::Lines => crate::lines::serve(&inner, surface, io, conn).await,
                Proto::Http(router) => {
                    crate::http::serve(io, router, inner.config.h2_max_streams).await
                }
            }
        }
    };
    tokio::pin!(work);
    tokio::select! {
        () = &mut work => {}
        () = killed(&inner, surface) => {
            // The surface went down (or the simulator stops): reset, don't close politely.
            reset.store(true, Ordering::SeqCst);
        }
    }
}

/// Apply the connection fault and do the TLS handshake. `None`: the connection is finished.
async fn preamble(
    inner: &Inner,
    surface: Surface,
    stream: TcpStream,
    reset: Arc<AtomicBool>,
    conn: u64,
) -> Option<BoxIo> {
    let fault = inner.faults.take_connection(surface);
    let mut io = TcpIo {
        stream,
        reset_on_drop: reset.clone(),
        remaining: None,
        slow: None,
    };
    let mut half_close = false;
    let mut tls_fail = None;
    if let Some(f) = fault {
        tracing::debug!(%surface, conn, fault = ?f.kind, "Connection fault applied.");
        match f.kind {
            FaultKind::Reset { after_bytes: 0 } => {
                reset.store(true, Ordering::SeqCst);
                return None;
            }
            FaultKind::Reset { after_bytes } => io.remaining = Some(after_bytes),
            FaultKind::Stall => {
                let _ = socket2::SockRef::from(&io.stream).set_recv_buffer_size(STALL_RCVBUF);
                stall(inner, surface, f.until).await;
            }
            FaultKind::HalfClose => half_close = true,
            FaultKind::TlsHandshakeFail { mode } => tls_fail = Some(mode),
            FaultKind::SlowRead { bytes_per_sec } => {
                let per_tick = usize::try_from((bytes_per_sec / 10).max(1)).unwrap_or(usize::MAX);
                io.slow = Some(Slow {
                    per_tick,
                    budget: per_tick,
                    sleep: None,
                    scratch: Vec::new(),
                });
            }
            FaultKind::Down | FaultKind::Status { .. } | FaultKind::Delay { .. } => {}
        }
    }

    let mut io: BoxIo = match inner.tls_for(surface) {
        None => Box::new(io),
        Some(tls) => {
            let config = match tls_fail {
                Some(TlsFailMode::Abort) => {
                    // Read (part of) the ClientHello, then reset.
                    let mut buf = [0u8; 512];
                    let _ = tokio::time::timeout(Duration::from_secs(2), io.read(&mut buf)).await;
                    reset.store(true, Ordering::SeqCst);
                    return None;
                }
                Some(TlsFailMode::UntrustedCert) => tls.rogue.clone(),
                None => tls.good.clone(),
            };
            let accepted =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(io)).await;
            match accepted {
                Ok(Ok(s)) if tls_fail.is_none() => Box::new(s),
                Ok(Ok(_)) => {
                    // The client accepted a certificate from an untrusted CA: a client bug.
                    inner.note_untrusted_accepted(surface, conn);
                    return None;
                }
                Ok(Err(e)) => {
                    tracing::debug!(%surface, conn, error = %e, "TLS handshake failed.");
                    return None;
                }
                Err(_) => {
                    tracing::debug!(%surface, conn, "TLS handshake timed out.");
                    return None;
                }
            }
        }
    };
    if half_close {
        let _ = io.shutdown().await;
    }
    Some(io)
}

/// Hold a stalled connection until the fault's duration ends, the surface's faults are
/// cleared, or the simulator stops.
async fn stall(inner: &Inner, surface: Surface, until: Option<Instant>) {
    let epoch = inner.faults.clear_epoch(surface);
    let mut changed = inner.faults.subscribe();
    let deadline = sleep_until_opt(until);
    tokio::pin!(deadline);
    loop {
        if inner.faults.clear_epoch(surface) != epoch || *inner.shutdown.subscribe().borrow() {
            return;
        }
        tokio::select! {
            () = &mut deadline => return,
            r = changed.changed() => if r.is_err() { return },
        }
    }
}
