//! `GET /2.0/groups` and `GET /2.0/groups/{id}/memberships` against CONTRACT §3.4 and the
//! samples `groups-page.json`, `group-memberships-page.json`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::HashSet;

use box_sim::{ALL_USERS_GROUP, Endpoint, Fault, FaultKind, GroupType, SimConfig};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn get(
    sim: &box_sim::SimHandle,
    token: &str,
    path: &str,
    q: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, headers, text) = api_get(sim, token, path, q).await;
    assert!(headers.contains_key("box-request-id"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn keys(v: &Value) -> HashSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Pages through an offset-paged list, stepping by the returned `limit`.
async fn all_pages(sim: &box_sim::SimHandle, token: &str, path: &str, limit: &str) -> Vec<Value> {
    let mut offset = 0;
    let mut entries = Vec::new();
    loop {
        let off = offset.to_string();
        let (status, page) = get(sim, token, path, &[("limit", limit), ("offset", &off)]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        offset += page["limit"].as_u64().unwrap();
        if offset >= page["total_count"].as_u64().unwrap() {
            return entries;
        }
    }
}

/// Groups: envelope and entries shaped like the sample, offset paging covers every group once,
/// the seeded set has managed groups and one all-users group, and `fields` replaces the set.
#[tokio::test]
async fn groups_paging_and_shape() {
    let sim = start(SimConfig {
        users: 40,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let sample_page = sample("groups-page.json");
    let (status, page) = get(&sim, &token, "/groups", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&page), keys(&sample_page));
    assert_eq!(page["limit"], 100, "default limit");
    for g in page["entries"].as_array().unwrap() {
        assert_eq!(keys(g), keys(&sample_page["entries"][0]));
        assert_eq!(g["type"], "group");
    }
    let listed = all_pages(&sim, &token, "/groups", "2").await;
    let ids: Vec<&str> = listed.iter().map(|g| g["id"].as_str().unwrap()).collect();
    let want: Vec<String> = sim.groups().into_iter().map(|g| g.id).collect();
    assert_eq!(ids, want);
    let types: Vec<GroupType> = sim.groups().iter().map(|g| g.group_type).collect();
    assert!(
        types
            .iter()
            .filter(|t| **t == GroupType::ManagedGroup)
            .count()
            >= 3
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == GroupType::AllUsersGroup)
            .count(),
        1
    );
    let (_, page) = get(&sim, &token, "/groups", &[("fields", "created_at,name")]).await;
    let want_keys: HashSet<String> = ["type", "id", "created_at", "name"]
        .map(str::to_owned)
        .into();
    assert_eq!(keys(&page["entries"][0]), want_keys);
    let (_, page) = get(&sim, &token, "/groups", &[("limit", "5000")]).await;
    assert_eq!(page["limit"], 1000, "limit clamped to the maximum");
}

/// `filter_term` is a case-insensitive prefix of the name (a prefix, not a substring).
#[tokio::test]
async fn groups_filter_term() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    sim.add_group("Finance Auditors", &[]);
    let (_, page) = get(&sim, &token, "/groups", &[("filter_term", "fINANCE")]).await;
    let names: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Finance", "Finance Auditors"]);
    assert_eq!(page["total_count"], 2);
    let (_, page) = get(&sim, &token, "/groups", &[("filter_term", "inance")]).await;
    assert_eq!(page["total_count"], 0);
}

/// Memberships: shaped like the sample, paged, listing exactly the group's current members;
/// the all-users group lists every managed user; a removed user leaves its groups.
#[tokio::test]
async fn memberships_paging_and_removal() {
    let sim = start(SimConfig {
        users: 30,
        ..config()
    })
    .await;
    let token = ccg_token(&sim).await;
    let sample_page = sample("group-memberships-page.json");
    let sample_entry = &sample_page["entries"][0];
    let finance = sim
        .groups()
        .into_iter()
        .find(|g| g.name == "Finance")
        .unwrap();
    assert!(!finance.member_ids.is_empty());
    let path = format!("/groups/{}/memberships", finance.id);
    let (status, page) = get(&sim, &token, &path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&page), keys(&sample_page));
    let entry = &page["entries"][0];
    for k in keys(sample_entry) {
        assert!(entry.get(&k).is_some(), "membership lacks {k}");
    }
    assert_eq!(entry["type"], "group_membership");
    assert_eq!(keys(&entry["user"]), keys(&sample_entry["user"]));
    assert_eq!(keys(&entry["group"]), keys(&sample_entry["group"]));
    assert_eq!(entry["group"]["id"], finance.id.as_str());
    assert!(["member", "admin"].contains(&entry["role"].as_str().unwrap()));

    let members = all_pages(&sim, &token, &path, "3").await;
    let ids: Vec<String> = members
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, finance.member_ids);

    let all = sim
        .groups()
        .into_iter()
        .find(|g| g.name == ALL_USERS_GROUP)
        .unwrap();
    assert_eq!(all.group_type, GroupType::AllUsersGroup);
    let members = all_pages(
        &sim,
        &token,
        &format!("/groups/{}/memberships", all.id),
        "1000",
    )
    .await;
    let ids: Vec<String> = members
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, sim.managed_user_ids());

    let gone = finance.member_ids[0].clone();
    assert!(sim.remove_user(&gone));
    assert!(!sim.remove_user(&gone), "already removed");
    assert!(!sim.managed_user_ids().contains(&gone));
    let members = all_pages(&sim, &token, &path, "1000").await;
    assert!(
        members.iter().all(|m| m["user"]["id"] != gone.as_str()),
        "a removed user leaves its groups"
    );
    assert_eq!(members.len(), finance.member_ids.len() - 1);
}

