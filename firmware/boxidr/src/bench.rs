//! `boxidr bench`: the end-to-end benchmark (a command, not a timed test).
//!
//! Starts the Box simulator with a backlog of `--events` events (and no live activity) and the
//! InsightIDR simulator on loopback, provisions a throw-away appliance exactly as `demo` does
//! (same bootstrap file, same stored secrets), then runs the real collector as a CHILD PROCESS
//! (`boxidr run`, durable commits as in production) so its memory is its own. It waits until
//! every Box event has reached Log Search as a raw record and neither sink has anything left
//! in the queue (so every login's UEF line has been written to the Collector), measured at the
//! simulators and through the service's control socket, and prints: events, wall time,
//! end-to-end events per second, the collector's peak RSS (`VmHWM` from `/proc/<pid>/status`)
//! and the store file's size.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::BenchArgs;
use crate::demo;
use crate::exit::ExitCode;

/// How often delivery is checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The figures of one run (`--json` prints this object).
#[derive(Debug, Serialize)]
struct Figures {
    events: u64,
    /// Distinct Box events the Collector simulator accepted as UEF (the logins).
    uef_delivered: u64,
    /// Distinct Box events Log Search received as raw records (all of them).
    logsearch_delivered: u64,
    /// Re-deliveries seen at the simulators (both sinks).
    duplicates: u64,
    /// UEF lines the Collector simulator discarded as invalid.
    uef_rejected: u64,
    /// From starting the collector until the last event was delivered to both sinks.
    wall_secs: f64,
    /// `events / wall_secs`: Box simulator to InsightIDR simulator, both sinks.
    events_per_sec: f64,
    /// Peak resident set of the collector process (`VmHWM`), KiB.
    peak_rss_kib: u64,
    /// Size of the store file at the end, bytes.
    store_bytes: u64,
}

pub async fn bench(args: BenchArgs) -> ExitCode {
    match measure(&args).await {
        Ok(figures) => {
            if args.json {
                match serde_json::to_string(&figures) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("boxidr bench: {e}");
                        return ExitCode::Failure;
                    }
                }
            } else {
                print_table(&figures);
            }
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("boxidr bench: {e:#}");
            ExitCode::Failure
        }
    }
}

