//! Form parsing and validation: typed values → a whole new [`Config`] (validated as a whole)
//! plus the secrets to store, or field-level errors and nothing else.

use std::collections::HashMap;
use std::path::PathBuf;

use boxidr_config::{
    AccountFormat, Collector, Config, ConfigError, LogSearch, MAX_DOMAIN_MAP_ENTRIES, REGIONS,
    valid_domain,
};
use boxidr_model::StreamType;
use maud::{Markup, html};
use url::Url;

use crate::keys;
use crate::pages::{Errors, Values, checkbox, field, secret_field, select};

/// The Box app form, validated.
#[derive(Debug)]
pub(crate) struct BoxApp {
    pub(crate) client_id: String,
    /// `None` keeps the stored secret.
    pub(crate) client_secret: Option<String>,
    pub(crate) redirect_uri: String,
}

fn get<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|s| s.trim()).unwrap_or_default()
}

fn on(form: &HashMap<String, String>, name: &str) -> bool {
    form.get(name).is_some_and(|v| v == "on")
}

/// Tokens and keys: printable ASCII without spaces, bounded.
fn plausible_secret(value: &str) -> bool {
    (1..=512).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) fn box_app(form: &HashMap<String, String>, secret_set: bool) -> Result<BoxApp, Errors> {
    let mut errors = Errors::new();
    let client_id = get(form, "client_id");
    if client_id.is_empty()
        || client_id.len() > 128
        || !client_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        errors.insert(
            "client_id".into(),
            "Paste the client ID from the app's Configuration tab (letters and digits).".into(),
        );
    }
    let secret = form
        .get("client_secret")
        .map(String::as_str)
        .unwrap_or_default();
    let client_secret = if secret.is_empty() {
        if !secret_set {
            errors.insert(
                "client_secret".into(),
                "The client secret is required.".into(),
            );
        }
        None
    } else if plausible_secret(secret) {
        Some(secret.to_owned())
    } else {
        errors.insert(
            "client_secret".into(),
            "The client secret is letters and digits without spaces.".into(),
        );
        None
    };
    let redirect_uri = get(form, "redirect_uri");
    if let Err(text) = check_redirect_uri(redirect_uri) {
        errors.insert("redirect_uri".into(), text.into());
    }
    if errors.is_empty() {
        Ok(BoxApp {
            client_id: client_id.to_owned(),
            client_secret,
            redirect_uri: redirect_uri.to_owned(),
        })
    } else {
        Err(errors)
    }
}

/// Box accepts HTTPS redirect URIs, or HTTP on a loopback host; ours must end in
/// `/oauth/callback` because that is where this page listens.
fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = Url::parse(uri)
        .map_err(|_| "Enter a full URL like https://boxidr.example.com/oauth/callback.")?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err("Box only accepts https:// redirect URIs (or http:// on localhost).");
    }
    if url.path() != "/oauth/callback" || url.query().is_some() || url.fragment().is_some() {
        return Err("The path must be exactly /oauth/callback, without query or fragment.");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("The URL must not contain a user name or password.");
    }
    Ok(())
}

/// The named fields of `form`, to re-show after an error.
pub(crate) fn keep(form: &HashMap<String, String>, names: &[&str]) -> Values {
    names
        .iter()
        .filter_map(|n| form.get(*n).map(|v| ((*n).to_owned(), v.clone())))
        .collect()
}

