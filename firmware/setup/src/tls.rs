//! The page's certificate and the in-process TLS front in front of tiny_http.
//!
//! # Design
//! tiny_http 0.12 only accepts a `TcpListener` or `UnixListener` and its own `ssl-rustls`
//! feature pins rustls 0.20 (advisory: infinite loop on crafted input, fixed in ≥ 0.21.11), so
//! TLS is terminated here with the workspace's rustls 0.23 (ring provider) and tiny_http serves
//! plain HTTP on a private loopback port:
//!
//! ```text
//! browser ──TLS──► front (tokio, tokio-rustls) ──plain TCP, 127.0.0.1:ephemeral──► tiny_http
//!                   │ records  backend-side local port → real client address  ▲
//!                   └──────────────────── PeerMap ─────────────────────────────┘
//! ```
//!
//! - The front accepts on the admin-facing address, completes the handshake (10 s limit), opens
//!   one loopback connection to tiny_http per client connection and copies bytes both ways.
//! - Before it forwards a byte it records "loopback source port P belongs to client C" in the
//!   peer map; the request handler maps `Request::remote_addr()` back to C, so throttling and
//!   logs see the real client. A request on the loopback port that did NOT come through the
//!   front (another local process) finds no entry and is refused with 403: TLS cannot be
//!   bypassed from the box itself.
//! - Connections are bounded ([`MAX_CONNECTIONS`]) and each lives at most
//!   [`MAX_CONNECTION_LIFETIME`], so slow clients cannot pin the board's memory.
//! - The certificate can be replaced at run time (upload, factory reset): new handshakes use the
//!   new one; established connections keep theirs.
//!
//! # Certificate
//! On first start a P-256 key and a self-signed certificate are generated with rcgen and stored
//! as secrets ([`settings::TLS_CERT`], [`settings::TLS_KEY`]). Its SHA-256 fingerprint is
//! what the console, `boxidr setup-code` and the page show so the admin can check the browser
//! warning. No HSTS header is sent: with a self-signed certificate it would make the browser's
//! warning impossible to pass.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use boxidr_model::Secret;
use boxidr_store::Store;
use boxidr_store::settings;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::error::SetupError;

/// TLS handshakes that take longer are dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Simultaneous client connections; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest a single client connection is kept.
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Largest PEM upload accepted.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// The certificate and key the page serves, as stored.
#[derive(Clone)]
pub struct Identity {
    cert_pem: String,
    key_pem: String,
    fingerprint: String,
    uploaded: bool,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .field("uploaded", &self.uploaded)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// SHA-256 of the leaf certificate, `AB:CD:…` (what browsers show).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether the admin uploaded this certificate (otherwise it is self-signed).
    pub fn uploaded(&self) -> bool {
        self.uploaded
    }

    /// The leaf certificate, PEM (public; offered for download).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Checks a PEM chain and key: parseable, the key matches the leaf, rustls accepts them.
    pub fn from_pem(cert_pem: &str, key_pem: &str, uploaded: bool) -> Result<Self, SetupError> {
        let (certs, _) = parse_pem(cert_pem, key_pem)?;
        let leaf = certs
            .first()
            .ok_or_else(|| SetupError::Tls("no certificate in the PEM text".into()))?;
        Ok(Self {
            fingerprint: fingerprint(leaf.as_ref()),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            uploaded,
        })
    }

    /// A new P-256 key and self-signed certificate for this appliance's names.
    pub fn generate(names: Vec<String>) -> Result<Self, SetupError> {
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| SetupError::Tls(e.to_string()))?;
        Self::from_pem(
            &certified.cert.pem(),
            &certified.signing_key.serialize_pem(),
            false,
        )
    }

    /// The rustls configuration serving this identity (HTTP/1.1 only: tiny_http speaks nothing else).
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, SetupError> {
        let (certs, key) = parse_pem(&self.cert_pem, &self.key_pem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| SetupError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Stores the identity (both halves in one transaction).
    pub(crate) async fn save(&self, store: &Store) -> Result<(), SetupError> {
        store
            .put_secrets(vec![
                (settings::TLS_CERT, Secret::from(self.cert_pem.as_str())),
                (settings::TLS_KEY, Secret::from(self.key_pem.as_str())),
            ])
            .await?;
        store
            .put_setting(settings::TLS_UPLOADED, &self.uploaded)
            .await?;
        Ok(())
    }

    /// The stored identity, if any and usable.
    pub(crate) async fn load(store: &Store) -> Result<Option<Self>, SetupError> {
        let cert = store.get_secret(settings::TLS_CERT).await?;
        let key = store.get_secret(settings::TLS_KEY).await?;
        let (Some(cert), Some(key)) = (cert, key) else {
            return Ok(None);
        };
        let uploaded = store
            .setting(settings::TLS_UPLOADED)
            .await?
            .unwrap_or(false);
        Self::from_pem(cert.expose(), key.expose(), uploaded).map(Some)
    }
}

/// Loads the stored identity or generates and stores a self-signed one (first start).
pub async fn load_or_create(store: &Store) -> Result<Identity, SetupError> {
    match Identity::load(store).await {
        Ok(Some(identity)) => return Ok(identity),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "Stored TLS identity unusable; generating a new one."),
    }
    let identity = Identity::generate(default_names())?;
    identity.save(store).await?;
    tracing::info!(
        fingerprint = identity.fingerprint(),
        "Generated the setup page certificate."
    );
    Ok(identity)
}

