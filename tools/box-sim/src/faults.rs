//! Fault injection: what can go wrong, on which endpoint, for how long.
//!
//! A [`Fault`] is a [`FaultKind`] scoped to an [`Endpoint`] and limited by a request count
//! (`times`) and/or a duration; without either it stays until cleared. Transport faults
//! (outage, 429, 5xx, slow, malformed/truncated/oversized bodies) are applied around the
//! handler; the others (short pages, duplicates, legacy `"0"` cursor, invalid cursor, dropped
//! token response) are applied by the handler that understands them, and only consume a count
//! when they actually change a response. `after` lets that many affected requests through
//! first (fail a listing on its second page).
//!
//! JSON form (control surface `POST /_sim/faults`, also [`FaultController::add_json`]):
//! `{"fault":"rate_limit","retry_after":5,"endpoint":"events","count":3,"duration_ms":10000}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Every endpoint except the `/_sim/` control surface.
    #[default]
    Any,
    /// `/api/oauth2/authorize`.
    Authorize,
    /// `POST /oauth2/token`.
    Token,
    /// `POST /oauth2/revoke`.
    Revoke,
    /// `GET /2.0/events` (either stream).
    Events,
    /// `GET /2.0/events?stream_type=admin_logs_streaming` from a position (not `now`) only: a
    /// fault the `admin_logs` reader never meets (the streaming feed stuck on a bad page while
    /// history reads fine; a client re-anchoring at `now` still gets a position).
    EventsStreaming,
    /// `GET /2.0/users` and `/2.0/users/me`.
    Users,
    /// `GET /2.0/groups` and `/2.0/groups/{id}/memberships`.
    Groups,
}

impl Endpoint {
    /// Whether a fault scoped to `self` applies to a request to `target`.
    pub fn covers(self, target: Endpoint) -> bool {
        self == Endpoint::Any
            || self == target
            || (self == Endpoint::Events && target == Endpoint::EventsStreaming)
    }
}

/// How an outage behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// Read the request, then close the connection without answering.
    Refuse,
    /// Read the request and never answer (until the client gives up or the sim shuts down).
    Hang,
}

/// Body of an injected 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ErrorBody {
    /// `ClientError` JSON.
    #[default]
    Json,
    /// No body.
    Empty,
    /// An HTML error page (as an edge proxy would send).
    Html,
}

/// How a truncated body is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TruncateMode {
    /// `Content-Length` of the full body, about half of it sent, then the connection closes.
    #[default]
    ContentLength,
    /// Chunked transfer encoding cut mid-stream (no terminating chunk).
    Chunked,
}

