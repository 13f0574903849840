//! The `boxidr` command line as a user meets it: version, help, exit codes, the demo summary.

use std::process::Command;

fn boxidr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxidr"))
}

/// `--version` names the program and its version.
#[test]
fn version() {
    let out = boxidr().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("boxidr {}", env!("CARGO_PKG_VERSION")));
}

/// `--help` lists the subcommands.
#[test]
fn help_lists_subcommands() {
    let out = boxidr().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["run", "status", "leds", "demo"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(word)),
            "{word} missing:\n{text}"
        );
    }
}

/// A wrong flag is a usage error (exit 2), not a crash.
#[test]
fn usage_error_exit_code() {
    let out = boxidr().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A configuration the service cannot use exits 78 so systemd does not restart-loop.
#[test]
fn bad_config_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boxidr.toml");
    std::fs::write(&path, "[events]\nstream_type = \"all\"\n").unwrap();
    let out = boxidr()
        .arg("--config")
        .arg(&path)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("stream_type"), "{stderr}");
}

/// `config check` starts nothing: a good file exits 0; a bad one exits 78 and lists every
/// problem with its key path (including a CA file that is not there), in one run.
#[test]
fn config_check_lists_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[events]\nstream_type = \"admin_logs\"\n").unwrap();
    let out = boxidr()
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[events]\nstream_type = \"all\"\npage_limit = 0\npoll_intervall_secs = 5\n\
         [insightidr.collector]\nhost = \"c\"\nport = 1\nca_file = \"/nonexistent/ca.pem\"\n\
         [queue]\nquota_bytes = 1\n",
    )
    .unwrap();
    let out = boxidr()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    for key in [
        "events.stream_type:",
        "events.poll_intervall_secs:",
        "events.page_limit:",
        "queue.quota_bytes:",
    ] {
        assert!(stderr.contains(key), "{key} missing:\n{stderr}");
    }
    assert!(stderr.contains("4 error(s)"), "{stderr}");

    // Once the file itself is right, files it names are checked too.
    std::fs::write(
        &bad,
        "[insightidr.collector]\nhost = \"c\"\nport = 1\nca_file = \"/nonexistent/ca.pem\"\n",
    )
    .unwrap();
    let out = boxidr()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("insightidr.collector.ca_file: cannot read /nonexistent/ca.pem"),
        "{stderr}"
    );
}

