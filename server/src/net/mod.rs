//! The network side: the listener, the HTTP endpoints, and one WebSocket session per
//! connection, on a tokio multi-thread runtime.
//!
//! [`Server::start`] binds, starts the runtime on its own thread and returns a
//! [`ServerHandle`]; tests and benchmarks use it in-process, `cobra run` adds signal handling.
//!
//! - [`http`]: routing of plain HTTP requests and the upgrade decision.
//! - [`compress`]: permessage-deflate sends: a compressor per thread, fan-out compressed once.
//! - [`conn`]: the per-connection driver (request, upgrade, session loop, coalesced writes).
//! - [`io`]: plain TCP and TLS behind one trait.

pub mod compress;
pub mod conn;
pub mod http;
pub mod io;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::broker::{
    Backend, Broker, BrokerLimits, BrokerSettings, CLOSE_GOING_AWAY, MemoryBackend,
};
use crate::config::options::TlsFiles;
use crate::config::{AppsConfig, ServerSettings};

/// How long shutdown waits for connections to finish their close handshake.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// State shared by every connection task.
pub struct Shared {
    /// The broker.
    pub broker: Arc<Broker>,
    /// The settings the server was started with.
    pub settings: ServerSettings,
    /// WebSocket limits derived from the settings.
    pub wire_limits: cobra_wire::Limits,
}

/// The broker server.
#[derive(Debug)]
pub struct Server;

/// A running server. Dropping it shuts the server down.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The broker (stats, connections).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Closes every client with 1001, waits for them (at most [`SHUTDOWN_GRACE`]) and stops.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The broker settings implied by the server settings.
pub fn broker_settings(settings: &ServerSettings) -> BrokerSettings {
    BrokerSettings {
        verbose: settings.verbose,
        limits: BrokerLimits {
            max_subscriptions: settings.limits.max_subscriptions,
            publish_rate_limit: settings.limits.publish_rate_limit,
            outbound_queue_bytes: settings.limits.outbound_queue_bytes,
            batch_flush_delay: settings.limits.batch_flush,
            ..BrokerLimits::default()
        },
        ..BrokerSettings::default()
    }
}

impl Server {
    /// Starts a server with the embedded backend.
    pub fn start(
        settings: ServerSettings,
        mut apps: AppsConfig,
    ) -> Result<ServerHandle, ServerError> {
        if let Some(n) = settings.channel_max_length {
            apps.channel_max_length = n.get();
        }
        let backend = Arc::new(MemoryBackend::new(apps.channel_max_length));
        let broker = Broker::new(broker_settings(&settings), apps, backend);
        Server::start_with_broker(settings, broker)
    }

    /// Starts a server over `backend` (e.g. Redis).
    pub fn start_with_backend(
        settings: ServerSettings,
        apps: AppsConfig,
        backend: Arc<dyn Backend>,
    ) -> Result<ServerHandle, ServerError> {
        let broker = Broker::new(broker_settings(&settings), apps, backend);
        Server::start_with_broker(settings, broker)
    }

    /// Starts a server around an existing broker.
    pub fn start_with_broker(
        settings: ServerSettings,
        broker: Arc<Broker>,
    ) -> Result<ServerHandle, ServerError> {
        let tls = settings.tls.as_ref().map(load_tls).transpose()?;
        let std_listener =
            std::net::TcpListener::bind(settings.addr).map_err(|source| ServerError::Bind {
                addr: settings.addr,
                source,
            })?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|source| ServerError::Bind {
                addr: settings.addr,
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Bind {
                addr: settings.addr,
                source,
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("cobra-worker")
            .build()
            .map_err(ServerError::Runtime)?;
        let wire_limits = cobra_wire::Limits {
            max_message_size: settings.limits.message_max_size,
            max_frame_size: settings.limits.message_max_size,
            ..cobra_wire::Limits::default()
        };
        let shared = Arc::new(Shared {
            broker: Arc::clone(&broker),
            settings,
            wire_limits,
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener).map_err(|source| ServerError::Bind {
                addr: local_addr,
                source,
            })?
        };
        let thread = std::thread::Builder::new()
            .name("cobra-server".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, shared, tls, stop_rx));
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(ServerError::Runtime)?;
        tracing::info!(addr = %local_addr, "listening");
        Ok(ServerHandle {
            local_addr,
            broker,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

fn load_tls(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ServerError::Tls(format!("{}: {e}", files.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let stats_task = shared.broker.settings.stats_interval.map(|every| {
        let broker = Arc::clone(&shared.broker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            tick.tick().await;
            loop {
                tick.tick().await;
                broker.publish_stats().await;
            }
        })
    });
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Sockets still in their TLS/HTTP phase are not in the registry that
        // `max_connections` counts: past twice the cap, close new ones at once (a 503 would
        // need their request read first) so half-open sockets cannot pile up.
        if active.load(Ordering::Acquire)
            >= shared.settings.limits.max_connections.saturating_mul(2)
        {
            tracing::debug!(%peer, "over twice max_connections sockets: closed at once");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        active.fetch_add(1, Ordering::AcqRel);
        let guard = ActiveGuard(Arc::clone(&active));
        let shared = Arc::clone(&shared);
        match &tls {
            None => {
                tokio::spawn(async move {
                    let _guard = guard;
                    conn::serve(stream, peer, shared).await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    let handshake = tokio::time::timeout(
                        shared.settings.limits.handshake_timeout,
                        acceptor.accept(stream),
                    );
                    match handshake.await {
                        Ok(Ok(s)) => conn::serve(io::Buffered(s), peer, shared).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!(
        connections = shared.broker.connection_count(),
        "shutting down: closing every client with 1001"
    );
    shared.broker.close_all(CLOSE_GOING_AWAY);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while active.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        // Connections still in their HTTP phase are not in the registry: cancel them with the runtime.
        if shared.broker.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(t) = stats_task {
        t.abort();
    }
}
