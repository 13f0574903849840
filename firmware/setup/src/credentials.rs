//! The one-time setup code, the admin password (argon2id) and failed-attempt throttling.
//!
//! - **Setup code.** 80 random bits written as 16 Crockford base32 symbols in four groups
//!   (`7K3M-Q9TX-…`): no 0/O or 1/I/L ambiguity, case-insensitive, dashes and spaces ignored.
//!   Only its SHA-256 is stored (an 80-bit random value needs no slow hash); showing the code
//!   again therefore means issuing a new one, which kills the old.
//! - **Password.** argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's minimum), 16-byte random salt,
//!   stored as JSON in the store's secrets. Verification compares in constant time.
//! - **Throttle.** Per client address: after [`FREE_ATTEMPTS`] consecutive failures every
//!   attempt is refused for a delay that doubles up to [`MAX_LOCKOUT`], whether or not the
//!   password is right, so guessing costs time and an attacker cannot tell a lockout from a
//!   wrong guess (one generic message).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use boxidr_model::Secret;
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::SetupError;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a setup code (16 × 5 bits = 80 bits).
pub const CODE_SYMBOLS: usize = 16;
/// Shortest admin password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest admin password accepted (bounds hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Failures allowed before throttling starts.
pub const FREE_ATTEMPTS: u32 = 5;
/// The longest wait imposed after repeated failures.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered by the throttle; the oldest idle ones are forgotten beyond this.
const THROTTLE_ENTRIES: usize = 4096;

const ARGON_M_KIB: u32 = 19 * 1024;
const ARGON_T: u32 = 2;
const ARGON_P: u32 = 1;

/// A one-time setup code, a [`Secret`] (`Debug` is redacted); [`SetupCode::as_str`] is for the
/// console only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupCode(Secret);

impl SetupCode {
    /// A fresh random code.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let symbols: Vec<u8> = (0..CODE_SYMBOLS)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        let groups: Vec<&str> = symbols
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        Self(Secret::new(groups.join("-")))
    }

    /// The code as the admin types it, `XXXX-XXXX-XXXX-XXXX`.
    pub fn as_str(&self) -> &str {
        self.0.expose()
    }

    /// The stored form: SHA-256 of the normalised code, hex.
    pub(crate) fn digest(&self) -> String {
        digest_normalised(&normalise(self.0.expose()).unwrap_or_default())
    }
}

/// Upper-cases, drops dashes and spaces, maps look-alikes (O→0, I/L→1); `None` if what is
/// left is not 16 base32 symbols.
fn normalise(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_SYMBOLS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_SYMBOLS).then_some(out)
}

fn digest_normalised(normalised: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, normalised.as_bytes()).as_ref())
}

/// Whether `typed` is the code whose digest is `stored_digest` (constant-time compare).
pub(crate) fn code_matches(typed: &str, stored_digest: &str) -> bool {
    let Some(normalised) = normalise(typed) else {
        return false;
    };
    let typed_digest = digest_normalised(&normalised);
    typed_digest
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `n` random bytes as hex (session ids, CSRF tokens, OAuth `state`).
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex(&bytes)
}

/// Constant-time string equality.
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PasswordProblem {
    TooShort,
    TooLong,
    Mismatch,
}

impl PasswordProblem {
    pub(crate) fn message(&self) -> String {
        match self {
            Self::TooShort => {
                format!("Choose a password of at least {MIN_PASSWORD_CHARS} characters.")
            }
            Self::TooLong => format!("Use at most {MAX_PASSWORD_BYTES} bytes."),
            Self::Mismatch => "The two passwords differ; type the same password twice.".into(),
        }
    }
}

/// Checks the password policy.
pub(crate) fn check_new_password(password: &str, confirm: &str) -> Result<(), PasswordProblem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    if !ct_eq(password, confirm) {
        return Err(PasswordProblem::Mismatch);
    }
    Ok(())
}

/// The stored password hash.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PasswordHash {
    alg: String,
    m: u32,
    t: u32,
    p: u32,
    salt: String,
    hash: String,
}

fn argon(m: u32, t: u32, p: u32) -> Result<Argon2<'static>, SetupError> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| SetupError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a new password with a fresh salt; returns the JSON to store.
pub(crate) fn hash_password(password: &str) -> Result<String, SetupError> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let mut out = [0u8; 32];
    argon(ARGON_M_KIB, ARGON_T, ARGON_P)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(|e| SetupError::Hash(e.to_string()))?;
    let stored = PasswordHash {
        alg: "argon2id".into(),
        m: ARGON_M_KIB,
        t: ARGON_T,
        p: ARGON_P,
        salt: hex(&salt),
        hash: hex(&out),
    };
    serde_json::to_string(&stored).map_err(|e| SetupError::Hash(e.to_string()))
}

