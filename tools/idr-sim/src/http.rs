//! HTTP surfaces: Log Search ingest, Platform API and the `/_sim` control endpoints.
//!
//! Log Search ingest (CONTRACT §2.4): `POST /v1/noformat/{token}` → `204 No Content` with
//! `Cache-Control: no-cache, no-store, must-revalidate`. Decisions for the gaps:
//! - unknown token: [`crate::UnknownTokenBehaviour`] (204-and-drop by default, or a 4xx with
//!   `{"message":"Unknown log token"}` answered before the body is read);
//! - body over `body_limit` → `413` (checked on `Content-Length` first, then while reading);
//! - one entry per request unless `split_lines` (then each non-empty line, CR stripped);
//! - an empty body or a body that is not UTF-8 is answered `204` but dropped into the side
//!   channel (Custom Logs "must be UTF-8"; what the real endpoint does is unknown);
//! - other methods on the path → `405`, other paths → `404`.
//!
//! Platform API (CONTRACT §3): `X-Api-Key` on every request (missing/wrong → `401
//! {"message":"Unauthorized"}`), `GET /validate`, `GET /log_search/management/logs[/{id}]`,
//! `GET /log_search/query/logs/{id[:id…]}` (`query`, `from`/`to` in unix ms or `time_range`,
//! `per_page` default 50, optional `sequence_number` lower bound). A query always answers `202`
//! with `links[{rel:"self",href}]`; the href is `{api}/log_search/query/logs/{query_id}` as in
//! the contract's example (also served at `/log_search/query/{query_id}`). Polling answers
//! `202` with rising `progress` for `query_polls_until_ready` polls, then `200` with `events`;
//! more pages are linked as `{rel:"Next"}`. A query sees the records that were visible
//! (receipt plus `ingestion_delay` ≤ now) when it was submitted, with receipt time in `[from, to]`.
//! Event timestamps are receipt times. Unknown log id → `404 {"message":"Log not found: …"}`.
//!
//! LEQL subset: empty, `all`, `where()` → everything; `where("text")` / `where(text)` →
//! case-sensitive substring of the entry text; `where(key="value")` / `where(key=value)` →
//! equality of a (dotted) JSON key, as text. Anything else (regex, AND/OR, calculate…) → `400
//! {"message":"Unsupported LEQL in simulator: …"}` rather than a silently wrong answer.
//!
//! Control surface (`/_sim`, no API key, never subject to request faults):
//! `GET /_sim/stats`, `GET|POST /_sim/faults`, `POST /_sim/faults/clear` (optional
//! `{"surface":…}`), `DELETE /_sim/faults/{id}`, `GET /_sim/rejected?surface=&limit=`,
//! `GET /_sim/records/{uef|logsearch|token}?limit=`, `GET /_sim/info`. Bad input → `400
//! {"error":"…"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};

use crate::conn::BoxIo;
use crate::faults::{FaultKind, FaultSpec, Surface};
use crate::store::{Ingest, LogRecord, RejectReason, SinkCounts, now_ms};
use crate::{Inner, UnknownTokenBehaviour, random_uuid};

/// Finished queries kept for polling; the oldest are forgotten beyond this.
const MAX_QUERIES: usize = 1000;
/// Largest `per_page` accepted.
const MAX_PER_PAGE: usize = 10_000;

/// Serves one connection: HTTP/1.1, or HTTP/2 (ALPN `h2`, or the preface on plain TCP) with
/// at most `h2_max_streams` concurrent streams, as a load balancer in front of the real
/// endpoint would limit them.
pub(crate) async fn serve(io: BoxIo, router: Router, h2_max_streams: u32) {
    let svc = TowerToHyperService::new(router);
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.http2().max_concurrent_streams(h2_max_streams);
    if let Err(e) = builder.serve_connection(TokioIo::new(io), svc).await {
        tracing::debug!(error = %e, "HTTP connection ended with an error.");
    }
}

fn message(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": msg.into() }))).into_response()
}

fn bad_control(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": msg.into() })),
    )
        .into_response()
}

