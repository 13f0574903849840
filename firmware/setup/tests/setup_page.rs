//! The setup page over real TLS on loopback: first boot, sessions, CSRF, escaping, secrets,
//! settings (RELIABILITY.md §6 scenarios 18–21, 23–25, 27).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use boxidr_store::settings;
use common::{Browser, Harness, PASSWORD, consent, query_param, start_connect, with_state};

/// Before a password exists every route leads to /claim; the startup code works exactly once;
/// the password is stored as argon2id; the session cookie is hardened and replaced at claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_boot_code_works_once() {
    let h = Harness::start().await;
    let code = h.code.clone().expect("a first start issues a setup code");
    assert!(code.len() >= 19);
    let mut b = h.browser();
    for path in [
        "/",
        "/status",
        "/box",
        "/insightidr",
        "/login",
        "/certificate",
        "/oauth/callback",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location().as_deref(), Some("/claim"), "{path}");
    }
    let json = b.get("/status.json").await;
    assert_eq!(json.status, 303);

    let page = b.get("/claim").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&h.server().fingerprint()));
    let anonymous = b.session().expect("claim page sets a session cookie");
    let cookie = page.set_cookies().join("\n");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let csp = page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(!page.body.contains("<script"), "no page carries script");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");

    let csrf = page.csrf();
    let wrong = b
        .post(
            "/claim",
            &[
                ("csrf", &csrf),
                ("code", "0000-0000-0000-0000"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_ne!(wrong.status, 303);
    let short = b
        .post(
            "/claim",
            &[
                ("csrf", &csrf),
                ("code", &code),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_ne!(short.status, 303);
    assert!(short.body.contains("at least 12"));
    assert!(h.secret(settings::PASSWORD_HASH).await.is_none());

    let ok = b
        .post(
            "/claim",
            &[
                ("csrf", &csrf),
                ("code", &code.to_lowercase()),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let admin = b.session().unwrap();
    assert_ne!(
        admin, anonymous,
        "the session id is replaced when the admin signs in"
    );
    let hash = h.secret(settings::PASSWORD_HASH).await.unwrap();
    assert!(hash.contains("argon2id") && !hash.contains(PASSWORD));
    assert!(
        h.secret(settings::SETUP_CODE_HASH).await.is_none(),
        "the code is dead"
    );
    assert_eq!(b.get("/status").await.status, 200);

    // The same code again, from another browser: refused, password unchanged.
    let mut other = h.browser();
    let page = other.get("/claim").await;
    assert_eq!(page.location().as_deref(), Some("/login"));
    let page = other.get("/login").await;
    let again = other
        .post(
            "/claim",
            &[
                ("csrf", &page.csrf()),
                ("code", &code),
                ("password", "another long password"),
                ("confirm", "another long password"),
            ],
        )
        .await;
    assert_ne!(again.status, 200);
    assert_eq!(again.location().as_deref(), Some("/login"));
    assert!(boxidr_setup::setup_code(&h.store).await.unwrap().is_none());
    h.login().await;
    h.stop().await;
}

/// Login replaces the session id; the old id is worthless; logout ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rotates_session_and_logout_ends_it() {
    let h = Harness::start().await;
    h.claimed_browser().await;
    let mut b = h.browser();
    let page = b.get("/login").await;
    let before = b.session().unwrap();
    let done = b
        .post("/login", &[("csrf", &page.csrf()), ("password", PASSWORD)])
        .await;
    assert_eq!(done.status, 303);
    let after = b.session().unwrap();
    assert_ne!(before, after);
    let cookie = done.set_cookies().join("\n");
    assert!(
        cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
    );

    let mut stale = h.browser();
    stale.jar.insert("__Host-boxidr".into(), before);
    assert_eq!(
        stale.get("/status").await.location().as_deref(),
        Some("/login")
    );

    let page = b.get("/status").await;
    assert_eq!(page.status, 200);
    let out = b.post("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, 303);
    let mut replay = h.browser();
    replay.jar.insert("__Host-boxidr".into(), after);
    assert_eq!(
        replay.get("/status").await.location().as_deref(),
        Some("/login")
    );
    h.stop().await;
}

/// 15 idle minutes end a session; activity keeps it; 8 hours end it regardless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_absolute_timeouts() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    h.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(b.get("/status").await.status, 200);
    h.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(b.get("/status").await.status, 200);
    h.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(b.get("/status").await.location().as_deref(), Some("/login"));

    // The status page's automatic refresh does not count as activity.
    let mut b = h.login().await;
    for _ in 0..3 {
        h.clock.advance(Duration::from_secs(6 * 60));
        let page = b.get("/status?auto=1").await;
        if page.status != 200 {
            assert_eq!(page.location().as_deref(), Some("/login"));
            break;
        }
    }
    assert_eq!(b.get("/status").await.location().as_deref(), Some("/login"));

    let mut b = h.login().await;
    for _ in 0..(8 * 60 / 10) {
        h.clock.advance(Duration::from_secs(10 * 60));
        let page = b.get("/status").await;
        if page.status != 200 {
            assert_eq!(page.location().as_deref(), Some("/login"));
            h.stop().await;
            return;
        }
    }
    panic!("the absolute timeout never ended the session");
}

/// Repeated failures throttle the address: even the right password is refused, with the same
/// generic message, until the delay passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled() {
    let h = Harness::start().await;
    h.claimed_browser().await;
    let mut b = h.browser();
    let page = b.get("/login").await;
    let csrf = page.csrf();
    let mut messages = Vec::new();
    for _ in 0..10 {
        let r = b
            .post(
                "/login",
                &[("csrf", &csrf), ("password", "wrong password here")],
            )
            .await;
        assert_eq!(r.status, 401);
        messages.push(r.body);
    }
    let locked = b
        .post("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(locked.status, 401, "right password refused while throttled");
    let generic = |body: &str| body.contains(boxidr_setup_generic());
    assert!(messages.iter().all(|m| generic(m)) && generic(&locked.body));
    h.clock.advance(Duration::from_secs(16 * 60));
    let ok = b
        .post("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(ok.status, 303);
    h.stop().await;
}

fn boxidr_setup_generic() -> &'static str {
    "That did not work."
}

/// State-changing requests without the token, with a wrong or foreign token, with a foreign or
/// missing Origin, or as GET change nothing (file, published config, store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_and_origin_are_enforced() {
    let h = Harness::start().await;
    let mut a = h.claimed_browser().await;
    let mut other = h.login().await;
    let foreign = other.get("/mapping").await.csrf();
    let own = a.get("/mapping").await.csrf();
    let file_before = std::fs::read_to_string(&h.config_path).unwrap();
    let origin = a.origin.clone();
    let cases: [(Option<&str>, Option<&str>); 6] = [
        (None, Some(&origin)),
        (Some("not-the-token"), Some(&origin)),
        (Some(&foreign), Some(&origin)),
        (Some(&own), Some("https://evil.example")),
        (Some(&own), Some("null")),
        (Some(&own), None),
    ];
    for (i, (token, origin)) in cases.into_iter().enumerate() {
        let mut fields = vec![
            ("default_domain", "EVIL"),
            ("account_format", "upn"),
            ("authentication_target", "Box"),
        ];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let r = a.post_with("/mapping", &fields, origin).await;
        assert_eq!(r.status, 403, "case {i}");
    }
    let r = a
        .get("/mapping?csrf=x&default_domain=EVIL&account_format=upn")
        .await;
    assert_eq!(r.status, 200);
    // Login and logout are guarded the same way.
    let r = other
        .post_with("/logout", &[("csrf", "nope")], Some(&other.origin.clone()))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        std::fs::read_to_string(&h.config_path).unwrap(),
        file_before
    );
    assert_eq!(h.config_rx.borrow().mapping.default_domain, None);
    assert_eq!(
        other.get("/status").await.status,
        200,
        "logout without token did nothing"
    );

    // A cross-site fetch marker wins over a matching Origin.
    let r = a
        .post_headers(
            "/mapping",
            &[
                ("csrf", &own),
                ("default_domain", "EVIL"),
                ("account_format", "upn"),
                ("authentication_target", "Box"),
            ],
            &[
                ("origin", &a.origin.clone()),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(h.config_rx.borrow().mapping.default_domain, None);
    // What a real browser sends for our own form under Referrer-Policy: no-referrer.
    let r = a
        .post_headers(
            "/mapping",
            &[
                ("csrf", &own),
                ("default_domain", "NULLORIGIN"),
                ("account_format", "upn"),
                ("authentication_target", "Box"),
            ],
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        h.config_rx.borrow().mapping.default_domain.as_deref(),
        Some("NULLORIGIN")
    );

    // And the real thing works.
    let r = a
        .post(
            "/mapping",
            &[
                ("csrf", &own),
                ("default_domain", "CORP"),
                ("account_format", "upn"),
                ("authentication_target", "Box"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        h.config_rx.borrow().mapping.default_domain.as_deref(),
        Some("CORP")
    );
    h.stop().await;
}

/// Invalid settings are refused field by field and nothing is saved; valid ones rewrite the
/// file, publish the new config, and put secrets in the store only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_validate_and_save_atomically() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let csrf = b.get("/insightidr").await.csrf();
    let file_before = std::fs::read_to_string(&h.config_path).unwrap();
    let bad = b
        .post(
            "/insightidr",
            &[
                ("csrf", &csrf),
                ("collector_enabled", "on"),
                ("collector_host", ""),
                ("collector_port", "70000"),
                ("log_search_enabled", "on"),
                ("region", "mars"),
                ("log_search_token", "tok-SECRET-1111"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    for msg in [
        "Enter the Collector",
        "between 1 and 65535",
        "Choose a region",
    ] {
        assert!(bad.body.contains(msg), "{msg}");
    }
    assert!(bad.body.contains("Nothing was saved"));
    assert!(!bad.body.contains("tok-SECRET-1111"));
    assert_eq!(
        std::fs::read_to_string(&h.config_path).unwrap(),
        file_before
    );
    assert!(
        h.secret(settings::LOG_SEARCH_TOKEN).await.is_none(),
        "no secret half-saved"
    );

    let good = b
        .post(
            "/insightidr",
            &[
                ("csrf", &csrf),
                ("collector_enabled", "on"),
                ("collector_host", "collector.corp.example"),
                ("collector_port", "6514"),
                ("log_search_enabled", "on"),
                ("region", "eu"),
                ("log_search_token", "tok-SECRET-1111"),
                ("platform_api_key", "key-SECRET-2222"),
            ],
        )
        .await;
    assert_eq!(good.status, 303, "{}", good.body);
    let file = std::fs::read_to_string(&h.config_path).unwrap();
    assert!(
        file.contains("collector.corp.example") && file.contains("\"eu\""),
        "{file}"
    );
    assert!(!file.contains("SECRET"));
    let published = h.config_rx.borrow().clone();
    assert_eq!(published.insightidr.collector.as_ref().unwrap().port, 6514);
    assert_eq!(
        h.secret(settings::LOG_SEARCH_TOKEN).await.as_deref(),
        Some("tok-SECRET-1111")
    );
    let page = b.get("/insightidr").await;
    assert!(page.body.contains("set") && !page.body.contains("SECRET"));
    for path in [
        "/status",
        "/status.json",
        "/box",
        "/mapping",
        "/collection",
        "/certificate",
        "/password",
    ] {
        let other = b.get(path).await;
        assert_eq!(other.status, 200, "{path}");
        assert!(
            !other.body.contains("SECRET"),
            "{path} shows a stored secret"
        );
    }

    // Saving again without typing the token keeps it.
    let csrf = page.csrf();
    let r = b
        .post(
            "/insightidr",
            &[
                ("csrf", &csrf),
                ("log_search_enabled", "on"),
                ("region", "us"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        h.secret(settings::LOG_SEARCH_TOKEN).await.as_deref(),
        Some("tok-SECRET-1111")
    );
    assert!(h.config_rx.borrow().insightidr.collector.is_none());

    // Collection: a backfill beyond what admin_logs keeps (365 days) is a field error.
    let csrf = b.get("/collection").await.csrf();
    let r = b
        .post(
            "/collection",
            &[
                ("csrf", &csrf),
                ("stream_type", "admin_logs_streaming"),
                ("completeness_lag_secs", "900"),
                ("backfill_days", "400"),
                ("poll_interval_secs", "10"),
                ("page_limit", "500"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("backfill_days"));
    assert_eq!(h.config_rx.borrow().events.backfill_days, 7);
    h.stop().await;
}

/// Strings from Box and from the status source render as text, never as markup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_are_inert() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let hostile = "<script>alert(1)</script>\"><svg onload=alert(2)>\u{202E}";
    // Every string field the report has (its enums cannot carry text).
    *h.status.0.lock().unwrap() = serde_json::json!({
        "state": "not_collecting",
        "reason": hostile,
        "version": hostile,
        "health": {"overall": "failing", "problems": [
            {"code": "sink_unreachable", "severity": "error", "component": "collector",
             "message": hostile, "fix": hostile}
        ]},
        "box": {"stream": {"last_error": hostile}, "by_type": {hostile: 1}},
        "sinks": {"collector": {"state": "retrying", "last_error": hostile, "detail": hostile}},
        "verifier": {"marker": hostile, "last_error": hostile},
    });
    h.store
        .put_setting(
            settings::BOX_ACCOUNT,
            &serde_json::json!({"name": hostile, "login": hostile, "role": "admin", "enterprise": hostile}),
        )
        .await
        .unwrap();
    for path in ["/status", "/box"] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<svg"), "{path}");
        assert!(!page.body.contains('\u{202E}'), "{path}");
        assert!(page.body.contains("&lt;script&gt;alert(1)"), "{path}");
    }
    let json = b.get("/status.json").await;
    let parsed: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(
        parsed["sinks"]["collector"]["last_error"], hostile,
        "JSON carries the value, JSON-escaped"
    );
    assert!(
        json.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    h.stop().await;
}

/// Plain HTTP only redirects to HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_redirects() {
    let h = Harness::start().await;
    let addr = h.server().http_addr().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("http://{addr}/login?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 301);
    let port = h.server().local_addr().port();
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("https://127.0.0.1:{port}/login?x=1")
    );
    h.stop().await;
}

/// An uploaded certificate must match its key and is served to new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_upload() {
    let mut h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/certificate").await;
    assert!(page.body.contains(&h.server().fingerprint()));
    let csrf = page.csrf();
    let own = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = own.cert.pem();
    let r = b
        .post(
            "/certificate",
            &[
                ("csrf", &csrf),
                ("cert", &cert),
                ("key", &other.signing_key.serialize_pem()),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("does not belong"));
    let r = b
        .post(
            "/certificate",
            &[
                ("csrf", &csrf),
                ("cert", &cert),
                ("key", &own.signing_key.serialize_pem()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    h.reload_cert().await;
    let mut fresh = h.browser();
    assert_eq!(
        fresh.get("/login").await.status,
        200,
        "new connections get the uploaded certificate"
    );
    assert_eq!(
        h.server().fingerprint(),
        boxidr_setup::tls::fingerprint(own.cert.der())
    );
    h.stop().await;
}

/// The whole Box connection through the simulator's consent page: the refresh token is stored
/// before anything else, the collector hook runs, and the page shows the connected account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_connect_through_consent_page() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let authorize = start_connect(&h, &mut b).await;
    assert!(
        b.jar.contains_key("__Host-boxidr-oauth"),
        "binder cookie set"
    );
    let callback = consent(&authorize, true).await;
    assert!(
        callback.starts_with(&format!("{}/oauth/callback?", b.base)),
        "{callback}"
    );
    let done = b.get(&callback).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Box is connected"));
    let (_, login) = h.sim.authorizing_user();
    assert!(
        done.body.contains(&login),
        "account from /users/me is shown"
    );
    let refresh = h
        .secret(settings::BOX_REFRESH_TOKEN)
        .await
        .expect("refresh token stored");
    assert_eq!(h.sim.valid_refresh_tokens(), 1);
    assert_eq!(
        h.connected.lock().unwrap().as_slice(),
        ["AuthorizationCode"]
    );
    let grant = h.store.setting(settings::BOX_GRANT).await.unwrap().unwrap();
    assert_eq!(grant["type"], "authorization_code");
    let page = b.get("/box").await;
    assert!(page.body.contains(&login));

    // Secrets never appear on any page or in the JSON.
    let client_secret = h.sim.config().client_secret.clone();
    for path in [
        "/status",
        "/status.json",
        "/box",
        "/insightidr",
        "/mapping",
        "/collection",
        "/certificate",
        "/password",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains(&client_secret),
            "{path} shows the client secret"
        );
        assert!(
            !page.body.contains(&refresh),
            "{path} shows the refresh token"
        );
    }
    assert!(
        !std::fs::read_to_string(&h.config_path)
            .unwrap()
            .contains(&client_secret)
    );
    h.stop().await;
}

/// Every abuse of the OAuth `state` is refused with no token stored and no code exchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_state_abuse_is_refused() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let mut other = h.login().await;

    async fn refused(h: &Harness, b: &mut Browser, url: &str, expect: &str) {
        let r = b.get(url).await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(
            r.body.contains(expect),
            "{url}: wanted {expect:?} in {}",
            r.body
        );
        assert!(
            h.secret(settings::BOX_REFRESH_TOKEN).await.is_none(),
            "{url}: token stored"
        );
        assert!(h.connected.lock().unwrap().is_empty());
    }

    // Missing state.
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    refused(&h, &mut b, &with_state(&callback, None), "no state value").await;
    // Wrong (tampered) state.
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    refused(
        &h,
        &mut b,
        &with_state(&callback, Some(&"ab".repeat(32))),
        "state value differs",
    )
    .await;
    // Another session's state, presented by this browser.
    let mine = consent(&start_connect(&h, &mut b).await, true).await;
    let theirs = consent(&start_connect(&h, &mut other).await, true).await;
    let their_state = query_param(&theirs, "state").unwrap();
    refused(
        &h,
        &mut b,
        &with_state(&mine, Some(&their_state)),
        "state value differs",
    )
    .await;
    // ...and a callback from a browser that never started one.
    let mut stranger = h.login().await;
    refused(&h, &mut stranger, &theirs, "not started from this browser").await;
    // Expired: more than 10 minutes at Box.
    let authorize = start_connect(&h, &mut b).await;
    let callback = consent(&authorize, true).await;
    h.clock.advance(Duration::from_secs(10 * 60 + 1));
    b.get("/status").await;
    refused(&h, &mut b, &callback, "More than 10 minutes").await;
    // Denied consent.
    let mut b = h.login().await;
    let denied = consent(&start_connect(&h, &mut b).await, false).await;
    assert_eq!(
        query_param(&denied, "error").as_deref(),
        Some("access_denied")
    );
    refused(&h, &mut b, &denied, "Access was denied").await;
    assert!(
        h.sim.token_outcomes().is_empty(),
        "no code was ever exchanged: {:?}",
        h.sim.token_outcomes()
    );

    // Reused: a good callback works once; replaying it stores nothing more.
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    let binder = b.jar["__Host-boxidr-oauth"].clone();
    assert_eq!(b.get(&callback).await.status, 200);
    assert!(
        !b.jar.contains_key("__Host-boxidr-oauth"),
        "the binder cookie is cleared"
    );
    b.jar.insert("__Host-boxidr-oauth".into(), binder);
    h.store
        .delete_secret(settings::BOX_REFRESH_TOKEN)
        .await
        .unwrap();
    h.connected.lock().unwrap().clear();
    refused(&h, &mut b, &callback, "already used").await;
    assert_eq!(
        h.sim.token_outcomes().len(),
        1,
        "the replayed code never reached Box"
    );
    h.stop().await;
}

/// Factory reset revokes the Box token at Box, ends sessions, kills the password, and issues a
/// new setup code and certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_reset_returns_to_first_boot() {
    let mut h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    assert_eq!(b.get(&callback).await.status, 200);
    let old_fp = h.server().fingerprint();
    let old_code = h.code.clone().unwrap();

    let report = h.server().factory_reset().await.unwrap();
    assert_eq!(report.box_revocation, Some(Ok(())));
    assert!(!h.sim.revocations().is_empty(), "Box saw the revocation");
    assert_eq!(h.sim.valid_refresh_tokens(), 0);
    assert_ne!(report.fingerprint, old_fp);
    assert_eq!(h.server().fingerprint(), report.fingerprint);
    for key in settings::RESET_SECRETS {
        if *key != settings::TLS_CERT
            && *key != settings::TLS_KEY
            && *key != settings::SETUP_CODE_HASH
        {
            assert!(h.secret(*key).await.is_none(), "{key} survived the reset");
        }
    }
    h.reload_cert().await;
    let mut fresh = h.browser();
    assert_eq!(
        fresh.get("/status").await.location().as_deref(),
        Some("/claim")
    );
    let page = fresh.get("/claim").await;
    let csrf = page.csrf();
    let old = fresh
        .post(
            "/claim",
            &[
                ("csrf", &csrf),
                ("code", &old_code),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_ne!(old.status, 303, "the old setup code is dead");
    h.code = Some(report.setup_code.as_str().to_owned());
    let mut again = h.claimed_browser().await;
    assert_eq!(again.get("/status").await.status, 200);
    h.stop().await;
}

/// Before the password is set, every POST route is refused and nothing is stored; the private
/// tiny_http port refuses requests that did not come through the TLS front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclaimed_posts_and_bypass_are_refused() {
    let h = Harness::start().await;
    let mut b = h.browser();
    let csrf = b.get("/claim").await.csrf();
    for path in [
        "/login",
        "/logout",
        "/box/app",
        "/box/connect",
        "/box/ccg",
        "/insightidr",
        "/mapping",
        "/collection",
        "/certificate",
        "/password",
    ] {
        let r = b
            .post(
                path,
                &[("csrf", &csrf), ("password", PASSWORD), ("client_id", "x")],
            )
            .await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert!(h.secret(settings::PASSWORD_HASH).await.is_none());
    let stored = h
        .store
        .get_setting(settings::BOX_CLIENT_ID.name().to_owned())
        .await
        .unwrap();
    assert!(stored.is_none());

    let plain = reqwest::Client::new();
    let worker = h.server().worker_addr();
    assert!(worker.ip().is_loopback());
    let r = plain
        .get(format!("http://{worker}/claim"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "TLS front cannot be bypassed");
    let r = plain
        .get(format!("http://{}/claim", h.server().local_addr()))
        .send()
        .await;
    assert!(r.is_err(), "the HTTPS port does not speak plain HTTP");
    h.stop().await;
}

/// The client-credentials alternative connects the service account, shows it, and stores no
/// refresh token; a wrong enterprise ID is explained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_grant() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    start_connect(&h, &mut b).await;
    let page = b.get("/box").await;
    let r = b
        .post(
            "/box/ccg",
            &[("csrf", &page.csrf()), ("enterprise_id", "not a number")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("enterprise ID is a number"));
    let r = b
        .post(
            "/box/ccg",
            &[("csrf", &page.csrf()), ("enterprise_id", "999")],
        )
        .await;
    assert!(
        r.body.contains("Box refused the authorization"),
        "{}",
        r.body
    );
    assert!(h.connected.lock().unwrap().is_empty());
    let eid = h.sim.config().enterprise_id.clone();
    let r = b
        .post(
            "/box/ccg",
            &[("csrf", &page.csrf()), ("enterprise_id", &eid)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("connected with client credentials"));
    assert!(
        r.body
            .contains(&format!("client credentials, enterprise {eid}"))
    );
    assert!(h.secret(settings::BOX_REFRESH_TOKEN).await.is_none());
    assert_eq!(h.connected.lock().unwrap().len(), 1);
    h.stop().await;
}

/// When the registered redirect URI differs, Box shows redirect_uri_mismatch on its own page;
/// our Box page tells the admin what to copy where. A pasted Collector CA is stored as a file
/// next to the database and referenced from the configuration; the status page refreshes
/// itself without script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mismatch_guidance_ca_paste_and_refresh() {
    let h = Harness::start_with(box_sim::SimConfig {
        redirect_uris: vec!["https://box.example.com/oauth/callback".into()],
        backlog: 0,
        users: 2,
        ..box_sim::SimConfig::default()
    })
    .await;
    let mut b = h.claimed_browser().await;
    let authorize = start_connect(&h, &mut b).await;
    let at_box = reqwest::get(&authorize).await.unwrap();
    assert_eq!(at_box.status().as_u16(), 400);
    assert!(
        at_box
            .text()
            .await
            .unwrap()
            .contains("redirect_uri_mismatch")
    );
    let page = b.get("/box").await;
    assert!(page.body.contains("if Box shows redirect_uri_mismatch"));

    let ca = rcgen::generate_simple_self_signed(vec!["collector.example".to_owned()]).unwrap();
    let csrf = b.get("/insightidr").await.csrf();
    let r = b
        .post(
            "/insightidr",
            &[
                ("csrf", &csrf),
                ("collector_enabled", "on"),
                ("collector_host", "collector.example"),
                ("collector_port", "6514"),
                ("collector_ca_pem", &ca.cert.pem()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let path = h
        .config_rx
        .borrow()
        .insightidr
        .collector
        .clone()
        .unwrap()
        .ca_file
        .unwrap();
    assert!(path.starts_with(h.dir.path()));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let status = b.get("/status").await;
    assert!(status.body.contains("http-equiv=\"refresh\""));
    h.stop().await;
}

/// Right after connecting, the page says which permission is missing: the role (a regular
/// user) for both reads, or the app's "Manage users" scope for the user list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reports_missing_permissions() {
    let h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    let done = b.get(&callback).await;
    assert_eq!(done.body.matches(">allowed<").count(), 2, "{}", done.body);

    h.sim.set_authorizing_role(box_sim::Role::User);
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    let done = b.get(&callback).await;
    assert_eq!(done.status, 200);
    assert!(
        done.body.contains("allowed to run reports"),
        "{}",
        done.body
    );
    assert!(done.body.contains("allowed to manage users"));
    h.stop().await;

    let h = Harness::start_with(box_sim::SimConfig {
        redirect_uris: vec!["https://127.0.0.1/oauth/callback".into()],
        app_scopes: vec!["manage_enterprise_properties".into()],
        backlog: 0,
        users: 2,
        ..box_sim::SimConfig::default()
    })
    .await;
    let mut b = h.claimed_browser().await;
    let callback = consent(&start_connect(&h, &mut b).await, true).await;
    let done = b.get(&callback).await;
    assert_eq!(done.body.matches(">allowed<").count(), 1, "{}", done.body);
    assert!(done.body.contains("Manage users"));
    let page = b.get("/box").await;
    assert!(
        page.body.contains("missing: the app needs the scope"),
        "{}",
        page.body
    );
    h.stop().await;
}

/// Changing the password needs the current one, ends every other session, and the old
/// password stops working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_ends_other_sessions() {
    let h = Harness::start().await;
    let mut a = h.claimed_browser().await;
    let mut other = h.login().await;
    let csrf = a.get("/password").await.csrf();
    let new = "an entirely new passphrase";
    let r = a
        .post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", "not it at all!"),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(other.get("/status").await.status, 200);
    let before = a.session().unwrap();
    let r = a
        .post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_ne!(a.session().unwrap(), before);
    assert_eq!(a.get("/status").await.status, 200);
    assert_eq!(
        other.get("/status").await.location().as_deref(),
        Some("/login")
    );
    let mut b = h.browser();
    let page = b.get("/login").await;
    let old = b
        .post("/login", &[("csrf", &page.csrf()), ("password", PASSWORD)])
        .await;
    assert_eq!(old.status, 401);
    let ok = b
        .post("/login", &[("csrf", &page.csrf()), ("password", new)])
        .await;
    assert_eq!(ok.status, 303);
    h.stop().await;
}
