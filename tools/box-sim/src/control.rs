//! The `/_sim/` control surface for the demo and for humans. Never faulted, never recorded.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /_sim/stats` | – | counters (events, requests, tokens, revocations, handed-out ids, faults) |
//! | `GET /_sim/faults` | – | active faults |
//! | `POST /_sim/faults` | one fault object or an array (see `faults` module docs) | `{"added":[ids]}` |
//! | `POST /_sim/faults/clear` | – | `{"cleared":n}` |
//! | `POST /_sim/revoke-all` | – | `{"revoked":n}` (tokens that were valid) |
//! | `POST /_sim/events` | an event object or an array of them | `{"added":n}` (processed at "now"; a `created_at` text is kept verbatim, else set to now) |
//! | `GET /_sim/requests` | – | the request log |
//! | `GET /_sim/groups` | – | groups with their current member ids |
//!
//! Bad input answers 400 `{"error": "..."}`; unknown paths 404; wrong methods 405.

use hyper::Method;
use serde_json::{Value, json};

use crate::faults::FaultError;
use crate::http_util::Out;
use crate::state::{Shared, lock};
use crate::store::StreamType;

fn reply(status: u16, v: Value) -> Out {
    Out::json(status, v.to_string())
}

fn error(status: u16, msg: impl Into<String>) -> Out {
    reply(status, json!({"error": msg.into()}))
}

fn parse_body(body: &[u8]) -> Result<Value, FaultError> {
    serde_json::from_slice(body).map_err(|e| FaultError::Json(e.to_string()))
}

/// Statistics as served by `GET /_sim/stats`.
pub(crate) fn stats(shared: &Shared) -> Value {
    let (valid_access, valid_refresh, revocations) = {
        let o = lock(&shared.oauth);
        (o.valid_access(), o.valid_refresh(), o.revocations().len())
    };
    let handed = lock(&shared.handed);
    let count = |s: StreamType| handed.get(&s).map_or(0, Vec::len);
    json!({
        "events_generated": lock(&shared.store).len(),
        "users": lock(&shared.enterprise).users.len(),
        "requests": lock(&shared.records).len(),
        "valid_access_tokens": valid_access,
        "valid_refresh_tokens": valid_refresh,
        "revocations": revocations,
        "handed_out": {
            "admin_logs": count(StreamType::AdminLogs),
            "admin_logs_streaming": count(StreamType::AdminLogsStreaming),
        },
        "faults": shared.faults.list(),
    })
}

/// Handles one control request.
pub(crate) fn handle(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Out {
    let path = path.trim_end_matches('/');
    let allowed = match path {
        "/_sim/stats" | "/_sim/requests" | "/_sim/groups" => "GET",
        "/_sim/faults" => "GET, POST",
        "/_sim/faults/clear" | "/_sim/revoke-all" | "/_sim/events" => "POST",
        _ => {
            return error(
                404,
                format!("unknown control endpoint {path}; see GET /_sim/stats, POST /_sim/faults"),
            );
        }
    };
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        return error(405, format!("{path} accepts {allowed}")).header("allow", allowed);
    }
    match (method.as_str(), path) {
        ("GET", "/_sim/stats") => reply(200, stats(shared)),
        ("GET", "/_sim/requests") => {
            let recs = lock(&shared.records).clone();
            reply(200, json!(recs))
        }
        ("GET", "/_sim/faults") => reply(200, json!(shared.faults.list())),
        ("GET", "/_sim/groups") => {
            let ent = lock(&shared.enterprise);
            let groups: Vec<_> = lock(&shared.groups).iter().map(|g| g.info(&ent)).collect();
            reply(200, json!(groups))
        }
        ("POST", "/_sim/faults") => match parse_body(body).and_then(|v| shared.faults.add_json(&v))
        {
            Ok(ids) => reply(200, json!({"added": ids})),
            Err(e) => error(400, e.to_string()),
        },
        ("POST", "/_sim/faults/clear") => {
            let n = shared.faults.list().len();
            shared.faults.clear();
            reply(200, json!({"cleared": n}))
        }
        ("POST", "/_sim/revoke-all") => {
            let n = lock(&shared.oauth).revoke_all();
            reply(200, json!({"revoked": n}))
        }
        ("POST", "/_sim/events") => match parse_body(body) {
            Ok(Value::Array(items)) if items.iter().all(Value::is_object) => {
                let n = items.len();
                shared.add_events(items, true);
                reply(200, json!({"added": n}))
            }
            Ok(obj @ Value::Object(_)) => {
                shared.add_events(vec![obj], true);
                reply(200, json!({"added": 1}))
            }
            Ok(_) => error(400, "expected an event object or an array of event objects"),
            Err(e) => error(400, e.to_string()),
        },
        _ => error(405, format!("{path} accepts {allowed}")).header("allow", allowed),
    }
}