/// Request faults (delay, status) for one HTTP surface; `/_sim` is exempt.
async fn request_faults(
    State((inner, surface)): State<(Arc<Inner>, Surface)>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/_sim") {
        return next.run(req).await;
    }
    inner.count_request(surface);
    let (delay, status) = inner.faults.take_request(surface);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some((code, retry_after)) = status {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = message(code, code.canonical_reason().unwrap_or("Injected fault"));
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    next.run(req).await
}

// ---------------------------------------------------------------- Log Search ingest

pub(crate) fn logsearch_router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/noformat/{token}", post(ingest))
        .layer(middleware::from_fn_with_state(
            (inner.clone(), Surface::Logsearch),
            request_faults,
        ))
        .with_state(inner)
}

fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")],
    )
        .into_response()
}

async fn ingest(
    State(inner): State<Arc<Inner>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let log = inner.log_for_token(&token).cloned();
    if log.is_none()
        && let UnknownTokenBehaviour::Reject(code) = inner.config.unknown_token
    {
        return message(
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            "Unknown log token",
        );
    }
    let limit = inner.config.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
    };
    let Some(log) = log else {
        inner.reject(
            Surface::Logsearch,
            0,
            RejectReason::UnknownToken(token),
            &bytes,
        );
        return no_content();
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        inner.reject(Surface::Logsearch, 0, RejectReason::InvalidUtf8, &bytes);
        return no_content();
    };
    let entries: Vec<&str> = if inner.config.split_lines {
        text.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect()
    } else if text.is_empty() {
        Vec::new()
    } else {
        vec![text]
    };
    if entries.is_empty() {
        inner.reject(Surface::Logsearch, 0, RejectReason::EmptyMessage, &bytes);
        return no_content();
    }
    let received_ms = now_ms();
    let mut store = inner.lock_store();
    for e in entries {
        let (json, box_event_id) = crate::store::parse_entry(e, inner.config.keep_records);
        let sequence_number = store.next_sequence();
        store.push_log(LogRecord {
            token: log.token.clone(),
            log_id: log.id.clone(),
            received_ms,
            text: e.to_owned(),
            json,
            box_event_id,
            via: Ingest::Http,
            sequence_number,
        });
    }
    drop(store);
    no_content()
}

// ---------------------------------------------------------------- Platform API

pub(crate) fn api_router(inner: Arc<Inner>) -> Router {
    let api = Router::new()
        .route("/validate", get(validate))
        .route("/log_search/management/logs", get(list_logs))
        .route("/log_search/management/logs/{id}", get(get_log))
        .route("/log_search/query/logs/{ids}", get(query_or_poll))
        .route("/log_search/query/{query_id}", get(poll_only))
        .fallback(|| async { message(StatusCode::NOT_FOUND, "Not Found") })
        .layer(middleware::from_fn_with_state(inner.clone(), require_key));
    let control = Router::new()
        .route("/_sim/stats", get(ctl_stats))
        .route("/_sim/faults", get(ctl_faults_list).post(ctl_faults_set))
        .route("/_sim/faults/clear", post(ctl_faults_clear))
        .route("/_sim/faults/{id}", delete(ctl_faults_delete))
        .route("/_sim/rejected", get(ctl_rejected))
        .route("/_sim/records/{sink}", get(ctl_records))
        .route("/_sim/info", get(ctl_info))
        .route(
            "/_sim/{*rest}",
            axum::routing::any(|| async { bad_control_404() }),
        );
    Router::new()
        .merge(control)
        .merge(api)
        .layer(middleware::from_fn_with_state(
            (inner.clone(), Surface::Api),
            request_faults,
        ))
        .with_state(inner)
}

fn bad_control_404() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "no such control endpoint"})),
    )
        .into_response()
}

