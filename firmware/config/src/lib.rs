//! Typed, strict appliance configuration: defaults, limits and pure validation. No I/O.
//!
//! The configuration file (`/var/lib/boxidr/boxidr.toml` on the appliance, seeded from
//! `/etc/boxidr/boxidr.toml` on the first start) says where things live and
//! which endpoints to talk to; everything has a default, unknown keys are refused so a typo
//! never silently falls back to a default. Secrets never live here (they go to the store).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use boxidr_model::StreamType;
use serde::{Deserialize, Serialize};
use url::Url;

pub mod check;
pub mod event_types;
pub mod scope;
pub use check::{Problem, check_toml};
pub use scope::{MAX_SCOPE_ROWS, Scope, ScopeError};

/// Where the appliance reads its configuration and the setup page rewrites it: in the state
/// directory, the only place the service user may write under `ProtectSystem=strict`, and kept
/// across upgrades.
pub const DEFAULT_CONFIG_PATH: &str = "/var/lib/boxidr/boxidr.toml";
/// Optional read-only provisioning, copied to [`DEFAULT_CONFIG_PATH`] on the first start.
pub const PROVISIONING_CONFIG_PATH: &str = "/etc/boxidr/boxidr.toml";
/// Where the appliance keeps its database.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/boxidr";
/// The store's file name inside `data_dir`.
pub const DATABASE_FILE: &str = "boxidr.redb";
/// Created by systemd-timesyncd once the clock is synchronised.
pub const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";
/// Box's own endpoints (`shared/box/CONTRACT.md` §1.1).
pub const BOX_AUTHORIZE_URL: &str = "https://account.box.com/api/oauth2/authorize";
pub const BOX_TOKEN_BASE: &str = "https://api.box.com";
pub const BOX_API_BASE: &str = "https://api.box.com/2.0";
/// Box serves at most 500 events per page.
pub const MAX_PAGE_LIMIT: u32 = 500;
/// Most entries in `mapping.domain_map`.
pub const MAX_DOMAIN_MAP_ENTRIES: usize = 256;
/// Log Search regions offered on the setup page (`shared/insightidr/CONTRACT.md` §3.1).
pub const REGIONS: &[&str] = &["us", "us2", "us3", "eu", "ca", "au", "ap"];

/// Everything the appliance needs to know before it opens its database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding `boxidr.redb` (mode 0700, owned by the service user).
    pub data_dir: PathBuf,
    #[serde(rename = "box")]
    pub box_api: BoxApi,
    pub events: Events,
    pub insightidr: InsightIdr,
    pub mapping: Mapping,
    pub setup: Setup,
    pub queue: Queue,
    pub clock: Clock,
    pub board: Board,
    /// Which Box users are monitored (everyone when empty).
    pub scope: Scope,
    /// The outbound HTTP(S) proxy.
    pub network: Network,
}

/// The outbound proxy for Box, Log Search and the Platform API (HTTPS goes through
/// `CONNECT`). The Collector is on the LAN and is always reached directly. The password is a
/// secret in the store, never here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// `http://proxy.corp:3128` (no user or password in the URL).
    pub proxy: Option<Url>,
    /// User for the proxy's Basic authentication (the password is a stored secret).
    pub proxy_user: Option<String>,
    /// Hosts reached directly: `corp.example` (and its subdomains), `10.0.0.0/8`, `*`.
    pub no_proxy: Vec<String>,
}

/// The status LEDs and reset button. Without `leds` and `chip` the detected Raspberry Pi's
/// default wiring applies (`board/LEDS.md`); on any other board (for example QEMU's `virt`
/// machine, whose PL061 controller is the gpiochip labelled `9030000.pl061`) name them here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Board {
    /// `auto` (rppal where `/dev/gpiomem` exists, else the GPIO character device), `rppal`,
    /// `cdev`, or `simulated` (no hardware).
    pub backend: String,
    /// Character-device backend: the GPIO chip, by path (`/dev/gpiochip0`) or by label
    /// (`pinctrl-bcm2711`, `9030000.pl061`). Default: the detected board's header controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
    /// Line offsets on that chip (BCM GPIO numbers on a Pi) of SYSTEM, BOX, INSIGHTIDR,
    /// ATTENTION. Default: `[17, 27, 22, 23]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leds: Option<[u32; 4]>,
    /// Line of the reset button, or `"none"` for a box without one. Default: 24.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button: Option<ButtonLine>,
    /// LEDs light on a low level (wired from 3.3 V to the line). Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub led_active_low: Option<bool>,
    /// The button pulls its line high when pressed (pull-down instead of pull-up). Default:
    /// false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button_active_high: Option<bool>,
}

/// `board.button`: a line offset, or the word `"none"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ButtonLine {
    Line(u32),
    /// Only `"none"` is valid.
    Word(String),
}

