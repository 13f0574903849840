//! Box API client: OAuth grants and refresh rotation, the events reader, users sync (with
//! group scoping and pruning).
//!
//! Every call is bounded (timeouts, body caps) and every failure is classified
//! ([`ApiError::recovery`]) so the poller knows whether to wait, refresh once, or stop and ask
//! an operator. Secrets are [`boxidr_model::Secret`]s: never in `Debug`, logs or error text.
//!
//! # Layout
//!
//! - [`poller`]: the streaming reader, a sans-IO [`Poller`] (what to fetch, what to do with a
//!   page, when a stored cursor is stale) and its thin task;
//! - [`sweep`]: the `admin_logs` reader in closed windows (completeness, history, backfill);
//! - [`page`]: what both readers do alike: fetch a page, commit it, report [`ReaderStatus`];
//! - [`utc`]: Box time as fixed-width UTC text;
//! - [`collect`]: the two readers started in the mode the admin chose;
//! - [`auth`], [`tokens`]: grants and the single-use refresh rotation;
//! - [`events`], [`users`], [`groups`], [`http`]: the bounded Box calls; [`users`] also holds
//!   the users sync task ([`users::keep_synced`]) the pipeline runs.
//!
//! The retry schedule is `boxidr_model::retry`, shared with the InsightIDR sinks.

pub mod auth;
pub mod collect;
pub mod error;
pub mod events;
pub mod groups;
pub mod http;
pub mod page;
pub mod poller;
pub mod sweep;
pub mod tokens;
pub mod users;
pub mod utc;

pub use auth::{AuthClient, Grant, TokenSet};
pub use error::{ApiError, AuthError, Recovery};
pub use events::{EventsClient, EventsPage, EventsRequest};
pub use groups::{GroupsClient, with_token};
pub use page::ReaderStatus;
pub use poller::{PageAction, PollStatus, Poller, PollerConfig};
pub use sweep::{Sweep, SweepConfig, SweepOrder, SweepRequest, SweepStatus};
pub use tokens::TokenManager;
pub use users::UsersClient;
