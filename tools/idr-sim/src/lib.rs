//! Fault-injecting InsightIDR simulator: Collector UEF listener, Log Search ingest (HTTP and
//! token TCP/TLS), Platform API (key validation, log listing, asynchronous Log Search queries)
//! and a `/_sim` control surface. It follows `shared/insightidr/CONTRACT.md` (§1.1–1.2 UEF
//! rules, §2.3/2.4 Log Search ingest, §3 Platform API, §6.4 this simulator) and is independent
//! of the firmware it tests.
//!
//! Everything binds to loopback only; [`IdrSim::start`] refuses other addresses.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use idr_sim::{IdrSim, Listen, SimConfig};
//! let sim = IdrSim::start(SimConfig::default(), Listen::default()).await?;
//! // send UEF lines over TLS to sim.uef_addr() trusting sim.ca_pem(), POST raw events to
//! // format!("{}/v1/noformat/{}", sim.logsearch_base(), token), query sim.api_base() …
//! let accepted = sim.uef_records();
//! let rejected = sim.uef_rejected(); // never told to the client
//! # let _ = (accepted, rejected); sim.shutdown().await; Ok(()) }
//! ```
//!
//! Decisions where the contract has a gap are documented in the module that implements them:
//! [`uef`] (validation), [`lines`] (framing), [`http`] (Log Search ingest, Platform API,
//! LEQL subset, control surface), [`faults`] (fault model).

pub mod faults;
pub mod http;
pub mod lines;
pub mod store;
pub mod tls;
pub mod uef;

mod conn;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{
    ActiveFault, FaultControl, FaultError, FaultKind, FaultSpec, Surface, TlsFailMode,
};
pub use store::{
    Arrival, DeliveryCounts, IdTally, Ingest, LogRecord, RejectReason, Rejected, SinkCounts,
    SinkTotals, Tally, Totals, UefRecord, raw_box_event_id,
};
pub use tls::{TestCa, TlsError, TlsMaterial, client_config_for};
pub use uef::{UefRules, UefViolation};

/// What the Log Search HTTP input does with a token it does not know (real behaviour: gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownTokenBehaviour {
    /// Answer `204` and drop the body (recorded in the side channel).
    AcceptAndDrop,
    /// Answer with this status (e.g. 400, 403, 404) and `{"message":"Unknown log token"}`.
    Reject(u16),
}

/// Simulator configuration. `Default` gives one random token, a random API key, TLS on the
/// Collector and token inputs, plain HTTP on Log Search and the Platform API.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Known Log Search log tokens (UUIDs); one log per token.
    pub tokens: Vec<String>,
    /// Platform API key (`X-Api-Key`). Must not be empty.
    pub api_key: String,
    /// Unknown-token behaviour of the HTTP input (token TCP always drops silently).
    pub unknown_token: UnknownTokenBehaviour,
    /// Log Search POST body cap; larger bodies get `413`.
    pub body_limit: usize,
    /// `true`: each non-empty line of a POST body is its own entry; `false` (default): one entry
    /// per request (real behaviour: gap).
    pub split_lines: bool,
    /// Concurrent HTTP/2 streams per connection on the HTTP surfaces (128: what common load
    /// balancers allow; the real endpoint's limit is not known).
    pub h2_max_streams: u32,
    /// Time from receipt until a record is visible to Log Search queries.
    pub ingestion_delay: Duration,
    /// Serve the Collector UEF listener over TLS (else plain TCP).
    pub uef_tls: bool,
    /// Serve the token input over TLS (else plain TCP).
    pub token_tls: bool,
    /// Serve Log Search ingest over HTTPS (else HTTP).
    pub logsearch_tls: bool,
    /// Serve the Platform API (and `/_sim`) over HTTPS (else HTTP).
    pub api_tls: bool,
    /// UEF strictness knobs for the contract's gaps.
    pub uef_rules: UefRules,
    /// Longest accepted line on the UEF and token listeners (bytes, without LF).
    pub line_limit: usize,
    /// Polls of a query's `links[].href` that answer `202` before the `200` (0: the first
    /// poll already answers `200`). The query request itself always answers `202`.
    pub query_polls_until_ready: u32,
    /// Name of the log that holds accepted UEF records.
    pub uef_log_name: String,
    /// Server TLS material; `None` generates a [`TestCa`].
    pub tls: Option<TlsMaterial>,
    /// Keep every accepted record (default). `false`: only the per-id tallies are kept
    /// ([`SimHandle::totals`], [`SimHandle::tally`], [`SimHandle::delivery_counts`]), so a
    /// benchmark of millions of events does not hold them all; record lists and Log Search
    /// queries then see nothing.
    pub keep_records: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tokens: vec![random_uuid()],
            api_key: random_uuid(),
            unknown_token: UnknownTokenBehaviour::AcceptAndDrop,
            body_limit: 1024 * 1024,
            split_lines: false,
            h2_max_streams: 128,
            ingestion_delay: Duration::ZERO,
            uef_tls: true,
            token_tls: true,
            logsearch_tls: false,
            api_tls: false,
            uef_rules: UefRules::default(),
            line_limit: 1024 * 1024,
            query_polls_until_ready: 1,
            uef_log_name: "Box UEF".to_owned(),
            tls: None,
            keep_records: true,
        }
    }
}

