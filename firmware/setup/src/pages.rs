//! HTML of every page, with maud: every `(value)` is HTML-escaped, so strings from Box, the
//! status source or the admin's own input cannot become markup. No page carries inline script
//! (only the Box page loads the external `/static/copy.js` for its copy button); the status
//! page refreshes with `<meta http-equiv="refresh">`.

use std::collections::{BTreeMap, HashMap};

use maud::{DOCTYPE, Markup, html};

use crate::status::bounded;

mod settings_fields;

pub(crate) use settings_fields::{SecretsSet, page_for};

/// Field name → error message.
pub(crate) type Errors = BTreeMap<String, String>;
/// Field name → value as typed (or as stored, for non-secret fields).
pub(crate) type Values = HashMap<String, String>;

/// The logged-in navigation, with the logout form carrying the CSRF token.
pub(crate) struct Nav<'a> {
    pub(crate) csrf: &'a str,
    pub(crate) current: &'a str,
}

const LINKS: &[(&str, &str)] = &[
    ("/status", "Status"),
    ("/box", "Box connection"),
    ("/insightidr", "InsightIDR"),
    ("/mapping", "Accounts"),
    ("/collection", "Collection"),
    ("/certificate", "Certificate"),
    ("/password", "Password"),
    ("/maintenance", "Maintenance"),
];

pub(crate) fn layout(title: &str, nav: Option<Nav<'_>>, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content="10; url=/status?auto=1"; }
                title { (title) " · boxidr" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    span.brand { "boxidr" }
                    @if let Some(nav) = &nav {
                        nav {
                            @for (href, label) in LINKS {
                                @if *href == nav.current {
                                    a.current href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                            form.inline method="post" action="/logout" {
                                (csrf_input(nav.csrf))
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn csrf_input(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

fn error_of<'a>(errors: &'a Errors, name: &str) -> Option<&'a String> {
    errors.get(name)
}

/// A labelled text-like input with its error and help text.
pub(crate) fn field(
    label: &str,
    name: &str,
    kind: &str,
    values: &Values,
    errors: &Errors,
    help: Option<&str>,
) -> Markup {
    let value = values.get(name).map(String::as_str).unwrap_or_default();
    html! {
        div.field.invalid[error_of(errors, name).is_some()] {
            label for=(name) { (label) }
            @if kind == "password" {
                input type="password" id=(name) name=(name) autocomplete="off";
            } @else {
                input type=(kind) id=(name) name=(name) value=(value);
            }
            @if let Some(e) = error_of(errors, name) { p.error { (e) } }
            @if let Some(h) = help { p.help { (h) } }
        }
    }
}

/// A secret input: the stored value is never sent back, only whether one is set.
pub(crate) fn secret_field(
    label: &str,
    name: &str,
    is_set: bool,
    errors: &Errors,
    help: Option<&str>,
) -> Markup {
    html! {
        div.field.invalid[error_of(errors, name).is_some()] {
            label for=(name) { (label) " " span.badge { @if is_set { "set" } @else { "not set" } } }
            input type="password" id=(name) name=(name) autocomplete="off"
                placeholder=(if is_set { "leave empty to keep the stored value" } else { "" });
            @if let Some(e) = error_of(errors, name) { p.error { (e) } }
            @if let Some(h) = help { p.help { (h) } }
        }
    }
}

pub(crate) fn checkbox(label: &str, name: &str, values: &Values) -> Markup {
    let checked = values.get(name).is_some_and(|v| v == "on");
    html! {
        div.field.check {
            input type="checkbox" id=(name) name=(name) checked[checked];
            label for=(name) { (label) }
        }
    }
}

pub(crate) fn select(
    label: &str,
    name: &str,
    options: &[(&str, &str)],
    values: &Values,
    errors: &Errors,
) -> Markup {
    let current = values.get(name).map(String::as_str).unwrap_or_default();
    html! {
        div.field.invalid[error_of(errors, name).is_some()] {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[*value == current] { (text) }
                }
            }
            @if let Some(e) = error_of(errors, name) { p.error { (e) } }
        }
    }
}

/// A banner: `kind` is `ok`, `warn` or `error`.
pub(crate) fn banner(kind: &str, text: &str) -> Markup {
    html! { p class=(format!("banner {kind}")) role="status" { (text) } }
}

pub(crate) fn form_errors_banner(errors: &Errors) -> Markup {
    html! {
        @if !errors.is_empty() {
            (banner("error", "Nothing was saved. Correct the fields marked below and save again."))
        }
    }
}

/// A new password field named `name` and its confirmation field `confirm`.
fn new_password_fields(name: &str, label: &str) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input type="password" id=(name) name=(name) autocomplete="new-password";
        }
        div.field {
            label for="confirm" { "Type it again" }
            input type="password" id="confirm" name="confirm" autocomplete="new-password";
        }
    }
}

/// First boot: the setup code and a new password.
pub(crate) fn claim(csrf: &str, fingerprint: &str, error: Option<&str>) -> Markup {
    layout(
        "Set up this appliance",
        None,
        false,
        html! {
            p { "Enter the one-time setup code shown on the appliance's console or by "
                code { "sudo boxidr setup-code" } ", then choose the administrator password." }
            p.help { "The certificate of this page has SHA-256 fingerprint " code.fp { (fingerprint) }
                ". Check that your browser shows the same value before you type anything." }
            @if let Some(e) = error { (banner("error", e)) }
            form method="post" action="/claim" {
                (csrf_input(csrf))
                div.field {
                    label for="code" { "Setup code" }
                    input type="text" id="code" name="code" autocomplete="off" spellcheck="false"
                        placeholder="XXXX-XXXX-XXXX-XXXX";
                }
                (new_password_fields("password", "New administrator password (at least 12 characters)"))
                button type="submit" { "Set password" }
            }
        },
    )
}

pub(crate) fn login(csrf: &str, error: Option<&str>, notice: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        false,
        html! {
            @if let Some(n) = notice { (banner("ok", n)) }
            @if let Some(e) = error { (banner("error", e)) }
            form method="post" action="/login" {
                (csrf_input(csrf))
                div.field {
                    label for="password" { "Administrator password" }
                    input type="password" id="password" name="password" autocomplete="current-password" autofocus;
                }
                button type="submit" { "Log in" }
            }
            p.help { "Forgot the password? A factory reset (" code { "sudo boxidr factory-reset" }
                " or the reset button) returns the appliance to first-boot state." }
        },
    )
}

