//! Small HTTP helpers: the handler output type, Box error bodies, query parsing, HTML escaping.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use rand::Rng;
use serde_json::{Value, json};

use crate::store::StreamType;

/// Help URL Box puts in every `ClientError`.
pub const HELP_URL: &str =
    "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/";

/// What a handler produced, before fault transforms and conversion to a hyper response.
#[derive(Debug, Default)]
pub struct Out {
    /// Status code.
    pub status: u16,
    /// Extra headers (content-type is set from `content_type`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `Content-Type`, if any.
    pub content_type: Option<&'static str>,
    /// Body bytes.
    pub body: Bytes,
    /// Close the connection instead of answering (the token was already rotated).
    pub kill: bool,
    /// Facts for the request record (boxed to keep `Out` small in `Result`s).
    pub extras: Box<Extras>,
}

/// Facts a handler reports for the request log.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    /// Event ids in the page (duplicates included).
    pub event_ids: Vec<String>,
    /// Stream of an events page.
    pub stream: Option<StreamType>,
    /// `grant_type` of a token request.
    pub grant_type: Option<String>,
    /// Short outcome tag (e.g. `issued`, `refresh_reused`, `code_expired`).
    pub outcome: Option<String>,
    /// Fault applied inside the handler (e.g. `short_pages`).
    pub fault: Option<String>,
}

impl Out {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Out {
        Out {
            status,
            content_type: Some("application/json"),
            body: body.into(),
            ..Out::default()
        }
    }

    /// An HTML response.
    pub fn html(status: u16, body: String) -> Out {
        Out {
            status,
            content_type: Some("text/html; charset=utf-8"),
            body: body.into(),
            ..Out::default()
        }
    }

    /// A response without body.
    pub fn empty(status: u16) -> Out {
        Out {
            status,
            ..Out::default()
        }
    }

    /// Adds a header (silently skips values that are not valid header text).
    pub fn header(mut self, name: &'static str, value: &str) -> Out {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// Sets the outcome tag.
    pub fn outcome(mut self, o: &str) -> Out {
        self.extras.outcome = Some(o.to_owned());
        self
    }
}

/// A Box request id (hex, like `0p9o8i7u6y5t4r3e` in length).
pub fn request_id() -> String {
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

/// A `ClientError` JSON body (CONTRACT §4.1).
pub fn client_error(status: u16, code: &str, message: &str, context_info: Value) -> Out {
    let body = json!({
        "type": "error",
        "status": status,
        "code": code,
        "context_info": context_info,
        "help_url": HELP_URL,
        "message": message,
        "request_id": request_id(),
    });
    Out::json(status, body.to_string())
}

/// 400 `bad_request` naming the offending parameter, like `error-400-bad-request.json`.
pub fn bad_parameter(name: &str, message: &str) -> Out {
    client_error(
        400,
        "bad_request",
        "Bad Request",
        json!({"errors": [{"reason": "invalid_parameter", "name": name, "message": message}]}),
    )
}

/// An `OAuth2Error` body (CONTRACT §1.7), with `Cache-Control: no-store`.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Out {
    Out::json(
        status,
        json!({"error": error, "error_description": description}).to_string(),
    )
    .header("cache-control", "no-store")
}

/// The 401 Box returns for a missing/expired/revoked token: empty body + `WWW-Authenticate`.
pub fn invalid_token() -> Out {
    Out::empty(401).header(
        "www-authenticate",
        "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\"",
    )
}

/// Decoded query or form pairs, in order.
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// First value of `name`.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Status code from a number (500 if out of range).
pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves every HTML-special character is escaped (the consent page echoes client input).
    #[test]
    fn html_escape_covers_specials() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
