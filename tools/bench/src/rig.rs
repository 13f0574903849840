//! One measured setup: the Box simulator (a backlog, live activity or a big enterprise), the
//! InsightIDR simulator (counting only: records are tallied, not kept), optionally a
//! fault-proxy with added latency in front of each InsightIDR endpoint, and a throw-away
//! appliance provisioned as the demo provisions it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use boxidr_config::Config;
use boxidr_normalize::{NoDirectory, Settings, render_record};
use fault_proxy::{FaultProxy, Faults, ProxyHandle};

/// What to set up.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Events waiting in Box at start.
    pub backlog: usize,
    /// Live Box activity, events per second.
    pub rate: f64,
    /// Managed users in the simulated enterprise.
    pub users: usize,
    pub seed: u64,
    pub collector: bool,
    pub log_search: bool,
    /// Added round trip to both InsightIDR endpoints (through fault-proxy).
    pub wan_rtt: Option<Duration>,
}

impl Spec {
    pub fn backlog(events: usize, seed: u64) -> Self {
        Self {
            backlog: events,
            rate: 0.0,
            users: box_sim::SimConfig::default().users,
            seed,
            collector: true,
            log_search: true,
            wan_rtt: None,
        }
    }
}

/// Which sinks each Box event belongs to.
#[derive(Debug, Default)]
pub struct Expected {
    /// Box events in the simulator.
    pub events: usize,
    /// Every event id, with when it appeared in Box (Unix ms).
    pub appeared: Vec<(String, u64)>,
    /// The events Log Search takes: all of them (when it is on).
    pub logsearch: Vec<String>,
    /// The events the Collector takes: logins that render to valid UEF (when it is on).
    pub uef: Vec<String>,
    /// Bytes of Box event JSON, summed.
    pub event_bytes: u64,
}

/// A running setup.
pub struct Rig {
    pub box_sim: box_sim::SimHandle,
    pub idr_sim: idr_sim::SimHandle,
    pub proxies: Vec<ProxyHandle>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub config: Config,
    pub spec: Spec,
}

impl Rig {
    pub async fn start(spec: Spec) -> anyhow::Result<Self> {
        let mut box_config = box_sim::SimConfig {
            rate: spec.rate,
            backlog: spec.backlog,
            seed: spec.seed,
            users: spec.users,
            ..box_sim::SimConfig::default()
        };
        box_config
            .redirect_uris
            .push(boxidr_demo::provision::SCRIPTED_REDIRECT.to_owned());
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let box_sim = box_sim::BoxSim::start(box_config.clone(), loopback).await?;
        let idr_sim = idr_sim::IdrSim::start(
            idr_sim::SimConfig {
                logsearch_tls: true,
                keep_records: false,
                ..idr_sim::SimConfig::default()
            },
            idr_sim::Listen::default(),
        )
        .await?;
        let mut proxies = Vec::new();
        if let Some(rtt) = spec.wan_rtt {
            let logsearch_target: SocketAddr = idr_sim
                .logsearch_base()
                .trim_start_matches("https://")
                .parse()?;
            for target in [idr_sim.uef_addr(), logsearch_target] {
                proxies.push(FaultProxy::start(loopback, target, Faults::round_trip(rtt)).await?);
            }
        }
        let dir = tempfile::Builder::new().prefix("boxidr-bench").tempdir()?;
        let mut config =
            boxidr_demo::provision::appliance_config(dir.path(), 0, &box_sim, &idr_sim)?;
        // The demo's appliance: the product's defaults except a 1 s poll and a 5 s completeness
        // lag (the simulated stream hands some events out late, as Box's does; the sweep over
        // `admin_logs` must pick them up within the run, not 15 minutes later). No canary
        // during a run: the verifier would query a simulator that keeps no records.
        config.insightidr.verifier.first_after_secs = 24 * 3600;
        if let [uef, logsearch] = proxies.as_slice() {
            if let Some(c) = config.insightidr.collector.as_mut() {
                c.port = uef.addr().port();
            }
            if let Some(l) = config.insightidr.log_search.as_mut() {
                l.base_url = Some(format!("https://{}", logsearch.addr()).parse()?);
            }
        }
        if !spec.collector {
            config.insightidr.collector = None;
        }
        if !spec.log_search {
            config.insightidr.log_search = None;
        }
        config.validate()?;
        let config_path = dir.path().join("boxidr.toml");
        boxidr_setup::write_atomically(&config_path, &config)?;
        let auth = boxidr_demo::provision::auth_client(&config, &box_config)?;
        boxidr_demo::provision::provision(&config, &auth, &box_config, &idr_sim).await?;
        Ok(Self {
            box_sim,
            idr_sim,
            proxies,
            dir,
            config_path,
            config,
            spec,
        })
    }

    /// Which sinks each event now in Box belongs to. A login belongs to the Collector when the
    /// product's pure renderer makes valid UEF of it (an IPv6 or anonymous login does not; the
    /// contract says why); the delivery itself is only ever counted at the simulator.
    pub fn expected(&self) -> Expected {
        let settings = Settings::from_mapping(&self.config.mapping, "bench");
        let mut out = Expected::default();
        for e in self.box_sim.event_infos() {
            out.events += 1;
            out.event_bytes += u64::try_from(e.raw.len()).unwrap_or(0);
            if self.spec.collector
                && boxidr_normalize::INGRESS.contains(&e.event_type.as_str())
                && render_record(&e.raw, 0, &NoDirectory, &settings)
                    .uef
                    .is_some()
            {
                out.uef.push(e.event_id.clone());
            }
            if self.spec.log_search {
                out.logsearch.push(e.event_id.clone());
            }
            out.appeared.push((e.event_id, e.processed_ms));
        }
        out
    }

    pub async fn shutdown(self) {
        for p in self.proxies {
            p.shutdown().await;
        }
        self.idr_sim.shutdown().await;
        self.box_sim.shutdown().await;
    }
}