async fn require_key(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("x-api-key")
        .is_some_and(|v| v.as_bytes() == inner.config.api_key.as_bytes());
    if ok {
        next.run(req).await
    } else {
        message(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
}

async fn validate() -> Response {
    message(StatusCode::OK, "Authorized")
}

fn log_json(inner: &Inner, l: &crate::LogDef) -> Value {
    let is_uef = l.token.is_empty();
    json!({
        "id": l.id,
        "name": l.name,
        "tokens": if is_uef { Vec::new() } else { vec![l.token.clone()] },
        "source_type": if is_uef { "collector" } else { "token" },
        "logsets_info": [{
            "id": "00000000-0000-4000-8000-000000000001",
            "name": if is_uef { "Ingress Authentication" } else { "Box" },
        }],
        "structures": [],
        "user_data": {},
        "retention_period": "default",
        "links": [{"rel": "Related", "href": format!("{}/log_search/management/logs/{}", inner.api_base, l.id)}],
    })
}

async fn list_logs(State(inner): State<Arc<Inner>>) -> Response {
    let logs: Vec<Value> = std::iter::once(&inner.uef_log)
        .chain(inner.token_logs.iter())
        .map(|l| log_json(&inner, l))
        .collect();
    (StatusCode::OK, axum::Json(json!({ "logs": logs }))).into_response()
}

async fn get_log(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    match std::iter::once(&inner.uef_log)
        .chain(inner.token_logs.iter())
        .find(|l| l.id == id)
    {
        Some(l) => (
            StatusCode::OK,
            axum::Json(json!({ "log": log_json(&inner, l) })),
        )
            .into_response(),
        None => message(StatusCode::NOT_FOUND, format!("Log not found: {id}")),
    }
}

/// One entry as a query sees it.
#[derive(Debug, Clone)]
struct Hit {
    log_id: String,
    text: String,
    timestamp: u64,
    sequence_number: u64,
}

#[derive(Debug)]
struct QueryState {
    logs: Vec<String>,
    statement: String,
    from: u64,
    to: u64,
    per_page: usize,
    polls: u32,
    hits: Vec<Hit>,
}

/// Submitted Log Search queries.
#[derive(Debug, Default)]
pub struct Queries {
    order: std::collections::VecDeque<String>,
    by_id: HashMap<String, QueryState>,
}

/// Parsed LEQL subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leql {
    /// Every entry.
    All,
    /// Entry text contains this (case-sensitive).
    Contains(String),
    /// JSON key (dotted path) equals this value as text.
    KeyEq(String, String),
}

impl Leql {
    /// Parse the supported subset; `Err` names what is unsupported.
    pub fn parse(q: &str) -> Result<Leql, String> {
        let q = q.trim();
        if q.is_empty() || q.eq_ignore_ascii_case("all") {
            return Ok(Leql::All);
        }
        let lower = q.to_ascii_lowercase();
        if !lower.starts_with("where(") || !q.ends_with(')') {
            return Err(format!("only where(…) is supported: {q}"));
        }
        let inner = q["where(".len()..q.len() - 1].trim();
        if inner.is_empty() {
            return Ok(Leql::All);
        }
        if let Some(s) = quoted(inner) {
            return Ok(Leql::Contains(s));
        }
        if inner.starts_with('/') {
            return Err(format!("regular expressions are not supported: {q}"));
        }
        let upper = inner.to_ascii_uppercase();
        if upper.contains(" AND ")
            || upper.contains(" OR ")
            || upper.contains(" NOT ")
            || inner.contains('"') && !inner.contains('=')
        {
            return Err(format!("boolean operators are not supported: {q}"));
        }
        if let Some((k, v)) = inner.split_once('=') {
            let k = k.trim();
            let v = v.trim();
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            {
                return Err(format!("unsupported key: {q}"));
            }
            let v = quoted(v).unwrap_or_else(|| v.to_owned());
            return Ok(Leql::KeyEq(k.to_owned(), v));
        }
        Ok(Leql::Contains(inner.to_owned()))
    }

    fn matches(&self, text: &str, json: Option<&Value>) -> bool {
        match self {
            Leql::All => true,
            Leql::Contains(s) => text.contains(s.as_str()),
            Leql::KeyEq(k, want) => {
                let mut cur = json;
                for part in k.split('.') {
                    cur = cur.and_then(|v| v.get(part));
                }
                match cur {
                    Some(Value::String(s)) => s == want,
                    Some(Value::Null) | None => false,
                    Some(other) => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *other),
                }
            }
        }
    }
}