/// Everything typed except secrets and the CSRF token.
pub(crate) fn typed(form: &HashMap<String, String>) -> Values {
    form.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "csrf"
                    | "log_search_token"
                    | "platform_api_key"
                    | "client_secret"
                    | "password"
                    | "proxy_password"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn check(flag: bool) -> String {
    if flag { "on".into() } else { String::new() }
}

fn values_from(path: &str, config: &Config) -> Values {
    let mut v = Values::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_owned(), val);
    };
    match path {
        "/insightidr" => {
            let c = config.insightidr.collector.as_ref();
            set("collector_enabled", check(c.is_some()));
            set(
                "collector_host",
                c.map(|c| c.host.clone()).unwrap_or_default(),
            );
            set(
                "collector_port",
                c.map(|c| c.port.to_string())
                    .unwrap_or_else(|| "6514".into()),
            );
            set(
                "collector_unencrypted",
                check(c.is_some_and(|c| c.unencrypted)),
            );
            set(
                "collector_ca_file",
                c.and_then(|c| c.ca_file.as_ref())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            let l = config.insightidr.log_search.as_ref();
            set("log_search_enabled", check(l.is_some()));
            set(
                "region",
                l.map(|l| l.region.clone()).unwrap_or_else(|| "us".into()),
            );
            set(
                "log_search_base_url",
                l.and_then(|l| l.base_url.as_ref())
                    .map(Url::to_string)
                    .unwrap_or_default(),
            );
        }
        "/mapping" => {
            let m = &config.mapping;
            set(
                "default_domain",
                m.default_domain.clone().unwrap_or_default(),
            );
            set(
                "account_format",
                match m.account_format {
                    AccountFormat::LocalPart => "local_part".into(),
                    AccountFormat::Upn => "upn".into(),
                },
            );
            set("authentication_target", m.authentication_target.clone());
            set("send_unparsed", check(m.send_unparsed));
            for (i, (email_domain, domain)) in m.domain_map.iter().enumerate() {
                set(&format!("{MAP_EMAIL}{i}"), email_domain.clone());
                set(&format!("{MAP_DOMAIN}{i}"), domain.clone());
            }
        }
        "/collection" => {
            let e = &config.events;
            set("stream_type", e.stream_type.as_str().to_owned());
            set("completeness_sweep", check(e.completeness_sweep));
            set("completeness_lag_secs", e.completeness_lag_secs.to_string());
            set("backfill_days", e.backfill_days.to_string());
            set("poll_interval_secs", e.poll_interval_secs.to_string());
            set("page_limit", e.page_limit.to_string());
            set("include_types", e.include_types.join(", "));
            set("exclude_types", e.exclude_types.join(", "));
            let n = &config.network;
            set(
                "proxy",
                n.proxy.as_ref().map(Url::to_string).unwrap_or_default(),
            );
            set("proxy_user", n.proxy_user.clone().unwrap_or_default());
            set("no_proxy", n.no_proxy.join(", "));
            set(
                "box_ca_file",
                config
                    .box_api
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        _ => {}
    }
    v
}

/// Form field name prefixes of the email-domain → AD-domain table (row index appended).
const MAP_EMAIL: &str = "domain_map_email_";
const MAP_DOMAIN: &str = "domain_map_domain_";
/// Empty rows offered below the stored ones.
const MAP_BLANK_ROWS: usize = 3;

/// Row indices of the domain table present in a form or in stored values, ascending.
fn map_rows<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<usize> {
    let mut rows: Vec<usize> = keys
        .filter_map(|k| {
            k.strip_prefix(MAP_EMAIL)
                .or_else(|| k.strip_prefix(MAP_DOMAIN))
        })
        .filter_map(|i| i.parse().ok())
        .filter(|i| *i < MAX_DOMAIN_MAP_ENTRIES + MAP_BLANK_ROWS)
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The editable email-domain → AD-domain table: the stored (or typed) rows plus empty ones.
fn domain_map_table(v: &Values, e: &Errors) -> Markup {
    let used = map_rows(v.keys()).last().map_or(0, |last| last + 1);
    let rows = (used + MAP_BLANK_ROWS).min(MAX_DOMAIN_MAP_ENTRIES + MAP_BLANK_ROWS);
    let value =
        |prefix: &str, i: usize| v.get(&format!("{prefix}{i}")).cloned().unwrap_or_default();
    html! {
        div.field.invalid[e.contains_key("domain_map")] #domain_map {
            label { "Other email domains (optional)" }
            p.help { "Logins from these email domains get their own AD domain; every other login \
                      gets the default domain. Clear both cells of a row to remove it; save to add \
                      more empty rows." }
            table.domain-map {
                thead { tr { th scope="col" { "Email domain" } th scope="col" { "AD domain (account_domain)" } } }
                tbody {
                    @for i in 0..rows {
                        tr {
                            td { input type="text" id=(format!("{MAP_EMAIL}{i}")) name=(format!("{MAP_EMAIL}{i}"))
                                value=(value(MAP_EMAIL, i)) placeholder="emea.example.com"
                                aria-label=(format!("Email domain, row {}", i + 1)); }
                            td { input type="text" id=(format!("{MAP_DOMAIN}{i}")) name=(format!("{MAP_DOMAIN}{i}"))
                                value=(value(MAP_DOMAIN, i)) placeholder="EMEA"
                                aria-label=(format!("AD domain, row {}", i + 1)); }
                        }
                    }
                }
            }
            @if let Some(err) = e.get("domain_map") { p.error { (err) } }
        }
    }
}

/// The domain table as submitted: rows with both cells empty are dropped; a half-filled row or
/// a repeated email domain is an error naming the row.
fn parse_domain_map(
    form: &HashMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut map = std::collections::BTreeMap::new();
    for i in map_rows(form.keys()) {
        let cell = |prefix: &str| {
            form.get(&format!("{prefix}{i}"))
                .map(|s| s.trim())
                .unwrap_or_default()
        };
        let email_domain = cell(MAP_EMAIL).trim_start_matches('@').to_ascii_lowercase();
        let domain = cell(MAP_DOMAIN);
        match (email_domain.is_empty(), domain.is_empty()) {
            (true, true) => continue,
            (false, false) => {}
            _ => {
                return Err(format!(
                    "Row {}: fill in both the email domain and the AD domain, or clear both.",
                    i + 1
                ));
            }
        }
        if map
            .insert(email_domain.clone(), domain.to_owned())
            .is_some()
        {
            return Err(format!(
                "Row {}: {} is listed twice.",
                i + 1,
                crate::status::bounded(&email_domain)
            ));
        }
    }
    Ok(map)
}

/// Title, intro and fields of a settings page, or `None` for an unknown path.
pub(crate) fn page_for(
    path: &str,
    config: &Config,
    typed: Option<Values>,
    errors: &Errors,
    token_set: bool,
    key_set: bool,
    proxy_password_set: bool,
) -> Option<(&'static str, &'static str, Markup)> {
    let v = typed.unwrap_or_else(|| values_from(path, config));
    let e = errors;
    match path {
        "/insightidr" => {
            let regions: Vec<(&str, &str)> = REGIONS.iter().map(|r| (*r, *r)).collect();
            Some((
                "InsightIDR destination",
                "Logins go to your Collector as UEF authentication events; every Box event goes to \
                 Log Search. Either or both can be on.",
                html! {
                    section {
                        h2 { "Collector (Universal Event Format)" }
                        (checkbox("Send login events to a Collector", "collector_enabled", &v))
                        (field("Collector host", "collector_host", "text", &v, e, Some("Host name or address of the Insight Collector.")))
                        (field("Port", "collector_port", "number", &v, e, Some("The port of the \"Rapid7 Universal Ingress Authentication\" event source.")))
                        (checkbox("Unencrypted TCP (only if the event source is set up without TLS)", "collector_unencrypted", &v))
                        (field("Collector CA file", "collector_ca_file", "text", &v, e, Some("Absolute path of the CA file on the appliance; empty uses the system trust store.")))
                        div.field.invalid[e.contains_key("collector_ca_pem")] {
                            label for="collector_ca_pem" { "…or paste the Collector's CA (Rapid7CA.pem)" }
                            textarea id="collector_ca_pem" name="collector_ca_pem" rows="5" spellcheck="false" {}
                            label for="collector_ca_upload" { "…or upload it" }
                            input type="file" id="collector_ca_upload" name="collector_ca_upload" accept=".pem,.crt,.cer";
                            @if let Some(err) = e.get("collector_ca_pem") { p.error { (err) } }
                            p.help { "Stored on the appliance next to its database; replaces the path above." }
                        }
                    }
                    section {
                        h2 { "Log Search (raw events)" }
                        (checkbox("Send every Box event to Log Search", "log_search_enabled", &v))
                        (select("Region", "region", &regions, &v, e))
                        (secret_field("Log token", "log_search_token", token_set, e, Some("From InsightIDR: Data Collection → Event Sources → Custom Logs → Webhook / token.")))
                        (field("Ingestion URL override (advanced)", "log_search_base_url", "text", &v, e, Some("Leave empty to use the region's endpoint.")))
                    }
                    section {
                        h2 { "Platform API (verification, optional)" }
                        (secret_field("Platform API key", "platform_api_key", key_set, e, Some("Lets the appliance confirm that events arrive (canary query).")))
                    }
                },
            ))
        }
        "/mapping" => Some((
            "Accounts and domain",
            "How a Box login becomes an account InsightIDR can match to your directory.",
            html! {
                section {
                    (field("Default domain", "default_domain", "text", &v, e, Some("NetBIOS-style domain such as CORP (1–15 letters, digits, '-' or '.'); empty sends no domain.")))
                    (domain_map_table(&v, e))
                    (select("Account name", "account_format", &[("local_part", "Local part (jdoe@example.com → jdoe)"), ("upn", "Full login (UPN)")], &v, e))
                    (field("Authentication target", "authentication_target", "text", &v, e, Some("The service name shown in InsightIDR for these logins.")))
                    (checkbox("Also send file, sharing and alert events to Log Search", "send_unparsed", &v))
                }
            },
        )),
        "/collection" => Some((
            "Collection",
            "Which Box event feed is read, how far back, and how often.",
            html! {
                section {
                    (select("Stream", "stream_type", &[("admin_logs_streaming", "Enterprise Event Stream (low latency, 14 days)"), ("admin_logs", "Enterprise Event History (365 days)")], &v, e))
                    (checkbox("Completeness sweep behind the stream (catches late events)", "completeness_sweep", &v))
                    (field("Sweep lag (seconds)", "completeness_lag_secs", "number", &v, e, None))
                    (field("Backfill on first connection (days)", "backfill_days", "number", &v, e, Some("Up to 365, in both modes: history is read through admin_logs, which Box keeps for a year. Progress shows on the status page.")))
                    (field("Poll interval (seconds)", "poll_interval_secs", "number", &v, e, Some("1 to 3600.")))
                    (field("Events per page", "page_limit", "number", &v, e, Some("1 to 500.")))
                }
                section #outbound-proxy {
                    h2 { "Outbound proxy" }
                    p.help { "For networks that reach the internet only through a proxy: Box, Log Search \
                              and the Platform API go through it (HTTPS by CONNECT); the Collector, on \
                              the LAN, is always reached directly." }
                    (field("Proxy URL", "proxy", "url", &v, e, Some("http://proxy.corp:3128 — empty: no proxy. No user or password in the URL.")))
                    (field("Proxy user (optional)", "proxy_user", "text", &v, e, None))
                    (secret_field("Proxy password", "proxy_password", proxy_password_set, e, Some("Stored as a secret on the appliance, never in the configuration file.")))
                    (field("Reach directly (no_proxy)", "no_proxy", "text", &v, e, Some("Host names, domains or CIDR ranges, separated by commas.")))
                    (field("CA of a TLS-inspecting proxy, for Box", "box_ca_file", "text", &v, e, Some("Absolute path of a PEM file on the appliance; empty uses the system trust store. For Log Search, set its CA on the InsightIDR page.")))
                    div.field.invalid[e.contains_key("box_ca_pem")] {
                        label for="box_ca_pem" { "…or paste that CA (PEM)" }
                        textarea id="box_ca_pem" name="box_ca_pem" rows="4" spellcheck="false" {}
                        @if let Some(err) = e.get("box_ca_pem") { p.error { (err) } }
                    }
                }
                section {
                    h2 { "Event types" }
                    (type_list("Collect only these event types", "include_types", &v, e,
                        "Empty: every type. Box filters on its side (event_type=), so other types are never downloaded."))
                    (type_list("Never collect these event types", "exclude_types", &v, e,
                        "Dropped as they arrive: never queued, never sent."))
                }
            },
        )),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(
    form: &HashMap<String, String>,
    name: &str,
    errors: &mut Errors,
) -> Option<T> {
    match get(form, name).parse() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.insert(name.into(), "Enter a whole number.".into());
            None
        }
    }
}

/// A validated settings form: what to write.
#[derive(Debug)]
pub(crate) struct Changes {
    /// The whole new configuration (already validated).
    pub(crate) config: Config,
    /// Secrets typed on the form (empty secret fields keep the stored values).
    pub(crate) secrets: Vec<(String, String)>,
    /// A pasted Collector CA to write before the configuration that names it.
    pub(crate) ca_file: Option<(PathBuf, String)>,
}

/// CRLF and lone CR line endings (a PEM pasted or saved on Windows, an old Mac) become LF.
pub(crate) fn normalise_line_endings(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Largest pasted CA bundle.
const MAX_CA_PEM: usize = 64 * 1024;

/// Checks a pasted CA bundle: PEM with at least one certificate and nothing unparsable.
fn check_ca_pem(pem: &str) -> Result<(), &'static str> {
    if pem.len() > MAX_CA_PEM {
        return Err("The CA file is too large (64 KiB at most).");
    }
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_bytes()).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(()),
        _ => Err("Paste the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)."),
    }
}

