//! `[setup] code_file` with the real service: the setup code, the page's URL and the certificate
//! fingerprint appear in the file while the appliance is unclaimed, a new code replaces the
//! old one, and claiming the appliance on the page removes the file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failure should panic loudly

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn boxidr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxidr"))
}

/// Waits (generously: qemu is slow) until `cond` holds for the file's text (`None`: absent).
fn wait_for(path: &Path, what: &str, cond: impl Fn(Option<&str>) -> bool) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(path).ok();
        if cond(text.as_deref()) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value after `label` on its line.
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    let start = text
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {text}"))
        + label.len();
    text[start..].lines().next().unwrap().trim()
}

/// The line after `label` (the URL and the fingerprint are on their own lines).
fn line_after<'a>(text: &'a str, label: &str) -> &'a str {
    let start = text
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {text}"))
        + label.len();
    text[start..].lines().nth(1).unwrap().trim()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_file_follows_the_code_and_goes_on_claim() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let code_file = dir.path().join("boot").join("boxidr-setup.txt");
    std::fs::create_dir_all(code_file.parent().unwrap()).unwrap();
    let config = dir.path().join("boxidr.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[setup]\nlisten = \"127.0.0.1:0\"\ncode_file = {:?}\n\
             [clock]\nwait_for_sync = false\n[board]\nbackend = \"simulated\"\n",
            dir.path().join("data"),
            code_file,
        ),
    )
    .unwrap();
    let mut service = boxidr()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let first = tokio::task::block_in_place(|| {
        wait_for(&code_file, "the code file", |t| {
            t.is_some_and(|t| t.contains("fingerprint"))
        })
    })
    .unwrap();
    let code = after(&first, "Setup code (one use):").to_owned();
    // The mDNS name first (this machine's host name), then the address the page listens on.
    let url = first
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("https://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no loopback URL in {first}"))
        .to_owned();
    let fingerprint = line_after(&first, "Certificate SHA-256 fingerprint:").to_owned();
    assert!(code.len() >= 16, "{first}");
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{first}");

    // `boxidr setup-code` through the running service: the file gets the new code.
    let out = tokio::task::block_in_place(|| {
        boxidr()
            .arg("--config")
            .arg(&config)
            .arg("setup-code")
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let new_code = after(&printed, "Setup code (one use):").to_owned();
    assert_ne!(new_code, code);
    let second = std::fs::read_to_string(&code_file).unwrap();
    assert!(
        second.contains(&new_code) && !second.contains(&code),
        "{second}"
    );
    let leftovers = std::fs::read_dir(code_file.parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(leftovers, 1, "no temporary file left");

    // Claim on the page with the new code (the certificate is self-signed; its fingerprint
    // was checked above by shape, the setup tests check the page itself).
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let claim_url = format!("{}claim", url);
    let page = client.get(&claim_url).send().await.unwrap();
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let body = page.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("claim form has a CSRF field") + marker.len();
    let csrf = body[start..start + body[start..].find('"').unwrap()].to_owned();
    let password = "correct horse battery staple";
    let done = client
        .post(&claim_url)
        .header("cookie", cookies.join("; "))
        .header("origin", url.trim_end_matches('/'))
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", new_code.as_str()),
            ("password", password),
            ("confirm", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 303, "claim refused");
    tokio::task::block_in_place(|| wait_for(&code_file, "the file to go", |t| t.is_none()));
    service.kill().unwrap();
    service.wait().unwrap();
}
