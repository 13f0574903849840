//! Liveness reports of long-running loops, for the systemd watchdog.
//!
//! A loop (the Box poller, the sweep, a forwarder) holds a [`Pulse`] and says, at each
//! iteration, that it made progress and how long it is about to wait. The binary's watchdog
//! turns those reports into deadlines and stops feeding systemd when one is missed, so a task
//! that is blocked forever gets the service restarted, while a task that sleeps a long backoff
//! does not. This module only carries the reports; it knows no clock and no systemd.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Receives a loop's reports (the watchdog implements it).
pub trait Liveness: Send + Sync {
    /// Progress now; the next report follows within the part's own budget plus `wait`, or, with
    /// `None`, whenever outside work arrives (an open-ended idle wait is not a hang).
    fn report(&self, wait: Option<Duration>);
}

/// A loop's handle on its liveness report. `Pulse::default()` reports nowhere (tests, tools).
#[derive(Clone, Default)]
pub struct Pulse(Option<Arc<dyn Liveness>>);

impl fmt::Debug for Pulse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Pulse(reporting)"
        } else {
            "Pulse(none)"
        })
    }
}

impl Pulse {
    /// Reports to `to`.
    pub fn new(to: Arc<dyn Liveness>) -> Self {
        Self(Some(to))
    }

    /// Progress now; the next report comes within the part's budget (one iteration's work:
    /// a request bounded by its timeout, a commit).
    pub fn beat(&self) {
        self.report(Some(Duration::ZERO));
    }

    /// Progress now, then a bounded wait of up to `wait` (a backoff, an idle poll) before the
    /// next iteration starts.
    pub fn waiting(&self, wait: Duration) {
        self.report(Some(wait));
    }

    /// Progress now, then a wait for outside work with no deadline (a halted poller, a sweep
    /// with nothing to do, a sink stopped by its configuration until the settings change).
    pub fn idle(&self) {
        self.report(None);
    }

    fn report(&self, wait: Option<Duration>) {
        if let Some(to) = &self.0 {
            to.report(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<Option<Duration>>>);

    impl Liveness for Record {
        fn report(&self, wait: Option<Duration>) {
            self.0.lock().unwrap().push(wait);
        }
    }

    /// Each call reaches the receiver with its wait; the default pulse reports nowhere.
    #[test]
    fn reports_reach_the_receiver() {
        let record = Arc::new(Record::default());
        let pulse = Pulse::new(record.clone());
        pulse.beat();
        pulse.clone().waiting(Duration::from_secs(5));
        pulse.idle();
        assert_eq!(
            *record.0.lock().unwrap(),
            [Some(Duration::ZERO), Some(Duration::from_secs(5)), None]
        );
        Pulse::default().beat();
        assert_eq!(format!("{:?}", Pulse::default()), "Pulse(none)");
    }
}
