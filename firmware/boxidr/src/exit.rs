//! The process exit codes systemd and operators rely on (documented in the README).
//!
//! `Restart=on-failure` restarts on [`ExitCode::Failure`]; the unit's
//! `RestartPreventExitStatus=78` keeps a bad configuration from crash-looping.

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
    /// The configuration cannot be used (sysexits `EX_CONFIG`); restarting will not help.
    Config = 78,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code as u8)
    }
}
