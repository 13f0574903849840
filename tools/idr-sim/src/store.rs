//! What the simulator accepted and what it silently dropped, plus delivery counting.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::faults::Surface;
use crate::uef::{UefViolation, id_text};

/// Most bytes of a dropped line kept in [`Rejected::raw`].
pub const REJECTED_RAW_CAP: usize = 4096;

/// Why an input was dropped. The client is never told; tests read it from the side channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum RejectReason {
    /// The line (or body) is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// An empty line (only a terminator).
    #[error("empty line")]
    EmptyLine,
    /// A line longer than the configured cap; its bytes were skipped up to the next LF.
    #[error("line too long ({len} bytes > {limit})")]
    LineTooLong {
        /// Length of the offending line (as far as it was read).
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// Bytes after the last LF when the connection ended (reset, close or fault).
    #[error("incomplete line at end of connection ({0} bytes)")]
    IncompleteLine(usize),
    /// The line violates the UEF contract.
    #[error("UEF violation: {0}")]
    Uef(#[serde(serialize_with = "ser_display")] UefViolation),
    /// Token TCP line that does not start with a UUID token followed by one space.
    #[error("no leading token")]
    MissingToken,
    /// A token the simulator does not know (token TCP, or HTTP in accept-and-drop mode).
    #[error("unknown token {0}")]
    UnknownToken(String),
    /// Nothing after the token, or an empty HTTP body.
    #[error("empty message")]
    EmptyMessage,
}

fn ser_display<S: serde::Serializer>(v: &UefViolation, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// One dropped input, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// Which listener received it.
    pub surface: Surface,
    /// Milliseconds since the Unix epoch at receipt.
    pub received_ms: u64,
    /// Why it was dropped.
    pub reason: RejectReason,
    /// The input as text (lossy UTF-8), cut to [`REJECTED_RAW_CAP`] bytes.
    pub raw: String,
    /// Connection number on that surface (HTTP: 0).
    pub conn: u64,
}

/// An accepted UEF line.
#[derive(Debug, Clone, Serialize)]
pub struct UefRecord {
    /// Milliseconds since the Unix epoch at receipt.
    pub received_ms: u64,
    /// The line as received (without LF / CR).
    pub line: String,
    /// The parsed object exactly as sent.
    pub value: Value,
    /// `time` normalised per the contract (`…SS.mmmZ`).
    pub time_normalized: String,
    /// `custom_data.box_event_id`, if any.
    pub box_event_id: Option<String>,
    /// Log Search sequence number.
    pub sequence_number: u64,
    /// Connection number on the UEF surface.
    pub conn: u64,
}

/// How a Log Search entry arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingest {
    /// `POST /v1/noformat/{token}`.
    Http,
    /// Token TCP/TLS line.
    TokenTcp,
}

/// An accepted Log Search entry.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    /// The log token it was sent with.
    pub token: String,
    /// The id of the log that token belongs to.
    pub log_id: String,
    /// Milliseconds since the Unix epoch at receipt.
    pub received_ms: u64,
    /// The entry text (HTTP body or the rest of the token line).
    pub text: String,
    /// The text parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// Box event id (see [`raw_box_event_id`]).
    pub box_event_id: Option<String>,
    /// Which input carried it.
    pub via: Ingest,
    /// Log Search sequence number.
    pub sequence_number: u64,
}

impl LogRecord {
    /// Receipt time as a `SystemTime`.
    pub fn received_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.received_ms)
    }
}

/// Box event id of a raw record: top-level `event_id`, else `event.event_id`, else
/// `box_event.event_id`, else `custom_data.box_event_id`.
pub fn raw_box_event_id(v: &Value) -> Option<String> {
    v.get("event_id")
        .and_then(id_text)
        .or_else(|| {
            v.get("event")
                .and_then(|e| e.get("event_id"))
                .and_then(id_text)
        })
        .or_else(|| {
            v.get("box_event")
                .and_then(|e| e.get("event_id"))
                .and_then(id_text)
        })
        .or_else(|| {
            v.get("custom_data")
                .and_then(|e| e.get("box_event_id"))
                .and_then(id_text)
        })
}

