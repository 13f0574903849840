//! The running page: tiny_http worker threads behind the TLS front, and the optional
//! plain-HTTP listener that only redirects to HTTPS.

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use boxidr_config::Config;
use boxidr_store::Store;
use boxidr_store::settings;
use tokio::sync::watch;

use crate::ResetReport;
use crate::actions::Actions;
use crate::app::App;
use crate::boxlink::BoxConnectedHook;
use crate::clock::{Clock, SystemClock};
use crate::credentials::{SetupCode, Throttle};
use crate::error::SetupError;
use crate::http::{Method, Req, Resp, body_limit, plausible_host, split_url};
use crate::route::Page;
use crate::session::Sessions;
use crate::status::StatusSource;
use crate::tls::{self, PeerMap};

/// Default number of tiny_http worker threads (a slow Box call or password hash occupies one).
pub const DEFAULT_WORKERS: usize = 4;

/// What [`SetupServer::start`] needs. Build with [`SetupOptions::new`], then adjust fields.
pub struct SetupOptions {
    /// The appliance's store (secrets, settings).
    pub store: Store,
    /// Runtime the TLS front runs on and the worker threads `block_on` store and Box calls with.
    pub runtime: tokio::runtime::Handle,
    /// The TOML file the settings forms rewrite.
    pub config_path: PathBuf,
    /// Current configuration; every save publishes the new one here. `setup.listen` is the
    /// HTTPS address.
    pub config: watch::Sender<Arc<Config>>,
    /// Feeds the status page.
    pub status: Arc<dyn StatusSource>,
    /// Where plain HTTP is answered with a redirect to HTTPS (`None`: no plain listener).
    pub http_redirect: Option<SocketAddr>,
    /// Clock for sessions, throttling and OAuth state (tests inject one).
    pub clock: Arc<dyn Clock>,
    /// Called after the page obtained a new Box grant (already persisted).
    pub on_box_connected: Option<BoxConnectedHook>,
    /// tiny_http worker threads.
    pub workers: usize,
    /// Where "Test connection" sends the Platform API key. `None` (the default): the region's
    /// production endpoint with the OS trust store; set it for the simulator or a proxy.
    pub platform_api: Option<PlatformApi>,
    /// The command whose output the support bundle includes as the service journal
    /// ([`DEFAULT_JOURNAL_COMMAND`]); empty leaves the journal out.
    pub journal_command: Vec<String>,
    /// The collector's current Box token manager (`None` inside while it runs none). The Box
    /// page's "Test" asks it for the access token: Box rotates the refresh token on every use,
    /// so the page must not refresh one the collector holds. Without it (or while it is empty)
    /// the page obtains a token itself from the stored grant.
    pub box_tokens: Option<watch::Receiver<Option<Arc<boxidr_boxapi::TokenManager>>>>,
    /// How long "Send test event" waits for its line in Log Search when a Platform API key is
    /// set ([`DEFAULT_TEST_WAIT`]).
    pub test_wait: Duration,
}

/// How long "Send test event" waits, by default, to see its line in Log Search.
pub const DEFAULT_TEST_WAIT: Duration = crate::app::DEFAULT_TEST_WAIT;

/// A Platform API endpoint other than the region's production one.
#[derive(Debug, Clone)]
pub struct PlatformApi {
    /// Base URL, e.g. the InsightIDR simulator's `http://127.0.0.1:PORT`.
    pub base: url::Url,
    /// Trust anchors for an `https` base.
    pub roots: boxidr_forward::TrustRoots,
}

/// The journal of the last 24 hours of the `boxidr` unit.
pub const DEFAULT_JOURNAL_COMMAND: &[&str] = &[
    "journalctl",
    "-u",
    "boxidr",
    "--since",
    "-24h",
    "--no-pager",
    "-o",
    "short-iso",
];

