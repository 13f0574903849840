//! The setup page in a real browser (issue 5, "Done when" item 1): Debian's headless Chromium,
//! driven through chromedriver, sets up the real `boxidr run` between the Box and InsightIDR
//! simulators on loopback. First-boot code from the console → password → Box app → Box's
//! consent page → connected account → Box "Test" → InsightIDR destination (Collector with an
//! uploaded CA, Log Search region, URL and token) → "Send test event" and "Send test record" →
//! default domain → the status page shows events collected and delivered, and the InsightIDR
//! simulator has them (and each test record once).
//!
//! Every page visited is saved as `target/artefacts/browser/NN-name.png`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian `chromium`, `chromium-driver`;
//! `tools/test-all.sh` installs them). `BOXIDR_SKIP_BROWSER=1` skips the test (the aarch64 run
//! under qemu-user sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step should panic loudly

mod common;

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Destination, Rig, terminate};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const MISSING: &str = "install chromium and chromium-driver, or run bash tools/test-all.sh";
const PASSWORD: &str = "correct horse battery staple";
/// Longest wait for one page or one browser step (qemu and a loaded CI machine are slow).
const STEP: Duration = Duration::from_secs(60);
/// Longest wait for events to show as collected and delivered on the status page.
const FLOWING: Duration = Duration::from_secs(180);

/// chromedriver on a free loopback port, killed on drop.
struct ChromeDriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl ChromeDriver {
    fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} ({e}): {MISSING}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// A new headless Chromium session (retried until chromedriver listens).
    async fn session(&self, profile: &Path) -> Client {
        let capabilities = json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let deadline = Instant::now() + STEP;
        loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) if Instant::now() > deadline => panic!(
                    "no browser session from chromedriver at {}: {e}\n{}",
                    self.url,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `boxidr run`, stopped with SIGTERM on drop if the test did not stop it.
struct Service(Option<Child>);

impl Service {
    fn stop(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.0.take().unwrap())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = terminate(&mut child);
        }
    }
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else the one this test binary is in
/// (`<target>/debug/deps/browser-…`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return dir;
        }
        // Relative to the workspace root, where cargo resolves it.
        return Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent()?.parent())
        .map(Path::to_path_buf)
        .expect("the test binary lies in <target>/<profile>/deps")
}

/// The browser plus what the test saw: numbered screenshots and every page source.
struct Tour {
    c: Client,
    base: String,
    shots: PathBuf,
    taken: Vec<PathBuf>,
    sources: Vec<(String, String)>,
}

