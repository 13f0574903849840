//! Fault-injecting Box API simulator (OAuth, events, users) for tests, benchmarks and the demo.
//!
//! It implements the contract in `shared/box/CONTRACT.md` (checklist §7) on plain HTTP, bound to
//! loopback only, and is independent of the boxidr client it is used to test.
//!
//! # Layout
//! * `config`: [`SimConfig`] — the registered app, the enterprise size, the event-feed knobs.
//! * `oauth`: consent page, `POST /oauth2/token` (code / refresh / client credentials), revoke.
//! * `api`: `GET /2.0/events`, `GET /2.0/users`, `GET /2.0/users/me`, `GET /2.0/groups`,
//!   `GET /2.0/groups/{id}/memberships`.
//! * `groups`: the seeded groups (a few `managed_group`s and the `all_users_group`).
//! * `store`: the event log and the two admin stream models (see its docs for the cursor model).
//! * `enterprise`: the seeded users and the deterministic event generator.
//! * `faults`: [`Fault`]s scoped by [`Endpoint`], count- or time-limited.
//! * `control`: the `/_sim/` HTTP control surface.
//! * `server`: accept loop, per-connection kill/hang, transport faults, request log.
//!
//! # Control surface (`/_sim/`, never faulted, never recorded)
//! * `GET /_sim/stats`, `GET /_sim/faults`, `GET /_sim/requests`, `GET /_sim/groups` (groups with
//!   their current member ids)
//! * `POST /_sim/faults` with one fault or an array, e.g.
//!   `{"fault":"rate_limit","retry_after":5,"endpoint":"events","count":3}`. Common keys:
//!   `endpoint` (`any` default, `authorize`, `token`, `revoke`, `events`, `users`, `groups`), `count`
//!   (next N affected requests), `duration_ms` / `duration_secs`; neither = until cleared;
//!   `after` (let the first N affected requests through).
//!   Faults: `outage` (`mode`: `refuse`|`hang`), `rate_limit` (`retry_after`), `server_error`
//!   (`status` 500..=599, `body`: `json`|`empty`|`html`, `retry_after`?), `slow` (`delay_ms`),
//!   `malformed_json`, `truncated_body` (`mode`: `content_length`|`chunked`), `oversized_body`
//!   (`bytes`, default 20 MiB), `legacy_zero_position`, `invalid_stream_position`,
//!   `drop_token_response`, `short_pages` (`max_entries`?), `duplicates` (`rate`).
//!   Answers `{"added":[ids]}` or 400 `{"error":"..."}` (nothing is added then).
//! * `POST /_sim/faults/clear`, `POST /_sim/revoke-all`, `POST /_sim/events` (event or array).
//!
//! # Modelling choices where the contract is silent
//! * `created_after`/`created_before` are both inclusive; a cursor beyond the 14-day streaming
//!   window silently resumes at the oldest retained event; no ~12 s streaming delay buffer.
//! * User streams (`all`/`changes`/`sync`, the default) answer an empty page: not modelled.
//! * `limit` above the maximum is clamped (500 events, 1000 users); non-numbers are
//!   `invalid_limit`, values < 1 `bad_request`.
//! * With `fields`, users carry only `type`, `id` and the requested fields (verbatim NODE
//!   fixture `user-me-fields-enterprise.json`), not name/login.
//! * The CCG service account has role `coadmin` and is not part of the `/users` listing.
//! * `/groups` and memberships need the app scope `manage_groups` and an admin or co-admin;
//!   `filter_term` is a case-insensitive prefix of the group name; an unknown group id is 404.
//!   Groups hold managed users only; a deleted user leaves every group.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use box_sim::{BoxSim, SimConfig};
//! let sim = BoxSim::start(SimConfig::default(), "127.0.0.1:0".parse().expect("literal")).await?;
//! println!("API at {}", sim.api_base());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod clock;
mod config;
mod control;
mod enterprise;
mod faults;
mod geo;
mod groups;
mod http_util;
mod oauth;
mod server;
mod state;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use config::{EndMarker, PositionForm, Role, SimConfig};
pub use enterprise::ActivityItem;
pub use faults::{
    ActiveFault, Endpoint, ErrorBody, Fault, FaultController, FaultError, FaultKind, OutageMode,
    TruncateMode,
};
pub use geo::country_for_ip;
pub use groups::{ALL_USERS_GROUP, GroupInfo, GroupType};
pub use oauth::Revocation;
pub use state::RequestRecord;
pub use store::{ADMIN_BASE, STREAM_BASE, StreamType};

use state::{Shared, lock};

/// Starts simulators. See [`BoxSim::start`].
#[derive(Debug)]
pub struct BoxSim;