impl ButtonLine {
    /// The line, or `None` for "no button"; `Err` for a word other than `none`.
    pub fn line(&self) -> Result<Option<u32>, ConfigError> {
        match self {
            Self::Line(n) => Ok(Some(*n)),
            Self::Word(w) if w == "none" => Ok(None),
            Self::Word(w) => Err(ConfigError::Board(format!(
                "board.button must be a line number or \"none\", got {w:?}"
            ))),
        }
    }
}

/// Highest GPIO line offset accepted (a chip has at most a few hundred lines).
pub const MAX_GPIO_LINE: u32 = 1023;

impl Default for Board {
    fn default() -> Self {
        Self {
            backend: "auto".to_owned(),
            chip: None,
            leds: None,
            button: None,
            led_active_low: None,
            button_active_high: None,
        }
    }
}

impl Board {
    /// The pin settings must be wireable: distinct lines, a plausible chip name. The error
    /// comes with its key path.
    fn validate(&self) -> Result<(), (&'static str, ConfigError)> {
        if let Some(chip) = &self.chip {
            let ok = !chip.is_empty()
                && chip.len() <= 64
                && !chip.chars().any(|c| c.is_control() || c.is_whitespace())
                && (!chip.starts_with('/') || chip.starts_with("/dev/"));
            if !ok {
                let message = format!(
                    "board.chip must be a GPIO chip label (e.g. \"9030000.pl061\") or a path \
                     under /dev (e.g. \"/dev/gpiochip0\"), got {chip:?}"
                );
                return Err(("board.chip", ConfigError::Board(message)));
            }
        }
        let button = match &self.button {
            Some(line) => line.line().map_err(|e| ("board.button", e))?,
            // The default wiring's button line.
            None => Some(24),
        };
        let mut lines: Vec<u32> = self.leds.unwrap_or([17, 27, 22, 23]).to_vec();
        lines.extend(button);
        if let Some(n) = lines.iter().find(|n| **n > MAX_GPIO_LINE) {
            let message = format!("board: line {n} is beyond {MAX_GPIO_LINE}");
            return Err(("board.leds", ConfigError::Board(message)));
        }
        for (i, n) in lines.iter().enumerate() {
            if lines[i + 1..].contains(n) {
                let message =
                    format!("board: line {n} is used twice (leds and button need distinct lines)");
                return Err(("board.leds", ConfigError::Board(message)));
            }
        }
        Ok(())
    }
}

/// The accepted `board.backend` values.
pub const BOARD_BACKENDS: &[&str] = &["auto", "rppal", "cdev", "simulated"];

/// The Pi has no real-time clock: time windows and TLS wait until the system clock is
/// synchronised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clock {
    /// Wait for synchronisation before collecting (off only for development machines).
    pub wait_for_sync: bool,
    /// File whose existence means "synchronised" (systemd-timesyncd creates it).
    pub sync_flag: PathBuf,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            wait_for_sync: true,
            sync_flag: PathBuf::from(TIMESYNC_FLAG),
        }
    }
}

/// Box endpoints; overridable so the simulator can stand in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoxApi {
    pub authorize_url: Url,
    /// Host of `/oauth2/token` and `/oauth2/revoke` (no `/2.0`).
    pub token_base: Url,
    pub api_base: Url,
    pub request_timeout_secs: u64,
    /// Largest response body read from Box before the request is failed.
    pub max_body_bytes: u64,
    /// Trust only this CA for Box instead of the OS store (a TLS-inspecting proxy).
    pub ca_file: Option<PathBuf>,
}

/// How events are collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Events {
    pub stream_type: StreamType,
    /// A lagging `admin_logs` sweep behind the streaming feed that catches late events.
    pub completeness_sweep: bool,
    pub completeness_lag_secs: u64,
    /// How far back the first connection reads (through `admin_logs` in every mode, so up to
    /// 365 days).
    pub backfill_days: u32,
    pub poll_interval_secs: u64,
    pub page_limit: u32,
    /// Only these Box event types are collected (empty: every type). Box filters server-side
    /// (`event_type=`, honoured by both enterprise streams); the appliance checks again.
    pub include_types: Vec<String>,
    /// These Box event types are dropped as they are collected (never queued nor sent).
    pub exclude_types: Vec<String>,
}

/// Most entries in `events.include_types` or `events.exclude_types` (Box documents about 200
/// types; the include list goes into one request URL).
pub const MAX_EVENT_TYPES: usize = 128;

impl Events {
    /// Whether an event of this type is collected. Entries without a type are always kept
    /// (bad input is flagged and sent raw, never dropped silently).
    pub fn admits(&self, event_type: Option<&str>) -> bool {
        let Some(event_type) = event_type else {
            return true;
        };
        let listed = |list: &[String]| list.iter().any(|t| t == event_type);
        (self.include_types.is_empty() || listed(&self.include_types))
            && !listed(&self.exclude_types)
    }
}