/// `"…"` with `\"` and `\\` escapes → the content.
fn quoted(s: &str) -> Option<String> {
    let body = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn parse_ms(params: &HashMap<String, String>, key: &str) -> Result<Option<u64>, String> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("`{key}` must be a unix time in milliseconds")),
    }
}

/// `Last N Minutes|Hours|Days` (case-insensitive, singular or plural).
fn parse_time_range(s: &str, now: u64) -> Option<(u64, u64)> {
    let mut it = s.split_whitespace();
    if !it.next()?.eq_ignore_ascii_case("last") {
        return None;
    }
    let n: u64 = it.next()?.parse().ok()?;
    let unit = it.next()?.to_ascii_lowercase();
    if it.next().is_some() {
        return None;
    }
    let ms = match unit.trim_end_matches('s') {
        "minute" | "min" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => return None,
    };
    Some((now.saturating_sub(n.saturating_mul(ms)), now))
}

async fn query_or_poll(
    State(inner): State<Arc<Inner>>,
    Path(ids): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let known_query = inner
        .queries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .by_id
        .contains_key(&ids);
    if known_query {
        return poll(&inner, &ids, &params);
    }
    submit(&inner, &ids, &params)
}

async fn poll_only(
    State(inner): State<Arc<Inner>>,
    Path(query_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    poll(&inner, &query_id, &params)
}

fn submit(inner: &Inner, ids: &str, params: &HashMap<String, String>) -> Response {
    let now = now_ms();
    let logs: Vec<String> = ids.split(':').map(str::to_owned).collect();
    for id in &logs {
        let known = inner.uef_log.id == *id || inner.token_logs.iter().any(|l| l.id == *id);
        if !known {
            return message(StatusCode::NOT_FOUND, format!("Log not found: {id}"));
        }
    }
    let (from, to) = match (parse_ms(params, "from"), parse_ms(params, "to")) {
        (Err(e), _) | (_, Err(e)) => return message(StatusCode::BAD_REQUEST, e),
        (Ok(Some(f)), Ok(Some(t))) => (f, t),
        (Ok(None), Ok(None)) => match params.get("time_range") {
            Some(tr) => match parse_time_range(tr, now) {
                Some(r) => r,
                None => {
                    return message(
                        StatusCode::BAD_REQUEST,
                        format!("unsupported time_range: {tr}"),
                    );
                }
            },
            None => {
                return message(
                    StatusCode::BAD_REQUEST,
                    "`from` and `to` (unix ms) or `time_range` are required",
                );
            }
        },
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "`from` and `to` must be given together",
            );
        }
    };
    if from > to {
        return message(StatusCode::BAD_REQUEST, "`from` must not be after `to`");
    }
    let per_page = match params.get("per_page") {
        None => 50,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
            _ => {
                return message(
                    StatusCode::BAD_REQUEST,
                    format!("`per_page` must be 1..={MAX_PER_PAGE}"),
                );
            }
        },
    };
    let min_seq = match params.get("sequence_number") {
        None => 0,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return message(
                    StatusCode::BAD_REQUEST,
                    "`sequence_number` must be an integer",
                );
            }
        },
    };
    let statement = params.get("query").cloned().unwrap_or_default();
    let leql = match Leql::parse(&statement) {
        Ok(l) => l,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                format!("Unsupported LEQL in simulator: {e}"),
            );
        }
    };

    let delay = u64::try_from(inner.config.ingestion_delay.as_millis()).unwrap_or(u64::MAX);
    let visible = |received: u64| received.saturating_add(delay) <= now;
    let in_range = |t: u64| from <= t && t <= to;
    let mut hits = Vec::new();
    {
        let store = inner.lock_store();
        if logs.contains(&inner.uef_log.id) {
            for r in &store.uef {
                if visible(r.received_ms)
                    && in_range(r.received_ms)
                    && r.sequence_number >= min_seq
                    && leql.matches(&r.line, Some(&r.value))
                {
                    hits.push(Hit {
                        log_id: inner.uef_log.id.clone(),
                        text: r.line.clone(),
                        timestamp: r.received_ms,
                        sequence_number: r.sequence_number,
                    });
                }
            }
        }
        for r in &store.logs {
            if logs.contains(&r.log_id)
                && visible(r.received_ms)
                && in_range(r.received_ms)
                && r.sequence_number >= min_seq
                && leql.matches(&r.text, r.json.as_ref())
            {
                hits.push(Hit {
                    log_id: r.log_id.clone(),
                    text: r.text.clone(),
                    timestamp: r.received_ms,
                    sequence_number: r.sequence_number,
                });
            }
        }
    }
    hits.sort_by_key(|h| (h.timestamp, h.sequence_number));

    let query_id = format!("{}-1", random_uuid());
    let state = QueryState {
        logs,
        statement,
        from,
        to,
        per_page,
        polls: 0,
        hits,
    };
    let body = progress_body(inner, &query_id, &state, 0);
    let mut q = inner
        .queries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    q.order.push_back(query_id.clone());
    q.by_id.insert(query_id, state);
    while q.order.len() > MAX_QUERIES {
        if let Some(old) = q.order.pop_front() {
            q.by_id.remove(&old);
        }
    }
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn query_json(s: &QueryState) -> Value {
    json!({ "statement": s.statement, "during": { "from": s.from, "to": s.to } })
}