impl std::fmt::Debug for SetupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupOptions")
            .field("config_path", &self.config_path)
            .field("http_redirect", &self.http_redirect)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl SetupOptions {
    /// Options with the system clock, no plain-HTTP listener, no hook, [`DEFAULT_WORKERS`].
    pub fn new(
        store: Store,
        runtime: tokio::runtime::Handle,
        config_path: impl Into<PathBuf>,
        config: watch::Sender<Arc<Config>>,
        status: Arc<dyn StatusSource>,
    ) -> Self {
        Self {
            store,
            runtime,
            config_path: config_path.into(),
            config,
            status,
            http_redirect: None,
            clock: Arc::new(SystemClock),
            on_box_connected: None,
            workers: DEFAULT_WORKERS,
            platform_api: None,
            journal_command: DEFAULT_JOURNAL_COMMAND
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            box_tokens: None,
            test_wait: DEFAULT_TEST_WAIT,
        }
    }
}

/// The running setup page. Stop it with [`SetupServer::stop`].
pub struct SetupServer {
    app: Arc<App>,
    https_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    worker_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    backend: Arc<tiny_http::Server>,
    redirect: Option<Arc<tiny_http::Server>>,
    threads: Vec<JoinHandle<()>>,
    workers: usize,
    startup_code: Option<SetupCode>,
}