/// Applies a settings form to `base`; the result is validated as a whole.
pub(crate) fn apply(
    path: &str,
    base: &Config,
    form: &HashMap<String, String>,
) -> Result<Changes, Errors> {
    let mut errors = Errors::new();
    let mut config = base.clone();
    let mut secrets = Vec::new();
    let mut ca_file = None;
    match path {
        "/insightidr" => {
            config.insightidr.collector = if on(form, "collector_enabled") {
                let host = get(form, "collector_host");
                if host.is_empty()
                    || host.len() > 253
                    || !host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                {
                    errors.insert(
                        "collector_host".into(),
                        "Enter the Collector's host name or IP address.".into(),
                    );
                }
                let port = match get(form, "collector_port").parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => {
                        errors.insert(
                            "collector_port".into(),
                            "Enter a port between 1 and 65535.".into(),
                        );
                        0
                    }
                };
                let ca = get(form, "collector_ca_file");
                let pem = get(form, "collector_ca_pem");
                let ca_path = if !pem.is_empty() {
                    match check_ca_pem(pem) {
                        Ok(()) => {
                            let digest =
                                ring::digest::digest(&ring::digest::SHA256, pem.as_bytes());
                            let name = format!(
                                "collector-ca-{}.pem",
                                &crate::credentials::hex(digest.as_ref())[..16]
                            );
                            let path = base.data_dir.join(name);
                            ca_file = Some((path.clone(), format!("{pem}\n")));
                            Some(path)
                        }
                        Err(text) => {
                            errors.insert("collector_ca_pem".into(), text.into());
                            None
                        }
                    }
                } else if ca.is_empty() {
                    None
                } else {
                    let p = PathBuf::from(ca);
                    if !p.is_absolute() || !p.is_file() {
                        errors.insert(
                            "collector_ca_file".into(),
                            "No such file on the appliance; give an absolute path.".into(),
                        );
                    }
                    Some(p)
                };
                Some(Collector {
                    host: host.to_owned(),
                    port,
                    unencrypted: on(form, "collector_unencrypted"),
                    ca_file: ca_path,
                })
            } else {
                None
            };
            let token = form
                .get("log_search_token")
                .map(String::as_str)
                .unwrap_or_default();
            if !token.is_empty() {
                if plausible_secret(token) {
                    secrets.push((keys::LOG_SEARCH_TOKEN.to_owned(), token.to_owned()));
                } else {
                    errors.insert(
                        "log_search_token".into(),
                        "The token is letters, digits and dashes.".into(),
                    );
                }
            }
            config.insightidr.log_search = if on(form, "log_search_enabled") {
                let region = get(form, "region");
                if !REGIONS.contains(&region) {
                    errors.insert("region".into(), "Choose a region from the list.".into());
                }
                let base_url = match get(form, "log_search_base_url") {
                    "" => None,
                    text => match Url::parse(text) {
                        Ok(u) if u.scheme() == "https" && u.host().is_some() => Some(u),
                        _ => {
                            errors.insert(
                                "log_search_base_url".into(),
                                "Enter an https:// URL, or leave it empty.".into(),
                            );
                            None
                        }
                    },
                };
                Some(LogSearch {
                    region: region.to_owned(),
                    base_url,
                    // Not on the form: a file-level setting (proxy or simulator CA), kept.
                    ca_file: base
                        .insightidr
                        .log_search
                        .as_ref()
                        .and_then(|l| l.ca_file.clone()),
                })
            } else {
                None
            };
            let key = form
                .get("platform_api_key")
                .map(String::as_str)
                .unwrap_or_default();
            if !key.is_empty() {
                if plausible_secret(key) {
                    secrets.push((keys::PLATFORM_API_KEY.to_owned(), key.to_owned()));
                } else {
                    errors.insert(
                        "platform_api_key".into(),
                        "The key is letters, digits and dashes.".into(),
                    );
                }
            }
        }
        "/mapping" => {
            let domain = get(form, "default_domain");
            config.mapping.default_domain = if domain.is_empty() {
                None
            } else {
                if !valid_domain(domain) {
                    errors.insert(
                        "default_domain".into(),
                        "Use 1–15 letters, digits, '-' or '.'.".into(),
                    );
                }
                Some(domain.to_owned())
            };
            config.mapping.account_format = match get(form, "account_format") {
                "local_part" => AccountFormat::LocalPart,
                "upn" => AccountFormat::Upn,
                _ => {
                    errors.insert("account_format".into(), "Choose one of the options.".into());
                    base.mapping.account_format
                }
            };
            config.mapping.authentication_target = get(form, "authentication_target").to_owned();
            config.mapping.send_unparsed = on(form, "send_unparsed");
            match parse_domain_map(form) {
                Ok(map) => config.mapping.domain_map = map,
                Err(text) => {
                    errors.insert("domain_map".into(), text);
                }
            }
        }
        "/collection" => {
            match get(form, "stream_type").parse::<StreamType>() {
                Ok(s) => config.events.stream_type = s,
                Err(_) => {
                    errors.insert("stream_type".into(), "Choose one of the streams.".into());
                }
            }
            config.events.completeness_sweep = on(form, "completeness_sweep");
            if let Some(n) = number(form, "completeness_lag_secs", &mut errors) {
                config.events.completeness_lag_secs = n;
            }
            if let Some(n) = number(form, "backfill_days", &mut errors) {
                config.events.backfill_days = n;
            }
            if let Some(n) = number(form, "poll_interval_secs", &mut errors) {
                config.events.poll_interval_secs = n;
            }
            if let Some(n) = number(form, "page_limit", &mut errors) {
                config.events.page_limit = n;
            }
            config.events.include_types = parse_types(get(form, "include_types"));
            config.events.exclude_types = parse_types(get(form, "exclude_types"));
            config.network.proxy = match get(form, "proxy").trim() {
                "" => None,
                text => match Url::parse(text) {
                    Ok(u) => Some(u),
                    Err(_) => {
                        errors.insert(
                            "proxy".into(),
                            "Enter a URL like http://proxy.corp:3128, or leave it empty.".into(),
                        );
                        None
                    }
                },
            };
            config.network.proxy_user =
                Some(get(form, "proxy_user").trim().to_owned()).filter(|u| !u.is_empty());
            config.network.no_proxy = get(form, "no_proxy")
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect();
            let password = get(form, "proxy_password");
            if !password.is_empty() {
                if password.len() <= 256 && !password.chars().any(char::is_control) {
                    secrets.push((keys::PROXY_PASSWORD.to_owned(), password.to_owned()));
                } else {
                    errors.insert(
                        "proxy_password".into(),
                        "At most 256 printable characters.".into(),
                    );
                }
            }
            let pem = get(form, "box_ca_pem");
            config.box_api.ca_file = if !pem.is_empty() {
                match check_ca_pem(pem) {
                    Ok(()) => {
                        let digest = ring::digest::digest(&ring::digest::SHA256, pem.as_bytes());
                        let name = format!(
                            "box-ca-{}.pem",
                            &crate::credentials::hex(digest.as_ref())[..16]
                        );
                        let path = base.data_dir.join(name);
                        ca_file = Some((path.clone(), format!("{pem}\n")));
                        Some(path)
                    }
                    Err(text) => {
                        errors.insert("box_ca_pem".into(), text.into());
                        None
                    }
                }
            } else {
                match get(form, "box_ca_file").trim() {
                    "" => None,
                    path => {
                        let p = PathBuf::from(path);
                        if !p.is_absolute() || !p.is_file() {
                            errors.insert(
                                "box_ca_file".into(),
                                "No such file on the appliance; give an absolute path.".into(),
                            );
                        }
                        Some(p)
                    }
                }
            };
        }
        _ => {
            errors.insert("_form".into(), "Unknown settings page.".into());
        }
    }
    if errors.is_empty() {
        if let Err(e) = config.validate() {
            let (name, text) = field_of(&e);
            errors.insert(name.into(), text);
        }
    }
    if errors.is_empty() {
        Ok(Changes {
            config,
            secrets,
            ca_file,
        })
    } else {
        Err(errors)
    }
}

