//! The boxidr appliance as a library: the supervised service (`service`), the commands of the
//! `boxidr` binary (`run`, `cli`), the control socket and the exit codes. The binary
//! (`main.rs`) is a thin shell over it; `tools/demo` embeds the same service between the
//! simulators, which is why this is a library and why the product itself links none of them.

pub mod cli;
pub mod control;
pub mod exit;
pub mod run;
pub mod service;

mod canary;
mod code_file;
mod config_file;
mod facts;
mod pipeline;
mod watchdog;
