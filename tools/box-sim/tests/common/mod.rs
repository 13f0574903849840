//! Shared helpers for the black-box tests: start a simulator on 127.0.0.1:0 and speak HTTP to it
//! with a real client, the way the product does.

#![allow(dead_code)]

use std::time::Duration;

use box_sim::{BoxSim, SimConfig, SimHandle};
use reqwest::{Client, StatusCode};
use serde_json::Value;

/// Directory of the contract samples (copied into the repository with their provenance).
pub const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/box/samples/"
);

/// Parses one sample file.
pub fn sample(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{SAMPLES}{name}"))
        .unwrap_or_else(|e| panic!("sample {name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A config with no live events and a small backlog (tests override what they need).
pub fn config() -> SimConfig {
    SimConfig {
        backlog: 50,
        rate: 0.0,
        users: 20,
        ..SimConfig::default()
    }
}

/// Starts a simulator on an ephemeral loopback port.
pub async fn start(config: SimConfig) -> SimHandle {
    BoxSim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// An HTTP client that does not follow redirects and gives up after 10 s.
pub fn client() -> Client {
    install_crypto_provider();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Query pairs of a URL.
pub fn query_of(url: &str) -> Vec<(String, String)> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Value of `name` in a URL's query.
pub fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Submits the consent form ("allow" or "deny") with these authorize parameters; returns the
/// response (a 302 on success).
pub async fn consent(sim: &SimHandle, action: &str, params: &[(&str, &str)]) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("action", action));
    client()
        .post(sim.authorize_url())
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Runs the code flow as a browser would (GET the page, POST "allow"), returns the code.
pub async fn authorize_code(sim: &SimHandle) -> String {
    let cid = sim.config().client_id.clone();
    let params = [
        ("response_type", "code"),
        ("client_id", cid.as_str()),
        ("state", "st"),
    ];
    let page = client()
        .get(sim.authorize_url())
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let resp = consent(sim, "allow", &params).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    param(&loc, "code").expect("code in redirect")
}

/// POSTs a token request form; returns status and JSON body.
pub async fn token_request(sim: &SimHandle, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = client()
        .post(format!("{}/oauth2/token", sim.token_base()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Exchanges a code for a token pair (access, refresh).
pub async fn exchange_code(sim: &SimHandle, code: &str) -> (String, String) {
    let c = sim.config();
    let (status, body) = token_request(
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Full OAuth code flow → (access token, refresh token).
pub async fn user_tokens(sim: &SimHandle) -> (String, String) {
    let code = authorize_code(sim).await;
    exchange_code(sim, &code).await
}

/// A client-credentials (service account) access token.
pub async fn ccg_token(sim: &SimHandle) -> String {
    let c = sim.config();
    let (status, body) = token_request(
        sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("box_subject_type", "enterprise"),
            ("box_subject_id", &c.enterprise_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// GET `{api}/path` with a bearer token and query; returns (status, headers, raw body text).
pub async fn api_get(
    sim: &SimHandle,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = client()
        .get(format!("{}{path}", sim.api_base()))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (status, headers, text)
}

/// One events page as JSON (asserts 200).
pub async fn events_page(sim: &SimHandle, token: &str, query: &[(&str, &str)]) -> Value {
    let (status, _, text) = api_get(sim, token, "/events", query).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `next_stream_position` as text, whichever JSON form it has (never through f64).
pub fn position(page: &Value) -> String {
    match &page["next_stream_position"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_u64().expect("integer position").to_string(),
        other => panic!("bad position {other}"),
    }
}

/// Ids of a page's entries.
pub fn ids(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Reads a stream from `start` until a page comes back empty; returns all ids (duplicates kept)
/// and the last position.
pub async fn drain(
    sim: &SimHandle,
    token: &str,
    stream: &str,
    start: &str,
    limit: &str,
    extra: &[(&str, &str)],
) -> (Vec<String>, String) {
    let mut pos = start.to_owned();
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let mut q = vec![
            ("stream_type", stream),
            ("stream_position", pos.as_str()),
            ("limit", limit),
        ];
        q.extend_from_slice(extra);
        let page = events_page(sim, token, &q).await;
        let got = ids(&page);
        pos = position(&page);
        if got.is_empty() {
            return (all, pos);
        }
        all.extend(got);
    }
    panic!("stream did not end");
}

/// reqwest needs a rustls provider when the workspace build enables its rustls feature.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
