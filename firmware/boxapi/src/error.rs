//! Errors of Box API calls, classified so the poller knows whether to wait, refresh, or stop.

use std::time::Duration;

/// What went wrong talking to Box. Messages never include tokens or secrets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach Box at {url}: {detail}")]
    Network { url: String, detail: String },
    #[error("Box rate-limited the request (429); retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Box answered {status} (server error)")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the access token was refused (401)")]
    Unauthorized,
    #[error("Box refused access (403 {code}): {message}")]
    Forbidden { code: String, message: String },
    #[error("Box does not know the stream position (400 {message})")]
    InvalidStreamPosition { message: String },
    #[error("Box refused the request ({status} {code}): {message}")]
    Client {
        status: u16,
        code: String,
        message: String,
    },
    #[error("Box's response body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("Box's response is not the expected JSON: {detail}")]
    BadBody { detail: String },
    #[error("the local store failed: {detail}")]
    Store { detail: String },
    #[error("the outbound proxy {detail}")]
    Proxy { detail: String },
    #[error("Box's token endpoint refused: {0}")]
    Auth(#[from] AuthError),
}

/// How the caller should react to an [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Wait (at least this long, if Box said so) and retry the same request.
    Retry { after: Option<Duration> },
    /// Refresh the access token once, then retry.
    Refresh,
    /// A human must act (re-authorise, grant permissions, fix settings); polling stops.
    Operator,
}

impl ApiError {
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Network { .. }
            | Self::TooLarge { .. }
            | Self::BadBody { .. }
            | Self::Store { .. }
            // The proxy's settings are fixed on the page (which restarts the pipeline) or the
            // proxy comes back: retrying with backoff covers both.
            | Self::Proxy { .. } => Recovery::Retry { after: None },
            Self::RateLimited { retry_after } | Self::Server { retry_after, .. } => {
                Recovery::Retry {
                    after: *retry_after,
                }
            }
            Self::Unauthorized => Recovery::Refresh,
            Self::InvalidStreamPosition { .. } | Self::Forbidden { .. } | Self::Client { .. } => {
                Recovery::Operator
            }
            Self::Auth(e) => e.recovery(),
        }
    }
}

/// An OAuth 2.0 error from `/oauth2/token` or `/oauth2/revoke` (`shared/box/CONTRACT.md` §1.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The refresh token or code is spent, expired or unknown: the admin must grant access again.
    #[error("invalid_grant: {description}")]
    InvalidGrant { description: String },
    #[error("invalid_client: the client ID or secret is wrong ({description})")]
    InvalidClient { description: String },
    #[error("{error}: {description}")]
    Other {
        status: u16,
        error: String,
        description: String,
    },
}

impl AuthError {
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::InvalidGrant { .. } | Self::InvalidClient { .. } => Recovery::Operator,
            Self::Other { status, .. } if *status == 429 || *status >= 500 => {
                Recovery::Retry { after: None }
            }
            Self::Other { .. } => Recovery::Operator,
        }
    }
}
