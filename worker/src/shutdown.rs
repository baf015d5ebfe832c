//! Shutdown signals: the first SIGTERM or Ctrl-C starts a graceful drain; a second one exits at once.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Returns a token cancelled on the first SIGTERM/SIGINT; the second signal exits the process.
pub fn on_termination_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        for count in 0.. {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            if count == 0 {
                info!("shutdown signal received, draining; send it again to exit at once");
                cancel.cancel();
            } else {
                warn!("second shutdown signal, exiting now");
                std::process::exit(130);
            }
        }
    });
    Ok(token)
}
