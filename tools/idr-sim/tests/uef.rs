//! Collector UEF listener over the wire: validation table, framing, silence, TLS.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use idr_sim::{FaultKind, FaultSpec, RejectReason, Surface, TlsFailMode, UefViolation};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `line` + LF on a fresh connection; return the rejection reason, or None if accepted.
async fn verdict(sim: &idr_sim::SimHandle, line: &[u8]) -> Option<RejectReason> {
    sim.reset_records();
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    let back = send_plain(sim.uef_addr(), &[&bytes]).await;
    assert!(back.is_empty(), "the Collector never answers");
    let acc = sim.uef_records().len();
    let rej = sim.uef_rejected();
    assert_eq!(acc + rej.len(), 1, "exactly one outcome per line");
    rej.into_iter().next().map(|r| r.reason)
}

/// The contract example is accepted, recorded as sent, with its normalised time and id.
#[tokio::test]
async fn contract_example_accepted_and_client_gets_nothing() {
    let sim = start_plain().await;
    assert_eq!(verdict(&sim, EXAMPLE_UEF.as_bytes()).await, None);
    let rec = sim.uef_accepted();
    assert_eq!(
        rec[0].value,
        serde_json::from_str::<Value>(EXAMPLE_UEF).unwrap()
    );
    assert_eq!(rec[0].time_normalized, "2024-05-02T21:03:11.000Z");
    assert_eq!(
        rec[0].box_event_id.as_deref(),
        Some("8f0c3a1e-5b7d-4e0a-9c11-2d7b6f0e4a55")
    );
    sim.shutdown().await;
}

/// Each violation of §1.1–1.2 is dropped with its reason; valid variants pass.
#[tokio::test]
async fn validation_table_over_the_wire() {
    let sim = start_plain().await;
    let missing = |f: &'static str| Some(RejectReason::Uef(UefViolation::MissingField(f)));
    for f in [
        "version",
        "event_type",
        "time",
        "account",
        "source_ip",
        "authentication_result",
    ] {
        let want = missing(match f {
            "version" => "version",
            "event_type" => "event_type",
            "time" => "time",
            "account" => "account",
            "source_ip" => "source_ip",
            _ => "authentication_result",
        });
        assert_eq!(
            verdict(&sim, uef_with(f, None).as_bytes()).await,
            want,
            "missing {f}"
        );
    }
    let invalid = |r: Option<RejectReason>, field: &str| match r {
        Some(RejectReason::Uef(UefViolation::InvalidValue { field: f, .. })) => f == field,
        Some(RejectReason::Uef(UefViolation::WrongType { field: f, .. })) => f == field,
        _ => false,
    };
    // source_ip
    for bad in ["2001:db8::1", "Unknown IP", "::1"] {
        assert!(
            invalid(
                verdict(&sim, uef_with("source_ip", Some(json!(bad))).as_bytes()).await,
                "source_ip"
            ),
            "{bad}"
        );
    }
    for ok in [
        "10.1.2.3",
        "192.168.0.10",
        "198.51.100.23",
        "::ffff:198.51.100.23",
    ] {
        assert_eq!(
            verdict(&sim, uef_with("source_ip", Some(json!(ok))).as_bytes()).await,
            None,
            "{ok}"
        );
    }
    // time forms: accepted ones are normalised
    for (t, norm) in [
        ("2024-05-02T21:03:56.1Z", "2024-05-02T21:03:56.100Z"),
        ("2024-05-02T21:03:56Z", "2024-05-02T21:03:56.000Z"),
        ("2024-05-02T21:03:56.123456Z", "2024-05-02T21:03:56.123Z"),
    ] {
        assert_eq!(
            verdict(&sim, uef_with("time", Some(json!(t))).as_bytes()).await,
            None,
            "{t}"
        );
        assert_eq!(sim.uef_accepted()[0].time_normalized, norm);
    }
    for bad in [
        "garbage",
        "2024-05-02T14:03:56.000-07:00",
        "2024-05-02 21:03:56.000Z",
    ] {
        assert!(
            invalid(
                verdict(&sim, uef_with("time", Some(json!(bad))).as_bytes()).await,
                "time"
            ),
            "{bad}"
        );
    }
    // account / account_domain / custom_data
    assert!(invalid(
        verdict(&sim, uef_with("account", Some(json!(""))).as_bytes()).await,
        "account"
    ));
    assert!(invalid(
        verdict(&sim, uef_with("account_domain", Some(json!(""))).as_bytes()).await,
        "account_domain"
    ));
    assert_eq!(
        verdict(
            &sim,
            uef_with("account_domain", Some(Value::Null)).as_bytes()
        )
        .await,
        None
    );
    for bad in [json!("x"), json!([1]), Value::Null, json!(3)] {
        assert!(
            invalid(
                verdict(&sim, uef_with("custom_data", Some(bad.clone())).as_bytes()).await,
                "custom_data"
            ),
            "{bad}"
        );
    }
    // authentication_result values
    assert_eq!(
        verdict(
            &sim,
            uef_with("authentication_result", Some(json!("FAILURE"))).as_bytes()
        )
        .await,
        None
    );
    assert!(invalid(
        verdict(
            &sim,
            uef_with("authentication_result", Some(json!("success"))).as_bytes()
        )
        .await,
        "authentication_result"
    ));
    // unknown extra field
    assert_eq!(
        verdict(&sim, uef_with("extra", Some(json!(1))).as_bytes()).await,
        Some(RejectReason::Uef(UefViolation::UnknownField(
            "extra".into()
        )))
    );
    // non-JSON and invalid UTF-8
    assert!(matches!(
        verdict(&sim, b"hello").await,
        Some(RejectReason::Uef(UefViolation::NotJson(_)))
    ));
    let mut bad_utf8 = uef_with("account", Some(json!("jdoe"))).into_bytes();
    let pos = bad_utf8.windows(4).position(|w| w == b"jdoe").unwrap();
    bad_utf8[pos] = 0xff;
    assert_eq!(
        verdict(&sim, &bad_utf8).await,
        Some(RejectReason::InvalidUtf8)
    );
    sim.shutdown().await;
}

