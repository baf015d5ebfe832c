use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// Leases trials from a sweep coordinator, trains and measures them, and reports the results.
#[derive(Debug, Parser)]
#[command(name = "worker", version)]
struct Cli {
    /// Log filter (for example `info`); quiet (warnings only) by default.
    #[arg(long, env = "WORKER_LOG", default_value = "warn")]
    log: String,

    #[command(flatten)]
    worker: worker::client::WorkerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: not in Slurm's output files, `docker logs` or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(worker::client::run_until_signalled(cli.worker)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
