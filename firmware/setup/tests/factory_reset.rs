//! RELIABILITY.md §6 scenario 27: after a factory reset the old admin session is dead. Its
//! cookie (presented again over the new certificate) reaches nothing: every page leads to the
//! claim page and a POST with the old session and its CSRF token changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use boxidr_store::settings;
use common::{Harness, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_session_stops_after_factory_reset() {
    let mut h = Harness::start().await;
    let mut b = h.claimed_browser().await;
    let page = b.get("/password").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let hash_before = h.secret(settings::PASSWORD_HASH).await;
    assert!(hash_before.is_some());

    h.server().factory_reset().await.unwrap();
    h.reload_cert().await;

    // The same cookie jar, now trusting the new certificate.
    let mut old = h.browser();
    old.jar = b.jar.clone();
    assert!(
        old.session().is_some(),
        "the old session cookie is presented"
    );
    for path in ["/status", "/maintenance", "/password", "/status.json"] {
        let r = old.get(path).await;
        assert_ne!(r.status, 200, "{path} answered the old session");
        assert!(
            r.status == 303 || r.status == 401,
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    let r = old
        .post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("password", "another long passphrase"),
                ("confirm", "another long passphrase"),
            ],
        )
        .await;
    assert!(
        r.status == 303 || r.status == 403,
        "{} {}",
        r.status,
        r.body
    );
    assert!(
        r.location().is_none_or(|l| l == "/claim"),
        "{:?}",
        r.location()
    );
    assert!(
        h.secret(settings::PASSWORD_HASH).await.is_none(),
        "the old session set a password after the reset"
    );
    h.stop().await;
}
