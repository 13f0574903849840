//! The settings forms' fields (InsightIDR, Accounts, Collection) as markup, drawn from form
//! values; parsing and validating what comes back is `forms`' job, not this module's.

use boxidr_config::{MAX_DOMAIN_MAP_ENTRIES, REGIONS};
use maud::{Markup, html};

use super::{Errors, Values, checkbox, field, secret_field, select};
use crate::forms::{MAP_BLANK_ROWS, MAP_DOMAIN, MAP_EMAIL, map_rows, parse_types};
use crate::route::SettingsPage;

/// Which secrets are stored: a secret field shows "set" or "not set", never the value.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SecretsSet {
    pub(crate) log_search_token: bool,
    pub(crate) platform_api_key: bool,
    pub(crate) proxy_password: bool,
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

/// Title, intro and fields of a settings page, drawn from `values` (stored or as typed).
pub(crate) fn page_for(
    page: SettingsPage,
    values: &Values,
    errors: &Errors,
    secrets: SecretsSet,
) -> (&'static str, &'static str, Markup) {
    let SecretsSet {
        log_search_token: token_set,
        platform_api_key: key_set,
        proxy_password: proxy_password_set,
    } = secrets;
    let v = values;
    let e = errors;
    match page {
        SettingsPage::InsightIdr => {
            let regions: Vec<(&str, &str)> = REGIONS.iter().map(|r| (*r, *r)).collect();
            (
                "InsightIDR destination",
                "Logins go to your Collector as UEF authentication events; every Box event goes to \
                 Log Search. Either or both can be on.",
                html! {
                    section {
                        h2 { "Collector (Universal Event Format)" }
                        (checkbox("Send login events to a Collector", "collector_enabled", v))
                        (field("Collector host", "collector_host", "text", v, e, Some("Host name or address of the Insight Collector.")))
                        (field("Port", "collector_port", "number", v, e, Some("The port of the \"Rapid7 Universal Ingress Authentication\" event source.")))
                        (checkbox("Unencrypted TCP (only if the event source is set up without TLS)", "collector_unencrypted", v))
                        (field("Collector CA file", "collector_ca_file", "text", v, e, Some("Absolute path of the CA file on the appliance; empty uses the system trust store.")))
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
                        (checkbox("Send every Box event to Log Search", "log_search_enabled", v))
                        (select("Region", "region", &regions, v, e))
                        (secret_field("Log token", "log_search_token", token_set, e, Some("From InsightIDR: Data Collection → Event Sources → Custom Logs → Webhook / token.")))
                        (field("Ingestion URL override (advanced)", "log_search_base_url", "text", v, e, Some("Leave empty to use the region's endpoint.")))
                    }
                    section {
                        h2 { "Platform API (verification, optional)" }
                        (secret_field("Platform API key", "platform_api_key", key_set, e, Some("Lets the appliance confirm that events arrive (canary query).")))
                    }
                },
            )
        }
        SettingsPage::Mapping => (
            "Accounts and domain",
            "How a Box login becomes an account InsightIDR can match to your directory.",
            html! {
                section {
                    (field("Default domain", "default_domain", "text", v, e, Some("NetBIOS-style domain such as CORP (1–15 letters, digits, '-' or '.'); empty sends no domain.")))
                    (domain_map_table(v, e))
                    (select("Account name", "account_format", &[("local_part", "Local part (jdoe@example.com → jdoe)"), ("upn", "Full login (UPN)")], v, e))
                    (field("Authentication target", "authentication_target", "text", v, e, Some("The service name shown in InsightIDR for these logins.")))
                    (checkbox("Also send file, sharing and alert events to Log Search", "send_unparsed", v))
                }
            },
        ),
        SettingsPage::Collection => (
            "Collection",
            "Which Box event feed is read, how far back, and how often.",
            html! {
                section {
                    (select("Stream", "stream_type", &[("admin_logs_streaming", "Enterprise Event Stream (low latency, 14 days)"), ("admin_logs", "Enterprise Event History (365 days)")], v, e))
                    (checkbox("Completeness sweep behind the stream (catches late events)", "completeness_sweep", v))
                    (field("Sweep lag (seconds)", "completeness_lag_secs", "number", v, e, None))
                    (field("Backfill on first connection (days)", "backfill_days", "number", v, e, Some("Up to 365, in both modes: history is read through admin_logs, which Box keeps for a year. Progress shows on the status page.")))
                    (field("Poll interval (seconds)", "poll_interval_secs", "number", v, e, Some("1 to 3600.")))
                    (field("Events per page", "page_limit", "number", v, e, Some("1 to 500.")))
                }
                section #outbound-proxy {
                    h2 { "Outbound proxy" }
                    p.help { "For networks that reach the internet only through a proxy: Box, Log Search \
                              and the Platform API go through it (HTTPS by CONNECT); the Collector, on \
                              the LAN, is always reached directly." }
                    (field("Proxy URL", "proxy", "url", v, e, Some("http://proxy.corp:3128 — empty: no proxy. No user or password in the URL.")))
                    (field("Proxy user (optional)", "proxy_user", "text", v, e, None))
                    (secret_field("Proxy password", "proxy_password", proxy_password_set, e, Some("Stored as a secret on the appliance, never in the configuration file.")))
                    (field("Reach directly (no_proxy)", "no_proxy", "text", v, e, Some("Host names, domains or CIDR ranges, separated by commas.")))
                    (field("CA of a TLS-inspecting proxy, for Box", "box_ca_file", "text", v, e, Some("Absolute path of a PEM file on the appliance; empty uses the system trust store. For Log Search, set its CA on the InsightIDR page.")))
                    div.field.invalid[e.contains_key("box_ca_pem")] {
                        label for="box_ca_pem" { "…or paste that CA (PEM)" }
                        textarea id="box_ca_pem" name="box_ca_pem" rows="4" spellcheck="false" {}
                        @if let Some(err) = e.get("box_ca_pem") { p.error { (err) } }
                    }
                }
                section {
                    h2 { "Event types" }
                    (type_list("Collect only these event types", "include_types", v, e,
                        "Empty: every type. Box filters on its side (event_type=), so other types are never downloaded."))
                    (type_list("Never collect these event types", "exclude_types", v, e,
                        "Dropped as they arrive: never queued, never sent."))
                }
            },
        ),
    }
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