fn poll_href(inner: &Inner, query_id: &str) -> String {
    format!("{}/log_search/query/logs/{}", inner.api_base, query_id)
}

fn progress_body(inner: &Inner, query_id: &str, s: &QueryState, progress: u32) -> Value {
    json!({
        "logs": s.logs,
        "id": query_id,
        "progress": progress,
        "query": query_json(s),
        "links": [{ "rel": "self", "href": poll_href(inner, query_id) }],
    })
}

fn poll(inner: &Inner, query_id: &str, params: &HashMap<String, String>) -> Response {
    let mut q = inner
        .queries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(s) = q.by_id.get_mut(query_id) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("Query not found: {query_id}"),
        );
    };
    let page = match params.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => return message(StatusCode::BAD_REQUEST, "`page` must be a positive integer"),
    };
    let wait = inner.config.query_polls_until_ready;
    if s.polls < wait {
        s.polls += 1;
        let progress = s.polls * 100 / (wait + 1);
        let body = progress_body(inner, query_id, s, progress);
        return (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    }
    let start = (page - 1).saturating_mul(s.per_page);
    let events: Vec<Value> = s
        .hits
        .iter()
        .skip(start)
        .take(s.per_page)
        .map(|h| {
            json!({
                "log_id": h.log_id,
                "message": h.text,
                "timestamp": h.timestamp,
                "sequence_number": h.sequence_number,
                "sequence_number_str": h.sequence_number.to_string(),
                "labels": [],
                "links": [],
            })
        })
        .collect();
    let mut links = Vec::new();
    if start.saturating_add(s.per_page) < s.hits.len() {
        links.push(json!({
            "rel": "Next",
            "href": format!("{}?page={}", poll_href(inner, query_id), page + 1),
        }));
    }
    let body = json!({
        "logs": s.logs,
        "id": query_id,
        "progress": 100,
        "statement": s.statement,
        "leql": query_json(s),
        "events": events,
        "links": links,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------- Control surface

fn sink_json(c: &SinkCounts, accepted: usize, rejected: usize, extra: Value) -> Value {
    let mut v = json!({
        "accepted": accepted,
        "rejected": rejected,
        "distinct_ids": c.delivered(),
        "duplicates": c.duplicates(),
        "without_id": c.without_id,
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
        o.extend(e);
    }
    v
}

/// The `/_sim/stats` document.
pub(crate) fn stats_json(inner: &Inner) -> Value {
    let store = inner.lock_store();
    let counts = store.delivery_counts();
    let rejected = |s: Surface| store.rejected.iter().filter(|r| r.surface == s).count();
    let logs = |via: Ingest| store.logs.iter().filter(|r| r.via == via).count();
    let req = |s: Surface| {
        inner.requests[match s {
            Surface::Logsearch => 2,
            _ => 3,
        }]
        .load(std::sync::atomic::Ordering::SeqCst)
    };
    json!({
        "uef": sink_json(&counts.uef, store.uef.len(), rejected(Surface::Uef), json!({"connections": inner.connections(Surface::Uef)})),
        "logsearch": sink_json(&counts.logsearch, logs(Ingest::Http), rejected(Surface::Logsearch), json!({"requests": req(Surface::Logsearch)})),
        "token": sink_json(&counts.token, logs(Ingest::TokenTcp), rejected(Surface::Token), json!({"connections": inner.connections(Surface::Token)})),
        "api": { "requests": req(Surface::Api) },
        "tls_untrusted_accepted": inner.untrusted_accepted.load(std::sync::atomic::Ordering::SeqCst),
    })
}

async fn ctl_stats(State(inner): State<Arc<Inner>>) -> Response {
    (StatusCode::OK, axum::Json(stats_json(&inner))).into_response()
}

async fn ctl_faults_list(State(inner): State<Arc<Inner>>) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({ "faults": inner.faults.list() })),
    )
        .into_response()
}

async fn ctl_faults_set(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_control(format!("body is not JSON: {e}")),
    };
    let spec = match FaultSpec::from_json(v) {
        Ok(s) => s,
        Err(e) => return bad_control(e.to_string()),
    };
    let cuts_control = spec.surface == Surface::Api
        && (spec.kind == FaultKind::Down
            || !matches!(
                spec.kind,
                FaultKind::Status { .. } | FaultKind::Delay { .. }
            ))
        && spec.count.is_none()
        && spec.duration.is_none();
    if cuts_control {
        return bad_control(
            "this fault would cut off the control surface (it shares the api listener): give `count` or `duration_ms`",
        );
    }
    let echo = spec.to_json();
    match inner.faults.set(spec) {
        Ok(id) => (
            StatusCode::OK,
            axum::Json(json!({ "id": id, "fault": echo })),
        )
            .into_response(),
        Err(e) => bad_control(e.to_string()),
    }
}

