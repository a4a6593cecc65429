//! `cobra run`: the broker.

use std::sync::Arc;

use crate::broker::redis::{RedisBackend, RedisLimits};
use crate::config::ServerOptions;
use crate::net::Server;

/// Options of `cobra run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Every server option (each with its `COBRA_*` env var).
    #[command(flatten)]
    pub options: ServerOptions,
}

/// Sets up `tracing` output: `RUST_LOG` wins; otherwise `info` (every PDU is logged at info
/// level only with `--verbose`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the broker until SIGINT or SIGTERM; returns the exit status (0 after a clean stop).
pub fn run(args: RunArgs) -> i32 {
    init_tracing();
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
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    });
    let (mut sigint, mut sigterm) = match signals {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cobra run: cannot install signal handlers: {e}");
            return 1;
        }
    };
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
    let which = runtime.block_on(async {
        tokio::select! {
            _ = sigint.recv() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
        }
    });
    tracing::info!(signal = which, "stopping");
    handle.shutdown();
    0
}
