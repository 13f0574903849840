//! Server-side sessions, CSRF tokens and pending OAuth `state`s. All in memory: a restart logs
//! everyone out, which is the safe direction.
//!
//! - A session id is 256 random bits (hex) in the `__Host-boxidr` cookie (`Secure; HttpOnly;
//!   SameSite=Strict; Path=/`); the map is keyed by the id's SHA-256, so the table never
//!   holds a usable cookie value.
//! - Anonymous sessions exist only to carry a CSRF token for the login and first-boot forms;
//!   login replaces the session with a new one (new id, new CSRF token).
//! - Admin sessions end after [`IDLE_TIMEOUT`] without a request or [`ABSOLUTE_TIMEOUT`] after
//!   login, whichever comes first.
//! - An OAuth `state` is 256 random bits, single-use, expires after [`OAUTH_STATE_TTL`], and is
//!   bound to the admin session that asked for it through a second cookie
//!   (`__Host-boxidr-oauth`, `SameSite=Lax` so that it survives the top-level redirect back from
//!   Box, which a `Strict` cookie does not).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::credentials::{ct_eq, hex, random_hex};

/// Admin sessions end after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Admin sessions end this long after login regardless of activity.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// Anonymous (pre-login) sessions end after this long.
pub const ANONYMOUS_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A Box `state` is accepted for this long.
pub const OAUTH_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "__Host-boxidr";
/// Name of the cookie binding an OAuth round trip to its session.
pub const OAUTH_COOKIE: &str = "__Host-boxidr-oauth";
/// Sessions kept at most; the oldest anonymous ones go first.
const MAX_SESSIONS: usize = 512;
/// Pending OAuth round trips kept at most.
const MAX_PENDING: usize = 64;

/// Key of a session or binder in the tables: SHA-256 of the cookie value.
pub(crate) type Key = String;

fn key_of(cookie_value: &str) -> Key {
    hex(ring::digest::digest(&ring::digest::SHA256, cookie_value.as_bytes()).as_ref())
}

/// One browser session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) csrf: String,
    pub(crate) admin: bool,
    created: Instant,
    last_seen: Instant,
}

/// A `state` handed to Box, waiting for the callback.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    session: Key,
    state: String,
    pub(crate) redirect_uri: String,
    expires: Instant,
    used: bool,
}

/// Why a callback's `state` is refused. Nothing is exchanged or stored in any of these cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateProblem {
    /// No binder cookie, or it names no pending round trip (never started here, or forgotten).
    NotStarted,
    /// The admin session that started it has ended.
    SessionEnded,
    /// The callback carries no `state`.
    Missing,
    /// Older than [`OAUTH_STATE_TTL`].
    Expired,
    /// Already used once.
    Reused,
    /// Not the value issued to this browser (forged, tampered, or another session's).
    Mismatch,
}

/// Sessions and pending OAuth round trips.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: HashMap<Key, Session>,
    pending: HashMap<Key, Pending>,
}

impl Sessions {
    /// A new anonymous session; returns the cookie value.
    pub(crate) fn create(&mut self, now: Instant, admin: bool) -> (String, Session) {
        self.evict(now);
        let id = random_hex(32);
        let session = Session {
            csrf: random_hex(32),
            admin,
            created: now,
            last_seen: now,
        };
        self.sessions.insert(key_of(&id), session.clone());
        (id, session)
    }

