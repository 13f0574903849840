//! The process exit codes systemd and operators rely on (documented in the README), and the
//! one place that decides which start-up failure gets which.
//!
//! `Restart=` restarts on [`ExitCode::Failure`]; the unit's `RestartPreventExitStatus=78` keeps
//! a start that cannot succeed (a configuration it cannot use, a database written by newer
//! firmware) from crash-looping: the service stays stopped, the journal says why and what to
//! do, and the LEDs show [`LedFrame::REFUSED`](boxidr_model::LedFrame::REFUSED).

use boxidr_store::StoreError;

use crate::config_file::LoadError;

/// Why `boxidr` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Clean stop (SIGTERM / Ctrl-C, or a command that finished).
    Ok = 0,
    /// A runtime failure; restarting may help.
    Failure = 1,
    /// Wrong command-line usage (clap prints why).
    Usage = 2,
    /// The configuration or the database cannot be used by this binary (sysexits
    /// `EX_CONFIG`); restarting will not help.
    Config = 78,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code as u8)
    }
}

/// Why `boxidr run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error("cannot prepare the data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("cannot open the store {path}: {source}")]
    Store { path: String, source: StoreError },
}

impl StartError {
    /// 78 when a restart cannot help (the configuration, or a store from newer firmware);
    /// 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(e) if e.is_config() => ExitCode::Config,
            Self::Store {
                source: StoreError::SchemaTooNew { .. },
                ..
            } => ExitCode::Config,
            _ => ExitCode::Failure,
        }
    }

    /// What the operator should do, for the journal line.
    pub fn remedy(&self) -> &'static str {
        match self {
            Self::Config(e) if e.is_config() => {
                "fix the named setting in the file (or delete /var/lib/boxidr/boxidr.toml to be \
                 seeded again from /etc/boxidr/boxidr.toml), then `systemctl restart boxidr`"
            }
            Self::Store {
                source: StoreError::SchemaTooNew { .. },
                ..
            } => {
                "this boxidr is older than the one that last wrote the database (a downgrade): \
                 install the newer boxidr package again, then `systemctl restart boxidr`; the \
                 database was not modified, nothing queued is lost"
            }
            Self::Config(_) | Self::DataDir { .. } => {
                "check that the state directory exists and belongs to the service user \
                 (StateDirectory=boxidr); systemd retries"
            }
            Self::Store { .. } => "see the error; systemd retries",
        }
    }
}

/// Logs why the start failed, with the remedy, and returns its exit code. When the service
/// will not be restarted (78), `board` is driven first to leave the REFUSED frame on the LEDs
/// (ATTENTION steady on, the rest dark), so a box without a screen tells it too.
pub async fn refuse_start(
    error: &StartError,
    board: Option<boxidr_board::BoardConfig>,
) -> ExitCode {
    let code = error.exit_code();
    if code == ExitCode::Config {
        tracing::error!(
            exit_code = code as u8,
            error = %error,
            remedy = error.remedy(),
            "Refusing to start; systemd will not restart the service until this is fixed."
        );
        if let Some(board) = board {
            let shown = tokio::task::spawn_blocking(move || show_refused(&board)).await;
            if let Ok(Err(e)) = shown {
                tracing::warn!(error = %e, "The LEDs cannot show the refusal.");
            }
        }
    } else {
        tracing::error!(
            exit_code = code as u8,
            error = %error,
            remedy = error.remedy(),
            "Cannot start."
        );
    }
    code
}

/// Starts the LED thread only to leave [`LedFrame::REFUSED`](boxidr_model::LedFrame::REFUSED)
/// on the board; the simulated board's levels afterwards, if it is one.
fn show_refused(board: &boxidr_board::BoardConfig) -> std::io::Result<Option<[bool; 4]>> {
    let started = boxidr_board::start(board, Box::new(|_| {}))?;
    if let Some(problem) = &started.problem {
        tracing::warn!(%problem, "No physical LEDs to show the refusal on.");
    }
    let sim = started.sim.clone();
    started.handle.show(boxidr_model::LedFrame::REFUSED);
    started.handle.stop_showing(boxidr_model::LedFrame::REFUSED);
    Ok(sim.map(|s| s.levels()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A too-new store and an unusable configuration are 78; a seeding or data-directory
    /// problem and other store errors are 1.
    #[test]
    fn mapping() {
        let too_new = StartError::Store {
            path: "x".into(),
            source: StoreError::SchemaTooNew {
                found: 9,
                supported: 1,
            },
        };
        assert_eq!(too_new.exit_code(), ExitCode::Config);
        assert!(too_new.remedy().contains("newer boxidr"));
        let invalid = StartError::Config(LoadError::Invalid {
            path: "f".into(),
            source: boxidr_config::ConfigError::PageLimit(0),
        });
        assert_eq!(invalid.exit_code(), ExitCode::Config);
        let seed = StartError::Config(LoadError::Seed {
            path: "a".into(),
            from: "b".into(),
            source: std::io::Error::other("read-only"),
        });
        assert_eq!(seed.exit_code(), ExitCode::Failure);
        let closed = StartError::Store {
            path: "x".into(),
            source: StoreError::Closed,
        };
        assert_eq!(closed.exit_code(), ExitCode::Failure);
        let dir = StartError::DataDir {
            dir: "d".into(),
            source: std::io::Error::other("denied"),
        };
        assert_eq!(dir.exit_code(), ExitCode::Failure);
    }

    /// Refusing returns 78 and leaves ATTENTION alone steady on (here on the simulated board).
    #[tokio::test]
    async fn refusal_returns_78_and_shows_it() {
        let error = StartError::Config(LoadError::Invalid {
            path: "f".into(),
            source: boxidr_config::ConfigError::PageLimit(0),
        });
        let code = refuse_start(&error, Some(boxidr_board::BoardConfig::simulated())).await;
        assert_eq!(code, ExitCode::Config);
        let levels = show_refused(&boxidr_board::BoardConfig::simulated()).unwrap();
        assert_eq!(levels, Some([false, false, false, true]));
    }
}