/// A plain message page (errors, refusals).
pub(crate) fn message(title: &str, text: &str, link: Option<(&str, &str)>) -> Markup {
    layout(
        title,
        None,
        false,
        html! {
            p { (text) }
            @if let Some((href, label)) = link { p { a href=(href) { (label) } } }
        },
    )
}

/// What the Box page shows.
pub(crate) struct BoxView<'a> {
    pub(crate) values: Values,
    pub(crate) errors: Errors,
    pub(crate) secret_set: bool,
    pub(crate) account: Option<&'a serde_json::Value>,
    pub(crate) grant: Option<&'a serde_json::Value>,
    pub(crate) notice: Option<(&'a str, String)>,
    /// The result of the "Test" button.
    pub(crate) test: Option<Markup>,
}

pub(crate) fn box_page(nav: Nav<'_>, view: &BoxView<'_>) -> Markup {
    let csrf = nav.csrf.to_owned();
    let ready = view.values.get("client_id").is_some_and(|v| !v.is_empty()) && view.secret_set;
    layout(
        "Box connection",
        Some(nav),
        false,
        html! {
            @if let Some((kind, text)) = &view.notice { (banner(kind, text)) }
            section {
                h2 { "Connected account" }
                @match view.account {
                    Some(account) => {
                        table.kv {
                            tr { th { "Name" } td { (text_of(account, "name")) } }
                            tr { th { "Login" } td { (text_of(account, "login")) } }
                            tr { th { "Role" } td { (text_of(account, "role")) } }
                            tr { th { "Enterprise" } td { (text_of(account, "enterprise")) } }
                            tr { th { "Grant" } td { (grant_text(view.grant)) } }
                            (permission_rows(account))
                        }
                    }
                    None => { p { "Box is not connected yet." } }
                }
                @if view.grant.is_some() {
                    form method="post" action="/box/test" {
                        (csrf_input(&csrf))
                        p.help { "Tries the stored authorisation now: the token, the admin role, \
                                  enterprise events on the configured stream, the user list and, \
                                  when the monitored users name groups, the groups. Nothing is \
                                  collected or saved." }
                        button.secondary type="submit" { "Test" }
                    }
                }
            }
            @if let Some(test) = &view.test { (test) }
            section {
                h2 { "1. Your Box app" }
                p.help { "In the Box Developer Console create a Custom App with "
                    em { "User Authentication (OAuth 2.0)" } ", enable the scopes "
                    em { "Manage enterprise properties" } " and " em { "Manage users" }
                    ", and add the redirect URI below exactly as shown." }
                (form_errors_banner(&view.errors))
                form method="post" action="/box/app" {
                    (csrf_input(&csrf))
                    (field("Client ID", "client_id", "text", &view.values, &view.errors, None))
                    (secret_field("Client secret", "client_secret", view.secret_set, &view.errors, None))
                    (redirect_uri_field(&view.values, &view.errors))
                    button type="submit" { "Save app settings" }
                }
            }
            section {
                h2 { "2. Connect" }
                @if ready {
                    form method="post" action="/box/connect" {
                        (csrf_input(&csrf))
                        p { "You will sign in to Box as an admin or co-admin and grant access. \
                             The link is valid for 10 minutes." }
                        button type="submit" { @if view.account.is_some() { "Reconnect to Box" } @else { "Connect to Box" } }
                    }
                    h3 { "Alternative: client credentials (service account)" }
                    form method="post" action="/box/ccg" {
                        (csrf_input(&csrf))
                        (field("Enterprise ID", "enterprise_id", "text", &view.values, &view.errors,
                            Some("Needs the app to be authorised in the Box Admin Console \
                                  (Apps → Custom Apps Manager) with App + Enterprise Access.")))
                        button type="submit" { "Connect with client credentials" }
                    }
                } @else {
                    p { "Save the client ID and secret first." }
                }
                p.help { "If Box says the app is disabled by the administrator, an admin must \
                          enable it in the Box Admin Console under Apps → Custom Apps Manager." }
            }
        },
    )
}

