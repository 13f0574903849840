//! Where the configuration file lives, and its first-start seeding.
//!
//! The service rewrites its configuration (the setup page saves every form to it), so the file
//! must be writable by the service user. Under the unit's `ProtectSystem=strict`, `/etc` is
//! read-only and a `ConfigurationDirectory=` is created root-owned and not handed to `User=`;
//! only the state directory is. So the writable file is
//! [`DEFAULT_CONFIG_PATH`](boxidr_config::DEFAULT_CONFIG_PATH) (`/var/lib/boxidr/boxidr.toml`,
//! in `StateDirectory=`, kept across upgrades), and
//! [`PROVISIONING_CONFIG_PATH`](boxidr_config::PROVISIONING_CONFIG_PATH)
//! (`/etc/boxidr/boxidr.toml`) is optional read-only provisioning: `boxidr run` copies it once,
//! mode 0600, when the writable file does not exist yet. Later edits to the provisioning file
//! are not picked up (the appliance's settings are the page's from then on).
//!
//! `--config FILE` (or `BOXIDR_CONFIG`) names one file that must exist, with no seeding.

use std::path::{Path, PathBuf};

use boxidr_config::{Config, ConfigError, DEFAULT_CONFIG_PATH, PROVISIONING_CONFIG_PATH};
use tracing::info;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid { path: String, source: ConfigError },
    /// The provisioning file could not be copied to the writable location: not a problem of
    /// the configuration itself (exit 1, not 78).
    #[error("cannot seed {path} from {from}: {source}")]
    Seed {
        path: String,
        from: String,
        source: std::io::Error,
    },
}

impl LoadError {
    /// Whether the configuration itself is unusable (exit 78: a restart will not help).
    pub fn is_config(&self) -> bool {
        !matches!(self, Self::Seed { .. })
    }
}

/// The file the service reads and the setup page rewrites, and where it may be seeded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Read by every command, rewritten by the setup page.
    pub writable: PathBuf,
    /// Copied to `writable` by `boxidr run` when that is absent (`None` for `--config FILE`).
    pub provisioning: Option<PathBuf>,
}

impl Location {
    /// The location the command line names: the default (writable file seeded from the
    /// provisioning file) unless `--config`/`BOXIDR_CONFIG` named another file.
    pub fn from_cli(path: &Path) -> Self {
        if path == Path::new(DEFAULT_CONFIG_PATH) {
            Self {
                writable: path.to_owned(),
                provisioning: Some(PathBuf::from(PROVISIONING_CONFIG_PATH)),
            }
        } else {
            Self {
                writable: path.to_owned(),
                provisioning: None,
            }
        }
    }

    /// For `boxidr run`: seeds the writable file from the provisioning file if it is absent
    /// (a provisioning file that does not validate is refused, and nothing is copied), then
    /// reads it; built-in defaults when neither exists.
    pub fn load_for_service(&self) -> Result<Config, LoadError> {
        if let Some(from) = self.seed_source() {
            let text = read(from)?;
            parse(from, &text)?;
            seed(&self.writable, from, text.as_bytes())?;
            info!(from = %from.display(), to = %self.writable.display(),
                "Seeded the configuration from the provisioning file.");
        }
        self.load()
    }

