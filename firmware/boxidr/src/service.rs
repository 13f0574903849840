//! `boxidr run` as a supervisor: the store, the setup page, the control socket, and the
//! pipeline, rebuilt from scratch whenever the settings change or the admin connects Box.
//!
//! Restarting the whole pipeline on a change is deliberate: every task stops at a committed
//! point (pages and acks are transactions), so a restart costs one re-read at most, and there is
//! one way in and one way out to get right.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxidr_boxapi::collect::CollectConfig;
use boxidr_boxapi::{AuthClient, EventsClient, Grant, TokenManager, UsersClient, http};
use boxidr_config::Config;
use boxidr_forward::{CollectorSettings, ForwarderOptions, LogSearchSettings, TrustRoots};
use boxidr_setup::{BoxConnection, SetupOptions, SetupServer};
use boxidr_store::settings;
use boxidr_store::{Store, StoreOptions};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::control;
use crate::exit::{ExitCode, StartError};
use crate::facts::NotCollecting;
use crate::pipeline::{self, Parts, Renderer, SinkPlan, Sinks, Watches};
use crate::status::StatusCache;
use crate::watchdog::{self, Supervision, Watchdog};

/// How often the status snapshot (page, control socket) is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Wait before restarting a pipeline whose task failed.
const RESTART_AFTER: Duration = Duration::from_secs(10);
/// How often the users sync runs.
const USERS_EVERY: Duration = Duration::from_secs(6 * 3600);
/// How often the storage self-test runs after the one at start (RELIABILITY §6 scenario 16).
const SELF_TEST_EVERY: Duration = Duration::from_secs(24 * 3600);
/// The counter the watchdog's store ping reads (never written: a read is all it needs).
const WATCHDOG_PING: &str = "watchdog_ping";
/// The file is compacted once the queue is empty and the file has grown past this many times
/// its size after the last compaction (or at start): redb never shrinks a file by itself, so a
/// drained outage would otherwise keep its peak size (RELIABILITY §6 scenario 13).
const COMPACT_WHEN_GROWN: u64 = 2;
/// Files smaller than this are never compacted (nothing worth the writes).
const COMPACT_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// What the pipeline is doing, for the snapshot.
#[derive(Debug, Clone)]
enum Phase {
    WaitingForTime,
    NotConnected(NotCollecting),
    Running(Watches),
}

/// How a caller other than systemd (the demo) runs the service in-process.
#[derive(Default)]
pub struct Embedding {
    /// Resolves when the service should stop (default: SIGTERM or SIGINT).
    pub stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Receives the running service's handles once it has started.
    pub started: Option<oneshot::Sender<Started>>,
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedding")
            .field("stop", &self.stop.is_some())
            .field("started", &self.started.is_some())
            .finish()
    }
}

/// What an embedding caller gets once the service runs.
#[derive(Debug)]
pub struct Started {
    /// The setup page's address, if it started.
    pub setup_url: Option<String>,
    /// SHA-256 fingerprint of the page's certificate.
    pub fingerprint: Option<String>,
    /// The one-time setup code, while the appliance is unclaimed.
    pub setup_code: Option<String>,
    /// The latest status snapshot (what `boxidr status --json` prints).
    pub status: Arc<StatusCache>,
    /// Hands a fresh Box connection to the supervisor, as the setup page does.
    pub connect: mpsc::UnboundedSender<BoxConnection>,
}

/// Resolves on the first SIGTERM or SIGINT, naming it.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can still be killed; wait forever.
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Runs the service until SIGTERM or SIGINT.
pub async fn serve(config_path: &std::path::Path, config: Config) -> ExitCode {
    serve_with(config_path, config, Embedding::default()).await
}

