//! `boxidr run`: the appliance service.

use std::path::Path;

use boxidr_config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use tracing::info;

use crate::exit::ExitCode;

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
}

/// Reads the bootstrap file. The default path may be absent (built-in defaults apply); a path
/// the operator named explicitly must exist.
pub fn load_config(path: &Path) -> Result<Config, LoadError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Config::from_toml(&text).map_err(|source| LoadError::Invalid {
            path: shown,
            source,
        }),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path == Path::new(DEFAULT_CONFIG_PATH) =>
        {
            info!(path = %shown, "No configuration file; using built-in defaults.");
            Ok(Config::default())
        }
        Err(source) => Err(LoadError::Read {
            path: shown,
            source,
        }),
    }
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(config_path: &Path) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "Configuration cannot be used.");
            return ExitCode::Config;
        }
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        database = %config.database_path().display(),
        stream = %config.events.stream_type,
        "boxidr starting."
    );
    // Tells systemd (Type=notify) that start-up is complete; a no-op outside systemd.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "Cannot notify systemd.");
    }
    let stop = shutdown_signal().await;
    info!(signal = stop, "Stopping.");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    ExitCode::Ok
}

/// Resolves on the first SIGTERM or SIGINT, naming it.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can still be killed; wait forever.
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing file named by the operator is an error, not silent defaults.
    #[test]
    fn explicit_missing_file_is_an_error() {
        let err = load_config(Path::new("/nonexistent/boxidr.toml")).unwrap_err();
        assert!(matches!(err, LoadError::Read { .. }), "{err}");
    }

    /// An invalid file names the file and the problem.
    #[test]
    fn invalid_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxidr.toml");
        std::fs::write(&path, "[events]\npage_limit = 0\n").unwrap();
        let err = load_config(&path).unwrap_err().to_string();
        assert!(
            err.contains("boxidr.toml") && err.contains("page_limit"),
            "{err}"
        );
    }
}
