//! Configuration export and the support bundle.
//!
//! * The export is the bootstrap TOML file as the running appliance uses it. It never holds a
//!   secret (they live in the store); a comment block names which secrets are set, never
//!   their values, so an import elsewhere knows what to enter again.
//! * The bundle is a `.tar.gz` built in memory: `status.json`, `config.toml` (the export),
//!   `versions.txt` and `journal.txt` (the service journal of the last 24 hours, its newest
//!   [`MAX_JOURNAL_BYTES`], or a note saying why it is missing). Every file is passed through
//!   [`Scrubber`], which replaces any stored secret value that occurs in it, as a second line
//!   of defence for the journal, which this page does not control.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boxidr_config::Config;
use boxidr_store::settings::{self, SecretKey};

use crate::error::SetupError;

/// Newest part of the journal kept in a bundle.
pub const MAX_JOURNAL_BYTES: usize = 4 * 1024 * 1024;
/// The journal command is stopped after this long.
pub const JOURNAL_TIMEOUT: Duration = Duration::from_secs(30);
/// What replaces a secret value found in a bundle file.
pub const REDACTED: &str = "[redacted]";
/// Stored secrets shorter than this are not searched for (they would match ordinary text).
const MIN_SCRUB_LEN: usize = 8;

/// The secrets an export names when they are set: (store key, what the admin calls it).
pub(crate) const EXPORT_SECRET_NAMES: &[(SecretKey, &str)] = &[
    (settings::BOX_CLIENT_SECRET, "Box client secret"),
    (
        settings::BOX_REFRESH_TOKEN,
        "Box refresh token (the Box connection)",
    ),
    (settings::LOG_SEARCH_TOKEN, "Log Search token"),
    (settings::PLATFORM_API_KEY, "Platform API key"),
    (settings::PROXY_PASSWORD, "outbound proxy password"),
];

/// The exported configuration file: a comment header, then the TOML of `config`.
pub(crate) fn export_text(config: &Config, secrets_set: &[&str]) -> Result<String, SetupError> {
    let body = toml::to_string_pretty(config)
        .map_err(|e| SetupError::Corrupt(format!("configuration does not serialise: {e}")))?;
    let set = if secrets_set.is_empty() {
        "none".to_owned()
    } else {
        secrets_set.join(", ")
    };
    Ok(format!(
        "# boxidr configuration, exported from the setup page (boxidr {}).\n\
         # Secrets are never exported. Set on the exporting appliance: {set}.\n\
         # After importing this file elsewhere, enter them again on the setup page.\n\
         # data_dir and setup.listen are kept from the importing appliance.\n\
         {body}",
        env!("CARGO_PKG_VERSION"),
    ))
}

/// Replaces known secret values in text.
#[derive(Default)]
pub(crate) struct Scrubber {
    values: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} values)", self.values.len())
    }
}

impl Scrubber {
    /// Adds a secret value (ignored when shorter than 8 bytes or not text).
    pub(crate) fn add(&mut self, bytes: &[u8]) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        let text = text.trim();
        if text.len() >= MIN_SCRUB_LEN && !self.values.iter().any(|v| v == text) {
            self.values.push(text.to_owned());
        }
        // Longest first, so a secret containing another is replaced whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }
}

/// `versions.txt`: firmware, operating system, kernel and board.
pub(crate) fn versions_text() -> String {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let os = read("/etc/os-release")
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = read("/proc/version").unwrap_or_else(|| "unknown".into());
    let board = read("/proc/device-tree/model")
        .map(|m| m.trim_end_matches('\0').to_owned())
        .unwrap_or_else(|| "unknown (no device tree model)".into());
    format!(
        "boxidr {}\narchitecture: {}\nos: {os}\nkernel: {}\nboard: {board}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        kernel.trim(),
    )
}

