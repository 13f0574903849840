//! The `box-sim` binary: loopback-only, machine-parsable first line, serves what it announces.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_box-sim");

/// A non-loopback `--listen` is refused with a clear error and a failing exit status.
#[test]
fn refuses_non_loopback() {
    let out = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}

/// The first line is `box-sim listening on http://127.0.0.1:PORT` and that address answers.
#[test]
fn prints_address_and_serves() {
    let mut child = Command::new(BIN)
        .args([
            "--rate",
            "0",
            "--backlog",
            "5",
            "--position-form",
            "integer",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("box-sim listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let addr = url.strip_prefix("http://").unwrap();
    assert!(addr.starts_with("127.0.0.1:"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats: serde_json::Value = rt.block_on(async {
        {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::get(format!("{url}/_sim/stats"))
        }
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(stats["events_generated"], 5);
}
