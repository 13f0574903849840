//! The `boxidr` command line as a user meets it: version, help, exit codes, setup code and
//! factory reset. (The demo is `boxidr-demo`, tested in `tools/demo`.)

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

/// `--help` lists the appliance's subcommands, and no longer the demo or the benchmark (they
/// moved to `tools/`, so the product binary links no simulator).
#[test]
fn help_lists_subcommands() {
    let out = boxidr().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let listed = |word: &str| text.lines().any(|l| l.trim_start().starts_with(word));
    for word in ["run", "status", "setup-code", "factory-reset", "leds"] {
        assert!(listed(word), "{word} missing:\n{text}");
    }
    for word in ["demo", "bench"] {
        assert!(!listed(word), "{word} is still a subcommand:\n{text}");
    }
    let out = boxidr().arg("demo").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "`boxidr demo` is a usage error now"
    );
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