/// Runs the journal command and keeps the newest `limit` bytes of its output.
///
/// `Err` says why there is no journal (not installed, failed, timed out with nothing).
pub(crate) async fn journal(
    argv: &[String],
    limit: usize,
    timeout: Duration,
) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let Some((program, args)) = argv.split_first() else {
        return Err("no journal command is configured".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program} could not be started ({e})"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("{program} gave no output"))?;
    let mut kept: Vec<u8> = Vec::new();
    let mut dropped = false;
    let read = async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > limit.saturating_mul(2) {
                let excess = kept.len() - limit;
                kept.drain(..excess);
                dropped = true;
            }
        }
    };
    let timed_out = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => false,
        Ok(Err(e)) => return Err(format!("reading {program} failed ({e})")),
        Err(_) => true,
    };
    let status = if timed_out {
        let _ = child.kill().await;
        None
    } else {
        tokio::time::timeout(timeout, child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    };
    if kept.len() > limit {
        let excess = kept.len() - limit;
        kept.drain(..excess);
        dropped = true;
    }
    if kept.is_empty() {
        return Err(match (timed_out, status) {
            (true, _) => format!("{program} gave nothing within {} s", timeout.as_secs()),
            // 127: the program was not found (some exec paths, e.g. under qemu-user, report
            // it as the child's exit status rather than as a spawn error).
            (false, Some(s)) if s.code() == Some(127) => {
                format!("{program} could not be started (not found)")
            }
            (false, Some(s)) if !s.success() => format!("{program} failed ({s})"),
            _ => format!("{program} printed nothing"),
        });
    }
    let mut text = String::new();
    if dropped {
        // Start at a line boundary after the cut.
        if let Some(pos) = kept.iter().position(|b| *b == b'\n') {
            kept.drain(..=pos);
        }
        text.push_str(&format!(
            "[older lines left out: the journal excerpt keeps the newest {limit} bytes]\n"
        ));
    }
    text.push_str(&String::from_utf8_lossy(&kept));
    if timed_out {
        text.push_str(&format!(
            "\n[stopped after {} s: the journal may be incomplete]\n",
            timeout.as_secs()
        ));
    }
    Ok(text)
}

/// Builds a `.tar.gz` of `files` (name, content) under the directory `root`.
pub(crate) fn tar_gz(root: &str, files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, SetupError> {
    let io = |e: std::io::Error| SetupError::io("build the support bundle", e);
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(u64::try_from(content.len()).unwrap_or(u64::MAX));
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{root}/{name}"), content.as_slice())
            .map_err(io)?;
    }
    let mut gz = tar.into_inner().map_err(io)?;
    gz.flush().map_err(io)?;
    gz.finish().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stored secret value is replaced, longest first; short values are left alone.
    #[test]
    fn scrubber_replaces_secrets() {
        let mut s = Scrubber::default();
        s.add(b"abcdefgh12345678");
        s.add(b"abcdefgh");
        s.add(b"short");
        s.add(&[0xff, 0xfe, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05]);
        let out = s.scrub("x abcdefgh12345678 y abcdefgh z short");
        assert_eq!(out, "x [redacted] y [redacted] z short");
    }

    /// The export is valid TOML for boxidr and names secrets without values.
    #[test]
    fn export_parses_back() {
        let mut config = Config::default();
        config.mapping.default_domain = Some("CORP".into());
        let text = export_text(&config, &["Log Search token"]).unwrap();
        assert!(text.contains("Set on the exporting appliance: Log Search token."));
        assert_eq!(Config::from_toml(&text).unwrap(), config);
    }

    /// A missing journal program is a reason, not a failure of the bundle.
    #[tokio::test]
    async fn journal_unavailable_and_bounded() {
        let missing = vec!["/nonexistent/journalctl-for-test".to_owned()];
        let e = journal(&missing, 1024, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(e.contains("could not be started"), "{e}");
        // 3000 numbered lines, about 14 KB: only the newest 1 KiB is kept, from a line start.
        let argv: Vec<String> = ["sh", "-c", "seq 1 3000"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let text = journal(&argv, 1024, Duration::from_secs(60)).await.unwrap();
        assert!(text.starts_with("[older lines left out"), "{text}");
        assert!(text.len() <= 1024 + 200, "{}", text.len());
        assert!(text.trim_end().ends_with("\n3000"), "{text}");
        let second = text.lines().nth(1).unwrap();
        assert!(second.parse::<u32>().is_ok(), "{second}");
    }

    /// The archive opens and holds the files under the root directory.
    #[test]
    fn archive_roundtrip() {
        use std::io::Read;
        let bytes = tar_gz(
            "root",
            &[("a.txt", b"alpha".to_vec()), ("b.json", b"{}".to_vec())],
        )
        .unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), text));
        }
        assert_eq!(
            seen,
            [
                ("root/a.txt".to_owned(), "alpha".to_owned()),
                ("root/b.json".to_owned(), "{}".to_owned())
            ]
        );
    }
}
