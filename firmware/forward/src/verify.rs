//! The verifier: with a Platform API key, check the key (`GET /validate`) and confirm that a
//! canary record reached InsightIDR through a Log Search query (CONTRACT.md §3, §6.3 D).
//!
//! This is what makes the Collector's "written and flushed" observable end to end. The caller
//! sends the canary records through the normal sinks (a synthetic ingress line and a raw record
//! both carrying [`canary_marker`]); [`Verifier::find`] then searches for the marker as free
//! text until it is seen or the deadline passes (default 10 min: the Collector may take 5 min).
//!
//! Queries are asynchronous: the query answers `202` with `links[rel=self]`, polled (at most
//! once a second by default) until it answers `200` with `events`. The API key is only ever
//! sent to the configured API origin: a poll link pointing elsewhere is refused.
//!
//! The canary rounds themselves: [`round`] is the sans-IO machine (when to queue, when to
//! search, what each answer means for each sink's path), [`task`] the thin task that performs
//! it against the store and this client.

use std::fmt;
use std::time::{Duration, SystemTime};

use boxidr_model::Secret;
use boxidr_model::clock::unix_ms;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use url::Url;

use crate::error::SetupError;
use crate::logsearch::{TrustRoots, http_client, retry_after};

pub mod round;
pub mod task;

pub use round::{CanaryStatus, RoundTimings, Rounds};
pub use task::{CANARY_CURSOR, COUNTER_CANARY_RECORDS, CanaryPlan, trust_roots};

/// Largest response body read from the Platform API.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A unique marker for one canary round: `boxidr-canary-<32 hex digits>`.
pub fn canary_marker() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("boxidr-canary-{hex}")
}

/// How to reach the Platform API.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// `https://<region>.api.insight.rapid7.com` or an override.
    pub api_base: Url,
    /// The Platform API key (`X-Api-Key`).
    pub api_key: Secret,
    /// Trust anchors for HTTPS.
    pub roots: TrustRoots,
    /// Bound on one request.
    pub request_timeout: Duration,
    /// Pause between polls of a running query, and between query rounds.
    pub poll_interval: Duration,
    /// The outbound proxy (`[network]`), `None`: direct.
    pub proxy: Option<reqwest::Proxy>,
}

impl VerifierSettings {
    /// Production defaults for a region code (`us`, `eu`, …).
    pub fn for_region(region: &str, api_key: Secret) -> Result<Self, SetupError> {
        if !boxidr_config::valid_region(region) {
            return Err(SetupError::Url(format!("{region:?} is not a region code")));
        }
        let api_base = Url::parse(&format!("https://{region}.api.insight.rapid7.com"))
            .map_err(|e| SetupError::Url(e.to_string()))?;
        Ok(Self::new(api_base, api_key))
    }

    /// Production defaults around a base URL.
    pub fn new(api_base: Url, api_key: Secret) -> Self {
        Self {
            api_base,
            api_key,
            roots: TrustRoots::Platform,
            request_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            proxy: None,
        }
    }
}

/// Default time allowed for a canary to show up.
pub const DEFAULT_CANARY_DEADLINE: Duration = Duration::from_secs(600);

/// Why verification could not be done. Texts never contain the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The Platform API refused the key (401/403).
    #[error("the Platform API refused the API key (HTTP {0})")]
    KeyRejected(u16),
    /// The API could not be reached or answered unexpectedly.
    #[error("Platform API: {0}")]
    Unavailable(String),
}

/// The outcome of a canary search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryOutcome {
    /// Found: the marker is searchable in InsightIDR.
    Seen {
        /// Entries that carried the marker.
        entries: usize,
    },
    /// Not found before the deadline.
    NotSeen,
}

/// One Log Search log, as listed by the Platform API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogInfo {
    /// Log id (used in query paths).
    pub id: String,
    /// Display name.
    pub name: String,
}

#[derive(Deserialize)]
struct LogsBody {
    #[serde(default)]
    logs: Vec<LogInfo>,
}

#[derive(Deserialize)]
struct QueryBody {
    #[serde(default)]
    events: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    rel: String,
    href: String,
}

