//! The test buttons: "Test" on the Box page, "Send test event" (Collector) and "Send test
//! record" (Log Search) on the InsightIDR page. Each tries one path and says, check by check,
//! what worked, what failed and what to do about it.
//!
//! * **No stray state.** Nothing is queued, no cursor moves, no delivery counter changes: the
//!   test records are built here, rendered with the collector's own renderer and handed
//!   straight to the sinks' transports ([`CollectorSink`], [`LogSearchSink`]), never to the
//!   store. The Box test reads `users/me`, one event page at `stream_position=now` (empty, no
//!   position kept), one user and (when the scope names groups) one group. The only write is
//!   Box's own token rotation when the page has to obtain an access token itself (see
//!   [`Probes::box_token`]).
//! * **Marked.** Every test record carries a `boxidr-test-<32 hex>` marker in its id, is done
//!   by `boxidr-test@test.invalid` (`.invalid` is reserved, RFC 2606) from `192.0.2.1`
//!   (TEST-NET-1, RFC 5737) and says in words that it is a test from the setup page.
//! * **Same path as the collector.** The InsightIDR tests use the settings as typed (validated
//!   like a save, nothing saved; empty secret fields use the stored values), the configured
//!   outbound proxy for Log Search and the Platform API, the Collector directly; the Box test
//!   uses the stored grant through the proxy and Box CA.
//! * **Secrets.** No token, key or secret appears in a result: errors come from the clients,
//!   which never put them in their texts, and every text shown is escaped and bounded.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use boxidr_boxapi::events::{EventsRequest, From as EventsFrom};
use boxidr_boxapi::{
    ApiError, AuthError, EventsClient, Grant, GroupsClient, TokenManager, UsersClient, with_token,
};
use boxidr_config::{Config, REGIONS};
use boxidr_forward::collector::tls_config_for_ca;
use boxidr_forward::{
    CanaryOutcome, CollectorSettings, CollectorSink, CollectorTransport, LogSearchSettings,
    LogSearchSink, Rendered, Sink, SinkError, TrustRoots, Verifier, VerifierSettings,
};
use boxidr_model::Secret;
use boxidr_model::clock::now_ms;
use boxidr_normalize::{NoDirectory, Settings, render_record};
use boxidr_store::settings::{self, SecretKey};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::{App, Ctx, SettingsExtras, internal};
use crate::actions::Actions;
use crate::boxlink;
use crate::error::SetupError;
use crate::forms;
use crate::http::{Req, Resp};
use crate::pages::{self, Errors, Values};
use crate::route::SettingsPage;
use crate::status::bounded;

/// Start of every test record's marker (and event id).
pub(crate) const TEST_MARKER_PREFIX: &str = "boxidr-test-";
/// The synthetic actor of test records; `.invalid` can never be a real mailbox.
pub(crate) const TEST_LOGIN: &str = "boxidr-test@test.invalid";
/// The synthetic source address (TEST-NET-1, documentation only).
pub(crate) const TEST_IP: &str = "192.0.2.1";
/// The `event_type` of the Log Search test record (not a Box event type).
pub(crate) const TEST_EVENT_TYPE: &str = "BOXIDR_TEST";
/// How long "Send test event" waits for its line to show up in Log Search (with a Platform
/// API key). The real Collector can take minutes: the result then says what to search for.
pub(crate) const DEFAULT_TEST_WAIT: Duration = Duration::from_secs(30);
/// How long the Box test waits for a restarting collector's token manager.
const COLLECTOR_TOKENS_WAIT: Duration = Duration::from_secs(15);
/// Bound on each network step of a test (connect + handshake, one request, one write).
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// How one check of a test went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Passed,
    /// Not a failure, but not confirmed either (e.g. not yet seen in Log Search).
    Warning,
    Failed,
    /// Not needed with these settings, or not possible after an earlier failure.
    NotRun,
}

impl Verdict {
    /// The CSS class (and the word a tool reads in `data-verdict`).
    pub(crate) fn class(self) -> &'static str {
        match self {
            Self::Passed => "ok",
            Self::Warning => "warn",
            Self::Failed => "bad",
            Self::NotRun => "muted",
        }
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::Passed => "OK",
            Self::Warning => "Not confirmed",
            Self::Failed => "Failed",
            Self::NotRun => "Not run",
        }
    }
}

/// One check: what was tried and how it went, in words (with what to do on failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) verdict: Verdict,
    pub(crate) text: String,
}

/// The result of one test button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestReport {
    pub(crate) title: &'static str,
    pub(crate) checks: Vec<Check>,
}

impl TestReport {
    fn new(title: &'static str) -> Self {
        Self {
            title,
            checks: Vec::new(),
        }
    }

    fn add(&mut self, name: &'static str, verdict: Verdict, text: impl Into<String>) {
        self.checks.push(Check {
            name,
            verdict,
            text: bounded_long(&text.into()),
        });
    }

    fn pass(&mut self, name: &'static str, text: impl Into<String>) {
        self.add(name, Verdict::Passed, text);
    }

    fn fail(&mut self, name: &'static str, text: impl Into<String>) {
        self.add(name, Verdict::Failed, text);
    }

