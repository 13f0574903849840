//! `boxidr`: the appliance binary. It only parses the command line and hands over to the
//! `boxidr` library (the service and its commands); every behaviour lives in the crates.
//! The demo and the benchmark are not in this binary: they are `tools/demo` and `tools/bench`.

use boxidr::cli::{Cli, Command, ConfigCommand};
use boxidr::commands;
use boxidr::exit::ExitCode;
use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log.as_deref().unwrap_or("info"));
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
            Command::Run => commands::run(&cli.config).await,
            Command::Status(args) => commands::status(&cli.config, args).await,
            Command::SetupCode(args) => commands::setup_code(&cli.config, args).await,
            Command::FactoryReset(args) => commands::factory_reset(&cli.config, args).await,
            Command::Config(ConfigCommand::Check) => commands::config_check(&cli.config),
            Command::Leds(args) => commands::leds(&cli.config, &args),
        }
    });
    code.into()
}

/// `--log`: target prefixes and levels (`warn,boxidr::pipeline=info`). A `Targets` filter,
/// not an `EnvFilter`: the same syntax without span and field directives, and without the
/// regex engine `EnvFilter` links (about 1 MiB of the binary).
fn init_tracing(filter: &str) {
    let filter: Targets = filter.parse().unwrap_or_else(|e| {
        eprintln!("boxidr: bad --log filter {filter:?} ({e}); using \"info\"");
        Targets::new().with_default(LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .init();
}
