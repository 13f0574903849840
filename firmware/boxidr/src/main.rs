//! `boxidr`: the appliance binary. It only parses the command line and wires the pipeline
//! crates together; every behaviour lives in those crates.

#[cfg(feature = "demo")]
mod bench;
mod canary;
mod cli;
mod code_file;
mod config_file;
mod control;
#[cfg(feature = "demo")]
mod demo;
mod exit;
mod facts;
mod pipeline;
mod run;
mod service;
mod watchdog;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::exit::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(_) => "warn",
        _ => "info",
    };
    init_tracing(cli.log.as_deref().unwrap_or(default_log));
    // One crypto provider for every rustls user in the process (ring; see README "TLS").
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("A rustls crypto provider was already installed.");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("boxidr")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("boxidr: cannot start the async runtime: {e}");
            return ExitCode::Failure.into();
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run => run::run(&cli.config).await,
            Command::Status(args) => run::status(&cli.config, args).await,
            Command::SetupCode(args) => run::setup_code(&cli.config, args).await,
            Command::FactoryReset(args) => run::factory_reset(&cli.config, args).await,
            Command::Config(cli::ConfigCommand::Check) => run::config_check(&cli.config),
            Command::Leds(args) => run::leds(&cli.config, &args),
            #[cfg(feature = "demo")]
            Command::Demo(args) => demo::demo(args).await,
            #[cfg(feature = "demo")]
            Command::Bench(args) => bench::bench(args).await,
        }
    });
    code.into()
}

fn init_tracing(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("boxidr: bad --log filter {filter:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