impl Tour {
    /// Saves a full-page screenshot as `NN-name.png` and keeps the page source.
    async fn shot(&mut self, name: &str) {
        let url = self.c.current_url().await.unwrap().to_string();
        let source = self.c.source().await.unwrap();
        // Grow the window to the page so the screenshot shows all of it, then restore it.
        let height = self
            .c
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1000);
        let grow = height > 1000;
        if grow {
            let tall = u32::try_from(height.min(6000)).unwrap() + 140;
            self.c.set_window_size(1280, tall).await.unwrap();
        }
        let png = self.c.screenshot().await.unwrap();
        if grow {
            self.c.set_window_size(1280, 1000).await.unwrap();
        }
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let path = self
            .shots
            .join(format!("{:02}-{name}.png", self.taken.len() + 1));
        std::fs::write(&path, png).unwrap();
        self.taken.push(path);
        self.sources.push((url, source));
    }

    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    /// Waits until the page's path is `path`.
    async fn wait_path(&self, path: &str) {
        self.wait_url(path, |url| url.path() == path).await;
    }

    /// Waits until the browser has left the page `path`.
    async fn wait_left(&self, path: &str) {
        let what = format!("another page than {path}");
        self.wait_url(&what, |url| url.path() != path).await;
    }

    async fn wait_url(&self, what: &str, ready: impl Fn(&url::Url) -> bool) {
        let deadline = Instant::now() + STEP;
        loop {
            let url = self.c.current_url().await.unwrap();
            if ready(&url) {
                return;
            }
            if Instant::now() > deadline {
                let png = self.c.screenshot().await.unwrap_or_default();
                let failed = self.shots.join("failed.png");
                std::fs::write(&failed, png).unwrap();
                panic!(
                    "waited {STEP:?} for {what}; the browser shows {url} ({}):\n{}",
                    failed.display(),
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        match self
            .c
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(selector))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no {selector} on {}: {e}", self.path().await),
        }
    }

    /// Replaces the value of the input or textarea `#id`.
    async fn fill(&self, id: &str, text: &str) {
        let field = self.css(&format!("#{id}")).await;
        field.clear().await.unwrap();
        if !text.is_empty() {
            field.send_keys(text).await.unwrap();
        }
        assert_eq!(
            field.prop("value").await.unwrap().unwrap_or_default(),
            text,
            "#{id} holds what was typed"
        );
    }

    /// Ticks the checkbox `#id` if it is not ticked.
    async fn tick(&self, id: &str) {
        let box_ = self.css(&format!("#{id}")).await;
        if !box_.is_selected().await.unwrap() {
            box_.click().await.unwrap();
        }
        assert!(box_.is_selected().await.unwrap(), "#{id} is ticked");
    }

    /// Clicks the submit button of the form posting to `action`.
    async fn submit(&self, action: &str) {
        self.css(&format!("form[action='{action}'] button[type='submit']"))
            .await
            .click()
            .await
            .unwrap();
    }

    /// Clicks the button that submits its form to `formaction`, waits for the answer page
    /// and returns the test result shown on it (`#test-result`) with its verdict.
    async fn test_button(&self, formaction: &str) -> (String, String) {
        self.css(&format!("button[formaction='{formaction}']"))
            .await
            .click()
            .await
            .unwrap();
        self.wait_path(formaction).await;
        self.test_result().await
    }

    /// The shown test result's text and `data-verdict`.
    async fn test_result(&self) -> (String, String) {
        let result = self.css("#test-result").await;
        let text = result.text().await.unwrap();
        let verdict = result
            .attr("data-verdict")
            .await
            .unwrap()
            .unwrap_or_default();
        (text, verdict)
    }

    /// The page's text. A page that is being replaced (a form just submitted, a redirect)
    /// can make the body found a moment ago stale: read the new one.
    async fn text(&self) -> String {
        let mut attempts = 0;
        loop {
            match self.css("body").await.text().await {
                Ok(text) => return text,
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("page changed while reading it ({e}); reading again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot read the page on {}: {e}", self.path().await),
            }
        }
    }

    /// The text of the status page's cell at `path` (nested `th` → `td` tables).
    /// The dashboard's raw value for a snapshot path (`data-key` = the path, dot-separated).
    async fn status_cell(&self, path: &[&str]) -> Option<String> {
        let css = format!("[data-key='{}']", path.join("."));
        let cell = self.c.find(Locator::Css(&css)).await.ok()?;
        Some(cell.attr("data-value").await.ok()??.trim().to_owned())
    }

    async fn status_number(&self, path: &[&str]) -> u64 {
        self.status_cell(path)
            .await
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    }
}

/// Polls `check` until it yields a value; panics naming `what` after `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The value of `key=` on the console line containing `message` (tracing's plain format).
fn logged(log: &str, message: &str, key: &str) -> Option<String> {
    let marker = format!(" {key}=");
    log.lines()
        .filter(|l| l.contains(message))
        .find_map(|line| {
            let start = line.find(&marker)? + marker.len();
            let value = line[start..].split_whitespace().next()?;
            Some(value.trim_matches('"').to_owned())
        })
}