/// Runs the service until `embedding.stop` resolves (or a signal, by default).
pub async fn serve_with(
    config_path: &std::path::Path,
    config: Config,
    embedding: Embedding,
) -> ExitCode {
    if let Err(source) = prepare_data_dir(&config.data_dir) {
        let error = StartError::DataDir {
            dir: config.data_dir.display().to_string(),
            source,
        };
        return crate::exit::refuse_start(&error, None).await;
    }
    let mut options = StoreOptions::new(config.database_path());
    options.quota_bytes = config.queue.quota_bytes;
    let store = match Store::open(options).await {
        Ok(store) => store,
        Err(source) => {
            let error = StartError::Store {
                path: config.database_path().display().to_string(),
                source,
            };
            return crate::exit::refuse_start(&error, board_config(&config.board).ok()).await;
        }
    };
    let started = Instant::now();
    // The storage self-test at start and daily; a failure is a storage fault (ATTENTION 1).
    let self_test = Arc::new(std::sync::Mutex::new(None::<String>));
    let self_tests = tokio::spawn(run_self_tests(config.data_dir.clone(), self_test.clone()));
    // Supervision starts with the store: from here on a part that hangs stops the feed.
    let watchdog = Watchdog::new();
    let feeder = watchdog::start_systemd_feeder(&watchdog);
    let store_ping = {
        let store = store.clone();
        tokio::spawn(watchdog::ping_store(
            watchdog.part("store", watchdog::STORE_BUDGET),
            move || {
                let store = store.clone();
                async move {
                    let _ = store.counter(WATCHDOG_PING.to_owned()).await;
                }
            },
        ))
    };
    let supervision = Supervision {
        watchdog: watchdog.clone(),
        box_budget: watchdog::box_budget(Duration::from_secs(config.box_api.request_timeout_secs)),
    };
    let status = Arc::new(StatusCache::default());
    let (config_tx, mut config_rx) = watch::channel(Arc::new(config.clone()));
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<BoxConnection>();
    let connect = connected_tx.clone();

    let mut setup_options = SetupOptions::new(
        store.clone(),
        tokio::runtime::Handle::current(),
        config_path,
        config_tx,
        status.clone(),
    );
    // An overridden Platform API (a proxy, or the simulator in the demo) is what the page's
    // "Test connection" must reach too; otherwise the page uses the region the admin picks.
    if let Some(base) = &config.insightidr.verifier.api_base {
        let roots = boxidr_forward::verify::trust_roots(&config).unwrap_or_else(|e| {
            warn!(error = %e, "The page's Test connection uses the OS roots.");
            boxidr_forward::TrustRoots::Platform
        });
        setup_options.platform_api = Some(boxidr_setup::PlatformApi {
            base: base.clone(),
            roots,
        });
    }
    setup_options.on_box_connected = Some(Arc::new(move |connection| {
        let _ = connected_tx.send(connection);
    }));
    // The page's Box "Test" borrows the running pipeline's token manager: Box rotates the
    // refresh token on every use, so there must be one holder while the pipeline runs.
    let (box_tokens, box_tokens_rx) = watch::channel(None::<Arc<TokenManager>>);
    setup_options.box_tokens = Some(box_tokens_rx);
    let setup = match SetupServer::start(setup_options).await {
        Ok(server) => {
            info!(url = %format!("https://{}/", server.local_addr()), fingerprint = %server.fingerprint(), "Setup page listening.");
            if let Some(code) = server.startup_code() {
                // The journal is where the admin of a headless box reads it (also `boxidr setup-code`).
                info!(
                    code = code.as_str(),
                    "Setup code (one use; it claims this appliance)."
                );
            }
            Some(server)
        }
        Err(e) => {
            error!(error = %e, "The setup page cannot start; collection continues with the stored settings.");
            None
        }
    };

    let mut code_file = CodeFileState {
        file: crate::code_file::CodeFile::from_config(&config),
        holds_code: false,
    };
    if let Some(server) = &setup {
        match server.startup_code() {
            Some(code) => code_file.issued(code, Some(server), &server.fingerprint()),
            None => code_file.claimed(),
        }
    }
    let setup_probe = setup.as_ref().map(|server| {
        tokio::spawn(watchdog::probe_setup(
            watchdog.part("setup", watchdog::SETUP_BUDGET),
            server.worker_addr(),
        ))
    });
    let supervisor = watchdog.part("supervisor", watchdog::SUPERVISOR_BUDGET);

    let (button_tx, mut button_rx) = mpsc::unbounded_channel();
    let board = start_board(&config, button_tx);
    let gpio_error = board.as_ref().map_or_else(
        |e| Some(e.clone()),
        |b| b.problem.as_ref().map(ToString::to_string),
    );

    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let control = control::listen(&config.data_dir, status.clone(), control_tx);
    if let Err(e) = &control {
        warn!(error = %e, "No control socket; `boxidr status` cannot reach this service.");
    }
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        warn!(error = %e, "Cannot notify systemd.");
    }

    if let Some(started) = embedding.started {
        let _ = started.send(Started {
            setup_url: setup
                .as_ref()
                .map(|s| format!("https://{}/", s.local_addr())),
            fingerprint: setup.as_ref().map(SetupServer::fingerprint),
            setup_code: setup
                .as_ref()
                .and_then(|s| s.startup_code().map(|c| c.as_str().to_owned())),
            status: status.clone(),
            connect,
        });
    }
    let mut signal = embedding.stop.unwrap_or_else(|| {
        Box::pin(async {
            let name = shutdown_signal().await;
            info!(signal = name, "Stop requested.");
        })
    });
    let mut pending: Option<BoxConnection> = None;
    let mut clock_wait: Option<Instant> = None;
    let mut compacted_bytes = store.stats().await.map_or(0, |s| s.file_bytes);
    'supervise: loop {
        supervisor.beat();
        let config = config_rx.borrow_and_update().clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let synchronised = clock_synchronised(&config);
        if synchronised {
            clock_wait = None;
        } else {
            clock_wait.get_or_insert_with(Instant::now);
        }
        let mut phase = if synchronised {
            match build_parts(&config, &store, pending.take(), &supervision).await {
                Ok(parts) => {
                    box_tokens.send_replace(Some(parts.tokens.clone()));
                    match pipeline::start(parts, &mut tasks, &stop_rx).await {
                        Ok(watches) => Phase::Running(watches),
                        Err(e) => Phase::NotConnected(format!("cannot start: {e:#}").into()),
                    }
                }
                Err(reason) => Phase::NotConnected(reason),
            }
        } else {
            Phase::WaitingForTime
        };
        if let Phase::NotConnected(reason) = &phase {
            warn!(%reason, "Not collecting.");
        }
        let mut tick = tokio::time::interval(STATUS_EVERY);
        let restart = loop {
            supervisor.beat();
            tokio::select! {
                _ = &mut signal => break false,
                changed = config_rx.changed() => {
                    if changed.is_ok() {
                        info!("Settings changed; restarting the pipeline.");
                    }
                    break true;
                }
                Some(connection) = connected_rx.recv() => {
                    info!("Box connected from the setup page; restarting the pipeline.");
                    pending = Some(connection);
                    break true;
                }
                Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
                    let why = match ended {
                        Ok(Ok(())) => "a task ended".to_owned(),
                        Ok(Err(e)) => format!("{e:#}"),
                        Err(e) => format!("a task panicked: {e}"),
                    };
                    error!(%why, "Pipeline task stopped; restarting in {}s.", RESTART_AFTER.as_secs());
                    phase = Phase::NotConnected(format!("restarting after: {why}").into());
                    publish(&status, &store, &phase, &view(started, clock_wait, &gpio_error, &self_test, &watchdog), board.as_ref().ok()).await;
                    supervisor.waiting(RESTART_AFTER);
                    tokio::time::sleep(RESTART_AFTER).await;
                    break true;
                }
                _ = tick.tick() => {
                    code_file.check_claimed(&store).await;
                    compact_after_drain(&store, &mut compacted_bytes).await;
                    if matches!(phase, Phase::WaitingForTime) && clock_synchronised(&config) {
                        info!("Clock synchronised.");
                        break true;
                    }
                    publish(&status, &store, &phase, &view(started, clock_wait, &gpio_error, &self_test, &watchdog), board.as_ref().ok()).await;
                }
                Some(event) = button_rx.recv() => {
                    if on_button(event, setup.as_ref(), &store, &config, &mut code_file).await {
                        break true;
                    }
                }
                Some(request) = control_rx.recv() => {
                    if on_control(request, setup.as_ref(), &store, &config, &mut code_file).await {
                        break true;
                    }
                }
            }
        };
        if !restart {
            // Parts end one by one now; a normal stop must not trip the watchdog.
            watchdog.stopping();
        }
        let _ = stop_tx.send(true);
        box_tokens.send_replace(None);
        while let Some(ended) = tasks.join_next().await {
            if let Ok(Err(e)) = ended {
                warn!(error = %format!("{e:#}"), "Pipeline task ended with an error during stop.");
            }
        }
        if !restart {
            break 'supervise;
        }
    }
    info!("Stopping.");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    drop(supervisor);
    store_ping.abort();
    if let Some(probe) = setup_probe {
        probe.abort();
    }
    if let Some(server) = setup {
        let _ = tokio::task::spawn_blocking(move || server.stop()).await;
    }
    if let Ok(control) = control {
        control.abort();
    }
    self_tests.abort();
    if let Ok(board) = board {
        // The LEDs show the documented "stopped" look.
        let _ = tokio::task::spawn_blocking(move || board.handle.stop()).await;
    }
    if let Err(e) = store.close().await {
        warn!(error = %e, "Store close failed; the next start recovers.");
    }
    feeder.abort();
    ExitCode::Ok
}

