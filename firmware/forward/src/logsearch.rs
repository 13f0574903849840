//! The Log Search sink: each raw record is one `POST <ingest_base>/v1/noformat/<token>`
//! (CONTRACT.md §2.4). A 2xx is a real acknowledgement: "delivered" means Log Search answered
//! 2xx to the request that carried that one record.
//!
//! Whether one request may carry several entries is not known for the real service (§2.4 and
//! §6.5 list it as a gap), so each record is its own request and an event never ends up inside
//! another event's entry. Throughput over a WAN comes from having many requests in flight
//! instead: HTTP/2 (negotiated by ALPN) multiplexes [`LogSearchSettings::streams`] requests on
//! each of [`LogSearchSettings::connections`] connections; until a response shows HTTP/2 was
//! negotiated, and for good if the endpoint only speaks HTTP/1.1, at most
//! [`LogSearchSettings::concurrency`] requests are in flight (each one its own keep-alive
//! connection). Requests in flight are bounded by count and by body bytes.
//!
//! Results are taken in queue order and only the contiguous prefix of delivered records is
//! acknowledged. When a request fails, nothing new is posted and the requests already in
//! flight get 2 s more to answer: those answered 2xx are remembered and not sent again when
//! the loop re-submits from the failed record, so a 503 storm causes retries, not duplicates.
//! A reset or timeout of the connection itself, or a request still unanswered 2 s after the
//! failure, loses the answers of what was in flight: those records are sent again
//! (duplicates bounded by the window, never loss). The retry after a transient failure is
//! one request; the window opens again once it is answered 2xx (a retry into an outage opens
//! one connection, not one per record). An HTTP/2 connection that stops answering
//! is found by PINGs (every 10 s while requests are open, 10 s to answer), not only by each
//! request's timeout.
//!
//! Responses: 2xx = delivered; 408, 429, 5xx, timeouts and connection errors = retry later
//! (`Retry-After` honoured); 413 (too large) and 400 (bad request) = this record is what the
//! service refuses: reported as rejected, which the loop keeps as a dead letter with the ack
//! that passes it (retrying cannot help, it must not wedge the queue, and the records around
//! it are fine: a 400 answers one request, which carries one record); any other 4xx (401,
//! 403, 404, unknown token) = configuration error: the sink stops and the queue is kept. If a
//! service answered 400 to every record (a bad token reported as 400), the dead-letter table
//! fills to its bound and the sink holds there, with the dead-letter problem on the status:
//! nothing is lost either way.
//!
//! The log token is part of the URL: the URL is never logged, never put in an error and never
//! shown by `Debug`.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use boxidr_model::Secret;
use boxidr_model::error::error_chain;
use boxidr_store::{Rejection, SinkId};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use url::Url;

use crate::error::SetupError;
use crate::render::Rendered;
use crate::sink::{Delivery, Sink, SinkError, Window};

/// Sent on every request.
pub const USER_AGENT: &str = concat!("boxidr/", env!("CARGO_PKG_VERSION"));

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
    pub token: Secret,
    /// Trust anchors for HTTPS.
    pub roots: TrustRoots,
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on one whole request.
    pub request_timeout: Duration,
    /// Requests in flight at once over HTTP/1.1 (one keep-alive connection each), and before
    /// HTTP/2 is known to be negotiated.
    pub concurrency: usize,
    /// HTTP/2 connections (each its own client and pool).
    pub connections: usize,
    /// Requests in flight per HTTP/2 connection (the server's own stream limit may be lower:
    /// the client then queues).
    pub streams: usize,
    /// Most bytes of request bodies in flight.
    pub max_bytes_in_flight: usize,
    /// The outbound proxy (`[network]`), `None`: direct.
    pub proxy: Option<reqwest::Proxy>,
}

impl LogSearchSettings {
    /// Production defaults around a base URL and token.
    pub fn new(ingest_base: Url, token: Secret) -> Self {
        Self {
            ingest_base,
            token,
            roots: TrustRoots::Platform,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            concurrency: 4,
            connections: 8,
            streams: 128,
            max_bytes_in_flight: 2 * 1024 * 1024,
            proxy: None,
        }
    }

