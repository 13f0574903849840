//! The verifier against idr-sim's Platform API: key check, and a canary posted through the
//! Log Search sink found by a 202-then-poll query, also after an ingestion delay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use boxidr_forward::verify::canary_marker;
use boxidr_forward::{
    CanaryOutcome, Rendered, Sink, TrustRoots, Verifier, VerifierSettings, VerifyError,
};
use boxidr_model::Secret;
use common::*;
use idr_sim::SimHandle;

fn verifier(sim: &SimHandle, key: &str) -> Verifier {
    let mut settings = VerifierSettings::new(sim.api_base().parse().unwrap(), Secret::new(key));
    settings.roots = TrustRoots::CustomCa(sim.ca_pem().into_bytes());
    settings.poll_interval = Duration::from_millis(50);
    Verifier::new(settings).unwrap()
}

/// The right key validates; a wrong key is reported as rejected, without the key in the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_key() {
    let sim = sim(|c| c.api_tls = true).await;
    verifier(&sim, &sim.config().api_key)
        .validate()
        .await
        .unwrap();
    let err = verifier(&sim, "wrong-key").validate().await.unwrap_err();
    assert_eq!(err, VerifyError::KeyRejected(401));
    assert!(!err.to_string().contains("wrong-key"));
}

/// A raw record carrying the marker, posted by the Log Search sink, is found within the
/// deadline even with an ingestion delay; a marker never sent is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_seen_through_log_search() {
    let sim = sim(|c| c.ingestion_delay = Duration::from_millis(300)).await;
    let since = SystemTime::now() - Duration::from_secs(1);
    let marker = canary_marker();
    let mut sink = logsearch(&sim);
    let line = format!(r#"{{"boxidr_kind":"canary","marker":"{marker}"}}"#);
    sink.submit(
        vec![Rendered {
            seq: 1,
            line: Some(line),
        }],
        1,
    );
    let delivery = sink.progress().await;
    assert_eq!((delivery.through, delivery.sent), (Some(1), 1));

    let v = verifier(&sim, &sim.config().api_key);
    let logs: Vec<String> = v.logs().await.unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(logs.len(), 2, "the UEF log and one raw log");
    let found = v
        .find(&logs, &marker, since, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(found, CanaryOutcome::Seen { entries: 1 });

    let missing = v
        .find(&logs, &canary_marker(), since, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(missing, CanaryOutcome::NotSeen);
}