/// An event type as Box spells them: 1-80 characters of `A-Z`, `0-9` and `_`.
pub fn valid_event_type(event_type: &str) -> bool {
    (1..=80).contains(&event_type.len())
        && event_type
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightIdr {
    pub collector: Option<Collector>,
    pub log_search: Option<LogSearch>,
    /// The canary verifier (runs only when a Platform API key is stored).
    pub verifier: Verifier,
}

/// The canary verifier: with a Platform API key (a secret in the store), the appliance queues
/// marked canary records every `every_secs` and looks for them through the Log Search query API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Verifier {
    /// Region of the Platform API; default: the Log Search region, else `us`.
    pub region: Option<String>,
    /// Overrides `https://<region>.api.insight.rapid7.com` (simulator, proxies).
    pub api_base: Option<Url>,
    /// Trust only this CA for the Platform API instead of the OS store.
    pub ca_file: Option<PathBuf>,
    /// Seconds between canary rounds (default 6 h).
    pub every_secs: u64,
    /// Seconds after the pipeline starts before the first round (default 2 min).
    pub first_after_secs: u64,
    /// Seconds a canary may take to show up before it counts as not seen (default 10 min).
    pub deadline_secs: u64,
    /// Seconds between searches while a canary is pending (default 30 s).
    pub search_every_secs: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            region: None,
            api_base: None,
            ca_file: None,
            every_secs: 6 * 3600,
            first_after_secs: 120,
            deadline_secs: 600,
            search_every_secs: 30,
        }
    }
}

impl InsightIdr {
    /// The Platform API base for the verifier: the override, else the verifier's region, else
    /// the Log Search region, else `us`.
    pub fn platform_api_base(&self) -> Result<Url, ConfigError> {
        if let Some(url) = &self.verifier.api_base {
            return Ok(url.clone());
        }
        let region = self
            .verifier
            .region
            .as_deref()
            .or(self.log_search.as_ref().map(|l| l.region.as_str()))
            .unwrap_or("us");
        if !valid_region(region) {
            return Err(ConfigError::Region(region.to_owned()));
        }
        Url::parse(&format!("https://{region}.api.insight.rapid7.com"))
            .map_err(|_| ConfigError::Region(region.to_owned()))
    }
}

/// The customer's Collector, "Rapid7 Universal Ingress Authentication" event source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collector {
    pub host: String,
    pub port: u16,
    /// Plain TCP only when the admin says so explicitly.
    #[serde(default)]
    pub unencrypted: bool,
    /// `Rapid7CA.pem` as uploaded by the admin.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Log Search HTTP ingestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSearch {
    pub region: String,
    /// Overrides `https://<region>.webhook.logs.insight.rapid7.com` (simulator, proxies).
    #[serde(default)]
    pub base_url: Option<Url>,
    /// Trust only this CA for Log Search instead of the OS store (a TLS-inspecting proxy, the
    /// simulator).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl LogSearch {
    /// The ingestion base URL for this region unless overridden.
    pub fn ingest_base(&self) -> Result<Url, ConfigError> {
        match &self.base_url {
            Some(url) => Ok(url.clone()),
            None => Url::parse(&format!(
                "https://{}.webhook.logs.insight.rapid7.com",
                self.region
            ))
            .map_err(|_| ConfigError::Region(self.region.clone())),
        }
    }
}

/// How a Box login becomes a domain account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// NetBIOS-style domain (`CORP`) given to InsightIDR as `account_domain`.
    pub default_domain: Option<String>,
    /// Email domain of the Box login (`emea.example.com`) → `account_domain` (`EMEA`), for
    /// enterprises with several AD domains; logins whose domain is not listed get
    /// `default_domain`. Keys match case-insensitively.
    pub domain_map: BTreeMap<String, String>,
    pub account_format: AccountFormat,
    pub authentication_target: String,
    /// Send file, sharing and alert events to Log Search as well ("send unparsed logs").
    pub send_unparsed: bool,
    /// Also send OAuth 2 access-token grants (`USER_AUTHENTICATE_OAUTH2_ACCESS_TOKEN_CREATE`)
    /// as UEF ingress. Off by default: frequent, and mostly applications, not people.
    pub oauth_as_ingress: bool,
}

/// Which part of the Box login InsightIDR sees as the account name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountFormat {
    /// `jdoe@example.com` → `jdoe`.
    LocalPart,
    /// The whole login, UPN style.
    Upn,
}

/// The local setup page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Setup {
    pub listen: SocketAddr,
    /// While unclaimed, the setup code, page address and certificate fingerprint are also
    /// written here (e.g. `/boot/firmware/boxidr-setup.txt` on the card's FAT partition, for a
    /// box without a screen) and the file is removed once claimed. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_file: Option<PathBuf>,
}

