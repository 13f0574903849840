//! Writes the TOML configuration so that a power cut leaves either the old or the new file:
//! a temporary file in the same directory, `fsync`, `rename`, `fsync` of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use boxidr_config::Config;

use crate::credentials::random_hex;
use crate::error::SetupError;

/// Serialises `config` and replaces the file at `path` atomically.
pub fn write_atomically(path: &Path, config: &Config) -> Result<(), SetupError> {
    let text = toml::to_string_pretty(config)
        .map_err(|e| SetupError::Corrupt(format!("configuration does not serialise: {e}")))?;
    let mut bytes =
        b"# Written by the boxidr setup page; edits here are kept but comments are not.\n".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    // 0600 like everything else in the state directory (service user only).
    write_bytes_atomically(path, &bytes, 0o600)
}

/// Replaces the file at `path` with `bytes`, mapping a failure to a [`SetupError`].
pub(crate) fn write_bytes_atomically(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<(), SetupError> {
    replace_file(path, bytes, mode)
        .map_err(|e| SetupError::io(format!("replace {}", path.display()), e))
}

/// Replaces the file at `path` with `bytes` created with `mode`: a temporary file in the same
/// directory, fsync, rename, fsync of the directory, so a power cut leaves the old file or the
/// new one, never half of either. The one atomic file write of the appliance: the setup page's
/// configuration, the seeded configuration and the setup-code file all go through it. An error
/// names the step and the file; the temporary file is removed on failure.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(6)));
    let step = |what: &str, file: &Path| {
        let what = format!("{what} {}", file.display());
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options.open(&tmp).map_err(step("create", &tmp))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(step("write", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(step("rename onto", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(step("sync", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The written file parses back to the same configuration and no temporary file is left.
    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxidr.toml");
        let mut config = Config::default();
        config.mapping.default_domain = Some("CORP".into());
        write_atomically(&path, &config).unwrap();
        let back = Config::from_toml(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, config);
        let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }
}