/// Compacts the database when the queue has drained and the file has grown to more than
/// [`COMPACT_WHEN_GROWN`] times its size after the last compaction, and at least half of the
/// entries stored since were deleted again. `reference` is that size.
///
/// Growth from entries still stored (a users sync of 500,000 users writes ~100 MB of them) is
/// not given back by compacting, which reads every page of the file and holds an index of them
/// in memory: compacting each time such a sync doubled the file was most of the sync's peak heap.
async fn compact_after_drain(store: &Store, reference: &mut u64) {
    let Ok(stats) = store.stats().await else {
        return;
    };
    let grown = stats.file_bytes > reference.saturating_mul(COMPACT_WHEN_GROWN);
    let churned =
        stats.io.deleted_since_compaction.saturating_mul(2) >= stats.io.written_since_compaction;
    if stats.queue_records > 0 || stats.file_bytes < COMPACT_MIN_BYTES || !grown || !churned {
        return;
    }
    match store.compact().await {
        Ok(report) => {
            info!(
                before = report.before_bytes,
                after = report.after_bytes,
                "The queue drained: compacted the database."
            );
            *reference = report.after_bytes;
        }
        Err(e) => {
            warn!(error = %e, "Compacting the drained database failed; trying again later.");
            // Not again until the file grows further.
            *reference = stats.file_bytes;
        }
    }
}

