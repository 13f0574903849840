//! The newcomer's tour (`boxidr-demo`). Starts the Box and InsightIDR simulators on loopback and
//! runs the real appliance service against them (the same supervisor systemd starts: store,
//! pipeline, setup page, control socket, health and a simulated LED board), so events flow and
//! the setup page can be clicked through. The demo plays the Box admin once (it grants consent
//! on the simulated Box consent page) and then, unless `--no-faults`, injects faults (Box
//! outage, InsightIDR outage, Box authorisation revoked) so the LEDs can be seen to change.
//! `--auto --json` ends with a summary of what was generated, collected and delivered, measured
//! at the simulators.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use boxidr::exit::ExitCode;
use boxidr::service::{self, Embedding, Started, shutdown_signal};
use boxidr::status::StatusCache;
use boxidr_boxapi::{AuthClient, Grant};
use boxidr_health::{SinkStateName, StatusReport, VerifierState};
use boxidr_model::LedFrame;
use boxidr_normalize::canary::is_canary_id;
use boxidr_setup::BoxConnection;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::DemoArgs;
use crate::provision::{SCRIPTED_REDIRECT, appliance_config, auth_client, consent, provision};

/// How long the end of a run waits for the queue to drain after generation pauses.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// The status line's period.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// The last line of `demo --auto --json`.
#[derive(Debug, Serialize)]
struct Summary {
    box_events_generated: u64,
    collected: u64,
    delivered: Delivered,
    lost: u64,
    duplicates: u64,
    /// UEF lines the Collector simulator discarded as invalid (InsightIDR would drop them silently).
    uef_rejected: u64,
    /// The delivery verifier's canary: `confirmed` when both paths were seen through the
    /// Platform API (canaries are not Box events and are counted nowhere else).
    canary: String,
    /// What the LEDs showed during each injected fault (only with faults).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fault_tour: Vec<Phase>,
    /// The LEDs at the end of the run.
    leds_at_end: Option<LedFrame>,
}

#[derive(Debug, Serialize)]
struct Delivered {
    /// Distinct Box events delivered as UEF ingress (logins) to the Collector.
    uef: u64,
    /// Distinct Box events delivered as raw records to Log Search.
    logsearch: u64,
}

/// One injected fault and what the appliance showed meanwhile.
#[derive(Debug, Serialize)]
struct Phase {
    fault: &'static str,
    /// LED frames seen while the fault was active (and until the next step).
    leds_seen: Vec<LedFrame>,
    /// Health problem codes seen meanwhile.
    problems_seen: BTreeSet<String>,
}

/// The scripted faults, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    BoxOutage,
    InsightIdrOutage,
    AuthRevoked,
    Reconnect,
    Done,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Self::BoxOutage => "box_outage",
            Self::InsightIdrOutage => "insightidr_outage",
            Self::AuthRevoked => "box_authorisation_revoked",
            Self::Reconnect => "box_reconnected",
            Self::Done => "done",
        }
    }

    fn next(self) -> Self {
        match self {
            Self::BoxOutage => Self::InsightIdrOutage,
            Self::InsightIdrOutage => Self::AuthRevoked,
            Self::AuthRevoked => Self::Reconnect,
            Self::Reconnect | Self::Done => Self::Done,
        }
    }
}

/// When each step starts (from the start of the run) and how long outages last.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    first: Duration,
    gap: Duration,
    outage: Duration,
}

impl Schedule {
    /// Interactive runs leave time to look; automatic runs fit the tour into `run`.
    fn new(run: Option<Duration>) -> Self {
        match run {
            None => Self {
                first: Duration::from_secs(40),
                gap: Duration::from_secs(45),
                outage: Duration::from_secs(25),
            },
            Some(run) => Self {
                first: run / 8,
                gap: run / 6,
                outage: run / 8,
            },
        }
    }

    fn at(&self, step: Step) -> Option<Duration> {
        let index = match step {
            Step::BoxOutage => 0,
            Step::InsightIdrOutage => 1,
            Step::AuthRevoked => 2,
            Step::Reconnect => 3,
            Step::Done => return None,
        };
        Some(self.first + self.gap * index)
    }
}

/// Runs the tour; its outcome as the process exit code.
pub async fn demo(args: DemoArgs) -> ExitCode {
    match tour(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("boxidr-demo: {e:#}");
            ExitCode::Failure
        }
    }
}