/// The redirect URI with a "Copy" button. The button needs `/static/copy.js` (external: the CSP
/// forbids inline script) and stays hidden without it; the field is selectable either way.
fn redirect_uri_field(values: &Values, errors: &Errors) -> Markup {
    let value = values
        .get("redirect_uri")
        .map(String::as_str)
        .unwrap_or_default();
    html! {
        div.field.invalid[error_of(errors, "redirect_uri").is_some()] {
            label for="redirect_uri" { "Redirect URI (register it in the Box console)" }
            div.copy-row {
                input type="text" id="redirect_uri" name="redirect_uri" value=(value) spellcheck="false";
                button.secondary type="button" id="copy_redirect_uri" data-copy="redirect_uri" hidden { "Copy" }
            }
            @if let Some(e) = error_of(errors, "redirect_uri") { p.error { (e) } }
            p.help { "Derived from the address you used to reach this page. Box compares it \
                      character by character: if Box shows redirect_uri_mismatch, copy this \
                      value into the app's Redirect URIs and save the app." }
        }
        script src="/static/copy.js" defer {}
    }
}

/// "Enterprise events" and "User list" rows from the permission check made at connection.
fn permission_rows(account: &serde_json::Value) -> Markup {
    let checks = account.get("checks");
    html! {
        @if let Some(checks) = checks {
            @for (key, label) in [("events", "Enterprise events"), ("users", "User list")] {
                @let verdict = text_of(checks, key);
                tr {
                    th { (label) }
                    td class=(if verdict == "allowed" { "ok" } else { "bad" }) { (verdict) }
                }
            }
        }
    }
}

