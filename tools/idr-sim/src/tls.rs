//! TLS material: a generated test CA standing in for `Rapid7CA.pem`, server certificates for
//! `localhost` / 127.0.0.1 / ::1 signed by it, and a rogue CA for the handshake-failure fault.
//! rustls with the ring provider only; configs never rely on a process-wide default provider.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// TLS material could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the material.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {why}")]
    Pem {
        /// File (or "inline").
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// Server certificate chain + key, and the CA PEM clients should trust.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// Leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// PKCS#8, PKCS#1 or SEC1 key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// Trust anchor for clients (PEM).
    pub ca_pem: String,
}

impl TlsMaterial {
    /// Load from PEM files (as given to the binary's `--tls-cert --tls-key --ca`).
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::Pem {
                path: p.display().to_string(),
                why: e.to_string(),
            })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let ca_pem = String::from_utf8(read(ca)?).map_err(|_| TlsError::Pem {
            path: ca.display().to_string(),
            why: "not UTF-8 PEM".into(),
        })?;
        let cert_chain = rustls_pemfile::certs(&mut BufReader::new(cert_pem.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                path: cert.display().to_string(),
                why: e.to_string(),
            })?;
        if cert_chain.is_empty() {
            return Err(TlsError::Pem {
                path: cert.display().to_string(),
                why: "no CERTIFICATE block".into(),
            });
        }
        let key_der = rustls_pemfile::private_key(&mut BufReader::new(key_pem.as_slice()))
            .map_err(|e| TlsError::Pem {
                path: key.display().to_string(),
                why: e.to_string(),
            })?
            .ok_or_else(|| TlsError::Pem {
                path: key.display().to_string(),
                why: "no private key block".into(),
            })?;
        if root_store(&ca_pem)?.is_empty() {
            return Err(TlsError::Pem {
                path: ca.display().to_string(),
                why: "no CERTIFICATE block".into(),
            });
        }
        Ok(TlsMaterial {
            cert_chain,
            key: Arc::new(key_der),
            ca_pem,
        })
    }

    /// A rustls server config (ring provider, TLS 1.2 + 1.3, ALPN as given).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let mut cfg =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }
}

/// A generated CA standing in for `Rapid7CA.pem`, with a server certificate for
/// `localhost`, `127.0.0.1` and `::1` signed by it.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate (PEM) — the trust anchor clients load.
    pub ca_cert_pem: String,
    /// The server certificate (PEM), signed by the CA.
    pub server_cert_pem: String,
    /// The server private key (PKCS#8 PEM).
    pub server_key_pem: String,
    material: TlsMaterial,
}

impl TestCa {
    /// Generate a fresh CA and server certificate (ECDSA P-256).
    pub fn generate() -> Result<Self, TlsError> {
        generate_chain("boxidr idr-sim test Rapid7CA")
    }

    /// Server material (certificate chain, key, CA PEM).
    pub fn material(&self) -> &TlsMaterial {
        &self.material
    }

    /// A client config trusting only this CA (ring provider). Handy for tests.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        client_config_for(&self.ca_cert_pem)
    }
}

fn generate_chain(ca_name: &str) -> Result<TestCa, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "boxidr test");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::NoCa;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;

    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| TlsError::Pem {
        path: "generated".into(),
        why: e.to_string(),
    })?;
    let ca_cert_pem = ca.pem();
    Ok(TestCa {
        server_cert_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
        material: TlsMaterial {
            cert_chain: vec![cert.der().clone(), ca.der().clone()],
            key: Arc::new(key_der),
            ca_pem: ca_cert_pem.clone(),
        },
        ca_cert_pem,
    })
}

/// A chain from a CA nobody trusts (for the `tls_handshake_fail` / `untrusted_cert` fault).
pub(crate) fn rogue_material() -> Result<TlsMaterial, TlsError> {
    Ok(generate_chain("idr-sim rogue CA (not trusted)")?.material)
}

/// Root store holding every certificate in `pem`.
pub fn root_store(pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes())) {
        let cert = cert.map_err(|e| TlsError::Pem {
            path: "inline".into(),
            why: e.to_string(),
        })?;
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A client config (ring provider) trusting only the CA(s) in `ca_pem`.
pub fn client_config_for(ca_pem: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(root_store(ca_pem)?)
            .with_no_client_auth();
    Ok(Arc::new(cfg))
}
