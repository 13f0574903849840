//! The `boxidr` commands (`run`, `status`, `setup-code`, `factory-reset`, `config check`,
//! `leds`): each loads what it needs, does its one thing, and returns its documented exit code
//! ([`crate::exit`]). `run` hands over to [`crate::service`].

use std::path::Path;

use boxidr_config::Config;
use boxidr_health::{
    ProgressKind, ProgressReport, ServiceState, ServiceStatus, StoppedReport, StoreSection,
    WatchdogReport,
};
use tracing::info;

pub use crate::config_file::LoadError;
use crate::config_file::Location;
use crate::exit::{ExitCode, StartError};

/// Reads the configuration the service uses, without writing anything (see
/// [`crate::config_file`]). The default location may be absent (built-in defaults apply); a
/// path the operator named explicitly must exist.
pub fn load_config(path: &Path) -> Result<Config, LoadError> {
    Location::from_cli(path).load()
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(config_path: &Path) -> ExitCode {
    let location = Location::from_cli(config_path);
    let config = match location.load_for_service() {
        Ok(config) => config,
        Err(e) => {
            // The board section may be what is wrong: the LEDs use the default wiring.
            let board = crate::service::board_config(&boxidr_config::Board::default()).ok();
            return crate::exit::refuse_start(&StartError::Config(e), board).await;
        }
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        database = %config.database_path().display(),
        stream = %config.events.stream_type,
        "boxidr starting."
    );
    crate::service::serve(config_path, config).await
}

/// `boxidr config check`: every problem of the file (and of the files it names), each with
/// its key path; nothing is started and nothing is written.
pub fn config_check(path: &Path) -> ExitCode {
    // The file the service would read: the writable one, or the provisioning file it would be
    // seeded from.
    let location = Location::from_cli(path);
    let path = location.effective();
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && location.provisioning.is_some() => {
            println!("{shown}: no such file; the built-in defaults apply and are valid");
            return ExitCode::Ok;
        }
        Err(e) => {
            eprintln!("{shown}: cannot read: {e}");
            return ExitCode::Config;
        }
    };
    let mut problems = match boxidr_config::check_toml(&text) {
        Ok(config) => config
            .referenced_files()
            .into_iter()
            .filter_map(|(key, file)| {
                std::fs::metadata(file)
                    .err()
                    .map(|e| boxidr_config::Problem {
                        key: key.to_owned(),
                        message: format!("cannot read {}: {e}", file.display()),
                    })
            })
            .collect(),
        Err(problems) => problems,
    };
    if let Ok(config) = Config::from_toml(&text) {
        for warning in config.warnings() {
            println!("{shown}: warning: {warning}");
        }
    }
    if problems.is_empty() {
        println!("{shown}: configuration is valid");
        return ExitCode::Ok;
    }
    problems.dedup();
    for problem in &problems {
        eprintln!("{shown}: {problem}");
    }
    eprintln!(
        "{shown}: {} error(s); configuration check failed",
        problems.len()
    );
    ExitCode::Config
}

/// `boxidr leds --test`: the lamp test on the configured (or given) backend.
pub fn leds(config_path: &Path, args: &crate::cli::LedsArgs) -> ExitCode {
    if !args.test {
        eprintln!("boxidr leds: nothing to do; use --test to cycle every LED");
        return ExitCode::Usage;
    }
    // The configured wiring (`[board]` chip and lines) applies to the lamp test too.
    let mut board = match load_config(config_path) {
        Ok(config) => config.board,
        Err(e) if args.backend.is_none() => {
            eprintln!("boxidr leds: {e}");
            return ExitCode::Config;
        }
        Err(_) => boxidr_config::Board::default(),
    };
    if let Some(name) = &args.backend {
        board.backend.clone_from(name);
    }
    let config = match crate::service::board_config(&board) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("boxidr leds: {e}");
            return ExitCode::Usage;
        }
    };
    match boxidr_board::leds_test(&config, !args.fast, &mut |line| println!("{line}")) {
        Ok(report) => {
            let board = report
                .board
                .map_or_else(|| "unknown board".to_owned(), |b| format!("{b:?}"));
            println!(
                "lamp test done: {} steps on the {:?} backend ({board})",
                report.steps, report.kind
            );
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("boxidr leds: {e}");
            ExitCode::Failure
        }
    }
}