/// The Platform API client for key checks and canary searches.
pub struct Verifier {
    client: reqwest::Client,
    settings: VerifierSettings,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("api_base", &self.settings.api_base.as_str())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds the client; sends nothing yet.
    pub fn new(settings: VerifierSettings) -> Result<Self, SetupError> {
        let client = http_client(
            &settings.roots,
            Duration::from_secs(10),
            settings.request_timeout,
            settings.proxy.as_ref(),
        )?;
        Ok(Self { client, settings })
    }

    /// `GET /validate`: `Ok` when the key is accepted (the setup page's "Test connection").
    pub async fn validate(&self) -> Result<(), VerifyError> {
        let url = self.endpoint(&["validate"])?;
        self.get(url).await.map(drop)
    }

    /// `GET /log_search/management/logs`: the logs the key can query.
    pub async fn logs(&self) -> Result<Vec<LogInfo>, VerifyError> {
        let url = self.endpoint(&["log_search", "management", "logs"])?;
        let (_, body) = self.get(url).await?;
        serde_json::from_slice::<LogsBody>(&body)
            .map(|b| b.logs)
            .map_err(|e| VerifyError::Unavailable(format!("unreadable log list: {e}")))
    }

    /// Searches `log_ids` for `marker` as free text over `[since, now + 1 min]`, repeating the
    /// query every poll interval until it is seen or `deadline` passes.
    pub async fn find(
        &self,
        log_ids: &[String],
        marker: &str,
        since: SystemTime,
        deadline: Duration,
    ) -> Result<CanaryOutcome, VerifyError> {
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            let entries = self
                .query_once(log_ids, marker, since, give_up)
                .await?
                .len();
            if entries > 0 {
                return Ok(CanaryOutcome::Seen { entries });
            }
            if tokio::time::Instant::now() + self.settings.poll_interval >= give_up {
                return Ok(CanaryOutcome::NotSeen);
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// One search of `log_ids` for `marker` over `[since, now + 1 min]`, followed through its
    /// poll links for at most `within`: the messages that contain the marker (so the caller
    /// can tell which path each came by). Empty when nothing is found yet.
    pub async fn search(
        &self,
        log_ids: &[String],
        marker: &str,
        since: SystemTime,
        within: Duration,
    ) -> Result<Vec<String>, VerifyError> {
        let give_up = tokio::time::Instant::now() + within;
        self.query_once(log_ids, marker, since, give_up).await
    }

    /// One query, followed through its poll links; the messages containing `marker`.
    async fn query_once(
        &self,
        log_ids: &[String],
        marker: &str,
        since: SystemTime,
        give_up: tokio::time::Instant,
    ) -> Result<Vec<String>, VerifyError> {
        let joined = log_ids.join(":");
        let mut url = self.endpoint(&["log_search", "query", "logs", &joined])?;
        let from = unix_ms(since);
        let to = unix_ms(SystemTime::now() + Duration::from_secs(60));
        url.query_pairs_mut()
            .append_pair("query", &format!("where(\"{marker}\")"))
            .append_pair("from", &from.to_string())
            .append_pair("to", &to.to_string());
        let mut found = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let (status, body) = self.get(url).await?;
            let body: QueryBody = serde_json::from_slice(&body)
                .map_err(|e| VerifyError::Unavailable(format!("unreadable query answer: {e}")))?;
            if let Some(events) = &body.events {
                found.extend(
                    events
                        .iter()
                        .filter_map(|e| e.get("message").and_then(serde_json::Value::as_str))
                        .filter(|m| m.contains(marker))
                        .map(str::to_owned),
                );
            }
            let link = if status == 202 {
                body.links
                    .iter()
                    .find(|l| l.rel.eq_ignore_ascii_case("self"))
            } else {
                body.links
                    .iter()
                    .find(|l| l.rel.eq_ignore_ascii_case("next"))
            };
            if let Some(link) = link {
                if tokio::time::Instant::now() >= give_up {
                    break;
                }
                if status == 202 {
                    tokio::time::sleep(self.settings.poll_interval).await;
                }
                next = Some(self.same_origin(&link.href)?);
            }
        }
        Ok(found)
    }

    /// `{api_base}/a/b/c`.
    fn endpoint(&self, segments: &[&str]) -> Result<Url, VerifyError> {
        let mut url = self.settings.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| VerifyError::Unavailable("API base cannot carry a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A link from a response, accepted only on the API's own origin (the key goes with it).
    fn same_origin(&self, href: &str) -> Result<Url, VerifyError> {
        let url = Url::parse(href)
            .map_err(|_| VerifyError::Unavailable("unreadable poll link".into()))?;
        if url.origin() != self.settings.api_base.origin() {
            return Err(VerifyError::Unavailable(
                "a poll link points to another host; not followed".into(),
            ));
        }
        Ok(url)
    }

    /// An authorised GET: status (200 or 202) and bounded body, or the classified error.
    async fn get(&self, url: Url) -> Result<(u16, Vec<u8>), VerifyError> {
        let mut response = self
            .client
            .get(url)
            .header("X-Api-Key", self.settings.api_key.expose())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| VerifyError::Unavailable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return Err(VerifyError::KeyRejected(status));
        }
        if !matches!(status, 200 | 202) {
            let wait = retry_after(response.headers())
                .map(|d| format!(" (retry after {} s)", d.as_secs()))
                .unwrap_or_default();
            return Err(VerifyError::Unavailable(format!("HTTP {status}{wait}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| VerifyError::Unavailable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(VerifyError::Unavailable("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markers are unique and shaped as documented; the key never shows in Debug.
    #[test]
    fn markers_and_redaction() {
        let a = canary_marker();
        assert!(a.starts_with("boxidr-canary-") && a.len() == 14 + 32);
        assert_ne!(a, canary_marker());
        let key = Secret::new("s3cret-key");
        let settings = VerifierSettings::new(Url::parse("http://127.0.0.1:9").unwrap(), key);
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert!(VerifierSettings::for_region("u s", Secret::new("k")).is_err());
        assert_eq!(
            VerifierSettings::for_region("eu", Secret::new("k"))
                .unwrap()
                .api_base
                .as_str(),
            "https://eu.api.insight.rapid7.com/"
        );
    }

    /// `search` hands back the messages that carry the marker (the caller tells the paths
    /// apart by their content), and nothing for a marker never sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn search_returns_the_matching_messages() {
        let sim = idr_sim::IdrSim::start(idr_sim::SimConfig::default(), idr_sim::Listen::default())
            .await
            .unwrap();
        let since = SystemTime::now() - Duration::from_secs(5);
        let marker = canary_marker();
        let body = format!(r#"{{"boxidr_kind":"other","event_id":"{marker}-raw"}}"#);
        let url = format!(
            "{}/v1/noformat/{}",
            sim.logsearch_base(),
            sim.config().tokens[0]
        );
        let posted = reqwest::Client::new()
            .post(url)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status().as_u16(), 204);
        let mut settings = VerifierSettings::new(
            Url::parse(&sim.api_base()).unwrap(),
            Secret::new(&sim.config().api_key),
        );
        settings.poll_interval = Duration::from_millis(20);
        let verifier = Verifier::new(settings).unwrap();
        let logs: Vec<String> = verifier
            .logs()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        let found = verifier
            .search(&logs, &marker, since, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(found, vec![body]);
        let other = verifier
            .search(&logs, &canary_marker(), since, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(other.is_empty());
        sim.shutdown().await;
    }

    /// Poll links on another origin are refused (the key would go with them).
    #[test]
    fn foreign_links_are_refused() {
        let verifier = Verifier::new(VerifierSettings::new(
            Url::parse("http://127.0.0.1:9").unwrap(),
            Secret::new("k"),
        ))
        .unwrap();
        assert!(
            verifier
                .same_origin("http://127.0.0.1:9/log_search/query/x")
                .is_ok()
        );
        assert!(verifier.same_origin("http://evil.example/q").is_err());
        assert!(verifier.same_origin("http://127.0.0.1:10/q").is_err());
    }
}
