//! InsightIDR sinks: Collector UEF over TLS, Log Search HTTPS, delivery verifier.
