//! A scoped run end to end at the pipeline level: the users sync against the Box simulator
//! records group membership, the directory reads it, and the renderer the forwarders call sends
//! only the in-scope users' events to either sink (the rest render to nothing, which the
//! forwarder acknowledges without sending, and are counted).
#![allow(clippy::unwrap_used)] // a failed setup should panic loudly

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use boxidr_boxapi::{AuthClient, Grant, TokenManager, UsersClient, http};
use boxidr_config::Scope;
use boxidr_forward::Render;
use boxidr_model::{EventId, Secret, StreamType};
use boxidr_store::{QueuedRecord, SinkId, Store, StoreOptions};
use serde_json::Value;
use url::Url;

use super::Renderer;

/// Every event of the simulator's `admin_logs` feed.
async fn all_events(sim: &box_sim::SimHandle, token: &Secret) -> Vec<Value> {
    let client = http::client(Duration::from_secs(30)).unwrap();
    let mut events = Vec::new();
    let mut position = "0".to_owned();
    loop {
        let page: Value = client
            .get(format!("{}/events", sim.api_base()))
            .bearer_auth(token.expose())
            .query(&[
                ("stream_type", "admin_logs"),
                ("limit", "500"),
                ("stream_position", position.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            return events;
        }
        events.extend(entries.iter().cloned());
        position = match &page["next_stream_position"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
}

/// The user ids an event concerns: its actor, the user it acts on, a Shield alert's user.
fn concerned(event: &Value) -> BTreeSet<String> {
    let id = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    [
        &event["created_by"]["id"],
        &event["source"]["id"],
        &event["additional_details"]["shield_alert"]["user"]["id"],
    ]
    .into_iter()
    .filter_map(id)
    .collect()
}

/// With `[scope]` naming a group and one login, the users sync records the group's members,
/// and of the simulator's events only those concerning a member or that login render for
/// either sink; every event acted by one of them is sent; the rest are counted per sink.
#[tokio::test(flavor = "multi_thread")]
async fn scoped_run_sends_only_in_scope_users_events() {
    let config = box_sim::SimConfig {
        rate: 0.0,
        backlog: 400,
        users: 40,
        ..box_sim::SimConfig::default()
    };
    let sim = box_sim::BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path().join("boxidr.redb")))
        .await
        .unwrap();
    let client = http::client(Duration::from_secs(30)).unwrap();
    let auth = AuthClient::new(
        client.clone(),
        Url::parse(&sim.authorize_url()).unwrap(),
        &Url::parse(&sim.token_base()).unwrap(),
        &config.client_id,
        Secret::new(config.client_secret.clone()),
    )
    .unwrap();
    let grant = Grant::ClientCredentials {
        enterprise_id: config.enterprise_id.clone(),
    };
    let tokens = TokenManager::load(auth, grant, store.clone())
        .await
        .unwrap();
    let users = UsersClient::new(client, &Url::parse(&sim.api_base()).unwrap(), 8 << 20);

    let finance = sim
        .groups()
        .into_iter()
        .find(|g| g.name == "Finance")
        .unwrap();
    let listed_id = sim
        .managed_user_ids()
        .into_iter()
        .find(|id| !finance.member_ids.contains(id))
        .unwrap();
    let token = tokens.access_token().await.unwrap();
    let me: Value = http::client(Duration::from_secs(30))
        .unwrap()
        .get(format!("{}/users", sim.api_base()))
        .bearer_auth(token.expose())
        .query(&[("user_type", "managed"), ("limit", "1000")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed_login = me["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == listed_id.as_str())
        .and_then(|u| u["login"].as_str())
        .unwrap()
        .to_uppercase();
    let scope = Scope {
        users: vec![listed_login.to_lowercase()],
        groups: vec!["finance".into()],
    };
    let report = boxidr_boxapi::users::sync(&tokens, &users, &store, &scope)
        .await
        .unwrap();
    assert_eq!(report.scope_groups, 1);
    let renderer = Renderer::new(
        boxidr_normalize::Settings {
            send_unparsed: true,
            ..boxidr_normalize::Settings::default()
        }
        .with_scope(&scope),
    );
    let reader = store.user_reader().await.unwrap();
    renderer
        .directory
        .attach(Arc::new(move |id: &str| reader.get(id)));

    let mut allowed: BTreeSet<String> = finance.member_ids.iter().cloned().collect();
    allowed.insert(listed_id.clone());
    let events = all_events(&sim, &token).await;
    assert!(events.len() >= 400, "{}", events.len());
    let (mut sent, mut kept, mut by_member, mut by_login) = (0, 0, 0, 0);
    for (i, event) in events.iter().enumerate() {
        let record = QueuedRecord {
            seq: i as u64 + 1,
            event_id: EventId::new(event["event_id"].as_str().unwrap()).unwrap(),
            event_type: event["event_type"].as_str().map(str::to_owned),
            stream: StreamType::AdminLogs,
            collected_at_ms: 0,
            event_json: event.to_string(),
        };
        let raw = renderer.render(SinkId::LogSearch, &record);
        let uef = renderer.render(SinkId::Collector, &record);
        let who = concerned(event);
        let acted_in_scope = event["created_by"]["id"]
            .as_str()
            .is_some_and(|id| allowed.contains(id));
        if raw.is_some() || uef.is_some() {
            sent += 1;
            assert!(
                who.iter().any(|id| allowed.contains(id)),
                "out-of-scope event sent: {event}"
            );
            by_member += usize::from(who.iter().any(|id| finance.member_ids.contains(id)));
            by_login += usize::from(who.contains(&listed_id));
        } else {
            kept += 1;
            assert!(!acted_in_scope, "in-scope event not sent: {event}");
        }
    }
    assert!(sent > 0 && kept > 0, "sent {sent}, kept {kept}");
    assert!(
        by_member > 0 && by_login > 0,
        "members {by_member}, login {by_login}"
    );
    assert_eq!(renderer.out_of_scope(SinkId::LogSearch), kept as u64);
    assert_eq!(renderer.out_of_scope(SinkId::Collector), kept as u64);
}
