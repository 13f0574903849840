//! The latest status report: what the supervisor publishes every few seconds (built by
//! [`report::build`](crate::report)) and the setup page, the control socket (`boxidr status`)
//! and an embedding demo read.

use std::sync::RwLock;

use boxidr_health::StatusReport;
use boxidr_setup::StatusSource;

/// The latest status report (`None` until the supervisor's first round), shared with the
/// setup page and the control socket.
#[derive(Debug, Default)]
pub struct StatusCache(RwLock<Option<StatusReport>>);

impl StatusCache {
    pub(crate) fn set(&self, report: StatusReport) {
        if let Ok(mut current) = self.0.write() {
            *current = Some(report);
        }
    }

    /// The latest report, `None` before the first.
    pub fn get(&self) -> Option<StatusReport> {
        self.0.read().ok().and_then(|r| r.clone())
    }

    /// The latest report as JSON (`null` before the first): what `boxidr status --json` prints.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl StatusSource for StatusCache {
    fn snapshot(&self) -> Option<StatusReport> {
        self.get()
    }
}