async fn ctl_faults_clear(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        inner.faults.clear_all();
        return (StatusCode::OK, axum::Json(json!({ "cleared": "all" }))).into_response();
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_control(format!("body is not JSON: {e}")),
    };
    match v
        .get("surface")
        .map(|s| serde_json::from_value::<Surface>(s.clone()))
    {
        None if v.as_object().is_some_and(serde_json::Map::is_empty) => {
            inner.faults.clear_all();
            (StatusCode::OK, axum::Json(json!({ "cleared": "all" }))).into_response()
        }
        Some(Ok(s)) => {
            inner.faults.clear(s);
            (StatusCode::OK, axum::Json(json!({ "cleared": s }))).into_response()
        }
        _ => bad_control("expected {} or {\"surface\": \"uef|token|logsearch|api\"}"),
    }
}

async fn ctl_faults_delete(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return bad_control("fault id must be an integer");
    };
    if inner.faults.remove(id) {
        (StatusCode::OK, axum::Json(json!({ "removed": id }))).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": format!("no active fault {id}") })),
        )
            .into_response()
    }
}

fn parse_limit(params: &HashMap<String, String>) -> Result<usize, &'static str> {
    match params.get("limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| "`limit` must be a non-negative integer"),
    }
}

async fn ctl_rejected(
    State(inner): State<Arc<Inner>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let limit = match parse_limit(&params) {
        Ok(l) => l,
        Err(e) => return bad_control(e),
    };
    let surface = match params.get("surface") {
        None => None,
        Some(s) => match serde_json::from_value::<Surface>(Value::from(s.as_str())) {
            Ok(s) => Some(s),
            Err(_) => return bad_control("`surface` must be one of uef, token, logsearch, api"),
        },
    };
    let store = inner.lock_store();
    let items: Vec<&crate::Rejected> = store
        .rejected
        .iter()
        .rev()
        .filter(|r| surface.is_none_or(|s| r.surface == s))
        .take(limit)
        .collect();
    (StatusCode::OK, axum::Json(json!({ "rejected": items }))).into_response()
}

