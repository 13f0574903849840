//! The Log Search sink: each raw record is one `POST <ingest_base>/v1/noformat/<token>`
//! (CONTRACT.md §2.4). A 2xx is a real acknowledgement.
//!
//! Whether one request may carry several entries is not known for the real service (§2.4 and
//! §6.5 list it as a gap), so each record is its own request. Requests are pipelined with a
//! bounded concurrency; results are taken in queue order and only the contiguous prefix of
//! delivered records is acknowledged, so a failure re-sends at most the requests that were in
//! flight after it (fewer than one batch).
//!
//! Responses: 2xx = delivered; 408, 429, 5xx, timeouts and connection errors = retry later
//! (`Retry-After` honoured); 413 = this record is too large for the service: counted as rejected
//! and passed (retrying cannot help and it must not wedge the queue); any other 4xx (401, 403,
//! 404, unknown token) = configuration error: the sink stops and the queue is kept.
//!
//! The log token is part of the URL: the URL is never logged, never put in an error and never
//! shown by `Debug`.

use std::fmt;
use std::time::Duration;

use boxidr_store::SinkId;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use url::Url;

use crate::error::SetupError;
use crate::render::Rendered;
use crate::sink::{Delivery, Sink, SinkError};

/// Sent on every request.
pub const USER_AGENT: &str = concat!("boxidr/", env!("CARGO_PKG_VERSION"));

/// A Log Search log token. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct LogToken(String);

impl LogToken {
    /// Wraps a token (a UUID).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text; the name makes every use visible in review.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LogToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogToken([redacted])")
    }
}

/// Which certificate authorities the HTTPS client trusts.
#[derive(Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// The operating system's trust store (production), through `rustls-platform-verifier`.
    Platform,
    /// Only the certificates in this PEM (simulator, TLS-inspecting proxies).
    CustomCa(Vec<u8>),
}

impl fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Platform => f.write_str("Platform"),
            Self::CustomCa(pem) => write!(f, "CustomCa({} bytes)", pem.len()),
        }
    }
}

/// Where and how to post raw records.
#[derive(Debug, Clone)]
pub struct LogSearchSettings {
    /// `https://<region>.webhook.logs.insight.rapid7.com` or an override.
    pub ingest_base: Url,
    /// The log token (last path segment).
    pub token: LogToken,
    /// Trust anchors for HTTPS.
    pub roots: TrustRoots,
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on one whole request.
    pub request_timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl LogSearchSettings {
    /// Production defaults around a base URL and token.
    pub fn new(ingest_base: Url, token: LogToken) -> Self {
        Self {
            ingest_base,
            token,
            roots: TrustRoots::Platform,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            concurrency: 4,
        }
    }

    /// From the `[insightidr.log_search]` settings and the token from the secrets table.
    pub fn from_config(
        config: &boxidr_config::LogSearch,
        token: LogToken,
    ) -> Result<Self, SetupError> {
        let base = config
            .ingest_base()
            .map_err(|e| SetupError::Url(e.to_string()))?;
        Ok(Self::new(base, token))
    }
}

/// Builds an HTTP client (ring-backed rustls) trusting `roots`, with the given timeouts and no
/// redirects (a redirect could carry the token to another host).
pub fn http_client(
    roots: &TrustRoots,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<reqwest::Client, SetupError> {
    // reqwest's "rustls-no-provider" needs a process-wide provider; a second install fails
    // harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .tcp_keepalive(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    if let TrustRoots::CustomCa(pem) = roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| SetupError::CaPem(e.without_url().to_string()))?;
        if certs.is_empty() {
            return Err(SetupError::CaPem("no certificate found".into()));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder
        .build()
        .map_err(|e| SetupError::Client(error_chain(&e.without_url())))
}

/// The Log Search sink.
pub struct LogSearchSink {
    client: reqwest::Client,
    /// Holds the token: never printed.
    url: Url,
    concurrency: usize,
}

impl fmt::Debug for LogSearchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSearchSink")
            .field("host", &self.url.host_str())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl LogSearchSink {
    /// Builds the client and the ingest URL; sends nothing yet.
    pub fn new(settings: LogSearchSettings) -> Result<Self, SetupError> {
        let url = ingest_url(&settings.ingest_base, &settings.token)?;
        let client = http_client(
            &settings.roots,
            settings.connect_timeout,
            settings.request_timeout,
        )?;
        Ok(Self {
            client,
            url,
            concurrency: settings.concurrency.max(1),
        })
    }

    /// The record's sequence and, when it had something to send, the outcome.
    async fn send_one(&self, seq: u64, line: Option<String>) -> (u64, Option<Outcome>) {
        let outcome = match line {
            None => None,
            Some(line) => Some(self.post(line).await),
        };
        (seq, outcome)
    }

    async fn post(&self, body: String) -> Outcome {
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                // The body is not needed; dropping the response returns the connection.
                classify(status, retry_after)
            }
            Err(e) => Outcome::Retry {
                message: format!("posting to Log Search: {}", error_chain(&e.without_url())),
                retry_after: None,
            },
        }
    }
}

/// `<base>/v1/noformat/<token>`, keeping any path prefix of the base.
fn ingest_url(base: &Url, token: &LogToken) -> Result<Url, SetupError> {
    if !matches!(base.scheme(), "https" | "http") {
        return Err(SetupError::Url(format!(
            "Log Search base must be https, not {}",
            base.scheme()
        )));
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| SetupError::Url("Log Search base cannot carry a path".into()))?
        .pop_if_empty()
        .extend(["v1", "noformat", token.expose()]);
    Ok(url)
}

/// What one response means for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered,
    /// 413: this record can never be accepted as is.
    TooLarge,
    /// Try again later.
    Retry {
        /// What happened.
        message: String,
        /// `Retry-After`, if given.
        retry_after: Option<Duration>,
    },
    /// Stop the sink until the settings change.
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// Maps an HTTP status (and `Retry-After`) to an [`Outcome`].
pub fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    let text = status_text(status);
    match status {
        200..=299 => Outcome::Delivered,
        413 => Outcome::TooLarge,
        408 | 429 | 500..=599 => Outcome::Retry {
            message: format!("Log Search answered {text}"),
            retry_after,
        },
        400..=499 => Outcome::Config {
            reason: format!(
                "Log Search refused the request with {text}: check the log token and region"
            ),
        },
        // 1xx/3xx (redirects are not followed): unexpected, retried with backoff.
        _ => Outcome::Retry {
            message: format!("Log Search answered {text}, which is unexpected"),
            retry_after,
        },
    }
}

fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by ingestion services we know of,
/// and is ignored: the backoff applies instead).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// An error and its sources on one line (reqwest's own text is terse). Call it on errors
/// already stripped of their URL.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Sink for LogSearchSink {
    fn id(&self) -> SinkId {
        SinkId::LogSearch
    }

    async fn deliver(&mut self, batch: &[Rendered]) -> Delivery {
        let this = &*self;
        // Owned items: a closure over borrowed records trips a rustc limitation on `Send`.
        let items: Vec<(u64, Option<String>)> =
            batch.iter().map(|r| (r.seq, r.line.clone())).collect();
        let mut results = futures_util::stream::iter(items)
            .map(|(seq, line)| this.send_one(seq, line))
            .buffered(self.concurrency);
        let mut delivery = Delivery::default();
        while let Some((seq, outcome)) = results.next().await {
            match outcome {
                None => {}
                Some(Outcome::Delivered) => delivery.sent += 1,
                Some(Outcome::TooLarge) => {
                    tracing::warn!(
                        seq,
                        "Log Search refused a record as too large; passed and counted."
                    );
                    delivery.rejected += 1;
                }
                Some(Outcome::Retry {
                    message,
                    retry_after,
                }) => {
                    delivery.error = Some(SinkError::Transient {
                        message,
                        retry_after,
                    });
                    break;
                }
                Some(Outcome::Config { reason }) => {
                    delivery.error = Some(SinkError::Config { reason });
                    break;
                }
            }
            delivery.through = Some(seq);
        }
        delivery
    }

    async fn close(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status class maps to the documented outcome.
    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(204, None), Outcome::Delivered);
        assert_eq!(classify(200, None), Outcome::Delivered);
        assert_eq!(classify(413, None), Outcome::TooLarge);
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(status, None), Outcome::Retry { .. }),
                "{status}"
            );
        }
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            classify(429, after),
            Outcome::Retry {
                message: "Log Search answered HTTP 429 Too Many Requests".into(),
                retry_after: after
            }
        );
        for status in [400, 401, 403, 404, 410] {
            assert!(
                matches!(classify(status, None), Outcome::Config { .. }),
                "{status}"
            );
        }
        assert!(matches!(classify(302, None), Outcome::Retry { .. }));
    }

    /// The ingest URL appends the documented path, keeping a base path prefix.
    #[test]
    fn ingest_url_shape() {
        let token = LogToken::new("2bfbea1e-10c3-4419-bdad-7e6435882e1f");
        let base = Url::parse("https://us.webhook.logs.insight.rapid7.com").unwrap();
        assert_eq!(
            ingest_url(&base, &token).unwrap().as_str(),
            "https://us.webhook.logs.insight.rapid7.com/v1/noformat/2bfbea1e-10c3-4419-bdad-7e6435882e1f"
        );
        let prefixed = Url::parse("http://127.0.0.1:9/proxy/").unwrap();
        assert_eq!(
            ingest_url(&prefixed, &token).unwrap().as_str(),
            "http://127.0.0.1:9/proxy/v1/noformat/2bfbea1e-10c3-4419-bdad-7e6435882e1f"
        );
        assert!(ingest_url(&Url::parse("ftp://x/").unwrap(), &token).is_err());
    }

    /// Neither the token nor the sink's Debug output shows the token.
    #[test]
    fn token_is_redacted() {
        let secret = "2bfbea1e-10c3-4419-bdad-7e6435882e1f";
        let token = LogToken::new(secret);
        assert!(!format!("{token:?}").contains(secret));
        let base = Url::parse("http://127.0.0.1:9").unwrap();
        let settings = LogSearchSettings::new(base, token);
        assert!(!format!("{settings:?}").contains(secret));
        let sink = LogSearchSink::new(settings).unwrap();
        assert!(!format!("{sink:?}").contains(secret));
    }

    /// `Retry-After` seconds are read; junk and negatives are ignored.
    #[test]
    fn retry_after_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, "-1".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