async fn tour(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=10_000.0).contains(&args.rate) {
        anyhow::bail!("--rate must be between 0 and 10000 events per second");
    }
    let port = args.port.unwrap_or(if args.auto { 0 } else { 8443 });
    let faults = if args.auto {
        args.faults
    } else {
        !args.no_faults
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut box_config = box_sim::SimConfig {
        rate: args.rate,
        backlog: args.backlog,
        seed: args.seed,
        // Box's streaming feed is at-least-once: show the appliance dropping the repeats.
        streaming_duplicate_rate: 0.05,
        ..box_sim::SimConfig::default()
    };
    // The setup page's callback, so "Connect to Box" works from the browser too.
    for host in ["127.0.0.1", "localhost"] {
        box_config
            .redirect_uris
            .push(format!("https://{host}:{port}/oauth/callback"));
    }
    box_config.redirect_uris.push(SCRIPTED_REDIRECT.to_owned());
    let box_sim = box_sim::BoxSim::start(box_config.clone(), loopback).await?;
    let idr_config = idr_sim::SimConfig {
        logsearch_tls: true,
        ..idr_sim::SimConfig::default()
    };
    let idr_sim = idr_sim::IdrSim::start(idr_config, idr_sim::Listen::default()).await?;

    // The appliance: a throw-away data directory and bootstrap file, as the image would have.
    let dir = tempfile::tempdir()?;
    let config = appliance_config(dir.path(), port, &box_sim, &idr_sim)?;
    let config_path = dir.path().join("boxidr.toml");
    boxidr_setup::write_atomically(&config_path, &config)?;
    let auth = auth_client(&config, &box_config)?;
    provision(&config, &auth, &box_config, &idr_sim).await?;

    let (started_tx, started_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let embedding = Embedding {
        stop: Some(Box::pin(async {
            let _ = stop_rx.await;
        })),
        started: Some(started_tx),
    };
    let service = tokio::spawn({
        let (path, config) = (config_path.clone(), config.clone());
        async move { service::serve_with(&path, config, embedding).await }
    });
    let Ok(started) = started_rx.await else {
        let code = service.await?;
        anyhow::bail!("the appliance service did not start ({code:?}); see the log above");
    };

    let quiet = args.auto && args.json;
    if !quiet {
        print_header(&box_sim, &idr_sim, &started, dir.path(), faults);
    }

    let mut activity = box_sim.subscribe_activity();
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let schedule = Schedule::new(
        args.duration
            .or(args.auto.then_some(Duration::from_secs(30))),
    );
    let until_deadline = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None if args.auto => tokio::time::sleep(Duration::from_secs(30)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_deadline);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut report = tokio::time::interval(REPORT_EVERY);
    let mut step = if faults { Step::BoxOutage } else { Step::Done };
    let mut tour: Vec<Phase> = Vec::new();
    let mut shown_leds: Option<LedFrame> = None;
    loop {
        let next_step = schedule.at(step).map(|at| start + at);
        tokio::select! {
            () = &mut until_deadline => break,
            _ = &mut stop => break,
            () = async { match next_step {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            } } => {
                inject(step, schedule.outage, &box_sim, &idr_sim, &auth, &started, quiet).await;
                tour.push(Phase { fault: step.name(), leds_seen: Vec::new(), problems_seen: BTreeSet::new() });
                step = step.next();
                if step == Step::Done && !quiet {
                    println!("  demo   fault tour done; the appliance runs on (Ctrl-C to stop)");
                }
            }
            item = activity.recv() => match item {
                Ok(item) if !quiet => {
                    let country = item.country.as_deref().unwrap_or("--");
                    let who = if item.login.is_empty() { "(anonymous)" } else { &item.login };
                    println!(
                        "  box    {:<44} {:<30} {:<39} {}",
                        item.event_type, who, item.ip, country
                    );
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) if !quiet => println!("  ...    {n} more events"),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            _ = report.tick() => {
                let doc = started.status.get();
                let frame = leds(&doc);
                if let Some(phase) = tour.last_mut() {
                    if let Some(frame) = frame {
                        if !phase.leds_seen.contains(&frame) {
                            phase.leds_seen.push(frame);
                        }
                    }
                    phase.problems_seen.extend(problem_codes(&doc));
                }
                if !quiet && doc.as_ref().is_some_and(|d| d.store.figures().is_some()) {
                    print_status(&doc, &idr_sim);
                    if frame.is_some() && frame != shown_leds {
                        print_leds(&doc);
                        shown_leds = frame;
                    }
                }
            },
        }
    }

    // Clear what the tour broke (an admin would have), stop the simulated activity and let the
    // appliance finish what Box already has.
    box_sim.faults().clear();
    idr_sim.faults().clear_all();
    if tour.iter().any(|p| p.fault == Step::AuthRevoked.name())
        && !tour.iter().any(|p| p.fault == Step::Reconnect.name())
    {
        inject(
            Step::Reconnect,
            schedule.outage,
            &box_sim,
            &idr_sim,
            &auth,
            &started,
            quiet,
        )
        .await;
    }
    box_sim.pause_generation(true);
    if !quiet {
        println!();
        println!("Activity paused; waiting for the appliance to deliver what it collected...");
    }
    drain(&box_sim, &started.status).await;
    let doc = started.status.get();
    let collected = box_events_appended(&doc);
    let leds_at_end = leds(&doc);
    let _ = stop_tx.send(());
    let code = service.await?;
    if code != ExitCode::Ok {
        anyhow::bail!("the appliance service stopped with {code:?}");
    }
    let mut summary = summarise(&box_sim, &idr_sim, collected, tour, leds_at_end);
    summary.canary = canary_outcome(&doc);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!();
        println!(
            "Box events generated: {}, collected: {}, delivered: UEF {} / Log Search {}, lost: {}, duplicates: {}, invalid UEF: {}, canary {}",
            summary.box_events_generated,
            summary.collected,
            summary.delivered.uef,
            summary.delivered.logsearch,
            summary.lost,
            summary.duplicates,
            summary.uef_rejected,
            summary.canary
        );
    }
    idr_sim.shutdown().await;
    box_sim.shutdown().await;
    Ok(ExitCode::Ok)
}

/// Starts one step of the fault tour.
async fn inject(
    step: Step,
    outage: Duration,
    box_sim: &box_sim::SimHandle,
    idr_sim: &idr_sim::SimHandle,
    auth: &AuthClient,
    started: &Started,
    quiet: bool,
) {
    let say = |text: String| {
        if !quiet {
            println!("  demo   {text}");
        }
    };
    match step {
        Step::BoxOutage => {
            box_sim.faults().add(
                box_sim::Fault::new(box_sim::FaultKind::Outage {
                    mode: box_sim::OutageMode::Refuse,
                })
                .for_duration(outage),
            );
            say(format!(
                "FAULT 1/3: Box API unreachable for {}s: watch the BOX LED",
                outage.as_secs()
            ));
        }
        Step::InsightIdrOutage => {
            let faults = idr_sim.faults();
            let specs = [
                idr_sim::FaultSpec::new(idr_sim::Surface::Uef, idr_sim::FaultKind::Down),
                idr_sim::FaultSpec::new(
                    idr_sim::Surface::Logsearch,
                    idr_sim::FaultKind::Status {
                        status: 503,
                        retry_after_secs: None,
                    },
                ),
            ];
            for spec in specs {
                if let Err(e) = faults.set(spec.for_duration(outage)) {
                    say(format!("cannot inject the InsightIDR outage: {e}"));
                }
            }
            say(format!(
                "FAULT 2/3: InsightIDR Collector and Log Search down for {}s: watch the INSIGHTIDR LED",
                outage.as_secs()
            ));
        }
        Step::AuthRevoked => {
            box_sim.revoke_all_tokens();
            say("FAULT 3/3: the Box authorisation was revoked (as an admin removing the app would): BOX and ATTENTION LEDs. Reconnect on the setup page (Box connection, Connect to Box), or the demo reconnects shortly".to_owned());
        }
        Step::Reconnect => match consent(auth).await {
            Ok(tokens) => {
                let connection = BoxConnection {
                    auth: auth.clone(),
                    grant: Grant::AuthorizationCode,
                    tokens,
                };
                let _ = started.connect.send(connection);
                say("the demo granted Box consent again (as the admin would on the setup page); collection resumes from its cursor".to_owned());
            }
            Err(e) => say(format!("cannot reconnect to Box: {e:#}")),
        },
        Step::Done => {}
    }
}

fn print_header(
    box_sim: &box_sim::SimHandle,
    idr_sim: &idr_sim::SimHandle,
    started: &Started,
    dir: &Path,
    faults: bool,
) {
    println!("boxidr-demo: the appliance service between two simulators, all on loopback");
    println!("  Box API          {}", box_sim.api_base());
    println!("  Box OAuth        {}", box_sim.authorize_url());
    println!("  Box sim control  http://{}/_sim/stats", box_sim.addr());
    println!("  InsightIDR Collector (UEF, TLS)  {}", idr_sim.uef_addr());
    println!(
        "  InsightIDR Log Search ingest     {}/v1/noformat/<token>",
        idr_sim.logsearch_base()
    );
    println!("  InsightIDR Platform API          {}", idr_sim.api_base());
    println!("  appliance data   {}", dir.join("data").display());
    println!();
    match &started.setup_url {
        Some(url) => {
            println!("Setup page: {url}");
            if let Some(fingerprint) = &started.fingerprint {
                println!("  certificate SHA-256 {fingerprint}");
                println!("  (self-signed: compare this fingerprint with the browser's warning)");
            }
            match &started.setup_code {
                Some(code) => println!("  setup code  {code}   (one use: it claims the appliance)"),
                None => println!("  already claimed"),
            }
        }
        None => println!("Setup page: not running (see the log above)"),
    }
    println!();
    if faults {
        println!(
            "A fault tour starts shortly (Box outage, InsightIDR outage, Box authorisation revoked); `--no-faults` skips it."
        );
    }
    println!("Live simulated Box activity (Ctrl-C to stop):");
}

/// The LED frame of a status report.
fn leds(doc: &Report) -> Option<LedFrame> {
    doc.as_ref().and_then(|d| d.leds.as_ref()).map(|l| l.frame)
}

/// The latest status report, `None` before the first.
type Report = Option<StatusReport>;

fn problem_codes(doc: &Report) -> Vec<String> {
    doc.iter()
        .flat_map(|d| &d.health.problems)
        .map(|p| p.code.as_str().to_owned())
        .collect()
}

fn print_leds(doc: &Report) {
    let Some(frame) = leds(doc) else { return };
    let look = |look: boxidr_model::LedLook| {
        serde_json::to_value(look)
            .ok()
            .map(|v| match v {
                Value::String(s) => s.replace('_', " "),
                other => other
                    .to_string()
                    .replace(['{', '}', '"'], "")
                    .replace(':', " "),
            })
            .unwrap_or_default()
    };
    println!(
        "  leds   SYSTEM {} | BOX {} | INSIGHTIDR {} | ATTENTION {}",
        look(frame.system),
        look(frame.box_link),
        look(frame.insightidr),
        look(frame.attention)
    );
    for p in doc.iter().flat_map(|d| &d.health.problems).take(3) {
        println!(
            "         why: {}{}",
            p.message,
            p.fix
                .as_deref()
                .map(|f| format!(" (fix: {f})"))
                .unwrap_or_default()
        );
    }
}

fn print_status(doc: &Report, idr: &idr_sim::SimHandle) {
    let Some(report) = doc else { return };
    let sink = |s: Option<&boxidr_health::SinkReport>| match s {
        Some(s)
            if matches!(
                s.state,
                SinkStateName::Retrying | SinkStateName::ConfigError
            ) =>
        {
            format!(
                "{} ({})",
                serde_json::to_value(s.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                s.detail.as_deref().unwrap_or("")
            )
        }
        Some(s) => format!("{} sent", s.delivered),
        None => "-".to_owned(),
    };
    let counts = idr.delivery_counts();
    let state = report.state.as_str();
    let reason = report
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let store = report.store.figures();
    let number = |n: Option<u64>| n.map_or_else(|| "null".to_owned(), |n| n.to_string());
    let sinks = report.sinks.as_ref();
    println!(
        "  boxidr {state}{reason}: collected {} ({} repeats dropped), queue {} | UEF {} | Log Search {} | seen by InsightIDR: {} logins, {} raw",
        box_events_appended(doc),
        number(store.and_then(|s| s.counters.events_duplicate)),
        number(store.map(|s| s.queue_records)),
        sink(sinks.map(|s| &s.collector)),
        sink(sinks.map(|s| &s.log_search)),
        counts.uef.ids().len(),
        counts.logsearch.ids().len(),
    );
}

/// Waits (bounded) until every generated event is collected and no sink has anything pending.
async fn drain(box_sim: &box_sim::SimHandle, status: &StatusCache) {
    let until = Instant::now() + DRAIN_DEADLINE;
    while Instant::now() < until {
        let doc = status.get();
        let collected = box_events_appended(&doc);
        let pending: u64 = doc
            .as_ref()
            .and_then(|d| d.store.figures())
            .map_or(u64::MAX, |store| {
                store
                    .sinks
                    .values()
                    .filter(|s| s.enabled)
                    .map(|s| s.pending)
                    .sum()
            });
        if collected >= box_sim.events_generated() && pending == 0 && canary_settled(&doc) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Counts measured at the simulators, never inferred from the appliance's own claims.
fn summarise(
    box_sim: &box_sim::SimHandle,
    idr_sim: &idr_sim::SimHandle,
    collected: u64,
    fault_tour: Vec<Phase>,
    leds_at_end: Option<LedFrame>,
) -> Summary {
    let generated: BTreeSet<String> = box_sim.generated_ids().into_iter().collect();
    let counts = idr_sim.delivery_counts();
    // The verifier's canaries reach the simulator too; they are not Box events.
    let box_only = |c: &idr_sim::SinkCounts| -> (BTreeSet<String>, u64) {
        let ids = c.ids().into_iter().filter(|id| !is_canary_id(id)).collect();
        let repeats = c
            .duplicated_ids()
            .iter()
            .filter(|(id, _)| !is_canary_id(id))
            .map(|(_, n)| n - 1)
            .sum();
        (ids, repeats)
    };
    let (collector, uef_repeats) = box_only(&counts.uef);
    let (log_search, raw_repeats) = box_only(&counts.logsearch);
    let lost = generated
        .iter()
        .filter(|id| !collector.contains(*id) && !log_search.contains(*id))
        .count();
    Summary {
        box_events_generated: box_sim.events_generated(),
        collected,
        delivered: Delivered {
            uef: count(collector.len()),
            logsearch: count(log_search.len()),
        },
        lost: count(lost),
        duplicates: uef_repeats + raw_repeats,
        uef_rejected: count(idr_sim.uef_rejected().len()),
        canary: String::new(),
        fault_tour,
        leds_at_end,
    }
}

/// Box events queued: the store's append counter less the verifier's canary records.
fn box_events_appended(doc: &Report) -> u64 {
    let counters = doc
        .as_ref()
        .and_then(|d| d.store.figures())
        .map(|s| s.counters)
        .unwrap_or_default();
    counters
        .events_appended
        .unwrap_or(0)
        .saturating_sub(counters.canary_records.unwrap_or(0))
}

/// The verifier's state of both paths (`NotConfigured` while it does not run).
fn canary_states(doc: &Report) -> [VerifierState; 2] {
    doc.as_ref()
        .and_then(|d| d.verifier.as_ref())
        .map_or([VerifierState::NotConfigured; 2], |v| {
            [v.collector, v.log_search]
        })
}

/// Whether no canary is pending (each path confirmed, not seen, or not verified).
fn canary_settled(doc: &Report) -> bool {
    canary_states(doc)
        .iter()
        .all(|s| !matches!(s, VerifierState::Pending { .. }))
}

/// `confirmed` (both paths seen in InsightIDR), else each path's state.
fn canary_outcome(doc: &Report) -> String {
    let name = |state: VerifierState| match state {
        VerifierState::NotConfigured => "not_configured",
        VerifierState::Confirmed { .. } => "confirmed",
        VerifierState::Pending { .. } => "pending",
        VerifierState::NotSeen { .. } => "not_seen",
    };
    let [uef, raw] = canary_states(doc).map(name);
    if uef == "confirmed" && raw == "confirmed" {
        "confirmed".to_owned()
    } else {
        format!("UEF {uef}, Log Search {raw}")
    }
}

/// A count as the summaries print it.
pub fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The automatic tour fits in the run and leaves time to recover before the end.
    #[test]
    fn schedule_fits_the_run() {
        let run = Duration::from_secs(60);
        let s = Schedule::new(Some(run));
        let reconnect = s.at(Step::Reconnect).unwrap();
        assert!(reconnect + s.outage < run, "{s:?}");
        assert!(s.at(Step::BoxOutage).unwrap() + s.outage < s.at(Step::InsightIdrOutage).unwrap());
        assert_eq!(s.at(Step::Done), None);
        let mut step = Step::BoxOutage;
        let mut names = Vec::new();
        while step != Step::Done {
            names.push(step.name());
            step = step.next();
        }
        assert_eq!(names.len(), 4);
    }
}
