//! The on-disk schema: every table, its key and value, and the queue record format.
//!
//! ```text
//! table           key                        value                          written by
//! --------------  -------------------------  -----------------------------  ------------------------
//! meta            &str                       u64                            open, commit_page
//!                   "schema_version"           SCHEMA_VERSION (2)
//!                   "next_seq"                 next queue sequence (>= 1)
//!                   "commit_count"             write transactions committed (every commit)
//! queue           u64 seq                    &[u8] record (see below)       commit_page; ack deletes
//! cursors         &str cursor key            &[u8] JSON CursorState         commit_page
//!                   "admin_logs" | "admin_logs_streaming" | "sweep:<name>"
//! seen_at         (u64 created ms, &str id)  u64 first-seen ms              commit_page; expire_seen
//! seen            &str event_id              u64 first-seen ms              schema 1 only; expire_seen
//! seen_by_time    (u64 ms, &str event_id)    ()                             schema 1 only; expire_seen
//! sink_cursors    &str sink id               u64 last delivered seq (0: none) ack
//! sinks_enabled   &str sink id               ()                             set_enabled_sinks
//! users           &str Box user id           &str user JSON                 put_users, retain_users
//! users_sync      &str Box user id           u64 sync generation            put_users, prune_users
//! settings        &str key                   &str JSON text                 set_setting
//! secrets         &str key                   &[u8] secret bytes             put_secrets, delete_secret
//! counters        &str name                  u64                            add_counter, commit_page
//! dead_letters    (u64 seq, &str sink id)    &[u8] dead letter (see below)  ack_rejecting; remove
//! ```
//!
//! Invariants:
//! - `queue` keys are contiguous: appends take `next_seq`, deletes only remove a prefix. So the
//!   queue is exactly `oldest..=newest` and pending counts are subtractions.
//! - `seen_at` is the dedupe table: an event is a duplicate when its `(created_at, id)` is
//!   there. Box gives an event the same `created_at` every time it hands it out, and events
//!   arrive roughly in `created_at` order, so new keys land at the end of the B-tree and a
//!   commit rewrites a few leaf pages, not one random leaf per event as an id-keyed table does
//!   (schema 1: about 4 KiB written per event once the table outgrows the page cache). An
//!   event without a parseable `created_at` is keyed at 0. The key does not depend on our
//!   clock, which may be wrong before it is synchronised.
//! - Expiry range-scans `seen_at` below the cut-off and removes the entries first seen before
//!   it too (a back-filled event, created long ago and seen recently, stays for the TTL). It
//!   also scans the keys more than a day in the future (empty unless Box sent hostile times),
//!   with the same first-seen rule, so no entry outlives the TTL for its `created_at`.
//! - `seen` and `seen_by_time` are schema 1's dedupe table and its time index: a file that
//!   comes from schema 1 keeps consulting them until expiry has emptied them; nothing new is
//!   written there.
//! - Sequences start at 1 and are never reused (`next_seq` survives an empty queue).
//! - A record a sink's destination refused for good is copied into `dead_letters` in the same
//!   transaction as the ack that moves that sink's cursor past it: it can leave the queue only
//!   once it is kept there. `meta` `"dead_letter_bytes"` is the sum of the table's value sizes,
//!   which the bound ([`crate::DEAD_LETTER_MAX_BYTES`]) is checked against.
//!
//! Compatibility: the `meta` table's name and types never change, so any version can read the
//! schema version of any file. A file with a newer version is refused untouched
//! ([`crate::StoreError::SchemaTooNew`]); an older one is migrated in `open` (1 → 2: `seen_at`
//! is created, the schema 1 tables stay as described above).
//! Queue records carry their own format byte, so sinks can gain fields without a schema change.

use boxidr_model::{EventId, StreamType};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::types::QueuedRecord;

/// The schema this firmware writes and understands.
pub const SCHEMA_VERSION: u32 = 2;

pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
pub const CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("cursors");
/// `(created_at ms, event id)` → first-seen ms: the dedupe table (schema 2).
pub const SEEN_AT: TableDefinition<(u64, &str), u64> = TableDefinition::new("seen_at");
/// Schema 1's dedupe table (event id → first-seen ms): read and expired, never written.
pub const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen");
/// Schema 1's time index of `seen`.
pub const SEEN_BY_TIME: TableDefinition<(u64, &str), ()> = TableDefinition::new("seen_by_time");
pub const SINK_CURSORS: TableDefinition<&str, u64> = TableDefinition::new("sink_cursors");
pub const SINKS_ENABLED: TableDefinition<&str, ()> = TableDefinition::new("sinks_enabled");
pub const USERS: TableDefinition<&str, &str> = TableDefinition::new("users");
/// Box user id → the users sync generation that last listed it (absent: generation 0).
pub const USERS_SYNC: TableDefinition<&str, u64> = TableDefinition::new("users_sync");
pub const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");
pub const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// Records a destination refused for good, keyed by queue sequence and sink (a crash before
/// the ack re-sends the record; the second refusal overwrites the same row).
pub const DEAD_LETTERS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("dead_letters");

