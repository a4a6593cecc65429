//! `cobra run`: the broker.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::redis::{RedisBackend, RedisLimits};
use crate::config::{ConfigSource, LogFormat, ServerOptions};
use crate::net::{Server, ServerHandle};

/// Options of `cobra run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Every server option (each with its `COBRA_*` env var).
    #[command(flatten)]
    pub options: ServerOptions,
}

/// Sets up `tracing` output: `RUST_LOG` wins; otherwise `info` (every PDU is logged at info
/// level only with `--verbose`). Text or JSON lines on stderr.
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// How the signal loop ended.
enum Stop {
    /// SIGINT: close every client at once.
    Now,
    /// SIGTERM: the drain is over (empty, or the window ended).
    Drained,
}

/// Re-reads the apps config from its file and puts it in force; an invalid file is refused
/// with a log line and the old config stays.
pub fn reload(handle: &ServerHandle, source: &ConfigSource) {
    let path = match source {
        ConfigSource::File { path, .. } | ConfigSource::Default(path) => path.clone(),
        ConfigSource::Content(_) => {
            tracing::warn!(
                "SIGHUP: the apps config comes from $COBRA_APPS_CONFIG_CONTENT, which cannot change while the server runs: nothing reloaded"
            );
            return;
        }
    };
    // Never the first-run creation of the default file: a missing file is an error here.
    let file = ConfigSource::File {
        path: path.clone(),
        origin: "the SIGHUP reload",
    };
    match file.load() {
        Ok(loaded) => {
            let report = handle.reload_apps(loaded.config);
            tracing::info!(
                path = %path.display(),
                added = ?report.added,
                changed = ?report.changed,
                revoked = ?report.revoked,
                connections_closed = report.closed,
                "apps config reloaded"
            );
        }
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "apps config reload refused: the old config stays in force"
        ),
    }
}

/// Runs the broker until a signal stops it; returns the exit status (0 after a clean stop).
///
/// SIGTERM drains (see [`crate::net::drain`]) then exits; SIGINT stops at once (1001 to every
/// client); SIGUSR2 drains without exiting (lame duck); SIGHUP reloads the apps config.
pub fn run(args: RunArgs) -> i32 {
    init_tracing(args.options.log_format);
    let window = Duration::from_secs(args.options.drain_seconds);
    let settings = match args.options.into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cobra run: {e}");
            return 2;
        }
    };
    let loaded = match settings.load_apps_config() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cobra run: {e}");
            return 2;
        }
    };
    if let Some(created) = &loaded.created {
        println!("{created}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cobra run: cannot start: {e}");
            return 1;
        }
    };
    // Install the signal handlers before announcing readiness, so an early SIGTERM is handled.
    let signals = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>([
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::user_defined2())?,
            signal(SignalKind::hangup())?,
        ])
    });
    let [mut sigint, mut sigterm, mut sigusr2, mut sighup] = match signals {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cobra run: cannot install signal handlers: {e}");
            return 1;
        }
    };
    let config_source = settings.apps_config.clone();
    let source = loaded.source.to_string();
    let started = if settings.redis_urls.is_empty() && settings.redis_cluster.is_empty() {
        Server::start(settings, loaded.config)
    } else {
        // The Redis backend: channels sharded over the nodes, shared with other servers.
        let mut apps = loaded.config;
        if let Some(n) = settings.channel_max_length {
            apps.channel_max_length = n.get();
        }
        let cluster = !settings.redis_cluster.is_empty();
        let urls = if cluster {
            settings.redis_cluster.join(";")
        } else {
            settings.redis_urls.join(";")
        };
        let password = settings.redis_password.as_deref();
        let mut limits = RedisLimits::default();
        // Keeps deployments (or test servers) sharing Redis nodes apart; see `RedisLimits`.
        if let Ok(namespace) = std::env::var("COBRA_REDIS_NAMESPACE")
            && !namespace.is_empty()
        {
            limits.namespace = namespace;
        }
        // Replicas that must have a publish before it is acknowledged; see `RedisLimits`.
        if let Ok(acks) = std::env::var("COBRA_REDIS_REPLICA_ACKS")
            && !acks.is_empty()
        {
            match acks.parse() {
                Ok(n) => limits.replica_acks = n,
                Err(_) => {
                    eprintln!("cobra run: COBRA_REDIS_REPLICA_ACKS must be a number, got `{acks}`");
                    return 1;
                }
            }
        }
        if let Some(path) = &settings.redis_tls_ca {
            match std::fs::read_to_string(path) {
                Ok(pem) => limits.tls_ca_pem = Some(pem),
                Err(e) => {
                    eprintln!(
                        "cobra run: cannot read --redis-tls-ca {}: {e}",
                        path.display()
                    );
                    return 1;
                }
            }
        }
        let backend = if cluster {
            RedisBackend::start_cluster(&urls, password, apps.channel_max_length, limits)
        } else {
            RedisBackend::start(&urls, password, apps.channel_max_length, limits)
        };
        match backend {
            Ok(backend) => Server::start_with_backend(settings, apps, Arc::new(backend)),
            Err(e) => {
                eprintln!("cobra run: {e}");
                return 1;
            }
        }
    };
    let handle = match started {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cobra run: {e}");
            return 1;
        }
    };
    println!(
        "cobra {} listening on ws://{} (apps config: {source})",
        env!("CARGO_PKG_VERSION"),
        handle.local_addr()
    );
    let stop = runtime.block_on(async {
        let mut check = tokio::time::interval(Duration::from_millis(50));
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = sigint.recv() => {
                    tracing::info!(signal = "SIGINT", "stopping now");
                    return Stop::Now;
                }
                _ = sigterm.recv() => {
                    // Logged once draining (not ready) holds: whoever reads the line may rely on it.
                    handle.drain(window, true);
                    tracing::info!(signal = "SIGTERM", drain_seconds = window.as_secs(), "draining, then stopping");
                    stopping = true;
                }
                _ = sigusr2.recv() => {
                    handle.drain(window, false);
                    tracing::info!(signal = "SIGUSR2", drain_seconds = window.as_secs(), "lame duck: draining, staying up");
                }
                _ = sighup.recv() => reload(&handle, &config_source),
                _ = check.tick(), if stopping => {
                    if handle.finished() {
                        return Stop::Drained;
                    }
                }
            }
        }
    });
    match stop {
        Stop::Now => handle.shutdown(),
        Stop::Drained => handle.wait(),
    }
    tracing::info!("stopped");
    0
}