fn prepare_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Whether time windows and TLS can be trusted (see `[clock]`).
pub fn clock_synchronised(config: &Config) -> bool {
    !config.clock.wait_for_sync || config.clock.sync_flag.exists()
}

/// The pipeline's parts from the settings file and the store, or why there are none.
async fn build_parts(
    config: &Config,
    store: &Store,
    connection: Option<BoxConnection>,
    supervision: &Supervision,
) -> Result<Parts, NotCollecting> {
    use NotCollecting::{Authorisation, NotConnected};
    let client_id = store
        .setting(settings::BOX_CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            NotConnected("Box is not connected: set the Box app on the setup page".into())
        })?;
    let client_secret = store
        .get_secret(settings::BOX_CLIENT_SECRET)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            NotConnected("Box is not connected: the Box app's client secret is not set".into())
        })?;
    let grant = Grant::load(store)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            NotConnected("Box is not connected: connect to Box on the setup page".into())
        })?;
    let timeout = Duration::from_secs(config.box_api.request_timeout_secs);
    let proxy = http::outbound_proxy(&config.network, store).await?;
    let box_ca = match &config.box_api.ca_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("Box CA file {}: {e}", path.display()))?)
        }
        None => None,
    };
    let client =
        http::client_via(timeout, proxy.as_ref(), box_ca.as_deref()).map_err(|e| e.to_string())?;
    let auth = AuthClient::new(
        client.clone(),
        config.box_api.authorize_url.clone(),
        &config.box_api.token_base,
        client_id,
        client_secret,
    )
    .map_err(|e| e.to_string())?;
    let tokens = TokenManager::load(auth, grant, store.clone())
        .await
        .map_err(|e| Authorisation(format!("Box authorisation: {e}")))?;
    if let Some(connection) = connection {
        tokens
            .install(connection.tokens)
            .await
            .map_err(|e| Authorisation(format!("Box authorisation: {e}")))?;
    }
    let settings =
        boxidr_normalize::Settings::from_mapping(&config.mapping, env!("CARGO_PKG_VERSION"))
            .with_scope(&config.scope);
    Ok(Parts {
        store: store.clone(),
        tokens: Arc::new(tokens),
        events: EventsClient::new(
            client.clone(),
            &config.box_api.api_base,
            config.box_api.max_body_bytes,
        )
        .with_type_filter(&config.events),
        users: UsersClient::new(
            client,
            &config.box_api.api_base,
            config.box_api.max_body_bytes,
        ),
        collect: CollectConfig::from_events(&config.events),
        render: Arc::new(Renderer::new(settings)),
        sinks: sinks(config, store).await,
        forwarder: ForwarderOptions::default(),
        users_every: USERS_EVERY,
        canary: crate::canary::plan(config, store).await,
        supervision: supervision.clone(),
    })
}

