//! Fault-injecting InsightIDR simulator: Collector UEF listener, Log Search ingest, Platform API.