/// `boxidr status`: from the running service over the control socket, else from the store.
pub async fn status(config_path: &Path, args: crate::cli::StatusArgs) -> ExitCode {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => match load_config(config_path) {
            Ok(config) => config.data_dir,
            Err(e) => {
                eprintln!("boxidr status: {e}");
                return ExitCode::Config;
            }
        },
    };
    let Some(doc) = from_service_or_store(&data_dir, "status", stopped_status(&data_dir)).await
    else {
        return ExitCode::Failure;
    };
    if args.json {
        println!("{doc}");
        return ExitCode::Ok;
    }
    if doc.is_null() {
        println!("service: running (it has not reported its status yet)");
        return ExitCode::Ok;
    }
    match serde_json::from_value::<ServiceStatus>(doc) {
        Ok(status) => {
            print_summary(&status);
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("boxidr status: the service's answer is not a status report: {e}");
            ExitCode::Failure
        }
    }
}

/// `boxidr setup-code`: asks the running service (so its page accepts the new code at once),
/// or issues the code in the store when the service is stopped.
pub async fn setup_code(config_path: &Path, args: crate::cli::DataArgs) -> ExitCode {
    let Ok(config) = config_or_data(config_path, "setup-code", args.data_dir) else {
        return ExitCode::Config;
    };
    let offline = offline_setup_code(&config);
    let Some(answer) = from_service_or_store(&config.data_dir, "setup-code", offline).await else {
        return ExitCode::Failure;
    };
    if answer["claimed"] == serde_json::Value::Bool(true) {
        println!(
            "This appliance is already claimed: log in with the admin password, or run \
             `boxidr factory-reset --yes` to start over."
        );
    } else {
        println!("Setup code (one use): {}", text(&answer["setup_code"]));
        println!("Any code issued before no longer works.");
    }
    println!(
        "Setup page certificate SHA-256: {}",
        text(&answer["fingerprint"])
    );
    if let Some(url) = answer["url"].as_str() {
        println!("Setup page listening at {url} (use the appliance's address from your browser)");
    }
    ExitCode::Ok
}

/// `boxidr factory-reset --yes`: through the running service (its sessions end too), or on the
/// store when the service is stopped.
pub async fn factory_reset(config_path: &Path, args: crate::cli::ResetArgs) -> ExitCode {
    if !args.yes {
        eprintln!(
            "boxidr factory-reset: this revokes the Box connection and wipes the admin password, \
             secrets and certificate; run again with --yes to confirm"
        );
        return ExitCode::Usage;
    }
    let Ok(config) = config_or_data(config_path, "factory-reset", args.data.data_dir) else {
        return ExitCode::Config;
    };
    let offline = offline_reset(&config);
    let Some(answer) = from_service_or_store(&config.data_dir, "factory-reset", offline).await
    else {
        return ExitCode::Failure;
    };
    println!("Factory reset done.");
    println!("Box token revoked: {}", text(&answer["box_token_revoked"]));
    println!("New setup code (one use): {}", text(&answer["setup_code"]));
    println!(
        "New setup page certificate SHA-256: {}",
        text(&answer["fingerprint"])
    );
    ExitCode::Ok
}

/// The configuration, with `--data` overriding its data directory; errors are printed.
fn config_or_data(
    config_path: &Path,
    command: &str,
    data_dir: Option<std::path::PathBuf>,
) -> Result<Config, ()> {
    let loaded = match (load_config(config_path), data_dir.is_some()) {
        (Ok(config), _) => Ok(config),
        // `--data` alone is enough for a stopped appliance without its configuration file.
        (Err(_), true) => Ok(Config::default()),
        (Err(e), false) => Err(e),
    };
    match loaded {
        Ok(mut config) => {
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            Ok(config)
        }
        Err(e) => {
            eprintln!("boxidr {command}: {e}");
            Err(())
        }
    }
}