fn text_of(value: &serde_json::Value, key: &str) -> String {
    match value.get(key) {
        Some(serde_json::Value::String(s)) => bounded(s),
        Some(serde_json::Value::Null) | None => "—".into(),
        Some(other) => bounded(&other.to_string()),
    }
}

fn grant_text(grant: Option<&serde_json::Value>) -> String {
    match grant.and_then(boxidr_boxapi::Grant::from_setting) {
        Some(boxidr_boxapi::Grant::AuthorizationCode) => "OAuth 2.0 (admin consent)".into(),
        Some(boxidr_boxapi::Grant::ClientCredentials { enterprise_id }) => {
            format!("client credentials, enterprise {}", bounded(&enterprise_id))
        }
        None => "—".into(),
    }
}

/// The page shown after Box sends the browser back.
pub(crate) fn callback(
    ok: bool,
    title: &str,
    text: &str,
    account: Option<&serde_json::Value>,
) -> Markup {
    layout(
        title,
        None,
        false,
        html! {
            (banner(if ok { "ok" } else { "error" }, text))
            @if let Some(account) = account {
                table.kv {
                    tr { th { "Name" } td { (text_of(account, "name")) } }
                    tr { th { "Login" } td { (text_of(account, "login")) } }
                    tr { th { "Enterprise" } td { (text_of(account, "enterprise")) } }
                    (permission_rows(account))
                }
            }
            p { a href="/box" { "Back to the Box connection page" } }
        },
    )
}

/// What a settings page shows besides its fields.
pub(crate) struct SettingsView<'a> {
    pub(crate) title: &'a str,
    /// Where the form posts (the page's own path).
    pub(crate) action: &'a str,
    pub(crate) intro: &'a str,
    /// A banner: (`ok` / `warn` / `error`, text).
    pub(crate) notice: Option<(&'a str, String)>,
    pub(crate) errors: &'a Errors,
    pub(crate) fields: Markup,
    /// More submit buttons inside the form (each with its own `formaction`).
    pub(crate) buttons: Markup,
    /// Sections after the form (their own forms).
    pub(crate) after: Markup,
    /// The form carries a file input.
    pub(crate) multipart: bool,
    /// The result of a test button, shown above the form.
    pub(crate) test: Option<Markup>,
}

/// A generic settings form page.
pub(crate) fn settings(nav: Nav<'_>, view: SettingsView<'_>) -> Markup {
    let csrf = nav.csrf.to_owned();
    let errors = view.errors;
    layout(
        view.title,
        Some(nav),
        false,
        html! {
            p { (view.intro) }
            @if let Some((kind, text)) = &view.notice { (banner(kind, text)) }
            @if let Some(test) = &view.test { (test) }
            (form_errors_banner(errors))
            @if let Some(e) = errors.get("_form") { (banner("error", e)) }
            form method="post" action=(view.action)
                enctype=(if view.multipart { "multipart/form-data" } else { "application/x-www-form-urlencoded" }) {
                (csrf_input(&csrf))
                (view.fields)
                div.buttons {
                    button type="submit" { "Save" }
                    (view.buttons)
                }
            }
            (view.after)
        },
    )
}