async fn sinks(config: &Config, store: &Store) -> Sinks {
    let proxy = http::outbound_proxy(&config.network, store).await;
    let collector = match &config.insightidr.collector {
        None => SinkPlan::Off,
        Some(c) => match CollectorSettings::from_config(c) {
            Ok(settings) => SinkPlan::Run(settings),
            Err(e) => SinkPlan::Broken(format!("Collector settings: {e}")),
        },
    };
    let log_search = match &config.insightidr.log_search {
        None => SinkPlan::Off,
        Some(l) => match store.get_secret(settings::LOG_SEARCH_TOKEN).await {
            Ok(Some(token)) => match LogSearchSettings::from_config(l, token) {
                Ok(mut settings) => match &l.ca_file {
                    _ if proxy.is_err() => {
                        SinkPlan::Broken(proxy.clone().err().unwrap_or_default())
                    }
                    None => {
                        settings.proxy = proxy.clone().ok().flatten();
                        SinkPlan::Run(settings)
                    }
                    Some(path) => match boxidr_forward::collector::read_ca_file(path) {
                        Ok(pem) => {
                            settings.roots = TrustRoots::CustomCa(pem);
                            settings.proxy = proxy.clone().ok().flatten();
                            SinkPlan::Run(settings)
                        }
                        Err(e) => SinkPlan::Broken(format!("Log Search CA: {e}")),
                    },
                },
                Err(e) => SinkPlan::Broken(format!("Log Search settings: {e}")),
            },
            Ok(None) => SinkPlan::Broken("the Log Search token is not set".to_owned()),
            Err(e) => SinkPlan::Broken(format!("cannot read the Log Search token: {e}")),
        },
    };
    Sinks {
        collector,
        log_search,
    }
}

/// The supervisor's view for the facts.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    started: Instant,
    clock_wait: Option<Instant>,
    gpio_error: &'a Option<String>,
    self_test: &'a std::sync::Mutex<Option<String>>,
    watchdog: &'a Watchdog,
}

fn view<'a>(
    started: Instant,
    clock_wait: Option<Instant>,
    gpio_error: &'a Option<String>,
    self_test: &'a std::sync::Mutex<Option<String>>,
    watchdog: &'a Watchdog,
) -> View<'a> {
    View {
        started,
        clock_wait,
        gpio_error,
        self_test,
        watchdog,
    }
}

/// Runs the storage self-test ([`boxidr_store::self_test`]) now and every
/// [`SELF_TEST_EVERY`], keeping the last failure in `result` for the health facts.
async fn run_self_tests(dir: std::path::PathBuf, result: Arc<std::sync::Mutex<Option<String>>>) {
    let mut every = tokio::time::interval(SELF_TEST_EVERY);
    loop {
        every.tick().await;
        let probe_dir = dir.clone();
        let outcome = tokio::task::spawn_blocking(move || boxidr_store::self_test(&probe_dir))
            .await
            .unwrap_or_else(|e| Err(format!("the self-test did not finish: {e}")));
        match &outcome {
            Ok(()) => info!("Storage self-test passed."),
            Err(e) => error!(error = %e, "Storage self-test failed."),
        }
        *result
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = outcome.err();
    }
}

