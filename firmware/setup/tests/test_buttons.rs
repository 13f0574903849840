//! The test buttons (issue 14): Box "Test", Collector "Send test event", Log Search "Send test
//! record", over real TLS on loopback against the Box and InsightIDR simulators and their
//! faults. Each result names what failed and what to do, shows no secret, and leaves no state
//! behind: nothing queued, no cursor, nothing saved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use box_sim::SimConfig;
use boxidr_config::{Config, LogSearch};
use boxidr_model::Secret;
use boxidr_setup::PlatformApi;
use boxidr_store::settings;
use common::{Browser, Harness, Page, consent, start_connect};
use idr_sim::{FaultKind, FaultSpec, Surface};

fn sim_config() -> SimConfig {
    SimConfig {
        redirect_uris: vec!["https://127.0.0.1/oauth/callback".into()],
        backlog: 10,
        users: 5,
        ..SimConfig::default()
    }
}

/// The InsightIDR simulator (Log Search over TLS) and the setup page pointed at it: Log
/// Search's CA (a file-level setting) in the configuration, the Platform API override.
async fn with_idr(sim: SimConfig, idr: idr_sim::SimConfig) -> (Harness, idr_sim::SimHandle) {
    let idr = idr_sim::IdrSim::start(
        idr_sim::SimConfig {
            logsearch_tls: true,
            ..idr
        },
        idr_sim::Listen::default(),
    )
    .await
    .unwrap();
    let ca_pem = idr.ca_pem();
    let api: url::Url = idr.api_base().parse().unwrap();
    let ingest: url::Url = idr.logsearch_base().parse().unwrap();
    let h = Harness::start_customised(sim, move |options, dir| {
        let ca = dir.join("idr-ca.pem");
        std::fs::write(&ca, &ca_pem).unwrap();
        let mut config: Config = options.config.borrow().as_ref().clone();
        config.insightidr.log_search = Some(LogSearch {
            region: "us".into(),
            base_url: Some(ingest),
            ca_file: Some(ca),
        });
        options.config.send_replace(Arc::new(config));
        options.platform_api = Some(PlatformApi {
            base: api,
            roots: boxidr_forward::TrustRoots::Platform,
        });
        options.test_wait = Duration::from_secs(20);
    })
    .await;
    (h, idr)
}

/// The `data-verdict` of check `name` in the page's test result.
fn verdict(page: &Page, name: &str) -> Option<String> {
    let marker = format!("data-check=\"{name}\" data-verdict=\"");
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find('"')?;
    Some(page.body[start..start + end].to_owned())
}

/// Asserts the verdict of check `name` on `page`, showing the whole result if it differs.
#[track_caller]
fn assert_verdict(page: &Page, name: &str, expected: &str) {
    assert_eq!(
        verdict(page, name).as_deref(),
        Some(expected),
        "{name}: {}",
        result(page)
    );
}

/// Makes InsightIDR's `surface` answer every request with HTTP `status`.
fn answer_with(idr: &idr_sim::SimHandle, surface: Surface, status: u16) {
    let fault = FaultKind::Status {
        status,
        retry_after_secs: None,
    };
    idr.faults().set(FaultSpec::new(surface, fault)).unwrap();
}

/// The whole result (`#test-result`), for assertion messages.
fn result(page: &Page) -> &str {
    page.body
        .find("id=\"test-result\"")
        .map_or("(no test result)", |i| &page.body[i..])
}

/// Nothing queued, no cursor, no delivery counted: the store is as the page found it.
async fn no_stray_state(h: &Harness) {
    let stats = h.store.stats().await.unwrap();
    assert_eq!(stats.queue_records, 0, "nothing queued");
    assert_eq!(stats.newest_seq, None, "nothing ever queued");
    for cursor in [
        boxidr_store::CursorKey::Stream(boxidr_model::StreamType::AdminLogsStreaming),
        boxidr_store::CursorKey::Stream(boxidr_model::StreamType::AdminLogs),
    ] {
        assert!(h.store.cursor(cursor).await.unwrap().is_none(), "no cursor");
    }
}