/// The result of a test button: a headline and every check with its verdict and words
/// (`#test-result`; each check carries `data-check` and `data-verdict` for tools).
pub(crate) fn test_report(report: &crate::app::TestReport) -> Markup {
    use crate::app::Verdict;
    let verdict = report.verdict();
    let headline = match verdict {
        Verdict::Passed => "Test passed.",
        Verdict::Warning => "Test done; one step is not confirmed yet.",
        Verdict::Failed | Verdict::NotRun => "Test failed: see what to do below.",
    };
    let kind = match verdict {
        Verdict::Passed => "ok",
        Verdict::Warning => "warn",
        Verdict::Failed | Verdict::NotRun => "error",
    };
    html! {
        section.test-result #test-result data-verdict=(verdict.class()) {
            h2 { (report.title) }
            (banner(kind, headline))
            ul.checks {
                @for check in &report.checks {
                    li class=(check.verdict.class()) data-check=(check.name) data-verdict=(check.verdict.class()) {
                        strong { (check.name) ": " (check.verdict.word()) }
                        " — " (check.text)
                    }
                }
            }
        }
    }
}

/// Entries of the current scope shown on the page (the CSV download has them all).
const SCOPE_SHOWN: usize = 10;

/// The "Monitored users" section of the Collection page: the current scope, the CSV upload
/// (file or paste), the row errors of a refused upload, download and "Monitor everyone".
pub(crate) fn scope_section(
    csrf: &str,
    scope: &boxidr_config::Scope,
    problems: &[String],
    pasted: &str,
) -> Markup {
    let list = |title: &str, items: &[String]| {
        html! {
            @if !items.is_empty() {
                h3 { (title) " (" (items.len()) ")" }
                ul.scope {
                    @for item in items.iter().take(SCOPE_SHOWN) { li { (bounded(item)) } }
                    @if items.len() > SCOPE_SHOWN {
                        li.muted { "… and " (items.len() - SCOPE_SHOWN) " more (download the list to see them all)" }
                    }
                }
            }
        }
    };
    html! {
        section id="scope" {
            h2 { "Monitored users" }
            @if scope.is_everyone() {
                p { "Everyone in the enterprise is monitored." }
            } @else {
                p { "Only these users, and the members of these groups, are monitored: "
                    (scope.users.len()) " user(s), " (scope.groups.len()) " group(s)." }
                (list("Users", &scope.users))
                (list("Groups", &scope.groups))
                p { a href="/collection/scope.csv" download="boxidr-scope.csv" { "Download the list as CSV" } }
                form method="post" action="/collection/scope/clear" {
                    (csrf_input(csrf))
                    button type="submit" { "Monitor everyone" }
                }
            }
            h3 { "Upload a list" }
            p.help { "A CSV file whose first row names an " code { "Email" } " (or " code { "Email Address" }
                ") column and/or a " code { "Group Name" } " (or " code { "Groups" } ") column, at most "
                (boxidr_config::MAX_SCOPE_ROWS) " rows. It replaces the current list." }
            @if !problems.is_empty() {
                (banner("error", "Nothing was saved: the list was refused. Correct the file and upload it again."))
                ul.errors id="scope-errors" {
                    @for p in problems { li { (p) } }
                }
            }
            form method="post" action="/collection/scope" enctype="multipart/form-data" {
                (csrf_input(csrf))
                div.field.invalid[!problems.is_empty()] {
                    label for="scope_file" { "CSV file" }
                    input type="file" id="scope_file" name="scope_file" accept=".csv,text/csv";
                }
                div.field {
                    label for="scope_csv" { "…or paste the CSV text" }
                    textarea id="scope_csv" name="scope_csv" rows="5" spellcheck="false" { (pasted) }
                }
                button type="submit" { "Upload list" }
            }
        }
    }
}

/// One Box user as InsightIDR would see their logins.
pub(crate) struct PreviewRow {
    pub(crate) name: String,
    pub(crate) login: String,
    pub(crate) status: String,
    /// `Err` says why no ingress event would be sent.
    pub(crate) account: Result<String, &'static str>,
    pub(crate) domain: Option<String>,
}

