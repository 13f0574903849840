//! Typed, strict appliance configuration: defaults, limits, pure validation. No I/O.
