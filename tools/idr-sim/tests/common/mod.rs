//! Test helpers: start a simulator on 127.0.0.1:0 and talk to its surfaces.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use idr_sim::{IdrSim, Listen, SimConfig, SimHandle};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const TOKEN: &str = "2bfbea1e-10c3-4419-bdad-7e6435882e1f";
pub const API_KEY: &str = "test-api-key-0123456789";

/// The §6.3 example UEF line (without LF).
pub const EXAMPLE_UEF: &str = r#"{"version":"v1","event_type":"INGRESS_AUTHENTICATION","time":"2024-05-02T21:03:11.000Z","account":"jdoe","account_domain":"CORP","source_ip":"198.51.100.23","authentication_result":"SUCCESS","authentication_target":"Box","custom_data":{"box_event_id":"8f0c3a1e-5b7d-4e0a-9c11-2d7b6f0e4a55","box_event_type":"LOGIN","box_user_id":"262196057","box_login":"jdoe@example.com","forwarder":"boxidr/0.1.0"}}"#;

pub fn config() -> SimConfig {
    SimConfig {
        tokens: vec![TOKEN.to_owned()],
        api_key: API_KEY.to_owned(),
        ..SimConfig::default()
    }
}

/// Simulator with plain TCP on the line surfaces (fast, byte-exact tests).
pub async fn start_plain() -> SimHandle {
    start(SimConfig {
        uef_tls: false,
        token_tls: false,
        ..config()
    })
    .await
}

pub async fn start(cfg: SimConfig) -> SimHandle {
    IdrSim::start(cfg, Listen::default()).await.unwrap()
}

/// A UEF line with one field replaced (or removed when `v` is None).
pub fn uef_with(field: &str, v: Option<serde_json::Value>) -> String {
    let mut obj: serde_json::Value = serde_json::from_str(EXAMPLE_UEF).unwrap();
    match v {
        Some(v) => obj[field] = v,
        None => {
            obj.as_object_mut().unwrap().remove(field);
        }
    }
    obj.to_string()
}

/// A UEF line for a given Box event id.
pub fn uef_for(id: &str) -> String {
    let mut obj: serde_json::Value = serde_json::from_str(EXAMPLE_UEF).unwrap();
    obj["custom_data"]["box_event_id"] = serde_json::Value::from(id);
    obj.to_string()
}

/// Send bytes over plain TCP, half-close, and return everything the server sent back
/// (the read ends when the server closes, i.e. after it processed every line).
pub async fn send_plain(addr: SocketAddr, chunks: &[&[u8]]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    for c in chunks {
        s.write_all(c).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

pub async fn tls_connect(addr: SocketAddr, ca_pem: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let cfg = idr_sim::client_config_for(ca_pem).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::clone(&cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Plain-HTTP client. reqwest's `rustls-no-provider` needs a preconfigured (ring) TLS config
/// even when only plain HTTP is used; this one trusts nothing.
pub fn http() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Run a Log Search query to completion (follow links until 200); returns the 200 body.
pub async fn query(
    sim: &SimHandle,
    log_ids: &[String],
    leql: &str,
    from: u64,
    to: u64,
) -> serde_json::Value {
    let client = http();
    let url = format!(
        "{}/log_search/query/logs/{}",
        sim.api_base(),
        log_ids.join(":")
    );
    let resp = client
        .get(&url)
        .header("X-Api-Key", API_KEY)
        .query(&[
            ("query", leql.to_owned()),
            ("from", from.to_string()),
            ("to", to.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let mut body: serde_json::Value = resp.json().await.unwrap();
    loop {
        let href = body["links"][0]["href"].as_str().unwrap().to_owned();
        let resp = client
            .get(&href)
            .header("X-Api-Key", API_KEY)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        body = resp.json().await.unwrap();
        match status {
            202 => tokio::time::sleep(Duration::from_millis(10)).await,
            200 => return body,
            other => panic!("poll answered {other}: {body}"),
        }
    }
}

pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}
