//! The router: request in, response out. The first-boot gate, sessions, CSRF and Origin checks
//! run here before any handler; every handler that changes state is a POST. Which path is
//! which [`Page`] is decided in `route.rs` alone; this file matches on the enum.
//!
//! Route map (everything but the first two needs an admin session):
//!
//! | route | what |
//! |---|---|
//! | `GET/POST /claim` | first boot: setup code + new password (only while no password is set) |
//! | `GET/POST /login`, `POST /logout` | sessions |
//! | `GET /oauth/callback` | Box's redirect back (bound to the session by `state` + binder cookie) |
//! | `GET /status`, `GET /status.json` | the collector's [`StatusSource`] snapshot |
//! | `GET /box`, `POST /box/app`, `POST /box/connect`, `POST /box/ccg` | Box app and grant |
//! | `GET/POST /insightidr`, `/mapping`, `/collection` | TOML settings (+ store secrets) |
//! | `GET/POST /certificate` | fingerprint, upload of the admin's own certificate (paste or file) |
//! | `POST /insightidr/test` | "Test connection": the Platform API key against `/validate`, nothing saved |
//! | `POST /box/test`, `POST /insightidr/test-collector`, `POST /insightidr/test-log-search` | the test buttons (`probes`): nothing saved, queued or counted |
//! | `POST /mapping/preview` | three stored Box users as InsightIDR accounts, nothing saved |
//! | `POST /collection/scope`, `POST /collection/scope/clear`, `GET /collection/scope.csv` | monitored users |
//! | `GET /metrics` | Prometheus text from the status snapshot |
//! | `GET /maintenance`, `GET /maintenance/config.toml`, `POST /maintenance/import`, `GET /maintenance/bundle.tar.gz` | export, import, support bundle |

mod checks;
mod maintenance;
mod probes;
mod scope;

pub(crate) use probes::Probes;

pub(crate) use probes::{DEFAULT_TEST_WAIT, TestReport, Verdict};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use boxidr_config::Config;
use boxidr_store::settings;
use serde_json::json;

use crate::actions::Actions;
use crate::boxlink;
use crate::clock::Clock;
use crate::credentials::{self, Throttle, ct_eq};
use crate::error::SetupError;
use crate::forms;
use crate::http::{Method, Req, Resp, security_headers};
use crate::pages::{self, BoxView, Errors, Nav, Values};
use crate::route::{Page, SettingsPage};
use crate::session::{OAUTH_COOKIE, SESSION_COOKIE, Session, Sessions, StateProblem};
use crate::status::StatusSource;
use crate::tls::{Identity, SharedTlsConfig};

const STYLE_CSS: &str = include_str!("../static/style.css");
/// The Box page's copy button (external: the CSP forbids inline script).
const COPY_JS: &str = include_str!("../static/copy.js");

/// The one generic refusal for a wrong password, a wrong code, or a throttled address.
pub(crate) const LOGIN_REFUSED: &str =
    "That did not work. Check what you typed; after several failures wait a few minutes.";

/// Everything the routes share.
pub(crate) struct App {
    /// The store, the configuration and the Box calls (`crate::actions`).
    pub(crate) actions: Arc<Actions>,
    /// The test buttons' network work (`app/probes.rs`), on the same actions.
    pub(crate) probes: probes::Probes,
    pub(crate) status: Arc<dyn StatusSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) throttle: Mutex<Throttle>,
    /// Whether an admin password exists (first boot is over).
    pub(crate) claimed: AtomicBool,
    pub(crate) identity: RwLock<Identity>,
    pub(crate) tls: SharedTlsConfig,
    /// argv of the journal excerpt in the support bundle (empty: none).
    pub(crate) journal_command: Vec<String>,
    /// One support bundle is built at a time.
    pub(crate) bundle_lock: Mutex<()>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The session a request carries, if live.
struct Ctx {
    cookie: Option<String>,
    session: Option<Session>,
}

impl Ctx {
    fn admin(&self) -> Option<&Session> {
        self.session.as_ref().filter(|s| s.admin)
    }
}

impl App {
    /// Handles one request and adds the security headers.
    pub(crate) fn handle(&self, req: &Req) -> Resp {
        let mut resp = self.route(req);
        let box_origin = self.actions.config().box_api.authorize_url.origin();
        let origin = box_origin
            .is_tuple()
            .then(|| box_origin.ascii_serialization());
        // Only the Box pages load a script (the redirect URI's copy button).
        let scripts = req.page.is_some_and(Page::loads_script);
        resp.headers
            .extend(security_headers(origin.as_deref(), scripts));
        resp
    }

