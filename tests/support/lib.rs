//! Shared harness for the system tests: starts the simulators and the appliance on loopback.
