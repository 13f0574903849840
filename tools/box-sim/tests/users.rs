//! `GET /2.0/users` and `/users/me` against CONTRACT §3 (checklist §7 item 5).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::HashSet;

use box_sim::{EndMarker, SimConfig};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn users(sim: &box_sim::SimHandle, token: &str, q: &[(&str, &str)]) -> (StatusCode, Value) {
    let (status, headers, text) = api_get(sim, token, "/users", q).await;
    assert!(headers.contains_key("box-request-id"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Offset paging: envelope like users-page-offset.json, standard user fields like
/// user-standard.json, and stepping `offset` by the returned `limit` covers every managed user.
#[tokio::test]
async fn offset_paging() {
    let sim = start(SimConfig {
        users: 45,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let sample_page = sample("users-page-offset.json");
    let sample_user = sample("user-standard.json");
    let mut offset = 0;
    let mut seen = Vec::new();
    loop {
        let off = offset.to_string();
        let (status, page) = users(
            &sim,
            &token,
            &[("user_type", "managed"), ("limit", "10"), ("offset", &off)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for key in sample_page.as_object().unwrap().keys() {
            assert!(page.get(key).is_some(), "page lacks {key}");
        }
        for u in page["entries"].as_array().unwrap() {
            let keys: HashSet<&String> = u.as_object().unwrap().keys().collect();
            let want: HashSet<&String> = sample_user.as_object().unwrap().keys().collect();
            assert_eq!(keys, want);
            seen.push(u["id"].as_str().unwrap().to_owned());
        }
        offset += page["limit"].as_u64().unwrap();
        if offset >= page["total_count"].as_u64().unwrap() {
            break;
        }
    }
    assert_eq!(seen, sim.managed_user_ids());
}

/// Offset above 10000 is a 400 ClientError; a non-numeric offset too.
#[tokio::test]
async fn offset_above_10000_rejected() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    let (status, _) = users(&sim, &token, &[("offset", "10000")]).await;
    assert_eq!(status, StatusCode::OK);
    for bad in ["10001", "abc"] {
        let (status, body) = users(&sim, &token, &[("offset", bad)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["type"], "error");
        assert_eq!(body["status"], 400);
    }
}

/// Marker paging covers every user exactly once, has no total_count/offset, and ends with the
/// configured end signal (null, empty string, or absent).
#[tokio::test]
async fn marker_paging_covers_all_once() {
    for end in [EndMarker::Null, EndMarker::Empty, EndMarker::Absent] {
        let sim = start(SimConfig {
            users: 37,
            end_marker: end,
            ..config()
        })
        .await;
        let token = ccg_token(&sim).await;
        let mut marker: Option<String> = None;
        let mut seen = Vec::new();
        let mut last_page = Value::Null;
        for _ in 0..100 {
            let mut q = vec![
                ("usemarker", "true"),
                ("limit", "8"),
                ("user_type", "managed"),
            ];
            if let Some(m) = &marker {
                q.push(("marker", m));
            }
            let (status, page) = users(&sim, &token, &q).await;
            assert_eq!(status, StatusCode::OK);
            assert!(page.get("total_count").is_none() && page.get("offset").is_none());
            seen.extend(
                page["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_owned()),
            );
            marker = page["next_marker"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
            last_page = page;
            if marker.is_none() {
                break;
            }
        }
        assert_eq!(seen, sim.managed_user_ids(), "{end:?}");
        match end {
            EndMarker::Null => assert!(
                last_page["next_marker"].is_null() && last_page.get("next_marker").is_some()
            ),
            EndMarker::Empty => assert_eq!(last_page["next_marker"], ""),
            EndMarker::Absent => assert!(last_page.get("next_marker").is_none()),
        }
        let (status, _) = users(&sim, &token, &[("usemarker", "true"), ("marker", "junk!")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = users(&sim, &token, &[("marker", "eyJ0")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "marker without usemarker");
    }
}

/// `limit` defaults to 100 and above 1000 is clamped to 1000 (echoed in `limit`, spec `Users`).
#[tokio::test]
async fn limit_default_and_clamp() {
    let sim = start(SimConfig {
        users: 1100,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let (_, page) = users(&sim, &token, &[]).await;
    assert_eq!(page["limit"], 100);
    assert_eq!(page["entries"].as_array().unwrap().len(), 100);
    let (_, page) = users(&sim, &token, &[("limit", "5000")]).await;
    assert_eq!(page["limit"], 1000);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1000);
    let (status, body) = users(&sim, &token, &[("limit", "x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_limit");
}

/// `fields` replaces the standard set (type and id stay); statuses and roles cover the spec
/// values; `filter_term` is a prefix on name or login; external users need an exact login.
#[tokio::test]
async fn fields_filters_and_types() {
    let sim = start(SimConfig {
        users: 60,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let (_, page) = users(
        &sim,
        &token,
        &[("fields", "status,role,enterprise"), ("limit", "1000")],
    )
    .await;
    let entries = page["entries"].as_array().unwrap();
    let mut statuses = HashSet::new();
    let mut roles = HashSet::new();
    for u in entries {
        let keys: HashSet<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            HashSet::from(["type", "id", "status", "role", "enterprise"])
        );
        statuses.insert(u["status"].as_str().unwrap().to_owned());
        roles.insert(u["role"].as_str().unwrap().to_owned());
    }
    for s in ["active", "inactive"] {
        assert!(statuses.contains(s), "{statuses:?}");
    }
    assert_eq!(
        roles,
        HashSet::from(["admin".into(), "coadmin".into(), "user".into()])
    );
    assert!(statuses.iter().all(|s| {
        [
            "active",
            "inactive",
            "cannot_delete_edit",
            "cannot_delete_edit_upload",
        ]
        .contains(&s.as_str())
    }));

    let (_, all) = users(&sim, &token, &[("fields", "login,name"), ("limit", "1000")]).await;
    let first = all["entries"][0].clone();
    let prefix = &first["login"].as_str().unwrap()[..3];
    let (_, filtered) = users(
        &sim,
        &token,
        &[("filter_term", prefix), ("fields", "login,name")],
    )
    .await;
    let got = filtered["entries"].as_array().unwrap();
    assert!(!got.is_empty());
    for u in got {
        let p = prefix.to_lowercase();
        assert!(
            u["login"].as_str().unwrap().to_lowercase().starts_with(&p)
                || u["name"].as_str().unwrap().to_lowercase().starts_with(&p)
        );
    }
    let (_, ext) = users(&sim, &token, &[("user_type", "external")]).await;
    assert_eq!(
        ext["entries"].as_array().unwrap().len(),
        0,
        "external needs exact login"
    );
    let (status, _) = users(&sim, &token, &[("user_type", "robots")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `/users/me` returns the authorizing admin; with `fields=enterprise,role` only type, id and
/// those fields, shaped like user-me-fields-enterprise.json.
#[tokio::test]
async fn users_me_with_fields() {
    let sim = start(config()).await;
    let (at, _) = user_tokens(&sim).await;
    let (status, _, text) = api_get(&sim, &at, "/users/me", &[("fields", "enterprise,role")]).await;
    assert_eq!(status, StatusCode::OK);
    let me: Value = serde_json::from_str(&text).unwrap();
    let keys: HashSet<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["type", "id", "enterprise", "role"]));
    let sample = sample("user-me-fields-enterprise.json");
    let ent_keys: HashSet<&String> = me["enterprise"].as_object().unwrap().keys().collect();
    let want: HashSet<&String> = sample["enterprise"].as_object().unwrap().keys().collect();
    assert_eq!(ent_keys, want);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["id"], sim.authorizing_user().0.as_str());
    let (_, _, text) = api_get(&sim, &at, "/users/me", &[]).await;
    let me: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(me["login"], sim.authorizing_user().1.as_str());
    assert!(me.get("role").is_none(), "role is not a standard field");
}