    fn not_run(&mut self, name: &'static str, text: impl Into<String>) {
        self.add(name, Verdict::NotRun, text);
    }

    /// The worst verdict: any failure fails the test.
    pub(crate) fn verdict(&self) -> Verdict {
        if self.checks.iter().any(|c| c.verdict == Verdict::Failed) {
            Verdict::Failed
        } else if self.checks.iter().any(|c| c.verdict == Verdict::Warning) {
            Verdict::Warning
        } else {
            Verdict::Passed
        }
    }
}

/// Longer than [`bounded`] allows (advice sentences), still without control characters.
fn bounded_long(text: &str) -> String {
    const MAX: usize = 1200;
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= MAX {
        clean
    } else {
        let mut cut: String = clean.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

/// A fresh marker: `boxidr-test-<32 hex digits>`.
pub(crate) fn test_marker() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TEST_MARKER_PREFIX}{hex}")
}

/// A test record shaped like a Box event, clearly marked: id `<marker>-<suffix>`, the
/// synthetic actor, `"boxidr_test": true` and a note in words.
pub(crate) fn test_event(marker: &str, suffix: &str, event_type: &str, now_ms: u64) -> Value {
    json!({
        "type": "event",
        "event_id": format!("{marker}-{suffix}"),
        "event_type": event_type,
        "created_at": boxidr_normalize::ms_to_utc(now_ms),
        "created_by": {
            "type": "user",
            "id": "boxidr-test",
            "name": "boxidr test (synthetic, not a person)",
            "login": TEST_LOGIN,
        },
        "ip_address": TEST_IP,
        "session_id": marker,
        "boxidr_test": true,
        "boxidr_test_marker": marker,
        "additional_details": {
            "note": "Test record sent from the boxidr setup page (test button); not Box activity."
        },
    })
}

/// The UEF line of the Collector test: a test `LOGIN` through the collector's renderer (the
/// saved account mapping; the scope does not apply to a test).
pub(crate) fn test_uef_line(
    marker: &str,
    mapping: &boxidr_config::Mapping,
) -> Result<String, String> {
    let event = test_event(marker, "collector", "LOGIN", now_ms());
    let settings = Settings::from_mapping(mapping, env!("CARGO_PKG_VERSION"));
    let rendered = render_record(&event.to_string(), now_ms(), &NoDirectory, &settings);
    match (rendered.uef, rendered.uef_rejected) {
        (Some(line), _) => Ok(line),
        (None, Some(reason)) => Err(format!(
            "the test login cannot be sent as UEF with these account settings ({reason:?}): \
             check the Accounts page"
        )),
        (None, None) => Err("the test login rendered to no UEF line".to_owned()),
    }
}

/// The raw record of the Log Search test (sent whatever "send unparsed logs" says).
pub(crate) fn test_raw_record(marker: &str, mapping: &boxidr_config::Mapping) -> Option<String> {
    let event = test_event(marker, "log-search", TEST_EVENT_TYPE, now_ms());
    let mut settings = Settings::from_mapping(mapping, env!("CARGO_PKG_VERSION"));
    settings.send_unparsed = true;
    render_record(&event.to_string(), now_ms(), &NoDirectory, &settings).raw
}

/// What a TLS handshake failure means for the admin.
pub(crate) fn handshake_advice(error: &std::io::Error, host: &str) -> String {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => {
                "The Collector's certificate is not signed by the CA given here: upload the \
                 Rapid7CA.pem of this Collector (on the Collector host, in the Rapid7 \
                 installation's keystore folder) and try again."
                    .to_owned()
            }
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => format!(
                "The Collector's certificate is not issued for \"{}\": enter the host name the \
                 certificate names (its CN or subject alternative name) instead.",
                bounded(host)
            ),
            rustls::CertificateError::Expired
            | rustls::CertificateError::ExpiredContext { .. }
            | rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. } => {
                "The Collector's certificate is outside its validity period, or this \
                 appliance's clock is wrong: check the clock on the status page and the \
                 certificate's dates."
                    .to_owned()
            }
            _ => "The Collector's certificate was refused: check that the CA given here is the \
                  Collector's own."
                .to_owned(),
        },
        Some(_) => "The TLS handshake failed: check that the event source on this port is set up \
                    with TLS (or tick \"Unencrypted TCP\" if it is not)."
            .to_owned(),
        None => "The Collector ended the connection during the TLS handshake: check that the \
                 event source on this port uses TLS (or tick \"Unencrypted TCP\" if it does not)."
            .to_owned(),
    }
}

