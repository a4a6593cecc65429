//! Minimal stand-ins for the `config` and `streamsql` modules until their branches land.
#![allow(missing_docs, dead_code)]

pub mod config {
    use std::collections::HashMap;

    #[derive(Debug, Clone, Default)]
    pub struct AppsConfig {
        pub apps: HashMap<String, App>,
        pub channel_max_length: usize,
    }
    #[derive(Debug, Clone, Default)]
    pub struct App {
        pub roles: HashMap<String, Role>,
    }
    #[derive(Debug, Clone)]
    pub struct Role {
        pub secret: String,
        pub permissions: Vec<String>,
    }
    impl Role {
        pub fn allows(&self, action: &str) -> bool {
            if action.starts_with("auth/") {
                return true;
            }
            let verb = if action.starts_with("admin/") {
                "admin"
            } else {
                action.strip_prefix("rtm/").unwrap_or(action)
            };
            self.permissions.iter().any(|p| p == verb)
        }
    }
    impl App {
        pub fn channel_builder_apply(
            &self,
            _message: &serde_json::Value,
            channels: Vec<String>,
        ) -> Vec<String> {
            channels
        }
        pub fn has_channel_builder(&self) -> bool {
            false
        }
    }
}

pub mod streamsql {
    #[derive(Debug)]
    pub struct Query {
        channel: String,
    }
    #[derive(Debug)]
    pub struct ParseError(pub String);
    impl std::fmt::Display for ParseError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    pub enum Outcome {
        NoMatch,
        Forward,
        Projected(String),
    }
    impl Query {
        pub fn parse(sql: &str) -> Result<Query, ParseError> {
            let lower = sql.to_ascii_lowercase();
            let i = lower
                .find(" from ")
                .ok_or_else(|| ParseError("missing FROM".into()))?;
            let rest = sql[i + 6..].trim();
            let chan = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('`');
            Ok(Query {
                channel: chan.to_string(),
            })
        }
        pub fn channel(&self) -> &str {
            &self.channel
        }
        pub fn eval_raw(&self, _raw: &str) -> Outcome {
            Outcome::Forward
        }
    }
}

pub mod auth {
    pub fn new_nonce() -> String {
        format!("{:032x}", rand::random::<u128>())
    }
    pub fn verify(_secret: &str, _nonce: &str, _hash: &str) -> bool {
        false
    }
}
