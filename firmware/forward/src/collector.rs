//! The Collector sink: UEF `INGRESS_AUTHENTICATION` lines over TLS (or, only when the admin says
//! so, plain TCP) to the customer's InsightIDR Collector.
//!
//! # What "delivered" means here, honestly
//!
//! The Collector's UEF listener never answers: TCP gives no application-level acknowledgement,
//! and an invalid line is dropped without a word (CONTRACT.md §1.1, §1.4). So this sink calls a
//! batch delivered when
//! 1. its bytes were written *and flushed* to the TLS connection,
//! 2. the Collector host's TCP stack acknowledged every one of them (on Linux the socket's
//!    send queue, `SIOCOUTQ`, no longer holds any of the batch's bytes), and
//! 3. the connection then stayed up for a *confirm window* ([`CollectorSettings::confirm_window`],
//!    200 ms) without the peer closing or resetting it.
//!
//! Step 2 is what a Collector host that vanished (powered off, cable pulled, a stalled process
//! whose receive buffer is full) cannot fake: our kernel would otherwise take megabytes into its
//! send buffer, and every batch in there would have counted as delivered. A batch the peer has
//! not acknowledged within [`CollectorSettings::write_timeout`] fails the connection, and every
//! unconfirmed batch goes again on a new one. Step 3 catches the common failure where the
//! Collector takes a batch into its socket buffer and then drops the connection (restart,
//! crash, listener reset).
//!
//! What remains unprovable: bytes the Collector's kernel acknowledged but its process never
//! read (it crashed or was killed with lines in its receive buffer, or reads and loses them
//! later). At most the peer's receive buffer is lost that way. The verifier's canary (Log
//! Search query) is what turns "acknowledged" into "seen in InsightIDR".
//!
//! # Pipelined
//!
//! The window does not stall the stream: batches are written back to back while earlier ones
//! wait out their window, and the connection is watched for a close or reset all along. What
//! is outstanding is bounded by [`CollectorSettings::window_records`] and
//! [`CollectorSettings::window_bytes`]; after a reset everything not yet confirmed goes again
//! (duplicates bounded by that window, never loss).
//!
//! Before a batch is written on a connection that sat idle, it is checked without blocking for
//! a close or reset that already arrived (a Collector that restarted while we were idle), so a
//! batch is not written into a dead connection when that is knowable. TCP keepalive and
//! `TCP_USER_TIMEOUT` detect a peer that vanished; a write deadline bounds a stalled one.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use boxidr_store::{Rejection, SinkId};
use futures_util::FutureExt;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::error::SetupError;
use crate::render::Rendered;
use crate::sink::{Delivery, Sink, SinkError, Window};

/// How the Collector connection is protected.
#[derive(Clone, PartialEq, Eq)]
pub enum CollectorTransport {
    /// TLS, trusting only the certificates in this PEM (the admin-uploaded `Rapid7CA.pem`).
    Tls {
        /// The CA PEM bytes (one or more certificates).
        ca_pem: Vec<u8>,
        /// The name the Collector's certificate is checked against; `None`: the host.
        server_name: Option<String>,
    },
    /// Plain TCP: only with the explicit "unencrypted" setting.
    Unencrypted,
}

impl fmt::Debug for CollectorTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls {
                ca_pem,
                server_name,
            } => f
                .debug_struct("Tls")
                .field("ca_pem_bytes", &ca_pem.len())
                .field("server_name", server_name)
                .finish(),
            Self::Unencrypted => f.write_str("Unencrypted"),
        }
    }
}

/// Where and how to reach the Collector.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Host name or IP address of the Collector.
    pub host: String,
    /// Port of the "Rapid7 Universal Ingress Authentication" event source.
    pub port: u16,
    /// TLS with the uploaded CA, or plain TCP.
    pub transport: CollectorTransport,
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on writing and flushing one batch, and on the Collector host's TCP acknowledging
    /// it once flushed (a stalled or vanished Collector fails the connection).
    pub write_timeout: Duration,
    /// TCP keepalive idle time and probe interval.
    pub keepalive: Duration,
    /// How long the connection must stay up after a flushed batch before it is confirmed (and
    /// the peer's TCP must have acknowledged its bytes by then, or later).
    pub confirm_window: Duration,
    /// Most lines written or waiting to be, and not yet confirmed.
    pub window_records: usize,
    /// Most bytes of those lines.
    pub window_bytes: usize,
}

