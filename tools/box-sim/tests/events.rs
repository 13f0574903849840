//! `GET /2.0/events` against CONTRACT §2 (checklist §7 item 4): both admin stream semantics,
//! cursors above 2^53 in both JSON forms, limits, filters, retention.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use box_sim::{PositionForm, SimConfig, StreamType};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn created(e: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(e["created_at"].as_str().unwrap(), &Rfc3339).unwrap()
}

/// admin_logs pages are chronological by created_at, never repeat an event, and together
/// contain every event of the window exactly once.
#[tokio::test]
async fn admin_logs_is_chronological_without_duplicates() {
    let sim = start(SimConfig {
        backlog: 700,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let mut pos = "0".to_owned();
    let mut all = Vec::new();
    loop {
        let page = events_page(
            &sim,
            &token,
            &[
                ("stream_type", "admin_logs"),
                ("stream_position", &pos),
                ("limit", "97"),
            ],
        )
        .await;
        pos = position(&page);
        let entries = page["entries"].as_array().unwrap().clone();
        assert_eq!(page["chunk_size"], entries.len());
        if entries.is_empty() {
            break;
        }
        all.extend(entries);
    }
    let times: Vec<OffsetDateTime> = all.iter().map(created).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not chronological");
    let ids: Vec<&str> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates on admin_logs");
    let generated: HashSet<String> = sim.generated_ids().into_iter().collect();
    assert_eq!(unique.len(), generated.len());
    // The generator's processing order is NOT chronological (that is what makes the two
    // streams differ), so the test above could fail for a lazy implementation.
    let streaming = drain(&sim, &token, "admin_logs_streaming", "0", "500", &[])
        .await
        .0;
    assert_ne!(
        streaming,
        ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}

/// created_after / created_before bound admin_logs (inclusive), accept `Z` and offsets, and a
/// `+` offset decoded to a space is a 400.
#[tokio::test]
async fn admin_logs_created_window() {
    let sim = start(SimConfig {
        backlog: 400,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let after = now - time::Duration::days(2);
    let before = now - time::Duration::days(1);
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let after_s = fmt(after.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap()));
    let before_s = fmt(before);
    assert!(after_s.contains("+02:00") && before_s.ends_with('Z'));
    let (got, _) = drain(
        &sim,
        &token,
        "admin_logs",
        "0",
        "50",
        &[("created_after", &after_s), ("created_before", &before_s)],
    )
    .await;
    assert!(!got.is_empty());
    // Every returned event lies in the window; every event of the window was returned.
    let mut in_window = 0;
    let mut pos = "0".to_owned();
    loop {
        let page = events_page(
            &sim,
            &token,
            &[
                ("stream_type", "admin_logs"),
                ("stream_position", &pos),
                ("limit", "500"),
            ],
        )
        .await;
        pos = position(&page);
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            break;
        }
        for e in entries {
            let t = created(e);
            let inside = t >= after && t <= before;
            assert_eq!(
                inside,
                got.contains(&e["event_id"].as_str().unwrap().to_owned())
            );
            in_window += usize::from(inside);
        }
    }
    assert_eq!(in_window, got.len());
    // "+02:00" sent unencoded arrives as " 02:00".
    let raw = format!(
        "{}/events?stream_type=admin_logs&created_after={}",
        sim.api_base(),
        after_s
    );
    assert!(raw.contains("+02:00"));
    let resp = client().get(&raw).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["context_info"]["errors"][0]["name"], "created_after");
}

/// admin_logs_streaming delivers every generated event at least once when paged to the end,
/// in processing order (not chronological).
#[tokio::test]
async fn streaming_delivers_every_event() {
    let sim = start(SimConfig {
        backlog: 600,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let (got, _) = drain(&sim, &token, "admin_logs_streaming", "0", "77", &[]).await;
    let got_set: HashSet<&String> = got.iter().collect();
    for id in sim.generated_ids() {
        assert!(got_set.contains(&id), "missing {id}");
    }
    assert_eq!(
        sim.handed_out_ids(StreamType::AdminLogsStreaming).len(),
        got.len()
    );
}

/// With a duplicate rate the streaming feed re-delivers events (within and across pages), yet
/// still covers every event.
#[tokio::test]
async fn streaming_injects_duplicates() {
    let sim = start(SimConfig {
        backlog: 400,
        streaming_duplicate_rate: 0.3,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let (got, _) = drain(&sim, &token, "admin_logs_streaming", "0", "50", &[]).await;
    let unique: HashSet<&String> = got.iter().collect();
    assert!(
        got.len() > unique.len() + 40,
        "{} vs {}",
        got.len(),
        unique.len()
    );
    assert_eq!(unique.len(), sim.generated_ids().len());
    let mut within_page = false;
    for rec in sim.requests() {
        let set: HashSet<&String> = rec.event_ids.iter().collect();
        within_page |= set.len() < rec.event_ids.len();
    }
    assert!(within_page, "no duplicate inside a single page");
}

/// `now` returns an empty page and a position after which only events generated later appear.
#[tokio::test]
async fn now_then_only_new_events() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    let page = events_page(
        &sim,
        &token,
        &[
            ("stream_type", "admin_logs_streaming"),
            ("stream_position", "now"),
        ],
    )
    .await;
    assert_eq!(page["chunk_size"], 0);
    assert!(page["entries"].as_array().unwrap().is_empty());
    let pos = position(&page);
    let before: HashSet<String> = sim.generated_ids().into_iter().collect();
    sim.generate_now(25);
    sim.add_events(vec![sample("event-01-login.json")]);
    let (got, _) = drain(&sim, &token, "admin_logs_streaming", &pos, "100", &[]).await;
    assert_eq!(got.len(), 26);
    assert!(got.iter().all(|id| !before.contains(id)));
    assert_eq!(got.last().unwrap(), "0b1e6c3e-6a43-4d0b-9a43-5a7c1a2f9d10");
}

/// Live generation at `rate` produces events in the background and announces them.
#[tokio::test]
async fn live_rate_generates_and_announces() {
    let sim = start(SimConfig {
        rate: 200.0,
        backlog: 0,
        ..config()
    })
    .await;
    let mut rx = sim.subscribe_activity();
    let item = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!item.event_id.is_empty() && !item.event_type.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.events_generated() >= 20, "{}", sim.events_generated());
    sim.shutdown().await;
}

/// Cursor digits exceed 2^53 and are emitted as a JSON string in one mode and as a bare integer
/// token (all digits, no exponent/fraction) in the other.
#[tokio::test]
async fn positions_are_huge_in_both_forms() {
    for form in [PositionForm::String, PositionForm::Integer] {
        let sim = start(SimConfig {
            position_form: form,
            ..config()
        })
        .await;
        let token = ccg_token(&sim).await;
        for stream in ["admin_logs_streaming", "admin_logs"] {
            let (_, _, text) = api_get(
                &sim,
                &token,
                "/events",
                &[("stream_type", stream), ("limit", "3")],
            )
            .await;
            let key = "\"next_stream_position\":";
            let rest = &text[text.find(key).unwrap() + key.len()..];
            let token_text: String = rest
                .chars()
                .take_while(|c| *c != ',' && *c != '}')
                .collect();
            let digits = token_text.trim_matches('"');
            assert!(digits.chars().all(|c| c.is_ascii_digit()), "{token_text}");
            let n: u64 = digits.parse().unwrap();
            assert!(n > 1 << 53, "{n}");
            assert!(
                n as f64 as u64 != n,
                "must not survive an f64 round trip: {n}"
            );
            match form {
                PositionForm::String => assert!(token_text.starts_with('"'), "{token_text}"),
                PositionForm::Integer => assert!(!token_text.contains('"'), "{token_text}"),
            }
        }
    }
}

/// A client that round-trips the cursor through f64 gets a different cursor: either a 400 or
/// a page that does not continue where it should.
#[tokio::test]
async fn f64_rounded_cursor_is_detectably_wrong() {
    let sim = start(SimConfig {
        backlog: 300,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let q = |p: &str| {
        vec![
            ("stream_type", "admin_logs_streaming".to_owned()),
            ("stream_position", p.to_owned()),
            ("limit", "10".to_owned()),
        ]
    };
    let first = events_page(
        &sim,
        &token,
        &[("stream_type", "admin_logs_streaming"), ("limit", "10")],
    )
    .await;
    let pos = position(&first);
    let rounded = format!("{}", pos.parse::<f64>().unwrap() as u64);
    assert_ne!(pos, rounded);
    let good = ids(&events_page(
        &sim,
        &token,
        &q(&pos)
            .iter()
            .map(|(a, b)| (*a, b.as_str()))
            .collect::<Vec<_>>(),
    )
    .await);
    let (status, _, text) = api_get(
        &sim,
        &token,
        "/events",
        &q(&rounded)
            .iter()
            .map(|(a, b)| (*a, b.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    if status == StatusCode::OK {
        let page: Value = serde_json::from_str(&text).unwrap();
        assert_ne!(ids(&page), good);
    } else {
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

/// `limit` defaults to 100 and is clamped to 500; non-numbers and 0 are 400.
#[tokio::test]
async fn limit_default_and_max() {
    let sim = start(SimConfig {
        backlog: 800,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    for stream in ["admin_logs_streaming", "admin_logs"] {
        let page = events_page(&sim, &token, &[("stream_type", stream)]).await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 100);
        let page = events_page(&sim, &token, &[("stream_type", stream), ("limit", "800")]).await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 500);
        for bad in ["abc", "0", "-5"] {
            let (status, _, body) = api_get(
                &sim,
                &token,
                "/events",
                &[("stream_type", stream), ("limit", bad)],
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["type"], "error");
        }
    }
    // `limit` is validated on every stream type, the user streams included.
    for stream in ["all", "changes"] {
        for bad in ["abc", "0", "-5"] {
            let (status, _, body) = api_get(
                &sim,
                &token,
                "/events",
                &[("stream_type", stream), ("limit", bad)],
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{stream} {bad}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["type"], "error");
        }
        let (status, _, _) = api_get(
            &sim,
            &token,
            "/events",
            &[("stream_type", stream), ("limit", "10")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{stream}");
    }
}

/// Events injected through the HTTP control surface keep their `created_at` text verbatim, also
/// a hostile one (so such dates can be tested end to end); one without gets "now".
#[tokio::test]
async fn injected_events_keep_their_created_at() {
    let sim = start(SimConfig {
        backlog: 0,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let mut hostile = sample("event-01-login.json");
    hostile["event_id"] = "hostile-1".into();
    hostile["created_at"] = "9999-12-31T23:30:00-01:00".into();
    let mut junk = sample("event-01-login.json");
    junk["event_id"] = "junk-1".into();
    junk["created_at"] = "not a date".into();
    let mut none = sample("event-01-login.json");
    none["event_id"] = "none-1".into();
    none.as_object_mut().unwrap().remove("created_at");
    let resp = client()
        .post(format!("{}/_sim/events", sim.token_base()))
        .body(serde_json::json!([hostile, junk, none]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page = events_page(
        &sim,
        &token,
        &[("stream_type", "admin_logs_streaming"), ("limit", "10")],
    )
    .await;
    let by_id = |id: &str| {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == id)
            .unwrap_or_else(|| panic!("{id} served"))
            .clone()
    };
    assert_eq!(
        by_id("hostile-1")["created_at"],
        "9999-12-31T23:30:00-01:00"
    );
    assert_eq!(by_id("junk-1")["created_at"], "not a date");
    let stamped = by_id("none-1")["created_at"].as_str().unwrap().to_owned();
    assert!(
        OffsetDateTime::parse(&stamped, &time::format_description::well_known::Rfc3339).is_ok(),
        "{stamped}"
    );
}

/// The `rewrite_created_at` fault serves a hostile `created_at` on the next non-empty page.
#[tokio::test]
async fn rewrite_created_at_fault() {
    let sim = start(SimConfig {
        backlog: 5,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    sim.faults()
        .add_json(&serde_json::json!({
            "fault": "rewrite_created_at",
            "created_at": "9999-12-31T23:30:00-01:00",
            "endpoint": "events",
            "count": 1
        }))
        .unwrap();
    let page = events_page(
        &sim,
        &token,
        &[("stream_type", "admin_logs_streaming"), ("limit", "2")],
    )
    .await;
    for e in page["entries"].as_array().unwrap() {
        assert_eq!(e["created_at"], "9999-12-31T23:30:00-01:00");
    }
    let next = position(&page);
    let page = events_page(
        &sim,
        &token,
        &[
            ("stream_type", "admin_logs_streaming"),
            ("limit", "2"),
            ("stream_position", next.as_str()),
        ],
    )
    .await;
    for e in page["entries"].as_array().unwrap() {
        assert_ne!(
            e["created_at"], "9999-12-31T23:30:00-01:00",
            "count 1 is spent"
        );
    }
}

/// `event_type` takes one comma-separated value and keeps only those types, on both streams.
#[tokio::test]
async fn event_type_filter() {
    let sim = start(SimConfig {
        backlog: 800,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    for stream in ["admin_logs_streaming", "admin_logs"] {
        let mut pos = "0".to_owned();
        let mut types = BTreeSet::new();
        let mut n = 0;
        loop {
            let page = events_page(
                &sim,
                &token,
                &[
                    ("stream_type", stream),
                    ("stream_position", &pos),
                    ("event_type", "LOGIN,FAILED_LOGIN"),
                    ("limit", "40"),
                ],
            )
            .await;
            pos = position(&page);
            let entries = page["entries"].as_array().unwrap();
            if entries.is_empty() {
                break;
            }
            for e in entries {
                types.insert(e["event_type"].as_str().unwrap().to_owned());
                n += 1;
            }
        }
        assert_eq!(
            types,
            BTreeSet::from(["FAILED_LOGIN".to_owned(), "LOGIN".to_owned()]),
            "{stream}"
        );
        assert!(n > 100, "{n}");
    }
}

/// Unknown, garbage, and other-stream cursors are 400 `Invalid stream position`; an invalid
/// stream type is 400 naming the parameter; user streams answer an empty page.
#[tokio::test]
async fn bad_positions_and_stream_types() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    let streaming_pos = position(
        &events_page(
            &sim,
            &token,
            &[("stream_type", "admin_logs_streaming"), ("limit", "1")],
        )
        .await,
    );
    let future = (box_sim::STREAM_BASE + 1_000_000).to_string();
    for (stream, pos) in [
        ("admin_logs_streaming", "garbage"),
        ("admin_logs_streaming", "12345"),
        ("admin_logs_streaming", future.as_str()),
        ("admin_logs", streaming_pos.as_str()),
    ] {
        let (status, headers, body) = api_get(
            &sim,
            &token,
            "/events",
            &[("stream_type", stream), ("stream_position", pos)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{stream} {pos}");
        assert!(headers.contains_key("box-request-id"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["message"], "Invalid stream position");
        assert_eq!(body["status"], 400);
    }
    let (status, _, body) = api_get(&sim, &token, "/events", &[("stream_type", "admin")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body).unwrap();
    let expected = sample("error-400-bad-request.json");
    assert_eq!(body["context_info"], expected["context_info"]);
    let page = events_page(&sim, &token, &[]).await;
    assert_eq!(page["chunk_size"], 0);
}

/// Streaming keeps 14 days, admin_logs 365: a 30-day backlog is only partly visible on the
/// stream, and a cursor from before the window silently resumes at the oldest retained event.
#[tokio::test]
async fn retention_windows() {
    let sim = start(SimConfig {
        backlog: 600,
        backlog_span: Duration::from_secs(30 * 86_400),
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let (streaming, _) = drain(&sim, &token, "admin_logs_streaming", "0", "500", &[]).await;
    let (history, _) = drain(&sim, &token, "admin_logs", "0", "500", &[]).await;
    assert_eq!(history.len(), 600);
    assert!(
        streaming.len() > 200 && streaming.len() < 330,
        "{}",
        streaming.len()
    );
    let old_cursor = box_sim::STREAM_BASE.to_string(); // seq 0: 30 days old
    let page = events_page(
        &sim,
        &token,
        &[
            ("stream_type", "admin_logs_streaming"),
            ("stream_position", &old_cursor),
            ("limit", "1"),
        ],
    )
    .await;
    assert_eq!(ids(&page)[0], streaming[0]);
}

/// Injected samples are served verbatim (apart from created_at) — every sample event shape the
/// contract lists comes back unchanged.
#[tokio::test]
async fn samples_are_served_verbatim() {
    let sim = start(SimConfig {
        backlog: 0,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let samples: Vec<Value> = sample("events.json").as_array().unwrap().clone();
    sim.add_events(samples.clone());
    let page = events_page(
        &sim,
        &token,
        &[("stream_type", "admin_logs_streaming"), ("limit", "500")],
    )
    .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), samples.len());
    for (got, want) in entries.iter().zip(&samples) {
        let mut got = got.clone();
        let mut want = want.clone();
        got.as_object_mut().unwrap().remove("created_at");
        want.as_object_mut().unwrap().remove("created_at");
        assert_eq!(got, want);
    }
    // Both admin streams see injected events.
    let (history, _) = drain(&sim, &token, "admin_logs", "0", "500", &[]).await;
    assert_eq!(history.len(), samples.len());
}
