//! The HTTP plumbing shared by every Box call: one rustls (ring) client, bounded bodies,
//! `Retry-After`, and Box's error JSON read leniently.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

use crate::error::ApiError;

/// Sent on every request so Box support can identify the appliance.
pub const USER_AGENT: &str = concat!("boxidr/", env!("CARGO_PKG_VERSION"));

/// Builds the client used for every Box call: ring-backed rustls verified against the OS
/// trust store, connect and whole-request timeouts, no redirects (Box's API does not redirect;
/// following one could leak the bearer token to another host).
pub fn client(request_timeout: Duration) -> Result<reqwest::Client, ApiError> {
    client_via(request_timeout, None, None)
}

/// [`client`] through an outbound proxy (`None`: direct) and, for a TLS-inspecting proxy,
/// trusting only the PEM CA bundle `ca_pem` instead of the OS store.
pub fn client_via(
    request_timeout: Duration,
    proxy: Option<&reqwest::Proxy>,
    ca_pem: Option<&[u8]>,
) -> Result<reqwest::Client, ApiError> {
    // reqwest's "rustls-no-provider" needs a process-wide provider; installing it twice is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let setup_error = |detail: String| ApiError::Network {
        url: String::new(),
        detail,
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        // Only the proxy configured here: never one from the environment.
        .no_proxy();
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy.clone());
    }
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| setup_error(format!("the Box CA file is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(setup_error("the Box CA file holds no certificate".into()));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| setup_error(e.to_string()))
}

/// The `[network]` proxy with its stored password, or `None` when none is configured.
pub async fn outbound_proxy(
    network: &boxidr_config::Network,
    store: &boxidr_store::Store,
) -> Result<Option<reqwest::Proxy>, String> {
    let Some(url) = &network.proxy else {
        return Ok(None);
    };
    let password = match &network.proxy_user {
        Some(_) => store
            .get_secret(boxidr_store::settings::PROXY_PASSWORD)
            .await
            .map_err(|e| format!("cannot read the proxy password: {e}"))?,
        None => None,
    };
    proxy(
        url,
        network.proxy_user.as_deref(),
        password.as_ref(),
        &network.no_proxy,
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

/// The outbound proxy as reqwest uses it: `url` (no credentials in it), Basic authentication
/// when a user is set, and the hosts reached directly (`no_proxy`, comma-joined as in
/// `NO_PROXY`). The same object serves Box, Log Search and the Platform API.
pub fn proxy(
    url: &reqwest::Url,
    user: Option<&str>,
    password: Option<&boxidr_model::Secret>,
    no_proxy: &[String],
) -> Result<reqwest::Proxy, ApiError> {
    let mut proxy = reqwest::Proxy::all(url.clone()).map_err(|e| ApiError::Network {
        url: redacted_url(url),
        detail: format!("not a usable proxy URL: {e}"),
    })?;
    if let Some(user) = user {
        let password = password.map_or("", |p| p.expose());
        proxy = proxy.basic_auth(user, password);
    }
    Ok(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy.join(","))))
}

/// Reads the body, failing as soon as it exceeds `limit` bytes (Box pages are a few hundred KB;
/// a runaway body must not exhaust a 512 MB board).
pub async fn read_body(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, ApiError> {
    let announced = response.content_length();
    if announced.is_some_and(|len| len > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    // The announced length (within the limit) is reserved at once: growing by doubling kept
    // up to twice a page's size allocated while the body arrived.
    let mut body = Vec::with_capacity(
        announced
            .and_then(|len| usize::try_from(len).ok())
            .unwrap_or(0),
    );
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(ApiError::TooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(ApiError::Network {
                    url: redacted_url(response.url()),
                    detail: format!("body cut off: {}", error_chain(&e)),
                });
            }
        }
    }
}

/// `{api_base}/{segment}` (e.g. `https://api.box.com/2.0` + `events`).
pub fn endpoint(api_base: &reqwest::Url, segment: &str) -> reqwest::Url {
    let mut url = api_base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(segment);
    }
    url
}