/// Refreshes the status snapshot and the LEDs (the LED thread turns SYSTEM steady if this
/// stops being called: a hung firmware shows).
async fn publish(
    cache: &StatusCache,
    store: &Store,
    phase: &Phase,
    view: &View<'_>,
    board: Option<&boxidr_board::StartedBoard>,
) {
    let context = crate::facts::Context {
        uptime_secs: view.started.elapsed().as_secs(),
        setup_complete: matches!(store.get_secret(settings::PASSWORD_HASH).await, Ok(Some(_))),
        not_collecting: match phase {
            Phase::NotConnected(reason) => Some(reason.clone()),
            _ => None,
        },
        clock: boxidr_health::ClockFacts {
            synchronised: view.clock_wait.is_none(),
            waiting_secs: view.clock_wait.map_or(0, |t| t.elapsed().as_secs()),
        },
        gpio_error: view.gpio_error.clone(),
        storage_self_test: view
            .self_test
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    };
    let watches = match phase {
        Phase::Running(w) => Some(w),
        _ => None,
    };
    let facts = crate::facts::gather(store, watches, context).await;
    let health = boxidr_health::assess(&facts);
    let frame = boxidr_health::led_frame(&health);
    let leds = board.map(|board| {
        board.handle.show(frame);
        board
            .handle
            .set_summary(boxidr_health::summary_frame(&health));
        boxidr_health::LedsReport {
            frame,
            render: board.handle.status().render(),
        }
    });
    let stage = match phase {
        Phase::WaitingForTime => crate::report::Stage::WaitingForTime,
        Phase::NotConnected(reason) => crate::report::Stage::NotConnected(reason),
        Phase::Running(w) => crate::report::Stage::Running(w),
    };
    let parts = crate::report::Parts {
        stage,
        uptime_secs: view.started.elapsed().as_secs(),
        facts,
        health,
        leds,
        watchdog: view.watchdog.report(),
    };
    cache.set(crate::report::build(store, parts).await);
}

