//! Shared harness for the system tests: starts the simulators and the appliance on loopback.
//!
//! The appliance is the real service (`boxidr::service::serve_with`, what `boxidr run` runs),
//! embedded in the test process, provisioned the way the demo is (`boxidr_demo::provision`:
//! the Box app, an authorisation-code grant through the simulated consent page, the Log Search
//! token). Loss is counted at the InsightIDR simulator against every id the Box simulator
//! generated; a test prints its figures as one `PROOF {json}` line for `tools/proof.sh`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxidr::service::{Embedding, serve_with};
use boxidr::status::StatusCache;
use boxidr_config::Config;
use fault_proxy::{FaultProxy, Faults, ProxyHandle};
use serde_json::Value;
use tokio::sync::oneshot;

pub use boxidr_demo::provision::SCRIPTED_REDIRECT;

/// Prints the figures of a test for `tools/proof.sh` (one line, `PROOF ` then JSON).
pub fn proof(figures: &Value) {
    println!("PROOF {figures}");
}

/// The Box simulator, the InsightIDR simulator and the appliance's bootstrap file and data
/// directory.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub config: Config,
    pub box_sim: box_sim::SimHandle,
    pub idr_sim: idr_sim::SimHandle,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

impl Rig {
    /// Starts both simulators (Log Search over TLS), writes the bootstrap file (`adjust` may
    /// change it: data directory, quota, clock) and provisions the store as the setup page
    /// would have.
    pub async fn new(
        box_config: box_sim::SimConfig,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let (box_config, box_sim, idr_sim) = start_simulators(box_config).await?;
        Self::with_simulators(box_config, box_sim, idr_sim, adjust).await
    }

    /// [`Rig::new`] with every route from the appliance to a simulator through its own
    /// [`fault_proxy`] (transparent until a test sets a fault): the Collector's TCP/TLS
    /// endpoint, Log Search's HTTPS endpoint and Box's API. `adjust` runs after the routes are
    /// in the bootstrap file.
    pub async fn behind_proxies(
        box_config: box_sim::SimConfig,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<(Self, Routes)> {
        let (box_config, box_sim, idr_sim) = start_simulators(box_config).await?;
        let proxy = async |target: SocketAddr| {
            FaultProxy::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                target,
                Faults::default(),
            )
            .await
        };
        let logsearch: url::Url = idr_sim.logsearch_base().parse()?;
        let logsearch_target = logsearch
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no Log Search address"))?;
        let routes = Routes {
            collector: proxy(idr_sim.uef_addr()).await?,
            log_search: proxy(logsearch_target).await?,
            box_api: proxy(box_sim.addr()).await?,
        };
        let (collector, log_search, box_api) = (
            routes.collector.addr(),
            routes.log_search.addr(),
            routes.box_api.addr(),
        );
        let rig = Self::with_simulators(box_config, box_sim, idr_sim, |config| {
            if let Some(c) = config.insightidr.collector.as_mut() {
                c.port = collector.port();
            }
            if let Some(l) = config.insightidr.log_search.as_mut() {
                l.base_url = l.base_url.take().map(|mut url| {
                    let _ = url.set_port(Some(log_search.port()));
                    url
                });
            }
            for url in [
                &mut config.box_api.authorize_url,
                &mut config.box_api.token_base,
                &mut config.box_api.api_base,
            ] {
                let _ = url.set_port(Some(box_api.port()));
            }
            adjust(config);
        })
        .await?;
        Ok((rig, routes))
    }

    /// Writes the bootstrap file for simulators already running and provisions the store.
    async fn with_simulators(
        box_config: box_sim::SimConfig,
        box_sim: box_sim::SimHandle,
        idr_sim: idr_sim::SimHandle,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config =
            boxidr_demo::provision::appliance_config(dir.path(), 0, &box_sim, &idr_sim)?;
        // No canary records in the counts: the verifier is not what these tests prove.
        config.insightidr.verifier.api_base = None;
        adjust(&mut config);
        config.validate()?;
        let config_path = dir.path().join("boxidr.toml");
        boxidr_setup::write_atomically(&config_path, &config)?;
        let auth = boxidr_demo::provision::auth_client(&config, &box_config)?;
        boxidr_demo::provision::provision(&config, &auth, &box_config, &idr_sim).await?;
        Ok(Self {
            dir,
            config_path,
            config,
            box_sim,
            idr_sim,
        })
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.config.database_path()
    }

