//! The setup page's later features over real TLS on loopback: the scoping upload, file
//! uploads of PEM files, the account preview, "Test connection", `/metrics`, configuration
//! export and import, and the support bundle — with secrets searched for everywhere
//! (RELIABILITY.md §6 scenarios 20, 23, 24).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;

use box_sim::SimConfig;
use boxidr_config::{Config, Scope};
use boxidr_model::Secret;
use boxidr_setup::PlatformApi;
use boxidr_store::UserEntry;
use boxidr_store::settings;
use common::{Harness, PASSWORD, consent, start_connect};

fn sim_config() -> SimConfig {
    SimConfig {
        redirect_uris: vec!["https://127.0.0.1/oauth/callback".into()],
        backlog: 10,
        users: 5,
        ..SimConfig::default()
    }
}

fn file_text(h: &Harness) -> String {
    std::fs::read_to_string(&h.config_path).unwrap()
}

/// The Collection page shows who is monitored; a CSV with bad rows lists every bad row by
/// number and saves nothing; a good file (or pasted text) replaces the scope, which downloads
/// back as the same CSV; "Monitor everyone" clears it; all of it needs CSRF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_upload_download_and_clear() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/collection").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Everyone in the enterprise is monitored.")
    );
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    assert!(page.body.contains("type=\"file\""));
    let csrf = page.csrf();
    let before = file_text(&h);

    // Two bad rows (3 and 5) and a hostile one (6): all listed, nothing saved.
    let bad = "Email,Group Name\nok@example.com,\nnot-an-email,\n,Sales\nalso bad@x,\n\"<script>alert(1)</script>\",\n";
    let r = b
        .post_multipart(
            "/collection/scope",
            &[("csrf", &csrf)],
            &[("scope_file", "scope.csv", bad.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    for row in ["Row 3:", "Row 5:", "Row 6:"] {
        assert!(r.body.contains(row), "{row} listed");
    }
    assert!(!r.body.contains("Row 2:") && !r.body.contains("Row 4:"));
    assert!(r.body.contains("Nothing was saved"));
    assert!(!r.body.contains("<script>alert"), "escaped");
    assert_eq!(file_text(&h), before);
    assert!(h.config_rx.borrow().scope.is_everyone());

    // A whole-file problem and an empty upload are explained too.
    let r = b
        .post_multipart(
            "/collection/scope",
            &[("csrf", &csrf)],
            &[("scope_file", "x.csv", b"Name\nx\n")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("The first row must name"), "{}", r.body);
    let r = b
        .post_multipart("/collection/scope", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Choose a CSV file"));
    let too_many: String = std::iter::once("Email\n".to_owned())
        .chain((0..1001).map(|i| format!("u{i}@example.com\n")))
        .collect();
    let r = b
        .post_multipart(
            "/collection/scope",
            &[("csrf", &csrf)],
            &[("scope_file", "big.csv", too_many.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("more than 1000 rows"), "{}", r.body);
    assert_eq!(file_text(&h), before);

    // Without the CSRF token, or from another origin: refused, nothing saved.
    let good: String = std::iter::once("Email Address,Groups\n".to_owned())
        .chain((0..12).map(|i| format!("User{i:02}@Example.com,\n")))
        .chain([",Finance\n".to_owned(), ",<b>Ops</b>\n".to_owned()])
        .collect();
    let r = b
        .post_multipart(
            "/collection/scope",
            &[],
            &[("scope_file", "s.csv", good.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 403);
    b.origin = "https://evil.example".into();
    let r = b
        .post_multipart(
            "/collection/scope",
            &[("csrf", &csrf)],
            &[("scope_file", "s.csv", good.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 403);
    b.origin = b.base.clone();
    assert_eq!(file_text(&h), before);

    let r = b
        .post_multipart(
            "/collection/scope",
            &[("csrf", &csrf)],
            &[("scope_file", "s.csv", good.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let scope = h.config_rx.borrow().scope.clone();
    assert_eq!(scope.users.len(), 12);
    assert_eq!(scope.users[0], "user00@example.com");
    assert_eq!(scope.groups, ["Finance", "<b>Ops</b>"]);
    let on_disk = Config::from_toml(&file_text(&h)).unwrap();
    assert_eq!(on_disk.scope, scope);

    let page = b.get("/collection?saved=scope").await;
    assert!(
        page.body.contains("12 user(s), 2 group(s)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("user00@example.com"));
    assert!(page.body.contains("… and 2 more"), "first entries only");
    assert!(!page.body.contains("user11@example.com"));
    assert!(page.body.contains("&lt;b&gt;Ops&lt;/b&gt;"));
    assert!(!page.body.contains("<b>Ops"));

    let (status, headers, csv) = b.get_bytes("/collection/scope.csv").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv, scope.to_csv());
    assert_eq!(Scope::from_csv(&csv).unwrap(), scope, "downloads re-upload");

    // "Monitor everyone": POST with CSRF only.
    let r = b.post("/collection/scope/clear", &[]).await;
    assert_eq!(r.status, 403);
    let r = b.get("/collection/scope/clear").await;
    assert_eq!(r.status, 404, "GET changes nothing");
    assert_eq!(h.config_rx.borrow().scope, scope);
    let r = b.post("/collection/scope/clear", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(h.config_rx.borrow().scope.is_everyone());
    assert!(
        Config::from_toml(&file_text(&h))
            .unwrap()
            .scope
            .is_everyone()
    );

    // The paste alternative, urlencoded.
    let r = b
        .post(
            "/collection/scope",
            &[("csrf", &csrf), ("scope_csv", "Group Name\nAuditors\n")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(h.config_rx.borrow().scope.groups, ["Auditors"]);
    h.stop().await;
}

/// The certificate and key, and the Collector CA, can be uploaded as files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pem_files_can_be_uploaded() {
    let mut h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/certificate").await;
    assert!(page.body.contains("name=\"cert_file\"") && page.body.contains("name=\"key_file\""));
    let csrf = page.csrf();
    let old = h.server().fingerprint();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    // A key that is not text is a field error, nothing changes.
    let r = b
        .post_multipart(
            "/certificate",
            &[("csrf", &csrf)],
            &[
                ("cert_file", "c.pem", made.cert.pem().as_bytes()),
                ("key_file", "k.der", &[0x30, 0x82, 0xff, 0xfe]),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not UTF-8 text"));
    assert_eq!(h.server().fingerprint(), old);
    let r = b
        .post_multipart(
            "/certificate",
            &[("csrf", &csrf)],
            &[
                ("cert_file", "c.pem", made.cert.pem().as_bytes()),
                (
                    "key_file",
                    "k.pem",
                    made.signing_key.serialize_pem().as_bytes(),
                ),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_ne!(h.server().fingerprint(), old);
    h.reload_cert().await;
    let mut b = h.login().await;

    let page = b.get("/insightidr").await;
    assert!(page.body.contains("name=\"collector_ca_upload\""));
    let ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).unwrap();
    let r = b
        .post_multipart(
            "/insightidr",
            &[
                ("csrf", &page.csrf()),
                ("collector_enabled", "on"),
                ("collector_host", "collector.corp.example"),
                ("collector_port", "6514"),
                ("region", "us"),
            ],
            &[(
                "collector_ca_upload",
                "Rapid7CA.pem",
                ca.cert.pem().as_bytes(),
            )],
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
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        ca.cert.pem().trim()
    );
    h.stop().await;
}

fn user(id: &str, login: &str, name: &str, status: &str, modified: &str) -> UserEntry {
    UserEntry {
        id: id.into(),
        json: serde_json::json!({
            "type": "user", "id": id, "login": login, "name": name, "status": status,
            "modified_at": modified,
        })
        .to_string(),
    }
}

/// "Preview" renders three stored users (active first) through the collector's mapping with
/// the settings as typed, escapes Box strings, validates like a save, and saves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_preview() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/mapping").await;
    assert!(page.body.contains("formaction=\"/mapping/preview\""));
    let csrf = page.csrf();
    let typed = |domain: &'static str, format: &'static str| {
        vec![
            ("default_domain", domain),
            ("account_format", format),
            ("authentication_target", "Box"),
        ]
    };
    let mut fields = typed("CORP", "local_part");
    fields.push(("csrf", &csrf));
    let r = b.post("/mapping/preview", &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("No Box users are stored yet"));

    h.store
        .put_users(vec![
            user(
                "11",
                "jdoe@example.com",
                "Jane Doe",
                "active",
                "2025-03-01T10:00:00-08:00",
            ),
            user(
                "12",
                "gone@example.com",
                "Gone",
                "inactive",
                "2025-06-01T10:00:00-08:00",
            ),
            user(
                "13",
                "x@example.com",
                "<script>alert(1)</script>\u{202E}",
                "active",
                "2025-05-01T10:00:00-08:00",
            ),
            user(
                "14",
                "old@example.com",
                "Old",
                "active",
                "2020-01-01T10:00:00-08:00",
            ),
        ])
        .await
        .unwrap();
    let before = file_text(&h);
    let r = b.post("/mapping/preview", &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = &r.body;
    assert!(body.contains("<code>jdoe</code>"), "{body}");
    assert!(body.contains("<code>CORP</code>"));
    assert!(body.contains("<code>x</code>") && body.contains("<code>old</code>"));
    assert!(
        !body.contains("gone@example.com"),
        "inactive users only fill up"
    );
    assert!(body.contains("&lt;script&gt;"));
    assert!(!body.contains("<script>alert"));
    assert!(!body.contains('\u{202E}'));
    assert!(
        body.contains("value=\"CORP\""),
        "the form keeps what was typed"
    );

    let mut upn = typed("", "upn");
    upn.push(("csrf", &csrf));
    let r = b.post("/mapping/preview", &upn).await;
    assert!(
        r.body.contains("<code>jdoe@example.com</code>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("none (null)"), "no domain typed");

    // Invalid input: the field error, no preview.
    let mut bad = typed("NOT A DOMAIN!", "upn");
    bad.push(("csrf", &csrf));
    let r = b.post("/mapping/preview", &bad).await;
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("Preview (not saved)"));
    // Without CSRF: refused.
    let r = b.post("/mapping/preview", &typed("CORP", "upn")).await;
    assert_eq!(r.status, 403);

    assert_eq!(file_text(&h), before, "preview saves nothing");
    assert_eq!(h.config_rx.borrow().mapping.default_domain, None);
    h.stop().await;
}

/// "Test connection" checks the key as typed (or the stored one) against the Platform API
/// and says OK, refused, or unreachable with the reason; it never echoes or saves the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection() {
    let idr = idr_sim::IdrSim::start(idr_sim::SimConfig::default(), idr_sim::Listen::default())
        .await
        .unwrap();
    let base: url::Url = idr.api_base().parse().unwrap();
    let h = Harness::start_customised(sim_config(), move |options, _| {
        options.platform_api = Some(PlatformApi {
            base,
            roots: boxidr_forward::TrustRoots::Platform,
        });
    })
    .await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/insightidr").await;
    assert!(page.body.contains("formaction=\"/insightidr/test\""));
    let csrf = page.csrf();
    let good_key = idr.config().api_key.clone();
    fn test(key: &str) -> Vec<(&str, &str)> {
        vec![
            ("region", "eu"),
            ("collector_host", "typed.example"),
            ("platform_api_key", key),
        ]
    }

    let r = b
        .post("/insightidr/test", &[("csrf", &csrf), ("region", "eu")])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("No Platform API key is set"), "{}", r.body);

    let mut fields = test(&good_key);
    fields.push(("csrf", &csrf));
    let r = b.post("/insightidr/test", &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Connection OK"), "{}", r.body);
    assert!(!r.body.contains(&good_key), "the key is never echoed");
    assert!(
        r.body.contains("value=\"typed.example\""),
        "typed values kept"
    );
    assert!(
        h.secret(settings::PLATFORM_API_KEY).await.is_none(),
        "not saved"
    );

    let mut fields = test("wrong-key-0000");
    fields.push(("csrf", &csrf));
    let r = b.post("/insightidr/test", &fields).await;
    assert!(r.body.contains("Key refused"), "{}", r.body);
    assert!(r.body.contains("HTTP 401"), "{}", r.body);
    assert!(!r.body.contains("wrong-key-0000"));

    // The stored key is used when none is typed.
    h.store
        .put_secrets(vec![(
            settings::PLATFORM_API_KEY,
            Secret::from(good_key.as_str()),
        )])
        .await
        .unwrap();
    let r = b.post("/insightidr/test", &[("csrf", &csrf)]).await;
    assert!(r.body.contains("Connection OK"), "{}", r.body);

    // Without CSRF: refused, nothing sent.
    let r = b.post("/insightidr/test", &test("x-key-1111")).await;
    assert_eq!(r.status, 403);

    idr.shutdown().await;
    let r = b.post("/insightidr/test", &[("csrf", &csrf)]).await;
    assert!(r.body.contains("Unreachable: "), "{}", r.body);
    assert!(!r.body.contains(&good_key));
    h.stop().await;
}

fn untar(bytes: &[u8]) -> Vec<(String, String)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            (entry.path().unwrap().display().to_string(), text)
        })
        .collect()
}

/// A report whose facts hold 3 queued records: its metrics say so.
fn metrics_status() -> serde_json::Value {
    serde_json::json!({"facts": {"store": {"queue_records": 3}}})
}

/// What `/metrics` must serve for the harness's report: computed from it on request.
fn expected_metrics(h: &Harness) -> String {
    use boxidr_setup::StatusSource;
    let text = h.status.snapshot().unwrap().metrics();
    assert!(text.contains("\nboxidr_queue_records 3\n"), "{text}");
    text
}

/// The Prometheus scrape token: generated on the Maintenance page and shown once, stored only
/// as its SHA-256, accepted as `Authorization: Bearer` on `/metrics` and nowhere else; a new
/// token replaces the old one, and a revoked token stops working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_token() {
    let h = Harness::start_with(sim_config()).await;
    *h.status.0.lock().unwrap() = metrics_status();
    let mut tool = h.browser();
    let bearer = |t: &str| format!("Bearer {t}");
    let scrape = async |tool: &mut common::Browser, token: &str| {
        tool.get_as_tool("/metrics", &[("authorization", &bearer(token))])
            .await
    };
    let mut b = h.claimed_browser().await;

    // No token yet: a clear 401 naming the scheme.
    let r = scrape(&mut tool, "boxidr_metrics_00").await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert!(r.body.contains("Maintenance"), "{}", r.body);
    let page = b.get("/maintenance").await;
    assert!(page.body.contains("Scrape token: none"), "{}", page.body);

    // Generate: shown once.
    let token_of = |body: &str| {
        let start = body.find("boxidr_metrics_").expect("token shown");
        body[start..start + "boxidr_metrics_".len() + 64].to_owned()
    };
    let csrf = page.csrf();
    let r = b
        .post(
            "/maintenance/metrics-token",
            &[("csrf", &csrf), ("action", "generate")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let token = token_of(&r.body);
    assert!(
        token["boxidr_metrics_".len()..]
            .bytes()
            .all(|c| c.is_ascii_hexdigit())
    );
    let stored = h.secret(settings::METRICS_TOKEN_HASH).await.unwrap();
    assert_ne!(stored, token, "only the hash is stored");
    assert_eq!(stored.len(), 64);
    let page = b.get("/maintenance").await;
    assert!(!page.body.contains(&token), "shown only once");
    assert!(
        page.body.contains("Scrape token: <strong>set</strong>"),
        "{}",
        page.body
    );

    // The token reads the metrics, and nothing else.
    let r = scrape(&mut tool, &token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, expected_metrics(&h));
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for path in [
        "/status.json",
        "/maintenance",
        "/maintenance/config.toml",
        "/status",
    ] {
        let r = tool
            .get_as_tool(path, &[("authorization", &bearer(&token))])
            .await;
        assert!(r.status == 401 || r.status == 303, "{path}: {}", r.status);
        assert!(!r.body.contains("boxidr_queue_records"), "{path}");
    }
    assert_eq!(scrape(&mut tool, &format!("{token}0")).await.status, 401);
    assert_eq!(scrape(&mut tool, "").await.status, 401);
    let r = tool
        .get_as_tool("/metrics", &[("authorization", &format!("Basic {token}"))])
        .await;
    assert_eq!(r.status, 401);

    // Replace: the old token stops working.
    let csrf = b.get("/maintenance").await.csrf();
    let r = b
        .post(
            "/maintenance/metrics-token",
            &[("csrf", &csrf), ("action", "generate")],
        )
        .await;
    let second = token_of(&r.body);
    assert_ne!(second, token);
    assert_eq!(scrape(&mut tool, &token).await.status, 401);
    assert_eq!(scrape(&mut tool, &second).await.status, 200);

    // Revoke; and a POST without the CSRF token changes nothing.
    let r = b
        .post("/maintenance/metrics-token", &[("action", "revoke")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(scrape(&mut tool, &second).await.status, 200);
    let csrf = b.get("/maintenance").await.csrf();
    let r = b
        .post(
            "/maintenance/metrics-token",
            &[("csrf", &csrf), ("action", "revoke")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("revoked"));
    assert_eq!(scrape(&mut tool, &second).await.status, 401);
    assert!(h.secret(settings::METRICS_TOKEN_HASH).await.is_none());
}

/// With every secret set (Box client secret and refresh token, Log Search token, Platform API
/// key, the admin password, the page's TLS key), none appears in `/metrics`, `/status.json`,
/// the Maintenance page, the export or any file of the support bundle — not even when the
/// journal itself logged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_export_and_bundle_hold_no_secret() {
    let h = Harness::start_customised(sim_config(), |options, dir| {
        options.journal_command = vec![
            "cat".to_owned(),
            dir.join("journal-fixture.txt").display().to_string(),
        ];
    })
    .await;
    *h.status.0.lock().unwrap() = metrics_status();
    // Before login: nothing.
    let mut b = h.claimed_browser().await;
    let mut anon = h.browser();
    assert_eq!(anon.get("/metrics").await.status, 401);
    for path in [
        "/maintenance",
        "/maintenance/config.toml",
        "/maintenance/bundle.tar.gz",
        "/collection/scope.csv",
    ] {
        let r = anon.get(path).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.location().as_deref(), Some("/login"), "{path}");
    }

    // Every secret set, through the page.
    let authorize = start_connect(&h, &mut b).await;
    let callback = consent(&authorize, true).await;
    assert_eq!(b.get(&callback).await.status, 200);
    let csrf = b.get("/insightidr").await.csrf();
    let r = b
        .post(
            "/insightidr",
            &[
                ("csrf", &csrf),
                ("log_search_enabled", "on"),
                ("region", "eu"),
                ("log_search_token", "tok-SECRET-a1b2c3d4e5"),
                ("platform_api_key", "key-SECRET-f6a7b8c9d0"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let refresh = h.secret(settings::BOX_REFRESH_TOKEN).await.unwrap();
    let tls_key = h.secret(settings::TLS_KEY).await.unwrap();
    let tls_key_body = tls_key.lines().nth(1).unwrap().to_owned();
    let secrets = [
        h.sim.config().client_secret.clone(),
        refresh.clone(),
        "tok-SECRET-a1b2c3d4e5".to_owned(),
        "key-SECRET-f6a7b8c9d0".to_owned(),
        PASSWORD.to_owned(),
        tls_key_body,
    ];
    std::fs::write(
        h.dir.path().join("journal-fixture.txt"),
        format!(
            "2025-01-01T00:00:00+0000 boxidr[1]: a log line that leaked {refresh} by mistake\n"
        ),
    )
    .unwrap();
    let leaks = |what: &str, text: &str| {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} holds a secret");
        }
    };

    // /metrics: Prometheus text behind the login, never cached.
    let m = b.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert_eq!(
        m.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(m.headers["cache-control"], "no-store");
    assert_eq!(m.body, expected_metrics(&h));
    leaks("/metrics", &m.body);
    leaks("/status.json", &b.get("/status.json").await.body);

    let page = b.get("/maintenance").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("href=\"/maintenance\""),
        "in the navigation"
    );
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    leaks("/maintenance", &page.body);

    // The export: importable TOML naming the set secrets, with no value.
    let (status, headers, export) = b.get_bytes("/maintenance/config.toml").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("boxidr.toml")
    );
    let export = String::from_utf8(export).unwrap();
    leaks("the export", &export);
    for name in [
        "Box client secret",
        "Box refresh token",
        "Log Search token",
        "Platform API key",
    ] {
        assert!(export.contains(name), "{name} named in {export}");
    }
    assert_eq!(Config::from_toml(&export).unwrap(), **h.config_rx.borrow());

    // The bundle.
    let (status, headers, bundle) = b.get_bytes("/maintenance/bundle.tar.gz").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/gzip");
    let files = untar(&bundle);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "boxidr-support/status.json",
            "boxidr-support/config.toml",
            "boxidr-support/versions.txt",
            "boxidr-support/journal.txt"
        ]
    );
    for (name, text) in &files {
        leaks(name, text);
    }
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(bundle.as_slice())
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let raw = String::from_utf8_lossy(&tar_bytes).into_owned();
    leaks("the whole archive", &raw);
    let status_json: serde_json::Value = serde_json::from_str(&files[0].1).unwrap();
    assert_eq!(status_json["facts"]["store"]["queue_records"], 3);
    assert!(
        status_json.get("metrics").is_none(),
        "computed on request, not stored"
    );
    assert_eq!(files[1].1, export);
    assert!(files[2].1.starts_with("boxidr "), "{}", files[2].1);
    assert!(
        files[3]
            .1
            .contains("a log line that leaked [redacted] by mistake"),
        "{}",
        files[3].1
    );
    h.stop().await;
}

/// Without journalctl the bundle says so in journal.txt instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_without_journal() {
    let h = Harness::start_customised(sim_config(), |options, _| {
        options.journal_command = vec!["/nonexistent/journalctl".to_owned()];
    })
    .await;
    let mut b = h.claimed_browser().await;
    let (status, _, bundle) = b.get_bytes("/maintenance/bundle.tar.gz").await;
    assert_eq!(status, 200);
    let files = untar(&bundle);
    let journal = &files
        .iter()
        .find(|(n, _)| n.ends_with("journal.txt"))
        .unwrap()
        .1;
    assert!(
        journal.starts_with("The service journal is not included: "),
        "{journal}"
    );
    h.stop().await;
}

/// Import validates the whole file, refuses with the reason and changes nothing when it is
/// invalid, and otherwise saves it atomically, keeping this appliance's data directory and
/// page address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_validates_and_keeps_appliance_paths() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let csrf = b.get("/maintenance").await.csrf();
    let (_, _, export) = b.get_bytes("/maintenance/config.toml").await;
    let export = String::from_utf8(export).unwrap();
    let before = file_text(&h);

    let refused = [
        ("not toml [".to_owned(), "not valid TOML"),
        (format!("{export}\n[surprise]\nx = 1\n"), "surprise"),
        (
            export.replace("page_limit = 500", "page_limit = 9999"),
            "page_limit",
        ),
    ];
    for (text, reason) in &refused {
        let r = b
            .post_multipart(
                "/maintenance/import",
                &[("csrf", &csrf)],
                &[("config_file", "boxidr.toml", text.as_bytes())],
            )
            .await;
        assert_eq!(r.status, 400, "{reason}");
        assert!(r.body.contains("Nothing was changed"), "{}", r.body);
        assert!(r.body.contains(reason), "{reason}: {}", r.body);
    }
    let r = b
        .post_multipart("/maintenance/import", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Choose a configuration file"));
    let mut imported: Config = Config::from_toml(&export).unwrap();
    imported.mapping.default_domain = Some("IMPORTED".into());
    imported.data_dir = "/somewhere/else".into();
    imported.setup.listen = "0.0.0.0:9999".parse().unwrap();
    let text = toml::to_string(&imported).unwrap();
    let r = b
        .post_multipart(
            "/maintenance/import",
            &[],
            &[("config_file", "boxidr.toml", text.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 403, "CSRF");
    assert_eq!(file_text(&h), before, "nothing changed by refusals");

    let r = b
        .post_multipart(
            "/maintenance/import",
            &[("csrf", &csrf)],
            &[("config_file", "boxidr.toml", text.as_bytes())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location().as_deref(), Some("/maintenance?imported=kept"));
    let published = h.config_rx.borrow().clone();
    assert_eq!(
        published.mapping.default_domain.as_deref(),
        Some("IMPORTED")
    );
    assert_eq!(published.data_dir, h.dir.path());
    assert!(published.setup.listen.ip().is_loopback());
    assert_eq!(Config::from_toml(&file_text(&h)).unwrap(), *published);
    let page = b.get("/maintenance?imported=kept").await;
    assert!(page.body.contains("kept its own data directory"));
    h.stop().await;
}

/// The new state-changing routes refuse everything before the password is set and without a
/// session, like every other POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_posts_need_a_session() {
    let h = Harness::start().await;
    let mut b = h.browser();
    let csrf = b.get("/claim").await.csrf();
    let paths = [
        "/insightidr/test",
        "/mapping/preview",
        "/collection/scope",
        "/collection/scope/clear",
        "/maintenance/import",
    ];
    for path in paths {
        let r = b.post(path, &[("csrf", &csrf)]).await;
        assert_eq!(r.status, 403, "{path}");
    }
    for path in ["/metrics", "/maintenance", "/maintenance/bundle.tar.gz"] {
        let r = b.get(path).await;
        assert_eq!(r.location().as_deref(), Some("/claim"), "{path}");
    }
    let _admin = h.claimed_browser().await;
    let mut other = h.browser();
    let csrf = other.get("/login").await.csrf();
    for path in paths {
        let r = other.post(path, &[("csrf", &csrf)]).await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert!(h.config_rx.borrow().scope.is_everyone());
    h.stop().await;
}
