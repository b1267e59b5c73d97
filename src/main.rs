//! The `satellite` binary: panic policy, command-line parsing, logging, dispatch. Everything
//! else lives in the library.

use std::process::ExitCode;

use satellite::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's allocator: a usage report allocates ~80 times and a loaded device
/// ~8 times, and glibc spent ~10% of a report's CPU in malloc and free (docs/benchmarks.md,
/// "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic anywhere leaves state we cannot reason about: abort, and let the supervisor
    // restart the daemon from what is on disk.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // `satellite ... | head` closes our stdout early: end quietly, as a filter should.
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
        eprintln!("satellite: internal error (panic); aborting so the service restarts cleanly");
        std::process::abort();
    }));
    let cli = satellite::cli::parse();
    let json = cli.global.json;
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("satellite: a TLS crypto provider was already installed");
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => satellite::cli::report(&e, json),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve => {
            let settings = cli.global.settings()?;
            let set_log_level = init_tracing(&settings.log.level, settings.log.format);
            let global = cli.global;
            let reloader = satellite::daemon::Reloader {
                settings: Box::new(move || global.settings()),
                set_log_level,
            };
            runtime.block_on(satellite::daemon::serve(settings, reloader))
        }
        command => {
            let _set_level = init_tracing("warn", satellite::config::LogFormat::Text);
            runtime.block_on(satellite::cli::run_client(&cli.global, command))
        }
    }
}

/// Logs to stderr; `RUST_LOG`, when set, overrides the configured level (also on reload).
/// Either directive is expanded by `logging::directive` (a bare `debug` keeps the libraries
/// underneath at `info`); colours only on a terminal (`logging::colour_stderr`). Returns how to
/// change the level later.
fn init_tracing(
    level: &str,
    format: satellite::config::LogFormat,
) -> satellite::daemon::SetLogLevel {
    use satellite::logging;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt, reload};

    let from_env = std::env::var("RUST_LOG").ok();
    let filter = from_env
        .as_deref()
        .and_then(|d| EnvFilter::try_new(logging::directive(d)).ok())
        .unwrap_or_else(|| EnvFilter::new(logging::directive(level)));
    let (filter, handle) = reload::Layer::new(filter);
    let colour = logging::colour_stderr();
    let output = match format {
        satellite::config::LogFormat::Json => fmt::layer()
            .json()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .boxed(),
        satellite::config::LogFormat::Text => fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    let from_env = from_env.is_some();
    Box::new(move |level: &str| {
        if from_env {
            return Ok(());
        }
        let filter = EnvFilter::try_new(logging::directive(level)).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}
