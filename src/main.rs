//! The `satellite` binary: panic policy, command-line parsing, logging, dispatch. Everything
//! else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use satellite::cli::{Cli, Command, Refused};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // A panic anywhere leaves state we cannot reason about: abort, and let the supervisor
    // restart the daemon from what is on disk.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("satellite: internal error (panic); aborting so the service restarts cleanly");
        std::process::abort();
    }));
    let cli = Cli::parse();
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("satellite: a TLS crypto provider was already installed");
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(r) = e.downcast_ref::<Refused>() {
                eprintln!("error: {} ({}, {})", r.message, r.code, r.status);
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve => {
            let settings = cli.global.settings()?;
            init_tracing(&settings.log.level, settings.log.format);
            runtime.block_on(satellite::daemon::serve(settings))
        }
        command => {
            init_tracing("warn", satellite::config::LogFormat::Text);
            runtime.block_on(satellite::cli::run_client(&cli.global, command))
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the configured level.
fn init_tracing(level: &str, format: satellite::config::LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        satellite::config::LogFormat::Json => builder.json().init(),
        satellite::config::LogFormat::Text => builder.init(),
    }
}