/// Deliveries per Box event id for one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkCounts {
    /// Deliveries per id.
    pub per_id: BTreeMap<String, u64>,
    /// Accepted records that carry no Box event id.
    pub without_id: u64,
}

impl SinkCounts {
    #[cfg(test)]
    pub(crate) fn add(&mut self, id: Option<&str>) {
        match id {
            Some(id) => *self.per_id.entry(id.to_owned()).or_default() += 1,
            None => self.without_id += 1,
        }
    }

    /// Distinct Box event ids delivered at least once.
    pub fn delivered(&self) -> usize {
        self.per_id.len()
    }

    /// All deliveries that carried an id (including repeats).
    pub fn deliveries(&self) -> u64 {
        self.per_id.values().sum()
    }

    /// Deliveries beyond one per id.
    pub fn duplicates(&self) -> u64 {
        self.per_id.values().map(|n| n.saturating_sub(1)).sum()
    }

    /// The ids delivered at least once.
    pub fn ids(&self) -> BTreeSet<String> {
        self.per_id.keys().cloned().collect()
    }

    /// How many times `id` was delivered.
    pub fn count(&self, id: &str) -> u64 {
        self.per_id.get(id).copied().unwrap_or(0)
    }

    /// Ids delivered more than once, with their counts.
    pub fn duplicated_ids(&self) -> BTreeMap<String, u64> {
        self.per_id
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
}

/// Per-sink delivery counts. A Box event sent as UEF *and* as raw is one delivery in each sink,
/// not a duplicate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Collector UEF listener.
    pub uef: SinkCounts,
    /// Log Search `POST /v1/noformat/{token}`.
    pub logsearch: SinkCounts,
    /// Log Search token TCP/TLS input.
    pub token: SinkCounts,
}

/// When an id first arrived at a sink, and how many times it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arrival {
    /// Milliseconds since the Unix epoch at the first receipt.
    pub first_ms: u64,
    /// Deliveries of this id (1 = no duplicate).
    pub count: u64,
}

/// Running per-id totals of one sink, kept as records arrive, so that counting is cheap
/// however many records there are (and works with [`crate::SimConfig::keep_records`] off).
#[derive(Debug, Clone, Default)]
pub struct IdTally {
    per_id: HashMap<String, Arrival>,
    with_id: u64,
    without_id: u64,
}

/// Counts of one sink at a glance (O(1) to read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkTotals {
    /// Distinct Box event ids delivered at least once.
    pub distinct: u64,
    /// Deliveries that carried an id, repeats included.
    pub deliveries: u64,
    /// Deliveries beyond one per id.
    pub duplicates: u64,
    /// Accepted records without a Box event id.
    pub without_id: u64,
}

/// [`SinkTotals`] of every sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Collector UEF listener.
    pub uef: SinkTotals,
    /// Log Search HTTP ingest.
    pub logsearch: SinkTotals,
    /// Log Search token TCP/TLS input.
    pub token: SinkTotals,
}

impl IdTally {
    fn add(&mut self, id: Option<&str>, at_ms: u64) {
        let Some(id) = id else {
            self.without_id += 1;
            return;
        };
        self.with_id += 1;
        match self.per_id.get_mut(id) {
            Some(a) => a.count += 1,
            None => {
                self.per_id.insert(
                    id.to_owned(),
                    Arrival {
                        first_ms: at_ms,
                        count: 1,
                    },
                );
            }
        }
    }

    /// Totals of this sink.
    pub fn totals(&self) -> SinkTotals {
        let distinct = u64::try_from(self.per_id.len()).unwrap_or(u64::MAX);
        SinkTotals {
            distinct,
            deliveries: self.with_id,
            duplicates: self.with_id - distinct,
            without_id: self.without_id,
        }
    }

    /// Per-id arrivals.
    pub fn arrivals(&self) -> &HashMap<String, Arrival> {
        &self.per_id
    }

