//! Errors of the setup page's own operations. Messages never carry secrets.

/// What went wrong starting the page, or in an operation the binary calls.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the store failed: {0}")]
    Store(#[from] boxidr_store::StoreError),
    #[error("cannot {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS certificate or key is not usable: {0}")]
    Tls(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored setup state is corrupt: {0}")]
    Corrupt(String),
}

impl SetupError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}
