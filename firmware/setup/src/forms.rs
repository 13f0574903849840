//! Form parsing and validation: typed values → a whole new [`Config`] (validated as a whole)
//! plus the secrets to store, or field-level errors and nothing else; and the reverse, a
//! stored [`Config`] → the values a form shows. No markup here: the settings forms are drawn
//! by `pages::settings_fields`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use boxidr_config::{
    AccountFormat, Collector, Config, ConfigError, LogSearch, MAX_DOMAIN_MAP_ENTRIES, REGIONS,
    valid_domain,
};
use boxidr_model::{Secret, StreamType};
use boxidr_store::settings::{self, SecretKey};
use url::Url;

use crate::pages::{Errors, Values};
use crate::route::SettingsPage;

/// The Box app form, validated.
#[derive(Debug)]
pub(crate) struct BoxApp {
    pub(crate) client_id: String,
    /// `None` keeps the stored secret.
    pub(crate) client_secret: Option<Secret>,
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

/// A token or key typed into field `name` (untrimmed: a secret is taken as pasted), to be
/// stored under `key`; an empty field keeps the stored one.
fn new_secret(
    form: &HashMap<String, String>,
    (name, key): (&str, SecretKey),
    invalid: &str,
    (secrets, errors): (&mut Vec<(SecretKey, Secret)>, &mut Errors),
) {
    match form.get(name).map(String::as_str) {
        None | Some("") => {}
        Some(value) if plausible_secret(value) => secrets.push((key, Secret::from(value))),
        Some(_) => {
            errors.insert(name.into(), invalid.into());
        }
    }
}

/// The CA of `<field>_ca_pem` (pasted PEM: checked, then to be written as
/// `<field>-ca-<hash>.pem` in `data_dir`, which `ca_file` records) or else `<field>_ca_file`
/// (the absolute path of a file on the appliance); neither is no CA.
fn trust_anchor(
    form: &HashMap<String, String>,
    (field, data_dir): (&str, &Path),
    ca_file: &mut Option<(PathBuf, String)>,
    errors: &mut Errors,
) -> Option<PathBuf> {
    let (pem_field, file_field) = (format!("{field}_ca_pem"), format!("{field}_ca_file"));
    let pem = get(form, &pem_field);
    if !pem.is_empty() {
        return match check_ca_pem(pem) {
            Ok(()) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, pem.as_bytes());
                let hash = crate::credentials::hex(digest.as_ref());
                let path = data_dir.join(format!("{field}-ca-{}.pem", &hash[..16]));
                *ca_file = Some((path.clone(), format!("{pem}\n")));
                Some(path)
            }
            Err(text) => {
                errors.insert(pem_field, text.into());
                None
            }
        };
    }
    match get(form, &file_field) {
        "" => None,
        path => {
            let path = PathBuf::from(path);
            if !path.is_absolute() || !path.is_file() {
                errors.insert(
                    file_field,
                    "No such file on the appliance; give an absolute path.".into(),
                );
            }
            Some(path)
        }
    }
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
        Some(Secret::from(secret))
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

