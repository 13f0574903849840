//! Box API client: OAuth grants and refresh rotation, the events reader, users sync (with
//! group scoping and pruning).
//!
//! Every call is bounded (timeouts, body caps) and every failure is classified
//! ([`ApiError::recovery`]) so the poller knows whether to wait, refresh once, or stop and ask
//! an operator. Secrets are [`Secret`]s: never in `Debug`, logs or error text.

pub mod auth;
pub mod collect;
pub mod error;
pub mod events;
pub mod groups;
pub mod http;
pub mod poller;
pub mod secret;
pub mod sweep;
pub mod tokens;
pub mod users;

pub use auth::{AuthClient, Grant, TokenSet};
pub use error::{ApiError, AuthError, Recovery};
pub use events::{EventsClient, EventsPage, EventsRequest};
pub use groups::GroupsClient;
pub use poller::{PollStatus, Poller, PollerConfig};
pub use secret::Secret;
pub use sweep::{Sweep, SweepConfig, SweepOrder, SweepRequest, SweepStatus};
pub use tokens::TokenManager;
pub use users::UsersClient;