impl BoxSim {
    /// Binds `listen` (must be a loopback address), builds the enterprise and backlog, starts the
    /// live generator (if `rate > 0`) and serves until [`SimHandle::shutdown`].
    pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        if !listen.ip().is_loopback() {
            return Err(invalid(format!(
                "box-sim only listens on loopback addresses, not {}",
                listen.ip()
            )));
        }
        if let Some(bad) = config.redirect_uris.iter().find(|u| !oauth::registrable(u)) {
            return Err(invalid(format!(
                "redirect URI {bad:?} cannot be registered: it must be https, or http on localhost/127.0.0.1/[::1]"
            )));
        }
        if !config.rate.is_finite() || config.rate < 0.0 {
            return Err(invalid(format!("rate must be >= 0, got {}", config.rate)));
        }
        if !(0.0..=1.0).contains(&config.streaming_duplicate_rate) {
            return Err(invalid(format!(
                "streaming_duplicate_rate must be in 0..=1, got {}",
                config.streaming_duplicate_rate
            )));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let rate = config.rate;
        let shared = Arc::new(Shared::new(config, addr));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(server::serve(
            listener,
            shared.clone(),
            stop_rx.clone(),
        ))];
        let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if rate > 0.0 {
            tasks.push(tokio::spawn(generate_live(
                shared.clone(),
                rate,
                paused.clone(),
                stop_rx,
            )));
        }
        Ok(SimHandle {
            inner: Arc::new(Inner {
                shared,
                paused,
                stop: stop_tx,
                tasks: Mutex::new(tasks),
            }),
        })
    }
}

