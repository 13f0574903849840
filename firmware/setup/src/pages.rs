//! HTML of every page, with maud: every `(value)` is HTML-escaped, so strings from Box, the
//! status source or the admin's own input cannot become markup. No page carries script; the
//! status page refreshes with `<meta http-equiv="refresh">`.

use std::collections::{BTreeMap, HashMap};

use maud::{DOCTYPE, Markup, html};

use crate::status::bounded;

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
                div.field {
                    label for="password" { "New administrator password (at least 12 characters)" }
                    input type="password" id="password" name="password" autocomplete="new-password";
                }
                div.field {
                    label for="confirm" { "Type it again" }
                    input type="password" id="confirm" name="confirm" autocomplete="new-password";
                }
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
            }
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
                    (field("Redirect URI (register it in the Box console)", "redirect_uri", "text",
                        &view.values, &view.errors,
                        Some("Derived from the address you used to reach this page. Box compares it \
                              character by character: if Box shows redirect_uri_mismatch, copy this \
                              value into the app's Redirect URIs and save the app.")))
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
                        button type="submit" { "Connect to Box" }
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
    match grant.and_then(|g| g.get("type")).and_then(|t| t.as_str()) {
        Some("authorization_code") => "OAuth 2.0 (admin consent)".into(),
        Some("client_credentials") => format!(
            "client credentials, enterprise {}",
            grant
                .map(|g| text_of(g, "enterprise_id"))
                .unwrap_or_default()
        ),
        _ => "—".into(),
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

/// A generic settings form page.
pub(crate) fn settings(
    nav: Nav<'_>,
    title: &str,
    action: &str,
    intro: &str,
    notice: Option<&str>,
    errors: &Errors,
    fields: Markup,
) -> Markup {
    let csrf = nav.csrf.to_owned();
    layout(
        title,
        Some(nav),
        false,
        html! {
            p { (intro) }
            @if let Some(n) = notice { (banner("ok", n)) }
            (form_errors_banner(errors))
            @if let Some(e) = errors.get("_form") { (banner("error", e)) }
            form method="post" action=(action) {
                (csrf_input(&csrf))
                (fields)
                button type="submit" { "Save" }
            }
        },
    )
}

pub(crate) fn status(nav: Nav<'_>, snapshot: &serde_json::Value, fingerprint: &str) -> Markup {
    layout(
        "Status",
        Some(nav),
        true,
        html! {
            (crate::status::render(snapshot))
            p.help { "Refreshes every 10 seconds (automatic refreshes do not keep the session open: \
                       after 15 minutes without a click the page asks for the password). The same data as JSON: " a href="/status.json" { "/status.json" }
                ". Certificate fingerprint (SHA-256): " code.fp { (fingerprint) } }
        },
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
            form method="post" action="/certificate" {
                (csrf_input(&csrf))
                div.field.invalid[errors.contains_key("cert")] {
                    label for="cert" { "Certificate chain (PEM)" }
                    textarea id="cert" name="cert" rows="8" spellcheck="false" {}
                    @if let Some(e) = errors.get("cert") { p.error { (e) } }
                }
                div.field {
                    label for="key" { "Private key (PEM)" }
                    textarea id="key" name="key" rows="6" spellcheck="false" autocomplete="off" {}
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
                div.field {
                    label for="new" { "New password (at least 12 characters)" }
                    input type="password" id="new" name="new" autocomplete="new-password";
                }
                div.field {
                    label for="confirm" { "Type it again" }
                    input type="password" id="confirm" name="confirm" autocomplete="new-password";
                }
                button type="submit" { "Change password" }
            }
        },
    )
}
