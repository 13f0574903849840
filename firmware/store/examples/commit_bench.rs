//! Measures `commit_page` cost (100-event pages, Durability::Immediate) in the three commit
//! modes, on a real file: commits/s, events/s and p50/p99/max latency.
//!
//! `cargo run --release -p boxidr-store --example commit_bench -- [DIR] [PAGES] [FILL_PAGES]`
//! DIR defaults to the current directory; use the medium under test (SD card, USB SSD), never
//! tmpfs (fsync there is free and the figures mean nothing).
//!
//! With FILL_PAGES, each mode also fills a queue of FILL_PAGES unacked pages in a child process
//! that then aborts (no clean close, like kill -9), and times the reopen (repair) afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use boxidr_model::{BoxEvent, StreamPosition, StreamType};
use boxidr_store::{CursorKey, PageCommit, SinkId, StoreCore, StoreOptions};

fn event(id: &str) -> BoxEvent {
    BoxEvent::from_value(serde_json::json!({
        "source": {"type": "user", "id": "222853", "name": "Jane Doe", "login": "jane@example.com"},
        "created_by": {"type": "user", "id": "222853", "name": "Jane Doe", "login": "jane@example.com"},
        "action_by": null,
        "created_at": "2024-05-02T14:03:11-07:00",
        "event_id": id,
        "event_type": "LOGIN",
        "ip_address": "198.51.100.23",
        "type": "event",
        "session_id": null,
        "additional_details": {"service_id": "12345", "service_name": "Box Sync for Mac"}
    }))
    .expect("valid event")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn options(path: &std::path::Path, two_phase: bool, quick_repair: bool) -> StoreOptions {
    let mut options = StoreOptions::new(path);
    options.two_phase_commit = two_phase;
    options.quick_repair = quick_repair;
    options.quota_bytes = u64::MAX;
    options
}

fn page(name: &str, n: usize) -> PageCommit {
    PageCommit {
        cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
        events: (0..100)
            .map(|i| event(&format!("{name}-{n}-{i}")))
            .collect(),
        next_position: Some(StreamPosition::new(format!("{}", n + 1)).expect("pos")),
        last_created_at: None,
        window: None,
        collected_at_ms: 1_700_000_000_000,
    }
}

/// Child process: fill `pages` unacked pages, then abort without closing the database.
fn fill_and_abort(path: &std::path::Path, pages: usize, two_phase: bool, quick_repair: bool) {
    let mut core = StoreCore::open(options(path, two_phase, quick_repair)).expect("open");
    let mut tail = Vec::new();
    for n in 0..pages {
        let t = Instant::now();
        core.commit_page(page("fill", n)).expect("commit");
        if n + 100 >= pages {
            tail.push(t.elapsed());
        }
    }
    tail.sort();
    println!(
        "  (commit p50 over the last 100 pages of the fill: {:.2} ms)",
        percentile(&tail, 0.5).as_secs_f64() * 1000.0
    );
    std::process::abort();
}

/// Fills a store in a child that aborts, then times the reopen (repair) here.
fn recovery(dir: &std::path::Path, name: &str, pages: usize, two_phase: bool, quick_repair: bool) {
    let path = dir.join(format!("recovery_{name}.redb"));
    let _ = std::fs::remove_file(&path);
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--fill-and-abort",
            &path.display().to_string(),
            &pages.to_string(),
        ])
        .args([two_phase.to_string(), quick_repair.to_string()])
        .status()
        .expect("spawn child");
    assert!(!status.success(), "child must abort");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    let mut core = StoreCore::open(options(&path, two_phase, quick_repair)).expect("reopen");
    let reopen = t.elapsed();
    let stats = core.stats().expect("stats");
    core.close().expect("close");
    let _ = std::fs::remove_file(&path);
    println!(
        "{name:<22} after abort: {:>8} records, {:>7.1} MiB, reopen {:>8.1} ms, repaired={}",
        stats.queue_records,
        bytes as f64 / 1048576.0,
        reopen.as_secs_f64() * 1000.0,
        stats.repaired
    );
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--fill-and-abort") {
        let arg = |i: usize| raw.get(i).expect("child argument");
        fill_and_abort(
            std::path::Path::new(arg(1)),
            arg(2).parse().expect("pages"),
            arg(3) == "true",
            arg(4) == "true",
        );
        return;
    }
    let mut args = raw.into_iter();
    let dir = args
        .next()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let pages: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let fill: Option<usize> = args.next().and_then(|n| n.parse().ok());
    println!("dir={} pages={pages} events/page=100", dir.display());
    println!(
        "{:<22} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "mode", "commits/s", "events/s", "p50 ms", "p99 ms", "max ms", "ack p50", "file MiB"
    );
    for (name, two_phase, quick_repair) in [
        ("1pc", false, false),
        ("2pc", true, false),
        ("2pc+quick_repair", true, true),
    ] {
        let path = dir.join(format!("commit_bench_{name}.redb"));
        let _ = std::fs::remove_file(&path);
        let mut core = StoreCore::open(options(&path, two_phase, quick_repair)).expect("open");
        core.set_enabled_sinks(&[SinkId::Collector])
            .expect("enable");
        let mut latencies = Vec::with_capacity(pages);
        let mut ack_latencies = Vec::with_capacity(pages);
        let started = Instant::now();
        for n in 0..pages {
            let page = page(name, n);
            let t = Instant::now();
            let outcome = core.commit_page(page).expect("commit");
            latencies.push(t.elapsed());
            // The forwarder's side: ack the page (cursor + deletes in one commit).
            if let Some(last) = outcome.last_seq {
                let t = Instant::now();
                core.ack(SinkId::Collector, last).expect("ack");
                ack_latencies.push(t.elapsed());
            }
        }
        let elapsed = started.elapsed();
        let file_mib = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
        core.close().expect("close");
        let _ = std::fs::remove_file(&path);
        latencies.sort();
        ack_latencies.sort();
        let commit_total: Duration = latencies.iter().sum();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<22} {:>9.1} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
            name,
            pages as f64 / commit_total.as_secs_f64(),
            (pages * 100) as f64 / commit_total.as_secs_f64(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().expect("at least one page")),
            ms(percentile(&ack_latencies, 0.50)),
            file_mib,
        );
        let _ = elapsed;
    }
    if let Some(fill) = fill {
        for (name, two_phase, quick_repair) in [
            ("1pc", false, false),
            ("2pc", true, false),
            ("2pc+quick_repair", true, true),
        ] {
            recovery(&dir, name, fill, two_phase, quick_repair);
        }
    }
}