    /// Starts the service in this process; it runs until [`Service::stop`].
    pub async fn start(&self) -> anyhow::Result<Service> {
        let (started_tx, started_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let embedding = Embedding {
            stop: Some(Box::pin(async {
                let _ = stop_rx.await;
            })),
            started: Some(started_tx),
        };
        let (path, config) = (self.config_path.clone(), self.config.clone());
        let task = tokio::spawn(async move { serve_with(&path, config, embedding).await });
        let started = match started_rx.await {
            Ok(started) => started,
            Err(_) => anyhow::bail!("the service did not start: {:?}", task.await?),
        };
        Ok(Service {
            status: started.status,
            setup_url: started.setup_url,
            stop: Some(stop_tx),
            task,
        })
    }

    /// Logins Log Search received with a `uef_rejected` reason (sent raw by design, so not
    /// owed to the Collector).
    fn uef_rejected(&self) -> BTreeSet<String> {
        self.idr_sim
            .logsearch_records()
            .into_iter()
            .filter_map(|r| {
                r.json.as_ref()?.get("uef_rejected")?;
                r.box_event_id
            })
            .collect()
    }

    /// Box event ids generated that a sink has not received: Log Search takes every event,
    /// the Collector the logins (except those sent raw with a `uef_rejected` reason).
    pub fn undelivered(&self) -> Vec<String> {
        let counts = self.idr_sim.delivery_counts();
        let (raw, uef) = (counts.logsearch.ids(), counts.uef.ids());
        let rejected = self.uef_rejected();
        let oauth = self.config.mapping.oauth_as_ingress;
        let mut missing = Vec::new();
        for (id, event_type) in self.box_sim.event_types() {
            if !raw.contains(&id) {
                missing.push(format!("log_search:{id}"));
            }
            if boxidr_normalize::ingress_result(Some(&event_type), oauth).is_some()
                && !uef.contains(&id)
                && !rejected.contains(&id)
            {
                missing.push(format!("collector:{id}"));
            }
        }
        missing
    }

    /// Waits until every generated event is delivered to both sinks or `within` has passed;
    /// returns what is still missing.
    pub async fn wait_delivered(&self, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let missing = self.undelivered();
            if missing.is_empty() || Instant::now() > until {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Where the data directory is.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }
}

/// Starts the Box simulator (with the scripted redirect registered) and the InsightIDR
/// simulator (Log Search over TLS).
async fn start_simulators(
    mut box_config: box_sim::SimConfig,
) -> anyhow::Result<(box_sim::SimConfig, box_sim::SimHandle, idr_sim::SimHandle)> {
    if !box_config
        .redirect_uris
        .iter()
        .any(|u| u == SCRIPTED_REDIRECT)
    {
        box_config.redirect_uris.push(SCRIPTED_REDIRECT.to_owned());
    }
    let box_sim = box_sim::BoxSim::start(box_config.clone(), "127.0.0.1:0".parse()?).await?;
    let idr_sim = idr_sim::IdrSim::start(
        idr_sim::SimConfig {
            logsearch_tls: true,
            ..idr_sim::SimConfig::default()
        },
        idr_sim::Listen::default(),
    )
    .await?;
    Ok((box_config, box_sim, idr_sim))
}

/// The fault proxies between the appliance and the simulators ([`Rig::behind_proxies`]).
#[derive(Debug)]
pub struct Routes {
    /// To the Collector's UEF endpoint (TLS passes through).
    pub collector: ProxyHandle,
    /// To Log Search's HTTPS ingest endpoint.
    pub log_search: ProxyHandle,
    /// To Box (OAuth and API).
    pub box_api: ProxyHandle,
}

/// The running service.
pub struct Service {
    status: Arc<StatusCache>,
    /// The setup page's address.
    pub setup_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<boxidr::exit::ExitCode>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("setup_url", &self.setup_url)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The latest status snapshot (what `boxidr status --json` prints).
    pub fn status(&self) -> Value {
        self.status.json()
    }

    /// Waits (polling the snapshot) until `pred` holds or `within` passes; the last snapshot.
    pub async fn wait_status(
        &self,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, Value> {
        let until = Instant::now() + within;
        loop {
            let status = self.status();
            if pred(&status) {
                return Ok(status);
            }
            if Instant::now() > until {
                return Err(status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the service as SIGTERM would and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<boxidr::exit::ExitCode> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        Ok((&mut self.task).await?)
    }
}

/// The problem codes in a status snapshot's health, most important first.
pub fn problem_codes(status: &Value) -> Vec<String> {
    status["health"]["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .filter_map(|p| p["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The ATTENTION code (its flash count) the status snapshot's health lights, if any: the
/// first problem that carries one.
pub fn attention(status: &Value) -> Option<u8> {
    status["health"]["problems"]
        .as_array()?
        .iter()
        .find_map(|p| {
            serde_json::from_value::<boxidr_model::AttentionCode>(p["attention"].clone())
                .ok()
                .map(boxidr_model::AttentionCode::flashes)
        })
}