/// `meta` key of the schema version.
pub const META_SCHEMA_VERSION: &str = "schema_version";
/// `meta` key of the users sync generation (see `StoreCore::begin_users_sync`).
pub const META_USERS_GENERATION: &str = "users_generation";
/// `meta` key of the next queue sequence.
pub const META_NEXT_SEQ: &str = "next_seq";
/// `meta` key counting every write transaction ever committed (absent in older files: 0). A
/// reopen that finds fewer than the process answered knows a group was rolled back.
pub const META_COMMIT_COUNT: &str = "commit_count";

/// `meta` key of the total size of the `dead_letters` values.
pub const META_DEAD_LETTER_BYTES: &str = "dead_letter_bytes";

/// Counter of events appended by `commit_page`.
pub const COUNTER_APPENDED: &str = "store.events_appended";
/// Counter of duplicate events skipped by `commit_page`.
pub const COUNTER_DUPLICATES: &str = "store.events_duplicate";

/// How far ahead of the expiry's clock a `seen_at` time may lie before expiry treats it as
/// hostile: Box's clock and ours may disagree by seconds, never by a day.
pub(crate) const SEEN_FUTURE_SLACK_MS: u64 = 24 * 60 * 60 * 1000;

/// `created_at` in milliseconds since the Unix epoch, 0 when it is absent, not RFC 3339, or
/// before 1970 (those events still dedupe: their key is `(0, id)`).
pub(crate) fn created_ms(created_at: Option<&str>) -> u64 {
    created_at
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
        .and_then(|t| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .unwrap_or(0)
}

/// Queue record format this firmware writes. Readers accept every format up to this one.
pub const RECORD_FORMAT: u8 = 1;

/// Queue record, format 1:
///
/// ```text
/// [0]        format byte (1)
/// [1..5]     header length N, u32 little-endian
/// [5..5+N]   header: JSON RecordHeader (unknown fields ignored, new ones defaulted)
/// [5+N..]    the event: Box's JSON, compact, exactly as committed
/// ```
///
/// The event bytes are stored raw (not re-escaped inside the header) so they come back
/// byte-for-byte and cost no extra escaping.
#[derive(Debug, Serialize, Deserialize)]
struct RecordHeader {
    event_id: EventId,
    #[serde(default)]
    event_type: Option<String>,
    stream: StreamType,
    collected_at_ms: u64,
}

/// Encodes a record for the `queue` table (the sequence is the key, not part of the value).
pub(crate) fn encode_record(record: &QueuedRecord) -> Result<Vec<u8>, serde_json::Error> {
    let header = serde_json::to_vec(&RecordHeader {
        event_id: record.event_id.clone(),
        event_type: record.event_type.clone(),
        stream: record.stream,
        collected_at_ms: record.collected_at_ms,
    })?;
    let len = u32::try_from(header.len()).map_err(serde::ser::Error::custom)?;
    let mut out = Vec::with_capacity(5 + header.len() + record.event_json.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(record.event_json.as_bytes());
    Ok(out)
}

/// Decodes a `queue` value; the error text says what is wrong.
pub(crate) fn decode_record(seq: u64, bytes: &[u8]) -> Result<QueuedRecord, String> {
    let (header, event) = split_framed(bytes, "record")?;
    let header: RecordHeader =
        serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    let event_json = String::from_utf8(event.to_vec()).map_err(|e| format!("event: {e}"))?;
    Ok(QueuedRecord {
        seq,
        event_id: header.event_id,
        event_type: header.event_type,
        stream: header.stream,
        collected_at_ms: header.collected_at_ms,
        event_json,
    })
}

/// Checks the format byte of a `queue` value or a dead letter (`what`) and splits the rest
/// into its JSON header and what follows it (the event's text, or the queue record).
fn split_framed<'a>(bytes: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let (&format, rest) = bytes.split_first().ok_or_else(|| format!("empty {what}"))?;
    if format == 0 || format > RECORD_FORMAT {
        return Err(format!(
            "{what} format {format} is not supported (this firmware reads 1..={RECORD_FORMAT})"
        ));
    }
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or("truncated header length")?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|e| e.to_string())?;
    if rest.len() < len {
        return Err("truncated header".into());
    }
    Ok(rest.split_at(len))
}

/// Dead letter, format 1:
///
/// ```text
/// [0]        format byte (1)
/// [1..5]     header length N, u32 little-endian
/// [5..5+N]   header: JSON DeadLetterHeader (why, when)
/// [5+N..]    the queue record exactly as it was in `queue` (its own format byte first)
/// ```
#[derive(Debug, Serialize, Deserialize)]
struct DeadLetterHeader {
    reason: String,
    at_ms: u64,
}

