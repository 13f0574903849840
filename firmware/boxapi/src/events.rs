//! `GET /2.0/events` on the enterprise streams (`shared/box/CONTRACT.md` §2): one call = one page.

use boxidr_config::Events;
use boxidr_model::{BoxEvent, EventError, Secret, StreamPosition, StreamType};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use url::Url;

use crate::error::ApiError;
use crate::http;

/// Where to read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// `stream_position=now`: an empty page and the latest position.
    Now,
    /// `stream_position=0`: the start of the retention window (or of `created_after`).
    Start,
    At(StreamPosition),
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsRequest {
    pub stream: StreamType,
    pub from: From,
    pub limit: u32,
    /// Only `admin_logs` honours these (RFC 3339; sent as UTC `Z`, percent-encoded).
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub event_types: Vec<String>,
}

/// One page as received.
#[derive(Debug, Clone)]
pub struct EventsPage {
    /// Events with a usable `event_id`, in Box's order (duplicates included: the store dedupes).
    pub events: Vec<BoxEvent>,
    /// Entries that are not usable events, kept with the reason so they can be counted and
    /// quarantined rather than silently dropped (ARCHITECTURE invariant 6).
    pub rejected: Vec<(Value, EventError)>,
    /// `None` when Box sent no usable position (missing, or the legacy `0` on an empty page):
    /// the caller keeps its old cursor.
    pub next_position: Option<StreamPosition>,
    /// Entries in the page, for "caught up" (`< limit`) decisions.
    pub entry_count: usize,
}

#[derive(Deserialize)]
struct PageBody<'a> {
    #[serde(default)]
    next_stream_position: Option<Value>,
    /// Each entry's text, checked as JSON and not yet parsed ([`BoxEvent::from_json_text`]).
    #[serde(default, borrow)]
    entries: Vec<&'a RawValue>,
}

/// Reads event pages.
#[derive(Debug, Clone)]
pub struct EventsClient {
    http: reqwest::Client,
    events_url: Url,
    max_body: u64,
    /// `[events]` include/exclude lists; only their `admits` and `include_types` are used.
    types: Events,
}

impl EventsClient {
    /// `api_base` is e.g. `https://api.box.com/2.0`.
    pub fn new(http: reqwest::Client, api_base: &Url, max_body: u64) -> Self {
        let events_url = http::endpoint(api_base, "events");
        Self {
            http,
            events_url,
            max_body,
            types: Events::default(),
        }
    }

    /// Collects only the event types `[events]` admits: the include list goes to Box as its
    /// server-side `event_type=` filter (both enterprise streams honour it), and every page is
    /// checked again here, which is also where the exclude list applies.
    pub fn with_type_filter(mut self, events: &Events) -> Self {
        self.types = Events {
            include_types: events.include_types.clone(),
            exclude_types: events.exclude_types.clone(),
            ..Events::default()
        };
        self
    }

    pub async fn fetch(
        &self,
        token: &Secret,
        request: &EventsRequest,
    ) -> Result<EventsPage, ApiError> {
        let body = http::get_bounded(&self.http, self.url(request), token, self.max_body).await?;
        parse_page(&body)
    }

    /// The events of a page the type filter admits, and how many it dropped. Callers apply it
    /// just before the commit, after taking the page's newest `created_at` from every event
    /// (a window's progress must not depend on what is filtered out).
    pub fn admitted(&self, mut events: Vec<BoxEvent>) -> (Vec<BoxEvent>, u64) {
        let before = events.len();
        events.retain(|event| self.types.admits(event.event_type()));
        let dropped = before - events.len();
        (events, u64::try_from(dropped).unwrap_or(u64::MAX))
    }

    fn url(&self, request: &EventsRequest) -> Url {
        let mut url = self.events_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("stream_type", request.stream.as_str());
            let position = match &request.from {
                From::Now => "now",
                From::Start => "0",
                From::At(p) => p.as_str(),
            };
            query.append_pair("stream_position", position);
            query.append_pair("limit", &request.limit.to_string());
            let types = if request.event_types.is_empty() {
                &self.types.include_types
            } else {
                &request.event_types
            };
            if !types.is_empty() {
                query.append_pair("event_type", &types.join(","));
            }
            if request.stream == StreamType::AdminLogs {
                if let Some(after) = &request.created_after {
                    query.append_pair("created_after", after);
                }
                if let Some(before) = &request.created_before {
                    query.append_pair("created_before", before);
                }
            }
        }
        url
    }
}

/// Key added to an entry kept without a usable `event_id`: why it was flagged.
pub const FLAG_KEY: &str = "boxidr_flagged";
/// Prefix of the id given to such an entry (derived from its content, so a re-read page
/// deduplicates like any other).
pub const FLAGGED_ID_PREFIX: &str = "boxidr-noid-";

