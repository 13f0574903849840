//! The latest status snapshot: what the supervisor publishes every few seconds and the setup
//! page, the control socket (`boxidr status`) and an embedding demo read.

use std::sync::RwLock;

use boxidr_setup::StatusSource;
use serde_json::Value;

/// The latest status snapshot, shared with the setup page and the control socket.
#[derive(Debug, Default)]
pub struct StatusCache(RwLock<Value>);

impl StatusCache {
    pub(crate) fn set(&self, value: Value) {
        if let Ok(mut current) = self.0.write() {
            *current = value;
        }
    }

    pub fn get(&self) -> Value {
        self.0.read().map(|v| v.clone()).unwrap_or(Value::Null)
    }
}

impl StatusSource for StatusCache {
    fn snapshot(&self) -> Value {
        self.get()
    }
}
