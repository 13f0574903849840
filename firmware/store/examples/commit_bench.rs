//! Measures `commit_page` cost (100-event pages, Durability::Immediate) in the three commit
//! modes, on a real file: commits/s, events/s and p50/p99/max latency. Then the poller and
//! forwarder side together (a page commit and an ack per page) with and without group commit,
//! on the file and on a slow-sync backend (the file, sleeping 15 ms per fsync, standing in for
//! an SD card): events/s, fsyncs/s, and bytes written per byte of event JSON (the store's own
//! count and `/proc/self/io` `write_bytes`).
//!
//! `cargo run --release -p boxidr-store --example commit_bench -- [DIR] [PAGES] [FILL_PAGES]`
//! `cargo run --release -p boxidr-store --example commit_bench -- --group [DIR] [SECONDS]`
//! DIR defaults to the current directory; use the medium under test (SD card, USB SSD), never
//! tmpfs (fsync there is free and the figures mean nothing).
//!
//! With FILL_PAGES, each mode also fills a queue of FILL_PAGES unacked pages in a child process
//! that then aborts (no clean close, like kill -9), and times the reopen (repair) afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use boxidr_model::{BoxEvent, StreamPosition, StreamType};
use std::sync::Arc;

use boxidr_store::{CursorKey, PageCommit, SinkId, StorageBackend, StoreCore, StoreOptions};

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
    // The first part measures one durable commit per page, as before group commit.
    options.commit_interval = Duration::ZERO;
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

/// The file backend with a fixed delay on every fsync: an SD card's flush, on any disk.
#[derive(Debug)]
struct SlowSync {
    inner: redb::backends::FileBackend,
    delay: Duration,
}

impl StorageBackend for SlowSync {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write(offset, data)
    }
}

/// `write_bytes` of `/proc/self/io`: bytes this process sent towards the disk.
fn proc_write_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .and_then(|n| n.trim().parse().ok())
}

/// A page of `n` events shaped like Box's (about 560 bytes of JSON each) and its JSON bytes.
fn box_page(run: &str, n: usize, events: usize) -> (PageCommit, u64) {
    let mut page = page(run, n);
    page.events.truncate(0);
    let mut bytes = 0;
    for i in 0..events {
        let e = event(&format!("{run}-{n}-{i}-5c2f7a1e-8d0b-4f3a-9e61"));
        bytes += e.to_json().len() as u64;
        page.events.push(e);
    }
    (page, bytes)
}

/// The write side of a running appliance for `seconds`: the poller commits 500-event pages as
/// fast as the store takes them, a forwarder acks each page after it. Group commit: the
/// storage thread's timer is played by `flush_due_in`.
fn group_run(
    dir: &std::path::Path,
    name: &str,
    options: StoreOptions,
    slow: Option<Duration>,
    seconds: f64,
) {
    let path = dir.join(format!("group_bench_{name}.redb"));
    let _ = std::fs::remove_file(&path);
    let mut core = match slow {
        None => StoreCore::open(options).expect("open"),
        Some(delay) => {
            let file_path = path.clone();
            let factory: boxidr_store::BackendFactory = Arc::new(move || {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&file_path)
                    .expect("open file");
                let inner = redb::backends::FileBackend::new(file).expect("backend");
                Arc::new(SlowSync { inner, delay }) as Arc<dyn StorageBackend>
            });
            StoreCore::open_with_backend(options, factory).expect("open")
        }
    };
    core.set_enabled_sinks(&[SinkId::Collector])
        .expect("enable");
    let (io0, proc0) = (core.io_stats(), proc_write_bytes());
    let started = Instant::now();
    let (mut pages, mut json_bytes) = (0usize, 0u64);
    while started.elapsed().as_secs_f64() < seconds {
        let (page, bytes) = box_page(name, pages, 500);
        let outcome = core.commit_page(page).expect("commit");
        if let Some(last) = outcome.last_seq {
            core.ack(SinkId::Collector, last).expect("ack");
        }
        if core.flush_due_in() == Some(Duration::ZERO) {
            core.flush().expect("flush");
        }
        pages += 1;
        json_bytes += bytes;
    }
    core.flush().expect("flush");
    let elapsed = started.elapsed().as_secs_f64();
    let (io1, proc1) = (core.io_stats(), proc_write_bytes());
    core.close().expect("close");
    let _ = std::fs::remove_file(&path);
    let proc_ratio = match (proc0, proc1) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a) as f64 / json_bytes as f64),
        _ => "n/a".into(),
    };
    println!(
        "{name:<30} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>11.2} {:>11}",
        (pages * 500) as f64 / elapsed,
        (io1.commits - io0.commits) as f64 / elapsed,
        (io1.durable_commits - io0.durable_commits) as f64 / elapsed,
        (io1.fsyncs - io0.fsyncs) as f64 / elapsed,
        (io1.bytes_written - io0.bytes_written) as f64 / json_bytes as f64,
        proc_ratio,
    );
}

fn group_main(mut args: impl Iterator<Item = String>) {
    let dir = args
        .next()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let seconds: f64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5.0);
    println!(
        "dir={} seconds={seconds} events/page=500, a page commit and an ack per page",
        dir.display()
    );
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "mode", "events/s", "commits/s", "durable/s", "fsyncs/s", "store B/B", "proc B/B"
    );
    let fifteen = Duration::from_millis(15);
    for (name, two_phase, quick_repair) in [
        ("1pc", false, false),
        ("2pc", true, false),
        ("2pc+quick_repair", true, true),
    ] {
        for (label, interval) in [
            ("each", Duration::ZERO),
            ("group", boxidr_store::DEFAULT_COMMIT_INTERVAL),
        ] {
            for (disk, slow) in [("file", None), ("sync15ms", Some(fifteen))] {
                let run = format!("{name}/{label}/{disk}");
                let path = dir.join(format!("group_bench_{}.redb", run.replace('/', "_")));
                let mut options = options(&path, two_phase, quick_repair);
                options.commit_interval = interval;
                group_run(&dir, &run.replace('/', "_"), options, slow, seconds);
            }
        }
    }
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--group") {
        group_main(raw.into_iter().skip(1));
        return;
    }
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
