//! Fault injection, per surface, set programmatically ([`FaultControl`]) or over
//! `POST /_sim/faults` (same JSON as [`FaultSpec::from_json`]).
//!
//! A fault lasts until cleared, for the next `count` connections (connection faults) or requests
//! (HTTP faults), or for `duration_ms`, whichever ends first. Setting a fault of the same kind on
//! the same surface replaces the previous one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

/// One listener of the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// Collector UEF listener (TCP or TLS).
    Uef,
    /// Log Search token TCP/TLS input.
    Token,
    /// Log Search HTTP ingest (`/v1/noformat/{token}`).
    Logsearch,
    /// Platform API (and the `/_sim` control endpoints).
    Api,
}

impl Surface {
    /// All surfaces.
    pub const ALL: [Surface; 4] = [
        Surface::Uef,
        Surface::Token,
        Surface::Logsearch,
        Surface::Api,
    ];

    /// HTTP surfaces accept `status` and `delay` faults.
    pub fn is_http(self) -> bool {
        matches!(self, Surface::Logsearch | Surface::Api)
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Surface::Uef => "uef",
            Surface::Token => "token",
            Surface::Logsearch => "logsearch",
            Surface::Api => "api",
        })
    }
}

/// How a TLS handshake fault fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsFailMode {
    /// Complete the handshake with a certificate from a CA the client does not trust.
    #[default]
    UntrustedCert,
    /// Read the ClientHello, then reset the connection.
    Abort,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// The listener is closed (connections are refused) and open connections are reset.
    Down,
    /// Accept, then reset (RST) at once or after `after_bytes` raw bytes were received. Complete
    /// lines inside those bytes are processed; a partial line is dropped.
    Reset {
        /// Raw TCP bytes (TLS records included) read before the reset.
        #[serde(default)]
        after_bytes: u64,
    },
    /// Accept and stop reading (receive buffer shrunk, so the window closes and the client's
    /// writes block). The connection resumes when the fault ends (duration or clear).
    Stall,
    /// Send FIN (TLS: close_notify + FIN) right after accept/handshake and keep reading.
    HalfClose,
    /// Fail the TLS handshake (TLS surfaces only).
    TlsHandshakeFail {
        /// How.
        #[serde(default)]
        mode: TlsFailMode,
    },
    /// Read at most `bytes_per_sec` raw bytes per second.
    SlowRead {
        /// Read rate.
        bytes_per_sec: u64,
    },
    /// Answer HTTP requests with this status (HTTP surfaces only; never `/_sim`).
    Status {
        /// 400–599.
        status: u16,
        /// `Retry-After` header value, in seconds.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Wait this long before handling each HTTP request (HTTP surfaces only; never `/_sim`).
    Delay {
        /// Milliseconds.
        ms: u64,
    },
}

impl FaultKind {
    fn tag(&self) -> &'static str {
        match self {
            FaultKind::Down => "down",
            FaultKind::Reset { .. } => "reset",
            FaultKind::Stall => "stall",
            FaultKind::HalfClose => "half_close",
            FaultKind::TlsHandshakeFail { .. } => "tls_handshake_fail",
            FaultKind::SlowRead { .. } => "slow_read",
            FaultKind::Status { .. } => "status",
            FaultKind::Delay { .. } => "delay",
        }
    }

    fn is_connection_level(&self) -> bool {
        matches!(
            self,
            FaultKind::Reset { .. }
                | FaultKind::Stall
                | FaultKind::HalfClose
                | FaultKind::TlsHandshakeFail { .. }
                | FaultKind::SlowRead { .. }
        )
    }
}

/// A fault to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// Where.
    pub surface: Surface,
    /// What.
    pub kind: FaultKind,
    /// For the next N connections / requests only (`None`: until cleared).
    pub count: Option<u32>,
    /// For this long only (`None`: until cleared).
    pub duration: Option<Duration>,
}

impl FaultSpec {
    /// A fault that lasts until cleared.
    pub fn new(surface: Surface, kind: FaultKind) -> Self {
        FaultSpec {
            surface,
            kind,
            count: None,
            duration: None,
        }
    }