/// Turns entries that are not usable events into flagged events, so they are queued and sent
/// as raw records instead of being dropped (ARCHITECTURE invariant 6): the entry is kept whole
/// (a non-object under `entry`), marked with [`FLAG_KEY`] and the reason, and given a
/// content-derived id.
pub fn flag_rejected(rejected: &[(Value, EventError)]) -> Vec<BoxEvent> {
    rejected
        .iter()
        .filter_map(|(entry, reason)| {
            let digest = ring::digest::digest(&ring::digest::SHA256, entry.to_string().as_bytes());
            let id: String = digest.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut object = match entry {
                Value::Object(map) => map.clone(),
                other => {
                    let mut map = serde_json::Map::new();
                    map.insert("entry".to_owned(), other.clone());
                    map
                }
            };
            if let Some(original) = object.remove("event_id") {
                object.insert("box_event_id".to_owned(), original);
            }
            object.insert(FLAG_KEY.to_owned(), Value::String(reason.to_string()));
            object.insert(
                "event_id".to_owned(),
                Value::String(format!("{FLAGGED_ID_PREFIX}{id}")),
            );
            BoxEvent::from_value(Value::Object(object)).ok()
        })
        .collect()
}

/// Parses a page body; pure so the sample pages can be tested directly.
pub fn parse_page(body: &[u8]) -> Result<EventsPage, ApiError> {
    let page: PageBody = serde_json::from_slice(body).map_err(|e| ApiError::BadBody {
        detail: format!("events page: {}", http::bounded(&e.to_string())),
    })?;
    let next_position = match page.next_stream_position {
        None | Some(Value::Null) => None,
        Some(value) => {
            let position = StreamPosition::deserialize(&value).map_err(|e| ApiError::BadBody {
                detail: format!("next_stream_position: {}", http::bounded(&e.to_string())),
            })?;
            (!position.is_reset()).then_some(position)
        }
    };
    let entry_count = page.entries.len();
    let mut events = Vec::with_capacity(entry_count);
    let mut rejected = Vec::new();
    for entry in page.entries {
        let parsed = BoxEvent::from_json_text(entry.get()).map_err(|e| ApiError::BadBody {
            detail: format!("events page entry: {}", http::bounded(&e.to_string())),
        })?;
        match parsed {
            Ok(event) => events.push(event),
            Err((entry, reason)) => rejected.push((entry, reason)),
        }
    }
    Ok(EventsPage {
        events,
        rejected,
        next_position,
        entry_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sample;

    /// The integer cursor above 2^53 in the sample survives digit for digit.
    #[test]
    fn numeric_position_sample() {
        let page = parse_page(&sample("events-page-numeric-position.json")).unwrap();
        let text = String::from_utf8(sample("events-page-numeric-position.json")).unwrap();
        let position = page.next_position.unwrap();
        assert!(
            text.contains(position.as_str()),
            "{position} not verbatim in {text}"
        );
        assert!(position.as_str().parse::<u64>().unwrap() > 1 << 53);
    }

    /// The streaming sample parses with a string cursor and all its events.
    #[test]
    fn streaming_sample() {
        let page = parse_page(&sample("events-page-admin-logs-streaming.json")).unwrap();
        assert!(page.next_position.is_some());
        assert_eq!(page.events.len(), page.entry_count);
        assert!(page.rejected.is_empty());
    }

    /// The SDK fixture with the same event id twice keeps both (the store dedupes).
    #[test]
    fn duplicate_ids_are_kept_for_the_store() {
        let page = parse_page(&sample("events-page-java-sdk-fixture.json")).unwrap();
        let mut ids: Vec<_> = page.events.iter().map(|e| e.id().clone()).collect();
        let before = ids.len();
        ids.sort();
        ids.dedup();
        assert!(ids.len() < before, "fixture has a duplicate id");
    }

    /// An empty page's legacy `0` cursor is reported as "no position".
    #[test]
    fn legacy_zero_is_no_position() {
        let page =
            parse_page(br#"{"chunk_size":0,"next_stream_position":"0","entries":[]}"#).unwrap();
        assert!(page.next_position.is_none());
        let page =
            parse_page(br#"{"chunk_size":0,"next_stream_position":0,"entries":[]}"#).unwrap();
        assert!(page.next_position.is_none());
        let page = parse_page(br#"{"chunk_size":0,"entries":[]}"#).unwrap();
        assert!(page.next_position.is_none());
    }

    /// Entries without an id are kept aside with a reason; junk bodies are errors.
    #[test]
    fn bad_entries_and_bodies() {
        let page = parse_page(
            br#"{"next_stream_position":"5","entries":[{"event_id":"a"},{"no":"id"},7]}"#,
        )
        .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.rejected.len(), 2);
        // Kept, flagged, with a stable content-derived id.
        let flagged = flag_rejected(&page.rejected);
        assert_eq!(flagged.len(), 2);
        for event in &flagged {
            assert!(event.id().as_str().starts_with(FLAGGED_ID_PREFIX));
            assert!(event.raw().contains_key(FLAG_KEY));
        }
        assert_eq!(flag_rejected(&page.rejected)[0].id(), flagged[0].id());
        assert_ne!(flagged[0].id(), flagged[1].id());
        assert!(matches!(
            parse_page(b"{\"entries\":[").unwrap_err(),
            ApiError::BadBody { .. }
        ));
        assert!(matches!(
            parse_page(br#"{"next_stream_position":1.5e18,"entries":[]}"#).unwrap_err(),
            ApiError::BadBody { .. }
        ));
    }
}