/// Several lines in one write, one line split over writes, CRLF and blank lines are framed
/// by LF; a trailing partial line is dropped, not accepted.
#[tokio::test]
async fn framing() {
    let sim = start_plain().await;
    let a = uef_for("a");
    let b = uef_for("b");
    let c = uef_for("c");
    let d = uef_for("d");
    let one_write = format!("{a}\n{b}\r\n\n");
    let (c1, c2) = c.split_at(c.len() / 2);
    let back = send_plain(
        sim.uef_addr(),
        &[
            one_write.as_bytes(),
            c1.as_bytes(),
            c2.as_bytes(),
            b"\n",
            d.as_bytes(),
        ],
    )
    .await;
    assert!(back.is_empty());
    let ids: Vec<String> = sim
        .uef_accepted()
        .iter()
        .map(|r| r.box_event_id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let reasons: Vec<RejectReason> = sim.uef_rejected().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            RejectReason::EmptyLine,
            RejectReason::IncompleteLine(d.len())
        ]
    );
    sim.shutdown().await;
}

/// A line over the cap is rejected without stopping the lines after it.
#[tokio::test]
async fn line_cap() {
    let sim = start(idr_sim::SimConfig {
        uef_tls: false,
        line_limit: 1000,
        ..config()
    })
    .await;
    let big = format!("{}\n", "x".repeat(5000));
    let ok = format!("{}\n", uef_for("after"));
    send_plain(sim.uef_addr(), &[big.as_bytes(), ok.as_bytes()]).await;
    assert_eq!(
        sim.uef_rejected()[0].reason,
        RejectReason::LineTooLong {
            len: 5000,
            limit: 1000
        }
    );
    assert_eq!(sim.uef_records().len(), 1);
    sim.shutdown().await;
}

/// UEF over TLS with the test CA works, and the server sends no application data.
#[tokio::test]
async fn tls_with_test_ca() {
    let sim = start(config()).await;
    let mut s = tls_connect(sim.uef_addr(), &sim.ca_pem()).await.unwrap();
    s.write_all(format!("{}\n{}\n", uef_for("t1"), uef_for("t2")).as_bytes())
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(
        sim.wait_for(Duration::from_secs(5), |h| h.uef_records().len() == 2)
            .await
    );
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut back))
        .await
        .unwrap();
    assert!(back.is_empty());
    assert_eq!(sim.untrusted_handshakes(), 0);
    sim.shutdown().await;
}

/// The TLS handshake fault (untrusted certificate, or abort) makes a correct client's
/// handshake fail; count-limited, so the next connection succeeds.
#[tokio::test]
async fn tls_handshake_fault() {
    let sim = start(config()).await;
    for mode in [TlsFailMode::UntrustedCert, TlsFailMode::Abort] {
        sim.faults()
            .set(FaultSpec::new(Surface::Uef, FaultKind::TlsHandshakeFail { mode }).times(1))
            .unwrap();
        assert!(
            tls_connect(sim.uef_addr(), &sim.ca_pem()).await.is_err(),
            "{mode:?}"
        );
        assert!(
            tls_connect(sim.uef_addr(), &sim.ca_pem()).await.is_ok(),
            "{mode:?} cleared after one"
        );
    }
    assert_eq!(sim.untrusted_handshakes(), 0);
    sim.shutdown().await;
}

/// A client that trusts a different CA cannot connect (the test CA is really checked).
#[tokio::test]
async fn wrong_trust_anchor_fails() {
    let sim = start(config()).await;
    let other = idr_sim::TestCa::generate().unwrap();
    assert!(
        tls_connect(sim.uef_addr(), &other.ca_cert_pem)
            .await
            .is_err()
    );
    sim.shutdown().await;
}

/// Accepts any server certificate: models a client with verification turned off.
#[derive(Debug)]
struct AcceptAnything(rustls::crypto::WebPkiSupportedAlgorithms);

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A client that skips certificate verification completes the untrusted-cert handshake: the
/// simulator counts that as a client bug and accepts none of its lines.
#[tokio::test]
async fn untrusted_handshake_by_careless_client_is_flagged() {
    let sim = start(config()).await;
    sim.faults()
        .set(
            FaultSpec::new(
                Surface::Uef,
                FaultKind::TlsHandshakeFail {
                    mode: TlsFailMode::UntrustedCert,
                },
            )
            .times(1),
        )
        .unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let algs = provider.signature_verification_algorithms;
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAnything(algs)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(sim.uef_addr())
        .await
        .unwrap();
    let mut s = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let _ = s.write_all(format!("{EXAMPLE_UEF}\n").as_bytes()).await;
    let _ = s.flush().await;
    assert!(
        sim.wait_for(Duration::from_secs(2), |h| h.untrusted_handshakes() == 1)
            .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sim.uef_records().is_empty());
    sim.shutdown().await;
}