/// The account preview on the Accounts page: with the saved settings (`saved`), or with the
/// settings as typed.
pub(crate) fn preview(rows: &[PreviewRow], saved: bool) -> Markup {
    html! {
        section id="preview" {
            h2 { @if saved { "Preview with the saved settings" } @else { "Preview (not saved)" } }
            @if rows.is_empty() {
                p { "No Box users are stored yet. The preview uses the user directory, which is \
                     read once Box is connected; try again after the first sync." }
            } @else {
                p.help { @if saved {
                    "How logins of these Box users appear in InsightIDR now. Change the settings \
                     above and press Preview to see the effect before saving."
                } @else {
                    "How logins of these Box users will appear in InsightIDR with the settings \
                     above. Save to use them."
                } }
                table.preview {
                    thead { tr { th { "Box user" } th { "Box login" } th { "Status" } th { "account" } th { "account_domain" } } }
                    tbody {
                        @for row in rows {
                            tr {
                                td { (bounded(&row.name)) }
                                td { (bounded(&row.login)) }
                                td { (bounded(&row.status)) }
                                @match &row.account {
                                    Ok(account) => { td { code { (bounded(account)) } } }
                                    Err(why) => { td.bad { (why) } }
                                }
                                td { @match &row.domain { Some(d) => { code { (bounded(d)) } }, None => { span.muted { "none (null)" } } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The Maintenance page: export, import, support bundle, metrics.
/// What the Maintenance page says about dead letters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeadLetterSummary {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// The newest one shown: "remove" covers up to it.
    pub(crate) newest_seq: Option<u64>,
    pub(crate) full: bool,
}

pub(crate) fn maintenance(
    nav: Nav<'_>,
    notice: Option<(&str, String)>,
    import_error: Option<&str>,
    secrets_set: &[&str],
    metrics_token_set: bool,
    dead: &DeadLetterSummary,
) -> Markup {
    let csrf = nav.csrf.to_owned();
    layout(
        "Maintenance",
        Some(nav),
        false,
        html! {
            @if let Some((kind, text)) = &notice { (banner(kind, text)) }
            section {
                h2 { "Export the configuration" }
                p { "Downloads the configuration file (TOML). Secrets are never in it: after an import \
                     on another appliance, enter them again. Set on this appliance: "
                    @if secrets_set.is_empty() { "none" } @else { (secrets_set.join(", ")) } "." }
                p { a.button href="/maintenance/config.toml" download="boxidr.toml" { "Export configuration" } }
            }
            section {
                h2 { "Import a configuration" }
                p { "Replaces every setting of the file (collection, InsightIDR destination, accounts, \
                     monitored users…) after checking the whole file; nothing changes if it is refused. \
                     This appliance keeps its own data directory and setup page address, and its secrets." }
                @if let Some(e) = import_error { (banner("error", e)) }
                form method="post" action="/maintenance/import" enctype="multipart/form-data" {
                    (csrf_input(&csrf))
                    div.field.invalid[import_error.is_some()] {
                        label for="config_file" { "Configuration file (.toml)" }
                        input type="file" id="config_file" name="config_file" accept=".toml,text/plain";
                    }
                    button type="submit" { "Import" }
                }
            }
            section #dead-letters {
                h2 { "Dead letters" }
                p { "Records InsightIDR refused for good (for example Log Search answering \"413 too large\") \
                     are not dropped: they are kept here with the reason, and the status page and " code { "/metrics" }
                    " count them. Download them (JSON lines: the record, the reason and Box's event), then remove them." }
                @if dead.records == 0 {
                    p { "None kept." }
                } @else {
                    p { strong { (dead.records) " kept" } " (" (dead.bytes) " bytes)."
                        @if dead.full { " " strong.bad { "They are full: forwarding holds until some are removed." } } }
                    p { a.button href="/maintenance/dead-letters.jsonl" download="boxidr-dead-letters.jsonl" { "Download dead letters" } }
                    @if let Some(newest) = dead.newest_seq {
                        form method="post" action="/maintenance/dead-letters/remove" {
                            (csrf_input(&csrf))
                            input type="hidden" name="through" value=(newest);
                            button type="submit" { "Remove the " (dead.records) " dead letters shown" }
                        }
                    }
                }
            }
            section {
                h2 { "Support bundle" }
                p { "A .tar.gz with the status, the configuration without secrets, versions and the \
                     service journal of the last 24 hours, for support. Known secret values are \
                     removed from every file." }
                p { a.button href="/maintenance/bundle.tar.gz" { "Download support bundle" } }
            }
            section {
                h2 { "Metrics" }
                p { "Prometheus text format at " a href="/metrics" { "/metrics" }
                    ": with this login, or for Prometheus with a scrape token sent as "
                    code { "Authorization: Bearer <token>" } ". The token reads the metrics and \
                    nothing else; it is shown once, and only its SHA-256 is stored." }
                p { "Scrape token: " @if metrics_token_set { strong { "set" } } @else { "none" } "." }
                form method="post" action="/maintenance/metrics-token" {
                    (csrf_input(&csrf))
                    button type="submit" name="action" value="generate" {
                        @if metrics_token_set { "Replace the scrape token" } @else { "Generate a scrape token" }
                    }
                    @if metrics_token_set {
                        " " button type="submit" name="action" value="revoke" { "Revoke it" }
                    }
                }
            }
        },
    )
}

pub(crate) fn status(
    nav: Nav<'_>,
    snapshot: Option<&boxidr_health::StatusReport>,
    proxy: Option<&str>,
    now: std::time::SystemTime,
    fingerprint: &str,
) -> Markup {
    layout(
        "Status",
        Some(nav),
        true,
        crate::status::dashboard(snapshot, proxy, now, fingerprint),
    )
}

pub(crate) fn certificate(
    nav: Nav<'_>,
    fingerprint: &str,
    uploaded: bool,
    notice: Option<&str>,
    errors: &Errors,
) -> Markup {
    let csrf = nav.csrf.to_owned();
    layout(
        "Certificate",
        Some(nav),
        false,
        html! {
            @if let Some(n) = notice { (banner("ok", n)) }
            table.kv {
                tr { th { "SHA-256 fingerprint" } td { code.fp { (fingerprint) } } }
                tr { th { "Origin" } td { @if uploaded { "uploaded by an administrator" } @else { "self-signed, generated on this appliance" } } }
            }
            h2 { "Use your own certificate" }
            p { "Paste a PEM certificate (leaf first, then intermediates) and its unencrypted PEM private key. \
                 New connections use it at once." }
            (form_errors_banner(errors))
            form method="post" action="/certificate" enctype="multipart/form-data" {
                (csrf_input(&csrf))
                div.field.invalid[errors.contains_key("cert")] {
                    label for="cert_file" { "Certificate chain file (PEM)" }
                    input type="file" id="cert_file" name="cert_file" accept=".pem,.crt,.cer";
                    label for="cert" { "…or paste it" }
                    textarea id="cert" name="cert" rows="8" spellcheck="false" {}
                    @if let Some(e) = errors.get("cert") { p.error { (e) } }
                }
                div.field.invalid[errors.contains_key("key")] {
                    label for="key_file" { "Private key file (PEM)" }
                    input type="file" id="key_file" name="key_file" accept=".pem,.key";
                    label for="key" { "…or paste it" }
                    textarea id="key" name="key" rows="6" spellcheck="false" autocomplete="off" {}
                    @if let Some(e) = errors.get("key") { p.error { (e) } }
                }
                button type="submit" { "Upload" }
            }
        },
    )
}

pub(crate) fn password(nav: Nav<'_>, error: Option<&str>, saved: bool) -> Markup {
    let csrf = nav.csrf.to_owned();
    layout(
        "Administrator password",
        Some(nav),
        false,
        html! {
            @if saved { (banner("ok", "The password is changed. Every other session was ended.")) }
            @if let Some(e) = error { (banner("error", e)) }
            form method="post" action="/password" {
                (csrf_input(&csrf))
                div.field {
                    label for="current" { "Current password" }
                    input type="password" id="current" name="current" autocomplete="current-password";
                }
                (new_password_fields("new", "New password (at least 12 characters)"))
                button type="submit" { "Change password" }
            }
        },
    )
}
