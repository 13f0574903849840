//! Harness: a store in a temp dir, the Box simulator, the setup page on loopback, and a
//! "browser" (reqwest with a hand-kept cookie jar, no redirects followed) that trusts only the
//! page's own certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use box_sim::{BoxSim, SimConfig, SimHandle};
use boxidr_config::Config;
use boxidr_setup::{BoxConnectedHook, Clock, SetupOptions, SetupServer, StatusSource};
use boxidr_store::settings::{self, SecretKey};
use boxidr_store::{Store, StoreOptions};
use serde_json::Value;
use tokio::sync::watch;

/// A clock tests can move forward.
#[derive(Debug, Default)]
pub struct TestClock {
    offset: Mutex<Duration>,
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        Instant::now() + *self.offset.lock().unwrap()
    }
}

/// A status source returning what the test sets: no report while it holds `null` or `{}`,
/// else a healthy appliance's report with the set JSON laid over it
/// ([`boxidr_health::scenarios::report`]).
#[derive(Debug, Default)]
pub struct FixedStatus(pub Mutex<Value>);

impl StatusSource for FixedStatus {
    fn snapshot(&self) -> Option<boxidr_health::StatusReport> {
        let patch = self.0.lock().unwrap().clone();
        if patch.is_null() || patch.as_object().is_some_and(serde_json::Map::is_empty) {
            return None;
        }
        Some(boxidr_health::scenarios::report(patch).expect("the test's status is a report"))
    }
}

pub const PASSWORD: &str = "a long admin passphrase";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub sim: SimHandle,
    pub server: Option<SetupServer>,
    pub clock: Arc<TestClock>,
    pub status: Arc<FixedStatus>,
    pub config_rx: watch::Receiver<Arc<Config>>,
    pub config_path: std::path::PathBuf,
    pub connected: Arc<Mutex<Vec<String>>>,
    pub code: Option<String>,
    pub base: String,
    cert_pem: String,
}