/// From first boot to events flowing, in Chromium: every step as an admin would do it, every
/// page saved as a screenshot, no secret on any page, and the events really at InsightIDR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_in_a_real_browser() {
    if std::env::var_os("BOXIDR_SKIP_BROWSER").is_some_and(|v| v == "1") {
        println!("skipped: BOXIDR_SKIP_BROWSER=1");
        return;
    }
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(Path::new(tool).exists(), "{tool} is missing: {MISSING}");
    }
    let started = Instant::now();
    let shots = target_dir().join("artefacts").join("browser");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let box_config = box_sim::SimConfig {
        // Box accepts any port on a loopback redirect URI (RFC 8252), like the real one.
        redirect_uris: vec!["https://127.0.0.1/oauth/callback".into()],
        rate: 2.0,
        backlog: 100,
        users: 20,
        ..box_sim::SimConfig::default()
    };
    let rig = Rig::new(box_config, Destination::SetupPage).await;
    let mut service = Service(Some(rig.start(0)));
    let log_path = rig.log_path(0);

    // The console shows the setup page's address, its certificate and the one-time code.
    let (url, fingerprint, code) = poll("the setup code on the console", STEP, || async {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let url = logged(&log, "Setup page listening", "url")?;
        let fingerprint = logged(&log, "Setup page listening", "fingerprint")?;
        let code = logged(&log, "Setup code", "code")?;
        Some((url, fingerprint, code))
    })
    .await;
    let base = url.trim_end_matches('/').to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    // The browser's own directory: chromedriver's log (it records typed keys, so it stays
    // apart from the service's console logs) and a fresh profile.
    let browser_dir = tempfile::tempdir().unwrap();
    let driver = ChromeDriver::start(browser_dir.path());
    let profile = browser_dir.path().join("profile");
    let c = driver.session(&profile).await;
    let mut t = Tour {
        c,
        base: base.clone(),
        shots,
        taken: Vec::new(),
        sources: Vec::new(),
    };

    // First boot: every address leads to the claim page, which shows the fingerprint.
    t.goto("/").await;
    t.wait_path("/claim").await;
    t.shot("claim").await;
    assert!(
        t.text().await.contains(&fingerprint),
        "claim page shows the fingerprint"
    );
    t.fill("code", &code).await;
    t.fill("password", PASSWORD).await;
    t.fill("confirm", PASSWORD).await;
    t.submit("/claim").await;
    t.wait_left("/claim").await;
    t.shot("signed-in").await;
    assert!(t.text().await.contains("Log out"), "signed in");

    // Box: the app, then the grant on Box's consent page.
    let sim = rig.box_sim.config().clone();
    t.goto("/box").await;
    t.wait_path("/box").await;
    t.shot("box-not-connected").await;
    assert!(t.text().await.contains("Box is not connected yet."));
    let redirect = t
        .css("#redirect_uri")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(
        redirect,
        format!("{base}/oauth/callback"),
        "redirect URI derived from the address in the browser"
    );
    t.fill("client_id", &sim.client_id).await;
    t.fill("client_secret", &sim.client_secret).await;
    t.submit("/box/app").await;
    poll("the Box app saved", STEP, || async {
        t.text()
            .await
            .contains("The Box app settings are saved.")
            .then_some(())
    })
    .await;
    t.shot("box-app-saved").await;
    let label = t
        .css("label[for='client_secret']")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        label.contains("set") && !label.contains("not set"),
        "{label}"
    );

    t.submit("/box/connect").await;
    let authorize = rig.box_sim.authorize_url();
    poll("Box's consent page", STEP, || async {
        let url = t.c.current_url().await.ok()?;
        url.as_str().starts_with(&authorize).then_some(())
    })
    .await;
    t.css("#consent_accept_button").await;
    t.shot("box-consent").await;
    let (_, login) = rig.box_sim.authorizing_user();
    assert!(
        t.text().await.contains(&login),
        "Box asks the admin {login}"
    );
    t.css("#consent_accept_button").await.click().await.unwrap();
    t.wait_path("/oauth/callback").await;
    t.shot("box-connected").await;
    let text = t.text().await;
    assert!(text.contains("Box is connected"), "{text}");
    assert!(
        text.contains(&login),
        "the callback shows the admin {login}"
    );
    t.c.find(Locator::LinkText("Back to the Box connection page"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    t.wait_path("/box").await;
    t.shot("box-account").await;
    let text = t.text().await;
    assert!(text.contains(&login), "{text}");
    assert!(text.contains("OAuth 2.0 (admin consent)"), "{text}");

    // Box "Test": token, admin role, events, users (groups not in the scope: not run).
    t.submit("/box/test").await;
    t.wait_path("/box/test").await;
    let (text, verdict) = t.test_result().await;
    t.shot("box-test").await;
    assert_eq!(verdict, "ok", "{text}");
    assert!(text.contains("Test passed."), "{text}");
    assert!(text.contains("Readable on admin_logs_streaming"), "{text}");

    // InsightIDR: Collector with the simulator's CA file uploaded, Log Search region and token.
    let token = rig.idr_sim.config().tokens[0].clone();
    let ca_pem = std::fs::read_to_string(&rig.ca).unwrap();
    t.goto("/insightidr").await;
    t.wait_path("/insightidr").await;
    t.shot("insightidr-empty").await;
    t.tick("collector_enabled").await;
    t.fill("collector_host", "127.0.0.1").await;
    t.fill("collector_port", &rig.idr_sim.uef_addr().port().to_string())
        .await;
    t.fill("collector_ca_file", "").await;
    // The CA file goes through the page's file upload, as an admin would pick Rapid7CA.pem.
    t.css("#collector_ca_upload")
        .await
        .send_keys(&rig.ca.display().to_string())
        .await
        .unwrap();
    t.tick("log_search_enabled").await;
    t.css("#region").await.select_by_value("us").await.unwrap();
    t.fill("log_search_token", &token).await;
    t.fill("log_search_base_url", &rig.idr_sim.logsearch_base())
        .await;
    t.submit("/insightidr").await;
    poll("the InsightIDR settings saved", STEP, || async {
        (t.c.current_url().await.ok()?.query() == Some("saved=1")).then_some(())
    })
    .await;
    t.shot("insightidr-saved").await;
    let label = t
        .css("label[for='log_search_token']")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        label.contains("set") && !label.contains("not set"),
        "{label}"
    );
    let ca_file = t
        .css("#collector_ca_file")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        ca_file.contains("collector-ca-") && Path::new(&ca_file).is_file(),
        "the pasted CA is stored on the appliance: {ca_file:?}"
    );
    // (A pasted CA would arrive with CRLF line breaks, as browsers send textareas.)
    let stored = std::fs::read_to_string(&ca_file)
        .unwrap()
        .replace("\r\n", "\n");
    assert_eq!(stored.trim(), ca_pem.trim());

    // The test buttons, with the settings just saved: one marked line at the Collector (TLS
    // with the uploaded CA), one marked record at Log Search.
    let (text, verdict) = t.test_button("/insightidr/test-collector").await;
    t.shot("collector-test").await;
    assert_eq!(verdict, "ok", "{text}");
    assert!(text.contains("TLS handshake: OK"), "{text}");
    assert!(text.contains("Test event: OK"), "{text}");
    assert!(text.contains("No Platform API key is set"), "{text}");
    let (text, verdict) = t.test_button("/insightidr/test-log-search").await;
    t.shot("log-search-test").await;
    assert_eq!(verdict, "ok", "{text}");
    assert!(text.contains("accepted one test record"), "{text}");

    // Accounts: the default domain.
    t.goto("/mapping").await;
    t.wait_path("/mapping").await;
    t.shot("mapping").await;
    t.fill("default_domain", "CORP").await;
    t.css("#account_format")
        .await
        .select_by_value("local_part")
        .await
        .unwrap();
    t.submit("/mapping").await;
    poll("the account settings saved", STEP, || async {
        (t.c.current_url().await.ok()?.query() == Some("saved=1")).then_some(())
    })
    .await;
    t.shot("mapping-saved").await;
    let domain = t.css("#default_domain").await.prop("value").await.unwrap();
    assert_eq!(domain.as_deref(), Some("CORP"));

    // Status: poll the page until it shows events collected and delivered by both sinks.
    let deadline = Instant::now() + FLOWING;
    let (collected, log_search, collector) = loop {
        t.goto("/status").await;
        t.wait_path("/status").await;
        let collected = t
            .status_number(&["store", "counters", "events_appended"])
            .await;
        let log_search = t.status_number(&["sinks", "log_search", "delivered"]).await;
        let collector = t.status_number(&["sinks", "collector", "delivered"]).await;
        if collected > 0 && log_search > 0 && collector > 0 {
            break (collected, log_search, collector);
        }
        assert!(
            Instant::now() < deadline,
            "no events flowing on the status page after {FLOWING:?}: state {:?}, reason {:?}, \
             collected {collected}, Log Search {log_search}, Collector {collector}\n{}",
            t.status_cell(&["state"]).await,
            t.status_cell(&["reason"]).await,
            rig.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    t.shot("status-flowing").await;
    assert_eq!(t.status_cell(&["state"]).await.as_deref(), Some("running"));
    let flowing_after = started.elapsed();

    // No secret on any page the browser was shown.
    let secrets = [
        ("the Box client secret", sim.client_secret.as_str()),
        ("the Log Search token", token.as_str()),
        ("the administrator password", PASSWORD),
        ("the setup code", code.as_str()),
    ];
    for (url, source) in &t.sources {
        for (what, value) in secrets {
            assert!(!source.contains(value), "{url} shows {what}");
        }
    }
    t.goto("/status.json").await;
    let json = t.c.source().await.unwrap();
    for (what, value) in secrets {
        assert!(!json.contains(value), "/status.json shows {what}");
    }
    t.c.clone().close().await.unwrap();
    drop(driver);

    // At InsightIDR: Box events in Log Search under the token typed in the browser, logins at
    // the Collector as valid UEF.
    let generated: std::collections::BTreeSet<String> =
        rig.box_sim.generated_ids().into_iter().collect();
    let counts = rig.idr_sim.delivery_counts();
    // The test buttons' records: each exactly once, marked, apart from Box's events.
    let is_test = |id: &String| id.starts_with("boxidr-test-");
    let tests: Vec<String> = counts.logsearch.ids().into_iter().filter(is_test).collect();
    assert_eq!(tests.len(), 1, "one test record in Log Search: {tests:?}");
    assert!(tests[0].ends_with("-log-search"), "{tests:?}");
    let tests: Vec<String> = counts.uef.ids().into_iter().filter(is_test).collect();
    assert_eq!(tests.len(), 1, "one test line at the Collector: {tests:?}");
    assert!(tests[0].ends_with("-collector"), "{tests:?}");
    let in_log_search: Vec<String> = counts
        .logsearch
        .ids()
        .into_iter()
        .filter(|id| !is_test(id))
        .collect();
    assert!(!in_log_search.is_empty(), "events reached Log Search");
    assert!(
        in_log_search.iter().all(|id| generated.contains(id)),
        "Log Search received only Box's events and the test record"
    );
    let records = rig.idr_sim.logsearch_records();
    assert!(
        records.iter().all(|r| r.token == token),
        "sent with the token typed on the page"
    );
    assert!(
        counts.uef.ids().iter().any(|id| !is_test(id)),
        "Box logins reached the Collector"
    );
    assert!(
        rig.idr_sim.uef_rejected().is_empty(),
        "no invalid UEF was sent"
    );
    assert!(
        rig.idr_sim
            .uef_accepted()
            .iter()
            .any(|r| r.value["account_domain"] == "CORP"),
        "UEF carries the default domain set on the page"
    );

    let exit = service.stop();
    assert!(exit.success(), "{exit:?}\n{}", rig.logs());
    let logs = rig.logs();
    for (what, value) in secrets.iter().take(3) {
        assert!(!logs.contains(value), "the console shows {what}");
    }
    println!(
        "browser setup: {} screenshots in {}; events flowing after {:.0?} \
         (status page: {collected} collected, {log_search} to Log Search, {collector} to the Collector); \
         total {:.0?}",
        t.taken.len(),
        t.shots.display(),
        flowing_after,
        started.elapsed()
    );
}