    fn counts(&self) -> SinkCounts {
        SinkCounts {
            per_id: self
                .per_id
                .iter()
                .map(|(id, a)| (id.clone(), a.count))
                .collect(),
            without_id: self.without_id,
        }
    }
}

/// Per-sink running tallies.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Collector UEF listener.
    pub uef: IdTally,
    /// Log Search HTTP ingest.
    pub logsearch: IdTally,
    /// Log Search token TCP/TLS input.
    pub token: IdTally,
}

/// Everything recorded, behind one mutex in `Inner`.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub uef: Vec<UefRecord>,
    pub logs: Vec<LogRecord>,
    pub rejected: Vec<Rejected>,
    pub next_seq: u64,
    pub tally: Tally,
    /// `false`: accepted records are only tallied (benchmarks of millions of events).
    pub keep_records: bool,
}

/// A Log Search entry's JSON and Box event id. Without kept records only the id is needed, and
/// it is read without building the whole JSON tree.
pub(crate) fn parse_entry(text: &str, keep_records: bool) -> (Option<Value>, Option<String>) {
    if !keep_records {
        if let Ok(probe) = serde_json::from_str::<IdProbe>(text) {
            return (None, probe.id());
        }
    }
    let json: Option<Value> = serde_json::from_str(text).ok();
    let id = json.as_ref().and_then(raw_box_event_id);
    (json, id)
}

/// The fields [`raw_box_event_id`] looks at; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct IdProbe {
    event_id: Option<Value>,
    event: Option<NestedId>,
    box_event: Option<NestedId>,
    custom_data: Option<CustomId>,
}

#[derive(serde::Deserialize)]
struct NestedId {
    event_id: Option<Value>,
}

#[derive(serde::Deserialize)]
struct CustomId {
    box_event_id: Option<Value>,
}

impl IdProbe {
    fn id(&self) -> Option<String> {
        let text = |v: &Option<Value>| v.as_ref().and_then(id_text);
        text(&self.event_id)
            .or_else(|| self.event.as_ref().and_then(|e| text(&e.event_id)))
            .or_else(|| self.box_event.as_ref().and_then(|e| text(&e.event_id)))
            .or_else(|| {
                self.custom_data
                    .as_ref()
                    .and_then(|c| text(&c.box_event_id))
            })
    }
}

impl Store {
    pub fn new(keep_records: bool) -> Self {
        Self {
            keep_records,
            ..Self::default()
        }
    }

    /// Tallies an accepted UEF line and keeps it (if records are kept).
    pub fn push_uef(&mut self, record: UefRecord) {
        self.tally
            .uef
            .add(record.box_event_id.as_deref(), record.received_ms);
        if self.keep_records {
            self.uef.push(record);
        }
    }

    /// Tallies an accepted Log Search entry and keeps it (if records are kept).
    pub fn push_log(&mut self, record: LogRecord) {
        let tally = match record.via {
            Ingest::Http => &mut self.tally.logsearch,
            Ingest::TokenTcp => &mut self.tally.token,
        };
        tally.add(record.box_event_id.as_deref(), record.received_ms);
        if self.keep_records {
            self.logs.push(record);
        }
    }

    pub fn totals(&self) -> Totals {
        Totals {
            uef: self.tally.uef.totals(),
            logsearch: self.tally.logsearch.totals(),
            token: self.tally.token.totals(),
        }
    }

