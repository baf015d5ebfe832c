//! Serving the gRPC API on a listener until a shutdown future resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use proto::auth::{RequireToken, Token};
use proto::channel::MAX_MESSAGE_BYTES;
use proto::v1::coordinator_server::CoordinatorServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::api::{CoordinatorService, SchedulerSettings};
use crate::metrics::Metrics;
use crate::store::{self, Store};

/// The name the health service reports the API under.
pub const COORDINATOR_SERVICE_NAME: &str = "sweep.v1.Coordinator";

/// How often expired leases are looked for, besides at every lease call.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(1);

/// Connections the kernel queues before the server accepts them: a cluster's workers tend to
/// connect at once (a job array starting, a coordinator restarting), and a full queue drops them.
const ACCEPT_BACKLOG: u32 = 4096;

/// Listens on `address` with room for many workers connecting at once.
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Who may call, and over what.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// When set, every API call must carry this bearer token (the health service stays open,
    /// for orchestrators' probes).
    pub token: Option<Token>,
    /// Certificate and private key (PEM) to serve TLS with.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// Serves the coordinator API and the standard gRPC health service on `listener` (and the web
/// dashboard on `dashboard`, when given) until `shutdown` resolves, then stops taking new calls
/// and lets in-flight ones finish.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    settings: SchedulerSettings,
    security: Security,
    dashboard: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let stop_reclaimer = CancellationToken::new();
    let reclaimer = tokio::spawn(reclaim_expired_leases(
        store.clone(),
        stop_reclaimer.clone(),
    ));
    let metrics = Arc::new(Metrics::default());
    let stop_dashboard = CancellationToken::new();
    let dashboard = dashboard.map(|listener| {
        let app = crate::dashboard::router(store.clone(), metrics.clone());
        let stop = stop_dashboard.clone();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                warn!(cause = %error, "the dashboard stopped");
            }
        })
    });

    let api = CoordinatorServer::new(CoordinatorService::new(store, settings, metrics))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let api = InterceptedService::new(api, RequireToken(security.token));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(
            COORDINATOR_SERVICE_NAME,
            tonic_health::ServingStatus::Serving,
        )
        .await;

    let mut builder = tonic::transport::Server::builder();
    if let Some((certificate, key)) = security.tls {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(certificate, key)))?;
    }
    let result = builder
        .add_service(health_service)
        .add_service(api)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;

    stop_reclaimer.cancel();
    stop_dashboard.cancel();
    let _ = reclaimer.await;
    if let Some(dashboard) = dashboard {
        let _ = dashboard.await;
    }
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
