//! The `idr-sim` binary: refuses non-loopback addresses, prints parsable lines, serves.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A non-loopback listen address is refused with a clear error and a failing exit status.
#[test]
fn refuses_non_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_idr-sim"))
        .args(["--api-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}

/// It prints one line per surface, generates token and key, writes the CA, and serves /validate.
#[test]
fn prints_surfaces_and_serves() {
    let dir = std::env::temp_dir().join(format!("idr-sim-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_idr-sim"))
        .args(["--write-ca", ca.to_str().unwrap(), "--plain-uef"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = std::collections::HashMap::new();
    while let Some(Ok(line)) = lines.next() {
        let mut parts = line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("idr-sim"), "{line}");
        let key = parts.next().unwrap().to_owned();
        let is_last = key == "log";
        seen.insert(key, parts.next().unwrap_or("").to_owned());
        if is_last {
            break;
        }
    }
    assert!(seen["uef"].starts_with("tcp://127.0.0.1:"), "{seen:?}");
    assert!(seen["token-tcp"].starts_with("tls://127.0.0.1:"));
    assert!(seen["logsearch"].starts_with("http://127.0.0.1:"));
    assert!(seen["token"].ends_with("(generated)"));
    let key = seen["api-key"].split(' ').next().unwrap().to_owned();
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    // GET /validate with the printed key, over a raw socket (no async runtime here).
    let api = seen["api"].trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /validate HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains(r#"{"message":"Authorized"}"#));

    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