/// The InsightIDR form as an admin fills it in: Collector with the simulator's CA pasted,
/// Log Search with the token, the Platform API key.
fn insightidr_form<'a>(
    csrf: &'a str,
    idr: &'a idr_sim::SimHandle,
    ingest: &'a str,
    port: &'a str,
    ca: &'a str,
    key: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("collector_enabled", "on"),
        ("collector_host", "127.0.0.1"),
        ("collector_port", port),
        ("collector_ca_pem", ca),
        ("log_search_enabled", "on"),
        ("region", "us"),
        ("log_search_token", &idr.config().tokens[0]),
        ("log_search_base_url", ingest),
        ("platform_api_key", key),
    ]
}

async fn insightidr_csrf(b: &mut Browser) -> String {
    let page = b.get("/insightidr").await;
    assert!(
        page.body
            .contains("formaction=\"/insightidr/test-collector\"")
    );
    assert!(
        page.body
            .contains("formaction=\"/insightidr/test-log-search\"")
    );
    page.csrf()
}

/// "Send test event": handshake with the CA as pasted, one marked UEF line at the Collector,
/// found in Log Search through the Platform API; nothing saved, queued or counted; no secret
/// shown. The Collector down and a wrong CA each say what failed and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_test_event() {
    let (h, idr) = with_idr(sim_config(), idr_sim::SimConfig::default()).await;
    let mut b = h.claimed_browser().await;
    let csrf = insightidr_csrf(&mut b).await;
    let before = std::fs::read_to_string(&h.config_path).unwrap();
    let port = idr.uef_addr().port().to_string();
    let ca = idr.ca_pem();
    let key = idr.config().api_key.clone();
    let token = idr.config().tokens[0].clone();
    let ingest = idr.logsearch_base();
    let form = insightidr_form(&csrf, &idr, &ingest, &port, &ca, &key);

    let r = b.post("/insightidr/test-collector", &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_verdict(&r, "TLS handshake", "ok");
    assert_verdict(&r, "Test event", "ok");
    assert_verdict(&r, "Seen in Log Search", "ok");
    assert!(r.body.contains("Test passed."), "{}", result(&r));
    let accepted = idr.uef_accepted();
    assert_eq!(accepted.len(), 1, "one line at the Collector");
    let line = &accepted[0];
    assert_eq!(line.value["account"], "boxidr-test");
    let id = line.box_event_id.clone().unwrap();
    assert!(id.starts_with("boxidr-test-"), "{id}");
    let marker = id.trim_end_matches("-collector");
    assert!(r.body.contains(marker), "the result names the marker");
    assert!(idr.uef_rejected().is_empty(), "valid UEF");
    for secret in [&key, &token] {
        assert!(!r.body.contains(secret.as_str()), "no secret on the page");
    }
    assert!(r.body.contains("value=\"127.0.0.1\""), "typed values kept");
    assert_eq!(
        std::fs::read_to_string(&h.config_path).unwrap(),
        before,
        "nothing saved"
    );
    assert!(h.secret(settings::PLATFORM_API_KEY).await.is_none());
    assert!(h.secret(settings::LOG_SEARCH_TOKEN).await.is_none());
    no_stray_state(&h).await;

    // Without a Platform API key the line is sent and the page says what to search for.
    let mut no_key = form.clone();
    no_key.retain(|(k, _)| *k != "platform_api_key");
    let r = b.post("/insightidr/test-collector", &no_key).await;
    assert_verdict(&r, "Test event", "ok");
    assert_verdict(&r, "Seen in Log Search", "muted");
    assert!(
        r.body.contains("No Platform API key is set"),
        "{}",
        result(&r)
    );

    // A CA that did not sign the Collector's certificate: the handshake fails, nothing sent.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other_ca = other.cert.pem();
    let mut wrong = form.clone();
    for field in &mut wrong {
        if field.0 == "collector_ca_pem" {
            field.1 = &other_ca;
        }
    }
    let sent = idr.uef_accepted().len();
    let r = b.post("/insightidr/test-collector", &wrong).await;
    assert_verdict(&r, "TLS handshake", "bad");
    assert_verdict(&r, "Test event", "muted");
    assert!(
        r.body.contains("not signed by the CA given here"),
        "{}",
        result(&r)
    );
    assert!(r.body.contains("Test failed"));
    assert_eq!(idr.uef_accepted().len(), sent, "nothing sent without TLS");

    // The Collector down: the connection fails and the page says what to check.
    idr.faults()
        .set(FaultSpec::new(Surface::Uef, FaultKind::Down))
        .unwrap();
    let r = b.post("/insightidr/test-collector", &form).await;
    assert_verdict(&r, "TLS handshake", "bad");
    assert!(
        r.body.contains("Cannot connect to 127.0.0.1:"),
        "{}",
        result(&r)
    );
    assert!(r.body.contains("Rapid7 Universal Ingress Authentication"));
    idr.faults().clear(Surface::Uef);

    // The Collector off on the form.
    let r = b
        .post(
            "/insightidr/test-collector",
            &[("csrf", &csrf), ("region", "us")],
        )
        .await;
    assert!(r.body.contains("The Collector is off"), "{}", result(&r));

    // A form error is shown as on a save, nothing tried.
    let mut bad = form.clone();
    for field in &mut bad {
        if field.0 == "collector_port" {
            field.1 = "99999";
        }
    }
    let r = b.post("/insightidr/test-collector", &bad).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Enter a port between 1 and 65535."));
    assert!(!r.body.contains("id=\"test-result\""));

    // Without CSRF: refused.
    let mut no_csrf = form.clone();
    no_csrf.retain(|(k, _)| *k != "csrf");
    assert_eq!(
        b.post("/insightidr/test-collector", &no_csrf).await.status,
        403
    );
    no_stray_state(&h).await;
    idr.shutdown().await;
    h.stop().await;
}