impl std::fmt::Debug for SetupServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupServer")
            .field("https_addr", &self.https_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl SetupServer {
    /// Loads or creates the certificate, issues a fresh setup code while no admin password is
    /// set, binds `config.setup.listen` (and `http_redirect`), and starts serving.
    pub async fn start(options: SetupOptions) -> Result<Self, SetupError> {
        let SetupOptions {
            store,
            runtime,
            config_path,
            config,
            status,
            http_redirect,
            clock,
            on_box_connected,
            workers,
            platform_api,
            journal_command,
            box_tokens,
            test_wait,
        } = options;
        let workers = workers.max(1);
        let identity = tls::load_or_create(&store).await?;
        let claimed = store.get_secret(settings::PASSWORD_HASH).await?.is_some();
        let startup_code = if claimed {
            store.delete_secret(settings::SETUP_CODE_HASH).await?;
            None
        } else {
            crate::setup_code(&store).await?
        };
        let listen = config.borrow().setup.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| SetupError::io(format!("listen on {listen}"), e))?;
        let https_addr = listener
            .local_addr()
            .map_err(|e| SetupError::io("read the listening address", e))?;
        let backend = tiny_http::Server::http("127.0.0.1:0").map_err(|e| {
            SetupError::io(
                "start the HTTP worker",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let backend_addr = backend.server_addr().to_ip().ok_or_else(|| {
            SetupError::io("read the worker address", std::io::Error::other("not TCP"))
        })?;
        let backend = Arc::new(backend);
        let tls_config = Arc::new(RwLock::new(identity.server_config()?));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = boxidr_boxapi::http::client(Duration::from_secs(
            config.borrow().box_api.request_timeout_secs.clamp(5, 60),
        ))
        .map_err(|e| {
            SetupError::io(
                "build the Box HTTP client",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let actions = Arc::new(Actions::new(
            store,
            runtime.clone(),
            config_path,
            config,
            http,
            on_box_connected,
        ));
        let app = Arc::new(App {
            probes: crate::app::Probes {
                actions: actions.clone(),
                platform_api,
                box_tokens,
                test_wait,
            },
            actions,
            status,
            clock,
            sessions: Mutex::new(Sessions::default()),
            throttle: Mutex::new(Throttle::default()),
            claimed: AtomicBool::new(claimed),
            identity: RwLock::new(identity),
            tls: tls_config.clone(),
            journal_command,
            bundle_lock: Mutex::new(()),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let peers = PeerMap::default();
        runtime.spawn(tls::run_front(
            listener,
            tls_config,
            backend_addr,
            peers.clone(),
            shutdown_rx,
        ));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for n in 0..workers {
            let backend = backend.clone();
            let app = app.clone();
            let peers = peers.clone();
            let stopping = stopping.clone();
            let thread = std::thread::Builder::new()
                .name(format!("boxidr-setup-{n}"))
                .spawn(move || worker(&backend, &app, &peers, &stopping))
                .map_err(|e| SetupError::io("start a setup page thread", e))?;
            threads.push(thread);
        }
        let (redirect, http_addr) = match http_redirect {
            Some(addr) => {
                let server = tiny_http::Server::http(addr).map_err(|e| {
                    SetupError::io(
                        format!("listen on {addr}"),
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                let bound = server.server_addr().to_ip();
                let server = Arc::new(server);
                let s = server.clone();
                let https_port = https_addr.port();
                let thread = std::thread::Builder::new()
                    .name("boxidr-setup-redirect".into())
                    .spawn(move || redirect_worker(&s, https_port))
                    .map_err(|e| SetupError::io("start the redirect thread", e))?;
                threads.push(thread);
                (Some(server), bound)
            }
            None => (None, None),
        };
        tracing::info!(%https_addr, fingerprint = app.fingerprint(), "Setup page listening.");
        Ok(Self {
            app,
            https_addr,
            http_addr,
            worker_addr: backend_addr,
            shutdown,
            stopping,
            backend,
            redirect,
            threads,
            workers,
            startup_code,
        })
    }

    /// The HTTPS address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The plain-HTTP redirect address actually bound, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The private loopback port tiny_http listens on behind the TLS front (diagnostics and
    /// tests: requests that reach it without passing the front are refused with 403).
    pub fn worker_addr(&self) -> SocketAddr {
        self.worker_addr
    }

    /// SHA-256 fingerprint of the certificate being served (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        self.app.fingerprint()
    }

    /// The setup code issued by [`SetupServer::start`] (no admin password yet), to print on
    /// the console and in the journal; `None` once the appliance is claimed.
    pub fn startup_code(&self) -> Option<&SetupCode> {
        self.startup_code.as_ref()
    }

    /// Issues a new setup code (the previous one dies); `None` if a password is set.
    pub async fn setup_code(&self) -> Result<Option<SetupCode>, SetupError> {
        crate::setup_code(&self.app.actions.store).await
    }

    /// [`crate::factory_reset`], then ends every session and serves the new certificate.
    pub async fn factory_reset(&self) -> Result<ResetReport, SetupError> {
        let config = self.app.current_config();
        let report = crate::factory_reset(&self.app.actions.store, &config).await?;
        self.app.claimed.store(false, Ordering::SeqCst);
        if let Ok(mut sessions) = self.app.sessions.lock() {
            sessions.clear();
        }
        if let Ok(mut throttle) = self.app.throttle.lock() {
            throttle.clear();
        }
        if let Some(identity) = crate::tls::Identity::load(&self.app.actions.store).await? {
            let config = identity.server_config()?;
            if let Ok(mut tls) = self.app.tls.write() {
                *tls = config;
            }
            if let Ok(mut current) = self.app.identity.write() {
                *current = identity;
            }
        }
        Ok(report)
    }

    /// Stops accepting, ends connections and joins the threads. Blocks briefly: call it from
    /// a plain thread or `spawn_blocking`, not directly on a tokio worker.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        for _ in 0..self.workers {
            self.backend.unblock();
        }
        if let Some(redirect) = &self.redirect {
            redirect.unblock();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
        tracing::info!("Setup page stopped.");
    }
}

fn worker(backend: &tiny_http::Server, app: &App, peers: &PeerMap, stopping: &AtomicBool) {
    while let Ok(request) = backend.recv() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        serve(app, peers, request);
    }
}

fn serve(app: &App, peers: &PeerMap, mut request: tiny_http::Request) {
    let client = request.remote_addr().and_then(|seen| peers.client_of(seen));
    let Some(client) = client else {
        // Not through the TLS front: a local process talking to the private port.
        let _ = request.respond(tiny_http::Response::empty(403));
        return;
    };
    let method = match request.method() {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Head => Method::Head,
        tiny_http::Method::Post => Method::Post,
        _ => Method::Other,
    };
    let (path, query) = split_url(request.url());
    let headers = request
        .headers()
        .iter()
        .rev()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let declared = request.body_length().unwrap_or(0);
    let page = Page::find(method, &path);
    let max_body = body_limit(page);
    let resp = if declared > max_body {
        Resp::text(413, "text/plain", "request body too large")
    } else {
        let mut body = Vec::new();
        let limit = u64::try_from(max_body + 1).unwrap_or(u64::MAX);
        match request.as_reader().take(limit).read_to_end(&mut body) {
            Ok(_) if body.len() > max_body => {
                Resp::text(413, "text/plain", "request body too large")
            }
            Ok(_) => {
                let req = Req {
                    method,
                    path,
                    page,
                    query,
                    headers,
                    body,
                    client,
                };
                catch_unwind(AssertUnwindSafe(|| app.handle(&req))).unwrap_or_else(|_| {
                    tracing::error!(path = %req.path, "Setup page handler panicked.");
                    Resp::text(500, "text/plain", "internal error")
                })
            }
            Err(_) => Resp::text(400, "text/plain", "cannot read the request body"),
        }
    };
    respond(request, resp);
}

fn respond(request: tiny_http::Request, resp: Resp) {
    let mut response = tiny_http::Response::from_data(resp.body).with_status_code(resp.status);
    for (name, value) in resp.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}

fn redirect_worker(server: &tiny_http::Server, https_port: u16) {
    while let Ok(request) = server.recv() {
        let host = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("host"))
            .map(|h| h.value.as_str().to_owned())
            .unwrap_or_default();
        let response = match redirect_location(&host, request.url(), https_port) {
            Some(location) => {
                let mut r = tiny_http::Response::empty(301);
                if let Ok(h) = tiny_http::Header::from_bytes("Location", location.as_bytes()) {
                    r.add_header(h);
                }
                r
            }
            None => tiny_http::Response::empty(400),
        };
        let _ = request.respond(response);
    }
}

/// Where a plain-HTTP request for `path` is sent: the same path on HTTPS, on the host the
/// client named. `None` (answer 400) for an implausible host, a path that would leave this
/// host (`//evil`), or a path with a space or control byte: tiny_http passes a bare CR in the
/// request line through, and it must not reach the `Location` header (found by tests/fuzz
/// `setup_http`).
fn redirect_location(host: &str, path: &str, https_port: u16) -> Option<String> {
    let host = host_without_port(host)?;
    let plain = path.bytes().all(|b| b.is_ascii_graphic());
    if !path.starts_with('/') || path.starts_with("//") || !plain {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    Some(format!("https://{host}{port}{path}"))
}

/// The host part of a `Host` header, if it is a plausible name or address.
fn host_without_port(host: &str) -> Option<&str> {
    let name = if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']')?;
        &host[..end + 2]
    } else {
        host.split(':').next()?
    };
    plausible_host(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redirect hosts keep names and IPv6 literals and refuse junk.
    #[test]
    fn redirect_hosts() {
        assert_eq!(host_without_port("box.lan:80"), Some("box.lan"));
        assert_eq!(host_without_port("[::1]:80"), Some("[::1]"));
        assert_eq!(host_without_port("10.0.0.5"), Some("10.0.0.5"));
        assert_eq!(host_without_port("evil.com/x"), None);
        assert_eq!(host_without_port(""), None);
    }

    /// Redirects keep the path on this host, and a path with a CR, LF or space (which tiny_http
    /// lets through in the request line) is refused instead of reaching the `Location` header.
    #[test]
    fn redirect_locations() {
        assert_eq!(
            redirect_location("box.lan:80", "/status?auto=1", 8443).as_deref(),
            Some("https://box.lan:8443/status?auto=1")
        );
        assert_eq!(
            redirect_location("box.lan", "/", 443).as_deref(),
            Some("https://box.lan/")
        );
        for path in [
            "//evil.example/",
            "/claim-\r-Set-Cookie:x",
            "/a\nb",
            "/a b",
            "x",
        ] {
            assert_eq!(redirect_location("box.lan", path, 443), None, "{path:?}");
        }
    }
}
