//! The product binary under test, and the processes it runs as.
//!
//! The benchmark measures `boxidr run` exactly as the appliance runs it: the `boxidr` package
//! built on its own (`cargo build -p boxidr`, default features: hardware only, no simulators),
//! started as a child process with a bootstrap file, durable commits as in production. Memory,
//! CPU and disk writes are read from `/proc/<pid>` of that child; fsyncs from `strace` when it
//! is installed.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the `boxidr` executable comes from (printed with the figures).
#[derive(Debug, Clone)]
pub struct Product {
    pub exe: PathBuf,
    /// `release` or `debug`.
    pub profile: &'static str,
    /// How it was obtained (`cargo build …`, or given with `--boxidr`).
    pub how: String,
}

/// Builds `boxidr` with cargo (the same profile as this benchmark, so a debug smoke run in CI
/// reuses the test build) and returns the executable cargo reports.
pub fn build() -> anyhow::Result<Product> {
    let release = !cfg!(debug_assertions);
    let profile = if release { "release" } else { "debug" };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = vec![
        "build",
        "-p",
        "boxidr",
        "--message-format=json-render-diagnostics",
    ];
    if release {
        args.push("--release");
    }
    let how = format!("cargo {}", args.join(" "));
    eprintln!("boxidr-bench: building the product binary: {how}");
    let mut child = Command::new(&cargo)
        .current_dir(&root)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut exe = None;
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let is_bin = msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"));
            if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "boxidr" && is_bin {
                exe = msg["executable"].as_str().map(PathBuf::from);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        anyhow::bail!("{how} failed ({status})");
    }
    let exe = exe.ok_or_else(|| anyhow::anyhow!("{how} reported no boxidr executable"))?;
    Ok(Product { exe, profile, how })
}

/// A given executable (`--boxidr PATH`).
pub fn given(exe: PathBuf) -> anyhow::Result<Product> {
    if !exe.is_file() {
        anyhow::bail!("{} is not a file", exe.display());
    }
    Ok(Product {
        how: format!("given: {}", exe.display()),
        exe,
        profile: "given",
    })
}

/// `strace` can count fsyncs (installed and allowed to trace here).
pub fn strace_available() -> bool {
    Command::new("strace")
        .args([
            "-f",
            "--seccomp-bpf",
            "-qq",
            "-e",
            "trace=fsync",
            "-o",
            "/dev/null",
            "true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The syscalls that flush to the medium.
const SYNC_CALLS: [&str; 5] = ["fsync", "fdatasync", "sync_file_range", "syncfs", "msync"];

/// A running `boxidr run`.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// The boxidr process itself (not strace's).
    pub pid: u32,
    pub started: Instant,
    pub log: PathBuf,
    strace_out: Option<PathBuf>,
}

/// Starts `boxidr --config <config> --log <filter> run`, its stderr to `<dir>/run.log`; with
/// `trace_syncs`, under `strace` (only the sync calls stop the process: seccomp-bpf).
pub fn spawn(
    product: &Product,
    config: &Path,
    dir: &Path,
    log_filter: &str,
    trace_syncs: bool,
) -> anyhow::Result<Running> {
    let log = dir.join("run.log");
    let strace_out = trace_syncs.then(|| dir.join("syncs.strace"));
    let mut cmd = match &strace_out {
        Some(out) => {
            let mut c = Command::new("strace");
            c.args(["-f", "--seccomp-bpf", "-qq", "-ttt", "-e"])
                .arg(format!("trace={}", SYNC_CALLS.join(",")))
                .arg("-o")
                .arg(out)
                .arg("--")
                .arg(&product.exe);
            c
        }
        None => Command::new(&product.exe),
    };
    cmd.arg("--config")
        .arg(config)
        .arg("--log")
        .arg(log_filter)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = if strace_out.is_some() {
        traced_pid(&mut child, &product.exe)?
    } else {
        child.id()
    };
    Ok(Running {
        child,
        pid,
        started,
        log,
        strace_out,
    })
}

/// The pid of strace's tracee: the child of strace that runs `exe` (strace also forks
/// short-lived children of its own at start, to probe what the kernel supports).
fn traced_pid(strace: &mut Child, exe: &Path) -> anyhow::Result<u32> {
    let until = Instant::now() + Duration::from_secs(10);
    let path = format!("/proc/{0}/task/{0}/children", strace.id());
    let want = std::fs::canonicalize(exe)?;
    loop {
        let children = std::fs::read_to_string(&path).unwrap_or_default();
        let found = children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == want));
        if let Some(pid) = found {
            return Ok(pid);
        }
        if let Some(status) = strace.try_wait()? {
            anyhow::bail!("strace exited before starting boxidr ({status})");
        }
        if Instant::now() >= until {
            anyhow::bail!("strace started no boxidr within 10 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What `/proc` says about the child at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// `VmHWM`, KiB.
    pub peak_rss_kib: u64,
    /// `utime + stime`, seconds.
    pub cpu_s: f64,
    /// `write_bytes` of `/proc/<pid>/io`: bytes the process caused to be sent to storage.
    pub write_bytes: u64,
}

impl Running {
    /// Whether it is still running (an early exit is an error with its log's tail).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let tail = log_tail(&self.log, 20);
            anyhow::bail!("boxidr run exited early ({status}); its log ends:\n{tail}");
        }
        Ok(())
    }

    /// Reads `/proc/<pid>`.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmHWM for pid {}", self.pid))?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow::anyhow!("unreadable /proc/{}/stat", self.pid))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
        let cpu_s = (ticks(11) + ticks(12)) as f64 / clock_ticks_per_sec();
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid)).unwrap_or_default();
        let write_bytes = io
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(Sample {
            peak_rss_kib,
            cpu_s,
            write_bytes,
        })
    }

    /// SIGTERM (a clean stop, as systemd does), then waits (SIGKILL after 20 s); returns the
    /// wall-clock times (Unix seconds) of every sync call it made, when traced.
    pub fn stop(mut self) -> Option<Vec<f64>> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= until => {
                    let _ = Command::new("kill")
                        .arg("-KILL")
                        .arg(self.pid.to_string())
                        .status();
                    // strace too (its tracee dies with it: PTRACE_O_EXITKILL).
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let out = self.strace_out.as_ref()?;
        let text = std::fs::read_to_string(out).ok()?;
        Some(sync_times(&text))
    }
}

