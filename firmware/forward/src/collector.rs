//! The Collector sink: UEF `INGRESS_AUTHENTICATION` lines over TLS (or, only when the admin says
//! so, plain TCP) to the customer's InsightIDR Collector.
//!
//! # What "delivered" means here, honestly
//!
//! The Collector's UEF listener never answers: TCP gives no application-level acknowledgement,
//! and an invalid line is dropped without a word (CONTRACT.md §1.1, §1.4). So this sink calls a
//! batch delivered when its bytes were written *and flushed* to the TLS connection and the
//! connection then stayed up for a short *confirm window* ([`CollectorSettings::confirm_window`])
//! without the peer closing or resetting it. That window catches the common failure where the
//! Collector accepts a batch into its socket buffer and then drops the connection (restart,
//! crash, listener reset): the whole batch is sent again on a new connection (duplicates bounded
//! by one batch). It cannot catch a Collector that reads the bytes and loses them later, or a
//! connection that dies after the window: bytes the peer's kernel accepted but its process never
//! read are then lost. The verifier's canary (Log Search query) is what turns "written" into
//! "seen in InsightIDR".
//!
//! Before each write the connection is checked without blocking for a close or reset that
//! already arrived (a Collector that restarted while we were idle), so a batch is not written
//! into a dead connection when that is knowable. TCP keepalive and `TCP_USER_TIMEOUT` detect a
//! peer that vanished; a write deadline bounds a stalled one.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use boxidr_store::SinkId;
use futures_util::FutureExt;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::SetupError;
use crate::render::Rendered;
use crate::sink::{Delivery, Sink, SinkError};

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
    /// Bound on writing and flushing one batch (a stalled Collector fails the batch).
    pub write_timeout: Duration,
    /// TCP keepalive idle time and probe interval.
    pub keepalive: Duration,
    /// How long the connection must stay up after a flushed batch before it is acknowledged.
    pub confirm_window: Duration,
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

/// The Collector sink: one persistent connection, newline-delimited JSON, reconnect on error.
pub struct CollectorSink {
    settings: CollectorSettings,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    conn: Option<Box<dyn Io>>,
    /// Scratch buffer for one batch, reused.
    buffer: Vec<u8>,
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
            buffer: Vec::new(),
        })
    }

    fn target(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    async fn connect(
        settings: &CollectorSettings,
        tls: Option<&(TlsConnector, ServerName<'static>)>,
    ) -> Result<Box<dyn Io>, SinkError> {
        let target = format!("{}:{}", settings.host, settings.port);
        let work = async {
            let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
                .await
                .map_err(|e| format!("connecting to the Collector at {target}: {e}"))?;
            tune_socket(&tcp, settings);
            match tls {
                None => Ok(Box::new(tcp) as Box<dyn Io>),
                Some((connector, name)) => connector
                    .connect(name.clone(), tcp)
                    .await
                    .map(|tls| Box::new(tls) as Box<dyn Io>)
                    .map_err(|e| format!("TLS handshake with the Collector at {target}: {e}")),
            }
        };
        match tokio::time::timeout(settings.connect_timeout, work).await {
            Ok(Ok(io)) => {
                tracing::info!(collector = %target, tls = tls.is_some(), "Connected to the Collector.");
                Ok(io)
            }
            Ok(Err(message)) => Err(SinkError::transient(message)),
            Err(_) => Err(SinkError::transient(format!(
                "connecting to the Collector at {target}: no TLS session within {:?}",
                settings.connect_timeout
            ))),
        }
    }

    /// Writes and flushes the buffer, then watches the connection for the confirm window.
    async fn send_buffer(&mut self) -> Result<(), SinkError> {
        let target = self.target();
        if let Some(conn) = self.conn.as_mut()
            && !peer_alive_now(conn.as_mut())
        {
            tracing::info!(collector = %target, "Collector closed the idle connection; reconnecting.");
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(Self::connect(&self.settings, self.tls.as_ref()).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SinkError::transient("no Collector connection"));
        };
        let write = async {
            conn.write_all(&self.buffer).await?;
            conn.flush().await
        };
        match tokio::time::timeout(self.settings.write_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.conn = None;
                return Err(SinkError::transient(format!(
                    "writing to the Collector at {target}: {e}"
                )));
            }
            Err(_) => {
                self.conn = None;
                return Err(SinkError::transient(format!(
                    "writing to the Collector at {target}: not accepted within {:?}",
                    self.settings.write_timeout
                )));
            }
        }
        match confirm(conn.as_mut(), self.settings.confirm_window).await {
            Ok(()) => Ok(()),
            Err(why) => {
                self.conn = None;
                Err(SinkError::transient(format!(
                    "the Collector at {target} {why} right after a batch; it is sent again"
                )))
            }
        }
    }
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
fn peer_alive_now(conn: &mut dyn Io) -> bool {
    let mut scratch = [0u8; 512];
    loop {
        match conn.read(&mut scratch).now_or_never() {
            None => return true,
            Some(Ok(0) | Err(_)) => return false,
            Some(Ok(_)) => {}
        }
    }
}

/// Watches the connection for `window`: `Err` when the peer closes or resets it meanwhile.
async fn confirm(conn: &mut dyn Io, window: Duration) -> Result<(), &'static str> {
    let deadline = tokio::time::Instant::now() + window;
    let mut scratch = [0u8; 512];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut scratch)).await {
            Err(_) => return Ok(()),
            Ok(Ok(0)) => return Err("closed the connection"),
            Ok(Err(_)) => return Err("reset the connection"),
            Ok(Ok(_)) => {}
        }
    }
}

impl Sink for CollectorSink {
    fn id(&self) -> SinkId {
        SinkId::Collector
    }

    async fn deliver(&mut self, batch: &[Rendered]) -> Delivery {
        self.buffer.clear();
        let (mut sent, mut rejected) = (0u64, 0u64);
        for record in batch {
            let Some(line) = &record.line else { continue };
            if line.is_empty() || line.contains(['\n', '\r']) {
                // One line per event is the only framing the Collector has: never split one.
                tracing::warn!(
                    seq = record.seq,
                    "UEF line is empty or spans lines; not sent."
                );
                rejected += 1;
                continue;
            }
            self.buffer.extend_from_slice(line.as_bytes());
            self.buffer.push(b'\n');
            sent += 1;
        }
        let through = batch.last().map(|r| r.seq);
        if sent == 0 {
            return Delivery {
                through,
                sent,
                rejected,
                error: None,
            };
        }
        match self.send_buffer().await {
            Ok(()) => Delivery {
                through,
                sent,
                rejected,
                error: None,
            },
            Err(error) => Delivery {
                through: None,
                sent: 0,
                rejected: 0,
                error: Some(error),
            },
        }
    }

    async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // close_notify, bounded: a dead peer must not hold up shutdown.
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.shutdown()).await;
        }
    }
}