impl CollectorSettings {
    /// Production defaults around a host, port and transport.
    pub fn new(host: impl Into<String>, port: u16, transport: CollectorTransport) -> Self {
        Self {
            host: host.into(),
            port,
            transport,
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(10),
            confirm_window: Duration::from_millis(200),
            window_records: 8192,
            window_bytes: 4 * 1024 * 1024,
        }
    }

    /// From the `[insightidr.collector]` settings, reading the uploaded CA file. TLS without a
    /// CA file is refused: plain TCP needs `unencrypted = true`.
    pub fn from_config(config: &boxidr_config::Collector) -> Result<Self, SetupError> {
        let transport = if config.unencrypted {
            CollectorTransport::Unencrypted
        } else {
            let path = config.ca_file.as_deref().ok_or(SetupError::MissingCa)?;
            CollectorTransport::Tls {
                ca_pem: read_ca_file(path)?,
                server_name: None,
            }
        };
        Ok(Self::new(config.host.clone(), config.port, transport))
    }
}

/// Reads a CA PEM file (the uploaded `Rapid7CA.pem`).
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::CaFile {
        path: path.to_owned(),
        source,
    })
}

/// A rustls client configuration (ring) trusting only the certificates in `ca_pem`.
pub fn tls_config_for_ca(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| SetupError::CaPem(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| SetupError::CaPem(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(SetupError::CaPem("no certificate found".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SetupError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The two halves of one Collector connection: the writer streams lines, the reader only ever
/// sees a close, a reset or an alert (the Collector never sends data).
struct Conn {
    reader: ReadHalf<Box<dyn Io>>,
    writer: WriteHalf<Box<dyn Io>>,
    acks: Acks,
}

/// A new connection: the TLS (or plain) stream and the view of its TCP acknowledgements.
struct Connected {
    io: Box<dyn Io>,
    acks: Acks,
}

type Connecting = Pin<Box<dyn std::future::Future<Output = Result<Connected, SinkError>> + Send>>;

/// How far the Collector host's TCP has acknowledged the byte stream we wrote: bytes handed to
/// the socket (counted by [`Counted`]) minus what the kernel still holds for the peer.
struct Acks {
    written: Arc<AtomicU64>,
    /// The same socket, for `SIOCOUTQ` (a duplicate descriptor: the stream owns the other).
    #[cfg(target_os = "linux")]
    socket: Option<std::os::fd::OwnedFd>,
}

impl Acks {
    fn new(tcp: &TcpStream) -> Self {
        #[cfg(target_os = "linux")]
        let socket = {
            use std::os::fd::AsFd;
            tcp.as_fd()
                .try_clone_to_owned()
                .map_err(|e| tracing::warn!(error = %e, "No descriptor to watch the Collector's TCP acknowledgements; batches are confirmed by the window alone."))
                .ok()
        };
        #[cfg(not(target_os = "linux"))]
        let _ = tcp;
        Self {
            written: Arc::default(),
            #[cfg(target_os = "linux")]
            socket,
        }
    }

    /// Bytes written to the socket so far (TLS records included): where a flushed batch ends.
    fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes of the stream the peer's TCP has acknowledged. Where the kernel cannot tell, every
    /// written byte counts as acknowledged (the confirm window alone decides, as before).
    fn acknowledged(&self) -> u64 {
        let written = self.written();
        #[cfg(target_os = "linux")]
        if let Some(socket) = &self.socket {
            match unacknowledged(socket) {
                Ok(queued) => return written.saturating_sub(queued),
                Err(e) => tracing::debug!(error = %e, "SIOCOUTQ failed."),
            }
        }
        written
    }
}

/// The bytes in the socket's send queue: not yet sent, or sent and not yet acknowledged by the
/// peer (`SIOCOUTQ`, tcp(7)).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // one ioctl; neither std, tokio nor socket2 exposes this count
fn unacknowledged(socket: &std::os::fd::OwnedFd) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut queued: libc::c_int = 0;
    // SAFETY: the descriptor is open for the duration of the call (`socket` is borrowed), and
    // TIOCOUTQ (= SIOCOUTQ) writes exactly one `c_int` through the pointer, which points to a
    // live, aligned local.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &raw mut queued) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(queued).unwrap_or(0))
}

/// The TCP stream, counting every byte handed to the kernel.
struct Counted {
    tcp: TcpStream,
    written: Arc<AtomicU64>,
}

impl Counted {
    fn count(&self, done: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &done {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        done
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let done = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.count(done)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let done = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.count(done)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A submitted batch, framed, waiting for (the rest of) its write.
struct Framed {
    through: u64,
    bytes: Vec<u8>,
    sent: u64,
    rejected: Vec<Rejection>,
}

/// A flushed batch waiting out its confirm window and the peer's acknowledgement.
struct Unconfirmed {
    through: u64,
    sent: u64,
    rejected: Vec<Rejection>,
    confirm_at: Instant,
    /// Where its bytes end in the connection's byte stream (0 for a batch with none).
    ends_at: u64,
    /// When it was flushed: the peer has `write_timeout` from here to acknowledge it.
    flushed_at: Instant,
}

/// The Collector sink: one persistent connection, newline-delimited JSON, reconnect on error.
pub struct CollectorSink {
    settings: CollectorSettings,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    conn: Option<Conn>,
    /// A connection being made (kept when [`Sink::progress`] is cancelled meanwhile).
    connecting: Option<Connecting>,
    /// Batches not yet fully written, oldest first; `written` bytes of the front are out.
    queue: VecDeque<Framed>,
    written: usize,
    /// When the front batch's write began (the write deadline runs from there).
    write_started: Option<Instant>,
    unconfirmed: VecDeque<Unconfirmed>,
}

impl fmt::Debug for CollectorSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorSink")
            .field("settings", &self.settings)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl CollectorSink {
    /// Validates the settings (CA PEM, server name); connects lazily on the first batch.
    pub fn new(settings: CollectorSettings) -> Result<Self, SetupError> {
        let tls = match &settings.transport {
            CollectorTransport::Unencrypted => None,
            CollectorTransport::Tls {
                ca_pem,
                server_name,
            } => {
                let config = tls_config_for_ca(ca_pem)?;
                let name = server_name.clone().unwrap_or_else(|| settings.host.clone());
                let name =
                    ServerName::try_from(name.clone()).map_err(|_| SetupError::ServerName(name))?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Self {
            settings,
            tls,
            conn: None,
            connecting: None,
            queue: VecDeque::new(),
            written: 0,
            write_started: None,
            unconfirmed: VecDeque::new(),
        })
    }

    fn target(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    async fn connect(
        settings: &CollectorSettings,
        tls: Option<&(TlsConnector, ServerName<'static>)>,
    ) -> Result<Connected, SinkError> {
        let target = format!("{}:{}", settings.host, settings.port);
        let work = async {
            let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
                .await
                .map_err(|e| format!("connecting to the Collector at {target}: {e}"))?;
            tune_socket(&tcp, settings);
            let acks = Acks::new(&tcp);
            let tcp = Counted {
                tcp,
                written: acks.written.clone(),
            };
            let io = match tls {
                None => Box::new(tcp) as Box<dyn Io>,
                Some((connector, name)) => connector
                    .connect(name.clone(), tcp)
                    .await
                    .map(|tls| Box::new(tls) as Box<dyn Io>)
                    .map_err(|e| format!("TLS handshake with the Collector at {target}: {e}"))?,
            };
            Ok::<_, String>(Connected { io, acks })
        };
        match tokio::time::timeout(settings.connect_timeout, work).await {
            Ok(Ok(connected)) => {
                tracing::info!(collector = %target, tls = tls.is_some(), "Connected to the Collector.");
                Ok(connected)
            }
            Ok(Err(message)) => Err(SinkError::transient(message)),
            Err(_) => Err(SinkError::transient(format!(
                "connecting to the Collector at {target}: no TLS session within {:?}",
                settings.connect_timeout
            ))),
        }
    }

    fn failed(&mut self, message: String) -> Delivery {
        self.conn = None;
        Delivery {
            error: Some(SinkError::transient(message)),
            ..Delivery::default()
        }
    }

    /// Batches whose window has passed and whose bytes the peer acknowledged, as one report
    /// (`None`: none yet).
    fn confirmed(&mut self, now: Instant) -> Option<Delivery> {
        let mut delivery = Delivery::default();
        // Asked of the kernel once, and only when a window has passed.
        let mut acknowledged = None;
        while let Some(front) = self.unconfirmed.front()
            && front.confirm_at <= now
            && front.ends_at
                <= *acknowledged
                    .get_or_insert_with(|| self.conn.as_ref().map_or(0, |c| c.acks.acknowledged()))
        {
            delivery.through = Some(front.through);
            delivery.sent += front.sent;
            if let Some(front) = self.unconfirmed.pop_front() {
                delivery.rejected.extend(front.rejected);
            }
        }
        delivery.through.is_some().then_some(delivery)
    }

    /// The front batch is out and flushed: its window starts now. A batch with nothing to send
    /// is confirmed with the one before it.
    fn flushed(&mut self, now: Instant) {
        if let Some(done) = self.queue.pop_front() {
            let (confirm_at, ends_at) = if done.bytes.is_empty() {
                self.unconfirmed
                    .back()
                    .map_or((now, 0), |u| (u.confirm_at, u.ends_at))
            } else {
                (
                    now + self.settings.confirm_window,
                    self.conn.as_ref().map_or(0, |c| c.acks.written()),
                )
            };
            self.unconfirmed.push_back(Unconfirmed {
                through: done.through,
                sent: done.sent,
                rejected: done.rejected,
                confirm_at,
                ends_at,
                flushed_at: now,
            });
        }
        self.written = 0;
        self.write_started = None;
    }
}

/// How often a batch past its confirm window looks again for the peer's acknowledgement.
const ACK_POLL: Duration = Duration::from_millis(20);

/// One step of writing the front batch.
enum Step {
    Wrote(usize),
    Flushed,
}

/// Keepalive and a bound on unacknowledged data, best effort (the OS may refuse either).
fn tune_socket(tcp: &TcpStream, settings: &CollectorSettings) {
    let _ = tcp.set_nodelay(true);
    let socket = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(settings.keepalive)
        .with_interval(settings.keepalive);
    if let Err(e) = socket.set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "TCP keepalive not set.");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket.set_tcp_user_timeout(Some(settings.write_timeout)) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set.");
    }
}

/// A non-blocking look at the connection: `false` when the peer already closed or reset it.
/// The Collector never sends application data, so anything readable is a close, an alert or
/// noise (discarded).
fn peer_alive_now(conn: &mut ReadHalf<Box<dyn Io>>) -> bool {
    let mut scratch = [0u8; 512];
    loop {
        match conn.read(&mut scratch).now_or_never() {
            None => return true,
            Some(Ok(0) | Err(_)) => return false,
            Some(Ok(_)) => {}
        }
    }
}

impl Sink for CollectorSink {
    fn id(&self) -> SinkId {
        SinkId::Collector
    }

    fn window(&self) -> Window {
        Window {
            records: self.settings.window_records.max(1),
            bytes: self.settings.window_bytes.max(1),
        }
    }

    fn submit(&mut self, batch: Vec<Rendered>, through: u64) {
        let (mut sent, mut rejected) = (0u64, Vec::new());
        let mut bytes = Vec::new();
        for record in batch {
            let Some(line) = record.line else { continue };
            if line.is_empty() || line.contains(['\n', '\r']) {
                // One line per event is the only framing the Collector has: never split one.
                tracing::warn!(
                    seq = record.seq,
                    "UEF line is empty or spans lines; not sent, kept as a dead letter."
                );
                rejected.push(Rejection {
                    seq: record.seq,
                    reason: "the UEF line was empty or spanned lines (the Collector frames one event per line)".to_owned(),
                });
                continue;
            }
            bytes.reserve(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            sent += 1;
        }
        self.queue.push_back(Framed {
            through,
            bytes,
            sent,
            rejected,
        });
    }

    async fn progress(&mut self) -> Delivery {
        let target = self.target();
        let mut scratch = [0u8; 512];
        loop {
            let now = Instant::now();
            if let Some(delivery) = self.confirmed(now) {
                return delivery;
            }
            if let Some(front) = self.unconfirmed.front()
                && now >= front.flushed_at + self.settings.write_timeout
                && self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.acks.acknowledged() < front.ends_at)
            {
                return self.failed(format!(
                    "the Collector at {target} has not acknowledged a batch within {:?} (stalled or gone); unconfirmed batches are sent again",
                    self.settings.write_timeout
                ));
            }
            // Batches with nothing to send need no connection.
            while self.queue.front().is_some_and(|f| f.bytes.is_empty()) {
                self.flushed(Instant::now());
            }
            if self.queue.is_empty() && self.unconfirmed.is_empty() {
                std::future::pending::<()>().await;
            }
            if !self.queue.is_empty() && self.written == 0 && self.unconfirmed.is_empty() {
                if let Some(conn) = self.conn.as_mut()
                    && !peer_alive_now(&mut conn.reader)
                {
                    tracing::info!(collector = %target, "Collector closed the idle connection; reconnecting.");
                    self.conn = None;
                }
                if self.conn.is_none() {
                    // Kept across calls: the loop's other events must not restart a handshake.
                    let connecting = self.connecting.get_or_insert_with(|| {
                        let (settings, tls) = (self.settings.clone(), self.tls.clone());
                        Box::pin(async move { Self::connect(&settings, tls.as_ref()).await })
                    });
                    let connected = connecting.await;
                    self.connecting = None;
                    match connected {
                        Ok(Connected { io, acks }) => {
                            let (reader, writer) = tokio::io::split(io);
                            self.conn = Some(Conn {
                                reader,
                                writer,
                                acks,
                            });
                        }
                        Err(error) => {
                            return Delivery {
                                error: Some(error),
                                ..Delivery::default()
                            };
                        }
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                // Unconfirmed batches without a connection cannot happen (a failure resets);
                // treat it as one.
                return self.failed(format!(
                    "the connection to the Collector at {target} is gone"
                ));
            };
            if !self.queue.is_empty() && self.write_started.is_none() {
                self.write_started = Some(Instant::now());
            }
            let write_deadline = self
                .write_started
                .map(|started| started + self.settings.write_timeout);
            // The front's window, or, once it has passed, the next look at the peer's
            // acknowledgements (none arrive as an event we could wait for).
            let confirm_at = self
                .unconfirmed
                .front()
                .map(|u| u.confirm_at.max(now + ACK_POLL));
            let front = self.queue.front().map(|f| &f.bytes[self.written..]);
            let Conn { reader, writer, .. } = conn;
            let step = async {
                match front {
                    Some(rest) if !rest.is_empty() => writer.write(rest).await.map(Step::Wrote),
                    Some(_) => writer.flush().await.map(|()| Step::Flushed),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                read = reader.read(&mut scratch) => match read {
                    Ok(0) => return self.failed(format!("the Collector at {target} closed the connection; unconfirmed batches are sent again")),
                    Err(_) => return self.failed(format!("the Collector at {target} reset the connection; unconfirmed batches are sent again")),
                    // Never data from a Collector: an alert or noise, discarded.
                    Ok(_) => {}
                },
                step = step => match step {
                    Ok(Step::Wrote(0)) => return self.failed(format!("writing to the Collector at {target}: connection closed")),
                    Ok(Step::Wrote(n)) => self.written += n,
                    Ok(Step::Flushed) => self.flushed(Instant::now()),
                    Err(e) => return self.failed(format!("writing to the Collector at {target}: {e}")),
                },
                () = sleep_until_opt(write_deadline) => return self.failed(format!(
                    "writing to the Collector at {target}: not accepted within {:?}",
                    self.settings.write_timeout
                )),
                () = sleep_until_opt(confirm_at) => {}
            }
        }
    }

    fn reset(&mut self) {
        self.connecting = None;
        self.queue.clear();
        self.unconfirmed.clear();
        self.written = 0;
        self.write_started = None;
    }

    async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // close_notify, bounded: a dead peer must not hold up shutdown.
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.writer.shutdown()).await;
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
