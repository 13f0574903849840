//! Shared helpers for the Box client tests: the Box simulator on loopback with an OAuth client,
//! an events client and the client-credentials grant of its enterprise, and a temp-dir store.

#![allow(dead_code, clippy::unwrap_used)] // test support: a panic is a failure

use std::time::Duration;

use box_sim::{BoxSim, SimConfig, SimHandle};
use boxidr_boxapi::{AuthClient, EventsClient, Grant, http};
use boxidr_model::Secret;
use boxidr_store::{Store, StoreOptions};
use url::Url;

/// The simulator and the clients the product would build for it.
pub struct Rig {
    pub sim: SimHandle,
    pub events: EventsClient,
    pub auth: AuthClient,
    pub grant: Grant,
}

impl Rig {
    /// Starts the simulator; the events client takes bodies of up to `max_body` bytes.
    pub async fn start(config: SimConfig, max_body: u64) -> Self {
        let sim = BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let client = http::client(Duration::from_secs(5)).unwrap();
        let auth = auth_client(&sim, &config, client.clone());
        let events = EventsClient::new(client, &Url::parse(&sim.api_base()).unwrap(), max_body);
        let grant = Grant::ClientCredentials {
            enterprise_id: config.enterprise_id.clone(),
        };
        Self {
            sim,
            events,
            auth,
            grant,
        }
    }
}

/// The OAuth client of the simulator's app, over `http`.
pub fn auth_client(sim: &SimHandle, config: &SimConfig, http: reqwest::Client) -> AuthClient {
    AuthClient::new(
        http,
        Url::parse(&sim.authorize_url()).unwrap(),
        &Url::parse(&sim.token_base()).unwrap(),
        &config.client_id,
        Secret::new(config.client_secret.clone()),
    )
    .unwrap()
}

/// [`Rig::start`] with the 4 MiB body limit of the pipeline tests.
pub async fn rig(config: SimConfig) -> Rig {
    Rig::start(config, 4 << 20).await
}

/// A store in `dir` (keep the dir alive as long as the store).
pub async fn open_store(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreOptions::new(dir.path().join("boxidr.redb")))
        .await
        .unwrap()
}
