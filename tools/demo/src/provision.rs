//! The throw-away appliance the demo and the benchmark run: its bootstrap file pointed at the
//! simulators, and what the admin would have done on the setup page (Box app, consent, Log
//! Search token, Platform API key) done ahead in its store.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use boxidr_boxapi::{AuthClient, Grant, TokenManager, http};
use boxidr_config::Config;
use boxidr_model::Secret;
use boxidr_store::settings;
use boxidr_store::{Store, StoreOptions};

/// The redirect URI the demo registers for its own (scripted) consent.
pub const SCRIPTED_REDIRECT: &str = "http://127.0.0.1/callback";

/// The bootstrap file of the demo appliance: everything on loopback, short intervals so the
/// completeness sweep shows, the simulated LED board, no wait for time synchronisation.
pub fn appliance_config(
    dir: &Path,
    port: u16,
    box_sim: &box_sim::SimHandle,
    idr_sim: &idr_sim::SimHandle,
) -> anyhow::Result<Config> {
    let ca_file = dir.join("insightidr-ca.pem");
    std::fs::write(&ca_file, idr_sim.ca_pem())?;
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.box_api.authorize_url = box_sim.authorize_url().parse()?;
    config.box_api.token_base = box_sim.token_base().parse()?;
    config.box_api.api_base = box_sim.api_base().parse()?;
    config.events.poll_interval_secs = 1;
    config.events.completeness_lag_secs = 5;
    config.insightidr.collector = Some(boxidr_config::Collector {
        host: "127.0.0.1".to_owned(),
        port: idr_sim.uef_addr().port(),
        unencrypted: false,
        ca_file: Some(ca_file.clone()),
    });
    config.insightidr.log_search = Some(boxidr_config::LogSearch {
        region: "us".to_owned(),
        base_url: Some(idr_sim.logsearch_base().parse()?),
        ca_file: Some(ca_file),
    });
    config.mapping.default_domain = Some("CORP".to_owned());
    config.setup.listen = SocketAddr::from(([127, 0, 0, 1], port));
    config.clock.wait_for_sync = false;
    config.board.backend = "simulated".to_owned();
    // The delivery verifier against the simulator's Platform API: a canary soon after start.
    config.insightidr.verifier.api_base = Some(idr_sim.api_base().parse()?);
    config.insightidr.verifier.first_after_secs = 3;
    config.insightidr.verifier.search_every_secs = 1;
    config.insightidr.verifier.deadline_secs = 60;
    config.validate()?;
    Ok(config)
}

pub fn auth_client(config: &Config, box_config: &box_sim::SimConfig) -> anyhow::Result<AuthClient> {
    Ok(AuthClient::new(
        http::client(Duration::from_secs(30))?,
        config.box_api.authorize_url.clone(),
        &config.box_api.token_base,
        box_config.client_id.clone(),
        Secret::new(box_config.client_secret.clone()),
    )?)
}

/// What the admin would have done on the setup page, done ahead: the Box app and its
/// authorisation (consent granted on the simulated Box consent page), the Log Search token.
/// The appliance stays unclaimed: the setup code is printed for the tour.
pub async fn provision(
    config: &Config,
    auth: &AuthClient,
    box_config: &box_sim::SimConfig,
    idr_sim: &idr_sim::SimHandle,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Store::open(StoreOptions::new(config.database_path())).await?;
    let outcome = async {
        let token = idr_sim
            .config()
            .tokens
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the InsightIDR simulator has no log token"))?;
        store
            .put_setting(settings::BOX_CLIENT_ID, &box_config.client_id)
            .await?;
        Grant::AuthorizationCode.save(&store).await?;
        store
            .put_secrets(vec![
                (
                    settings::BOX_CLIENT_SECRET,
                    Secret::from(box_config.client_secret.as_str()),
                ),
                (settings::LOG_SEARCH_TOKEN, Secret::from(token.as_str())),
                (
                    settings::PLATFORM_API_KEY,
                    Secret::from(idr_sim.config().api_key.as_str()),
                ),
            ])
            .await?;
        let tokens =
            TokenManager::load(auth.clone(), Grant::AuthorizationCode, store.clone()).await?;
        tokens.install(consent(auth).await?).await?;
        anyhow::Ok(())
    }
    .await;
    store.close().await?;
    outcome
}

/// Grants consent on the simulated Box consent page (as the admin's browser would) and
/// exchanges the code: fresh tokens for the authorisation-code grant.
pub async fn consent(auth: &AuthClient) -> anyhow::Result<boxidr_boxapi::TokenSet> {
    let state = format!("demo-{}", rand::random::<u64>());
    let url = auth.authorization_url(SCRIPTED_REDIRECT, &state);
    let form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain([("action".to_owned(), "allow".to_owned())])
        .collect();
    let mut target = url.clone();
    target.set_query(None);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let answer = browser.post(target).form(&form).send().await?;
    let location = answer
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the Box consent page did not redirect ({})",
                answer.status()
            )
        })?;
    let back = url::Url::parse(location)?;
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state.as_str()) {
        anyhow::bail!("the Box consent page returned a different state");
    }
    let code = param("code")
        .ok_or_else(|| anyhow::anyhow!("Box refused consent: {:?}", param("error")))?;
    Ok(auth.exchange_code(&code).await?)
}