fn default_retry_after() -> u64 {
    1
}
fn default_status() -> u16 {
    500
}
fn default_oversize() -> u64 {
    20 * 1024 * 1024
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Refuse or hang connections.
    Outage {
        /// Refuse (close without answer) or hang.
        mode: OutageMode,
    },
    /// 429 with `retry-after` and the `rate_limit_exceeded` body.
    RateLimit {
        /// Seconds in the `retry-after` header.
        #[serde(default = "default_retry_after")]
        retry_after: u64,
    },
    /// 5xx with a JSON, empty or HTML body.
    ServerError {
        /// 500..=599.
        #[serde(default = "default_status")]
        status: u16,
        /// Body style.
        #[serde(default)]
        body: ErrorBody,
        /// Optional `retry-after` seconds.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Delay the response.
    Slow {
        /// Milliseconds to wait before answering.
        delay_ms: u64,
    },
    /// 200 with a body that is not valid JSON.
    MalformedJson,
    /// 200 whose body is cut short.
    TruncatedBody {
        /// How it is cut.
        #[serde(default)]
        mode: TruncateMode,
    },
    /// 200 with a huge but valid-looking JSON body.
    OversizedBody {
        /// Approximate body size in bytes.
        #[serde(default = "default_oversize")]
        bytes: u64,
    },
    /// Events: an empty page whose `next_stream_position` is `"0"` (or `0`), the old
    /// `admin_logs` quirk (CONTRACT §2.3). The server-side cursor does not advance.
    LegacyZeroPosition,
    /// Events: a valid cursor is declared unknown (400 `Invalid stream position`).
    InvalidStreamPosition,
    /// Token: rotate/issue server-side, then close the connection instead of answering (§7 item 2).
    DropTokenResponse,
    /// Events: pages shorter than `limit` although more events wait.
    ShortPages {
        /// Cap on entries per page (default: random 1..=limit/2 each page).
        #[serde(default)]
        max_entries: Option<usize>,
    },
    /// Events (streaming): re-delivery probability per event while active.
    Duplicates {
        /// 0.0..=1.0.
        rate: f64,
    },
    /// Events: every entry of an affected non-empty page carries this `created_at` text instead
    /// of its own, on either stream (Box sending a date no filter asked for: hostile dates end
    /// to end, e.g. `9999-12-31T23:30:00-01:00`).
    RewriteCreatedAt {
        /// The text served as `created_at` (kept verbatim, need not parse).
        created_at: String,
    },
}

impl FaultKind {
    /// The `fault` name.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Outage { .. } => "outage",
            FaultKind::RateLimit { .. } => "rate_limit",
            FaultKind::ServerError { .. } => "server_error",
            FaultKind::Slow { .. } => "slow",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::TruncatedBody { .. } => "truncated_body",
            FaultKind::OversizedBody { .. } => "oversized_body",
            FaultKind::LegacyZeroPosition => "legacy_zero_position",
            FaultKind::InvalidStreamPosition => "invalid_stream_position",
            FaultKind::DropTokenResponse => "drop_token_response",
            FaultKind::ShortPages { .. } => "short_pages",
            FaultKind::Duplicates { .. } => "duplicates",
            FaultKind::RewriteCreatedAt { .. } => "rewrite_created_at",
        }
    }

    /// Applied around the handler (not by it), excluding `slow`.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            FaultKind::Outage { .. }
                | FaultKind::RateLimit { .. }
                | FaultKind::ServerError { .. }
                | FaultKind::MalformedJson
                | FaultKind::TruncatedBody { .. }
                | FaultKind::OversizedBody { .. }
        )
    }

    fn validate(&self) -> Result<(), FaultError> {
        let bad = |m: String| Err(FaultError::Invalid(m));
        match *self {
            FaultKind::RateLimit { retry_after } if retry_after > 86_400 => {
                bad(format!("retry_after must be <= 86400, got {retry_after}"))
            }
            FaultKind::ServerError { status, .. } if !(500..=599).contains(&status) => {
                bad(format!("status must be in 500..=599, got {status}"))
            }
            FaultKind::ServerError {
                retry_after: Some(r),
                ..
            } if r > 86_400 => bad(format!("retry_after must be <= 86400, got {r}")),
            FaultKind::Slow { delay_ms } if delay_ms > 600_000 => {
                bad(format!("delay_ms must be <= 600000, got {delay_ms}"))
            }
            FaultKind::OversizedBody { bytes } if bytes == 0 || bytes > 512 * 1024 * 1024 => {
                bad(format!("bytes must be in 1..=536870912, got {bytes}"))
            }
            FaultKind::ShortPages {
                max_entries: Some(0),
            } => bad("max_entries must be >= 1".to_owned()),
            FaultKind::Duplicates { rate } if !(0.0..=1.0).contains(&rate) => {
                bad(format!("rate must be in 0.0..=1.0, got {rate}"))
            }
            _ => Ok(()),
        }
    }
}

/// A fault with its scope and lifetime.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Where.
    pub endpoint: Endpoint,
    /// For how many affected requests (`None` = unlimited).
    pub count: Option<u32>,
    /// For how long from when it is added (`None` = until cleared).
    pub duration: Option<Duration>,
    /// Affected requests let through untouched before the fault starts (e.g. fail a listing
    /// on its second page).
    pub after: u32,
}