    /// Forgets every record, rejection and tally.
    pub fn clear(&mut self) {
        self.uef.clear();
        self.logs.clear();
        self.rejected.clear();
        self.tally = Tally::default();
    }
    pub fn next_sequence(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn reject(&mut self, surface: Surface, conn: u64, reason: RejectReason, raw: &[u8]) {
        let cut = &raw[..raw.len().min(REJECTED_RAW_CAP)];
        tracing::debug!(?surface, conn, %reason, "Input dropped.");
        self.rejected.push(Rejected {
            surface,
            received_ms: now_ms(),
            reason,
            raw: String::from_utf8_lossy(cut).into_owned(),
            conn,
        });
    }

    pub fn delivery_counts(&self) -> DeliveryCounts {
        DeliveryCounts {
            uef: self.tally.uef.counts(),
            logsearch: self.tally.logsearch.counts(),
            token: self.tally.token.counts(),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The raw-record id lookup follows the documented order of precedence.
    #[test]
    fn raw_id_precedence() {
        assert_eq!(
            raw_box_event_id(&json!({"event_id":"a","event":{"event_id":"b"}})).as_deref(),
            Some("a")
        );
        assert_eq!(
            raw_box_event_id(&json!({"event":{"event_id":"b"},"box_event":{"event_id":"c"}}))
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            raw_box_event_id(
                &json!({"box_event":{"event_id":"c"},"custom_data":{"box_event_id":"d"}})
            )
            .as_deref(),
            Some("c")
        );
        assert_eq!(
            raw_box_event_id(&json!({"custom_data":{"box_event_id":"d"}})).as_deref(),
            Some("d")
        );
        assert_eq!(
            raw_box_event_id(&json!({"event_id":403702014})).as_deref(),
            Some("403702014")
        );
        assert_eq!(raw_box_event_id(&json!({"event_id":""})), None);
        assert_eq!(raw_box_event_id(&json!({"x":1})), None);
    }

    /// The id probe used without kept records finds the same id as the full parse, in the same
    /// order of precedence, and falls back to the full parse when the probe cannot read it.
    #[test]
    fn probe_matches_full_parse() {
        for text in [
            r#"{"event_id":"a","event":{"event_id":"b"}}"#,
            r#"{"event":{"event_id":"b","x":[1,2,{"y":null}]},"box_event":{"event_id":"c"}}"#,
            r#"{"box_event":{"event_id":"c"},"custom_data":{"box_event_id":"d"}}"#,
            r#"{"custom_data":{"box_event_id":"d"}}"#,
            r#"{"event_id":403702014,"source":{"login":"x"}}"#,
            r#"{"event_id":""}"#,
            r#"{"event":"not an object","event_id":"e"}"#,
            r#"{"x":1}"#,
            "not json",
        ] {
            assert_eq!(
                parse_entry(text, false).1,
                parse_entry(text, true).1,
                "{text}"
            );
        }
        assert!(parse_entry(r#"{"event_id":"a"}"#, false).0.is_none());
        assert!(parse_entry(r#"{"event_id":"a"}"#, true).0.is_some());
    }

    /// The tally counts distinct ids, repeats and first arrivals whether or not records are kept.
    #[test]
    fn tally_counts_without_records() {
        for keep in [true, false] {
            let mut store = Store::new(keep);
            for (id, at) in [(Some("a"), 5), (Some("b"), 6), (Some("a"), 7), (None, 8)] {
                store.push_log(LogRecord {
                    token: String::new(),
                    log_id: String::new(),
                    received_ms: at,
                    text: String::new(),
                    json: None,
                    box_event_id: id.map(str::to_owned),
                    via: Ingest::Http,
                    sequence_number: 0,
                });
            }
            let t = store.totals().logsearch;
            assert_eq!(
                (t.distinct, t.deliveries, t.duplicates, t.without_id),
                (2, 3, 1, 1)
            );
            assert_eq!(store.tally.logsearch.arrivals()["a"].first_ms, 5);
            assert_eq!(store.tally.logsearch.arrivals()["a"].count, 2);
            assert_eq!(store.delivery_counts().logsearch.count("a"), 2);
            assert_eq!(store.logs.len(), if keep { 4 } else { 0 });
            store.clear();
            assert_eq!(store.totals(), Totals::default());
        }
    }

    /// duplicates() counts deliveries beyond the first per id.
    #[test]
    fn sink_counts_duplicates() {
        let mut s = SinkCounts::default();
        for id in ["a", "b", "a", "a", "c"] {
            s.add(Some(id));
        }
        s.add(None);
        assert_eq!(s.delivered(), 3);
        assert_eq!(s.deliveries(), 5);
        assert_eq!(s.duplicates(), 2);
        assert_eq!(s.count("a"), 3);
        assert_eq!(s.without_id, 1);
        assert_eq!(s.duplicated_ids().len(), 1);
    }
}