/// "Send test record": one marked record at Log Search, answered 2xx; a refused token (4xx)
/// and a failing service (5xx) each say what to do; the stored token is used when none is
/// typed; nothing saved, queued or counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_search_test_record() {
    let (h, idr) = with_idr(sim_config(), idr_sim::SimConfig::default()).await;
    let mut b = h.claimed_browser().await;
    let csrf = insightidr_csrf(&mut b).await;
    let before = std::fs::read_to_string(&h.config_path).unwrap();
    let token = idr.config().tokens[0].clone();
    let ingest = idr.logsearch_base();
    let form = [
        ("csrf", csrf.as_str()),
        ("log_search_enabled", "on"),
        ("region", "us"),
        ("log_search_base_url", ingest.as_str()),
        ("log_search_token", token.as_str()),
    ];

    let r = b.post("/insightidr/test-log-search", &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_verdict(&r, "Test record", "ok");
    assert!(
        r.body.contains("accepted one test record"),
        "{}",
        result(&r)
    );
    let records = idr.logsearch_records();
    assert_eq!(records.len(), 1, "one record");
    assert_eq!(records[0].token, token);
    let json = records[0].json.clone().unwrap();
    assert_eq!(json["event"]["boxidr_test"], true, "marked: {json}");
    assert_eq!(json["event_type"], "BOXIDR_TEST");
    let id = records[0].box_event_id.clone().unwrap();
    assert!(
        r.body.contains(id.trim_end_matches("-log-search")),
        "marker shown"
    );
    assert!(!r.body.contains(&token), "the token is never shown");
    assert_eq!(
        std::fs::read_to_string(&h.config_path).unwrap(),
        before,
        "nothing saved"
    );
    assert!(
        h.secret(settings::LOG_SEARCH_TOKEN).await.is_none(),
        "token not saved"
    );

    // 4xx: the token or region is wrong.
    answer_with(&idr, Surface::Logsearch, 403);
    let r = b.post("/insightidr/test-log-search", &form).await;
    assert_verdict(&r, "Test record", "bad");
    assert!(r.body.contains("HTTP 403"), "{}", result(&r));
    assert!(r.body.contains("Copy the token again"), "{}", result(&r));
    assert!(!r.body.contains(&token));

    // 5xx: the service is failing; real events stay queued.
    answer_with(&idr, Surface::Logsearch, 503);
    let r = b.post("/insightidr/test-log-search", &form).await;
    assert_verdict(&r, "Test record", "bad");
    assert!(r.body.contains("HTTP 503"), "{}", result(&r));
    assert!(r.body.contains("real events stay queued"), "{}", result(&r));
    idr.faults().clear(Surface::Logsearch);

    // No token typed and none stored; then the stored one.
    let r = b
        .post(
            "/insightidr/test-log-search",
            &[
                ("csrf", &csrf),
                ("log_search_enabled", "on"),
                ("region", "us"),
                ("log_search_base_url", &ingest),
            ],
        )
        .await;
    assert!(r.body.contains("No log token is set"), "{}", result(&r));
    h.store
        .put_secrets(vec![(
            settings::LOG_SEARCH_TOKEN,
            Secret::from(token.as_str()),
        )])
        .await
        .unwrap();
    let r = b
        .post(
            "/insightidr/test-log-search",
            &[
                ("csrf", &csrf),
                ("log_search_enabled", "on"),
                ("region", "us"),
                ("log_search_base_url", &ingest),
            ],
        )
        .await;
    assert_verdict(&r, "Test record", "ok");
    assert_eq!(idr.logsearch_records().len(), 2);

    // Log Search off on the form.
    let r = b
        .post(
            "/insightidr/test-log-search",
            &[("csrf", &csrf), ("region", "us")],
        )
        .await;
    assert!(r.body.contains("Log Search is off"), "{}", result(&r));
    no_stray_state(&h).await;
    idr.shutdown().await;
    h.stop().await;
}