impl Fault {
    /// An unscoped fault that lasts until cleared.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            endpoint: Endpoint::Any,
            count: None,
            duration: None,
            after: 0,
        }
    }

    /// Restricts the fault to one endpoint.
    pub fn on(mut self, endpoint: Endpoint) -> Fault {
        self.endpoint = endpoint;
        self
    }

    /// Applies the fault to the next `n` affected requests only.
    pub fn times(mut self, n: u32) -> Fault {
        self.count = Some(n);
        self
    }

    /// Lets the next `n` affected requests through before the fault starts.
    pub fn after(mut self, n: u32) -> Fault {
        self.after = n;
        self
    }

    /// Lets the fault expire after `d`.
    pub fn for_duration(mut self, d: Duration) -> Fault {
        self.duration = Some(d);
        self
    }

    /// Parses the JSON form (see module docs).
    pub fn from_json(v: &Value) -> Result<Fault, FaultError> {
        let Value::Object(map) = v else {
            return Err(FaultError::Invalid(
                "a fault must be a JSON object like {\"fault\":\"rate_limit\",\"retry_after\":5}"
                    .to_owned(),
            ));
        };
        let mut map = map.clone();
        let endpoint = match map.remove("endpoint") {
            None | Some(Value::Null) => Endpoint::Any,
            Some(e) => serde_json::from_value(e.clone()).map_err(|_| {
                FaultError::Invalid(format!(
                    "unknown endpoint {e}; expected one of any, authorize, token, revoke, events, events_streaming, users, groups"
                ))
            })?,
        };
        let count = match map.remove("count") {
            None | Some(Value::Null) => None,
            Some(c) => match c.as_u64() {
                Some(n) if (1..=1_000_000).contains(&n) => u32::try_from(n).ok(),
                _ => {
                    return Err(FaultError::Invalid(format!(
                        "count must be an integer in 1..=1000000, got {c}"
                    )));
                }
            },
        };
        let duration = match (map.remove("duration_ms"), map.remove("duration_secs")) {
            (Some(_), Some(_)) => {
                return Err(FaultError::Invalid(
                    "give duration_ms or duration_secs, not both".to_owned(),
                ));
            }
            (Some(d), None) => Some(Duration::from_millis(bounded(
                &d,
                "duration_ms",
                86_400_000,
            )?)),
            (None, Some(d)) => Some(Duration::from_secs(bounded(&d, "duration_secs", 86_400)?)),
            (None, None) => None,
        };
        let after = match map.remove("after") {
            None | Some(Value::Null) => 0,
            Some(a) => match a.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n <= 1_000_000 => n,
                _ => {
                    return Err(FaultError::Invalid(format!(
                        "after must be an integer in 0..=1000000, got {a}"
                    )));
                }
            },
        };
        let kind: FaultKind = serde_json::from_value(Value::Object(map))
            .map_err(|e| FaultError::Invalid(e.to_string()))?;
        kind.validate()?;
        Ok(Fault {
            kind,
            endpoint,
            count,
            duration,
            after,
        })
    }
}

fn bounded(v: &Value, name: &str, max: u64) -> Result<u64, FaultError> {
    match v.as_u64() {
        Some(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(FaultError::Invalid(format!(
            "{name} must be an integer in 1..={max}, got {v}"
        ))),
    }
}

/// A fault description was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// Not valid JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not a valid fault.
    #[error("invalid fault: {0}")]
    Invalid(String),
}

#[derive(Debug)]
struct Active {
    id: u64,
    fault: Fault,
    remaining: Option<u32>,
    until: Option<Instant>,
    /// Affected requests still to let through.
    skip: u32,
}

/// An active fault as listed by [`FaultController::list`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveFault {
    /// Id returned when it was added.
    pub id: u64,
    /// The fault.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Scope.
    pub endpoint: Endpoint,
    /// Requests left (`None` = unlimited).
    pub remaining: Option<u32>,
    /// Milliseconds left (`None` = until cleared).
    pub remaining_ms: Option<u64>,
}

/// Shared, thread-safe set of active faults. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FaultController {
    inner: Arc<Mutex<Vec<Active>>>,
    next_id: Arc<AtomicU64>,
}

