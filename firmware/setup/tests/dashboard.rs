//! Issue 5 polish over real TLS on loopback: the status dashboard (with and without a
//! snapshot, hostile strings), the redirect URI's copy button and its script-only-here CSP,
//! the "appliance" save banner, spaced buttons, the account preview on GET with the
//! email-domain table, and PEM pasted with CRLF stored with LF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use boxidr_store::UserEntry;
use boxidr_store::settings;
use common::Harness;

fn csp(page: &common::Page) -> String {
    page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Every `<script` on a page loads the external copy script; none carries code inline.
fn only_external_scripts(body: &str) -> bool {
    body.match_indices("<script")
        .all(|(i, _)| body[i..].starts_with("<script src=\"/static/copy.js\" defer></script>"))
}

/// Without a snapshot the status page is a clear "not collecting" block, still refreshing
/// and linking the machine forms; with one it shows the figures the browser test reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_with_and_without_snapshot() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/status").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("id=\"not-collecting\""), "{body}");
    assert!(body.contains("Not collecting: "), "{body}");
    assert!(body.contains("http-equiv=\"refresh\""));
    assert!(body.contains("href=\"/status.json\"") && body.contains("href=\"/metrics\""));
    assert!(!body.contains("<script"), "the dashboard has no script");
    assert!(!csp(&page).contains("script-src"), "{}", csp(&page));

    *h.status.0.lock().unwrap() = serde_json::json!({
        "state": "running", "version": "9.9.9", "uptime_secs": 4000,
        "store": {"queue_records": 3, "file_bytes": 1024, "quota_bytes": 4096,
                  "quota_used_percent": 25.0, "counters": {"events_appended": 77, "events_duplicate": 4}},
        "sinks": {"collector": {"state": "idle", "delivered": 12},
                  "log_search": {"state": "config_error", "detail": "token refused", "delivered": 70}},
        "verifier": {"configured": false, "collector": {"state": "not_configured"},
                     "log_search": {"state": "not_configured"}},
        "leds": {"frame": {"system": "heartbeat", "box": "on", "insightidr": "fast_blink", "attention": "on"}},
        "health": {"overall": "failing", "problems": [{"code": "sink_config_error",
            "component": "log_search", "severity": "error",
            "message": "Log Search refused the token.", "fix": "Enter a valid log token."}],
            "derived": {"since_last_poll_secs": 3, "lag_secs": 20, "oldest_undelivered_secs": 90}},
    });
    let page = b.get("/status?auto=1").await;
    let body = &page.body;
    for expected in [
        "data-key=\"state\" data-value=\"running\"",
        "data-key=\"store.counters.events_appended\" data-value=\"77\"",
        "data-key=\"sinks.collector.delivered\" data-value=\"12\"",
        "data-key=\"sinks.log_search.delivered\" data-value=\"70\"",
        "Stopped: check the settings",
        "token refused",
        "Log Search refused the token.",
        "Enter a valid log token.",
        "Not configured (no Platform API key)",
        "3s ago",
        "1m 30s old",
        "1h 6m",
        "25.0 %",
        "lamp blue pos-3 fast",
        "fast blink",
        "9.9.9",
    ] {
        assert!(body.contains(expected), "missing {expected:?}: {body}");
    }
    assert!(!body.contains("id=\"not-collecting\""), "{body}");
    assert!(
        !body.contains("boxidr_up"),
        "metrics are linked, not dumped"
    );
    h.stop().await;
}