/// Sends `command` to the running service or, when none listens, runs `offline` on its
/// stopped store. Failures (and an answer carrying `error`) are printed; `None` then.
async fn from_service_or_store(
    data_dir: &Path,
    command: &str,
    offline: impl std::future::Future<Output = anyhow::Result<serde_json::Value>>,
) -> Option<serde_json::Value> {
    let answer = match crate::control::ask(data_dir, command).await {
        Ok(Some(answer)) => answer,
        Ok(None) => match offline.await {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("boxidr {command}: {e:#}");
                return None;
            }
        },
        Err(e) => {
            eprintln!("boxidr {command}: cannot ask the service: {e}");
            return None;
        }
    };
    if let Some(error) = answer["error"].as_str() {
        eprintln!("boxidr {command}: {error}");
        return None;
    }
    Some(answer)
}

/// Opens the store of a stopped service (the file lock tells whether it really is stopped).
async fn open_stopped_store(data_dir: &Path) -> anyhow::Result<boxidr_store::Store> {
    let path = data_dir.join(boxidr_config::DATABASE_FILE);
    if !path.exists() {
        anyhow::bail!(
            "no service is running and there is no store at {}",
            path.display()
        );
    }
    Ok(boxidr_store::Store::open(boxidr_store::StoreOptions::new(&path)).await?)
}

async fn offline_setup_code(config: &Config) -> anyhow::Result<serde_json::Value> {
    let store = open_stopped_store(&config.data_dir).await?;
    let code = boxidr_setup::setup_code(&store).await;
    let fingerprint = boxidr_setup::certificate_fingerprint(&store).await;
    store.close().await?;
    let (code, fingerprint) = (code?, fingerprint?);
    if let Some(code) = &code {
        offline_code_file(config, code, &fingerprint);
    }
    Ok(crate::service::setup_code_json(code.as_ref(), &fingerprint))
}

async fn offline_reset(config: &Config) -> anyhow::Result<serde_json::Value> {
    let store = open_stopped_store(&config.data_dir).await?;
    let report = boxidr_setup::factory_reset(&store, config).await;
    store.close().await?;
    let report = report?;
    offline_code_file(config, &report.setup_code, &report.fingerprint);
    Ok(crate::service::reset_json(&report))
}

/// A code issued on the stopped appliance replaces the one in `[setup] code_file` too.
fn offline_code_file(config: &Config, code: &boxidr_setup::SetupCode, fingerprint: &str) {
    let Some(file) = crate::code_file::CodeFile::from_config(config) else {
        return;
    };
    let urls =
        crate::code_file::page_urls(config.setup.listen, crate::code_file::hostname().as_deref());
    if let Err(e) = file.write(code.as_str(), &urls, fingerprint) {
        eprintln!(
            "boxidr: cannot write the setup code file {}: {e}",
            file.path().display()
        );
    }
}