    /// From the `[insightidr.log_search]` settings and the token from the secrets table.
    pub fn from_config(
        config: &boxidr_config::LogSearch,
        token: Secret,
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
    proxy: Option<&reqwest::Proxy>,
) -> Result<reqwest::Client, SetupError> {
    build_client(roots, connect_timeout, request_timeout, proxy, false)
}

/// [`http_client`]; with `http2_only`, HTTP/2 is spoken from the start (ALPN offers only
/// `h2`), so the connection pool knows a connection is shared: concurrent requests wait for
/// the one connection being set up instead of each opening its own.
fn build_client(
    roots: &TrustRoots,
    connect_timeout: Duration,
    request_timeout: Duration,
    proxy: Option<&reqwest::Proxy>,
    http2_only: bool,
) -> Result<reqwest::Client, SetupError> {
    // reqwest's "rustls-no-provider" needs a process-wide provider; a second install fails
    // harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .tcp_keepalive(Duration::from_secs(30))
        .http2_keep_alive_interval(HTTP2_KEEPALIVE)
        .http2_keep_alive_timeout(HTTP2_KEEPALIVE)
        .redirect(reqwest::redirect::Policy::none())
        // Only the configured proxy, never one from the environment.
        .no_proxy();
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy.clone());
    }
    if http2_only {
        builder = builder.http2_prior_knowledge();
    }
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

type Pending = Pin<Box<dyn Future<Output = Done> + Send>>;

/// How long requests still in flight behind a failed one may take to answer before they are
/// given up and the failure is reported (those answered 2xx by then are not sent again).
const GIVE_UP_BEHIND_FAILURE: Duration = Duration::from_secs(2);

/// HTTP/2 PING interval while requests are open, and how long its answer may take: a
/// connection that stalls fails its requests after about 20 s, not at each one's timeout.
const HTTP2_KEEPALIVE: Duration = Duration::from_secs(10);

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Nothing was sent (no line, or delivered earlier).
    NotSent,
    Http1,
    Http2,
    /// No response: connect, TLS, reset or timeout.
    Failed,
}

/// One finished item of the in-flight queue, in submission order.
enum Done {
    /// A record: its outcome (`None`: nothing to send) and how it was answered.
    Record {
        seq: u64,
        outcome: Option<Outcome>,
        answer: Answer,
    },
    /// The end of a submitted batch: everything up to `through` is covered.
    End { through: u64 },
}

/// The Log Search sink.
pub struct LogSearchSink {
    /// One client (one connection pool) per HTTP/2 connection; HTTP/1.1 uses the first.
    clients: Vec<reqwest::Client>,
    /// What the clients are built from (rebuilt when HTTP/2 is found or lost).
    client_settings: ClientSettings,
    next_client: usize,
    /// Holds the token: never printed.
    url: Url,
    concurrency: usize,
    streams: usize,
    max_bytes: usize,
    /// Set once a response came over HTTP/2 (the clients then speak only HTTP/2); cleared
    /// when a request gets no answer at all, so the next connection negotiates again.
    http2: bool,
    in_flight: FuturesOrdered<Pending>,
    /// Records answered 2xx after an earlier one failed: not sent again when re-submitted.
    delivered_ahead: BTreeSet<u64>,
    /// The failure being reported once what was in flight behind it has finished.
    failure: Option<SinkError>,
    /// When what is still in flight behind `failure` is given up (answers lost: sent again).
    give_up_at: Option<tokio::time::Instant>,
    /// Set by a transient failure, cleared by the next 2xx: meanwhile the window is one
    /// request, so a retry into an outage is one request (one connection), not a window's worth.
    probing: bool,
    /// Progress gathered since the last report.
    report: Delivery,
}

impl fmt::Debug for LogSearchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSearchSink")
            .field("host", &self.url.host_str())
            .field("concurrency", &self.concurrency)
            .field("connections", &self.clients.len())
            .field("streams", &self.streams)
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

/// The parts of [`LogSearchSettings`] a client is built from.
#[derive(Debug, Clone)]
struct ClientSettings {
    roots: TrustRoots,
    connect_timeout: Duration,
    request_timeout: Duration,
    proxy: Option<reqwest::Proxy>,
    connections: usize,
}

impl ClientSettings {
    /// `connections` clients; `http2_only`: see [`build_client`].
    fn build(&self, http2_only: bool) -> Result<Vec<reqwest::Client>, SetupError> {
        (0..self.connections.max(1))
            .map(|_| {
                build_client(
                    &self.roots,
                    self.connect_timeout,
                    self.request_timeout,
                    self.proxy.as_ref(),
                    http2_only,
                )
            })
            .collect()
    }
}