/// Whether `password` matches the stored JSON hash.
pub(crate) fn verify_password(password: &str, stored: &str) -> Result<bool, SetupError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed: PasswordHash =
        serde_json::from_str(stored).map_err(|e| SetupError::Corrupt(e.to_string()))?;
    if parsed.alg != "argon2id" {
        return Err(SetupError::Corrupt(format!(
            "hash algorithm {}",
            parsed.alg
        )));
    }
    let salt = unhex(&parsed.salt).ok_or_else(|| SetupError::Corrupt("salt".into()))?;
    let expected = unhex(&parsed.hash).ok_or_else(|| SetupError::Corrupt("hash".into()))?;
    let mut out = vec![0u8; expected.len()];
    argon(parsed.m, parsed.t, parsed.p)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(|e| SetupError::Hash(e.to_string()))?;
    Ok(out.ct_eq(&expected).into())
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Failed-attempt bookkeeping per client address (login and setup code share it).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    by_addr: HashMap<IpAddr, Failures>,
}

impl Throttle {
    /// Whether an attempt from `addr` may be checked at all now.
    pub(crate) fn allowed(&self, addr: IpAddr, now: Instant) -> bool {
        self.by_addr
            .get(&addr)
            .and_then(|f| f.locked_until)
            .is_none_or(|until| now >= until)
    }

    /// Records a failure; past the free attempts the address is locked for a doubling delay.
    pub(crate) fn failed(&mut self, addr: IpAddr, now: Instant) {
        if self.by_addr.len() >= THROTTLE_ENTRIES && !self.by_addr.contains_key(&addr) {
            if let Some(oldest) = self
                .by_addr
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(a, _)| *a)
            {
                self.by_addr.remove(&oldest);
            }
        }
        let entry = self.by_addr.entry(addr).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= FREE_ATTEMPTS {
            let doublings = (entry.count - FREE_ATTEMPTS).min(10);
            let delay = Duration::from_secs(30u64 << doublings).min(MAX_LOCKOUT);
            entry.locked_until = Some(now + delay);
        }
    }

    /// Forgets an address after a success.
    pub(crate) fn succeeded(&mut self, addr: IpAddr) {
        self.by_addr.remove(&addr);
    }

    /// Forgets everything (factory reset).
    pub(crate) fn clear(&mut self) {
        self.by_addr.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes carry 80 bits in typable groups and survive retyping with look-alikes.
    #[test]
    fn setup_code_shape_and_normalisation() {
        let code = SetupCode::generate();
        assert_eq!(code.as_str().len(), 19);
        assert_eq!(code.as_str().matches('-').count(), 3);
        let digest = code.digest();
        let retyped = code
            .as_str()
            .to_ascii_lowercase()
            .replace('-', " ")
            .replace('0', "o")
            .replace('1', "l");
        assert!(code_matches(&retyped, &digest));
        assert!(!code_matches("0000-0000-0000-0000", &digest));
        assert!(!code_matches("", &digest));
        assert!(!code_matches("<script>", &digest));
        assert_ne!(SetupCode::generate(), SetupCode::generate());
        assert!(!format!("{code:?}").contains(code.as_str()));
    }

    /// The password hash verifies the right password only and is argon2id.
    #[test]
    fn password_hash_roundtrip() {
        let stored = hash_password("correct horse battery").unwrap();
        let text = stored.clone();
        assert!(text.contains("argon2id"), "{text}");
        assert!(!text.contains("correct horse"));
        assert!(verify_password("correct horse battery", &stored).unwrap());
        assert!(!verify_password("correct horse batterY", &stored).unwrap());
    }

    /// The policy wants 12 characters and a matching confirmation.
    #[test]
    fn password_policy() {
        assert_eq!(
            check_new_password("short", "short"),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(
            check_new_password("long enough pw", "long enough pX"),
            Err(PasswordProblem::Mismatch)
        );
        assert!(check_new_password("long enough pw", "long enough pw").is_ok());
    }

    /// Five failures are free; then attempts are refused until the delay passes.
    #[test]
    fn throttle_locks_and_releases() {
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut t = Throttle::default();
        let start = Instant::now();
        for _ in 0..FREE_ATTEMPTS - 1 {
            t.failed(addr, start);
            assert!(t.allowed(addr, start));
        }
        t.failed(addr, start);
        assert!(!t.allowed(addr, start));
        assert!(t.allowed(other, start));
        assert!(t.allowed(addr, start + Duration::from_secs(31)));
        t.failed(addr, start + Duration::from_secs(31));
        assert!(!t.allowed(addr, start + Duration::from_secs(61)));
        t.succeeded(addr);
        assert!(t.allowed(addr, start));
    }
}