/// The outbound queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// Disk quota of the database file; the poller stops advancing when it is reached.
    pub quota_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            box_api: BoxApi::default(),
            events: Events::default(),
            insightidr: InsightIdr::default(),
            mapping: Mapping::default(),
            setup: Setup::default(),
            queue: Queue::default(),
            clock: Clock::default(),
            board: Board::default(),
            scope: Scope::default(),
            network: Network::default(),
        }
    }
}

impl Default for BoxApi {
    fn default() -> Self {
        Self {
            authorize_url: Url::parse(BOX_AUTHORIZE_URL).expect("constant URL parses"),
            token_base: Url::parse(BOX_TOKEN_BASE).expect("constant URL parses"),
            api_base: Url::parse(BOX_API_BASE).expect("constant URL parses"),
            request_timeout_secs: 60,
            max_body_bytes: 16 * 1024 * 1024,
            ca_file: None,
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Self {
            stream_type: StreamType::AdminLogsStreaming,
            completeness_sweep: true,
            completeness_lag_secs: 15 * 60,
            backfill_days: 7,
            poll_interval_secs: 10,
            page_limit: MAX_PAGE_LIMIT,
            include_types: Vec::new(),
            exclude_types: Vec::new(),
        }
    }
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            default_domain: None,
            domain_map: BTreeMap::new(),
            account_format: AccountFormat::LocalPart,
            authentication_target: "Box".to_owned(),
            send_unparsed: true,
            oauth_as_ingress: false,
        }
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            code_file: None,
        }
    }
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            quota_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file is not valid TOML for boxidr: {0}")]
    Parse(String),
    #[error("events.page_limit must be between 1 and {MAX_PAGE_LIMIT}, got {0}")]
    PageLimit(u32),
    #[error("board.backend must be one of auto, rppal, cdev, simulated; got {0:?}")]
    BoardBackend(String),
    #[error("{0}")]
    Board(String),
    #[error("setup.code_file must be an absolute path to a file, got {0:?}")]
    CodeFile(PathBuf),
    #[error(
        "events.backfill_days must be at most {max} (what admin_logs keeps; stream type \
         {stream}), got {got}"
    )]
    Backfill {
        stream: StreamType,
        max: u32,
        got: u32,
    },
    #[error("events.poll_interval_secs must be between 1 and 3600, got {0}")]
    PollInterval(u64),
    #[error(
        "{field} entry {value:?} is not an event type: 1-80 characters of A-Z, 0-9 and _, \
         like LOGIN; at most {MAX_EVENT_TYPES} entries"
    )]
    EventType { field: &'static str, value: String },
    #[error("event type {0} is both in events.include_types and in events.exclude_types")]
    EventTypeBoth(String),
    #[error(
        "network: proxy must be an http:// or https:// URL without user or password (the \
         user goes in proxy_user, the password is set on the setup page), proxy_user 1-128 \
         printable characters, no_proxy entries host names, addresses or CIDR ranges"
    )]
    Proxy,
    #[error("{field} must be an http or https URL, got {url}")]
    Url { field: &'static str, url: String },
    #[error("insightidr.log_search.region {0:?} is not a region code like us, eu or ap")]
    Region(String),
    #[error("insightidr.collector.host must not be empty and port must not be 0")]
    Collector,
    #[error("mapping.default_domain {0:?} must be 1-15 characters of letters, digits, '-' or '.'")]
    Domain(String),
    #[error(
        "mapping.domain_map entry {email_domain:?} = {domain:?}: keys must be email domains \
         (letters, digits, '-', '.'; at most 253), values 1-15 characters of letters, digits, \
         '-' or '.', at most {MAX_DOMAIN_MAP_ENTRIES} entries"
    )]
    DomainMap {
        email_domain: String,
        domain: String,
    },
    #[error("mapping.authentication_target must be 1-64 printable characters")]
    Target,
    #[error("queue.quota_bytes must be at least 16 MiB, got {0}")]
    Quota(u64),
    #[error("{0}")]
    Scope(String),
    #[error(
        "insightidr.verifier: every_secs must be 60..=604800, deadline_secs and \
         search_every_secs 1..=86400, first_after_secs at most 86400"
    )]
    Verifier,
}

