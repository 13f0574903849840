//! Fault-injecting Box API simulator (OAuth, events, users) for tests, benchmarks and the demo.