async fn ctl_records(
    State(inner): State<Arc<Inner>>,
    Path(sink): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let limit = match parse_limit(&params) {
        Ok(l) => l,
        Err(e) => return bad_control(e),
    };
    let store = inner.lock_store();
    let records = match sink.as_str() {
        "uef" => serde_json::to_value(store.uef.iter().rev().take(limit).collect::<Vec<_>>()),
        "logsearch" => serde_json::to_value(
            store
                .logs
                .iter()
                .rev()
                .filter(|r| r.via == Ingest::Http)
                .take(limit)
                .collect::<Vec<_>>(),
        ),
        "token" => serde_json::to_value(
            store
                .logs
                .iter()
                .rev()
                .filter(|r| r.via == Ingest::TokenTcp)
                .take(limit)
                .collect::<Vec<_>>(),
        ),
        _ => return bad_control("sink must be one of uef, logsearch, token"),
    };
    match records {
        Ok(v) => (StatusCode::OK, axum::Json(json!({ "records": v }))).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn ctl_info(State(inner): State<Arc<Inner>>) -> Response {
    let logs: Vec<Value> = std::iter::once(&inner.uef_log)
        .chain(inner.token_logs.iter())
        .map(|l| json!({"id": l.id, "name": l.name, "token": if l.token.is_empty() { Value::Null } else { Value::from(l.token.clone()) }}))
        .collect();
    let body = json!({
        "logsearch_base": inner.logsearch_base,
        "api_base": inner.api_base,
        "uef_tls": inner.config.uef_tls,
        "token_tls": inner.config.token_tls,
        "ingestion_delay_ms": u64::try_from(inner.config.ingestion_delay.as_millis()).unwrap_or(u64::MAX),
        "split_lines": inner.config.split_lines,
        "body_limit": inner.config.body_limit,
        "logs": logs,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The supported LEQL subset parses; unsupported forms are refused, not misread.
    #[test]
    fn leql_subset() {
        assert_eq!(Leql::parse(""), Ok(Leql::All));
        assert_eq!(Leql::parse("all"), Ok(Leql::All));
        assert_eq!(Leql::parse("where()"), Ok(Leql::All));
        assert_eq!(
            Leql::parse(r#"where("boxidr-canary-1")"#),
            Ok(Leql::Contains("boxidr-canary-1".into()))
        );
        assert_eq!(
            Leql::parse("where(boxidr-canary-1)"),
            Ok(Leql::Contains("boxidr-canary-1".into()))
        );
        assert_eq!(
            Leql::parse(r#"WHERE("a \"b\"")"#),
            Ok(Leql::Contains("a \"b\"".into()))
        );
        assert_eq!(
            Leql::parse(r#"where(event_id="403")"#),
            Ok(Leql::KeyEq("event_id".into(), "403".into()))
        );
        assert!(Leql::parse("where(/abc/i)").is_err());
        assert!(Leql::parse("where(a AND b)").is_err());
        assert!(Leql::parse("calculate(count)").is_err());
        assert!(Leql::parse(r#"where("a") groupby(x)"#).is_err());
    }

    /// Key equality follows dotted paths and compares numbers as text.
    #[test]
    fn leql_key_match() {
        let v = json!({"event_id": 403, "created_by": {"login": "a@b"}});
        assert!(Leql::KeyEq("event_id".into(), "403".into()).matches("", Some(&v)));
        assert!(Leql::KeyEq("created_by.login".into(), "a@b".into()).matches("", Some(&v)));
        assert!(!Leql::KeyEq("created_by.login".into(), "x".into()).matches("", Some(&v)));
    }

    /// `time_range` accepts the documented "Last N Days" form.
    #[test]
    fn time_range_forms() {
        assert_eq!(
            parse_time_range("Last 30 Days", 100_000_000_000),
            Some((100_000_000_000 - 30 * 86_400_000, 100_000_000_000))
        );
        assert_eq!(
            parse_time_range("last 1 hour", 10_000_000),
            Some((10_000_000 - 3_600_000, 10_000_000))
        );
        assert_eq!(parse_time_range("yesterday", 1), None);
    }
}
