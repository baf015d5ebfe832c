//! Connecting a client to a coordinator: URL, optional TLS (verifying the coordinator against a
//! CA file) and the bearer token, the same for the command-line clients and the workers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::auth::{AttachToken, Token};
use crate::v1::coordinator_client::CoordinatorClient;

/// Largest message sent or received (a sweep file, a lease batch, a report).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub type Client = CoordinatorClient<InterceptedService<Channel, AttachToken>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("`{url}` is not a valid coordinator URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot read CA certificate {path}: {source}")]
    UnreadableCa {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up TLS for {url}: {reason}")]
    Tls { url: String, reason: String },
    #[error("cannot reach the coordinator at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// How often a client pings the coordinator over an HTTP/2 connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the connection is dropped.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach a coordinator.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    /// A CA certificate (PEM) to verify the coordinator's certificate; implies TLS.
    pub tls_ca: Option<PathBuf>,
    pub token: Option<Token>,
}

impl Connection {
    fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|error| ConnectError::InvalidUrl {
                url: self.url.clone(),
                reason: error.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            // HTTP/2 pings find a connection that died without a word (a network cut, a
            // coordinator's address that changed): a call on it fails after about 20 s, and the
            // next call connects anew, where it would otherwise wait for TCP's retransmissions
            // for many minutes (a worker cut off and reconnected sat idle).
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        if let Some(ca) = &self.tls_ca {
            let pem = read_pem(ca)?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|error| ConnectError::Tls {
                    url: self.url.clone(),
                    reason: error.to_string(),
                })?;
        }
        Ok(endpoint)
    }

    fn client(&self, channel: Channel) -> Client {
        CoordinatorClient::with_interceptor(channel, AttachToken(self.token.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Connects now; fails if the coordinator cannot be reached.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        Ok(self.client(self.health_channel().await?))
    }

    /// Connects on first use and reconnects after failures (for workers that outlive restarts).
    pub fn connect_lazy(&self) -> Result<Client, ConnectError> {
        Ok(self.client(self.endpoint()?.connect_lazy()))
    }

    /// A plain channel without the token, for the standard health service.
    pub async fn health_channel(&self) -> Result<Channel, ConnectError> {
        self.endpoint()?
            .connect()
            .await
            .map_err(|error| ConnectError::Unreachable {
                url: self.url.clone(),
                reason: source_chain(&error),
            })
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::UnreadableCa {
        path: path.display().to_string(),
        source,
    })
}

/// tonic's transport errors say little at the top level; the cause is further down.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