/// Names for a self-signed certificate: the host name, `<host>.local`, loopback.
pub fn default_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            names.push(host.to_owned());
            if !host.contains('.') {
                names.push(format!("{host}.local"));
            }
        }
    }
    names.push("localhost".into());
    names.push("127.0.0.1".into());
    names
}

fn parse_pem(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SetupError> {
    if cert_pem.len() > MAX_PEM_BYTES || key_pem.len() > MAX_PEM_BYTES {
        return Err(SetupError::Tls("PEM text is too large".into()));
    }
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| SetupError::Tls("the certificate is not valid PEM".into()))?;
    if certs.is_empty() {
        return Err(SetupError::Tls("no CERTIFICATE block found".into()));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|_| SetupError::Tls("the private key is not valid PEM".into()))?
        .ok_or_else(|| SetupError::Tls("no PRIVATE KEY block found".into()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|_| SetupError::Tls("unsupported private key type".into()))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing)
        .keys_match()
        .map_err(|_| {
            SetupError::Tls("the private key does not belong to the certificate".into())
        })?;
    Ok((certs, key))
}

/// SHA-256 of DER bytes as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Loopback source port of a front→tiny_http connection → the real client address.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerMap(Arc<Mutex<HashMap<SocketAddr, SocketAddr>>>);

impl PeerMap {
    fn insert(&self, backend_local: SocketAddr, client: SocketAddr) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(backend_local, client);
        }
    }

    fn remove(&self, backend_local: &SocketAddr) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(backend_local);
        }
    }

    /// The client behind a loopback connection tiny_http saw, if it came through the front.
    pub(crate) fn client_of(&self, seen: &SocketAddr) -> Option<SocketAddr> {
        self.0.lock().ok()?.get(seen).copied()
    }
}

/// The currently served rustls configuration, swappable at run time.
pub(crate) type SharedTlsConfig = Arc<RwLock<Arc<ServerConfig>>>;

/// Accepts TLS clients on `listener` and relays each to tiny_http at `backend` until
/// `shutdown` turns true.
pub(crate) async fn run_front(
    listener: TcpListener,
    tls: SharedTlsConfig,
    backend: SocketAddr,
    peers: PeerMap,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (tcp, client) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "Setup page accept failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%client, "Too many setup page connections; closing a new one.");
            continue;
        };
        let config = match tls.read() {
            Ok(config) => config.clone(),
            Err(_) => continue,
        };
        let peers = peers.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                () = relay(tcp, client, config, backend, peers) => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn relay(
    tcp: TcpStream,
    client: SocketAddr,
    config: Arc<ServerConfig>,
    backend: SocketAddr,
    peers: PeerMap,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%client, error = %e, "TLS handshake failed.");
            return;
        }
        Err(_) => {
            tracing::debug!(%client, "TLS handshake timed out.");
            return;
        }
    };
    let mut plain = match TcpStream::connect(backend).await {
        Ok(plain) => plain,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot reach the setup page's HTTP worker.");
            return;
        }
    };
    let Ok(local) = plain.local_addr() else {
        return;
    };
    peers.insert(local, client);
    let _ = tokio::time::timeout(
        MAX_CONNECTION_LIFETIME,
        tokio::io::copy_bidirectional(&mut tls, &mut plain),
    )
    .await;
    peers.remove(&local);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated identity round-trips through PEM and has a browser-style fingerprint.
    #[test]
    fn generated_identity() {
        let a = Identity::generate(vec!["localhost".into()]).unwrap();
        assert_eq!(a.fingerprint().len(), 32 * 3 - 1);
        let again = Identity::from_pem(&a.cert_pem, &a.key_pem, false).unwrap();
        assert_eq!(again.fingerprint(), a.fingerprint());
        assert!(a.server_config().is_ok());
        let b = Identity::generate(vec!["localhost".into()]).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }

    /// A key that does not belong to the certificate is refused.
    #[test]
    fn mismatched_key_is_refused() {
        let a = Identity::generate(vec!["localhost".into()]).unwrap();
        let b = Identity::generate(vec!["localhost".into()]).unwrap();
        let err = Identity::from_pem(&a.cert_pem, &b.key_pem, true).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        assert!(Identity::from_pem("junk", &a.key_pem, true).is_err());
    }
}