fn text(v: &serde_json::Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// The store read directly (the service is not running, so the file lock is free).
async fn stopped_status(data_dir: &Path) -> anyhow::Result<serde_json::Value> {
    let store = open_stopped_store(data_dir).await?;
    let report = StoppedReport {
        service: ServiceState::Stopped,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        store: crate::report::store_section(&store).await,
    };
    store.close().await?;
    Ok(serde_json::to_value(report)?)
}

fn print_summary(status: &ServiceStatus) {
    let report = match status {
        ServiceStatus::Running(report) => Some(report),
        ServiceStatus::Stopped(_) => None,
    };
    println!(
        "service: {}",
        match status {
            ServiceStatus::Running(r) => r.service.as_str(),
            ServiceStatus::Stopped(s) => s.service.as_str(),
        }
    );
    if let Some(report) = report {
        println!("state:   {}", report.state.as_str());
        if let Some(reason) = &report.reason {
            println!("reason:  {reason}");
        }
        let progress = report.box_.as_ref().and_then(|b| b.sweep.progress.as_ref());
        if let Some(line) = progress.map(progress_line) {
            println!("history: {line}");
        }
        println!("watchdog: {}", watchdog_line(&report.watchdog));
    }
    let store = match status.store() {
        StoreSection::Figures(store) => store,
        StoreSection::Unreadable { error } => {
            println!("queue:   cannot be read: {error}");
            return;
        }
    };
    println!(
        "queue:   {} records, {} of {} bytes ({:?}% of quota)",
        store.queue_records, store.file_bytes, store.quota_bytes, store.quota_used_percent
    );
    for (name, s) in &store.sinks {
        println!("sink {name}: enabled {}, pending {}", s.enabled, s.pending);
    }
    for (name, c) in &store.cursors {
        println!("cursor {name}: {}", c.position.as_deref().unwrap_or("null"));
    }
}

/// `[#######.............]  35.2 %  12,345 events  ETA 4m 10s` for a backfill or catch-up.
fn progress_line(progress: &ProgressReport) -> String {
    let percent = progress.percent.clamp(0.0, 100.0);
    // 0..=20 cells.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = (percent / 5.0).floor() as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(20 - filled.min(20)));
    let eta = progress.eta_secs.map_or_else(
        || "ETA not known yet".to_owned(),
        |s| {
            format!(
                "ETA {}",
                humantime::format_duration(std::time::Duration::from_secs(s))
            )
        },
    );
    let what = match progress.kind {
        ProgressKind::CatchUp => "catching up",
        ProgressKind::BackfillOrCatchUp => "reading Box history",
    };
    format!(
        "{what} [{bar}] {percent:.1} %, {} events, {eta}",
        progress.events
    )
}

/// One line on the watchdog: which supervised part is late, or that all report.
fn watchdog_line(watchdog: &WatchdogReport) -> String {
    let systemd = watchdog
        .systemd_secs
        .map_or("no systemd watchdog".to_owned(), |s| {
            format!("systemd expects a feed every {s} s")
        });
    let late: Vec<String> = watchdog
        .parts
        .iter()
        .filter(|p| p.late_by_secs.is_some())
        .map(|p| {
            format!(
                "{} (silent {} s, budget {} s)",
                p.name, p.since_report_secs, p.budget_secs
            )
        })
        .collect();
    if late.is_empty() {
        format!("ok, {} parts reporting ({systemd})", watchdog.parts.len())
    } else {
        format!(
            "LATE: {}; not feeding ({systemd}): systemd restarts the service",
            late.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing file named by the operator is an error, not silent defaults.
    #[test]
    fn explicit_missing_file_is_an_error() {
        let err = load_config(Path::new("/nonexistent/boxidr.toml")).unwrap_err();
        assert!(matches!(err, LoadError::Read { .. }), "{err}");
    }

    /// `boxidr status` draws a backfill as a bar with percent, events and ETA.
    #[test]
    fn progress_line_for_status() {
        let mut progress = ProgressReport {
            kind: ProgressKind::BackfillOrCatchUp,
            percent: 35.2,
            events: 12345,
            eta_secs: Some(250),
            from_ms: 0,
            until_ms: 0,
            covered_ms: 0,
        };
        let line = progress_line(&progress);
        assert_eq!(
            line,
            "reading Box history [#######.............] 35.2 %, 12345 events, ETA 4m 10s"
        );
        progress.kind = ProgressKind::CatchUp;
        progress.percent = 100.0;
        progress.events = 0;
        progress.eta_secs = None;
        let line = progress_line(&progress);
        assert!(
            line.starts_with("catching up [####################] 100.0 %"),
            "{line}"
        );
        assert!(line.ends_with("ETA not known yet"));
    }

    /// An invalid file names the file and the problem.
    #[test]
    fn invalid_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxidr.toml");
        std::fs::write(&path, "[events]\npage_limit = 0\n").unwrap();
        let err = load_config(&path).unwrap_err().to_string();
        assert!(
            err.contains("boxidr.toml") && err.contains("page_limit"),
            "{err}"
        );
    }
}