/// An authorised API `GET`: the bounded body of a 200, or the classified error of anything else.
pub async fn get_bounded(
    client: &reqwest::Client,
    url: reqwest::Url,
    token: &boxidr_model::Secret,
    max_body: u64,
) -> Result<Vec<u8>, ApiError> {
    let get = || {
        client
            .get(url.clone())
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
    };
    let response = match get().await {
        // A kept-alive connection the peer (often an outbound proxy) closed just as the
        // request went out: nothing was answered, and a GET may go again, once, on a new one.
        Err(e) if closed_unanswered(&e) => get().await,
        sent => sent,
    }
    .map_err(|e| ApiError::Network {
        url: redacted_url(&url),
        detail: error_chain(&e),
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_body(response, max_body).await?;
    if status == 200 {
        Ok(body)
    } else {
        Err(status_error(status, &headers, &body))
    }
}

/// Whether a request failed after it was sent on an open connection and before any answer:
/// not a timeout, not a failed connect (those would only fail again), not a status.
fn closed_unanswered(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_timeout() && !e.is_connect()
}

/// A sample from `tests/fixtures/box/samples/` (tests only).
#[cfg(test)]
pub(crate) fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/box/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `Retry-After` in seconds (Box sends integers; fractional values are tolerated).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// Box's `ClientError` or the hybrid `{error, error_description}` form (CONTRACT §4.1).
#[derive(Debug, Default, Deserialize)]
pub struct BoxErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl BoxErrorBody {
    /// Parses leniently: empty or HTML bodies give an empty value.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    pub fn code(&self) -> String {
        self.code
            .clone()
            .or_else(|| self.error.clone())
            .unwrap_or_default()
    }

    pub fn message(&self) -> String {
        let text = self
            .message
            .clone()
            .or_else(|| self.error_description.clone())
            .unwrap_or_default();
        bounded(&text)
    }
}

/// Maps a non-2xx API response to an error (the body is already read and bounded).
pub fn status_error(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let parsed = BoxErrorBody::parse(body);
    let basic_challenge = headers
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("basic"));
    match status {
        // Box challenges with Bearer; a Basic challenge is a proxy refusing its credentials
        // (tinyproxy answers a wrong password so).
        401 if basic_challenge => ApiError::Proxy {
            detail: "refused the proxy user or password (401, Basic challenge): check them on \
                     the setup page's Collection page"
                .to_owned(),
        },
        401 => ApiError::Unauthorized,
        // Only a proxy answers 407 (Box never does): say so, not "Box refused".
        407 => ApiError::Proxy {
            detail: "asks for authentication (407): set the proxy user and password on the \
                     setup page's Collection page"
                .to_owned(),
        },
        403 => ApiError::Forbidden {
            code: parsed.code(),
            message: parsed.message(),
        },
        429 => ApiError::RateLimited {
            retry_after: retry_after(headers),
        },
        400 if parsed
            .message()
            .to_ascii_lowercase()
            .contains("stream position") =>
        {
            ApiError::InvalidStreamPosition {
                message: parsed.message(),
            }
        }
        s if s >= 500 => ApiError::Server {
            status,
            retry_after: retry_after(headers),
        },
        _ => ApiError::Client {
            status,
            code: parsed.code(),
            message: parsed.message(),
        },
    }
}

/// A URL for messages: scheme, host, port and path only (queries may carry cursors, never
/// secrets, but keep messages short and uniform).
pub fn redacted_url(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    )
}

/// The whole cause chain of an error in one line, bounded like every string from the network.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    bounded(&boxidr_model::error::error_chain(e))
}

/// Strings from the network are untrusted: cap them and strip control characters.
pub fn bounded(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    /// A peer that closes a kept-alive connection when the next request arrives on it (what an
    /// outbound proxy does when its idle timer fires as the request goes out): the GET is sent
    /// again on a new connection, and every call is answered.
    #[tokio::test]
    async fn a_reused_connection_closed_under_a_request_is_retried_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    // The first request is answered and the connection kept alive ...
                    let mut read = 0;
                    while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        read += socket.read(&mut buf[read..]).await.unwrap();
                    }
                    let body = b"{}";
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    socket.write_all(head.as_bytes()).await.unwrap();
                    socket.write_all(body).await.unwrap();
                    // ... and closed unanswered when the next one arrives on it.
                    let _ = socket.read(&mut buf).await;
                });
            }
        });
        let client = client(Duration::from_secs(5)).unwrap();
        let url = reqwest::Url::parse(&format!("http://{addr}/2.0/events")).unwrap();
        let token = boxidr_model::Secret::new("t".to_owned());
        for call in 0..3 {
            let body = get_bounded(&client, url.clone(), &token, 1024).await;
            assert_eq!(body.unwrap_or_else(|e| panic!("call {call}: {e}")), b"{}");
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// Retry-After parses integers and fractions and ignores junk.
    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("100"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(100)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&headers), None);
    }

    /// Both error families and non-JSON bodies map to the right class.
    #[test]
    fn status_errors() {
        let h = HeaderMap::new();
        let sample = br#"{"type":"error","status":403,"code":"access_denied_insufficient_permissions","message":"Access denied - insufficient permission"}"#;
        match status_error(403, &h, sample) {
            ApiError::Forbidden { code, .. } => {
                assert_eq!(code, "access_denied_insufficient_permissions")
            }
            other => panic!("{other:?}"),
        }
        let hybrid =
            br#"{"status":403,"error":"Forbidden","error_description":"Unauthorized Access"}"#;
        match status_error(403, &h, hybrid) {
            ApiError::Forbidden { code, message } => {
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    ("Forbidden", "Unauthorized Access")
                )
            }
            other => panic!("{other:?}"),
        }
        let bad_pos = br#"{"type":"error","status":400,"code":"bad_request","message":"Invalid stream position"}"#;
        assert!(matches!(
            status_error(400, &h, bad_pos),
            ApiError::InvalidStreamPosition { .. }
        ));
        assert!(matches!(
            status_error(502, &h, b"<html>"),
            ApiError::Server { status: 502, .. }
        ));
        assert!(matches!(status_error(401, &h, b""), ApiError::Unauthorized));
    }

    /// Hostile text from the network is capped and stripped of control characters.
    #[test]
    fn bounded_strips_controls() {
        let text = bounded(&format!("a\nb\u{0}c{}", "x".repeat(1000)));
        assert!(text.starts_with("abc"));
        assert_eq!(text.chars().count(), 300);
    }
}
