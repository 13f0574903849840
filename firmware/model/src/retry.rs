//! Capped exponential backoff with jitter: the one retry schedule of the appliance.
//!
//! Every loop that retries a failing call waits through [`BackoffPolicy::delay`]: the Box
//! stream and sweep (`boxidr-boxapi`), the users sync, and each InsightIDR sink
//! (`boxidr-forward`). The schedule is pure (the caller supplies the jitter sample), so the
//! state machines that use it stay testable without timers.

use std::time::Duration;

/// How long a failing loop waits before its next attempt.
///
/// Attempt `n` (0-based) waits `initial × 2^n`, capped at `max`, then scaled by a jitter factor
/// in `[0.5, 1.5)` and capped at `max` again, so many boxes that lost the same Collector (or
/// were throttled by the same Box tenant) do not reconnect in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
}

impl BackoffPolicy {
    /// Production default for Box calls and sinks: 1 s doubling up to 5 min (RELIABILITY.md §6
    /// scenario 8 caps at 5 min).
    pub const DEFAULT: Self = Self {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };

    /// The delay for `attempt` (0-based). `jitter` is a sample in `[0, 1)` supplied by the
    /// caller, so the schedule is pure and testable.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        exp.mul_f64(0.5 + jitter.clamp(0.0, 1.0)).min(self.max)
    }
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schedule doubles, stays within ±50 %, and never exceeds the cap.
    #[test]
    fn doubles_jitters_and_caps() {
        let p = BackoffPolicy::DEFAULT;
        assert_eq!(p.delay(0, 0.5), Duration::from_secs(1));
        assert_eq!(p.delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(12));
        assert_eq!(p.delay(8, 0.5), Duration::from_secs(256));
        assert_eq!(p.delay(9, 0.99), p.max);
        assert_eq!(p.delay(u32::MAX, 1.0), p.max);
        assert_eq!(p.delay(0, -3.0), Duration::from_millis(500));
    }
}