impl LogSearchSink {
    /// Builds the clients and the ingest URL; sends nothing yet.
    pub fn new(settings: LogSearchSettings) -> Result<Self, SetupError> {
        let url = ingest_url(&settings.ingest_base, &settings.token)?;
        let client_settings = ClientSettings {
            roots: settings.roots,
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            proxy: settings.proxy,
            connections: settings.connections,
        };
        let clients = client_settings.build(false)?;
        Ok(Self {
            clients,
            client_settings,
            next_client: 0,
            url,
            concurrency: settings.concurrency.max(1),
            streams: settings.streams.max(1),
            max_bytes: settings.max_bytes_in_flight.max(1),
            http2: false,
            in_flight: FuturesOrdered::new(),
            delivered_ahead: BTreeSet::new(),
            failure: None,
            give_up_at: None,
            probing: false,
            report: Delivery::default(),
        })
    }

    /// The endpoint answered over HTTP/2: from now on every client speaks only HTTP/2. Each
    /// client's pool then sets up one connection and shares it; with ALPN clients every
    /// request that found no connection opened its own (a window of 1,024 requests opened
    /// hundreds of TLS connections, about 7 KiB of buffers each, most of them then idle).
    fn speak_http2(&mut self) {
        match self.client_settings.build(true) {
            Ok(clients) => self.clients = clients,
            // Unreachable in practice (the same settings built the first clients); the ALPN
            // clients keep working.
            Err(e) => {
                tracing::warn!(error = %e, "Cannot build HTTP/2 clients; negotiating per connection.")
            }
        }
        self.http2 = true;
    }

    /// A request got no answer: the next connections negotiate their protocol again, in case
    /// the endpoint (or a proxy before it) no longer speaks HTTP/2.
    fn negotiate_again(&mut self) {
        if let Ok(clients) = self.client_settings.build(false) {
            self.clients = clients;
            self.http2 = false;
        }
    }

    fn client(&mut self) -> reqwest::Client {
        if !self.http2 {
            return self.clients[0].clone();
        }
        self.next_client = (self.next_client + 1) % self.clients.len();
        self.clients[self.next_client].clone()
    }

    /// Folds one finished item into the report. `true`: report now (a configuration error).
    fn take(&mut self, done: Done) -> bool {
        let (seq, outcome) = match done {
            Done::End { through } => {
                if self.failure.is_none() {
                    self.report.through = Some(through);
                }
                return false;
            }
            Done::Record {
                seq,
                outcome,
                answer,
            } => {
                match answer {
                    Answer::Http2 if !self.http2 => self.speak_http2(),
                    Answer::Failed if self.http2 => self.negotiate_again(),
                    _ => {}
                }
                (seq, outcome)
            }
        };
        if self.failure.is_some() {
            // Behind a failure: remember what got through, so it is not sent twice.
            if outcome == Some(Outcome::Delivered) {
                self.delivered_ahead.insert(seq);
            }
            return false;
        }
        match outcome {
            None => {}
            Some(Outcome::Delivered) => {
                self.report.sent += 1;
                self.probing = false;
            }
            Some(Outcome::TooLarge) => {
                tracing::warn!(
                    seq,
                    "Log Search refused a record as too large; kept as a dead letter."
                );
                self.report.rejected.push(Rejection {
                    seq,
                    reason: "Log Search answered HTTP 413 Payload Too Large".to_owned(),
                });
            }
            Some(Outcome::BadRecord) => {
                tracing::warn!(
                    seq,
                    "Log Search refused a record as a bad request; kept as a dead letter."
                );
                self.report.rejected.push(Rejection {
                    seq,
                    reason: "Log Search answered HTTP 400 Bad Request".to_owned(),
                });
            }
            Some(Outcome::Retry {
                message,
                retry_after,
            }) => {
                self.failure = Some(SinkError::Transient {
                    message,
                    retry_after,
                });
                self.give_up_at = Some(tokio::time::Instant::now() + GIVE_UP_BEHIND_FAILURE);
                return false;
            }
            Some(Outcome::Config { reason }) => {
                self.failure = Some(SinkError::Config { reason });
                return true;
            }
        }
        self.report.through = Some(seq);
        false
    }
}