impl Config {
    /// Parses and validates a bootstrap file's text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// Checks every limit; pure, so the setup page can validate an update before storing it.
    /// Returns the first problem; [`Config::problems`] lists them all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// Every limit that does not hold, each with the key path it is about
    /// (`events.page_limit`), in file order; empty when the configuration is usable.
    pub fn problems(&self) -> Vec<(&'static str, ConfigError)> {
        let mut problems = Vec::new();
        let mut push = |key: &'static str, result: Result<(), ConfigError>| {
            if let Err(error) = result {
                problems.push((key, error));
            }
        };
        let events = &self.events;
        if !(1..=MAX_PAGE_LIMIT).contains(&events.page_limit) {
            push(
                "events.page_limit",
                Err(ConfigError::PageLimit(events.page_limit)),
            );
        }
        // Every mode backfills through `admin_logs` (the sweep), which keeps a year.
        let max_backfill = StreamType::AdminLogs.retention_days();
        if events.backfill_days > max_backfill {
            push(
                "events.backfill_days",
                Err(ConfigError::Backfill {
                    stream: events.stream_type,
                    max: max_backfill,
                    got: events.backfill_days,
                }),
            );
        }
        if !(1..=3600).contains(&events.poll_interval_secs) {
            push(
                "events.poll_interval_secs",
                Err(ConfigError::PollInterval(events.poll_interval_secs)),
            );
        }
        for (field, list) in [
            ("events.include_types", &events.include_types),
            ("events.exclude_types", &events.exclude_types),
        ] {
            for value in list.iter().filter(|t| !valid_event_type(t)) {
                push(
                    field,
                    Err(ConfigError::EventType {
                        field,
                        value: value.clone(),
                    }),
                );
            }
            if list.len() > MAX_EVENT_TYPES {
                push(
                    field,
                    Err(ConfigError::EventType {
                        field,
                        value: format!("{} entries", list.len()),
                    }),
                );
            }
        }
        for both in events
            .include_types
            .iter()
            .filter(|t| events.exclude_types.contains(t))
        {
            push(
                "events.exclude_types",
                Err(ConfigError::EventTypeBoth(both.clone())),
            );
        }
        for (field, url) in [
            ("box.authorize_url", &self.box_api.authorize_url),
            ("box.token_base", &self.box_api.token_base),
            ("box.api_base", &self.box_api.api_base),
        ] {
            push(field, check_http(field, url));
        }
        if let Some(collector) = &self.insightidr.collector {
            if collector.host.trim().is_empty() || collector.port == 0 {
                push("insightidr.collector", Err(ConfigError::Collector));
            }
        }
        if let Some(log_search) = &self.insightidr.log_search {
            if !valid_region(&log_search.region) {
                push(
                    "insightidr.log_search.region",
                    Err(ConfigError::Region(log_search.region.clone())),
                );
            }
            if let Some(url) = &log_search.base_url {
                let field = "insightidr.log_search.base_url";
                push(field, check_http(field, url));
            }
        }
        if let Some(domain) = &self.mapping.default_domain {
            if !valid_domain(domain) {
                push(
                    "mapping.default_domain",
                    Err(ConfigError::Domain(domain.clone())),
                );
            }
        }
        for (email_domain, domain) in self
            .mapping
            .domain_map
            .iter()
            .filter(|(k, v)| !valid_email_domain(k) || !valid_domain(v))
        {
            push(
                "mapping.domain_map",
                Err(ConfigError::DomainMap {
                    email_domain: email_domain.clone(),
                    domain: domain.clone(),
                }),
            );
        }
        if self.mapping.domain_map.len() > MAX_DOMAIN_MAP_ENTRIES {
            push(
                "mapping.domain_map",
                Err(ConfigError::DomainMap {
                    email_domain: String::new(),
                    domain: String::new(),
                }),
            );
        }
        let target = &self.mapping.authentication_target;
        if target.is_empty() || target.len() > 64 || target.chars().any(char::is_control) {
            push("mapping.authentication_target", Err(ConfigError::Target));
        }
        if !BOARD_BACKENDS.contains(&self.board.backend.as_str()) {
            push(
                "board.backend",
                Err(ConfigError::BoardBackend(self.board.backend.clone())),
            );
        }
        if let Err((key, error)) = self.board.validate() {
            push(key, Err(error));
        }
        if let Some(path) = &self.setup.code_file {
            if !path.is_absolute() || path.file_name().is_none() {
                push("setup.code_file", Err(ConfigError::CodeFile(path.clone())));
            }
        }
        if self.queue.quota_bytes < 16 * 1024 * 1024 {
            push(
                "queue.quota_bytes",
                Err(ConfigError::Quota(self.queue.quota_bytes)),
            );
        }
        push("scope", self.scope.validate().map_err(ConfigError::Scope));
        push("network", self.network.validate());
        let verifier = &self.insightidr.verifier;
        if !(60..=7 * 86_400).contains(&verifier.every_secs)
            || !(1..=86_400).contains(&verifier.deadline_secs)
            || !(1..=86_400).contains(&verifier.search_every_secs)
            || verifier.first_after_secs > 86_400
        {
            push("insightidr.verifier", Err(ConfigError::Verifier));
        }
        if let Some(url) = &verifier.api_base {
            let field = "insightidr.verifier.api_base";
            push(field, check_http(field, url));
        }
        // Without its own region the verifier uses Log Search's, already checked above.
        if verifier.api_base.is_none() && verifier.region.is_some() {
            push(
                "insightidr.verifier.region",
                self.insightidr.platform_api_base().map(|_| ()),
            );
        }
        problems
    }
}

