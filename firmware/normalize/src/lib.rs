//! Pure rendering of Box events into what InsightIDR ingests: UEF `INGRESS_AUTHENTICATION`
//! lines for the Collector and raw JSON records for Log Search. No I/O: sinks call this at
//! send time with the queued Box event, the user directory and the current settings.
//!
//! # Layout
//!
//! - [`render_record`]: the one call per queued record; gives a [`Rendered`] with the UEF
//!   line, the raw record, and why either is missing. Never panics, never drops silently.
//! - `kind`: the `boxidr_kind` of each Box event type ([`Kind`], [`kind()`]) and which kinds
//!   go to Log Search when "send unparsed logs" is off ([`Kind::is_sent`]).
//! - `uef`: [`render_uef`], validated against `shared/insightidr/CONTRACT.md` §1.1–1.2 before
//!   it leaves; refusals are a [`NotUef`] with a stable [`Reason`].
//! - `raw`: [`render_raw`], the original event plus kind, mapped account and domain, times,
//!   and flags; capped at [`Settings::raw_cap`] bytes with truncation marked.
//! - `directory`: [`UserDirectory`] and [`DirectoryUser`], read from Box's user JSON;
//!   [`CachedDirectory`], the bounded cache of parsed users in front of the store's users.
//! - `settings`: [`Settings`] from `boxidr_config::Mapping` and the firmware version.
//! - `scope`: [`ScopeFilter`], the `[scope]` rules: out-of-scope events render to nothing.
//! - `time_utc`: Box time → UEF time; the event's own time, never the collection time.
//! - [`canary`]: the verifier's synthetic records, marked so they cannot pass for Box activity.
//!
//! # Line framing
//!
//! Every line is one JSON object with no LF or CR byte: `serde_json` escapes control
//! characters, and U+0085, U+2028/2029, bidi controls and BOM are escaped on top (`line`
//! module). UEF lines are at most [`UEF_MAX_LINE_BYTES`], raw records at most
//! [`Settings::raw_cap`] ([`RAW_MAX_LINE_BYTES`] by default).

mod actor;
pub mod canary;
mod directory;
mod kind;
mod line;
mod raw;
mod record;
mod scope;
mod settings;
pub mod shield;
mod time_utc;
mod uef;

pub use directory::{
    CachedDirectory, DIRECTORY_CACHE, DirectoryError, DirectoryUser, FnDirectory, NoDirectory,
    SCOPE_GROUPS_KEY, UserDirectory, UserRole, UserSource, UserStatus,
};
pub use kind::{
    ADMIN_ACTIVITY, ALERTS, AuthResult, FILE_ACTIVITY, INGRESS, Kind, OAUTH_TOKEN_CREATE,
    ingress_result, kind, kind_of_type,
};
pub use raw::{MAX_FIELD_CHARS, Malformed, RawLine, TRUNCATION_MARK, render_raw};
pub use record::{Rendered, Want, render_event, render_record, render_record_for};
pub use scope::ScopeFilter;
pub use settings::{RAW_MAX_LINE_BYTES, RAW_MIN_LINE_BYTES, Settings, UEF_MAX_LINE_BYTES};
pub use time_utc::{
    EventTime, TimeError, TimeField, event_time, ms_to_utc, shield_alert_time, to_uef_time,
};
pub use uef::{MAX_ACCOUNT_CHARS, MAX_CUSTOM_CHARS, NotUef, Reason, ipv4_of, render_uef};