    pub(crate) fn current_config(&self) -> Config {
        self.actions.config().as_ref().clone()
    }

    pub(crate) fn fingerprint(&self) -> String {
        self.identity
            .read()
            .map(|i| i.fingerprint().to_owned())
            .unwrap_or_default()
    }

    /// The all-or-nothing save of a settings form ([`Actions::save`]), for the Maintenance
    /// import and the scope upload.
    pub(crate) fn save(&self, changes: forms::Changes) -> Result<(), SetupError> {
        self.actions.save(changes)
    }

    fn route(&self, req: &Req) -> Resp {
        if req.method == Method::Other {
            return Resp::text(405, "text/plain", "method not allowed")
                .with_header("Allow", "GET, HEAD, POST");
        }
        if let Some(page @ (Page::StyleCss | Page::CopyJs)) = req.page {
            return static_file(page);
        }
        let now = self.clock.now();
        let cookie = req.cookie(SESSION_COOKIE).map(str::to_owned);
        // The status page's own meta refresh is not the admin being active.
        let touch = req.query.get("auto").is_none_or(|v| v != "1");
        let session = cookie
            .as_deref()
            .and_then(|c| lock(&self.sessions).get(c, now, touch));
        let ctx = Ctx { cookie, session };

        if req.method == Method::Post {
            if let Some(refusal) = self.check_post(req, &ctx) {
                return refusal;
            }
        }
        let claimed = self.claimed.load(Ordering::SeqCst);
        let get = matches!(req.method, Method::Get | Method::Head);
        if !req.page.is_some_and(|p| p.before_login(claimed)) {
            if !claimed {
                return if get {
                    Resp::see_other("/claim")
                } else {
                    forbidden("Set the administrator password first.")
                };
            }
            // A scrape token reads the metrics and nothing else.
            if req.page == Some(Page::Metrics) && req.header("authorization").is_some() {
                return self.metrics_with_token(req);
            }
            if ctx.admin().is_none() {
                return match req.page {
                    Some(Page::StatusJson) => Resp::json(401, &json!({"error": "login required"})),
                    Some(Page::Metrics) => {
                        Resp::text(401, "text/plain; charset=utf-8", "login required\n")
                    }
                    _ if get => Resp::see_other("/login"),
                    _ => forbidden("Your session has ended. Log in again."),
                };
            }
        }
        let Some(page) = req.page else {
            return Resp::html(
                404,
                pages::message("Not found", "There is no such page.", Some(("/", "Home"))),
            );
        };
        match page {
            Page::StyleCss | Page::CopyJs => static_file(page),
            Page::ClaimForm => self.claim_form(&ctx, None),
            Page::Claim => self.claim(req, &ctx),
            Page::LoginForm => self.login_form(&ctx, None),
            Page::Login => self.login(req, &ctx),
            Page::OauthCallback => self.oauth_callback(req),
            Page::Home => Resp::see_other("/status"),
            Page::Logout => self.logout(&ctx),
            Page::Status => self.status_page(&ctx),
            Page::StatusJson => Resp::json(
                200,
                &crate::status::report_json(self.status.snapshot().as_ref()),
            ),
            Page::BoxSettings => self.box_page(req, &ctx, Values::new(), Errors::new(), None),
            Page::BoxApp => self.box_app(req, &ctx),
            Page::BoxConnect => self.box_connect(req, &ctx),
            Page::BoxCcg => self.box_ccg(req, &ctx),
            Page::BoxTest => self.box_test(req, &ctx),
            Page::InsightIdr | Page::Mapping | Page::Collection => self.settings_form(req, &ctx),
            Page::InsightIdrSave | Page::MappingSave | Page::CollectionSave => {
                self.settings_save(req, &ctx)
            }
            Page::Password => self.password_page(&ctx, None, req.query.contains_key("saved")),
            Page::PasswordChange => self.change_password(req, &ctx),
            Page::Certificate => self.certificate_page(req, &ctx, Errors::new()),
            Page::CertificateUpload => self.certificate_upload(req, &ctx),
            Page::InsightIdrTest => self.insightidr_test(req, &ctx),
            Page::CollectorTest => self.collector_test(req, &ctx),
            Page::LogSearchTest => self.log_search_test(req, &ctx),
            Page::MappingPreview => self.mapping_preview(req, &ctx),
            Page::ScopeUpload => self.scope_upload(req, &ctx),
            Page::ScopeClear => self.scope_clear(req, &ctx),
            Page::ScopeCsv => self.scope_download(),
            Page::Metrics => self.metrics(),
            Page::Maintenance => self.maintenance_page(req, &ctx, None, None),
            Page::ConfigExport => self.export_config(),
            Page::ConfigImport => self.import_config(req, &ctx),
            Page::MetricsToken => self.metrics_token(req, &ctx),
            Page::SupportBundle => self.support_bundle(req),
            Page::DeadLettersDownload => self.dead_letters_download(req),
            Page::DeadLettersRemove => self.dead_letters_remove(req, &ctx),
        }
    }