async fn generate_live(
    shared: Arc<Shared>,
    rate: f64,
    paused: Arc<std::sync::atomic::AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = tokio::time::Instant::now();
    let mut owed = 0.0_f64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let now = tokio::time::Instant::now();
        owed += rate * now.duration_since(last).as_secs_f64();
        last = now;
        let n = owed.floor();
        owed -= n;
        if paused.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        // Bounded so a stalled runtime cannot produce a giant burst.
        shared.generate((n as usize).min(100_000));
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    /// Live generation paused (the demo's end-of-run drain).
    paused: Arc<std::sync::atomic::AtomicBool>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One event of the log, as [`SimHandle::event_infos`] lists it.
#[derive(Debug, Clone)]
pub struct EventInfo {
    /// `event_id` (empty if the JSON had none).
    pub event_id: String,
    /// `event_type`.
    pub event_type: String,
    /// When the simulator produced or ingested it, milliseconds since the Unix epoch (backlog
    /// events: their place in the simulated past).
    pub processed_ms: u64,
    /// The JSON served for it.
    pub raw: std::sync::Arc<str>,
}

/// Handle on a running simulator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

impl SimHandle {
    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    /// `http://ADDR/api/oauth2/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("http://{}/api/oauth2/authorize", self.addr())
    }

    /// `http://ADDR` (token at `/oauth2/token`, revoke at `/oauth2/revoke`).
    pub fn token_base(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `http://ADDR/2.0`.
    pub fn api_base(&self) -> String {
        format!("http://{}/2.0", self.addr())
    }

    /// The configuration the simulator runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared().config
    }

    /// Set and clear faults.
    pub fn faults(&self) -> FaultController {
        self.shared().faults.clone()
    }

    /// Every `event_id` in the log (backlog, live and injected), in processing order.
    pub fn generated_ids(&self) -> Vec<String> {
        lock(&self.shared().store)
            .events()
            .iter()
            .map(|e| e.event_id.clone())
            .collect()
    }

    /// `event_id` and `created_at` (Unix seconds) of every event in the log, in processing order.
    pub fn event_times(&self) -> Vec<(String, i64)> {
        lock(&self.shared().store)
            .events()
            .iter()
            .map(|e| (e.event_id.clone(), e.created_at.unix_timestamp()))
            .collect()
    }

    /// `event_id` and `event_type` of every event in the log, in processing order.
    pub fn event_types(&self) -> Vec<(String, String)> {
        lock(&self.shared().store)
            .events()
            .iter()
            .map(|e| (e.event_id.clone(), e.event_type.clone()))
            .collect()
    }

    /// Every event in the log, in processing order, with its type, when the simulator produced
    /// it (its appearance in Box: the start of an end-to-end latency) and its JSON as served.
    pub fn event_infos(&self) -> Vec<EventInfo> {
        lock(&self.shared().store)
            .events()
            .iter()
            .map(|e| EventInfo {
                event_id: e.event_id.clone(),
                event_type: e.event_type.clone(),
                processed_ms: u64::try_from(e.processed_at.unix_timestamp_nanos() / 1_000_000)
                    .unwrap_or(0),
                raw: e.raw.clone(),
            })
            .collect()
    }

    /// Pauses (`true`) or resumes the live generator (`--rate`); injected events still land.
    pub fn pause_generation(&self, paused: bool) {
        self.inner
            .paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    /// Number of events in the log (backlog, live and injected).
    pub fn events_generated(&self) -> u64 {
        lock(&self.shared().store).len() as u64
    }

    /// Generates `n` events right now (independent of `rate`).
    pub fn generate_now(&self, n: usize) {
        self.shared().generate(n);
    }

    /// Each event as it enters the log (live, injected).
    pub fn subscribe_activity(&self) -> broadcast::Receiver<ActivityItem> {
        self.shared().activity.subscribe()
    }

    /// Every request so far (control surface excluded).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared().records).clone()
    }

    /// Event ids delivered in complete responses on `stream`, in order, duplicates included.
    pub fn handed_out_ids(&self, stream: StreamType) -> Vec<String> {
        lock(&self.shared().handed)
            .get(&stream)
            .cloned()
            .unwrap_or_default()
    }

    /// Injects events (e.g. the samples) at "now": processed now, `created_at` set to now so both
    /// streams show them. Everything else is kept verbatim.
    pub fn add_events(&self, events: Vec<Value>) {
        self.shared().add_events(events, false);
    }

    /// Injects events at "now" keeping their own `created_at` (an old `created_at` is then outside
    /// the `admin_logs` window or behind its cursors — a late event).
    pub fn add_events_keep_time(&self, events: Vec<Value>) {
        self.shared().add_events(events, true);
    }

    /// Injects events, keeping their own `created_at`, that `admin_logs_streaming` never serves
    /// (its gap) while `admin_logs` does: what a completeness sweep must catch.
    pub fn add_events_missed_by_stream(&self, events: Vec<Value>) {
        self.shared().add_events_with(events, true, true);
    }

    /// Revokes every issued access and refresh token (every bearer call then gets 401).
    pub fn revoke_all_tokens(&self) {
        lock(&self.shared().oauth).revoke_all();
    }

    /// Access tokens that would be accepted now.
    pub fn valid_access_tokens(&self) -> usize {
        lock(&self.shared().oauth).valid_access()
    }

    /// Refresh tokens that could be redeemed now (issued, unused, unexpired, not revoked).
    pub fn valid_refresh_tokens(&self) -> usize {
        lock(&self.shared().oauth).valid_refresh()
    }

    /// What became of a refresh token (`valid`, `used`, `revoked`, `expired`; `None` if the
    /// simulator never issued it): whether a client's stored token still holds its grant.
    pub fn refresh_token_state(&self, token: &str) -> Option<&'static str> {
        lock(&self.shared().oauth).refresh_state(token)
    }

    /// Every `POST /oauth2/revoke` that passed client authentication.
    pub fn revocations(&self) -> Vec<Revocation> {
        lock(&self.shared().oauth).revocations()
    }

    /// Requests to `POST /oauth2/token` with this outcome (`refresh_reused`, `issued`, ...).
    pub fn token_outcomes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/oauth2/token")
            .filter_map(|r| r.outcome)
            .collect()
    }

    /// Changes whose account a consent-page grant is for (admin by default). Affects new grants.
    pub fn set_authorizing_role(&self, role: Role) {
        *lock(&self.shared().authorizing_role) = role;
    }

    /// Login and id of the user a consent-page grant is made for now.
    pub fn authorizing_user(&self) -> (String, String) {
        let u = self.shared().authorizing_user();
        (u.id, u.login)
    }

    /// Ids of the current enterprise users as `/users?user_type=managed` lists them.
    pub fn managed_user_ids(&self) -> Vec<String> {
        lock(&self.shared().enterprise)
            .users
            .iter()
            .filter(|u| u.kind == enterprise::UserKind::Managed)
            .map(|u| u.id.clone())
            .collect()
    }

    /// Every group with the ids of its current members (what `/groups/{id}/memberships` lists).
    pub fn groups(&self) -> Vec<GroupInfo> {
        let ent = lock(&self.shared().enterprise);
        lock(&self.shared().groups)
            .iter()
            .map(|g| g.info(&ent))
            .collect()
    }

    /// Adds a managed group (names may repeat, as in Box) and returns its id.
    pub fn add_group(&self, name: &str, member_ids: &[String]) -> String {
        let now = time::OffsetDateTime::now_utc();
        groups::add(&mut lock(&self.shared().groups), name, member_ids, now)
    }

    /// Deletes a user from the enterprise as an admin would (no event is generated): it leaves
    /// the `/users` listing and every group. Returns whether the user was there.
    pub fn remove_user(&self, id: &str) -> bool {
        let mut ent = lock(&self.shared().enterprise);
        // The primary admin (index 0) is the consent-page user: never removed.
        match ent.users.iter().skip(1).position(|u| u.id == id) {
            Some(i) => {
                let user = ent.users.remove(i + 1);
                ent.former.push(user);
                true
            }
            None => false,
        }
    }

    /// The `/_sim/stats` document.
    pub fn stats(&self) -> Value {
        control::stats(self.shared())
    }

    /// Stops accepting, closes open connections, stops the generator.
    pub async fn shutdown(self) {
        let _ = self.inner.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.inner.tasks));
        for t in tasks {
            let _ = t.await;
        }
    }
}
