//! LF-framed line surfaces: the Collector UEF listener and the Log Search token TCP input.
//!
//! Framing decisions: a line ends at LF; one CR right before the LF is stripped (a Collector
//! reads text lines, and JSON would treat the CR as whitespace anyway). Bytes after the last LF
//! when the connection ends (close, reset, fault) are an incomplete line and are dropped, never
//! accepted. A line longer than `line_limit` is skipped up to the next LF without being
//! buffered. Nothing is ever written back to the client.

use std::time::SystemTime;

use tokio::io::AsyncReadExt;

use crate::Inner;
use crate::conn::BoxIo;
use crate::faults::Surface;
use crate::store::{Ingest, LogRecord, REJECTED_RAW_CAP, RejectReason, UefRecord, now_ms};
use crate::uef;

/// Read lines until the connection ends; validate and record each one.
pub(crate) async fn serve(inner: &Inner, surface: Surface, mut io: BoxIo, conn: u64) {
    let limit = inner.config.line_limit;
    let mut line: Vec<u8> = Vec::new();
    // Some(len) while skipping an over-long line; `line` then keeps only a prefix for the record.
    let mut overlong: Option<usize> = None;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            let (part, complete) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], Some(i + 1)),
                None => (rest, None),
            };
            match &mut overlong {
                Some(len) => *len += part.len(),
                None if line.len() + part.len() > limit => {
                    overlong = Some(line.len() + part.len());
                    let keep = REJECTED_RAW_CAP.saturating_sub(line.len()).min(part.len());
                    line.extend_from_slice(&part[..keep]);
                }
                None => line.extend_from_slice(part),
            }
            match complete {
                Some(consumed) => {
                    match overlong.take() {
                        Some(len) => inner.reject(
                            surface,
                            conn,
                            RejectReason::LineTooLong { len, limit },
                            &line,
                        ),
                        None => process_line(inner, surface, conn, &line),
                    }
                    line.clear();
                    rest = &rest[consumed..];
                }
                None => rest = &[],
            }
        }
    }
    if let Some(len) = overlong {
        inner.reject(surface, conn, RejectReason::IncompleteLine(len), &line);
    } else if !line.is_empty() {
        inner.reject(
            surface,
            conn,
            RejectReason::IncompleteLine(line.len()),
            &line,
        );
    }
    tracing::debug!(%surface, conn, "Connection ended.");
}

fn process_line(inner: &Inner, surface: Surface, conn: u64, raw: &[u8]) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.is_empty() {
        inner.reject(surface, conn, RejectReason::EmptyLine, raw);
        return;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        inner.reject(surface, conn, RejectReason::InvalidUtf8, raw);
        return;
    };
    match surface {
        Surface::Uef => {
            match uef::validate_line(text, &inner.config.uef_rules, SystemTime::now()) {
                Ok(valid) => {
                    let mut store = inner.lock_store();
                    let sequence_number = store.next_sequence();
                    store.push_uef(UefRecord {
                        received_ms: now_ms(),
                        line: text.to_owned(),
                        value: valid.value,
                        time_normalized: valid.time_normalized,
                        box_event_id: valid.box_event_id,
                        sequence_number,
                        conn,
                    });
                }
                Err(v) => inner.reject(surface, conn, RejectReason::Uef(v), raw),
            }
        }
        _ => process_token_line(inner, conn, text),
    }
}

/// `TOKEN message`: the token is a UUID at the very start followed by one space.
fn process_token_line(inner: &Inner, conn: u64, text: &str) {
    let bytes = text.as_bytes();
    let token_ok =
        bytes.len() >= 36 && is_uuid(&bytes[..36]) && matches!(bytes.get(36), None | Some(b' '));
    if !token_ok {
        inner.reject(Surface::Token, conn, RejectReason::MissingToken, bytes);
        return;
    }
    // The first 36 bytes are ASCII, so these are char boundaries.
    let token = &text[..36];
    let message = text.get(37..).unwrap_or("");
    let Some(log) = inner.log_for_token(token) else {
        inner.reject(
            Surface::Token,
            conn,
            RejectReason::UnknownToken(token.to_owned()),
            bytes,
        );
        return;
    };
    if message.is_empty() {
        inner.reject(Surface::Token, conn, RejectReason::EmptyMessage, bytes);
        return;
    }
    let (json, box_event_id) = crate::store::parse_entry(message, inner.config.keep_records);
    let mut store = inner.lock_store();
    let sequence_number = store.next_sequence();
    store.push_log(LogRecord {
        token: log.token.clone(),
        log_id: log.id.clone(),
        received_ms: now_ms(),
        text: message.to_owned(),
        json,
        box_event_id,
        via: Ingest::TokenTcp,
        sequence_number,
    });
}

/// 8-4-4-4-12 hex digits with dashes (any case).
pub(crate) fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UUID shape check used for token framing.
    #[test]
    fn uuid_shape() {
        assert!(is_uuid(b"2bfbea1e-10c3-4419-bdad-7e6435882e1f"));
        assert!(is_uuid(b"2BFBEA1E-10C3-4419-BDAD-7E6435882E1F"));
        assert!(!is_uuid(b"2bfbea1e-10c3-4419-bdad-7e6435882e1"));
        assert!(!is_uuid(b"2bfbea1e_10c3-4419-bdad-7e6435882e1f"));
        assert!(!is_uuid(b"zbfbea1e-10c3-4419-bdad-7e6435882e1f"));
    }
}