    /// For every other command (status, setup-code, factory-reset, …): the file the service
    /// reads, without writing anything: the writable file, else the provisioning file it would
    /// be seeded from, else the defaults.
    pub fn load(&self) -> Result<Config, LoadError> {
        let path = self.effective();
        match std::fs::read_to_string(path) {
            Ok(text) => parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.provisioning.is_some() => {
                info!(path = %self.writable.display(), "No configuration file; using built-in defaults.");
                Ok(Config::default())
            }
            Err(source) => Err(LoadError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The file the service reads now: the writable one, or, before the first start, the
    /// provisioning file it will be seeded from.
    pub fn effective(&self) -> &Path {
        self.seed_source().unwrap_or(&self.writable)
    }

    /// The provisioning file, when the writable one is absent and it exists.
    fn seed_source(&self) -> Option<&Path> {
        let from = self.provisioning.as_deref()?;
        let absent = matches!(
            std::fs::symlink_metadata(&self.writable),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        (absent && from.exists()).then_some(from)
    }
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn parse(path: &Path, text: &str) -> Result<Config, LoadError> {
    Config::from_toml(text).map_err(|source| LoadError::Invalid {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `bytes` to `to` (mode 0600; temporary file, fsync, rename and fsync in `to`'s own
/// directory, which is created 0700 if missing), so a power cut leaves no half-written file.
fn seed(to: &Path, from: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |source| LoadError::Seed {
        path: to.display().to_string(),
        from: from.display().to_string(),
        source,
    };
    if let Some(dir) = to.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed)?;
    }
    boxidr_setup::replace_file(to, bytes, 0o600).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn location(dir: &Path) -> Location {
        Location {
            writable: dir.join("state").join("boxidr.toml"),
            provisioning: Some(dir.join("etc").join("boxidr.toml")),
        }
    }

    fn provision(loc: &Location, text: &str) {
        let path = loc.provisioning.as_ref().unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// First start: the provisioning file is copied verbatim (comments kept), mode 0600, in a
    /// state directory created 0700, with no temporary file left; later starts keep the
    /// writable copy even when the provisioning file changes.
    #[test]
    fn first_start_seeds_once() {
        let dir = tempfile::tempdir().unwrap();
        let loc = location(dir.path());
        let text = "# provisioned\n[mapping]\ndefault_domain = \"CORP\"\n";
        provision(&loc, text);
        let config = loc.load_for_service().unwrap();
        assert_eq!(config.mapping.default_domain.as_deref(), Some("CORP"));
        assert_eq!(std::fs::read_to_string(&loc.writable).unwrap(), text);
        assert_eq!(mode(&loc.writable), 0o600);
        assert_eq!(mode(loc.writable.parent().unwrap()), 0o700);
        let entries = std::fs::read_dir(loc.writable.parent().unwrap()).unwrap();
        assert_eq!(entries.count(), 1, "no temporary file left");

        provision(&loc, "[mapping]\ndefault_domain = \"OTHER\"\n");
        let again = loc.load_for_service().unwrap();
        assert_eq!(again.mapping.default_domain.as_deref(), Some("CORP"));
        assert_eq!(
            loc.load().unwrap(),
            again,
            "other commands read the same file"
        );
    }

    /// An invalid provisioning file is refused by name (exit 78) and nothing is copied, so a
    /// fixed file is seeded at the next start.
    #[test]
    fn invalid_provisioning_is_not_seeded() {
        let dir = tempfile::tempdir().unwrap();
        let loc = location(dir.path());
        provision(&loc, "[events]\npage_limit = 0\n");
        let err = loc.load_for_service().unwrap_err();
        assert!(err.is_config());
        let text = err.to_string();
        assert!(
            text.contains("etc/boxidr.toml") && text.contains("page_limit"),
            "{text}"
        );
        assert!(!loc.writable.exists());
        provision(&loc, "");
        loc.load_for_service().unwrap();
        assert!(loc.writable.exists());
    }

    /// Before the first start, the other commands read the provisioning file without writing
    /// anything; with neither file, built-in defaults apply.
    #[test]
    fn other_commands_never_write() {
        let dir = tempfile::tempdir().unwrap();
        let loc = location(dir.path());
        assert_eq!(loc.load().unwrap(), Config::default());
        assert_eq!(loc.load_for_service().unwrap(), Config::default());
        assert!(!loc.writable.exists());
        provision(&loc, "[mapping]\ndefault_domain = \"CORP\"\n");
        let config = loc.load().unwrap();
        assert_eq!(config.mapping.default_domain.as_deref(), Some("CORP"));
        assert!(!loc.writable.exists());
    }

    /// The setup page's save replaces the writable file in its own directory (mode 0600); the
    /// provisioning file is untouched and every command reads the saved settings.
    #[test]
    fn saving_replaces_the_writable_file() {
        let dir = tempfile::tempdir().unwrap();
        let loc = location(dir.path());
        let provisioned = "[mapping]\ndefault_domain = \"CORP\"\n";
        provision(&loc, provisioned);
        let mut config = loc.load_for_service().unwrap();
        config.mapping.default_domain = Some("SAVED".into());
        boxidr_setup::write_atomically(&loc.writable, &config).unwrap();
        assert_eq!(loc.load().unwrap(), config);
        assert_eq!(loc.load_for_service().unwrap(), config);
        assert_eq!(mode(&loc.writable), 0o600);
        let provisioning = loc.provisioning.as_ref().unwrap();
        assert_eq!(std::fs::read_to_string(provisioning).unwrap(), provisioned);
    }

    /// `--config FILE` is that file alone: it must exist, and nothing is seeded.
    #[test]
    fn explicit_file() {
        let loc = Location::from_cli(Path::new("/nonexistent/boxidr.toml"));
        assert_eq!(loc.provisioning, None);
        let err = loc.load_for_service().unwrap_err();
        assert!(matches!(err, LoadError::Read { .. }), "{err}");
        let default = Location::from_cli(Path::new(DEFAULT_CONFIG_PATH));
        assert_eq!(
            default.provisioning.as_deref(),
            Some(Path::new(PROVISIONING_CONFIG_PATH))
        );
    }

    /// A seeding failure is not a configuration error (exit 1, not 78).
    #[test]
    fn seed_failure_is_not_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        // A file name that is legal (250 bytes) but leaves no room for the temporary file's
        // longer name next to it: the copy cannot be written, for root too (unlike a
        // permission), while the writable file itself is merely absent.
        let mut loc = location(dir.path());
        loc.writable.set_file_name("c".repeat(250));
        provision(&loc, "");
        let err = loc.load_for_service().unwrap_err();
        assert!(
            matches!(err, LoadError::Seed { .. }) && !err.is_config(),
            "{err}"
        );
        assert!(!loc.writable.exists());
    }
}