/// What a Box error means for one check, and what to do.
pub(crate) fn box_advice(error: &ApiError, scope: &str, role: &str) -> String {
    match error {
        ApiError::Unauthorized => "Box refused the access token (401): the authorisation was \
             revoked or has expired. Click \"Reconnect to Box\"."
            .to_owned(),
        ApiError::Auth(AuthError::InvalidGrant { .. }) => "Box refused the stored \
             authorisation (invalid_grant): it was revoked, has expired or was used elsewhere. \
             Click \"Reconnect to Box\"."
            .to_owned(),
        ApiError::Auth(AuthError::InvalidClient { .. }) => boxlink::explain(error),
        ApiError::Forbidden { code, .. } if code == "insufficient_scope" => format!(
            "Box refused it (403 insufficient_scope): the app needs the scope {scope} (Box \
             Developer Console → the app → Configuration); save the app there, then click \
             \"Reconnect to Box\"."
        ),
        ApiError::Forbidden { code, .. } => {
            format!("Box refused it (403 {}): {role}.", bounded(code))
        }
        ApiError::Network { .. } | ApiError::Proxy { .. } => format!(
            "{}. Check the appliance's network, DNS, the outbound proxy (Collection page) and \
             that the clock is synchronised.",
            bounded(&error.to_string())
        ),
        ApiError::RateLimited { .. } | ApiError::Server { .. } => format!(
            "{}. Box is busy or failing: try again in a few minutes.",
            bounded(&error.to_string())
        ),
        other => format!(
            "{}. Try again; if it persists, check the app in the Box Developer Console.",
            bounded(&other.to_string())
        ),
    }
}

/// Where the InsightIDR tests' answer is drawn: the InsightIDR page with the form as typed.
fn insightidr_extras(typed: Values, errors: Errors, report: Option<&TestReport>) -> SettingsExtras {
    SettingsExtras {
        path: Some(SettingsPage::InsightIdr),
        typed: Some(typed),
        errors,
        test: report.map(pages::test_report),
        ..SettingsExtras::default()
    }
}

impl App {
    /// The region chosen on the form, else the saved one, else `us`.
    pub(super) fn form_region(&self, form: &std::collections::HashMap<String, String>) -> String {
        form.get("region")
            .map(String::as_str)
            .filter(|r| REGIONS.contains(r))
            .map(str::to_owned)
            .or_else(|| {
                self.current_config()
                    .insightidr
                    .log_search
                    .as_ref()
                    .map(|l| l.region.clone())
            })
            .unwrap_or_else(|| "us".into())
    }

    /// The InsightIDR form as typed, validated like a save: the changes, or the page with
    /// the field errors.
    fn insightidr_form(
        &self,
        req: &Req,
        ctx: &Ctx,
    ) -> Result<(Values, forms::Changes, String), Resp> {
        let form = match self.form_with_uploads(req) {
            Ok(form) => form,
            Err(errors) => {
                return Err(self.render_settings(
                    req,
                    ctx,
                    insightidr_extras(forms::typed(&req.form()), errors, None),
                ));
            }
        };
        let typed = forms::typed(&form);
        let region = self.form_region(&form);
        match forms::apply(SettingsPage::InsightIdr, &self.current_config(), &form) {
            Ok(changes) => Ok((typed, changes, region)),
            Err(errors) => {
                Err(self.render_settings(req, ctx, insightidr_extras(typed, errors, None)))
            }
        }
    }

    /// `POST /insightidr/test-collector`: "Send test event".
    pub(super) fn collector_test(&self, req: &Req, ctx: &Ctx) -> Resp {
        let (typed, changes, region) = match self.insightidr_form(req, ctx) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let report = match self.probes.run_collector_test(&changes, &region) {
            Ok(report) => report,
            Err(e) => return internal(&e),
        };
        tracing::info!(client = %req.client, verdict = report.verdict().word(), "Collector test event sent from the setup page.");
        self.render_settings(
            req,
            ctx,
            insightidr_extras(typed, Errors::new(), Some(&report)),
        )
    }

    /// `POST /insightidr/test-log-search`: "Send test record".
    pub(super) fn log_search_test(&self, req: &Req, ctx: &Ctx) -> Resp {
        let (typed, changes, _) = match self.insightidr_form(req, ctx) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let report = match self.probes.run_log_search_test(&changes) {
            Ok(report) => report,
            Err(e) => return internal(&e),
        };
        tracing::info!(client = %req.client, verdict = report.verdict().word(), "Log Search test record sent from the setup page.");
        self.render_settings(
            req,
            ctx,
            insightidr_extras(typed, Errors::new(), Some(&report)),
        )
    }

    /// `POST /box/test`: "Test" on the Box page, with the stored grant.
    pub(super) fn box_test(&self, req: &Req, ctx: &Ctx) -> Resp {
        let config = self.current_config();
        let report = match self.probes.run_box_test(&config) {
            Ok(report) => report,
            Err(e) => return internal(&e),
        };
        tracing::info!(client = %req.client, verdict = report.verdict().word(), "Box connection tested from the setup page.");
        self.box_page_with_test(req, ctx, &report)
    }
}

/// The network work of the test buttons, apart from the router: what each test sends, where,
/// and what it concludes. The handlers on [`App`] parse the form and render the report.
pub(crate) struct Probes {
    /// The store, the configuration and the Box client settings.
    pub(crate) actions: Arc<Actions>,
    /// Platform API override for "Test connection" (simulator, proxy).
    pub(crate) platform_api: Option<crate::server::PlatformApi>,
    /// The collector's current Box token manager, if it runs one (the Box test uses it).
    pub(crate) box_tokens: Option<watch::Receiver<Option<Arc<TokenManager>>>>,
    /// How long "Send test event" waits for its line in Log Search.
    pub(crate) test_wait: Duration,
}