    /// Every POST: same Origin, a live session, and that session's CSRF token.
    fn check_post(&self, req: &Req, ctx: &Ctx) -> Option<Resp> {
        if !req.same_origin() {
            tracing::warn!(client = %req.client, path = %req.path, "Refused a cross-origin POST.");
            return Some(forbidden(
                "The request did not come from this page (Origin check).",
            ));
        }
        let form = req.form();
        let ok = match (&ctx.session, form.get("csrf")) {
            (Some(session), Some(token)) => ct_eq(token, &session.csrf),
            _ => false,
        };
        if ok {
            None
        } else {
            tracing::warn!(client = %req.client, path = %req.path, "Refused a POST without a valid CSRF token.");
            Some(forbidden(
                "This form has expired. Reload the page and try again.",
            ))
        }
    }

    fn nav<'a>(&self, session: &'a Session, current: &'a str) -> Nav<'a> {
        Nav {
            csrf: &session.csrf,
            current,
        }
    }

    /// The request's session, or a new anonymous one (its cookie is set on the response).
    fn session_or_new(&self, ctx: &Ctx) -> (Session, Option<String>) {
        match &ctx.session {
            Some(s) => (s.clone(), None),
            None => {
                let (id, s) = lock(&self.sessions).create(self.clock.now(), false);
                (s, Some(id))
            }
        }
    }

    fn with_new_cookie(resp: Resp, new: Option<String>) -> Resp {
        match new {
            Some(id) => resp.with_session_cookie(&id),
            None => resp,
        }
    }

    // ---- first boot and login ----

    fn claim_form(&self, ctx: &Ctx, error: Option<&str>) -> Resp {
        if self.claimed.load(Ordering::SeqCst) {
            return Resp::see_other("/login");
        }
        let (session, new) = self.session_or_new(ctx);
        let page = pages::claim(&session.csrf, &self.fingerprint(), error);
        Self::with_new_cookie(
            Resp::html(if error.is_some() { 400 } else { 200 }, page),
            new,
        )
    }

    fn claim(&self, req: &Req, ctx: &Ctx) -> Resp {
        if self.claimed.load(Ordering::SeqCst) {
            return Resp::see_other("/login");
        }
        let form = req.form();
        let ip = req.client.ip();
        let code = form.get("code").map(String::as_str).unwrap_or_default();
        let password = form.get("password").map(String::as_str).unwrap_or_default();
        let confirm = form.get("confirm").map(String::as_str).unwrap_or_default();
        if let Err(problem) = credentials::check_new_password(password, confirm) {
            return self.claim_form(ctx, Some(&problem.message()));
        }
        if !self.attempt_allowed(ip) {
            return self.claim_form(ctx, Some(LOGIN_REFUSED));
        }
        let result = self.actions.claim(code, password);
        match result {
            Ok(true) => {
                lock(&self.throttle).succeeded(ip);
                self.claimed.store(true, Ordering::SeqCst);
                tracing::info!(client = %req.client, "Administrator password set; the setup code is spent.");
                self.start_admin_session(ctx, "/box")
            }
            Ok(false) => {
                lock(&self.throttle).failed(ip, self.clock.now());
                tracing::warn!(client = %req.client, "Wrong setup code.");
                self.claim_form(ctx, Some(LOGIN_REFUSED))
            }
            Err(e) => internal(&e),
        }
    }

    fn attempt_allowed(&self, ip: IpAddr) -> bool {
        lock(&self.throttle).allowed(ip, self.clock.now())
    }

    /// Replaces the request's session with a new admin session (new id, new CSRF token).
    fn start_admin_session(&self, ctx: &Ctx, location: &str) -> Resp {
        let mut sessions = lock(&self.sessions);
        if let Some(old) = &ctx.cookie {
            sessions.remove(old);
        }
        let (id, _) = sessions.create(self.clock.now(), true);
        Resp::see_other(location).with_session_cookie(&id)
    }

