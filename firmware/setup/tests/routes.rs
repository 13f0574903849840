//! RELIABILITY.md §6 scenarios 18–20 by walking the router's own route table
//! ([`boxidr_setup::ROUTES`]) rather than a hand-kept list: before claim every route leads to
//! the claim page, without a session to the login page, and every POST without the CSRF token
//! or from a foreign Origin is refused with 403 and changes nothing. A crawl of every page
//! checks that each link and form points at a listed route, so the table cannot drift from
//! the pages.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

mod common;

use std::collections::BTreeSet;

use boxidr_setup::ROUTES;
use boxidr_store::settings::SecretKey;
use common::{Browser, Harness, PASSWORD};

/// Routes that need no session, in any state.
const STATIC: [&str; 2] = ["/static/style.css", "/static/copy.js"];
const FOREIGN: &str = "https://evil.example";

/// Every key the setup page writes in the store (settings and secrets) and the config file:
/// what a refused request must leave as it was.
async fn snapshot(h: &Harness) -> String {
    let mut out = String::new();
    for key in [
        "box.account",
        "box.client_id",
        "box.grant",
        "box.lan",
        "box.redirect_uri",
        "insightidr.collector.ca_file",
        "insightidr.log_search.base_url",
        "insightidr.log_search.ca_file",
        "setup.code",
        "setup.metrics_token",
        "setup.password",
        "setup.tls.uploaded",
    ] {
        let value = h.store.get_setting(key.to_owned()).await.unwrap();
        out.push_str(&format!("setting {key} = {value:?}\n"));
    }
    for key in [
        "box.client_secret",
        "insightidr.log_search_token",
        "insightidr.platform_api_key",
        "setup.code",
        "setup.metrics_token",
        "setup.password",
        "setup.tls.cert",
        "setup.tls.key",
    ] {
        let value = h.secret(SecretKey::new(key)).await;
        out.push_str(&format!("secret {key} = {value:?}\n"));
    }
    let config = std::fs::read_to_string(&h.config_path).unwrap_or_default();
    out.push_str(&format!("config:\n{config}"));
    out
}

fn routes(method: &str) -> impl Iterator<Item = &'static str> + '_ {
    ROUTES
        .iter()
        .filter(move |(_, m)| *m == method)
        .map(|(path, _)| *path)
}

/// A harmless field set, so a POST that got through would have something to act on.
const FIELDS: [(&str, &str); 2] = [("password", PASSWORD), ("confirm", PASSWORD)];

/// One refused POST: its form, its Origin header, what is wrong with it.
type Try<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);

/// Every POST route, refused with 403: without a token, with a wrong token, and (with this
/// browser's real token) from a foreign Origin and with no Origin at all.
async fn every_post_refused(b: &mut Browser, csrf: Option<&str>, state: &str) {
    let own = b.origin.clone();
    for path in routes("POST") {
        let mut tries: Vec<Try> = vec![
            (FIELDS.to_vec(), Some(own.as_str()), "no CSRF token"),
            (
                [("csrf", "forged")].into_iter().chain(FIELDS).collect(),
                Some(own.as_str()),
                "a forged CSRF token",
            ),
        ];
        if let Some(token) = csrf {
            let with: Vec<(&str, &str)> = [("csrf", token)].into_iter().chain(FIELDS).collect();
            tries.push((with.clone(), Some(FOREIGN), "a foreign Origin"));
            tries.push((with, Some("null"), "Origin null"));
        }
        for (form, origin, what) in tries {
            let origin = origin.map(str::to_owned);
            let page = b.post_with(path, &form, origin.as_deref()).await;
            assert_eq!(
                page.status,
                403,
                "{state}: POST {path} with {what} was not refused: {} {:?}\n{}",
                page.status,
                page.location(),
                page.body
            );
        }
    }
}