impl Probes {
    /// A Platform API client for the region as selected (or the configured override) with
    /// `key`, through the outbound proxy; and the base it talks to (for the texts).
    pub(crate) fn verifier_for(
        &self,
        region: &str,
        key: Secret,
        timeout: Duration,
    ) -> Result<(Verifier, String), String> {
        let settings = match &self.platform_api {
            Some(api) => {
                let mut s = VerifierSettings::new(api.base.clone(), key);
                s.roots = api.roots.clone();
                Ok(s)
            }
            None => VerifierSettings::for_region(region, key),
        };
        let network = self.actions.config().network.clone();
        let proxy = self
            .actions
            .block_on(boxidr_boxapi::http::outbound_proxy(
                &network,
                &self.actions.store,
            ))
            .ok()
            .flatten();
        settings
            .and_then(|mut s| {
                s.request_timeout = timeout;
                s.proxy = proxy;
                let base = s.api_base.to_string();
                Verifier::new(s).map(|v| (v, base.trim_end_matches('/').to_owned()))
            })
            .map_err(|e| bounded(&e.to_string()))
    }

    /// The secret typed in `changes`, else the stored one.
    pub(crate) fn typed_or_stored(
        &self,
        changes: &forms::Changes,
        key: SecretKey,
    ) -> Result<Option<Secret>, SetupError> {
        if let Some((_, value)) = changes.secrets.iter().find(|(k, _)| *k == key) {
            return Ok(Some(value.clone()));
        }
        self.actions.secret_text(key)
    }