/// Listen addresses; each defaults to `127.0.0.1:0`. Only loopback addresses are allowed.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    /// Collector UEF listener.
    pub uef: SocketAddr,
    /// Token TCP/TLS input.
    pub token: SocketAddr,
    /// Log Search HTTP ingest.
    pub logsearch: SocketAddr,
    /// Platform API and `/_sim`.
    pub api: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Listen {
            uef: any,
            token: any,
            logsearch: any,
            api: any,
        }
    }
}

/// A random version-4 UUID, lowercase.
pub fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// One Log Search log.
#[derive(Debug, Clone)]
pub(crate) struct LogDef {
    pub id: String,
    pub name: String,
    /// Empty for the UEF log.
    pub token: String,
}

pub(crate) struct SurfaceTls {
    pub good: Arc<rustls::ServerConfig>,
    pub rogue: Arc<rustls::ServerConfig>,
}

/// Shared state of one running simulator.
pub(crate) struct Inner {
    pub config: SimConfig,
    pub faults: FaultControl,
    pub store: Mutex<store::Store>,
    pub shutdown: watch::Sender<bool>,
    pub ca_pem: String,
    pub test_ca: Option<TestCa>,
    line_tls: Option<SurfaceTls>,
    http_tls: Option<SurfaceTls>,
    pub uef_log: LogDef,
    pub token_logs: Vec<LogDef>,
    pub api_base: String,
    pub logsearch_base: String,
    pub queries: Mutex<http::Queries>,
    connections: [AtomicU64; 4],
    pub requests: [AtomicU64; 4],
    pub untrusted_accepted: AtomicU64,
}

fn idx(s: Surface) -> usize {
    match s {
        Surface::Uef => 0,
        Surface::Token => 1,
        Surface::Logsearch => 2,
        Surface::Api => 3,
    }
}

