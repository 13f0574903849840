//! The clock sessions, throttling and OAuth `state` expiry read, injectable so tests can jump
//! past an idle timeout without sleeping.

use std::time::Instant;

/// A monotonic clock.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}