/// The `href`, `action` and `formaction` targets on a page that stay on this page, without
/// query or fragment.
fn targets(body: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for attr in ["href=\"", "action=\""] {
        for (i, _) in body.match_indices(attr) {
            let rest = &body[i + attr.len()..];
            let Some(end) = rest.find('"') else { continue };
            let url = &rest[..end];
            if !url.starts_with('/') || url.starts_with("//") {
                continue;
            }
            let path = url.split(['?', '#']).next().unwrap_or(url);
            found.insert(path.to_owned());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_is_gated_by_claim_login_csrf_and_origin() {
    let h = Harness::start().await;
    assert!(routes("GET").count() > 10 && routes("POST").count() > 10);

    // 1. Before claim: every GET leads to the claim page; every POST is refused.
    let before = snapshot(&h).await;
    let mut anon = h.browser();
    for path in routes("GET").filter(|p| !STATIC.contains(p)) {
        let page = anon.get(path).await;
        if path == "/claim" {
            assert_eq!(page.status, 200, "GET /claim before claim");
            assert!(page.body.contains("name=\"code\""), "the claim form");
        } else {
            assert_eq!(
                (page.status, page.location().as_deref()),
                (303, Some("/claim")),
                "before claim: GET {path}"
            );
        }
    }
    let claim_csrf = anon.get("/claim").await.csrf();
    every_post_refused(&mut anon, Some(&claim_csrf), "before claim").await;
    // With a valid token from the claim form, anything but the claim itself is still refused.
    for path in routes("POST").filter(|p| *p != "/claim") {
        let form: Vec<(&str, &str)> = [("csrf", claim_csrf.as_str())]
            .into_iter()
            .chain(FIELDS)
            .collect();
        let page = anon.post(path, &form).await;
        assert_eq!(page.status, 403, "before claim: POST {path} with a token");
    }
    assert_eq!(
        snapshot(&h).await,
        before,
        "refused requests changed nothing"
    );

    // 2. Claimed, no session: every GET leads to the login page, every POST is refused.
    let mut admin = h.claimed_browser().await;
    let claimed = snapshot(&h).await;
    let mut stranger = h.browser();
    for path in routes("GET").filter(|p| !STATIC.contains(p)) {
        let page = stranger.get(path).await;
        match path {
            "/login" => assert_eq!(page.status, 200, "GET /login"),
            // Machine-readable answers say so instead of redirecting.
            "/status.json" | "/metrics" => assert_eq!(page.status, 401, "GET {path}"),
            // Box's redirect back is checked against the state and binder cookie.
            "/oauth/callback" => assert!(
                page.status >= 400 || page.location().as_deref() == Some("/login"),
                "GET /oauth/callback without state or session: {} {}",
                page.status,
                page.body
            ),
            _ => assert_eq!(
                (page.status, page.location().as_deref()),
                (303, Some("/login")),
                "no session: GET {path}\n{}",
                page.body
            ),
        }
    }
    let login_csrf = stranger.get("/login").await.csrf();
    every_post_refused(&mut stranger, Some(&login_csrf), "no session").await;
    // An anonymous session's valid token is no admin session.
    for path in routes("POST").filter(|p| *p != "/login" && *p != "/claim") {
        let form: Vec<(&str, &str)> = [("csrf", login_csrf.as_str())]
            .into_iter()
            .chain(FIELDS)
            .collect();
        let page = stranger.post(path, &form).await;
        assert_eq!(
            page.status, 403,
            "no admin session: POST {path} with a token"
        );
    }
    assert_eq!(
        snapshot(&h).await,
        claimed,
        "refused requests changed nothing"
    );

    // 3. Logged in: every GET route answers (the table matches the router), every page's links
    //    and forms point at listed routes, and every POST without the token or from a foreign
    //    Origin is refused.
    let mut linked = targets(&stranger.get("/login").await.body);
    let status = admin.get("/status").await;
    assert_eq!(status.status, 200, "{}", status.body);
    let admin_csrf = status.csrf();
    for path in routes("GET") {
        let page = admin.get(path).await;
        assert_ne!(page.status, 404, "GET {path} is listed but not routed");
        // The harness's status source has no collector behind it: /metrics says so (503).
        let unavailable = path == "/metrics" && page.status == 503;
        assert!(
            page.status < 500 || unavailable,
            "GET {path}: {}\n{}",
            page.status,
            page.body
        );
        linked.extend(targets(&page.body));
    }
    let listed: BTreeSet<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    for target in &linked {
        assert!(
            listed.contains(target.as_str()),
            "a page links to {target}, which is not in ROUTES"
        );
    }
    // Forms that only appear in a later state: Connect and the client-credentials grant once
    // a Box app is saved, Box "Test" once Box is connected, "clear" once a scope list is
    // uploaded, "remove" once a dead letter is kept (tests/dead_letters.rs). Their gates are
    // walked above.
    let later = [
        "/claim",
        "/box/connect",
        "/box/ccg",
        "/box/test",
        "/collection/scope/clear",
        "/maintenance/dead-letters/remove",
    ];
    let formless: Vec<&str> = routes("POST")
        .filter(|p| !later.contains(p) && !linked.contains(*p))
        .collect();
    assert!(
        formless.is_empty(),
        "in ROUTES but no page has a form for them: {formless:?}"
    );
    let unlisted = admin.get("/no/such/page").await;
    assert_eq!(unlisted.status, 404);
    let logged_in = snapshot(&h).await;
    every_post_refused(&mut admin, Some(&admin_csrf), "logged in").await;
    assert_eq!(
        snapshot(&h).await,
        logged_in,
        "refused requests changed nothing"
    );
    // The refused logout did not end the session.
    assert_eq!(admin.get("/status").await.status, 200);
    h.stop().await;
}
