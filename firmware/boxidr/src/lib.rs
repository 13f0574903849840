//! The boxidr appliance as a library: the supervised service (`service`), the commands of the
//! `boxidr` binary (`commands`, `cli`), the control socket, the status snapshot (`status`) and
//! the exit codes. The binary
//! (`main.rs`) is a thin shell over it; `tools/demo` embeds the same service between the
//! simulators, which is why this is a library and why the product itself links none of them.

pub mod cli;
pub mod commands;
pub mod control;
pub mod exit;
pub mod service;
pub mod status;

mod canary;
mod code_file;
mod config_file;
mod facts;
mod pipeline;
pub mod report;
mod watchdog;