impl Inner {
    pub(crate) fn lock_store(&self) -> MutexGuard<'_, store::Store> {
        // Records are only pushed; a panic elsewhere cannot leave them half-written.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn reject(&self, surface: Surface, conn: u64, reason: RejectReason, raw: &[u8]) {
        self.lock_store().reject(surface, conn, reason, raw);
    }

    pub(crate) fn log_for_token(&self, token: &str) -> Option<&LogDef> {
        self.token_logs
            .iter()
            .find(|l| l.token.eq_ignore_ascii_case(token))
    }

    pub(crate) fn next_conn(&self, surface: Surface) -> u64 {
        self.connections[idx(surface)].fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn connections(&self, surface: Surface) -> u64 {
        self.connections[idx(surface)].load(Ordering::SeqCst)
    }

    pub(crate) fn count_request(&self, surface: Surface) {
        self.requests[idx(surface)].fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn tls_for(&self, surface: Surface) -> Option<&SurfaceTls> {
        let on = match surface {
            Surface::Uef => self.config.uef_tls,
            Surface::Token => self.config.token_tls,
            Surface::Logsearch => self.config.logsearch_tls,
            Surface::Api => self.config.api_tls,
        };
        if !on {
            return None;
        }
        if surface.is_http() {
            self.http_tls.as_ref()
        } else {
            self.line_tls.as_ref()
        }
    }

    pub(crate) fn note_untrusted_accepted(&self, surface: Surface, conn: u64) {
        self.untrusted_accepted.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(%surface, conn, "Client completed a TLS handshake with an untrusted certificate.");
    }
}

/// Entry point.
#[derive(Debug)]
pub struct IdrSim;

impl IdrSim {
    /// Bind every surface (loopback only), generate TLS material if none was given, and start
    /// serving. Errors: non-loopback address, invalid config, bind failure, TLS setup failure.
    pub async fn start(config: SimConfig, listen: Listen) -> io::Result<SimHandle> {
        for (name, addr) in [
            ("uef", listen.uef),
            ("token", listen.token),
            ("logsearch", listen.logsearch),
            ("api", listen.api),
        ] {
            if !addr.ip().is_loopback() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{name} listen address {addr} is not loopback; idr-sim binds to 127.0.0.1 / ::1 only"
                    ),
                ));
            }
        }
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if config.api_key.is_empty() {
            return Err(invalid("api_key must not be empty".into()));
        }
        for t in &config.tokens {
            if !lines::is_uuid(t.as_bytes()) {
                return Err(invalid(format!("token {t:?} is not a UUID")));
            }
        }
        if let UnknownTokenBehaviour::Reject(code) = config.unknown_token
            && !(400..=499).contains(&code)
        {
            return Err(invalid(format!("unknown-token status {code} is not a 4xx")));
        }

        let tls_err = |e: TlsError| io::Error::other(e.to_string());
        let (material, test_ca) = match &config.tls {
            Some(m) => (m.clone(), None),
            None => {
                let ca = TestCa::generate().map_err(tls_err)?;
                (ca.material().clone(), Some(ca))
            }
        };
        let rogue = tls::rogue_material().map_err(tls_err)?;
        let make = |alpn: &[&[u8]]| -> io::Result<SurfaceTls> {
            Ok(SurfaceTls {
                good: material.server_config(alpn).map_err(tls_err)?,
                rogue: rogue.server_config(alpn).map_err(tls_err)?,
            })
        };
        let line_tls = Some(make(&[])?);
        let http_tls = Some(make(&[b"h2", b"http/1.1"])?);

        let uef_l = TcpListener::bind(listen.uef).await?;
        let token_l = TcpListener::bind(listen.token).await?;
        let ls_l = TcpListener::bind(listen.logsearch).await?;
        let api_l = TcpListener::bind(listen.api).await?;
        let addrs = [
            uef_l.local_addr()?,
            token_l.local_addr()?,
            ls_l.local_addr()?,
            api_l.local_addr()?,
        ];
        let base =
            |tls: bool, a: SocketAddr| format!("{}://{}", if tls { "https" } else { "http" }, a);

        let mut tls_surfaces = Vec::new();
        for (s, on) in [
            (Surface::Uef, config.uef_tls),
            (Surface::Token, config.token_tls),
            (Surface::Logsearch, config.logsearch_tls),
            (Surface::Api, config.api_tls),
        ] {
            if on {
                tls_surfaces.push(s);
            }
        }
        let token_logs = config
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| LogDef {
                id: random_uuid(),
                name: if config.tokens.len() == 1 {
                    "Box Raw".to_owned()
                } else {
                    format!("Box Raw {}", i + 1)
                },
                token: t.to_ascii_lowercase(),
            })
            .collect();
        let inner = Arc::new(Inner {
            faults: FaultControl::new(tls_surfaces),
            store: Mutex::new(store::Store::new(config.keep_records)),
            shutdown: watch::channel(false).0,
            ca_pem: material.ca_pem.clone(),
            test_ca,
            line_tls,
            http_tls,
            uef_log: LogDef {
                id: random_uuid(),
                name: config.uef_log_name.clone(),
                token: String::new(),
            },
            token_logs,
            api_base: base(config.api_tls, addrs[3]),
            logsearch_base: base(config.logsearch_tls, addrs[2]),
            queries: Mutex::new(http::Queries::default()),
            connections: Default::default(),
            requests: Default::default(),
            untrusted_accepted: AtomicU64::new(0),
            config,
        });

        let tasks = vec![
            tokio::spawn(conn::run_listener(
                inner.clone(),
                Surface::Uef,
                uef_l,
                conn::Proto::Lines,
            )),
            tokio::spawn(conn::run_listener(
                inner.clone(),
                Surface::Token,
                token_l,
                conn::Proto::Lines,
            )),
            tokio::spawn(conn::run_listener(
                inner.clone(),
                Surface::Logsearch,
                ls_l,
                conn::Proto::Http(http::logsearch_router(inner.clone())),
            )),
            tokio::spawn(conn::run_listener(
                inner.clone(),
                Surface::Api,
                api_l,
                conn::Proto::Http(http::api_router(inner.clone())),
            )),
        ];
        tracing::info!(uef = %addrs[0], token = %addrs[1], logsearch = %addrs[2], api = %addrs[3], "idr-sim started.");
        Ok(SimHandle {
            inner,
            addrs,
            tasks: Arc::new(Mutex::new(tasks)),
        })
    }
}

/// Handle to a running simulator. Cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
    addrs: [SocketAddr; 4],
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("uef", &self.addrs[0])
            .field("token", &self.addrs[1])
            .field("logsearch", &self.inner.logsearch_base)
            .field("api", &self.inner.api_base)
            .finish()
    }
}

impl SimHandle {
    /// Collector UEF listener (TLS or plain per [`SimConfig::uef_tls`]).
    pub fn uef_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Token TCP/TLS input (TLS per [`SimConfig::token_tls`]).
    pub fn token_tcp_addr(&self) -> SocketAddr {
        self.addrs[1]
    }