    /// Limit to the next `n` connections or requests.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Limit to a time span.
    pub fn for_duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }

    /// Parse the control-surface JSON: `{"surface":"logsearch","kind":"status","status":503,
    /// "retry_after_secs":5,"count":3,"duration_ms":1000}`.
    pub fn from_json(v: Value) -> Result<Self, FaultError> {
        let Value::Object(mut obj) = v else {
            return Err(FaultError::Invalid("body must be a JSON object".into()));
        };
        let surface = obj
            .remove("surface")
            .ok_or_else(|| FaultError::Invalid("missing `surface`".into()))?;
        let surface: Surface = serde_json::from_value(surface).map_err(|_| {
            FaultError::Invalid("`surface` must be one of uef, token, logsearch, api".into())
        })?;
        let count =
            match obj.remove("count") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || FaultError::Invalid("`count` must be a positive integer".into()),
                )?),
            };
        let duration = match obj.remove("duration_ms") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Duration::from_millis(v.as_u64().ok_or_else(|| {
                FaultError::Invalid("`duration_ms` must be a positive integer".into())
            })?)),
        };
        if !obj.contains_key("kind") {
            return Err(FaultError::Invalid("missing `kind`".into()));
        }
        let kind: FaultKind = serde_json::from_value(Value::Object(obj))
            .map_err(|e| FaultError::Invalid(format!("bad fault: {e}")))?;
        Ok(FaultSpec {
            surface,
            kind,
            count,
            duration,
        })
    }

    /// The control-surface JSON form.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.kind).unwrap_or(Value::Null);
        if let Value::Object(obj) = &mut v {
            obj.insert("surface".into(), Value::from(self.surface.to_string()));
            obj.insert("count".into(), self.count.map_or(Value::Null, Value::from));
            obj.insert(
                "duration_ms".into(),
                self.duration.map_or(Value::Null, |d| {
                    Value::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                }),
            );
        }
        v
    }
}

/// A fault could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The request is malformed or names an unknown fault.
    #[error("{0}")]
    Invalid(String),
    /// The fault does not apply to that surface.
    #[error("fault `{kind}` does not apply to surface `{surface}`: {why}")]
    NotApplicable {
        /// Fault kind tag.
        kind: &'static str,
        /// Surface.
        surface: Surface,
        /// Why.
        why: &'static str,
    },
}

/// A fault currently in force.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveFault {
    /// Id returned when it was set.
    pub id: u64,
    /// The control-surface JSON of the fault, `count` showing what is left.
    pub spec: Value,
}

#[derive(Debug)]
struct Active {
    id: u64,
    spec: FaultSpec,
    remaining: Option<u32>,
    until: Option<Instant>,
}

impl Active {
    fn live(&self, now: Instant) -> bool {
        self.until.is_none_or(|u| now < u) && self.remaining != Some(0)
    }
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    active: Vec<Active>,
    clear_epoch: HashMap<Surface, u64>,
}

/// A connection fault taken at accept time.
#[derive(Debug, Clone)]
pub(crate) struct TakenFault {
    pub kind: FaultKind,
    pub until: Option<Instant>,
}

/// Per-surface fault control. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FaultControl {
    state: Arc<Mutex<State>>,
    changed: Arc<watch::Sender<u64>>,
    tls_surfaces: Arc<Vec<Surface>>,
}

impl fmt::Debug for FaultControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultControl")
            .field("active", &self.list())
            .finish()
    }
}