/// Box "Test": token, admin role, events on the configured stream, users, groups when the
/// scope names some — then the simulator's faults: a revoked grant, a non-admin account
/// (403 on events and users), an app without the events scope, a scope group without
/// `manage_groups`. Nothing is queued and no cursor is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_test_button() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/box").await;
    assert!(
        !page.body.contains("action=\"/box/test\""),
        "no Test before a grant"
    );
    let r = b.post("/box/test", &[("csrf", &page.csrf())]).await;
    assert_verdict(&r, "Authorisation", "bad");
    assert!(r.body.contains("Box app is not saved"), "{}", result(&r));

    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    assert_eq!(b.get(&callback).await.status, 200);
    let page = b.get("/box").await;
    assert!(page.body.contains("action=\"/box/test\""));
    let csrf = page.csrf();
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for check in ["Token", "Admin role", "Enterprise events", "User list"] {
        assert_verdict(&r, check, "ok");
    }
    assert_verdict(&r, "Groups", "muted");
    assert!(
        r.body.contains("Readable on admin_logs_streaming"),
        "{}",
        result(&r)
    );
    let (_, login) = h.sim.authorizing_user();
    assert!(r.body.contains(&login), "names the account");
    let refresh = h.secret(settings::BOX_REFRESH_TOKEN).await.unwrap();
    assert!(!r.body.contains(&refresh), "no token on the page");
    assert!(!r.body.contains(&h.sim.config().client_secret));
    // Again: the rotated refresh token was stored before use, so a second test works too.
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_verdict(&r, "Token", "ok");
    no_stray_state(&h).await;

    // Groups in the scope: readable with manage_groups (the simulator's default app).
    let members = h.sim.managed_user_ids();
    h.sim.add_group("Finance", &members[..1]);
    scope_groups(&mut b, &csrf).await;
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_verdict(&r, "Groups", "ok");

    // Revoked at Box: the token check fails and says to reconnect; nothing else is tried.
    h.sim.revoke_all_tokens();
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_verdict(&r, "Token", "bad");
    assert!(r.body.contains("Reconnect to Box"), "{}", result(&r));
    assert_verdict(&r, "Enterprise events", "muted");
    assert!(r.body.contains("Test failed"));

    // A regular user connected: the role, events and users fail, each saying why.
    h.sim.set_authorizing_role(box_sim::Role::User);
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    assert_eq!(b.get(&callback).await.status, 200);
    let csrf = b.get("/box").await.csrf();
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_verdict(&r, "Token", "ok");
    for check in ["Admin role", "Enterprise events", "User list", "Groups"] {
        assert_verdict(&r, check, "bad");
    }
    assert!(
        r.body.contains("allowed to run new reports"),
        "{}",
        result(&r)
    );
    assert!(r.body.contains("allowed to manage users"), "{}", result(&r));
    no_stray_state(&h).await;
    h.stop().await;

    // The app lacks the events and groups scopes: 403 insufficient_scope on each, named.
    let h = Harness::start_with(SimConfig {
        app_scopes: vec!["manage_managed_users".into()],
        ..sim_config()
    })
    .await;
    let mut b = h.claimed_browser().await;
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    assert_eq!(b.get(&callback).await.status, 200);
    let csrf = b.get("/box").await.csrf();
    scope_groups(&mut b, &csrf).await;
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_verdict(&r, "Enterprise events", "bad");
    assert!(
        r.body.contains("Not readable on admin_logs_streaming"),
        "{}",
        result(&r)
    );
    assert!(
        r.body
            .contains("scope &quot;Manage enterprise properties&quot;"),
        "{}",
        result(&r)
    );
    assert_verdict(&r, "Groups", "bad");
    assert!(
        r.body.contains("scope &quot;Manage groups&quot;"),
        "{}",
        result(&r)
    );
    assert_verdict(&r, "User list", "ok");
    no_stray_state(&h).await;
    h.stop().await;
}