/// A typed list of event types: separated by commas, spaces or new lines, upper-cased,
/// duplicates dropped (order kept).
fn parse_types(text: &str) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for t in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        let t = t.to_ascii_uppercase();
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types
}

/// A text area for a list of Box event types, with a warning (not an error: Box adds types)
/// for each well-formed type Box does not document.
fn type_list(label: &str, name: &str, v: &Values, e: &Errors, help: &str) -> Markup {
    let value = v.get(name).map(String::as_str).unwrap_or_default();
    let unknown: Vec<String> = parse_types(value)
        .into_iter()
        .filter(|t| {
            boxidr_config::valid_event_type(t) && !boxidr_config::event_types::is_documented(t)
        })
        .collect();
    html! {
        div.field.invalid[e.contains_key(name)] {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows="3" cols="60" placeholder="LOGIN, FAILED_LOGIN" { (value) }
            @if let Some(err) = e.get(name) { p.error { (err) } }
            @if !unknown.is_empty() {
                p.warn.type-warning { "Box does not document " (unknown.join(", "))
                    "; kept (Box adds new types), but check the spelling." }
            }
            p.help { (help) }
        }
    }
}

/// Which form field a whole-configuration error belongs to.
fn field_of(error: &ConfigError) -> (&'static str, String) {
    let name = match error {
        ConfigError::PageLimit(_) => "page_limit",
        ConfigError::Backfill { .. } => "backfill_days",
        ConfigError::PollInterval(_) => "poll_interval_secs",
        ConfigError::Url {
            field: "insightidr.log_search.base_url",
            ..
        } => "log_search_base_url",
        ConfigError::Region(_) => "region",
        ConfigError::Collector => "collector_host",
        ConfigError::Domain(_) => "default_domain",
        ConfigError::Target => "authentication_target",
        ConfigError::DomainMap { .. } => "domain_map",
        ConfigError::EventType {
            field: "events.include_types",
            ..
        } => "include_types",
        ConfigError::EventType { .. } | ConfigError::EventTypeBoth(_) => "exclude_types",
        ConfigError::Proxy => "proxy",
        _ => "_form",
    };
    (name, crate::status::bounded(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// The event-type lists round-trip through the form: typed in any case and separator,
    /// stored upper-case; a malformed entry is a field error; an undocumented type is kept
    /// and warned about on the page.
    #[test]
    fn collection_event_types() {
        let base = Config::default();
        let mut f = form(&[
            ("stream_type", "admin_logs_streaming"),
            ("completeness_lag_secs", "900"),
            ("backfill_days", "7"),
            ("poll_interval_secs", "10"),
            ("page_limit", "500"),
            (
                "include_types",
                "login,\nfailed_login  LOGIN NOT_A_BOX_TYPE",
            ),
            ("exclude_types", ""),
        ]);
        let changes = apply("/collection", &base, &f).unwrap();
        assert_eq!(
            changes.config.events.include_types,
            ["LOGIN", "FAILED_LOGIN", "NOT_A_BOX_TYPE"]
        );
        assert!(changes.config.events.exclude_types.is_empty());
        let v = values_from("/collection", &changes.config);
        assert_eq!(v["include_types"], "LOGIN, FAILED_LOGIN, NOT_A_BOX_TYPE");
        let page = type_list("x", "include_types", &v, &Errors::new(), "h").into_string();
        assert!(
            page.contains("Box does not document NOT_A_BOX_TYPE;"),
            "{page}"
        );
        assert!(!page.contains("FAILED_LOGIN;"), "{page}");
        f.insert("exclude_types".into(), "LOG-IN".into());
        let errors = apply("/collection", &base, &f).unwrap_err();
        assert!(errors.contains_key("exclude_types"), "{errors:?}");
        f.insert("exclude_types".into(), "login".into());
        let errors = apply("/collection", &base, &f).unwrap_err();
        assert!(errors["exclude_types"].contains("both"), "{errors:?}");
    }

    /// The outbound proxy fields: URL, user, no_proxy into `[network]`, the password only into
    /// the secrets; credentials in the URL are refused (the password would land in the file).
    #[test]
    fn collection_proxy() {
        let mut f = form(&[
            ("stream_type", "admin_logs_streaming"),
            ("completeness_lag_secs", "900"),
            ("backfill_days", "7"),
            ("poll_interval_secs", "10"),
            ("page_limit", "500"),
            ("proxy", "http://proxy.corp:3128"),
            ("proxy_user", "svc"),
            ("proxy_password", "pw-SECRET-1"),
            ("no_proxy", "corp.example, 10.0.0.0/8"),
        ]);
        let changes = apply("/collection", &Config::default(), &f).unwrap();
        let n = &changes.config.network;
        assert_eq!(
            n.proxy.as_ref().unwrap().as_str(),
            "http://proxy.corp:3128/"
        );
        assert_eq!(n.proxy_user.as_deref(), Some("svc"));
        assert_eq!(n.no_proxy, ["corp.example", "10.0.0.0/8"]);
        assert_eq!(
            changes.secrets,
            vec![(keys::PROXY_PASSWORD.to_owned(), "pw-SECRET-1".to_owned())]
        );
        assert!(
            !toml::to_string(&changes.config)
                .unwrap()
                .contains("pw-SECRET-1")
        );
        assert!(!typed(&f).contains_key("proxy_password"));
        f.insert("proxy".into(), "http://u:pw@proxy.corp:3128".into());
        let errors = apply("/collection", &Config::default(), &f).unwrap_err();
        assert!(errors.contains_key("proxy"), "{errors:?}");
    }

    /// A backfill beyond the stream's retention is a field error, not a half-applied config.
    #[test]
    fn collection_validates_whole_config() {
        let f = form(&[
            ("stream_type", "admin_logs_streaming"),
            ("completeness_lag_secs", "900"),
            ("backfill_days", "400"),
            ("poll_interval_secs", "10"),
            ("page_limit", "500"),
        ]);
        let errors = apply("/collection", &Config::default(), &f).unwrap_err();
        assert!(errors.contains_key("backfill_days"), "{errors:?}");
        // A deep backfill in streaming mode is fine (read through admin_logs).
        let mut deep = f.clone();
        deep.insert("backfill_days".into(), "60".into());
        let changes = apply("/collection", &Config::default(), &deep).unwrap();
        assert_eq!(changes.config.events.backfill_days, 60);
        let f = form(&[
            ("stream_type", "admin_logs"),
            ("completeness_lag_secs", "900"),
            ("backfill_days", "30"),
            ("poll_interval_secs", "x"),
            ("page_limit", "500"),
        ]);
        let errors = apply("/collection", &Config::default(), &f).unwrap_err();
        assert!(errors.contains_key("poll_interval_secs"), "{errors:?}");
    }

    /// Windows and old Mac line endings become LF; LF text is unchanged.
    #[test]
    fn line_endings_are_normalised() {
        assert_eq!(normalise_line_endings("a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(normalise_line_endings("a\nb"), "a\nb");
        assert_eq!(normalise_line_endings("\r\n\r\n"), "\n\n");
    }

    /// A pasted CA must be PEM certificates; a good one is named by its content.
    #[test]
    fn pasted_ca() {
        let cert = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).unwrap();
        let base = Config::default();
        let good = form(&[
            ("collector_enabled", "on"),
            ("collector_host", "c.example"),
            ("collector_port", "6514"),
            ("collector_ca_pem", &cert.cert.pem()),
        ]);
        let changes = apply("/insightidr", &base, &good).unwrap();
        let (path, _) = changes.ca_file.unwrap();
        assert!(path.starts_with(&base.data_dir));
        assert_eq!(
            changes.config.insightidr.collector.unwrap().ca_file,
            Some(path)
        );
        let bad = form(&[
            ("collector_enabled", "on"),
            ("collector_host", "c.example"),
            ("collector_port", "6514"),
            ("collector_ca_pem", "<script>not a cert</script>"),
        ]);
        let errors = apply("/insightidr", &base, &bad).unwrap_err();
        assert!(errors.contains_key("collector_ca_pem"));
    }

    /// Redirect URIs follow Box's rules and our callback path.
    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://box.lan:8443/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8443/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://box.lan/oauth/callback").is_err());
        assert!(check_redirect_uri("https://box.lan/other").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }
}