    /// Log Search ingest base, e.g. `http://127.0.0.1:PORT`; POST `{base}/v1/noformat/{token}`.
    pub fn logsearch_base(&self) -> String {
        self.inner.logsearch_base.clone()
    }

    /// Platform API base, e.g. `http://127.0.0.1:PORT` (also serves `/_sim`).
    pub fn api_base(&self) -> String {
        self.inner.api_base.clone()
    }

    /// The trust anchor (CA PEM) for TLS clients.
    pub fn ca_pem(&self) -> String {
        self.inner.ca_pem.clone()
    }

    /// The generated CA, when the simulator made its own material.
    pub fn test_ca(&self) -> Option<&TestCa> {
        self.inner.test_ca.as_ref()
    }

    /// A rustls client config (ring) trusting [`Self::ca_pem`].
    pub fn client_tls_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        client_config_for(&self.inner.ca_pem)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Fault control for every surface.
    pub fn faults(&self) -> FaultControl {
        self.inner.faults.clone()
    }

    /// Accepted UEF events, parsed, exactly as sent.
    pub fn uef_records(&self) -> Vec<serde_json::Value> {
        self.inner
            .lock_store()
            .uef
            .iter()
            .map(|r| r.value.clone())
            .collect()
    }

    /// Accepted UEF lines with receipt time, normalised time, Box event id and connection.
    pub fn uef_accepted(&self) -> Vec<UefRecord> {
        self.inner.lock_store().uef.clone()
    }

    /// UEF lines that were silently dropped, with the reason.
    pub fn uef_rejected(&self) -> Vec<Rejected> {
        self.rejected()
            .into_iter()
            .filter(|r| r.surface == Surface::Uef)
            .collect()
    }

    /// Every dropped input on every surface (UEF, token lines, HTTP bodies).
    pub fn rejected(&self) -> Vec<Rejected> {
        self.inner.lock_store().rejected.clone()
    }

    /// Accepted Log Search entries (HTTP and token TCP).
    pub fn logsearch_records(&self) -> Vec<LogRecord> {
        self.inner.lock_store().logs.clone()
    }

    /// Deliveries per Box event id, per sink.
    pub fn delivery_counts(&self) -> DeliveryCounts {
        self.inner.lock_store().delivery_counts()
    }

    /// Distinct ids, deliveries and duplicates per sink: O(1), cheap enough to poll often.
    pub fn totals(&self) -> Totals {
        self.inner.lock_store().totals()
    }

    /// A copy of the per-id tallies (first arrival time and count per id, per sink).
    pub fn tally(&self) -> Tally {
        self.inner.lock_store().tally.clone()
    }

    /// The arrival of each of `ids` at `surface` (`None`: not delivered there), in order. It
    /// holds the store's lock while it looks them up: for checks now and then, not a tight loop.
    pub fn arrivals_of<S: AsRef<str>>(&self, surface: Surface, ids: &[S]) -> Vec<Option<Arrival>> {
        let store = self.inner.lock_store();
        let tally = match surface {
            Surface::Uef => &store.tally.uef,
            Surface::Logsearch => &store.tally.logsearch,
            Surface::Token => &store.tally.token,
            Surface::Api => return vec![None; ids.len()],
        };
        ids.iter()
            .map(|id| tally.arrivals().get(id.as_ref()).copied())
            .collect()
    }

    /// HTTP requests received on a surface since start (`/_sim` not counted), those answered
    /// by an injected status included.
    pub fn requests(&self, surface: Surface) -> u64 {
        self.inner.requests[idx(surface)].load(Ordering::SeqCst)
    }

    /// Connections accepted so far on a surface (including faulted ones).
    pub fn connections(&self, surface: Surface) -> u64 {
        self.inner.connections(surface)
    }

    /// TLS handshakes a client completed against the untrusted fault certificate (a client bug).
    pub fn untrusted_handshakes(&self) -> u64 {
        self.inner.untrusted_accepted.load(Ordering::SeqCst)
    }

    /// The id of the log holding accepted UEF records.
    pub fn uef_log_id(&self) -> String {
        self.inner.uef_log.id.clone()
    }

    /// The id of the log a token writes to.
    pub fn log_id_for_token(&self, token: &str) -> Option<String> {
        self.inner.log_for_token(token).map(|l| l.id.clone())
    }

    /// Forget every record, rejection and tally (faults and queries stay).
    pub fn reset_records(&self) {
        self.inner.lock_store().clear();
    }

    /// Poll `pred` every 10 ms until it holds or `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&SimHandle) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stop every listener and connection.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            let _ = t.await;
        }
    }
}