    pub(crate) fn run_collector_test(
        &self,
        changes: &forms::Changes,
        region: &str,
    ) -> Result<TestReport, SetupError> {
        let mut report = TestReport::new("Collector: send test event");
        let Some(collector) = &changes.config.insightidr.collector else {
            report.fail(
                "Settings",
                "The Collector is off: tick \"Send login events to a Collector\", fill in its \
                 host and port, and try again.",
            );
            return Ok(report);
        };
        let target = format!("{}:{}", collector.host, collector.port);
        let transport = if collector.unencrypted {
            CollectorTransport::Unencrypted
        } else {
            let pem = match (&changes.ca_file, &collector.ca_file) {
                (Some((_, pem)), _) => Ok(pem.clone().into_bytes()),
                (None, Some(path)) => std::fs::read(path)
                    .map_err(|e| format!("The CA file {} cannot be read ({e}): upload the Collector's Rapid7CA.pem again.", path.display())),
                (None, None) => Err("No Collector CA is set: paste or upload the Collector's \
                                     Rapid7CA.pem (or tick \"Unencrypted TCP\" if the event source \
                                     has no TLS)."
                    .to_owned()),
            };
            match pem {
                Ok(ca_pem) => CollectorTransport::Tls {
                    ca_pem,
                    server_name: None,
                },
                Err(text) => {
                    report.fail("TLS handshake", text);
                    report.not_run("Test event", "Not sent: no TLS session.");
                    return Ok(report);
                }
            }
        };
        let mut settings =
            CollectorSettings::new(collector.host.clone(), collector.port, transport);
        settings.connect_timeout = STEP_TIMEOUT;
        settings.write_timeout = STEP_TIMEOUT;

        // 1. The connection and, with TLS, the handshake with the CA as given.
        let handshake = self.actions.block_on(handshake(&settings));
        match &handshake {
            Ok(text) => report.pass(
                if collector.unencrypted {
                    "Connection"
                } else {
                    "TLS handshake"
                },
                text.clone(),
            ),
            Err(text) => {
                report.fail(
                    if collector.unencrypted {
                        "Connection"
                    } else {
                        "TLS handshake"
                    },
                    text.clone(),
                );
                report.not_run("Test event", "Not sent: no connection to the Collector.");
                return Ok(report);
            }
        }

        // 2. One marked UEF line through the collector's own sink.
        let marker = test_marker();
        let line = match test_uef_line(&marker, &changes.config.mapping) {
            Ok(line) => line,
            Err(text) => {
                report.fail("Test event", text);
                return Ok(report);
            }
        };
        let sent_at = SystemTime::now();
        let delivered = self.actions.block_on(async {
            let mut sink = CollectorSink::new(settings.clone()).map_err(|e| e.to_string())?;
            sink.submit(
                vec![Rendered {
                    seq: 0,
                    line: Some(line),
                }],
                0,
            );
            let bound = settings.connect_timeout + settings.write_timeout + settings.confirm_window;
            let outcome = tokio::time::timeout(bound, sink.progress()).await;
            sink.close().await;
            match outcome {
                Ok(delivery) => match (delivery.error, delivery.sent) {
                    (None, 1) => Ok(()),
                    (None, _) => Err("the line could not be framed and was not sent".to_owned()),
                    (Some(e), _) => Err(e.to_string()),
                },
                Err(_) => Err(format!("not written within {bound:?}")),
            }
        });
        match delivered {
            Ok(()) => report.pass(
                "Test event",
                format!(
                    "One test login (account \"boxidr-test\", from {TEST_IP}) was written to \
                     {} and the connection stayed up afterwards. Its marker: {marker}.",
                    bounded(&target)
                ),
            ),
            Err(text) => {
                report.fail(
                    "Test event",
                    format!(
                        "{}. The Collector accepted the connection but not the line: check that \
                         this port belongs to a \"Rapid7 Universal Ingress Authentication\" event \
                         source and that the Collector is running.",
                        bounded(&text)
                    ),
                );
                return Ok(report);
            }
        }

        // 3. With a Platform API key, wait (bounded) for it in Log Search.
        let Some(key) = self.typed_or_stored(changes, settings::PLATFORM_API_KEY)? else {
            report.not_run(
                "Seen in Log Search",
                format!(
                    "No Platform API key is set, so the appliance cannot look for it. Search Log \
                     Search for {marker}; the Collector can take a few minutes to forward it."
                ),
            );
            return Ok(report);
        };
        let (verifier, base) = match self.verifier_for(region, key, STEP_TIMEOUT) {
            Ok(v) => v,
            Err(text) => {
                report.fail(
                    "Seen in Log Search",
                    format!("The Platform API client cannot start: {text}"),
                );
                return Ok(report);
            }
        };
        let wait = self.test_wait;
        let started = Instant::now();
        // A failed search is tried again until the wait is over, as the canary does (a
        // proxy or the API may drop one request).
        let give_up = started + wait;
        let seen = self.actions.block_on(async {
            loop {
                let left = give_up.saturating_duration_since(Instant::now());
                let attempt = async {
                    let logs: Vec<String> =
                        verifier.logs().await?.into_iter().map(|l| l.id).collect();
                    if logs.is_empty() {
                        return Ok(None);
                    }
                    let since = sent_at - Duration::from_secs(60);
                    verifier.find(&logs, &marker, since, left).await.map(Some)
                }
                .await;
                match attempt {
                    Err(boxidr_forward::VerifyError::Unavailable(_))
                        if left > Duration::from_secs(2) =>
                    {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    other => return other,
                }
            }
        });
        match seen {
            Ok(Some(CanaryOutcome::Seen { .. })) => report.pass(
                "Seen in Log Search",
                format!(
                    "Found in Log Search after {} s: the Collector forwards to InsightIDR.",
                    started.elapsed().as_secs()
                ),
            ),
            Ok(Some(CanaryOutcome::NotSeen)) => report.add(
                "Seen in Log Search",
                Verdict::Warning,
                format!(
                    "Not in Log Search after {} s. The Collector can take up to 5 minutes: search \
                     Log Search for {marker} later. If it never shows, check the event source's \
                     log in InsightIDR and that the Collector is online.",
                    wait.as_secs()
                ),
            ),
            Ok(None) => report.fail(
                "Seen in Log Search",
                "The Platform API key sees no logs: give the key access to Log Search (InsightIDR: \
                 Settings → API Keys).",
            ),
            Err(boxidr_forward::VerifyError::KeyRejected(status)) => report.fail(
                "Seen in Log Search",
                format!(
                    "The Platform API at {base} refused the key (HTTP {status}): check that it \
                     was copied whole, not revoked, and that the region matches your account."
                ),
            ),
            Err(boxidr_forward::VerifyError::Unavailable(reason)) => report.fail(
                "Seen in Log Search",
                format!(
                    "The Platform API at {base} cannot be asked: {}. Check the region, DNS, \
                     firewall and the outbound proxy.",
                    bounded(&reason)
                ),
            ),
        }
        Ok(report)
    }

    pub(crate) fn run_log_search_test(
        &self,
        changes: &forms::Changes,
    ) -> Result<TestReport, SetupError> {
        let mut report = TestReport::new("Log Search: send test record");
        let Some(log_search) = &changes.config.insightidr.log_search else {
            report.fail(
                "Settings",
                "Log Search is off: tick \"Send every Box event to Log Search\", choose the region \
                 and paste the log token, then try again.",
            );
            return Ok(report);
        };
        let Some(token) = self.typed_or_stored(changes, settings::LOG_SEARCH_TOKEN)? else {
            report.fail(
                "Settings",
                "No log token is set: paste the token of the Log Search log (InsightIDR: Data \
                 Collection → Event Sources → Custom Logs → Webhook / token) and try again.",
            );
            return Ok(report);
        };
        let mut settings = match LogSearchSettings::from_config(log_search, token) {
            Ok(s) => s,
            Err(e) => {
                report.fail(
                    "Settings",
                    format!(
                        "The Log Search address cannot be used: {}",
                        bounded(&e.to_string())
                    ),
                );
                return Ok(report);
            }
        };
        let host = settings
            .ingest_base
            .host_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(path) = &log_search.ca_file {
            match boxidr_forward::collector::read_ca_file(path) {
                Ok(pem) => settings.roots = TrustRoots::CustomCa(pem),
                Err(e) => {
                    report.fail(
                        "Settings",
                        format!(
                            "The Log Search CA file cannot be read: {}",
                            bounded(&e.to_string())
                        ),
                    );
                    return Ok(report);
                }
            }
        }
        match self.actions.block_on(boxidr_boxapi::http::outbound_proxy(
            &changes.config.network,
            &self.actions.store,
        )) {
            Ok(proxy) => settings.proxy = proxy,
            Err(e) => {
                report.fail(
                    "Settings",
                    format!(
                        "The outbound proxy cannot be used: {}. Check it on the Collection page.",
                        bounded(&e)
                    ),
                );
                return Ok(report);
            }
        }
        settings.connect_timeout = STEP_TIMEOUT;
        settings.request_timeout = STEP_TIMEOUT;
        settings.connections = 1;
        settings.concurrency = 1;
        let marker = test_marker();
        let Some(record) = test_raw_record(&marker, &changes.config.mapping) else {
            report.fail(
                "Test record",
                "The test record rendered to nothing; nothing was sent.",
            );
            return Ok(report);
        };
        let via = if changes.config.network.proxy.is_some() {
            " through the outbound proxy"
        } else {
            ""
        };
        let delivered = self.actions.block_on(async {
            let mut sink = LogSearchSink::new(settings).map_err(|e| SinkError::Config {
                reason: e.to_string(),
            })?;
            sink.submit(
                vec![Rendered {
                    seq: 0,
                    line: Some(record),
                }],
                0,
            );
            let delivery =
                tokio::time::timeout(STEP_TIMEOUT + Duration::from_secs(5), sink.progress())
                    .await
                    .map_err(|_| {
                        SinkError::transient(format!("no answer within {:?}", STEP_TIMEOUT))
                    })?;
            sink.close().await;
            match delivery.error {
                Some(e) => Err(e),
                None => Ok((delivery.sent, delivery.rejected)),
            }
        });
        match delivered {
            Ok((1, _)) => report.pass(
                "Test record",
                format!(
                    "Log Search at {}{via} accepted one test record (HTTP 2xx). Its marker: \
                     {marker} (search Log Search for it).",
                    bounded(&host)
                ),
            ),
            Ok((_, rejected)) if !rejected.is_empty() => report.fail(
                "Test record",
                "Log Search refused the record as too large (HTTP 413): check the ingestion URL \
                 override, which may point to something that is not Log Search.",
            ),
            Ok(_) => report.fail("Test record", "The record was not sent."),
            Err(SinkError::Config { reason }) => report.fail(
                "Test record",
                format!(
                    "{}. Copy the token again from the log's settings in InsightIDR, check that \
                     the region is the one of your InsightIDR account, and leave the ingestion URL \
                     override empty unless you were told otherwise.",
                    bounded(&reason)
                ),
            ),
            Err(SinkError::Transient { message, .. }) => report.fail(
                "Test record",
                format!(
                    "{}. Log Search (or the way to it{via}) is failing; real events stay queued \
                     and are retried. Check DNS, the firewall and the outbound proxy, or try \
                     again in a few minutes.",
                    bounded(&message)
                ),
            ),
        }
        Ok(report)
    }

    /// A token manager for the stored grant. The collector's own when it runs one (Box
    /// rotates the refresh token on every use: a second holder would spend it under the
    /// collector's feet); with client credentials, or when no collector is attached (the
    /// page alone, as in its tests), the page's own, which commits a rotated refresh token to
    /// the store before using the new access token, like the collector does.
    async fn box_token(
        &self,
        config: &Config,
    ) -> Result<Result<Arc<TokenManager>, String>, SetupError> {
        let Some((client_id, secret)) = boxlink::app_credentials(&self.actions.store).await? else {
            return Ok(Err(
                "The Box app is not saved: enter the client ID and secret below, \
                           save them, and click \"Connect to Box\"."
                    .to_owned(),
            ));
        };
        let grant = Grant::load(&self.actions.store).await?;
        let Some(grant) = grant else {
            return Ok(Err(
                "Box is not connected: click \"Connect to Box\" below.".to_owned()
            ));
        };
        if let Some(rx) = &self.box_tokens {
            // Right after a (re)connection the collector is restarting: give it a moment.
            let mut rx = rx.clone();
            let manager = tokio::time::timeout(COLLECTOR_TOKENS_WAIT, async {
                rx.wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|m| m.clone())
            })
            .await
            .ok()
            .flatten();
            let client_credentials = matches!(grant, Grant::ClientCredentials { .. });
            match manager {
                Some(manager) => return Ok(Ok(manager)),
                None if client_credentials => {}
                None => {
                    return Ok(Err(
                        "The collector is not running with this Box connection right \
                                   now (the status page says why), so the test does not touch \
                                   the stored authorisation: Box accepts each refresh token \
                                   once, and the collector holds it. Fix what the status page \
                                   names, then test again."
                            .to_owned(),
                    ));
                }
            }
        }
        let http = self.actions.box_http(config).await;
        let auth = match boxlink::auth_client(&http, config, client_id, secret) {
            Ok(auth) => auth,
            Err(e) => return Ok(Err(box_advice(&e, "", ""))),
        };
        match TokenManager::load(auth, grant.clone(), self.actions.store.clone()).await {
            Ok(manager) => Ok(Ok(Arc::new(manager))),
            Err(e) => Ok(Err(box_advice(&e, "", ""))),
        }
    }

