//! Shared simulator state: the enterprise, the event log, tokens, faults and the request log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::clock::{box_time, parse_rfc3339};
use crate::config::{Role, SimConfig};
use crate::enterprise::{ActivityItem, Enterprise, Generator, SimUser};
use crate::faults::FaultController;
use crate::groups::{self, SimGroup};
use crate::oauth::OAuthState;
use crate::store::{EventStore, StreamType};

/// Locks a mutex, ignoring poisoning (a panicked handler must not take the simulator down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request a client made, as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Order of arrival (1-based).
    pub seq: u64,
    /// Arrival time (RFC 3339, UTC).
    pub at: String,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Raw query string (as sent, still percent-encoded).
    pub query: String,
    /// Scheme of the `Authorization` header (`Bearer`, `Basic`, ...), if any.
    pub auth_scheme: Option<String>,
    /// Label of the bearer token used (`at-3`), or `unknown` for a token the sim never issued.
    pub bearer: Option<String>,
    /// Names of the form fields in a form-encoded body, in order.
    pub form_fields: Vec<String>,
    /// `Content-Type` of the request, if any.
    pub content_type: Option<String>,
    /// Status sent, or `None` when the connection was closed or left hanging instead.
    pub status: Option<u16>,
    /// Fault applied to this request, if any.
    pub fault: Option<String>,
    /// Event ids in the page (duplicates included), for events requests.
    pub event_ids: Vec<String>,
    /// Stream type of an events request.
    pub stream: Option<&'static str>,
    /// Whether a complete, well-formed response was sent (false for faulted bodies).
    pub delivered: bool,
    /// `grant_type` of a token request.
    pub grant_type: Option<String>,
    /// Handler outcome tag: `issued`, `refresh_reused`, `refresh_unknown`, `refresh_expired`,
    /// `code_reused`, `code_expired`, `invalid_client`, `basic_auth_rejected`, `revoked`, ...
    pub outcome: Option<String>,
}

/// Everything the server tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SimConfig,
    pub addr: SocketAddr,
    pub store: Mutex<EventStore>,
    pub enterprise: Mutex<Enterprise>,
    /// Groups; lock after `enterprise` when both are needed.
    pub groups: Mutex<Vec<SimGroup>>,
    pub generator: Mutex<Generator>,
    pub oauth: Mutex<OAuthState>,
    pub faults: FaultController,
    pub records: Mutex<Vec<RequestRecord>>,
    pub handed: Mutex<HashMap<StreamType, Vec<String>>>,
    pub activity: broadcast::Sender<ActivityItem>,
    pub dup_rng: Mutex<StdRng>,
    pub authorizing_role: Mutex<Role>,
}

impl Shared {
    /// Builds the enterprise and the backlog.
    pub fn new(config: SimConfig, addr: SocketAddr) -> Shared {
        let now = OffsetDateTime::now_utc();
        let mut generator = Generator::new(config.seed);
        let mut enterprise = generator.enterprise(config.users, now);
        let groups = groups::seed(config.seed, &enterprise, now);
        let mut store = EventStore::default();
        let span = time::Duration::try_from(config.backlog_span).unwrap_or(time::Duration::days(3));
        let n = config.backlog;
        for i in 0..n {
            // Spread evenly, oldest first, ending a few seconds before start.
            let frac = if n <= 1 {
                1.0
            } else {
                i as f64 / (n - 1) as f64
            };
            let processed = now - span + span * frac - time::Duration::seconds(2);
            let ev = generator.event(&mut enterprise, processed, false);
            store.push(&ev.value, ev.created_at, processed);
        }
        let (activity, _) = broadcast::channel(4096);
        Shared {
            addr,
            store: Mutex::new(store),
            enterprise: Mutex::new(enterprise),
            groups: Mutex::new(groups),
            generator: Mutex::new(generator),
            oauth: Mutex::new(OAuthState::default()),
            faults: FaultController::default(),
            records: Mutex::new(Vec::new()),
            handed: Mutex::new(HashMap::new()),
            activity,
            dup_rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5eed_d0b1e)),
            authorizing_role: Mutex::new(config.authorizing_role),
            config,
        }
    }

    /// Generates `n` live events now.
    pub fn generate(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = OffsetDateTime::now_utc();
        let mut items = Vec::with_capacity(n);
        {
            let mut g = lock(&self.generator);
            let mut ent = lock(&self.enterprise);
            let mut store = lock(&self.store);
            for _ in 0..n {
                let ev = g.event(&mut ent, now, true);
                store.push(&ev.value, ev.created_at, now);
                items.push(ActivityItem::from_event(&ev.value));
            }
        }
        for item in items {
            // No subscribers is fine.
            let _ = self.activity.send(item);
        }
    }

    /// Ingests events at "now". With `keep_created_at`, a `created_at` text is kept verbatim
    /// (hostile dates reach the client as given) and the event is filed under it when it
    /// parses, under "now" when it does not; without it (or without a text), `created_at`
    /// becomes "now".
    pub fn add_events(&self, events: Vec<Value>, keep_created_at: bool) {
        self.add_events_with(events, keep_created_at, false);
    }

    /// [`Self::add_events`], optionally hiding the events from the streaming feed.
    pub fn add_events_with(
        &self,
        events: Vec<Value>,
        keep_created_at: bool,
        streaming_hidden: bool,
    ) {
        let now = OffsetDateTime::now_utc();
        let mut items = Vec::with_capacity(events.len());
        {
            let mut store = lock(&self.store);
            for mut v in events {
                let parsed = v
                    .get("created_at")
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339);
                let has_text = v.get("created_at").is_some_and(Value::is_string);
                let created = match (keep_created_at, parsed) {
                    (true, Some(t)) => t,
                    (true, None) if has_text => now,
                    _ => {
                        if let Some(obj) = v.as_object_mut() {
                            obj.insert("created_at".into(), Value::String(box_time(now)));
                        }
                        now
                    }
                };
                store.push(&v, created, now);
                if streaming_hidden {
                    store.hide_last_from_streaming();
                }
                items.push(ActivityItem::from_event(&v));
            }
        }
        for item in items {
            let _ = self.activity.send(item);
        }
    }

    /// The user a consent-page grant is made for (by the configured role; primary admin fallback).
    pub fn authorizing_user(&self) -> SimUser {
        let role = *lock(&self.authorizing_role);
        let ent = lock(&self.enterprise);
        let found = match role {
            Role::Admin => None,
            r => ent
                .users
                .iter()
                .find(|u| u.role == r && u.status == "active" && u.id != ent.primary_admin().id),
        };
        found.unwrap_or_else(|| ent.primary_admin()).clone()
    }

    /// Current user record by id (service account included).
    pub fn user(&self, id: &str) -> Option<SimUser> {
        lock(&self.enterprise).find(id).cloned()
    }
}
