//! What the canary verifier finds, in the words every stage shares: produced by
//! `boxidr_forward::verify` (its rounds), judged by `boxidr_health` (facts, problems, metrics)
//! and shown in the status report's `verifier` section.

use serde::{Deserialize, Serialize};

/// Whether InsightIDR has been seen to actually hold what a sink sent (canary search through
/// the Platform API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum VerifierState {
    /// No Platform API key: delivery is not checked beyond the transport.
    #[default]
    NotConfigured,
    /// The last canary was found.
    Confirmed {
        /// When it was found (ms since the epoch).
        at_ms: u64,
    },
    /// A canary was sent and is being looked for.
    Pending {
        /// When it was sent (ms since the epoch).
        since_ms: u64,
    },
    /// The last canary was not found before its deadline.
    NotSeen {
        /// When the search gave up (ms since the epoch).
        at_ms: u64,
    },
}

/// What the canary verifier reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifierReport {
    /// A Platform API key is stored.
    pub configured: bool,
    /// The Collector path (the canary's UEF line).
    pub collector: VerifierState,
    /// The Log Search path (the canary's raw records).
    pub log_search: VerifierState,
    /// The current or last round's marker (search for it in InsightIDR).
    pub marker: Option<String>,
    /// Rounds started since the pipeline started.
    pub rounds: u64,
    /// The last problem (queueing, Platform API); cleared by the next successful search.
    pub last_error: Option<String>,
}
