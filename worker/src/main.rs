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
    worker::process::main(
        &cli.log,
        "warn",
        worker::client::run_until_signalled(cli.worker),
    )
}