    fn login_form(&self, ctx: &Ctx, error: Option<&str>) -> Resp {
        if ctx.admin().is_some() && error.is_none() {
            return Resp::see_other("/status");
        }
        let (session, new) = self.session_or_new(ctx);
        let page = pages::login(&session.csrf, error, None);
        Self::with_new_cookie(
            Resp::html(if error.is_some() { 401 } else { 200 }, page),
            new,
        )
    }

    fn login(&self, req: &Req, ctx: &Ctx) -> Resp {
        let ip = req.client.ip();
        let form = req.form();
        let password = form.get("password").map(String::as_str).unwrap_or_default();
        if !self.attempt_allowed(ip) {
            tracing::warn!(client = %req.client, "Login refused: address throttled.");
            return self.login_form(ctx, Some(LOGIN_REFUSED));
        }
        let verified = self.actions.password_matches(password);
        match verified {
            Ok(true) => {
                lock(&self.throttle).succeeded(ip);
                tracing::info!(client = %req.client, "Administrator logged in.");
                self.start_admin_session(ctx, "/status")
            }
            Ok(false) => {
                lock(&self.throttle).failed(ip, self.clock.now());
                tracing::warn!(client = %req.client, "Failed login.");
                self.login_form(ctx, Some(LOGIN_REFUSED))
            }
            Err(e) => internal(&e),
        }
    }

    fn logout(&self, ctx: &Ctx) -> Resp {
        if let Some(cookie) = &ctx.cookie {
            lock(&self.sessions).remove(cookie);
        }
        Resp::see_other("/login").clearing_session_cookie()
    }

    fn password_page(&self, ctx: &Ctx, error: Option<&str>, saved: bool) -> Resp {
        let Some(session) = ctx.admin() else {
            return Resp::see_other("/login");
        };
        let status = if error.is_some() { 400 } else { 200 };
        Resp::html(
            status,
            pages::password(self.nav(session, Page::Password.path()), error, saved),
        )
    }

    /// Needs the current password (throttled like a login); ends every other session.
    fn change_password(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let ip = req.client.ip();
        if let Err(problem) = credentials::check_new_password(field("new"), field("confirm")) {
            return self.password_page(ctx, Some(&problem.message()), false);
        }
        if !self.attempt_allowed(ip) {
            return self.password_page(ctx, Some(LOGIN_REFUSED), false);
        }
        let result = self.actions.change_password(field("current"), field("new"));
        match result {
            Ok(true) => {
                lock(&self.throttle).succeeded(ip);
                lock(&self.sessions).clear();
                tracing::info!(client = %req.client, "Administrator password changed; other sessions ended.");
                let (id, _) = lock(&self.sessions).create(self.clock.now(), true);
                Resp::see_other("/password?saved=1").with_session_cookie(&id)
            }
            Ok(false) => {
                lock(&self.throttle).failed(ip, self.clock.now());
                self.password_page(ctx, Some(LOGIN_REFUSED), false)
            }
            Err(e) => internal(&e),
        }
    }

    // ---- status ----

    fn status_page(&self, ctx: &Ctx) -> Resp {
        let Some(session) = ctx.admin() else {
            return Resp::see_other("/login");
        };
        let snapshot = self.status.snapshot();
        // The dashboard names the proxy when a path through it fails.
        let proxy = self
            .current_config()
            .network
            .proxy
            .clone()
            .map(|mut shown| {
                let _ = shown.set_password(None);
                let _ = shown.set_username("");
                shown.to_string()
            });
        Resp::html(
            200,
            pages::status(
                self.nav(session, Page::Status.path()),
                snapshot.as_ref(),
                proxy.as_deref(),
                std::time::SystemTime::now(),
                &self.fingerprint(),
            ),
        )
    }

    // ---- Box ----

    fn box_page(
        &self,
        req: &Req,
        ctx: &Ctx,
        values: Values,
        errors: Errors,
        notice: Option<(&str, String)>,
    ) -> Resp {
        self.box_page_full(req, ctx, values, errors, notice, None)
    }

    /// The Box page with the result of its "Test" button.
    fn box_page_with_test(&self, req: &Req, ctx: &Ctx, report: &probes::TestReport) -> Resp {
        let test = pages::test_report(report);
        self.box_page_full(req, ctx, Values::new(), Errors::new(), None, Some(test))
    }