impl Network {
    fn validate(&self) -> Result<(), ConfigError> {
        let url_ok = self.proxy.as_ref().is_none_or(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.username().is_empty()
                && url.password().is_none()
        });
        let user_ok = self.proxy_user.as_ref().is_none_or(|u| {
            (1..=128).contains(&u.len()) && !u.contains(':') && !u.chars().any(char::is_control)
        });
        let no_proxy_ok = self.no_proxy.len() <= 64
            && self.no_proxy.iter().all(|h| {
                (1..=253).contains(&h.len())
                    && h.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b':' | b'/')
                    })
            });
        if url_ok && user_ok && no_proxy_ok {
            Ok(())
        } else {
            Err(ConfigError::Proxy)
        }
    }
}

impl Config {
    /// What is usable but probably a mistake, with its key: event types Box does not document
    /// (Box adds types, so they are kept, not refused).
    pub fn warnings(&self) -> Vec<Problem> {
        let events = &self.events;
        [
            ("events.include_types", &events.include_types),
            ("events.exclude_types", &events.exclude_types),
        ]
        .into_iter()
        .flat_map(|(key, list)| {
            list.iter()
                .filter(|t| valid_event_type(t) && !event_types::is_documented(t))
                .map(move |t| Problem {
                    key: key.to_owned(),
                    message: format!(
                        "{t} is not an event type Box documents (kept: Box adds types; check \
                         the spelling)"
                    ),
                })
        })
        .collect()
    }
}

fn check_http(field: &'static str, url: &Url) -> Result<(), ConfigError> {
    if matches!(url.scheme(), "http" | "https") && url.host().is_some() {
        Ok(())
    } else {
        Err(ConfigError::Url {
            field,
            url: url.to_string(),
        })
    }
}

/// Region codes look like `us`, `us2`, `eu`, `aps2`: `^[a-z]{2,3}[0-9]?$`.
pub fn valid_region(region: &str) -> bool {
    let letters = region.bytes().take_while(u8::is_ascii_lowercase).count();
    let rest = &region.as_bytes()[letters..];
    (2..=3).contains(&letters) && rest.len() <= 1 && rest.iter().all(u8::is_ascii_digit)
}