/// The Box page offers a copy button for the redirect URI through an external script that
/// only the Box pages may load; the field works without it; once connected the button says
/// "Reconnect to Box".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uri_copy_button_and_reconnect() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/box").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("id=\"redirect_uri\""), "{body}");
    assert!(
        body.contains("type=\"button\" id=\"copy_redirect_uri\" data-copy=\"redirect_uri\" hidden"),
        "a non-submitting button, hidden until the script shows it: {body}"
    );
    assert!(body.contains("src=\"/static/copy.js\""));
    assert!(only_external_scripts(body), "{body}");
    let policy = csp(&page);
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    for other in ["/status", "/mapping", "/insightidr"] {
        let page = b.get(other).await;
        assert!(!csp(&page).contains("script-src"), "{other}");
        assert!(!page.body.contains("<script"), "{other}");
    }
    let (status, headers, js) = b.get_bytes("/static/copy.js").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = String::from_utf8(js).unwrap();
    assert!(js.contains("data-copy") && js.contains("clipboard"), "{js}");

    assert!(body.contains(">Connect to Box<") || !body.contains("/box/connect"));
    let r = b
        .post(
            "/box/app",
            &[
                ("csrf", &page.csrf()),
                ("client_id", &h.sim.config().client_id),
                ("client_secret", &h.sim.config().client_secret),
                ("redirect_uri", "https://127.0.0.1/oauth/callback"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get("/box").await;
    assert!(page.body.contains(">Connect to Box<"), "{}", page.body);
    assert!(!page.body.contains("Reconnect to Box"));
    h.store
        .put_setting(
            settings::BOX_ACCOUNT,
            &serde_json::json!({"name": "Admin", "login": "admin@example.com", "role": "admin", "enterprise": "Example"}),
        )
        .await
        .unwrap();
    let page = b.get("/box").await;
    assert!(page.body.contains(">Reconnect to Box<"), "{}", page.body);
    h.stop().await;
}

fn user(id: &str, login: &str) -> UserEntry {
    UserEntry {
        id: id.into(),
        json: serde_json::json!({
            "type": "user", "id": id, "login": login, "name": id, "status": "active",
            "modified_at": "2025-03-01T10:00:00-08:00",
        })
        .to_string(),
    }
}

/// GET /mapping previews stored users with the saved settings; the email-domain table is on
/// the form, saves into `mapping.domain_map`, shows its rows again, and refuses half-filled
/// or repeated rows with nothing saved. The save banner names the appliance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_preview_on_get_and_domain_table() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/mapping").await;
    assert!(
        page.body.contains("Preview with the saved settings"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No Box users are stored yet"));
    assert!(
        page.body.contains("id=\"domain_map_email_0\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"domain_map_domain_2\""));
    h.store
        .put_users(vec![
            user("1", "jdoe@emea.example.com"),
            user("2", "ann@example.com"),
        ])
        .await
        .unwrap();

    let csrf = page.csrf();
    let form = |email: &'static str, domain: &'static str| {
        vec![
            ("default_domain", "CORP"),
            ("account_format", "local_part"),
            ("authentication_target", "Box"),
            ("domain_map_email_0", email),
            ("domain_map_domain_0", domain),
            ("domain_map_email_1", ""),
            ("domain_map_domain_1", ""),
        ]
    };
    let before = std::fs::read_to_string(&h.config_path).unwrap();
    let mut half = form("emea.example.com", "");
    half.push(("csrf", &csrf));
    let r = b.post("/mapping", &half).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Row 1: fill in both"), "{}", r.body);
    assert!(
        r.body.contains("value=\"emea.example.com\""),
        "typed row kept"
    );
    let mut bad = form("emea.example.com", "NOT VALID!");
    bad.push(("csrf", &csrf));
    let r = b.post("/mapping", &bad).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("mapping.domain_map"), "{}", r.body);
    assert_eq!(std::fs::read_to_string(&h.config_path).unwrap(), before);

    let mut good = form("@EMEA.example.com", "EMEA");
    good.push(("csrf", &csrf));
    let r = b.post("/mapping", &good).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        h.config_rx
            .borrow()
            .mapping
            .domain_map
            .get("emea.example.com")
            .map(String::as_str),
        Some("EMEA")
    );
    let page = b.get("/mapping?saved=1").await;
    let body = &page.body;
    assert!(
        body.contains("Saved. The appliance uses the new settings now."),
        "{body}"
    );
    assert!(!body.contains("The collector uses"));
    assert!(body.contains("value=\"emea.example.com\""), "{body}");
    assert!(
        body.contains("id=\"domain_map_email_3\""),
        "three empty rows after the stored one"
    );
    // The preview on GET uses the saved table: EMEA for the mapped domain, CORP otherwise.
    assert!(body.contains("Preview with the saved settings"));
    assert!(
        body.contains("<code>EMEA</code>") && body.contains("<code>CORP</code>"),
        "{body}"
    );
    assert!(body.contains("<code>jdoe</code>") && body.contains("<code>ann</code>"));
    h.stop().await;
}

/// Save/Preview and Save/Test connection sit in a spaced button row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_are_spaced() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    for (path, second) in [("/mapping", "Preview"), ("/insightidr", "Test connection")] {
        let page = b.get(path).await;
        let row = page.body.find("<div class=\"buttons\">").expect(path);
        let tail = &page.body[row..];
        assert!(
            tail.find(">Save<").unwrap() < tail.find(second).unwrap(),
            "{path}"
        );
    }
    let (_, _, css) = b.get_bytes("/static/style.css").await;
    let css = String::from_utf8(css).unwrap();
    let rule = css
        .lines()
        .find(|l| l.starts_with(".buttons {"))
        .expect("a .buttons rule");
    assert!(rule.contains("gap:"), "{rule}");
    h.stop().await;
}

/// A CA and a certificate with key pasted with Windows line endings are stored with LF only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_pem_with_crlf_is_stored_with_lf() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let crlf = |pem: &str| pem.replace('\n', "\r\n");
    let ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).unwrap();
    let page = b.get("/insightidr").await;
    let pasted = crlf(&ca.cert.pem());
    assert!(pasted.contains("\r\n"));
    let r = b
        .post_multipart(
            "/insightidr",
            &[
                ("csrf", &page.csrf()),
                ("collector_enabled", "on"),
                ("collector_host", "collector.corp.example"),
                ("collector_port", "6514"),
                ("region", "us"),
                ("collector_ca_pem", &pasted),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let path = h
        .config_rx
        .borrow()
        .insightidr
        .collector
        .as_ref()
        .unwrap()
        .ca_file
        .clone()
        .unwrap();
    let stored = std::fs::read_to_string(&path).unwrap();
    assert!(!stored.contains('\r'), "{stored:?}");
    assert_eq!(stored.trim(), ca.cert.pem().trim());

    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let page = b.get("/certificate").await;
    let r = b
        .post(
            "/certificate",
            &[
                ("csrf", &page.csrf()),
                ("cert", &crlf(&made.cert.pem())),
                ("key", &crlf(&made.signing_key.serialize_pem())),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    for key in [settings::TLS_CERT, settings::TLS_KEY] {
        let stored = h.secret(key).await.unwrap_or_else(|| panic!("{key}"));
        assert!(!stored.contains('\r'), "{key}");
        assert!(stored.contains("-----BEGIN"), "{key}");
    }
    h.stop().await;
}
