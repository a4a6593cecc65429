//! Minimal stand-ins for the `config` and `streamsql` modules until their branches land.
#![allow(missing_docs, dead_code)]

pub mod config {
    use std::collections::HashMap;

    #[derive(Debug, Clone, Default)]
    pub struct AppsConfig {
        pub apps: HashMap<String, App>,
        pub channel_max_length: usize,
    }
    impl AppsConfig {
        pub fn app(&self, appkey: &str) -> Option<&App> {
            self.apps.get(appkey)
        }
    }
    #[derive(Debug, Clone, Default)]
    pub struct App {
        pub roles: HashMap<String, Role>,
        pub batch_publish: bool,
        pub channel_builder: Vec<()>,
    }
    impl App {
        pub fn role(&self, name: &str) -> Option<&Role> {
            self.roles.get(name)
        }
    }
    #[derive(Debug, Clone)]
    pub struct Role {
        pub secret: String,
        pub permissions: Permissions,
    }
    #[derive(Debug, Clone)]
    pub struct Permissions(pub Vec<String>);
    impl Permissions {
        pub fn allows(&self, action: &str) -> bool {
            if action.starts_with("auth/") {
                return true;
            }
            let verb = if action.starts_with("admin/") { "admin" } else { action.strip_prefix("rtm/").unwrap_or(action) };
            self.0.iter().any(|p| p == verb)
        }
    }
    pub mod channel_builder {
        pub fn apply(_rules: &[()], initial: Vec<String>, _message: &serde_json::Value) -> Vec<String> {
            initial
        }
    }
}

pub mod options {
    use std::net::SocketAddr;
    use std::num::{NonZeroU32, NonZeroUsize};
    use std::path::PathBuf;
    use std::time::Duration;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Limits {
        pub max_subscriptions: usize,
        pub message_max_size: usize,
        pub max_connections: usize,
        pub publish_rate_limit: Option<NonZeroU32>,
        pub handshake_timeout: Duration,
        pub batch_flush: Duration,
        pub outbound_queue_bytes: usize,
    }
    impl Default for Limits {
        fn default() -> Self {
            Limits {
                max_subscriptions: 1024,
                message_max_size: 1 << 20,
                max_connections: 10_000,
                publish_rate_limit: None,
                handshake_timeout: Duration::from_secs(10),
                batch_flush: Duration::from_millis(20),
                outbound_queue_bytes: 8 << 20,
            }
        }
    }
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TlsFiles {
        pub cert: PathBuf,
        pub key: PathBuf,
    }
    #[derive(Debug, Clone)]
    pub struct ServerSettings {
        pub addr: SocketAddr,
        pub redis_urls: Vec<String>,
        pub redis_password: Option<String>,
        pub channel_max_length: Option<NonZeroUsize>,
        pub verbose: bool,
        pub tls: Option<TlsFiles>,
        pub limits: Limits,
    }
}