impl FaultControl {
    pub(crate) fn new(tls_surfaces: Vec<Surface>) -> Self {
        FaultControl {
            state: Arc::new(Mutex::new(State::default())),
            changed: Arc::new(watch::channel(0).0),
            tls_surfaces: Arc::new(tls_surfaces),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the Vec inconsistent; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g += 1);
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Set a fault; returns its id.
    pub fn set(&self, spec: FaultSpec) -> Result<u64, FaultError> {
        self.check(&spec)?;
        let id = {
            let mut st = self.lock();
            st.next_id += 1;
            let id = st.next_id;
            let tag = spec.kind.tag();
            st.active
                .retain(|a| !(a.spec.surface == spec.surface && a.spec.kind.tag() == tag));
            st.active.push(Active {
                id,
                remaining: spec.count,
                until: spec.duration.map(|d| Instant::now() + d),
                spec,
            });
            id
        };
        self.bump();
        Ok(id)
    }

    fn check(&self, spec: &FaultSpec) -> Result<(), FaultError> {
        let kind = spec.kind.tag();
        let na = |why| {
            Err(FaultError::NotApplicable {
                kind,
                surface: spec.surface,
                why,
            })
        };
        if spec.count == Some(0) {
            return Err(FaultError::Invalid("`count` must be at least 1".into()));
        }
        if spec.duration == Some(Duration::ZERO) {
            return Err(FaultError::Invalid(
                "`duration_ms` must be at least 1".into(),
            ));
        }
        match &spec.kind {
            FaultKind::Down if spec.count.is_some() => {
                return Err(FaultError::Invalid(
                    "`down` takes `duration_ms`, not `count`".into(),
                ));
            }
            FaultKind::Status { status, .. } if !(400..=599).contains(status) => {
                return Err(FaultError::Invalid(format!(
                    "`status` must be 400..=599, got {status}"
                )));
            }
            FaultKind::Status { .. } | FaultKind::Delay { .. } if !spec.surface.is_http() => {
                return na("only HTTP surfaces (logsearch, api) answer with a status");
            }
            FaultKind::SlowRead { bytes_per_sec: 0 } => {
                return Err(FaultError::Invalid(
                    "`bytes_per_sec` must be at least 1".into(),
                ));
            }
            FaultKind::TlsHandshakeFail { .. } if !self.tls_surfaces.contains(&spec.surface) => {
                return na("this surface is not serving TLS");
            }
            _ => {}
        }
        Ok(())
    }

    /// Remove every fault of one surface (stalled connections there resume).
    pub fn clear(&self, surface: Surface) {
        {
            let mut st = self.lock();
            st.active.retain(|a| a.spec.surface != surface);
            *st.clear_epoch.entry(surface).or_default() += 1;
        }
        self.bump();
    }

    /// Remove every fault.
    pub fn clear_all(&self) {
        {
            let mut st = self.lock();
            st.active.clear();
            for s in Surface::ALL {
                *st.clear_epoch.entry(s).or_default() += 1;
            }
        }
        self.bump();
    }

    /// Remove one fault by id; false when no such fault is active.
    pub fn remove(&self, id: u64) -> bool {
        let removed = {
            let mut st = self.lock();
            let before = st.active.len();
            st.active.retain(|a| a.id != id);
            before != st.active.len()
        };
        if removed {
            self.bump();
        }
        removed
    }

    /// Faults in force (expired and used-up ones are not listed).
    pub fn list(&self) -> Vec<ActiveFault> {
        let now = Instant::now();
        let mut st = self.lock();
        st.active.retain(|a| a.live(now));
        st.active
            .iter()
            .map(|a| {
                let mut spec = a.spec.clone();
                spec.count = a.remaining;
                spec.duration = a.until.map(|u| u.saturating_duration_since(now));
                ActiveFault {
                    id: a.id,
                    spec: spec.to_json(),
                }
            })
            .collect()
    }

    pub(crate) fn clear_epoch(&self, surface: Surface) -> u64 {
        self.lock().clear_epoch.get(&surface).copied().unwrap_or(0)
    }

    /// `Some(until)` when the surface is down (`until` = `None`: until cleared).
    pub(crate) fn down(&self, surface: Surface) -> Option<Option<Instant>> {
        let now = Instant::now();
        let st = self.lock();
        st.active
            .iter()
            .find(|a| a.spec.surface == surface && a.spec.kind == FaultKind::Down && a.live(now))
            .map(|a| a.until)
    }

    fn take(&self, surface: Surface, pred: impl Fn(&FaultKind) -> bool) -> Option<TakenFault> {
        let now = Instant::now();
        let mut st = self.lock();
        st.active.retain(|a| a.live(now));
        let a = st
            .active
            .iter_mut()
            .find(|a| a.spec.surface == surface && pred(&a.spec.kind))?;
        if let Some(n) = &mut a.remaining {
            *n -= 1;
        }
        Some(TakenFault {
            kind: a.spec.kind.clone(),
            until: a.until,
        })
    }

    /// The connection fault for a newly accepted connection, consuming one `count`.
    pub(crate) fn take_connection(&self, surface: Surface) -> Option<TakenFault> {
        self.take(surface, FaultKind::is_connection_level)
    }

    /// HTTP request faults (delay, then status), each consuming one of its own `count`.
    pub(crate) fn take_request(
        &self,
        surface: Surface,
    ) -> (Option<Duration>, Option<(u16, Option<u64>)>) {
        let delay = self
            .take(surface, |k| matches!(k, FaultKind::Delay { .. }))
            .and_then(|t| match t.kind {
                FaultKind::Delay { ms } => Some(Duration::from_millis(ms)),
                _ => None,
            });
        let status = self
            .take(surface, |k| matches!(k, FaultKind::Status { .. }))
            .and_then(|t| match t.kind {
                FaultKind::Status {
                    status,
                    retry_after_secs,
                } => Some((status, retry_after_secs)),
                _ => None,
            });
        (delay, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Count-limited faults apply exactly N times, then stop.
    #[test]
    fn count_limited_faults_expire() {
        let f = FaultControl::new(vec![Surface::Uef]);
        f.set(
            FaultSpec::new(
                Surface::Logsearch,
                FaultKind::Status {
                    status: 503,
                    retry_after_secs: None,
                },
            )
            .times(2),
        )
        .unwrap();
        assert!(f.take_request(Surface::Logsearch).1.is_some());
        assert!(f.take_request(Surface::Api).1.is_none());
        assert!(f.take_request(Surface::Logsearch).1.is_some());
        assert!(f.take_request(Surface::Logsearch).1.is_none());
        assert!(f.list().is_empty());
    }

    /// The JSON form round-trips and rejects unknown kinds, fields and bad numbers.
    #[test]
    fn json_parsing() {
        let spec = FaultSpec::from_json(json!({"surface":"logsearch","kind":"status","status":429,"retry_after_secs":7,"count":3})).unwrap();
        assert_eq!(
            spec.kind,
            FaultKind::Status {
                status: 429,
                retry_after_secs: Some(7)
            }
        );
        assert_eq!(spec.count, Some(3));
        assert_eq!(FaultSpec::from_json(spec.to_json()).unwrap(), spec);
        for bad in [
            json!({"surface":"logsearch","kind":"explode"}),
            json!({"surface":"nowhere","kind":"down"}),
            json!({"kind":"down"}),
            json!({"surface":"uef"}),
            json!({"surface":"uef","kind":"reset","after_bytes":"ten"}),
            json!({"surface":"uef","kind":"reset","afterbytes":10}),
            json!({"surface":"uef","kind":"stall","count":-1}),
            json!({"surface":"uef","kind":"stall","duration_ms":1.5}),
            json!([1]),
        ] {
            assert!(FaultSpec::from_json(bad.clone()).is_err(), "{bad}");
        }
    }

    /// Faults that cannot apply to a surface are refused.
    #[test]
    fn applicability() {
        let f = FaultControl::new(vec![Surface::Uef]);
        assert!(
            f.set(FaultSpec::new(
                Surface::Uef,
                FaultKind::Status {
                    status: 500,
                    retry_after_secs: None
                }
            ))
            .is_err()
        );
        assert!(
            f.set(FaultSpec::new(
                Surface::Api,
                FaultKind::Status {
                    status: 200,
                    retry_after_secs: None
                }
            ))
            .is_err()
        );
        assert!(
            f.set(FaultSpec::new(
                Surface::Token,
                FaultKind::TlsHandshakeFail {
                    mode: TlsFailMode::Abort
                }
            ))
            .is_err()
        );
        assert!(
            f.set(FaultSpec::new(
                Surface::Uef,
                FaultKind::TlsHandshakeFail {
                    mode: TlsFailMode::Abort
                }
            ))
            .is_ok()
        );
        assert!(
            f.set(FaultSpec::new(Surface::Uef, FaultKind::Down).times(1))
                .is_err()
        );
        assert!(
            f.set(FaultSpec::new(Surface::Uef, FaultKind::Stall).times(0))
                .is_err()
        );
    }
}
