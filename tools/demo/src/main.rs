//! `boxidr-demo`: see the library's documentation and the README's "The demo".

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Start the Box and InsightIDR simulators on loopback and show the appliance at work.
#[derive(Debug, Parser)]
#[command(name = "boxidr-demo", version, about, long_about = None)]
struct Cli {
    /// Log filter of the appliance service (tracing `EnvFilter` syntax), e.g. `info`
    /// (default: `warn`; the demo's own lines tell the story).
    #[arg(long, env = "BOXIDR_LOG", default_value = "warn")]
    log: String,
    #[command(flatten)]
    demo: boxidr_demo::DemoArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|e| {
        eprintln!(
            "boxidr-demo: bad --log filter {:?} ({e}); using \"warn\"",
            cli.log
        );
        EnvFilter::new("warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    // One crypto provider for every rustls user in the process, as in `boxidr` (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("boxidr-demo")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("boxidr-demo: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(boxidr_demo::tour::demo(cli.demo)).into()
}