    /// The live session for a cookie value; `touch` restarts its idle timer (every request
    /// except the status page's own automatic refresh).
    pub(crate) fn get(&mut self, cookie_value: &str, now: Instant, touch: bool) -> Option<Session> {
        let key = key_of(cookie_value);
        let alive = self.sessions.get(&key).is_some_and(|s| alive(s, now));
        if !alive {
            self.sessions.remove(&key);
            return None;
        }
        let session = self.sessions.get_mut(&key)?;
        if touch {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    /// Ends a session (logout, or login replacing it).
    pub(crate) fn remove(&mut self, cookie_value: &str) {
        let key = key_of(cookie_value);
        self.sessions.remove(&key);
        self.pending.retain(|_, p| p.session != key);
    }

    /// Ends every session and pending round trip (factory reset, password change).
    pub(crate) fn clear(&mut self) {
        self.sessions.clear();
        self.pending.clear();
    }

    /// Issues a `state` for the session behind `cookie_value`; returns (binder cookie, state).
    pub(crate) fn begin_oauth(
        &mut self,
        cookie_value: &str,
        redirect_uri: String,
        now: Instant,
    ) -> (String, String) {
        let session = key_of(cookie_value);
        self.pending
            .retain(|_, p| p.session != session && now < p.expires);
        if self.pending.len() >= MAX_PENDING {
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.expires)
                .map(|(k, _)| k.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        let binder = random_hex(32);
        let state = random_hex(32);
        self.pending.insert(
            key_of(&binder),
            Pending {
                session,
                state: state.clone(),
                redirect_uri,
                expires: now + OAUTH_STATE_TTL,
                used: false,
            },
        );
        (binder, state)
    }

    /// Checks a callback's `state` against the round trip bound to `binder`, and uses it up
    /// (also when it does not match: one callback per round trip).
    pub(crate) fn finish_oauth(
        &mut self,
        binder: Option<&str>,
        state: Option<&str>,
        now: Instant,
    ) -> Result<Pending, StateProblem> {
        let key = binder.map(key_of).ok_or(StateProblem::NotStarted)?;
        let pending = self.pending.get_mut(&key).ok_or(StateProblem::NotStarted)?;
        if pending.used {
            return Err(StateProblem::Reused);
        }
        pending.used = true;
        let pending = pending.clone();
        let Some(state) = state.filter(|s| !s.is_empty()) else {
            return Err(StateProblem::Missing);
        };
        if now >= pending.expires {
            return Err(StateProblem::Expired);
        }
        if !ct_eq(state, &pending.state) {
            return Err(StateProblem::Mismatch);
        }
        let session_ok = self
            .sessions
            .get(&pending.session)
            .is_some_and(|s| s.admin && alive(s, now));
        if !session_ok {
            return Err(StateProblem::SessionEnded);
        }
        Ok(pending)
    }

    fn evict(&mut self, now: Instant) {
        self.sessions.retain(|_, s| alive(s, now));
        self.pending
            .retain(|_, p| now < p.expires + OAUTH_STATE_TTL);
        while self.sessions.len() >= MAX_SESSIONS {
            let victim = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| (s.admin, s.last_seen))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.sessions.remove(&k);
                }
                None => break,
            }
        }
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    let idle = now.saturating_duration_since(s.last_seen);
    let age = now.saturating_duration_since(s.created);
    if s.admin {
        idle < IDLE_TIMEOUT && age < ABSOLUTE_TIMEOUT
    } else {
        age < ANONYMOUS_TIMEOUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idle and absolute timeouts end admin sessions.
    #[test]
    fn timeouts() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let (id, _) = s.create(t0, true);
        assert!(
            s.get(&id, t0 + Duration::from_secs(14 * 60), true)
                .is_some()
        );
        assert!(
            s.get(&id, t0 + Duration::from_secs(28 * 60), true)
                .is_some()
        );
        assert!(
            s.get(&id, t0 + Duration::from_secs(44 * 60), true)
                .is_none()
        );
        let (id, _) = s.create(t0, true);
        let mut t = t0;
        while t < t0 + ABSOLUTE_TIMEOUT - Duration::from_secs(600) {
            t += Duration::from_secs(600);
            assert!(s.get(&id, t, true).is_some());
        }
        assert!(s.get(&id, t0 + ABSOLUTE_TIMEOUT, true).is_none());
    }

    /// A state works once, for its own binder, before it expires.
    #[test]
    fn oauth_state_rules() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let (id, _) = s.create(t0, true);
        let (binder, state) = s.begin_oauth(&id, "https://x/oauth/callback".into(), t0);
        assert!(s.finish_oauth(Some(&binder), Some(&state), t0).is_ok());
        assert_eq!(
            s.finish_oauth(Some(&binder), Some(&state), t0).unwrap_err(),
            StateProblem::Reused
        );
        let (binder, state) = s.begin_oauth(&id, "u".into(), t0);
        assert_eq!(
            s.finish_oauth(Some(&binder), Some(&state), t0 + OAUTH_STATE_TTL)
                .unwrap_err(),
            StateProblem::Expired
        );
        let (binder, _) = s.begin_oauth(&id, "u".into(), t0);
        assert_eq!(
            s.finish_oauth(Some(&binder), Some("00"), t0).unwrap_err(),
            StateProblem::Mismatch
        );
        assert_eq!(
            s.finish_oauth(None, Some("00"), t0).unwrap_err(),
            StateProblem::NotStarted
        );
    }
}