    fn box_page_full(
        &self,
        req: &Req,
        ctx: &Ctx,
        mut values: Values,
        errors: Errors,
        notice: Option<(&str, String)>,
        test: Option<maud::Markup>,
    ) -> Resp {
        let Some(session) = ctx.admin() else {
            return Resp::see_other("/login");
        };
        let loaded = self.actions.box_settings();
        let (client_id, redirect, grant, account, secret_set) = match loaded {
            Ok(v) => v,
            Err(e) => return internal(&e),
        };
        values
            .entry("client_id".into())
            .or_insert_with(|| client_id.unwrap_or_default());
        values
            .entry("redirect_uri".into())
            .or_insert_with(|| redirect.unwrap_or_else(|| derived_redirect_uri(req)));
        if let Some(eid) = grant
            .as_ref()
            .and_then(|g| g.get("enterprise_id"))
            .and_then(|e| e.as_str())
        {
            values
                .entry("enterprise_id".into())
                .or_insert_with(|| eid.to_owned());
        }
        let notice = notice.or_else(|| match req.query.get("saved").map(String::as_str) {
            Some("app") => Some(("ok", "The Box app settings are saved.".into())),
            _ => None,
        });
        let view = BoxView {
            values,
            errors,
            secret_set,
            account: account.as_ref().filter(|a| !a.is_null()),
            grant: grant.as_ref().filter(|g| !g.is_null()),
            notice,
            test,
        };
        let status = if view.errors.is_empty() { 200 } else { 400 };
        Resp::html(
            status,
            pages::box_page(self.nav(session, Page::BoxSettings.path()), &view),
        )
    }

    fn box_app(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let secret_set = matches!(
            self.actions.secret_is_set(settings::BOX_CLIENT_SECRET),
            Ok(true)
        );
        match forms::box_app(&form, secret_set) {
            Ok(app) => {
                let saved = self.actions.save_box_app(&app);
                match saved {
                    Ok(()) => {
                        tracing::info!(client = %req.client, "Box app settings saved.");
                        Resp::see_other("/box?saved=app")
                    }
                    Err(e) => internal(&e),
                }
            }
            Err(errors) => {
                let values = forms::keep(&form, &["client_id", "redirect_uri"]);
                self.box_page(req, ctx, values, errors, None)
            }
        }
    }

    fn box_connect(&self, req: &Req, ctx: &Ctx) -> Resp {
        let config = self.current_config();
        let loaded = self.actions.box_app_and_redirect();
        let (creds, redirect) = match loaded {
            Ok(v) => v,
            Err(e) => return internal(&e),
        };
        let Some((client_id, secret)) = creds else {
            return self.box_page(
                req,
                ctx,
                Values::new(),
                Errors::new(),
                Some(("error", "Save the client ID and secret first.".into())),
            );
        };
        let redirect_uri = redirect.unwrap_or_else(|| derived_redirect_uri(req));
        let http = self.actions.box_http_blocking(&config);
        let auth = match boxlink::auth_client(&http, &config, client_id, secret) {
            Ok(a) => a,
            Err(e) => return internal(&e),
        };
        let Some(cookie) = &ctx.cookie else {
            return forbidden("Your session has ended. Log in again.");
        };
        let (binder, state) =
            lock(&self.sessions).begin_oauth(cookie, redirect_uri.clone(), self.clock.now());
        let url = auth.authorization_url(&redirect_uri, &state);
        tracing::info!(client = %req.client, "Sending the admin to Box's consent page.");
        Resp {
            status: 303,
            headers: vec![("Location".into(), url.to_string())],
            body: Vec::new(),
        }
        .with_header(
            "Set-Cookie",
            format!(
                "{OAUTH_COOKIE}={binder}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
                crate::session::OAUTH_STATE_TTL.as_secs()
            ),
        )
    }

