//! Errors building a sink or verifier from settings (before anything is sent).

use std::path::PathBuf;

/// A sink or verifier could not be built from its settings. Texts never contain secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The CA file could not be read.
    #[error("reading the CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA PEM holds no usable certificate.
    #[error("the CA PEM is not usable: {0}")]
    CaPem(String),
    /// TLS is on but no CA was given (plain TCP needs the explicit `unencrypted` setting).
    #[error(
        "the Collector needs its CA (Rapid7CA.pem) for TLS, or the explicit `unencrypted` setting"
    )]
    MissingCa,
    /// The host is not a valid DNS name or IP address for TLS.
    #[error("{0:?} is not a valid host name for TLS")]
    ServerName(String),
    /// A base URL is unusable (bad region, not http(s), cannot carry a path).
    #[error("bad URL: {0}")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("building the HTTPS client: {0}")]
    Client(String),
    /// The rustls configuration could not be built.
    #[error("TLS setup: {0}")]
    Tls(String),
}