/// The stored settings of `page` as form values (what the page shows before anything is typed).
pub(crate) fn values_from(page: SettingsPage, config: &Config) -> Values {
    let mut v = Values::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_owned(), val);
    };
    match page {
        SettingsPage::InsightIdr => {
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
        SettingsPage::Mapping => {
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
        SettingsPage::Collection => {
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
    }
    v
}

/// Form field name prefixes of the email-domain → AD-domain table (row index appended).
pub(crate) const MAP_EMAIL: &str = "domain_map_email_";
pub(crate) const MAP_DOMAIN: &str = "domain_map_domain_";
/// Empty rows offered below the stored ones.
pub(crate) const MAP_BLANK_ROWS: usize = 3;

/// Row indices of the domain table present in a form or in stored values, ascending.
pub(crate) fn map_rows<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<usize> {
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
    pub(crate) secrets: Vec<(SecretKey, Secret)>,
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
    page: SettingsPage,
    base: &Config,
    form: &HashMap<String, String>,
) -> Result<Changes, Errors> {
    let mut errors = Errors::new();
    let mut config = base.clone();
    let mut secrets = Vec::new();
    let mut ca_file = None;
    match page {
        SettingsPage::InsightIdr => {
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
                let ca_path = trust_anchor(
                    form,
                    ("collector", &base.data_dir),
                    &mut ca_file,
                    &mut errors,
                );
                Some(Collector {
                    host: host.to_owned(),
                    port,
                    unencrypted: on(form, "collector_unencrypted"),
                    ca_file: ca_path,
                })
            } else {
                None
            };
            new_secret(
                form,
                ("log_search_token", settings::LOG_SEARCH_TOKEN),
                "The token is letters, digits and dashes.",
                (&mut secrets, &mut errors),
            );
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
            new_secret(
                form,
                ("platform_api_key", settings::PLATFORM_API_KEY),
                "The key is letters, digits and dashes.",
                (&mut secrets, &mut errors),
            );
        }
        SettingsPage::Mapping => {
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
        SettingsPage::Collection => {
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
                    secrets.push((settings::PROXY_PASSWORD, Secret::from(password)));
                } else {
                    errors.insert(
                        "proxy_password".into(),
                        "At most 256 printable characters.".into(),
                    );
                }
            }
            config.box_api.ca_file =
                trust_anchor(form, ("box", &base.data_dir), &mut ca_file, &mut errors);
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
pub(crate) fn parse_types(text: &str) -> Vec<String> {
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
        let changes = apply(SettingsPage::Collection, &base, &f).unwrap();
        assert_eq!(
            changes.config.events.include_types,
            ["LOGIN", "FAILED_LOGIN", "NOT_A_BOX_TYPE"]
        );
        assert!(changes.config.events.exclude_types.is_empty());
        let v = values_from(SettingsPage::Collection, &changes.config);
        assert_eq!(v["include_types"], "LOGIN, FAILED_LOGIN, NOT_A_BOX_TYPE");
        let (_, _, fields) = crate::pages::page_for(
            SettingsPage::Collection,
            &v,
            &Errors::new(),
            crate::pages::SecretsSet::default(),
        );
        let page = fields.into_string();
        assert!(
            page.contains("Box does not document NOT_A_BOX_TYPE;"),
            "{page}"
        );
        assert!(!page.contains("FAILED_LOGIN;"), "{page}");
        f.insert("exclude_types".into(), "LOG-IN".into());
        let errors = apply(SettingsPage::Collection, &base, &f).unwrap_err();
        assert!(errors.contains_key("exclude_types"), "{errors:?}");
        f.insert("exclude_types".into(), "login".into());
        let errors = apply(SettingsPage::Collection, &base, &f).unwrap_err();
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
        let changes = apply(SettingsPage::Collection, &Config::default(), &f).unwrap();
        let n = &changes.config.network;
        assert_eq!(
            n.proxy.as_ref().unwrap().as_str(),
            "http://proxy.corp:3128/"
        );
        assert_eq!(n.proxy_user.as_deref(), Some("svc"));
        assert_eq!(n.no_proxy, ["corp.example", "10.0.0.0/8"]);
        assert_eq!(
            changes.secrets,
            vec![(settings::PROXY_PASSWORD, Secret::from("pw-SECRET-1"))]
        );
        assert!(
            !toml::to_string(&changes.config)
                .unwrap()
                .contains("pw-SECRET-1")
        );
        assert!(!format!("{changes:?}").contains("pw-SECRET-1"));
        assert!(!typed(&f).contains_key("proxy_password"));
        f.insert("proxy".into(), "http://u:pw@proxy.corp:3128".into());
        let errors = apply(SettingsPage::Collection, &Config::default(), &f).unwrap_err();
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
        let errors = apply(SettingsPage::Collection, &Config::default(), &f).unwrap_err();
        assert!(errors.contains_key("backfill_days"), "{errors:?}");
        // A deep backfill in streaming mode is fine (read through admin_logs).
        let mut deep = f.clone();
        deep.insert("backfill_days".into(), "60".into());
        let changes = apply(SettingsPage::Collection, &Config::default(), &deep).unwrap();
        assert_eq!(changes.config.events.backfill_days, 60);
        let f = form(&[
            ("stream_type", "admin_logs"),
            ("completeness_lag_secs", "900"),
            ("backfill_days", "30"),
            ("poll_interval_secs", "x"),
            ("page_limit", "500"),
        ]);
        let errors = apply(SettingsPage::Collection, &Config::default(), &f).unwrap_err();
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
        let changes = apply(SettingsPage::InsightIdr, &base, &good).unwrap();
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
        let errors = apply(SettingsPage::InsightIdr, &base, &bad).unwrap_err();
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
