//! The storage self-test: a write / fsync / read-back probe of the data directory, run at start
//! and daily (RELIABILITY §6 scenario 16).
//!
//! redb only notices a failing SD card when a commit fails, which on a quiet box can be days
//! after the card started returning errors (or silently wrong data). The probe writes a small
//! file of a changing pattern next to the database, syncs it, reads it back through a fresh
//! handle and compares, then removes it: an I/O error, a full disk or a mismatch is reported
//! as a storage fault (ATTENTION code 1) before the queue depends on the card.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// Name of the probe file inside the data directory (removed after every run).
pub const SELF_TEST_FILE: &str = ".boxidr-selftest";
/// Size of the probe: one SD-card page cluster, small enough to cost nothing daily.
pub const SELF_TEST_BYTES: usize = 16 * 1024;

/// Runs the probe in `dir`. `Err` says which step failed and why (no secrets: paths only).
/// Blocking: call it from a blocking thread.
pub fn self_test(dir: &Path) -> Result<(), String> {
    let path = dir.join(SELF_TEST_FILE);
    let pattern = pattern(seed());
    let result = probe(&path, &pattern);
    // Best effort: a probe that failed half-way may have left the file behind.
    let _ = fs::remove_file(&path);
    if result.is_ok() {
        // The removal is part of the test too: a directory that cannot be synced is a fault.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("sync the data directory {}: {e}", dir.display()))?;
    }
    result
}

fn probe(path: &Path, pattern: &[u8]) -> Result<(), String> {
    let step = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| step("create", e))?;
    file.write_all(pattern).map_err(|e| step("write", e))?;
    file.sync_all().map_err(|e| step("fsync", e))?;
    drop(file);
    let mut back = Vec::with_capacity(pattern.len());
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut back))
        .map_err(|e| step("read back", e))?;
    if back != pattern {
        return Err(format!(
            "read back {}: {} bytes differ from what was written",
            path.display(),
            back.iter().zip(pattern).filter(|(a, b)| a != b).count()
                + back.len().abs_diff(pattern.len())
        ));
    }
    Ok(())
}

/// A seed that changes between runs, so a card that returns stale data fails the compare.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5eed, |d| {
            u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0x5eed)
        })
}

/// [`SELF_TEST_BYTES`] of xorshift output from `seed`.
fn pattern(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(SELF_TEST_BYTES);
    while out.len() < SELF_TEST_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(SELF_TEST_BYTES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A healthy directory passes and the probe file is gone afterwards.
    #[test]
    fn healthy_directory_passes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        self_test(dir.path()).unwrap();
        assert!(!dir.path().join(SELF_TEST_FILE).exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A data directory that cannot hold the probe fails with the step and the path.
    #[test]
    fn unusable_directory_fails_with_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, b"x").unwrap();
        let error = self_test(&not_a_dir).unwrap_err();
        assert!(error.starts_with("create "), "{error}");
        assert!(error.contains(SELF_TEST_FILE), "{error}");
        let missing = dir.path().join("gone");
        assert!(self_test(&missing).is_err());
    }

    /// The probe pattern changes with its seed (stale data cannot pass) and has its size.
    #[test]
    fn pattern_changes_with_the_seed() {
        assert_eq!(pattern(1).len(), SELF_TEST_BYTES);
        assert_ne!(pattern(1), pattern(2));
    }
}
