//! The control endpoint: plain HTTP on loopback, for people with `curl` (tests use the
//! [`ProxyHandle`] API directly).
//!
//! | request | effect |
//! |---|---|
//! | `GET /faults` | the faults in force, as JSON ([`Faults`]) |
//! | `PUT /faults` | replace them (absent fields are off) |
//! | `PATCH /faults` | change only the fields given (objects merge: `{"up":{"delay_ms":25}}`) |
//! | `DELETE /faults` | clear every fault |
//! | `GET /stats` | counters ([`crate::Stats`]) |

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::{Faults, ProxyHandle, StartError};

/// Largest request body accepted.
const BODY_LIMIT: u64 = 64 * 1024;

/// A running control endpoint; stops when dropped.
#[derive(Debug)]
pub struct ControlServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Serves the control routes of `proxy` on `listen` (loopback only) on its own thread.
    pub fn start(listen: SocketAddr, proxy: ProxyHandle) -> Result<Self, StartError> {
        if !listen.ip().is_loopback() {
            return Err(StartError::NotLoopback {
                what: "control",
                addr: listen,
            });
        }
        let server = Server::http(listen).map_err(|e| StartError::Bind {
            addr: listen,
            source: std::io::Error::other(e.to_string()),
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| StartError::Bind {
                addr: listen,
                source: std::io::Error::other("not an IP listener"),
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("fault-proxy-control".to_owned())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        match server.recv_timeout(Duration::from_millis(200)) {
                            Ok(Some(request)) => answer(&proxy, request),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "fault-proxy control: receive failed.");
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(proxy: &ProxyHandle, mut request: Request) {
    let (status, body) = route(proxy, &mut request);
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        response = response.with_header(h);
    }
    if status == 405 {
        if let Ok(h) = Header::from_bytes(&b"Allow"[..], allowed(request.url()).as_bytes()) {
            response = response.with_header(h);
        }
    }
    let _ = request.respond(response);
}

fn allowed(url: &str) -> &'static str {
    match url {
        "/faults" => "GET, PUT, PATCH, DELETE",
        _ => "GET",
    }
}

fn route(proxy: &ProxyHandle, request: &mut Request) -> (u16, String) {
    match (request.method(), request.url()) {
        (Method::Get, "/faults") => ok(&proxy.faults()),
        (Method::Get, "/stats") => ok(&proxy.stats()),
        (Method::Delete, "/faults") => {
            proxy.clear();
            ok(&proxy.faults())
        }
        (Method::Put | Method::Patch, "/faults") => {
            let patch = matches!(request.method(), Method::Patch);
            let body = match read_body(request) {
                Ok(body) => body,
                Err(e) => return (400, error_json(&e)),
            };
            match new_faults(proxy.faults(), &body, patch) {
                Ok(faults) => {
                    proxy.set_faults(faults);
                    tracing::info!(?faults, "fault-proxy: faults changed.");
                    ok(&faults)
                }
                Err(e) => (400, error_json(&e)),
            }
        }
        (_, "/faults" | "/stats") => (405, error_json("method not allowed")),
        _ => (404, error_json("not found")),
    }
}

fn read_body(request: &mut Request) -> Result<String, String> {
    let mut body = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(request.as_reader(), BODY_LIMIT),
        &mut body,
    )
    .map_err(|e| format!("cannot read the body: {e}"))?;
    Ok(body)
}

/// The faults after a `PUT` (replace) or `PATCH` (merge into `current`).
pub fn new_faults(current: Faults, body: &str, patch: bool) -> Result<Faults, String> {
    let given: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let merged = if patch {
        let mut base = serde_json::to_value(current).map_err(|e| e.to_string())?;
        merge(&mut base, given);
        base
    } else {
        given
    };
    serde_json::from_value(merged).map_err(|e| format!("not a fault set: {e}"))
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (k, v) in patch {
                merge(base.entry(k).or_insert(Value::Null), v);
            }
        }
        (base, patch) => *base = patch,
    }
}

fn ok<T: serde::Serialize>(value: &T) -> (u16, String) {
    match serde_json::to_string(value) {
        Ok(body) => (200, body),
        Err(e) => (500, error_json(&e.to_string())),
    }
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PATCH changes only what it names; PUT replaces; unknown fields are refused.
    #[test]
    fn patch_merges_put_replaces() {
        let mut current = Faults::default();
        current.down.delay_ms = 25;
        current.stall = true;
        let patched = new_faults(current, r#"{"up":{"delay_ms":10},"stall":false}"#, true).unwrap();
        assert_eq!(patched.up.delay_ms, 10);
        assert_eq!(patched.down.delay_ms, 25);
        assert!(!patched.stall);
        let replaced = new_faults(current, r#"{"up":{"delay_ms":10}}"#, false).unwrap();
        assert_eq!(replaced.down.delay_ms, 0);
        assert!(!replaced.stall);
        assert!(new_faults(current, r#"{"stal":true}"#, true).is_err());
        assert!(new_faults(current, "nope", false).is_err());
    }
}