/// A NetBIOS-style or DNS-style domain name as InsightIDR expects in `account_domain`.
pub fn valid_domain(domain: &str) -> bool {
    (1..=15).contains(&domain.len())
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The domain part of an email address (`emea.example.com`): dot-separated labels of
/// letters, digits and `-`, at most 253 characters.
pub fn valid_email_domain(domain: &str) -> bool {
    (1..=253).contains(&domain.len())
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty file gives the documented defaults, which are valid.
    #[test]
    fn empty_file_is_defaults() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.events.stream_type, StreamType::AdminLogsStreaming);
        assert_eq!(
            config.database_path(),
            PathBuf::from("/var/lib/boxidr/boxidr.redb")
        );
    }

    /// A typo is an error that names the key, never a silent default.
    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[events]\npoll_intervall_secs = 5\n").unwrap_err();
        assert!(err.to_string().contains("poll_intervall_secs"), "{err}");
    }

    /// Limits from Box's contract are enforced.
    #[test]
    fn limits_are_enforced() {
        let err = Config::from_toml("[events]\npage_limit = 501\n").unwrap_err();
        assert_eq!(err, ConfigError::PageLimit(501));
        // Deep backfill reads admin_logs in every mode: up to its 365 days.
        assert!(Config::from_toml("[events]\nbackfill_days = 60\n").is_ok());
        let err = Config::from_toml("[events]\nbackfill_days = 366\n").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Backfill {
                    max: 365,
                    got: 366,
                    ..
                }
            ),
            "{err}"
        );
        let ok = Config::from_toml("[events]\nstream_type = \"admin_logs\"\nbackfill_days = 365\n");
        assert!(ok.is_ok());
    }

    /// Simulator endpoints and a Log Search override parse; a non-HTTP URL does not.
    #[test]
    fn endpoints_are_overridable() {
        let config = Config::from_toml(
            "[box]\napi_base = \"http://127.0.0.1:9000/2.0\"\n\
             [insightidr.log_search]\nregion = \"eu\"\n",
        )
        .unwrap();
        assert_eq!(
            config.box_api.api_base.as_str(),
            "http://127.0.0.1:9000/2.0"
        );
        let log_search = config.insightidr.log_search.unwrap();
        assert_eq!(
            log_search.ingest_base().unwrap().as_str(),
            "https://eu.webhook.logs.insight.rapid7.com/"
        );
        let err = Config::from_toml("[box]\napi_base = \"ftp://x/2.0\"\n").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Url {
                field: "box.api_base",
                ..
            }
        ));
    }

    /// The verifier's Platform API base follows its own region, then Log Search's, then `us`;
    /// an override wins; schedules outside their limits are refused.
    #[test]
    fn verifier_settings() {
        let config = Config::default();
        assert_eq!(config.insightidr.verifier.every_secs, 6 * 3600);
        assert_eq!(config.insightidr.verifier.deadline_secs, 600);
        assert_eq!(
            config.insightidr.platform_api_base().unwrap().as_str(),
            "https://us.api.insight.rapid7.com/"
        );
        let eu = Config::from_toml("[insightidr.log_search]\nregion = \"eu\"\n").unwrap();
        assert_eq!(
            eu.insightidr.platform_api_base().unwrap().as_str(),
            "https://eu.api.insight.rapid7.com/"
        );
        let own = Config::from_toml(
            "[insightidr.log_search]\nregion = \"eu\"\n[insightidr.verifier]\nregion = \"ca\"\n",
        )
        .unwrap();
        assert_eq!(
            own.insightidr.platform_api_base().unwrap().as_str(),
            "https://ca.api.insight.rapid7.com/"
        );
        let sim = Config::from_toml(
            "[insightidr.verifier]\napi_base = \"http://127.0.0.1:9/\"\nevery_secs = 60\n",
        )
        .unwrap();
        assert_eq!(
            sim.insightidr.platform_api_base().unwrap().as_str(),
            "http://127.0.0.1:9/"
        );
        for bad in [
            "[insightidr.verifier]\nevery_secs = 10\n",
            "[insightidr.verifier]\ndeadline_secs = 0\n",
            "[insightidr.verifier]\nregion = \"u s\"\n",
            "[insightidr.verifier]\napi_base = \"ftp://x/\"\n",
            "[insightidr.verifier]\nkey = \"secret\"\n",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
    }

    /// Region codes follow `^[a-z]{2,3}[0-9]?$`.
    #[test]
    fn regions() {
        for ok in REGIONS.iter().chain(&["aps2", "me1"]) {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["", "u", "US", "us22", "us-2", "eu.evil.com"] {
            assert!(!valid_region(bad), "{bad}");
        }
    }

    /// The per-email-domain table parses, and bad keys or values name the entry.
    #[test]
    fn domain_map() {
        let config = Config::from_toml(
            "[mapping]\ndefault_domain = \"CORP\"\noauth_as_ingress = true\n\
             [mapping.domain_map]\n\"emea.example.com\" = \"EMEA\"\n\"Example.org\" = \"ORG\"\n",
        )
        .unwrap();
        assert_eq!(config.mapping.domain_map.len(), 2);
        assert_eq!(config.mapping.domain_map["emea.example.com"], "EMEA");
        assert!(config.mapping.oauth_as_ingress);
        assert!(Mapping::default().domain_map.is_empty());
        assert!(!Mapping::default().oauth_as_ingress);
        for bad in [
            "\"example.com\" = \"A-VERY-LONG-DOMAIN-NAME\"",
            "\"example.com\" = \"\"",
            "\"exa mple.com\" = \"CORP\"",
            "\"example..com\" = \"CORP\"",
            "\"@example.com\" = \"CORP\"",
            "\"\" = \"CORP\"",
        ] {
            let err = Config::from_toml(&format!("[mapping.domain_map]\n{bad}\n")).unwrap_err();
            assert!(matches!(err, ConfigError::DomainMap { .. }), "{bad}: {err}");
        }
        let err = Config::from_toml("[mapping.domain_map]\n\"example.com\" = 5\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)), "{err}");
    }

    /// Include and exclude lists: malformed entries and a type in both lists are refused;
    /// a well-formed type Box does not document is only a warning; `admits` applies both.
    #[test]
    fn event_type_lists() {
        let config = Config::from_toml(
            "[events]\ninclude_types = [\"LOGIN\", \"FAILED_LOGIN\", \"BRAND_NEW_TYPE\"]\n\
             exclude_types = [\"DOWNLOAD\"]\n",
        )
        .unwrap();
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].key, "events.include_types");
        assert!(warnings[0].message.starts_with("BRAND_NEW_TYPE "));
        assert!(config.events.admits(Some("LOGIN")));
        assert!(!config.events.admits(Some("UPLOAD")));
        assert!(config.events.admits(None));
        let exclude = Config::from_toml("[events]\nexclude_types = [\"DOWNLOAD\"]\n").unwrap();
        assert!(exclude.events.admits(Some("UPLOAD")));
        assert!(!exclude.events.admits(Some("DOWNLOAD")));
        assert!(Config::default().events.admits(Some("ANYTHING")));
        assert!(Config::default().warnings().is_empty());
        for bad in [
            "include_types = [\"login\"]",
            "include_types = [\"\"]",
            "exclude_types = [\"LOGIN,UPLOAD\"]",
            "include_types = [\"LOGIN\"]\nexclude_types = [\"LOGIN\"]",
        ] {
            let err = Config::from_toml(&format!("[events]\n{bad}\n")).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::EventType { .. } | ConfigError::EventTypeBoth(_)
                ),
                "{bad}: {err}"
            );
        }
        assert!(event_types::BOX_EVENT_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert!(event_types::is_documented("SHIELD_ALERT"));
    }

    /// `[board]` names a chip by label or path and the line offsets; a button may be absent;
    /// clashing or absurd lines and odd chip names are refused; the file round-trips.
    #[test]
    fn board_pins() {
        let config = Config::from_toml(
            "[board]\nbackend = \"cdev\"\nchip = \"9030000.pl061\"\nleds = [0, 1, 2, 4]\n\
             button = \"none\"\n",
        )
        .unwrap();
        let board = &config.board;
        assert_eq!(board.chip.as_deref(), Some("9030000.pl061"));
        assert_eq!(board.leds, Some([0, 1, 2, 4]));
        assert_eq!(board.button.as_ref().unwrap().line(), Ok(None));
        let text = toml::to_string_pretty(&config).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), config);
        let with_button =
            Config::from_toml("[board]\nchip = \"/dev/gpiochip1\"\nbutton = 5\n").unwrap();
        assert_eq!(with_button.board.button.unwrap().line(), Ok(Some(5)));
        assert!(
            !toml::to_string_pretty(&Config::default())
                .unwrap()
                .contains("chip")
        );
        for bad in [
            "leds = [0, 1, 2, 2]",
            "leds = [0, 1, 2, 3]\nbutton = 3",
            "button = 17",
            "button = \"nope\"",
            "leds = [0, 1, 2, 5000]",
            "chip = \"\"",
            "chip = \"/etc/passwd\"",
            "chip = \"a b\"",
            "leds = [0, 1, 2]",
        ] {
            assert!(
                Config::from_toml(&format!("[board]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
        let clash = Config::from_toml("[board]\nleds = [0, 1, 2, 3]\nbutton = 3\n").unwrap_err();
        assert!(
            clash.to_string().contains("line 3 is used twice"),
            "{clash}"
        );
    }

    /// `[setup] code_file` is off by default and must be an absolute file path.
    #[test]
    fn code_file() {
        assert_eq!(Config::default().setup.code_file, None);
        let config =
            Config::from_toml("[setup]\ncode_file = \"/boot/firmware/boxidr-setup.txt\"\n")
                .unwrap();
        assert_eq!(
            config.setup.code_file.as_deref(),
            Some(std::path::Path::new("/boot/firmware/boxidr-setup.txt"))
        );
        for bad in ["setup.txt", "/boot/firmware/..", "/"] {
            let text = format!("[setup]\ncode_file = \"{bad}\"\n");
            assert!(Config::from_toml(&text).is_err(), "{bad}");
        }
    }

    /// The proxy section: a plain proxy URL, a user and no_proxy list parse; credentials in
    /// the URL (the password would sit in the file), other schemes or junk are refused.
    #[test]
    fn proxy_settings() {
        let config = Config::from_toml(
            "[network]\nproxy = \"http://proxy.corp:3128\"\nproxy_user = \"svc-boxidr\"\n\
             no_proxy = [\"corp.example\", \"10.0.0.0/8\"]\n\
             [box]\nca_file = \"/var/lib/boxidr/proxy-ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            config.network.proxy.unwrap().as_str(),
            "http://proxy.corp:3128/"
        );
        assert!(Config::default().network.proxy.is_none());
        for bad in [
            "proxy = \"http://u:secret@proxy:3128\"",
            "proxy = \"socks5://proxy:1080\"",
            "proxy_user = \"a:b\"",
            "no_proxy = [\"a b\"]",
        ] {
            let err = Config::from_toml(&format!("[network]\n{bad}\n")).unwrap_err();
            assert_eq!(err, ConfigError::Proxy, "{bad}");
        }
    }

    /// Domains are short and free of markup.
    #[test]
    fn domains() {
        assert!(valid_domain("CORP"));
        assert!(valid_domain("corp.example"));
        assert!(!valid_domain(""));
        assert!(!valid_domain("<script>"));
        assert!(!valid_domain("A-VERY-LONG-DOMAIN-NAME"));
    }
}