/// Monitors the group "Finance" (the Collection page's scoping upload).
async fn scope_groups(b: &mut Browser, csrf: &str) {
    let r = b
        .post_multipart(
            "/collection/scope",
            &[("csrf", csrf)],
            &[("scope_file", "scope.csv", b"Group Name\nFinance\n")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
}

/// With client credentials the test gets its own token (no refresh token exists) and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_test_with_client_credentials() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    start_connect(&h, &mut b).await;
    let page = b.get("/box").await;
    let eid = h.sim.config().enterprise_id.clone();
    let r = b
        .post(
            "/box/ccg",
            &[("csrf", &page.csrf()), ("enterprise_id", &eid)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = b.post("/box/test", &[("csrf", &page.csrf())]).await;
    for check in ["Token", "Admin role", "Enterprise events", "User list"] {
        assert_verdict(&r, check, "ok");
    }
    assert!(h.secret(settings::BOX_REFRESH_TOKEN).await.is_none());
    no_stray_state(&h).await;
    h.stop().await;
}

/// A tinyproxy child on 127.0.0.1 (Debian's, as in `boxapi/tests/proxy.rs`), killed on drop.
struct Tinyproxy {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tinyproxy {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts tinyproxy, or `None` when it is not installed and `BOXIDR_SKIP_PROXY` is set.
fn tinyproxy() -> Option<Tinyproxy> {
    let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(
            std::env::var_os("BOXIDR_SKIP_PROXY").is_some(),
            "tinyproxy is not installed (apt-get install tinyproxy), or set BOXIDR_SKIP_PROXY=1"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
         LogLevel Info\nLogFile \"{log}\"\nDisableViaHeader Yes\n",
        log = dir.path().join("tinyproxy.log").display(),
    );
    let conf_path = dir.path().join("tinyproxy.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = std::process::Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Tinyproxy { child, port, dir });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tinyproxy did not start on port {port}");
}

/// With `[network] proxy` set, the buttons go the way the collector goes: Box, Log Search
/// (HTTPS by CONNECT) and the Platform API through a real proxy (tinyproxy's log shows each),
/// the Collector directly; with the proxy down, the Log Search test fails and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_buttons_use_the_outbound_proxy() {
    let Some(proxy) = tinyproxy() else { return };
    let idr = idr_sim::IdrSim::start(
        idr_sim::SimConfig {
            logsearch_tls: true,
            ..idr_sim::SimConfig::default()
        },
        idr_sim::Listen::default(),
    )
    .await
    .unwrap();
    let (ca_pem, api) = (idr.ca_pem(), idr.api_base().parse::<url::Url>().unwrap());
    let proxy_url: url::Url = format!("http://127.0.0.1:{}", proxy.port).parse().unwrap();
    let h = Harness::start_customised(sim_config(), move |options, dir| {
        let ca = dir.join("idr-ca.pem");
        std::fs::write(&ca, &ca_pem).unwrap();
        let mut config: Config = options.config.borrow().as_ref().clone();
        config.insightidr.log_search = Some(LogSearch {
            region: "us".into(),
            base_url: None,
            ca_file: Some(ca),
        });
        config.network.proxy = Some(proxy_url);
        options.config.send_replace(Arc::new(config));
        options.platform_api = Some(PlatformApi {
            base: api,
            roots: boxidr_forward::TrustRoots::Platform,
        });
        options.test_wait = Duration::from_secs(20);
    })
    .await;
    let mut b = h.claimed_browser().await;

    // Box: the grant and the checks through the proxy.
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    assert_eq!(b.get(&callback).await.status, 200);
    let csrf = b.get("/box").await.csrf();
    let r = b.post("/box/test", &[("csrf", &csrf)]).await;
    assert_verdict(&r, "Enterprise events", "ok");
    let log = proxy.log();
    assert!(log.contains("/2.0/users/me"), "{log}");
    assert!(log.contains("/2.0/events"), "{log}");

    // InsightIDR: Log Search by CONNECT, the Platform API through it, the Collector direct.
    let csrf = insightidr_csrf(&mut b).await;
    let port = idr.uef_addr().port().to_string();
    let (ca, key) = (idr.ca_pem(), idr.config().api_key.clone());
    let ingest = idr.logsearch_base();
    let form = insightidr_form(&csrf, &idr, &ingest, &port, &ca, &key);
    let r = b.post("/insightidr/test-log-search", &form).await;
    assert_verdict(&r, "Test record", "ok");
    assert!(
        r.body.contains("through the outbound proxy"),
        "{}",
        result(&r)
    );
    let ls_port = url::Url::parse(&ingest).unwrap().port().unwrap();
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{ls_port}")),
        "{log}"
    );
    let r = b.post("/insightidr/test-collector", &form).await;
    assert_verdict(&r, "Test event", "ok");
    assert_verdict(&r, "Seen in Log Search", "ok");
    let log = proxy.log();
    assert!(
        log.contains("/log_search/"),
        "Platform API through the proxy: {log}"
    );
    assert!(
        !log.contains(&format!(":{port}")),
        "the Collector is reached directly: {log}"
    );

    // The proxy down: the Log Search test fails and names the way through the proxy.
    drop(proxy);
    let r = b.post("/insightidr/test-log-search", &form).await;
    assert_verdict(&r, "Test record", "bad");
    assert!(
        r.body.contains("through the outbound proxy"),
        "{}",
        result(&r)
    );
    assert!(r.body.contains("outbound proxy"), "{}", result(&r));
    no_stray_state(&h).await;
    idr.shutdown().await;
    h.stop().await;
}
