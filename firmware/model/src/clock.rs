//! Wall-clock time as the appliance stores and reports it: milliseconds since the Unix epoch.
//!
//! The one place that reads [`SystemTime::now`] for a timestamp. State machines do not call it:
//! their loops read the clock once and pass `now` in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// `t` in milliseconds since the Unix epoch (0 before it, saturating far after it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Times before the epoch read as 0; after it, whole milliseconds.
    #[test]
    fn milliseconds_since_the_epoch() {
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_micros(2_500)), 2);
        assert!(now_ms() > 1_600_000_000_000);
    }
}
