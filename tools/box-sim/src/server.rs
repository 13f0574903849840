//! Accept loop, per-connection control (for faults that close or stall connections), routing,
//! transport-level faults and the request log.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::faults::{Endpoint, ErrorBody, FaultKind, OutageMode, TruncateMode};
use crate::http_util::{Out, client_error, request_id, status};
use crate::state::{RequestRecord, Shared, lock};
use crate::{api, control, oauth};

/// Response body type: full or streamed (streams may fail on purpose to cut a body short).
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Accepts connections until `shutdown` flips.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => spawn_connection(stream, shared.clone(), shutdown.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

fn spawn_connection(stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let kill = Arc::new(Notify::new());
    let kill_svc = kill.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let kill = kill_svc.clone();
        async move { Ok::<_, Infallible>(dispatch(shared, req, kill).await) }
    });
    tokio::spawn(async move {
        let conn =
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
        // Dropping `conn` closes the socket without an answer (refuse / drop-token faults).
        tokio::select! {
            _ = conn => {}
            _ = kill.notified() => {}
            _ = shutdown.changed() => {}
        }
    });
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn classify(path: &str, query: &str) -> Endpoint {
    match path {
        "/2.0/events"
            if form_urlencoded::parse(query.as_bytes())
                .any(|(k, v)| k == "stream_type" && v == "admin_logs_streaming")
                && !form_urlencoded::parse(query.as_bytes())
                    .any(|(k, v)| k == "stream_position" && v == "now") =>
        {
            Endpoint::EventsStreaming
        }
        "/api/oauth2/authorize" => Endpoint::Authorize,
        "/oauth2/token" => Endpoint::Token,
        "/oauth2/revoke" => Endpoint::Revoke,
        "/2.0/events" => Endpoint::Events,
        "/2.0/users" | "/2.0/users/me" => Endpoint::Users,
        p if p == "/2.0/groups" || api::group_memberships_id(p).is_some() => Endpoint::Groups,
        _ => Endpoint::Any,
    }
}

async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &str,
    is_form: bool,
) -> Out {
    // RFC 9110 §15.5.6: a 405 names the methods the resource supports in `Allow`.
    let wrong_method = |allow: &'static str| {
        client_error(405, "method_not_allowed", "Method Not Allowed", json!(null))
            .header("allow", allow)
    };
    match path {
        "/api/oauth2/authorize" => match *method {
            Method::GET => oauth::authorize_get(shared, query),
            Method::POST => oauth::authorize_post(shared, body),
            _ => wrong_method("GET, POST"),
        },
        "/oauth2/token" => match *method {
            Method::POST => oauth::token(shared, headers, body, is_form),
            _ => wrong_method("POST"),
        },
        "/oauth2/revoke" => match *method {
            Method::POST => oauth::revoke(shared, headers, body, is_form),
            _ => wrong_method("POST"),
        },
        "/2.0/events" => match *method {
            Method::GET => api::events(shared, headers, query),
            _ => wrong_method("GET"),
        },
        "/2.0/users" => match *method {
            Method::GET => api::users(shared, headers, query),
            _ => wrong_method("GET"),
        },
        "/2.0/users/me" => match *method {
            Method::GET => api::users_me(shared, headers, query),
            _ => wrong_method("GET"),
        },
        "/2.0/groups" => match *method {
            Method::GET => api::groups(shared, headers, query),
            _ => wrong_method("GET"),
        },
        p if api::group_memberships_id(p).is_some() => {
            match (*method == Method::GET, api::group_memberships_id(p)) {
                (true, Some(id)) => api::group_memberships(shared, headers, query, id),
                _ => wrong_method("GET"),
            }
        }
        _ => client_error(404, "not_found", "Not Found", json!(null)),
    }
}