/// Encodes a `dead_letters` value around the record's `queue` bytes.
pub(crate) fn encode_dead_letter(
    reason: &str,
    at_ms: u64,
    record: &[u8],
) -> Result<Vec<u8>, serde_json::Error> {
    let header = serde_json::to_vec(&DeadLetterHeader {
        reason: reason.to_owned(),
        at_ms,
    })?;
    let len = u32::try_from(header.len()).map_err(serde::ser::Error::custom)?;
    let mut out = Vec::with_capacity(5 + header.len() + record.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(record);
    Ok(out)
}

/// Decodes a `dead_letters` value: reason, time and the record.
pub(crate) fn decode_dead_letter(
    seq: u64,
    bytes: &[u8],
) -> Result<(String, u64, QueuedRecord), String> {
    let (header, record) = split_framed(bytes, "dead letter")?;
    let header: DeadLetterHeader =
        serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    Ok((header.reason, header.at_ms, decode_record(seq, record)?))
}

/// Only the `event_type` of a record header, borrowed where the JSON allows it.
#[derive(Deserialize)]
struct EventTypeOnly<'a> {
    #[serde(default, borrow)]
    event_type: Option<std::borrow::Cow<'a, str>>,
}

/// Applies `keep` to a `queue` value's `event_type` without decoding (or copying) the event:
/// the filter of [`crate::StoreCore::read_after`]. Same format checks as [`decode_record`].
pub(crate) fn keep_record(
    bytes: &[u8],
    keep: &(dyn Fn(Option<&str>) -> bool + Send + Sync),
) -> Result<bool, String> {
    let (header, _) = split_framed(bytes, "record")?;
    let header: EventTypeOnly<'_> =
        serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    Ok(keep(header.event_type.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> QueuedRecord {
        QueuedRecord {
            seq: 7,
            event_id: EventId::new("e-1").unwrap(),
            event_type: Some("LOGIN".into()),
            stream: StreamType::AdminLogsStreaming,
            collected_at_ms: 1_700_000_000_000,
            event_json: r#"{"event_id":"e-1","s":"é\"\n"}"#.into(),
        }
    }

    /// A record round-trips, and the event text is stored as raw bytes at the end.
    #[test]
    fn record_round_trips_with_raw_event() {
        let bytes = encode_record(&record()).unwrap();
        assert_eq!(bytes[0], RECORD_FORMAT);
        assert!(bytes.ends_with(record().event_json.as_bytes()));
        assert_eq!(decode_record(7, &bytes).unwrap(), record());
    }

    /// A header from a later firmware with extra fields still decodes (forward-compatible header).
    #[test]
    fn unknown_header_fields_are_ignored() {
        let header = br#"{"event_id":"x","stream":"admin_logs","collected_at_ms":5,"rendered":{"uef":true}}"#;
        let mut bytes = vec![1];
        bytes.extend_from_slice(&u32::try_from(header.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(b"{}");
        let decoded = decode_record(1, &bytes).unwrap();
        assert_eq!(decoded.event_type, None);
        assert_eq!(decoded.event_json, "{}");
    }

    /// The filter sees the header's event type (or `None`) without the event being decoded.
    #[test]
    fn filter_reads_the_header_only() {
        let bytes = encode_record(&record()).unwrap();
        let login = |t: Option<&str>| t == Some("LOGIN");
        assert!(keep_record(&bytes, &login).unwrap());
        let mut other = record();
        other.event_type = None;
        let bytes = encode_record(&other).unwrap();
        assert!(!keep_record(&bytes, &login).unwrap());
        assert!(keep_record(&bytes, &|t: Option<&str>| t.is_none()).unwrap());
        assert!(keep_record(&[9, 0, 0, 0, 0], &login).is_err());
        assert!(keep_record(&[1, 200, 0, 0, 0, b'{'], &login).is_err());
    }

    /// `created_at` with any offset gives the same instant; what is not a time gives 0.
    #[test]
    fn created_ms_is_the_instant() {
        let utc = created_ms(Some("2015-12-02T17:41:31Z"));
        assert_eq!(utc, 1_449_078_091_000);
        assert_eq!(created_ms(Some("2015-12-02T09:41:31-08:00")), utc);
        assert_eq!(created_ms(Some("2015-12-02T17:41:31.250+00:00")), utc + 250);
        for bad in [
            None,
            Some(""),
            Some("yesterday"),
            Some("1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(created_ms(bad), 0, "{bad:?}");
        }
        assert!(created_ms(Some("9999-12-31T23:30:00-01:00")) > utc);
    }

    /// A dead letter keeps the queue record byte for byte, with its reason and time.
    #[test]
    fn dead_letter_round_trips() {
        let bytes = encode_record(&record()).unwrap();
        let letter = encode_dead_letter("HTTP 413", 99, &bytes).unwrap();
        assert!(letter.ends_with(&bytes));
        let (reason, at, back) = decode_dead_letter(7, &letter).unwrap();
        assert_eq!((reason.as_str(), at, back), ("HTTP 413", 99, record()));
        assert!(decode_dead_letter(7, &letter[..8]).is_err());
        assert!(decode_dead_letter(7, &[]).is_err());
    }

    /// Unknown formats and truncated records are refused with a reason, not a panic.
    #[test]
    fn bad_records_are_refused() {
        assert!(decode_record(1, &[]).is_err());
        assert!(
            decode_record(1, &[9, 0, 0, 0, 0])
                .unwrap_err()
                .contains("format 9")
        );
        assert!(decode_record(1, &[1, 200, 0, 0, 0, b'{']).is_err());
    }
}