    /// "Test" on the Box page with `config` and the stored grant.
    pub(crate) fn run_box_test(&self, config: &Config) -> Result<TestReport, SetupError> {
        self.actions.block_on(self.box_test_report(config))
    }

    /// "Test connection" of the Platform API key: `key` against `region`'s API (or the
    /// override); the answer, and the base it went to (for the text). `Err`: it could not start.
    pub(crate) fn validate_key(
        &self,
        region: &str,
        key: Secret,
    ) -> Result<(Result<(), boxidr_forward::VerifyError>, String), String> {
        let (verifier, base) = self.verifier_for(region, key, Duration::from_secs(20))?;
        Ok((self.actions.block_on(verifier.validate()), base))
    }

    async fn box_test_report(&self, config: &Config) -> Result<TestReport, SetupError> {
        let mut report = TestReport::new("Box: test");
        let tokens = match self.box_token(config).await? {
            Ok(v) => v,
            Err(text) => {
                report.fail("Authorisation", text);
                return Ok(report);
            }
        };
        let tokens: &TokenManager = &tokens;
        let http = self.actions.box_http(config).await;
        let max = config.box_api.max_body_bytes;
        let api = &config.box_api.api_base;

        // 1. The token, and who it belongs to.
        let me = with_token(tokens, |token| {
            let http = http.clone();
            async move { boxlink::users_me(&http, config, &token).await }
        })
        .await;
        let me = match me {
            Ok(me) => me,
            Err(e) => {
                report.fail("Token", box_advice(&e, "", ""));
                for name in ["Admin role", "Enterprise events", "User list", "Groups"] {
                    report.not_run(name, "Not checked without a valid token.");
                }
                return Ok(report);
            }
        };
        let text = |key: &str| {
            me.get(key)
                .and_then(Value::as_str)
                .map(bounded)
                .unwrap_or_default()
        };
        report.pass(
            "Token",
            format!(
                "Valid: Box knows it as {} ({}).",
                text("name"),
                text("login")
            ),
        );
        match text("role").as_str() {
            role @ ("admin" | "coadmin") => report.pass(
                "Admin role",
                format!("The account is {}.", if role == "admin" { "an admin" } else { "a co-admin" }),
            ),
            role => report.fail(
                "Admin role",
                format!(
                    "The account's role is \"{role}\", not admin or co-admin: enterprise events and \
                     the user list need one. Click \"Reconnect to Box\" and sign in as an admin or \
                     co-admin (co-admins need the permissions to run reports and manage users)."
                ),
            ),
        }

        // 2. One (empty) page of the configured stream, read at "now": no position is kept.
        let stream = config.events.stream_type;
        let events = EventsClient::new(http.clone(), api, max);
        let request = EventsRequest {
            stream,
            from: EventsFrom::Now,
            limit: 1,
            created_after: None,
            created_before: None,
            event_types: Vec::new(),
        };
        match with_token(tokens, |token| {
            let (events, request) = (&events, &request);
            async move { events.fetch(&token, request).await }
        })
        .await
        {
            Ok(_) => report.pass("Enterprise events", format!("Readable on {}.", stream.as_str())),
            Err(e) => report.fail(
                "Enterprise events",
                format!(
                    "Not readable on {}: {}",
                    stream.as_str(),
                    box_advice(
                        &e,
                        "\"Manage enterprise properties\"",
                        "the account must be an admin, or a co-admin allowed to run new reports and access existing reports",
                    )
                ),
            ),
        }

        // 3. One user.
        let users = UsersClient::new(http.clone(), api, max);
        match with_token(tokens, |token| {
            let users = &users;
            async move { users.fetch(&token, None, 1).await }
        })
        .await
        {
            Ok(_) => report.pass("User list", "Readable."),
            Err(e) => report.fail(
                "User list",
                format!(
                    "Not readable: {}",
                    box_advice(
                        &e,
                        "\"Manage users\"",
                        "the account must be an admin, or a co-admin allowed to manage users",
                    )
                ),
            ),
        }

        // 4. Groups, only when the monitored-users scope names some.
        match config.scope.groups.first() {
            None => report.not_run(
                "Groups",
                "Not needed: the monitored-users scope names no group (Collection page).",
            ),
            Some(group) => {
                let groups = GroupsClient::new(http.clone(), api, max);
                match with_token(tokens, |token| {
                    let groups = &groups;
                    async move { groups.fetch_groups(&token, group, 0, 1).await }
                })
                .await
                {
                    Ok(page) if page.entries.is_empty() => report.add(
                        "Groups",
                        Verdict::Warning,
                        format!(
                            "Readable, but Box lists no group named like \"{}\": check the \
                             group names in the monitored-users list.",
                            bounded(group)
                        ),
                    ),
                    Ok(_) => report.pass("Groups", "Readable (the scope's groups can be resolved)."),
                    Err(e) => report.fail(
                        "Groups",
                        format!(
                            "Not readable: {}",
                            box_advice(
                                &e,
                                "\"Manage groups\"",
                                "the account must be an admin, or a co-admin allowed to manage groups",
                            )
                        ),
                    ),
                }
            }
        }
        Ok(report)
    }
}