async fn dispatch(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    kill: Arc<Notify>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if path == "/_sim" || path.starts_with("/_sim/") {
        return into_response(control::handle(&shared, &parts.method, &path, &body), false);
    }
    let headers = &parts.headers;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let auth = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let bearer_label = api::bearer(headers).map(|t| lock(&shared.oauth).label_of(t));
    let mut rec = RequestRecord {
        seq: 0,
        at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        auth_scheme: auth.and_then(|a| a.split(' ').next()).map(str::to_owned),
        bearer: bearer_label,
        form_fields: if is_form {
            crate::http_util::parse_pairs(&body_text)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        } else {
            Vec::new()
        },
        content_type,
        status: None,
        fault: None,
        event_ids: Vec::new(),
        stream: None,
        delivered: false,
        grant_type: None,
        outcome: None,
    };
    let endpoint = classify(&path, &query);
    let faults = &shared.faults;
    if let Some(FaultKind::Slow { delay_ms }) =
        faults.take(endpoint, |k| matches!(k, FaultKind::Slow { .. }))
    {
        rec.fault = Some("slow".to_owned());
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let transport = faults.take(endpoint, FaultKind::is_transport);
    if let Some(t) = &transport {
        rec.fault = Some(t.name().to_owned());
    }
    let mut out = match &transport {
        Some(FaultKind::Outage { mode }) => {
            push_record(&shared, rec);
            if *mode == OutageMode::Refuse {
                kill.notify_one();
            }
            return std::future::pending().await;
        }
        Some(FaultKind::RateLimit { retry_after }) => client_error(
            429,
            "rate_limit_exceeded",
            "Request rate limit exceeded, please try again later",
            json!(null),
        )
        .header("retry-after", &retry_after.to_string()),
        Some(FaultKind::ServerError {
            status,
            body,
            retry_after,
        }) => {
            let mut o = server_error(*status, *body);
            if let Some(r) = retry_after {
                o = o.header("retry-after", &r.to_string());
            }
            o
        }
        _ => {
            route(
                &shared,
                &parts.method,
                &path,
                &query,
                headers,
                &body_text,
                is_form,
            )
            .await
        }
    };
    rec.status = Some(out.status);
    rec.grant_type = out.extras.grant_type.take();
    rec.outcome = out.extras.outcome.take();
    rec.stream = out.extras.stream.map(|s| s.as_str());
    rec.event_ids = std::mem::take(&mut out.extras.event_ids);
    if let Some(f) = out.extras.fault.take() {
        rec.fault = Some(match rec.fault.take() {
            Some(prev) => format!("{prev},{f}"),
            None => f,
        });
    }
    if out.kill {
        rec.status = None;
        push_record(&shared, rec);
        kill.notify_one();
        return std::future::pending().await;
    }
    let body_fault = matches!(
        transport,
        Some(
            FaultKind::MalformedJson
                | FaultKind::TruncatedBody { .. }
                | FaultKind::OversizedBody { .. }
        )
    );
    rec.delivered = !body_fault;
    if let (true, Some(stream)) = (rec.delivered, out.extras.stream) {
        lock(&shared.handed)
            .entry(stream)
            .or_default()
            .extend(rec.event_ids.iter().cloned());
    }
    let api = path.starts_with("/2.0");
    push_record(&shared, rec);
    match transport {
        Some(FaultKind::MalformedJson) => {
            let cut = out.body.len() * 2 / 3;
            let mut b = out.body[..cut].to_vec();
            b.extend_from_slice(
                b"\n<!-- upstream connect error or disconnect/reset before headers -->",
            );
            out.body = b.into();
            out.status = 200;
            into_response(out, api)
        }
        Some(FaultKind::TruncatedBody { mode }) => truncated(out, mode, api),
        Some(FaultKind::OversizedBody { bytes }) => oversized(&shared, endpoint, bytes, api),
        _ => into_response(out, api),
    }
}

fn push_record(shared: &Shared, mut rec: RequestRecord) {
    let mut g = lock(&shared.records);
    rec.seq = g.len() as u64 + 1;
    g.push(rec);
}

fn server_error(code: u16, body: ErrorBody) -> Out {
    let (code_str, msg) = match code {
        502 => ("bad_gateway", "Bad Gateway"),
        503 => ("unavailable", "Unavailable"),
        504 => ("gateway_timeout", "Gateway Timeout"),
        _ => ("internal_server_error", "Internal Server Error"),
    };
    match body {
        ErrorBody::Json => client_error(code, code_str, msg, json!(null)),
        ErrorBody::Empty => Out::empty(code),
        ErrorBody::Html => Out::html(
            code,
            format!(
                "<html>\r\n<head><title>{code} {msg}</title></head>\r\n<body>\r\n<center><h1>{code} {msg}</h1></center>\r\n</body>\r\n</html>\r\n"
            ),
        ),
    }
}

fn into_response(out: Out, api: bool) -> Response<Body> {
    let mut resp = Response::new(full(out.body));
    finish_head(&mut resp, out.status, out.content_type, out.headers, api);
    resp
}

fn finish_head(
    resp: &mut Response<Body>,
    code: u16,
    content_type: Option<&'static str>,
    headers: Vec<(hyper::header::HeaderName, HeaderValue)>,
    api: bool,
) {
    *resp.status_mut() = status(code);
    let h = resp.headers_mut();
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if api {
        if let Ok(v) = HeaderValue::from_str(&request_id()) {
            h.insert("box-request-id", v);
        }
    }
    for (k, v) in headers {
        h.append(k, v);
    }
}

/// Sends part of the body, then fails the stream so hyper closes the connection mid-body.
fn truncated(out: Out, mode: TruncateMode, api: bool) -> Response<Body> {
    let full_body = if out.body.is_empty() {
        Bytes::from_static(b"{\"chunk_size\":0,\"next_stream_position\":\"0\",\"entries\":[]}")
    } else {
        out.body.clone()
    };
    let declared = full_body.len();
    let part = full_body.slice(..(declared / 2).max(1));
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let part = part.clone();
        async move {
            match step {
                0 => Some((Ok(Frame::data(part)), 1)),
                1 => {
                    // Let hyper flush the partial body before the failure closes the socket.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "box-sim: truncated body fault",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    finish_head(&mut resp, out.status, out.content_type, out.headers, api);
    if mode == TruncateMode::ContentLength {
        if let Ok(v) = HeaderValue::from_str(&declared.to_string()) {
            resp.headers_mut().insert(CONTENT_LENGTH, v);
        }
    }
    resp
}

/// A valid JSON body of about `bytes` bytes, streamed with an exact `Content-Length`.
fn oversized(shared: &Shared, endpoint: Endpoint, bytes: u64, api: bool) -> Response<Body> {
    let entry: String = {
        let store = lock(&shared.store);
        store
            .events()
            .last()
            .map(|e| e.raw.to_string())
            .unwrap_or_else(|| json!({"type": "event", "event_id": "oversized"}).to_string())
    };
    let (head, tail) = if matches!(endpoint, Endpoint::Events | Endpoint::EventsStreaming) {
        (
            "{\"chunk_size\":0,\"next_stream_position\":\"1152921504606846976\",\"entries\":["
                .to_owned(),
            "]}".to_owned(),
        )
    } else {
        (
            "{\"entries\":[".to_owned(),
            "],\"limit\":100,\"offset\":0,\"total_count\":0}".to_owned(),
        )
    };
    let per = entry.len() as u64 + 1;
    let n = (bytes.saturating_sub((head.len() + tail.len()) as u64) / per).max(1);
    let total = head.len() as u64 + n * per - 1 + tail.len() as u64;
    let entry = Bytes::from(entry);
    const BATCH: u64 = 64;
    let chunks = futures_util::stream::iter(0..=n.div_ceil(BATCH) + 1).map(move |i| {
        let mut buf = Vec::new();
        if i == 0 {
            buf.extend_from_slice(head.as_bytes());
        } else if i <= n.div_ceil(BATCH) {
            let first = (i - 1) * BATCH;
            for k in first..(first + BATCH).min(n) {
                if k > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(&entry);
            }
        } else {
            buf.extend_from_slice(tail.as_bytes());
        }
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(buf)))
    });
    let mut resp = Response::new(StreamBody::new(chunks).boxed_unsync());
    finish_head(&mut resp, 200, Some("application/json"), Vec::new(), api);
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        resp.headers_mut().insert(CONTENT_LENGTH, v);
    }
    resp
}
