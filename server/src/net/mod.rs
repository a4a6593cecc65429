//! The network side: the listener, the HTTP endpoints, and one WebSocket session per
//! connection, on a tokio multi-thread runtime.
//!
//! [`Server::start`] binds, starts the runtime on its own thread and returns a
//! [`ServerHandle`]; tests and benchmarks use it in-process, `cobra run` adds signal handling.
//!
//! - [`http`]: routing of plain HTTP requests and the upgrade decision.
//! - [`dashboard`]: the web dashboard's files, embedded in the binary.
//! - [`compress`]: permessage-deflate sends: a compressor per thread, fan-out compressed once.
//! - [`conn`]: the per-connection driver (request, upgrade, session loop, coalesced writes).
//! - [`io`]: plain TCP and TLS behind one trait.
//! - [`drain`]: taking the server out of service without dropping clients.

pub mod compress;
pub mod conn;
pub mod dashboard;
pub mod drain;
pub mod http;
pub mod io;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::broker::{
    Backend, Broker, BrokerLimits, BrokerSettings, CLOSE_GOING_AWAY, MemoryBackend, ReloadReport,
};
use crate::config::options::TlsFiles;
use crate::config::{AppsConfig, ServerSettings};
use drain::Control;

/// How long shutdown waits for connections to finish their close handshake.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Unsent bytes a connection's socket may hold (`TCP_NOTSENT_LOWAT`, Linux): one write round.
/// Without it the kernel autotunes the send buffer of a peer that stopped reading up to
/// `tcp_wmem`'s maximum (4 MiB by default) and the server copies that much into it before its
/// queue fills and its subscriptions switch to history (measured: ~2.8 MB per never-reading
/// subscriber on loopback, 280 MB and a quarter of the server's CPU for 100 of them while they
/// filled). Bytes in flight are not counted, so a reading peer's throughput is unaffected.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SOCKET_NOTSENT_BYTES: u32 = 256 * 1024;

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
#[derive(Debug)]
pub struct Shared {
    /// The broker.
    pub broker: Arc<Broker>,
    /// The settings the server was started with.
    pub settings: ServerSettings,
    /// WebSocket limits derived from the settings.
    pub wire_limits: cobra_wire::Limits,
    /// Set when a drain starts: readiness fails and upgrades are refused from then on.
    pub draining: AtomicBool,
    /// WebSocket connections admitted under `max_connections` and not ended yet. A slot is
    /// taken before the 101 is written: the broker registers a session only once it runs, so
    /// counting sessions would let a client that connects again right after its 101 slip past
    /// the limit.
    admitted: AtomicUsize,
}

impl Shared {
    /// State shared by the connections of a server over `broker`.
    pub fn new(broker: Arc<Broker>, settings: ServerSettings) -> Shared {
        let wire_limits = cobra_wire::Limits {
            max_message_size: settings.limits.message_max_size,
            max_frame_size: settings.limits.message_max_size,
            ..cobra_wire::Limits::default()
        };
        Shared {
            broker,
            settings,
            wire_limits,
            draining: AtomicBool::new(false),
            admitted: AtomicUsize::new(0),
        }
    }

    /// Takes one of the `max_connections` slots, or `None` when all are taken. The slot is
    /// given back when the returned guard is dropped (the connection ended).
    pub(crate) fn try_admit(&self) -> Option<Admission<'_>> {
        let max = self.settings.limits.max_connections;
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Admission(&self.admitted))
    }

    /// Every `max_connections` slot is taken.
    pub(crate) fn at_capacity(&self) -> bool {
        self.admitted.load(Ordering::Acquire) >= self.settings.limits.max_connections
    }
}

/// One admitted connection's slot (see [`Shared::try_admit`]).
pub(crate) struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The broker server.
#[derive(Debug)]
pub struct Server;

/// A running server. Dropping it shuts the server down.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    broker: Arc<Broker>,
    shared: Arc<Shared>,
    control: mpsc::Sender<Control>,
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

    /// Starts a drain over `window` (see [`drain`]): readiness fails at once, upgrades are
    /// refused, clients are closed with [`crate::broker::CLOSE_DRAIN`] spread over the window.
    /// With `then_stop` the server stops once empty or at the window's end ([`Self::finished`]
    /// tells; [`Self::wait`] joins); otherwise it stays up as a lame duck. A second call only
    /// adds `then_stop` (the first window stands).
    pub fn drain(&self, window: Duration, then_stop: bool) {
        // Readiness fails and upgrades are refused from now on, before the loop gets the request.
        self.shared.draining.store(true, Ordering::Release);
        // A full queue means drains are already queued: this one changes nothing but `then_stop`.
        if self
            .control
            .try_send(Control::Drain { window, then_stop })
            .is_err()
        {
            tracing::warn!("drain request dropped: the server is busy with earlier ones");
        }
    }

    /// Whether a drain has started.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// Whether the server has stopped by itself (a drain with `then_stop` ended).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the server to stop by itself (after [`Self::drain`] with `then_stop`).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Puts a new apps config in force; see [`Broker::reload_apps`].
    pub fn reload_apps(&self, apps: AppsConfig) -> ReloadReport {
        self.broker.reload_apps(apps)
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
        deflate_mode: settings.deflate_mode,
        limits: BrokerLimits {
            max_subscriptions: settings.limits.max_subscriptions,
            max_groups: settings.limits.max_groups,
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
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        // Unset, tokio starts one worker per core in the process's affinity mask.
        if let Some(n) = settings.worker_threads {
            builder.worker_threads(n.get());
        }
        let runtime = builder
            .enable_all()
            .thread_name("cobra-worker")
            .build()
            .map_err(ServerError::Runtime)?;
        let shared = Arc::new(Shared::new(Arc::clone(&broker), settings));
        // Drain requests are rare (signals): a few slots. Stopping has its own channel, so it
        // never waits behind them.
        let (control_tx, control_rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = oneshot::channel();
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener).map_err(|source| ServerError::Bind {
                addr: local_addr,
                source,
            })?
        };
        let loop_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("cobra-server".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, loop_shared, tls, control_rx, stop_rx));
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(ServerError::Runtime)?;
        tracing::info!(addr = %local_addr, "listening");
        Ok(ServerHandle {
            local_addr,
            broker,
            shared,
            control: control_tx,
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
    mut control: mpsc::Receiver<Control>,
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
    // Set once a drain starts: when it must end, and whether the server then stops.
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut stop_when_drained = false;
    let mut check = tokio::time::interval(Duration::from_millis(20));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut stop => break,
            c = control.recv() => match c {
                None => break,
                Some(Control::Drain { window, then_stop }) => {
                    stop_when_drained |= then_stop;
                    if drain_deadline.is_none() {
                        drain_deadline = Some(tokio::time::Instant::now() + window);
                        shared.draining.store(true, Ordering::Release);
                        tracing::info!(
                            connections = shared.broker.connection_count(),
                            window_ms = window.as_millis() as u64,
                            then_stop,
                            "draining: not ready, closing every client over the window"
                        );
                        tokio::spawn(drain::close_spread(Arc::clone(&shared.broker), window));
                    }
                    continue;
                }
            },
            _ = check.tick(), if stop_when_drained => {
                let empty = shared.broker.connection_count() == 0;
                if empty || drain_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    tracing::info!(empty, "drain over: stopping");
                    break;
                }
                continue;
            }
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
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(SOCKET_NOTSENT_BYTES);
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