async fn measure(args: &BenchArgs) -> anyhow::Result<Figures> {
    if args.events == 0 {
        anyhow::bail!("--events must be at least 1");
    }
    let mut box_config = box_sim::SimConfig {
        rate: 0.0,
        backlog: args.events,
        seed: args.seed,
        ..box_sim::SimConfig::default()
    };
    box_config
        .redirect_uris
        .push(demo::SCRIPTED_REDIRECT.to_owned());
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let box_sim = box_sim::BoxSim::start(box_config.clone(), loopback).await?;
    let idr_sim = idr_sim::IdrSim::start(
        idr_sim::SimConfig {
            logsearch_tls: true,
            ..idr_sim::SimConfig::default()
        },
        idr_sim::Listen::default(),
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let config = demo::appliance_config(dir.path(), 0, &box_sim, &idr_sim)?;
    let config_path = dir.path().join("boxidr.toml");
    boxidr_setup::write_atomically(&config_path, &config)?;
    let auth = demo::auth_client(&config, &box_config)?;
    demo::provision(&config, &auth, &box_config, &idr_sim).await?;
    let generated: BTreeSet<String> = box_sim.generated_ids().into_iter().collect();
    let events = u64::try_from(generated.len()).unwrap_or(u64::MAX);
    if !args.json {
        println!(
            "boxidr bench: {events} Box events waiting; starting the collector (`boxidr run`)..."
        );
    }

    let started = Instant::now();
    let mut child = spawn_collector(&config_path, dir.path())?;
    let pid = child.id();
    let outcome = wait_delivered(&generated, &idr_sim, &config.data_dir, &mut child, args).await;
    let wall = started.elapsed();
    let peak_rss_kib = peak_rss_kib(pid);
    terminate(&mut child);
    outcome?;
    let peak_rss_kib = peak_rss_kib?;
    let store_bytes = std::fs::metadata(config.database_path())?.len();

    let counts = idr_sim.delivery_counts();
    let uef = counts.uef.ids();
    let raw = counts.logsearch.ids();
    let wall_secs = wall.as_secs_f64();
    let figures = Figures {
        events,
        uef_delivered: demo::count(generated.iter().filter(|id| uef.contains(*id)).count()),
        logsearch_delivered: demo::count(generated.iter().filter(|id| raw.contains(*id)).count()),
        duplicates: counts.uef.duplicates() + counts.logsearch.duplicates(),
        uef_rejected: demo::count(idr_sim.uef_rejected().len()),
        wall_secs: (wall_secs * 1000.0).round() / 1000.0,
        events_per_sec: (events as f64 / wall_secs * 10.0).round() / 10.0,
        peak_rss_kib,
        store_bytes,
    };
    idr_sim.shutdown().await;
    box_sim.shutdown().await;
    Ok(figures)
}

/// `boxidr run` on the generated bootstrap file, its log in the data directory's parent.
fn spawn_collector(config_path: &Path, dir: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join("run.log"))?;
    Ok(Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(config_path)
        .arg("--log")
        .arg("warn")
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// Until every generated event reached Log Search and the service reports nothing pending
/// for either sink (the Collector has written every UEF line), or `--timeout`.
async fn wait_delivered(
    generated: &BTreeSet<String>,
    idr_sim: &idr_sim::SimHandle,
    data_dir: &Path,
    child: &mut Child,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let until = Instant::now() + args.timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the collector exited early ({status}); see its log");
        }
        let raw = idr_sim.delivery_counts().logsearch.ids();
        if generated.iter().all(|id| raw.contains(id)) {
            let doc = crate::control::ask_status(data_dir).await.ok().flatten();
            if doc.as_ref().is_some_and(nothing_pending) {
                return Ok(());
            }
        }
        if Instant::now() >= until {
            let missing = generated.iter().filter(|id| !raw.contains(*id)).count();
            anyhow::bail!(
                "not delivered within {}: {missing} events missing at Log Search",
                humantime::format_duration(args.timeout)
            );
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Both sinks enabled and caught up, per the service's own status document.
fn nothing_pending(doc: &Value) -> bool {
    ["collector", "log_search"].iter().all(|sink| {
        let s = &doc["store"]["sinks"][sink];
        s["enabled"] == Value::Bool(true) && s["pending"].as_u64() == Some(0)
    })
}

/// `VmHWM` (peak resident set) of a process, KiB.
fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// SIGTERM (a clean stop, as systemd does), then wait.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn print_table(f: &Figures) {
    println!("events                      {}", f.events);
    println!(
        "delivered                   Log Search {} raw, Collector {} UEF logins",
        f.logsearch_delivered, f.uef_delivered
    );
    println!("duplicates                  {}", f.duplicates);
    println!("invalid UEF                 {}", f.uef_rejected);
    println!("wall time                   {:.3} s", f.wall_secs);
    println!(
        "end to end                  {:.1} events/s (Box sim -> InsightIDR sim, both sinks)",
        f.events_per_sec
    );
    println!(
        "collector peak RSS          {:.1} MiB",
        f.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "store file                  {:.1} MiB",
        f.store_bytes as f64 / (1024.0 * 1024.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `VmHWM` is read from this very process (always present on Linux).
    #[test]
    fn reads_own_peak_rss() {
        let kib = peak_rss_kib(std::process::id()).expect("VmHWM");
        assert!(kib > 0);
    }

    /// Caught up means both sinks enabled with nothing pending.
    #[test]
    fn pending_from_the_status_document() {
        let doc = |c: Value, l: Value| serde_json::json!({"store": {"sinks": {"collector": c, "log_search": l}}});
        let done = serde_json::json!({"enabled": true, "pending": 0});
        let busy = serde_json::json!({"enabled": true, "pending": 3});
        assert!(nothing_pending(&doc(done.clone(), done.clone())));
        assert!(!nothing_pending(&doc(done.clone(), busy)));
        assert!(!nothing_pending(&doc(done, Value::Null)));
    }
}