/// One browser: its own cookie jar.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub origin: String,
    pub jar: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The CSRF token in the page's first form.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_owned()
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(SimConfig {
            redirect_uris: vec!["https://127.0.0.1/oauth/callback".into()],
            backlog: 10,
            users: 5,
            ..SimConfig::default()
        })
        .await
    }

    pub async fn start_with(sim_config: SimConfig) -> Self {
        Self::start_customised(sim_config, |_, _| {}).await
    }

    /// Like [`Harness::start_with`], letting the test adjust the page's options.
    pub async fn start_customised(
        sim_config: SimConfig,
        customise: impl FnOnce(&mut SetupOptions, &std::path::Path),
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path().join("boxidr.redb")))
            .await
            .unwrap();
        let sim = BoxSim::start(sim_config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.setup.listen = "127.0.0.1:0".parse().unwrap();
        config.box_api.authorize_url = sim.authorize_url().parse().unwrap();
        config.box_api.token_base = sim.token_base().parse().unwrap();
        config.box_api.api_base = sim.api_base().parse().unwrap();
        let config_path = dir.path().join("boxidr.toml");
        boxidr_setup::write_atomically(&config_path, &config).unwrap();
        let (tx, config_rx) = watch::channel(Arc::new(config));
        let clock = Arc::new(TestClock::default());
        // No report until a test sets one (the collector has not reported yet).
        let status = Arc::new(FixedStatus::default());
        let connected = Arc::new(Mutex::new(Vec::new()));
        let seen = connected.clone();
        let hook: BoxConnectedHook = Arc::new(move |c| {
            seen.lock().unwrap().push(format!("{:?}", c.grant));
        });
        let mut options = SetupOptions::new(
            store.clone(),
            tokio::runtime::Handle::current(),
            &config_path,
            tx,
            status.clone(),
        );
        options.clock = clock.clone();
        options.on_box_connected = Some(hook);
        options.http_redirect = Some("127.0.0.1:0".parse().unwrap());
        customise(&mut options, dir.path());
        let server = SetupServer::start(options).await.unwrap();
        let code = server.startup_code().map(|c| c.as_str().to_owned());
        let base = format!("https://127.0.0.1:{}", server.local_addr().port());
        let cert = store.get_secret(settings::TLS_CERT).await.unwrap().unwrap();
        let cert_pem = cert.expose().to_owned();
        Self {
            dir,
            store,
            sim,
            server: Some(server),
            clock,
            status,
            config_rx,
            config_path,
            connected,
            code,
            base,
            cert_pem,
        }
    }

    pub fn server(&self) -> &SetupServer {
        self.server.as_ref().unwrap()
    }

    /// A new browser trusting the page's current certificate.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base, &self.cert_pem)
    }

    /// Re-reads the certificate (after a reset or upload).
    pub async fn reload_cert(&mut self) {
        let cert = self
            .store
            .get_secret(settings::TLS_CERT)
            .await
            .unwrap()
            .unwrap();
        self.cert_pem = cert.expose().to_owned();
    }

    /// First boot with the startup code; returns the logged-in browser.
    pub async fn claimed_browser(&self) -> Browser {
        let mut b = self.browser();
        let page = b.get("/claim").await;
        let csrf = page.csrf();
        let code = self.code.clone().unwrap();
        let done = b
            .post(
                "/claim",
                &[
                    ("csrf", &csrf),
                    ("code", &code),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        b
    }

    /// A second browser logged in with the password.
    pub async fn login(&self) -> Browser {
        let mut b = self.browser();
        let page = b.get("/login").await;
        let csrf = page.csrf();
        let done = b
            .post("/login", &[("csrf", &csrf), ("password", PASSWORD)])
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        b
    }

    pub async fn secret(&self, key: SecretKey) -> Option<String> {
        self.store
            .get_secret(key)
            .await
            .unwrap()
            .map(|s| s.expose().to_owned())
    }

    pub async fn stop(mut self) {
        let server = self.server.take().unwrap();
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .unwrap();
    }
}

impl Browser {
    pub fn new(base: &str, cert_pem: &str) -> Self {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            base: base.to_owned(),
            origin: base.to_owned(),
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.absorb(&headers);
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    /// GET of a path or a full URL on this page.
    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.client.get(url);
        if !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// GET with extra headers and without this browser's cookies (a scraper, not a browser).
    pub async fn get_as_tool(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// POST of a form with this page's Origin.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.origin.clone();
        self.post_with(path, form, Some(&origin)).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        self.post_headers(path, form, &headers).await
    }

    /// POST of a form with exactly these extra headers (plus cookies).
    pub async fn post_headers(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// POST of a `multipart/form-data` form (text fields and files: name, file name, bytes)
    /// with this page's Origin.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        for (name, file_name, bytes) in files {
            let part =
                reqwest::multipart::Part::bytes(bytes.to_vec()).file_name((*file_name).to_owned());
            form = form.part((*name).to_owned(), part);
        }
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .multipart(form)
            .header("origin", self.origin.clone());
        if !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// GET of a download: status, headers and the raw bytes.
    pub async fn get_bytes(&mut self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.absorb(&headers);
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    pub fn session(&self) -> Option<String> {
        self.jar.get("__Host-boxidr").cloned()
    }
}

/// Saves the simulator's app on the Box page and clicks "Connect to Box"; returns Box's
/// authorize URL the browser is sent to.
pub async fn start_connect(h: &Harness, b: &mut Browser) -> String {
    let page = b.get("/box").await;
    let csrf = page.csrf();
    let redirect = format!("{}/oauth/callback", b.base);
    assert!(
        page.body.contains(&redirect),
        "redirect URI derived from the Host"
    );
    let cfg = h.sim.config().clone();
    let r = b
        .post(
            "/box/app",
            &[
                ("csrf", &csrf),
                ("client_id", &cfg.client_id),
                ("client_secret", &cfg.client_secret),
                ("redirect_uri", &redirect),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get("/box").await;
    let r = b.post("/box/connect", &[("csrf", &page.csrf())]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.location().unwrap();
    assert!(location.starts_with(&h.sim.authorize_url()), "{location}");
    location
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Drives Box's consent page like a person: loads it, then presses Allow or Deny.
/// Returns where Box redirects the browser (our callback URL with code/state or error).
pub async fn consent(authorize_url: &str, allow: bool) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    let mut fields: Vec<(String, String)> = Vec::new();
    for part in html.split("<input ").skip(1) {
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            let start = part.find(&marker)? + marker.len();
            let end = part[start..].find('"')?;
            Some(unescape(&part[start..start + end]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            fields.push((n, v));
        }
    }
    assert!(html.contains("consent_accept_button"));
    fields.push(("action".into(), if allow { "allow" } else { "deny" }.into()));
    let action = {
        let marker = "action=\"";
        let start = html.find(marker).unwrap() + marker.len();
        let end = html[start..].find('"').unwrap();
        html[start..start + end].to_owned()
    };
    let url = reqwest::Url::parse(authorize_url)
        .unwrap()
        .join(&action)
        .unwrap();
    let r = client.post(url).form(&fields).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The callback URL with its `state` replaced (or removed with `None`).
pub fn with_state(callback: &str, state: Option<&str>) -> String {
    let mut url = reqwest::Url::parse(callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "state")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    url.to_string()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
