//! What the worker and coordinator binaries both do around their work: logs to standard error
//! under a filter, a multi-threaded runtime, and an exit code with the error's chain on failure.

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Runs `work` on a new runtime with logging installed: `filter` (an `EnvFilter` directive such as
/// `info`), or `fallback` when `filter` does not parse.
pub fn main(
    filter: &str,
    fallback: &str,
    work: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(fallback));
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
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