/// Timestamps of the sync calls in `strace -f -ttt` output (a call split into `unfinished` /
/// `resumed` lines counts once, at its start).
pub fn sync_times(strace: &str) -> Vec<f64> {
    strace
        .lines()
        .filter(|l| !l.contains("resumed>"))
        .filter(|l| SYNC_CALLS.iter().any(|c| l.contains(&format!(" {c}("))))
        .filter_map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse::<f64>().ok())
                .find(|t| *t > 1e9)
        })
        .collect()
}

/// Sync calls per second within `[from, to]` (Unix seconds), and the most in any one second.
pub fn sync_rate(times: &[f64], from: f64, to: f64) -> (f64, u64) {
    let inside: Vec<f64> = times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
    for t in &inside {
        *per_second.entry(t.floor() as i64).or_default() += 1;
    }
    let span = (to - from).max(1e-3);
    (
        inside.len() as f64 / span,
        per_second.values().copied().max().unwrap_or(0),
    )
}

fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Now, as Unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// strace lines: calls counted once, split calls at their start, other lines ignored.
    #[test]
    fn counts_sync_calls() {
        let text = "\
101 1700000000.100000 fdatasync(7) = 0
102 1700000000.200000 fsync(8 <unfinished ...>
101 1700000000.250000 <... fsync resumed>) = 0
101 1700000001.500000 fdatasync(7) = 0
101 1700000001.600000 +++ exited with 0 +++
";
        let times = sync_times(text);
        assert_eq!(
            times,
            vec![1_700_000_000.1, 1_700_000_000.2, 1_700_000_001.5]
        );
        let (rate, max) = sync_rate(&times, 1_700_000_000.0, 1_700_000_002.0);
        assert!((rate - 1.5).abs() < 1e-9, "{rate}");
        assert_eq!(max, 2);
    }

    /// This very process can be sampled (the readers parse real `/proc` files).
    #[test]
    fn samples_a_real_process() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let running = Running {
            pid: child.id(),
            started: Instant::now(),
            log: PathBuf::from("/nonexistent"),
            strace_out: None,
            child: Command::new("true").spawn().unwrap(),
        };
        let s = running.sample().unwrap();
        assert!(s.peak_rss_kib > 0);
        let _ = child.kill();
        let _ = child.wait();
    }
}
