//! Simulator configuration: the registered app, the enterprise, and the knobs of the event feed.

use std::time::Duration;

/// JSON form of `next_stream_position` (CONTRACT §2.2: Box has returned both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionForm {
    /// `"next_stream_position":"1152921504606846976"` (a JSON string).
    #[default]
    String,
    /// `"next_stream_position":1152921504606846976` (a bare JSON integer token, all digits, > 2^53).
    Integer,
}

/// Box user role (`role` field of `User--Full`, CONTRACT §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Primary or secondary enterprise admin.
    Admin,
    /// Co-admin (allowed to read the enterprise streams in this simulator).
    Coadmin,
    /// Regular managed user (not allowed to read enterprise streams or list users).
    User,
}

impl Role {
    /// The wire spelling (`admin`, `coadmin`, `user`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Coadmin => "coadmin",
            Role::User => "user",
        }
    }

    /// Whether the role may read `admin_logs*` and list enterprise users.
    pub fn is_admin_like(self) -> bool {
        matches!(self, Role::Admin | Role::Coadmin)
    }
}

/// How marker paging of `GET /2.0/users` signals the last page (CONTRACT §3.1: null or empty string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndMarker {
    /// `"next_marker": null`.
    #[default]
    Null,
    /// `"next_marker": ""`.
    Empty,
    /// No `next_marker` key at all.
    Absent,
}

/// Everything the simulator needs to start. All fields are public; use `..SimConfig::default()`.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// OAuth client id of the registered app.
    pub client_id: String,
    /// OAuth client secret of the registered app.
    pub client_secret: String,
    /// Enterprise id (`box_subject_id` for client-credentials grants, `enterprise.id` on users).
    pub enterprise_id: String,
    /// Registered redirect URIs (CONTRACT §1.3: https, or http on a loopback host).
    pub redirect_uris: Vec<String>,
    /// Scopes configured for the app; an authorize `scope` parameter can only narrow them (§1.2).
    pub app_scopes: Vec<String>,
    /// Role of the user who clicks "Allow" on the consent page (default: the primary admin).
    pub authorizing_role: Role,
    /// New events generated per second by the background task (0 = none).
    pub rate: f64,
    /// Events already waiting at start, spread over `backlog_span` before start.
    pub backlog: usize,
    /// How far into the past the backlog reaches (default 3 days).
    pub backlog_span: Duration,
    /// Seed for the enterprise and event generator (output is deterministic except wall-clock times).
    pub seed: u64,
    /// Size of the seeded enterprise (managed users).
    pub users: usize,
    /// Access token lifetime (`expires_in`), default 3600 s (§1.6).
    pub access_token_ttl: Duration,
    /// Refresh token lifetime, default 60 days (§1.6).
    pub refresh_token_ttl: Duration,
    /// Authorization code lifetime, default 30 s (§1.2).
    pub code_ttl: Duration,
    /// JSON form of `next_stream_position`.
    pub position_form: PositionForm,
    /// Probability that an event is re-delivered on `admin_logs_streaming` (at-least-once, §2.4).
    pub streaming_duplicate_rate: f64,
    /// How the last page of marker-paged `/users` says "no more".
    pub end_marker: EndMarker,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            client_id: "ly1nj6n11vionaie65emwzk575hnnmrk".to_owned(),
            client_secret: "boxsim-client-secret".to_owned(),
            enterprise_id: "11446498".to_owned(),
            redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
            app_scopes: vec![
                "root_readonly".to_owned(),
                "manage_managed_users".to_owned(),
                "manage_enterprise_properties".to_owned(),
                "manage_groups".to_owned(),
            ],
            authorizing_role: Role::Admin,
            rate: 0.0,
            backlog: 200,
            backlog_span: Duration::from_secs(3 * 24 * 3600),
            seed: 1,
            users: 50,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(60 * 24 * 3600),
            code_ttl: Duration::from_secs(30),
            position_form: PositionForm::String,
            streaming_duplicate_rate: 0.0,
            end_marker: EndMarker::Null,
        }
    }
}