/// `demo --auto --for 2s --json` ends with one JSON object carrying every documented count,
/// and the counts are consistent with each other.
#[test]
fn demo_auto_json_summary() {
    let out = boxidr()
        .args([
            "demo",
            "--auto",
            "--for",
            "2s",
            "--json",
            "--backlog",
            "20",
            "--rate",
            "20",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("some output");
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    let generated = summary["box_events_generated"].as_u64().unwrap();
    assert!(generated >= 20, "backlog alone is 20 events: {summary}");
    // The run ends with a drain: everything generated is collected and delivered.
    assert_eq!(summary["collected"].as_u64(), Some(generated), "{summary}");
    assert_eq!(summary["lost"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["uef_rejected"].as_u64(), Some(0), "{summary}");
    // Every event goes to Log Search (send-unparsed is on); only logins go to the Collector.
    let delivered = summary["delivered"].as_object().unwrap();
    assert_eq!(
        delivered["logsearch"].as_u64(),
        Some(generated),
        "{summary}"
    );
    let uef = delivered["uef"].as_u64().unwrap();
    assert!(uef > 0 && uef < generated, "{summary}");
    // Duplicates only come from re-delivery after a failure; this run has none.
    assert_eq!(summary["duplicates"].as_u64(), Some(0), "{summary}");
}

/// `leds --test` cycles every LED on the simulated board (what CI can check without GPIO) and
/// prints one line per step for the person at the box.
#[test]
fn leds_test_on_the_simulated_board() {
    let out = boxidr()
        .args(["leds", "--test", "--backend", "simulated", "--fast"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l.starts_with("[1/")), "{stdout}");
    assert!(stdout.contains("lamp test done"), "{stdout}");
}

/// `status` on a data directory without a store and without a service says so and fails.
#[test]
fn status_without_store_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = boxidr()
        .arg("status")
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no service is running"), "{stderr}");
}

/// The value after `label` on the line that starts with it.
fn field(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"))
        .trim()
        .to_owned()
}

/// A stopped appliance: `setup-code` issues a fresh code each time (the previous one dies) with
/// a stable certificate fingerprint; `factory-reset` refuses without `--yes`, and with it
/// issues a new code and a new certificate.
#[test]
fn setup_code_and_factory_reset_on_a_stopped_appliance() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = boxidr_store::Store::open(boxidr_store::StoreOptions::new(
            dir.path().join("boxidr.redb"),
        ))
        .await
        .unwrap();
        store.close().await.unwrap();
    });
    let run = |args: &[&str]| {
        let out = boxidr()
            .args(args)
            .arg("--data")
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        (out.status.code(), stdout, stderr)
    };
    let (code, first, err) = run(&["setup-code"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, second, err) = run(&["setup-code"]);
    assert_eq!(code, Some(0), "{err}");
    let (code_a, code_b) = (
        field(&first, "Setup code (one use):"),
        field(&second, "Setup code (one use):"),
    );
    assert!(
        code_a.len() >= 16 && code_a != code_b,
        "{code_a} / {code_b}"
    );
    let fingerprint = field(&first, "Setup page certificate SHA-256:");
    assert_eq!(
        fingerprint,
        field(&second, "Setup page certificate SHA-256:")
    );

    let (code, _, err) = run(&["factory-reset"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--yes"), "{err}");
    let (code, reset, err) = run(&["factory-reset", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        reset.contains("Box token revoked: nothing to revoke"),
        "{reset}"
    );
    let new_fingerprint = field(&reset, "New setup page certificate SHA-256:");
    assert_ne!(new_fingerprint, fingerprint);
    assert_ne!(field(&reset, "New setup code (one use):"), code_b);
}

/// A running service answers `setup-code` and `factory-reset` over its control socket: the
/// reset gives the page a new certificate, and the service keeps answering afterwards.
#[test]
fn setup_code_and_factory_reset_through_the_running_service() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("boxidr.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[setup]\nlisten = \"127.0.0.1:0\"\n[clock]\nwait_for_sync = false\n[board]\nbackend = \"simulated\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let mut service = boxidr()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ask = |args: &[&str]| {
        let out = boxidr()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    // The service is up once `status` reaches it (generous: qemu starts slowly).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, stdout, _) = ask(&["status", "--json"]);
        if code == Some(0) && !stdout.contains("\"stopped\"") && stdout.contains("\"service\"") {
            break;
        }
        assert!(Instant::now() < deadline, "service did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, err) = ask(&["setup-code"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(field(&out, "Setup code (one use):").len() >= 16, "{out}");
    assert!(
        out.contains("Setup page listening at https://127.0.0.1:"),
        "{out}"
    );
    let fingerprint = field(&out, "Setup page certificate SHA-256:");

    let (code, out, err) = ask(&["factory-reset", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(
        field(&out, "New setup page certificate SHA-256:"),
        fingerprint
    );
    let (code, out, err) = ask(&["setup-code"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Setup code (one use):"), "{out}");
    service.kill().unwrap();
    service.wait().unwrap();
}

/// `demo --auto --faults`: the real service between the simulators goes through a Box outage,
/// an InsightIDR outage and a revoked Box authorisation (then the demo grants consent again).
/// The LEDs show each fault on the right LED, recover at the end, and nothing is lost.
#[test]
fn demo_fault_tour_shows_on_the_leds_and_loses_nothing() {
    let out = boxidr()
        .args([
            "demo",
            "--auto",
            "--faults",
            "--for",
            "48s",
            "--json",
            "--backlog",
            "30",
            "--rate",
            "5",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("some output")).unwrap();
    assert_eq!(summary["lost"].as_u64(), Some(0), "{summary}");
    assert_eq!(
        summary["collected"].as_u64(),
        summary["box_events_generated"].as_u64(),
        "{summary}"
    );
    let tour = summary["fault_tour"].as_array().expect("a fault tour");
    let phase = |name: &str| {
        tour.iter()
            .find(|p| p["fault"] == name)
            .unwrap_or_else(|| panic!("no {name} phase: {summary}"))
    };
    let saw = |name: &str, led: &str, pred: &dyn Fn(&str) -> bool| {
        phase(name)["leds_seen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| pred(f[led].as_str().unwrap_or("?")))
    };
    assert!(
        saw("box_outage", "box", &|look| look != "on"),
        "BOX never left 'on' during the Box outage: {summary}"
    );
    assert!(
        saw("insightidr_outage", "insightidr", &|look| look != "on"),
        "INSIGHTIDR never left 'on' during its outage: {summary}"
    );
    let problems = &phase("box_authorisation_revoked")["problems_seen"];
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "box_reauthorisation_needed"),
        "{summary}"
    );
    assert!(
        saw("box_authorisation_revoked", "box", &|look| look
            == "fast_blink"),
        "{summary}"
    );
    // Recovered by the end: both links lit steadily again.
    let end = &summary["leds_at_end"];
    assert_eq!(end["box"], "on", "{summary}");
    assert_eq!(end["insightidr"], "on", "{summary}");
}
