//! What the stream ([`crate::poller`]) and the sweep ([`crate::sweep`]) do alike with a page of
//! Box events: fetch it with a current access token, commit it through the store (its events,
//! the new position and the sweep window in one transaction: ARCHITECTURE invariant 1), and
//! report the outcome on the reader's status. The readers' state machines decide what to fetch
//! and what a `Committed` outcome means for them; this module only performs it.

use std::collections::BTreeMap;

use boxidr_model::{BoxEvent, EventError, StreamPosition, clock};
use boxidr_store::{CursorKey, PageCommit, PageOutcome, Store, SweepWindow};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::{ApiError, Recovery};
use crate::events::{EventsClient, EventsPage, EventsRequest};
use crate::tokens::TokenManager;
use crate::utc::{format_utc, parse_utc};

/// What both readers report after each step (health reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReaderStatus {
    pub pages: u64,
    pub appended: u64,
    pub duplicates: u64,
    /// Entries without a usable event id, kept as flagged events (never silently dropped).
    pub rejected_entries: u64,
    /// Events the type filter dropped (`[events] include_types` / `exclude_types`).
    pub filtered: u64,
    /// Events queued since start, per Box event type.
    pub by_type: BTreeMap<String, u64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub queue_full: bool,
    pub halted: Option<String>,
    /// When a page was last read and committed (ms since the epoch).
    pub last_success_ms: Option<u64>,
    /// Box asked us to wait (`retry-after`) until then (ms since the epoch); cleared by the
    /// next successful call.
    pub throttled_until_ms: Option<u64>,
}

impl ReaderStatus {
    /// A call or a commit failed.
    pub fn failed(&mut self, error: String) {
        self.consecutive_failures += 1;
        self.last_error = Some(error);
    }

    /// A page was read (and committed, if it held anything).
    fn succeeded(&mut self, now_ms: u64) {
        self.pages += 1;
        self.consecutive_failures = 0;
        self.last_error = None;
        self.throttled_until_ms = None;
        self.last_success_ms = Some(now_ms);
    }
}

/// A reader's status: its [`ReaderStatus`] and what only that reader knows.
pub(crate) trait Report {
    fn reader(&mut self) -> &mut ReaderStatus;
}

/// Adds one page's per-type counts to a running total.
pub fn count_types(total: &mut BTreeMap<String, u64>, page: &BTreeMap<String, u64>) {
    for (event_type, n) in page {
        *total.entry(event_type.clone()).or_insert(0) += n;
    }
}

/// When a `retry-after` Box sent ends (ms since the epoch), for the health model.
pub(crate) fn throttled_until(error: &ApiError, now_ms: u64) -> Option<u64> {
    match error.recovery() {
        Recovery::Retry { after: Some(after) } => {
            Some(now_ms.saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)))
        }
        _ => None,
    }
}

/// The latest `created_at` among `events` (every event Box sent, before the type filter: a
/// window's progress must not depend on what is filtered out).
pub(crate) fn newest_created(events: &[BoxEvent]) -> Option<OffsetDateTime> {
    events
        .iter()
        .filter_map(|e| e.created_at().and_then(parse_utc))
        .max()
}

/// One page with a current access token; a 401 marks the token as rejected.
pub(crate) async fn fetch(
    events: &EventsClient,
    tokens: &TokenManager,
    request: &EventsRequest,
) -> Result<EventsPage, ApiError> {
    let token = tokens.access_token().await?;
    let result = events.fetch(&token, request).await;
    if matches!(result, Err(ApiError::Unauthorized)) {
        tokens.reject(&token).await;
    }
    result
}

/// How a page's commit came out, for the reader's state machine.
#[derive(Debug)]
pub(crate) enum Committed {
    /// Written: every entry Box sent, the new position, the newest `created_at`.
    Written {
        entry_count: usize,
        next: Option<StreamPosition>,
        newest: Option<OffsetDateTime>,
    },
    /// The queue is at its quota: read the same page again later (Box keeps it).
    QueueFull,
    /// The store failed: the page is fetched again after a backoff, like a failed call.
    Failed(ApiError),
}