/// Connects to the Collector and, with TLS, completes a handshake trusting only the CA given;
/// then closes politely. The text says what was checked, or what failed and what to do.
async fn handshake(settings: &CollectorSettings) -> Result<String, String> {
    let target = format!("{}:{}", settings.host, settings.port);
    let shown = bounded(&target);
    let tcp = tokio::time::timeout(
        settings.connect_timeout,
        tokio::net::TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await;
    let tcp = match tcp {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(format!(
                "Cannot connect to {shown}: {}. Check the host and port, that the Collector is \
                 running with a \"Rapid7 Universal Ingress Authentication\" event source on that \
                 port, and that no firewall is in between (the Collector is reached directly, \
                 never through the proxy).",
                bounded(&e.to_string())
            ));
        }
        Err(_) => {
            return Err(format!(
                "No answer from {shown} within {} s: check the host, the port and firewalls.",
                settings.connect_timeout.as_secs()
            ));
        }
    };
    let CollectorTransport::Tls {
        ca_pem,
        server_name,
    } = &settings.transport
    else {
        drop(tcp);
        return Ok(format!("Connected to {shown} (unencrypted TCP, as set)."));
    };
    let config = tls_config_for_ca(ca_pem).map_err(|e| {
        format!(
            "The CA is not usable ({}): paste or upload the Collector's Rapid7CA.pem.",
            bounded(&e.to_string())
        )
    })?;
    let name = server_name.clone().unwrap_or_else(|| settings.host.clone());
    let name = ServerName::try_from(name)
        .map_err(|_| format!("\"{shown}\" is not a host name or address TLS can check."))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(settings.connect_timeout, connector.connect(name, tcp)).await {
        Ok(Ok(mut tls)) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
            Ok(format!(
                "Connected to {shown}; its certificate is signed by the CA given here."
            ))
        }
        Ok(Err(e)) => Err(format!(
            "The TLS handshake with {shown} failed: {}. {}",
            bounded(&e.to_string()),
            handshake_advice(&e, &settings.host)
        )),
        Err(_) => Err(format!(
            "The TLS handshake with {shown} did not finish within {} s: check that the event \
             source on this port uses TLS.",
            settings.connect_timeout.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test records are marked in their id, actor, flag and words, and render to a valid UEF
    /// line (Collector) and a raw record (Log Search) that carry the marker.
    #[test]
    fn test_records_are_marked_and_render() {
        let marker = test_marker();
        assert!(marker.starts_with(TEST_MARKER_PREFIX));
        assert_eq!(marker.len(), TEST_MARKER_PREFIX.len() + 32);
        let mapping = boxidr_config::Mapping {
            default_domain: Some("CORP".into()),
            ..Default::default()
        };
        let line = test_uef_line(&marker, &mapping).unwrap();
        let uef: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(uef["event_type"], "INGRESS_AUTHENTICATION");
        assert_eq!(uef["account"], "boxidr-test");
        assert_eq!(uef["account_domain"], "CORP");
        assert_eq!(uef["source_ip"], TEST_IP);
        assert!(line.contains(&marker));
        let raw = test_raw_record(&marker, &boxidr_config::Mapping::default()).unwrap();
        let raw: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(raw["event_type"], TEST_EVENT_TYPE);
        assert_eq!(raw["event"]["boxidr_test"], true);
        assert!(raw.to_string().contains(&marker));
        assert!(raw.to_string().contains("not Box activity"));
    }

    /// A report fails when any check fails, warns when one is unconfirmed, else passes; texts
    /// lose control characters and are bounded.
    #[test]
    fn report_verdicts_and_bounds() {
        let mut r = TestReport::new("t");
        r.pass("a", "fine");
        r.not_run("b", "later");
        assert_eq!(r.verdict(), Verdict::Passed);
        r.add("c", Verdict::Warning, "maybe");
        assert_eq!(r.verdict(), Verdict::Warning);
        r.fail("d", "bad\nline\u{1b}[31m");
        assert_eq!(r.verdict(), Verdict::Failed);
        assert!(!r.checks[3].text.contains('\n') && !r.checks[3].text.contains('\u{1b}'));
        r.fail("e", "x".repeat(5000));
        assert!(r.checks[4].text.chars().count() <= 1201);
    }

    /// Box refusals name the missing scope or role and what to click.
    #[test]
    fn box_errors_in_plain_words() {
        let scope = box_advice(
            &ApiError::Forbidden {
                code: "insufficient_scope".into(),
                message: "m".into(),
            },
            "\"Manage users\"",
            "role",
        );
        assert!(scope.contains("\"Manage users\"") && scope.contains("Reconnect"));
        let role = box_advice(
            &ApiError::Forbidden {
                code: "access_denied_insufficient_permissions".into(),
                message: "m".into(),
            },
            "scope",
            "the account must be an admin",
        );
        assert!(role.contains("the account must be an admin"));
        assert!(box_advice(&ApiError::Unauthorized, "", "").contains("Reconnect"));
        let revoked = box_advice(
            &ApiError::Auth(AuthError::InvalidGrant {
                description: "d".into(),
            }),
            "",
            "",
        );
        assert!(revoked.contains("invalid_grant") && revoked.contains("Reconnect"));
    }
}
