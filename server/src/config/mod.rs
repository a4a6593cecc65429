//! The server's configuration: the apps config (appkeys, roles, permissions, channel builder),
//! where it comes from, and the options of `cobra run`.
//!
//! - [`apps`]: the validated apps config and its YAML form.
//! - [`channel_builder`]: the per-app republishing rules applied on publish.
//! - [`source`]: finding, decoding, creating and writing the apps config.
//! - [`options`]: `cobra run`'s options and the validated [`ServerSettings`].

pub mod apps;
pub mod channel_builder;
pub mod options;
pub mod source;

pub use apps::{App, AppsConfig, ConfigError, Permission, Permissions, Role};
pub use channel_builder::{Rule, RuleError, RuleKind};
pub use options::{AppsConfigArg, Limits, LogFormat, OptionsError, ServerOptions, ServerSettings};
pub use source::{ConfigSource, CreatedConfig, LoadedConfig, SourceError};
