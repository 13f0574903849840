//! Dead letters on the setup page: the Maintenance page counts them and offers them as a JSON
//! lines download; the admin removes them with a CSRF-protected form that covers only what
//! the page showed; the status page counts them (issue 13: nothing disappears silently).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use boxidr_model::{BoxEvent, StreamType};
use boxidr_store::{CursorKey, PageCommit, Rejection, SinkId, Store};
use common::Harness;
use serde_json::json;

async fn queue(store: &Store, ids: &[&str], position: &str) {
    let events = ids
        .iter()
        .map(|id| {
            BoxEvent::from_value(json!({
                "event_id": id, "event_type": "UPLOAD",
                "source": {"name": "<script>alert(1)</script>\r\n\u{202e}evil"}
            }))
            .unwrap()
        })
        .collect();
    store
        .commit_page(PageCommit {
            cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
            events,
            next_position: Some(boxidr_model::StreamPosition::new(position).unwrap()),
            last_created_at: None,
            window: None,
            collected_at_ms: 1_700_000_000_000,
        })
        .await
        .unwrap();
}

fn refused(seq: u64) -> Rejection {
    Rejection {
        seq,
        reason: "Log Search answered HTTP 413 Payload Too Large".to_owned(),
    }
}

/// Counted on the page, downloaded as one JSON object per line with the reason and Box's
/// event, removed only with the CSRF token and only up to the newest one the page showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_and_remove_dead_letters() {
    let h = Harness::start().await;
    let store = h.store.clone();
    store.set_enabled_sinks(&[SinkId::LogSearch]).await.unwrap();
    queue(&store, &["ok-1", "big-2", "big-3"], "10").await;
    store
        .ack_rejecting(SinkId::LogSearch, 3, vec![refused(2), refused(3)], 5)
        .await
        .unwrap();

    let mut b = h.claimed_browser().await;
    let page = b.get("/maintenance").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("2 kept"), "{}", page.body);
    assert!(
        page.body
            .contains("href=\"/maintenance/dead-letters.jsonl\"")
    );
    assert!(page.body.contains("name=\"through\" value=\"3\""));
    let csrf = page.csrf();

    let (status, headers, body) = b.get_bytes("/maintenance/dead-letters.jsonl").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("boxidr-dead-letters.jsonl")
    );
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["event_id"], "big-2");
    assert_eq!(lines[1]["event_id"], "big-3");
    assert!(lines[0]["reason"].as_str().unwrap().contains("413"));
    // Box's event comes back as it was queued, hostile strings and all.
    assert_eq!(
        lines[0]["event"]["source"]["name"],
        "<script>alert(1)</script>\r\n\u{202e}evil"
    );

    // One more is set aside after the page was drawn.
    queue(&store, &["big-4"], "11").await;
    store
        .ack_rejecting(SinkId::LogSearch, 4, vec![refused(4)], 6)
        .await
        .unwrap();

    // Without the CSRF token: refused, nothing removed.
    let r = b
        .post("/maintenance/dead-letters/remove", &[("through", "3")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(store.stats().await.unwrap().dead_letters, 3);

    let r = b
        .post(
            "/maintenance/dead-letters/remove",
            &[("csrf", &csrf), ("through", "3")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Removed 2 dead letters"), "{}", r.body);
    let left = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].record.event_id.as_str(), "big-4");
    assert!(r.body.contains("1 kept"), "{}", r.body);

    // An incomplete form removes nothing.
    let csrf = b.get("/maintenance").await.csrf();
    let r = b
        .post("/maintenance/dead-letters/remove", &[("csrf", &csrf)])
        .await;
    assert!(r.body.contains("Nothing was removed"), "{}", r.body);
    assert_eq!(store.stats().await.unwrap().dead_letters, 1);
}

/// The status page counts the dead letters and links to where they are handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_counts_dead_letters() {
    let h = Harness::start().await;
    *h.status.0.lock().unwrap() = json!({
        "store": {"queue_records": 0, "dead_letters": 2, "dead_letter_bytes": 20480,
                  "dead_letters_full": true}
    });
    let mut b = h.claimed_browser().await;
    let page = b.get("/status").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("2 refused by InsightIDR, kept"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("forwarding holds until they are removed")
    );
    assert!(page.body.contains("href=\"/maintenance#dead-letters\""));
}