/// Errors like `/users`: offset > 10000 and bad numbers are 400 ClientErrors, an unknown group
/// is 404, no token is 401, a regular user is 403, an app without `manage_groups` is 403
/// `insufficient_scope`; and faults scoped to `groups` hit only the groups endpoints.
#[tokio::test]
async fn errors_auth_and_faults() {
    let sim = start(config()).await;
    let token = ccg_token(&sim).await;
    let (status, _) = get(&sim, &token, "/groups", &[("offset", "10000")]).await;
    assert_eq!(status, StatusCode::OK);
    for (q, code) in [
        (("offset", "10001"), "bad_request"),
        (("offset", "-1"), "invalid_offset"),
        (("limit", "x"), "invalid_limit"),
    ] {
        for path in ["/groups".to_owned(), {
            let id = sim.groups()[0].id.clone();
            format!("/groups/{id}/memberships")
        }] {
            let (status, body) = get(&sim, &token, &path, &[q]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {q:?}");
            assert_eq!(body["type"], "error");
            assert_eq!(body["code"], code, "{path} {q:?}");
        }
    }
    let (status, body) = get(&sim, &token, "/groups/999/memberships", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    let (status, _, _) = api_get(&sim, "bogus", "/groups", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    sim.set_authorizing_role(box_sim::Role::User);
    let (user_token, _) = user_tokens(&sim).await;
    let (status, body) = get(&sim, &user_token, "/groups", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "access_denied_insufficient_permissions");

    sim.faults().add(
        Fault::new(FaultKind::ServerError {
            status: 503,
            body: box_sim::ErrorBody::Json,
            retry_after: None,
        })
        .on(Endpoint::Groups)
        .times(2),
    );
    let (status, _, _) = api_get(&sim, &token, "/users", &[]).await;
    assert_eq!(status, StatusCode::OK, "users not affected");
    let (status, _) = get(&sim, &token, "/groups", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let id = sim.groups()[0].id.clone();
    let (status, _) = get(&sim, &token, &format!("/groups/{id}/memberships"), &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = get(&sim, &token, "/groups", &[]).await;
    assert_eq!(status, StatusCode::OK);

    let narrow = start(SimConfig {
        app_scopes: vec![
            "manage_managed_users".into(),
            "manage_enterprise_properties".into(),
        ],
        ..config()
    })
    .await;
    let token = ccg_token(&narrow).await;
    let (status, body) = get(&narrow, &token, "/groups", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "insufficient_scope");
}

/// The control surface lists the groups with their member ids.
#[tokio::test]
async fn control_lists_groups() {
    let sim = start(config()).await;
    let v: Value = client()
        .get(format!("http://{}/_sim/groups", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, serde_json::to_value(sim.groups()).unwrap());
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|g| g["group_type"] == "managed_group")
    );
}