/// Where one reader commits and reports.
#[derive(Debug)]
pub(crate) struct Reader<'a, S> {
    /// `stream` or `sweep`, for the log.
    pub name: &'static str,
    pub events: &'a EventsClient,
    pub store: &'a Store,
    pub status: &'a watch::Sender<S>,
    pub key: &'a CursorKey,
}

impl<S: Report> Reader<'_, S> {
    /// A call failed: count it and note a `retry-after` Box sent.
    pub fn call_failed(&self, error: &ApiError) {
        tracing::warn!(reader = self.name, error = %error, "Box events call failed.");
        let until = throttled_until(error, clock::now_ms());
        self.status.send_modify(|s| {
            let r = s.reader();
            r.failed(error.to_string());
            r.throttled_until_ms = until;
        });
    }

    /// A page with nothing new (no entries, no new position): counted as read, no write (an
    /// idle appliance would otherwise commit every interval).
    pub fn nothing_new(&self) {
        let now = clock::now_ms();
        self.status.send_modify(|s| s.reader().succeeded(now));
    }

    /// Commits `page` (the admitted events followed by its unusable entries, flagged) with its
    /// position and, for the sweep, its `window`.
    pub async fn commit(&self, page: EventsPage, window: Option<SweepWindow>) -> Committed {
        if !page.rejected.is_empty() {
            tracing::warn!(
                reader = self.name,
                count = page.rejected.len(),
                "Box page had entries without a usable event id."
            );
        }
        let rejected = u64::try_from(page.rejected.len()).unwrap_or(u64::MAX);
        let newest = newest_created(&page.events);
        let (entry_count, next) = (page.entry_count, page.next_position.clone());
        let (admitted, filtered) = self.events.admitted(page.events);
        let commit = PageCommit {
            cursor: self.key.clone(),
            events: with_flagged(admitted, &page.rejected),
            next_position: next.clone(),
            last_created_at: newest.map(format_utc),
            window,
            collected_at_ms: clock::now_ms(),
        };
        match self.store.commit_page(commit).await {
            Ok(outcome) => {
                let now = clock::now_ms();
                self.status
                    .send_modify(|s| written(s.reader(), &outcome, rejected, filtered, now));
                Committed::Written {
                    entry_count,
                    next,
                    newest,
                }
            }
            Err(e) if e.is_queue_full() => {
                self.status.send_modify(|s| s.reader().queue_full = true);
                Committed::QueueFull
            }
            Err(e) => {
                tracing::error!(reader = self.name, error = %e, "Cannot commit a Box page; it will be fetched again.");
                self.status
                    .send_modify(|s| s.reader().failed(e.to_string()));
                Committed::Failed(ApiError::Store {
                    detail: e.to_string(),
                })
            }
        }
    }
}

fn written(
    status: &mut ReaderStatus,
    outcome: &PageOutcome,
    rejected: u64,
    filtered: u64,
    now_ms: u64,
) {
    status.succeeded(now_ms);
    status.appended += outcome.appended;
    status.duplicates += outcome.duplicates;
    status.rejected_entries += rejected;
    status.filtered += filtered;
    count_types(&mut status.by_type, &outcome.appended_by_type);
    status.queue_full = false;
}

/// The page's events followed by its unusable entries, kept as flagged events (counted in
/// `rejected_entries`, sent as raw records, never silently dropped).
fn with_flagged(
    mut events: Vec<BoxEvent>,
    rejected: &[(serde_json::Value, EventError)],
) -> Vec<BoxEvent> {
    events.extend(crate::events::flag_rejected(rejected));
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Only a wait Box asked for counts as throttling (health then does not call it failing).
    #[test]
    fn throttling_is_what_box_asked_for() {
        let now = 1_000_000;
        let limited = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(throttled_until(&limited, now), Some(now + 30_000));
        let busy = ApiError::Server {
            status: 503,
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(throttled_until(&busy, now), Some(now + 5_000));
        assert_eq!(
            throttled_until(&ApiError::RateLimited { retry_after: None }, now),
            None
        );
        assert_eq!(throttled_until(&ApiError::Unauthorized, now), None);
    }
}