/// The board crate's settings from `[board]`: the backend, and the chip, lines and polarities
/// that override the detected board's wiring.
pub fn board_config(board: &boxidr_config::Board) -> Result<boxidr_board::BoardConfig, String> {
    let backend = board
        .backend
        .parse()
        .map_err(|e: String| format!("board.backend: {e}"))?;
    let button = match &board.button {
        Some(line) => Some(line.line().map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(boxidr_board::BoardConfig {
        backend,
        pins: boxidr_board::PinOverrides {
            leds: board.leds,
            button,
            led_active_low: board.led_active_low,
            button_active_high: board.button_active_high,
            chip: board.chip.clone(),
            act_led: None,
        },
        ..boxidr_board::BoardConfig::default()
    })
}

/// Opens the LEDs and the reset button (falling back to the simulated board with the reason).
fn start_board(
    config: &Config,
    events: mpsc::UnboundedSender<boxidr_board::ButtonEvent>,
) -> Result<boxidr_board::StartedBoard, String> {
    let board_config = board_config(&config.board)?;
    let started = boxidr_board::start(
        &board_config,
        Box::new(move |event| {
            let _ = events.send(event);
        }),
    )
    .map_err(|e| format!("cannot start the LED thread: {e}"))?;
    if let Some(problem) = &started.problem {
        warn!(%problem, "No physical LEDs; the status page shows them.");
    }
    Ok(started)
}

/// Handles a reset-button event; `true` when the pipeline must be rebuilt (factory reset).
async fn on_button(
    event: boxidr_board::ButtonEvent,
    setup: Option<&SetupServer>,
    store: &Store,
    config: &Config,
    code_file: &mut CodeFileState,
) -> bool {
    match event {
        boxidr_board::ButtonEvent::FactoryResetRequested => {
            factory_reset(setup, store, config, code_file, "the reset button")
                .await
                .is_ok()
        }
        other => {
            info!(?other, "Reset button.");
            false
        }
    }
}

/// Carries out a control-socket command; `true` when the pipeline must be rebuilt.
async fn on_control(
    request: control::Request,
    setup: Option<&SetupServer>,
    store: &Store,
    config: &Config,
    code_file: &mut CodeFileState,
) -> bool {
    match request {
        control::Request::SetupCode(reply) => {
            let code = match setup {
                Some(setup) => setup.setup_code().await,
                None => boxidr_setup::setup_code(store).await,
            };
            let fingerprint = boxidr_setup::certificate_fingerprint(store).await;
            let answer = match (code, fingerprint) {
                (Ok(code), Ok(fingerprint)) => {
                    if let Some(code) = &code {
                        warn!(
                            "A new setup code was issued through `boxidr setup-code`; the previous one no longer works."
                        );
                        code_file.issued(code, setup, &fingerprint);
                    }
                    let mut answer = setup_code_json(code.as_ref(), &fingerprint);
                    answer["url"] = json!(setup.map(|s| format!("https://{}/", s.local_addr())));
                    answer
                }
                (Err(e), _) | (_, Err(e)) => json!({ "error": e.to_string() }),
            };
            let _ = reply.send(answer);
            false
        }
        control::Request::FactoryReset(reply) => {
            let outcome =
                factory_reset(setup, store, config, code_file, "`boxidr factory-reset`").await;
            let _ = reply.send(match &outcome {
                Ok(report) => reset_json(report),
                Err(e) => json!({ "error": e }),
            });
            outcome.is_ok()
        }
    }
}

/// Factory reset through the running page (so its sessions end too), or on the store alone
/// when the page could not start.
async fn factory_reset(
    setup: Option<&SetupServer>,
    store: &Store,
    config: &Config,
    code_file: &mut CodeFileState,
    by: &str,
) -> Result<boxidr_setup::ResetReport, String> {
    let outcome = match setup {
        Some(setup) => setup.factory_reset().await,
        None => boxidr_setup::factory_reset(store, config).await,
    };
    match outcome {
        Ok(report) => {
            warn!(by, fingerprint = %report.fingerprint, revoked = ?report.box_revocation, "Factory reset.");
            info!(
                code = report.setup_code.as_str(),
                "Setup code (one use; it claims this appliance)."
            );
            code_file.issued(&report.setup_code, setup, &report.fingerprint);
            Ok(report)
        }
        Err(e) => {
            error!(by, error = %e, "Factory reset failed.");
            Err(e.to_string())
        }
    }
}

/// The `[setup] code_file` and whether it holds a live code (so the claim is looked for).
#[derive(Debug)]
struct CodeFileState {
    file: Option<crate::code_file::CodeFile>,
    holds_code: bool,
}

impl CodeFileState {
    /// A new code was issued: the file is rewritten with it.
    fn issued(
        &mut self,
        code: &boxidr_setup::SetupCode,
        setup: Option<&SetupServer>,
        fingerprint: &str,
    ) {
        let Some(file) = &self.file else { return };
        let urls = setup.map_or_else(Vec::new, |s| {
            crate::code_file::page_urls(s.local_addr(), crate::code_file::hostname().as_deref())
        });
        match file.write(code.as_str(), &urls, fingerprint) {
            Ok(()) => {
                info!(path = %file.path().display(), "Setup code written to the code file.");
                self.holds_code = true;
            }
            Err(e) => {
                error!(path = %file.path().display(), error = %e, "Cannot write the setup code file.");
            }
        }
    }

    /// The appliance is claimed: the file goes.
    fn claimed(&mut self) {
        let Some(file) = &self.file else { return };
        // One attempt per claim: a failure is logged once, not every status round.
        self.holds_code = false;
        if let Err(e) = file.claimed() {
            error!(path = %file.path().display(), error = %e,
                "Cannot remove or overwrite the setup code file: remove it by hand.");
        }
    }

    /// Removes the file once an admin password is set (the page claimed the appliance).
    async fn check_claimed(&mut self, store: &Store) {
        if !self.holds_code {
            return;
        }
        if let Ok(Some(_)) = store.get_secret(settings::PASSWORD_HASH).await {
            info!("The appliance is claimed; removing the setup code file.");
            self.claimed();
        }
    }
}

/// What `boxidr setup-code` prints: the new code (`None` once claimed) and the fingerprint.
pub fn setup_code_json(code: Option<&boxidr_setup::SetupCode>, fingerprint: &str) -> Value {
    json!({
        "claimed": code.is_none(),
        "setup_code": code.map(boxidr_setup::SetupCode::as_str),
        "fingerprint": fingerprint,
    })
}

/// What `boxidr factory-reset` prints.
pub fn reset_json(report: &boxidr_setup::ResetReport) -> Value {
    json!({
        "reset": true,
        "setup_code": report.setup_code.as_str(),
        "fingerprint": report.fingerprint,
        "box_token_revoked": match &report.box_revocation {
            None => Value::from("nothing to revoke"),
            Some(Ok(())) => Value::from(true),
            Some(Err(e)) => Value::from(format!("failed: {e}")),
        },
    })
}