/// Posts one record; the outcome and how it was answered.
async fn post(client: reqwest::Client, url: Url, body: String) -> (Outcome, Answer) {
    let response = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let answer = if response.version() == reqwest::Version::HTTP_2 {
                Answer::Http2
            } else {
                Answer::Http1
            };
            let retry_after = retry_after(response.headers());
            // The body is not needed; dropping the response returns the connection.
            (classify(status, retry_after), answer)
        }
        Err(e) => (
            Outcome::Retry {
                message: format!("posting to Log Search: {}", error_chain(&e.without_url())),
                retry_after: None,
            },
            Answer::Failed,
        ),
    }
}

/// `<base>/v1/noformat/<token>`, keeping any path prefix of the base.
fn ingest_url(base: &Url, token: &Secret) -> Result<Url, SetupError> {
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
    /// 400: the service refuses this request, which carries one record: that record's
    /// problem, not the settings' (an auth or token failure is 401/403/404).
    BadRecord,
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
        400 => Outcome::BadRecord,
        408 | 429 | 500..=599 => Outcome::Retry {
            message: format!("Log Search answered {text}"),
            retry_after,
        },
        401..=499 => Outcome::Config {
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

impl Sink for LogSearchSink {
    fn id(&self) -> SinkId {
        SinkId::LogSearch
    }

    fn window(&self) -> Window {
        let records = if self.probing {
            1
        } else if self.http2 {
            self.streams.saturating_mul(self.clients.len())
        } else {
            self.concurrency
        };
        Window {
            records,
            bytes: self.max_bytes,
        }
    }

    fn submit(&mut self, batch: Vec<Rendered>, through: u64) {
        if self.failure.is_some() {
            // Behind a failure nothing new is posted: the loop re-submits from the failed
            // record once the failure is reported.
            return;
        }
        for record in batch {
            let seq = record.seq;
            let pending: Pending = match record.line {
                Some(_) if self.delivered_ahead.remove(&seq) => Box::pin(async move {
                    Done::Record {
                        seq,
                        outcome: Some(Outcome::Delivered),
                        answer: Answer::NotSent,
                    }
                }),
                Some(line) => {
                    let (client, url) = (self.client(), self.url.clone());
                    Box::pin(
                        post(client, url, line).map(move |(outcome, answer)| Done::Record {
                            seq,
                            outcome: Some(outcome),
                            answer,
                        }),
                    )
                }
                None => Box::pin(async move {
                    Done::Record {
                        seq,
                        outcome: None,
                        answer: Answer::NotSent,
                    }
                }),
            };
            self.in_flight.push_back(pending);
        }
        self.in_flight
            .push_back(Box::pin(async move { Done::End { through } }));
    }

    async fn progress(&mut self) -> Delivery {
        loop {
            // Wait for one, then take whatever else is already finished, without waiting
            // (nothing is held across an await but `self`: cancel-safe).
            let next = match self.give_up_at {
                Some(at) => match tokio::time::timeout_at(at, self.in_flight.next()).await {
                    Ok(next) => next,
                    // What is still unanswered after a failure is given up: its answers are
                    // lost (a stalled connection answers nothing until its request timeout).
                    Err(_) => return self.finish(),
                },
                None => self.in_flight.next().await,
            };
            let Some(first) = next else {
                if self.failure.is_some() || self.report.through.is_some() {
                    return self.finish();
                }
                std::future::pending::<()>().await;
                continue;
            };
            let mut now = self.take(first);
            while !now {
                match self.in_flight.next().now_or_never() {
                    Some(Some(done)) => now = self.take(done),
                    _ => break,
                }
            }
            let drained = self.in_flight.is_empty();
            match &self.failure {
                Some(SinkError::Config { .. }) => return self.finish(),
                Some(SinkError::Transient { .. }) if drained => return self.finish(),
                Some(SinkError::Transient { .. }) => {}
                None if self.report.through.is_some() => return self.finish(),
                None => {}
            }
        }
    }

    fn reset(&mut self) {
        self.in_flight = FuturesOrdered::new();
        self.failure = None;
        self.give_up_at = None;
        self.report = Delivery::default();
    }

    async fn close(&mut self) {}
}

impl LogSearchSink {
    fn finish(&mut self) -> Delivery {
        let mut report = std::mem::take(&mut self.report);
        report.error = self.failure.clone();
        if matches!(report.error, Some(SinkError::Transient { .. })) {
            self.probing = true;
        }
        report
    }
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
        assert_eq!(classify(400, None), Outcome::BadRecord);
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
        for status in [401, 403, 404, 410, 422] {
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
        let token = Secret::new("2bfbea1e-10c3-4419-bdad-7e6435882e1f");
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
        let token = Secret::new(secret);
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
