//! Pure rendering of Box events into InsightIDR UEF ingress and raw records.
