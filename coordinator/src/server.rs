//! Serving the gRPC API on a listener until a shutdown future resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{CoordinatorService, SchedulerSettings};
use crate::store::{self, Store};

/// How often expired leases are looked for, besides at every lease call.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(1);

/// Largest message accepted or sent (a sweep file, a lease batch, a report).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Serves the coordinator API on `listener` until `shutdown` resolves, then stops taking new
/// calls and lets in-flight ones finish.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    settings: SchedulerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let stop_reclaimer = CancellationToken::new();
    let reclaimer = tokio::spawn(reclaim_expired_leases(
        store.clone(),
        stop_reclaimer.clone(),
    ));

    let service = proto::v1::coordinator_server::CoordinatorServer::new(CoordinatorService::new(
        store, settings,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let result = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;

    stop_reclaimer.cancel();
    let _ = reclaimer.await;
    info!("coordinator stopped");
    result
}

async fn reclaim_expired_leases(store: Arc<dyn Store>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(RECLAIM_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        match store.reclaim_expired(store::now_ms()).await {
            Ok(reclaimed) if reclaimed.requeued + reclaimed.failed > 0 => {
                info!(
                    requeued = reclaimed.requeued,
                    failed = reclaimed.failed,
                    "expired leases reclaimed"
                );
            }
            Ok(_) => {}
            Err(error) => warn!(cause = %error, "cannot reclaim expired leases"),
        }
    }
}
