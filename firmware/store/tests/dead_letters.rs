//! Dead letters: a record a destination refused for good is kept (with its reason and time)
//! in the same transaction as the ack that passes it, bounded, listed, and removed only up to
//! what the administrator was shown. Nothing Box gave us disappears silently.

#![allow(clippy::unwrap_used)]

mod common;

use boxidr_store::{DEAD_LETTER_MAX_RECORDS, Rejection, SinkId, StoreCore, StoreError};
use common::*;

fn rejection(seq: u64) -> Rejection {
    Rejection {
        seq,
        reason: "Log Search answered HTTP 413 Payload Too Large".to_owned(),
    }
}

fn queued_ids(core: &mut StoreCore, sink: SinkId) -> Vec<String> {
    core.read_batch(sink, usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.event_id.to_string())
        .collect()
}

/// The ack that passes a refused record deletes it from the queue and keeps it as a dead
/// letter, byte for byte, with the reason and the time; the counts say so.
#[test]
fn refused_record_is_kept_by_the_ack_that_passes_it() {
    let disk = MemDisk::new();
    let mut core = open_mem_queue(
        &disk,
        &[SinkId::LogSearch],
        page(&["a", "b", "c"], Some("1"), 10),
    );
    let original = core.read_batch(SinkId::LogSearch, 10, usize::MAX).unwrap()[1].clone();

    let ack = core
        .ack_rejecting(SinkId::LogSearch, 3, &[rejection(2)], 1_234)
        .unwrap();
    assert_eq!((ack.cursor, ack.deleted), (3, 3));
    assert!(queued_ids(&mut core, SinkId::LogSearch).is_empty());

    let letters = core.dead_letters(None, 10).unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.sink, SinkId::LogSearch);
    assert_eq!(letter.at_ms, 1_234);
    assert!(letter.reason.contains("413"), "{}", letter.reason);
    assert_eq!(letter.record, original);

    let stats = core.stats().unwrap();
    assert_eq!(stats.dead_letters, 1);
    assert!(stats.dead_letter_bytes > original.event_json.len() as u64);
    assert_eq!(stats.newest_dead_letter_seq, Some(2));
    assert!(!stats.dead_letters_full);

    // The download line carries the record, the reason and Box's event as JSON.
    let line: serde_json::Value = serde_json::from_str(&letter.to_json_line()).unwrap();
    assert_eq!(line["event_id"], "b");
    assert_eq!(line["seq"], 2);
    assert_eq!(line["sink"], "log_search");
    assert_eq!(line["event"]["event_id"], "b");
    assert_eq!(line["event"]["created_by"]["name"], "Jö \"quoted\"");
}

/// Dead letters survive a reopen, and a rejection the cursor already passed (a repeated
/// report) adds nothing.
#[test]
fn dead_letters_are_durable_and_not_doubled() {
    let disk = MemDisk::new();
    {
        let mut core = open_mem_queue(
            &disk,
            &[SinkId::LogSearch],
            page(&["a", "b", "c", "d"], Some("1"), 10),
        );
        core.ack_rejecting(SinkId::LogSearch, 2, &[rejection(1)], 5)
            .unwrap();
        // Seq 1 again (at or below the cursor) and seq 4 (beyond this ack): neither is kept.
        core.ack_rejecting(SinkId::LogSearch, 3, &[rejection(1), rejection(4)], 6)
            .unwrap();
        core.close().unwrap();
    }
    let mut core = open_mem(&disk);
    let letters = core.dead_letters(None, 10).unwrap();
    let seqs: Vec<u64> = letters.iter().map(|l| l.record.seq).collect();
    assert_eq!(seqs, [1]);
    assert_eq!(queued_ids(&mut core, SinkId::LogSearch), ["d"]);
}

/// Removal covers only what the administrator was shown (up to a sequence): a dead letter
/// set aside after the page was drawn stays.
#[test]
fn removal_stops_at_the_sequence_shown() {
    let disk = MemDisk::new();
    let mut core = open_mem_queue(
        &disk,
        &[SinkId::LogSearch],
        page(&["a", "b", "c", "d"], Some("1"), 10),
    );
    core.ack_rejecting(SinkId::LogSearch, 4, &[rejection(1), rejection(3)], 7)
        .unwrap();
    let before = core.stats().unwrap().dead_letter_bytes;
    assert_eq!(core.remove_dead_letters(2).unwrap(), 1);
    let stats = core.stats().unwrap();
    assert_eq!(stats.dead_letters, 1);
    assert!(stats.dead_letter_bytes < before && stats.dead_letter_bytes > 0);
    assert_eq!(core.dead_letters(None, 10).unwrap()[0].record.seq, 3);
    assert_eq!(core.remove_dead_letters(2).unwrap(), 0);
    assert_eq!(core.remove_dead_letters(3).unwrap(), 1);
    let stats = core.stats().unwrap();
    assert_eq!((stats.dead_letters, stats.dead_letter_bytes), (0, 0));
    // Listing pages through them in order.
    assert!(core.dead_letters(None, 10).unwrap().is_empty());
}

/// At the bound the ack that would keep one more is refused whole: the cursor stays, the
/// record stays queued (the sink holds, nothing is dropped) and the store says it is full;
/// once dead letters are removed the same ack goes through.
#[test]
fn at_the_bound_the_sink_holds_instead_of_dropping() {
    let disk = MemDisk::new();
    let mut core = open_mem(&disk);
    core.set_enabled_sinks(&[SinkId::LogSearch]).unwrap();
    let total = DEAD_LETTER_MAX_RECORDS + 1;
    let names: Vec<String> = (0..total).map(|i| format!("e{i}")).collect();
    for (n, chunk) in names.chunks(500).enumerate() {
        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
        core.commit_page(page(&ids, Some(&format!("{}", n + 1)), 10))
            .unwrap();
    }
    let first: Vec<Rejection> = (1..=DEAD_LETTER_MAX_RECORDS).map(rejection).collect();
    core.ack_rejecting(SinkId::LogSearch, DEAD_LETTER_MAX_RECORDS, &first, 8)
        .unwrap();
    assert_eq!(core.stats().unwrap().dead_letters, DEAD_LETTER_MAX_RECORDS);

    let refused = core.ack_rejecting(SinkId::LogSearch, total, &[rejection(total)], 9);
    assert!(
        matches!(refused, Err(StoreError::DeadLettersFull { .. })),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().is_retryable());
    let stats = core.stats().unwrap();
    assert!(stats.dead_letters_full);
    assert_eq!(stats.dead_letters, DEAD_LETTER_MAX_RECORDS);
    let held = &stats.pending_per_sink[1];
    assert_eq!(
        (held.sink, held.cursor, held.pending),
        (SinkId::LogSearch, DEAD_LETTER_MAX_RECORDS, 1)
    );

    assert_eq!(
        core.remove_dead_letters(total).unwrap(),
        DEAD_LETTER_MAX_RECORDS
    );
    assert!(!core.stats().unwrap().dead_letters_full);
    core.ack_rejecting(SinkId::LogSearch, total, &[rejection(total)], 9)
        .unwrap();
    let letters = core.dead_letters(None, 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].record.event_id.to_string(),
        format!("e{}", total - 1)
    );
    assert_eq!(core.stats().unwrap().queue_records, 0);
}