    fn oauth_callback(&self, req: &Req) -> Resp {
        let clear_binder = |r: Resp| {
            r.with_header(
                "Set-Cookie",
                format!("{OAUTH_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
            )
        };
        let q = |k: &str| req.query.get(k).map(String::as_str);
        let checked = lock(&self.sessions).finish_oauth(
            req.cookie(OAUTH_COOKIE),
            q("state"),
            self.clock.now(),
        );
        if let Some(error) = q("error") {
            tracing::warn!(client = %req.client, error = %crate::status::bounded(error), "Box returned an error to the callback.");
            let text = boxlink::explain_callback_error(error);
            return clear_binder(Resp::html(
                400,
                pages::callback(false, "Box was not connected", &text, None),
            ));
        }
        let pending = match checked {
            Ok(p) => p,
            Err(problem) => {
                tracing::warn!(client = %req.client, ?problem, "Refused a Box callback.");
                return clear_binder(Resp::html(
                    400,
                    pages::callback(false, "Box was not connected", state_text(problem), None),
                ));
            }
        };
        let Some(code) = q("code").filter(|c| !c.is_empty() && c.len() <= 1024) else {
            return clear_binder(Resp::html(
                400,
                pages::callback(
                    false,
                    "Box was not connected",
                    "Box sent no authorization code. Click Connect to Box again.",
                    None,
                ),
            ));
        };
        let _ = pending.redirect_uri;
        let config = self.current_config();
        let outcome = self.actions.connect_with_code(code, &config);
        match outcome {
            Ok(Ok(account)) => {
                tracing::info!(client = %req.client, "Box connected with the admin's consent.");
                clear_binder(Resp::html(
                    200,
                    pages::callback(
                        true,
                        "Box is connected",
                        "The appliance is now connected to Box.",
                        account.as_ref(),
                    ),
                ))
            }
            Ok(Err(text)) => clear_binder(Resp::html(
                400,
                pages::callback(false, "Box was not connected", &text, None),
            )),
            Err(e) => clear_binder(internal(&e)),
        }
    }

    fn box_ccg(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let enterprise_id = form
            .get("enterprise_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        if enterprise_id.is_empty()
            || enterprise_id.len() > 20
            || !enterprise_id.bytes().all(|b| b.is_ascii_digit())
        {
            let mut errors = Errors::new();
            errors.insert(
                "enterprise_id".into(),
                "The enterprise ID is a number: Box Admin Console → Account & Billing.".into(),
            );
            return self.box_page(
                req,
                ctx,
                forms::keep(&form, &["enterprise_id"]),
                errors,
                None,
            );
        }
        let config = self.current_config();
        let outcome = self
            .actions
            .connect_with_client_credentials(&enterprise_id, &config);
        match outcome {
            Ok(Ok(_)) => self.box_page(
                req,
                ctx,
                Values::new(),
                Errors::new(),
                Some(("ok", "Box is connected with client credentials.".into())),
            ),
            Ok(Err(text)) => self.box_page(
                req,
                ctx,
                forms::keep(&form, &["enterprise_id"]),
                Errors::new(),
                Some(("error", text)),
            ),
            Err(e) => internal(&e),
        }
    }

    // ---- TOML settings ----

    fn settings_form(&self, req: &Req, ctx: &Ctx) -> Resp {
        let notice = match req.query.get("saved").map(String::as_str) {
            Some("scope") => Some(("ok", "The list of monitored users is saved.".to_owned())),
            Some("everyone") => Some((
                "ok",
                "Everyone in the enterprise is monitored again.".to_owned(),
            )),
            Some(_) => Some((
                "ok",
                "Saved. The appliance uses the new settings now.".to_owned(),
            )),
            None => None,
        };
        self.render_settings(
            req,
            ctx,
            SettingsExtras {
                notice,
                ..SettingsExtras::default()
            },
        )
    }

    fn render_settings(&self, req: &Req, ctx: &Ctx, extras: SettingsExtras) -> Resp {
        let SettingsExtras {
            path,
            typed,
            errors,
            notice,
            preview,
            scope_problems,
            scope_pasted,
            test,
        } = extras;
        let Some(page) = path.or_else(|| req.page.and_then(Page::settings_page)) else {
            return Resp::see_other("/status");
        };
        let path = page.path();
        let Some(session) = ctx.admin() else {
            return Resp::see_other("/login");
        };
        let config = self.current_config();
        let secrets = self.actions.secrets_set();
        let secrets = match secrets {
            Ok(v) => v,
            Err(e) => return internal(&e),
        };
        let values = typed.unwrap_or_else(|| forms::values_from(page, &config));
        let (title, intro, fields) = pages::page_for(page, &values, &errors, secrets);
        let buttons = match page {
            SettingsPage::InsightIdr => maud::html! {
                button.secondary type="submit" formaction="/insightidr/test-collector" { "Send test event" }
                button.secondary type="submit" formaction="/insightidr/test-log-search" { "Send test record" }
                button.secondary type="submit" formaction="/insightidr/test" { "Test connection" }
            },
            SettingsPage::Mapping => maud::html! {
                button.secondary type="submit" formaction="/mapping/preview" { "Preview" }
            },
            SettingsPage::Collection => maud::html! {},
        };
        let after = match page {
            SettingsPage::Collection => {
                pages::scope_section(&session.csrf, &config.scope, &scope_problems, &scope_pasted)
            }
            // Without a preview of the typed values, the saved settings' own.
            SettingsPage::Mapping => match preview {
                Some(preview) => preview,
                None => match self.preview_rows(&config.mapping) {
                    Ok(rows) => pages::preview(&rows, true),
                    Err(e) => {
                        tracing::warn!(error = %e, "No account preview: the user directory cannot be read.");
                        pages::banner(
                            "warn",
                            "The preview is not available: the stored Box users cannot be read.",
                        )
                    }
                },
            },
            SettingsPage::InsightIdr => maud::html! {},
        };
        let status = if errors.is_empty() && scope_problems.is_empty() {
            200
        } else {
            400
        };
        Resp::html(
            status,
            pages::settings(
                self.nav(session, path),
                pages::SettingsView {
                    title,
                    action: path,
                    intro,
                    notice,
                    errors: &errors,
                    fields,
                    buttons,
                    after,
                    multipart: page == SettingsPage::InsightIdr,
                    test,
                },
            ),
        )
    }

    fn settings_save(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = match self.form_with_uploads(req) {
            Ok(form) => form,
            Err(errors) => {
                return self.render_settings(
                    req,
                    ctx,
                    SettingsExtras::errors(Some(forms::typed(&req.form())), errors),
                );
            }
        };
        let Some(page) = req.page.and_then(Page::settings_page) else {
            return Resp::see_other("/status");
        };
        let base = self.current_config();
        let parsed = forms::apply(page, &base, &form);
        let changes = match parsed {
            Ok(v) => v,
            Err(errors) => {
                return self.render_settings(
                    req,
                    ctx,
                    SettingsExtras::errors(Some(forms::typed(&form)), errors),
                );
            }
        };
        match self.actions.save(changes) {
            Ok(()) => {
                tracing::info!(client = %req.client, page = %page.path(), "Settings saved.");
                Resp::see_other(&format!("{}?saved=1", page.path()))
            }
            Err(e) => {
                let mut errors = Errors::new();
                errors.insert(
                    "_form".into(),
                    format!("Saving failed, nothing was changed: {e}"),
                );
                self.render_settings(
                    req,
                    ctx,
                    SettingsExtras::errors(Some(forms::typed(&form)), errors),
                )
            }
        }
    }

    // ---- certificate ----

    fn certificate_page(&self, req: &Req, ctx: &Ctx, errors: Errors) -> Resp {
        let Some(session) = ctx.admin() else {
            return Resp::see_other("/login");
        };
        let (fingerprint, uploaded) = self
            .identity
            .read()
            .map(|i| (i.fingerprint().to_owned(), i.uploaded()))
            .unwrap_or_default();
        let notice = req
            .query
            .contains_key("saved")
            .then_some("The new certificate is in use for new connections.");
        let status = if errors.is_empty() { 200 } else { 400 };
        Resp::html(
            status,
            pages::certificate(
                self.nav(session, Page::Certificate.path()),
                &fingerprint,
                uploaded,
                notice,
                &errors,
            ),
        )
    }

    fn certificate_upload(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = match self.form_with_uploads(req) {
            Ok(form) => form,
            Err(errors) => return self.certificate_page(req, ctx, errors),
        };
        let cert = form.get("cert").map(String::as_str).unwrap_or_default();
        let key = form.get("key").map(String::as_str).unwrap_or_default();
        let identity = match Identity::from_pem(cert, key, true) {
            Ok(identity) => identity,
            Err(e) => {
                let mut errors = Errors::new();
                errors.insert("cert".into(), e.to_string());
                return self.certificate_page(req, ctx, errors);
            }
        };
        match self.install_identity(identity) {
            Ok(()) => {
                tracing::info!(client = %req.client, "Admin uploaded a certificate.");
                Resp::see_other("/certificate?saved=1")
            }
            Err(e) => internal(&e),
        }
    }

    /// Stores an identity and serves it to new connections.
    pub(crate) fn install_identity(&self, identity: Identity) -> Result<(), SetupError> {
        let config = identity.server_config()?;
        self.actions.save_identity(&identity)?;
        if let Ok(mut tls) = self.tls.write() {
            *tls = config;
        }
        if let Ok(mut current) = self.identity.write() {
            *current = identity;
        }
        Ok(())
    }
}

/// File inputs whose content stands in for a text field: (file input, text field).
const UPLOAD_FIELDS: &[(&str, &str)] = &[
    ("collector_ca_upload", "collector_ca_pem"),
    ("box_ca_upload", "box_ca_pem"),
    ("cert_file", "cert"),
    ("key_file", "key"),
];

impl App {
    /// The request's text fields, with each uploaded PEM file (see [`UPLOAD_FIELDS`]) put in
    /// place of its paste field. A file that is not text is a field error.
    fn form_with_uploads(&self, req: &Req) -> Result<HashMap<String, String>, Errors> {
        let mut form = req.form();
        let mut errors = Errors::new();
        for (file, field) in UPLOAD_FIELDS {
            match req.upload_text(file) {
                Ok(Some(text)) => {
                    form.insert((*field).to_owned(), text);
                }
                Ok(None) => {}
                Err(e) => {
                    errors.insert((*field).to_owned(), e);
                }
            }
        }
        // Pasted or uploaded PEM from Windows arrives with CRLF: store plain LF.
        for (_, field) in UPLOAD_FIELDS {
            if let Some(text) = form.get_mut(*field) {
                *text = forms::normalise_line_endings(text);
            }
        }
        if errors.is_empty() {
            Ok(form)
        } else {
            Err(errors)
        }
    }
}

/// What a settings page shows besides the stored values.
#[derive(Default)]
struct SettingsExtras {
    /// The settings page to render when the request's route is not it (preview, tests).
    path: Option<SettingsPage>,
    /// Values as typed, instead of the stored ones.
    typed: Option<Values>,
    errors: Errors,
    notice: Option<(&'static str, String)>,
    /// The Accounts page's preview section.
    preview: Option<maud::Markup>,
    /// Row errors of a refused scoping upload.
    scope_problems: Vec<String>,
    /// The pasted scoping CSV, shown again after an error.
    scope_pasted: String,
    /// The result of a test button.
    test: Option<maud::Markup>,
}

impl SettingsExtras {
    fn errors(typed: Option<Values>, errors: Errors) -> Self {
        Self {
            typed,
            errors,
            ..Self::default()
        }
    }
}

fn state_text(problem: StateProblem) -> &'static str {
    match problem {
        StateProblem::NotStarted => {
            "This Box answer was not started from this browser, or it is too old. Nothing was \
             stored. Open the Box connection page and click Connect to Box again."
        }
        StateProblem::SessionEnded => {
            "Your session on this page ended while you were at Box. Nothing was stored. Log in \
             and click Connect to Box again."
        }
        StateProblem::Missing => {
            "Box's answer carries no state value, so it cannot be trusted. Nothing was stored. \
             Click Connect to Box again."
        }
        StateProblem::Expired => {
            "More than 10 minutes passed since you clicked Connect to Box. Nothing was stored. \
             Click Connect to Box again."
        }
        StateProblem::Reused => {
            "This Box answer was already used once. Nothing more was stored. If Box is not \
             connected, click Connect to Box again."
        }
        StateProblem::Mismatch => {
            "Box's answer does not belong to the request this browser made (the state value \
             differs). It may be a forged link. Nothing was stored. Click Connect to Box again."
        }
    }
}

/// `https://<Host the admin used>/oauth/callback`.
fn derived_redirect_uri(req: &Req) -> String {
    format!(
        "https://{}/oauth/callback",
        req.host().unwrap_or("boxidr.local")
    )
}

/// The stylesheet or the copy button's script.
fn static_file(page: Page) -> Resp {
    if page == Page::CopyJs {
        Resp::text(200, "text/javascript; charset=utf-8", COPY_JS)
    } else {
        Resp::text(200, "text/css; charset=utf-8", STYLE_CSS)
    }
}

fn forbidden(text: &str) -> Resp {
    Resp::html(
        403,
        pages::message("Refused", text, Some(("/", "Back to the setup page"))),
    )
}

fn internal(error: &dyn std::fmt::Display) -> Resp {
    tracing::error!(error = %error, "Setup page request failed.");
    Resp::html(
        500,
        pages::message(
            "Something went wrong",
            "The appliance could not complete the request. Nothing was half-saved; try again, \
             and check the status page if it persists.",
            Some(("/", "Back")),
        ),
    )
}