impl FaultController {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Activates a fault; returns its id.
    pub fn add(&self, fault: Fault) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let until = fault.duration.map(|d| Instant::now() + d);
        let remaining = fault.count;
        let skip = fault.after;
        self.lock().push(Active {
            id,
            fault,
            remaining,
            until,
            skip,
        });
        id
    }

    /// Parses and activates one fault object or an array of them (all or nothing).
    pub fn add_json(&self, v: &Value) -> Result<Vec<u64>, FaultError> {
        let faults = match v {
            Value::Array(items) => items
                .iter()
                .map(Fault::from_json)
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![Fault::from_json(other)?],
        };
        Ok(faults.into_iter().map(|f| self.add(f)).collect())
    }

    /// Removes one fault; returns whether it existed.
    pub fn remove(&self, id: u64) -> bool {
        let mut g = self.lock();
        let before = g.len();
        g.retain(|a| a.id != id);
        g.len() != before
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Active faults (expired ones are dropped first).
    pub fn list(&self) -> Vec<ActiveFault> {
        let now = Instant::now();
        let mut g = self.lock();
        g.retain(|a| a.until.is_none_or(|u| u > now));
        g.iter()
            .map(|a| ActiveFault {
                id: a.id,
                kind: a.fault.kind.clone(),
                endpoint: a.fault.endpoint,
                remaining: a.remaining,
                remaining_ms: a
                    .until
                    .map(|u| u.saturating_duration_since(now).as_millis() as u64),
            })
            .collect()
    }

    /// Consumes one use of the first active fault on `endpoint` whose kind satisfies `pred`.
    pub(crate) fn take(
        &self,
        endpoint: Endpoint,
        pred: impl Fn(&FaultKind) -> bool,
    ) -> Option<FaultKind> {
        let now = Instant::now();
        let mut g = self.lock();
        g.retain(|a| a.until.is_none_or(|u| u > now));
        let i = g
            .iter()
            .position(|a| a.fault.endpoint.covers(endpoint) && pred(&a.fault.kind))?;
        if g[i].skip > 0 {
            g[i].skip -= 1;
            return None;
        }
        let kind = g[i].fault.kind.clone();
        if let Some(r) = g[i].remaining.as_mut() {
            *r = r.saturating_sub(1);
            if *r == 0 {
                g.remove(i);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Proves the JSON form parses with its common keys and rejects unknown names and bad ranges
    /// with a message naming the problem.
    #[test]
    fn json_form_parses_and_validates() {
        let f = Fault::from_json(&json!({"fault": "rate_limit", "retry_after": 7,
            "endpoint": "events", "count": 2}))
        .unwrap();
        assert_eq!(f.kind, FaultKind::RateLimit { retry_after: 7 });
        assert_eq!(f.endpoint, Endpoint::Events);
        assert_eq!(f.count, Some(2));
        let err = |v: Value| Fault::from_json(&v).unwrap_err().to_string();
        assert!(err(json!({"fault": "meteor"})).contains("unknown variant"));
        assert!(err(json!({"fault": "server_error", "status": 404})).contains("500..=599"));
        assert!(err(json!({"fault": "duplicates", "rate": 1.5})).contains("rate"));
        assert!(err(json!({"fault": "slow"})).contains("delay_ms"));
        assert!(err(json!({"fault": "slow", "delay_ms": 5, "bogus": 1})).contains("bogus"));
        assert!(err(json!({"fault": "malformed_json", "count": 0})).contains("count"));
        assert!(err(json!({"fault": "malformed_json", "endpoint": "ftp"})).contains("endpoint"));
        assert!(err(json!([1])).contains("object"));
    }

    /// Proves count-limited faults are consumed per use and endpoint scoping is honoured.
    #[test]
    fn count_and_scope() {
        let c = FaultController::default();
        c.add(
            Fault::new(FaultKind::MalformedJson)
                .on(Endpoint::Users)
                .times(2),
        );
        assert!(c.take(Endpoint::Events, |_| true).is_none());
        assert!(c.take(Endpoint::Users, |_| true).is_some());
        assert!(c.take(Endpoint::Users, |_| true).is_some());
        assert!(c.take(Endpoint::Users, |_| true).is_none());
        c.add(Fault::new(FaultKind::MalformedJson).for_duration(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.take(Endpoint::Users, |_| true).is_none());
        assert!(c.list().is_empty());
    }

    /// Proves `after` lets exactly that many affected requests through before the fault
    /// starts, and that other endpoints do not use it up.
    #[test]
    fn after_skips_first_requests() {
        let c = FaultController::default();
        let f = Fault::from_json(&json!({"fault": "malformed_json", "endpoint": "users",
            "after": 2, "count": 1}))
        .unwrap();
        assert_eq!(f.after, 2);
        c.add(f);
        assert!(c.take(Endpoint::Events, |_| true).is_none());
        assert!(c.take(Endpoint::Users, |_| true).is_none());
        assert!(c.take(Endpoint::Users, |_| true).is_none());
        assert!(c.take(Endpoint::Users, |_| true).is_some());
        assert!(c.take(Endpoint::Users, |_| true).is_none());
        let err = Fault::from_json(&json!({"fault": "malformed_json", "after": -1}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("after"), "{err}");
    }
}
