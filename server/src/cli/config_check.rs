//! `cobra config check FILE`: validates an apps config and says what is wrong and where, so a
//! file can be checked before the SIGHUP that would load it.

use std::path::PathBuf;

use crate::config::ConfigSource;

/// `cobra config ...`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// What to do with the config.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// The `cobra config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate an apps config: exit 0 and a summary if valid, 1 and the error otherwise.
    Check {
        /// The apps config (YAML).
        file: PathBuf,
    },
}

/// Runs `cobra config`; returns the exit status.
pub fn config(args: ConfigArgs) -> i32 {
    match args.command {
        ConfigCommand::Check { file } => check(file),
    }
}

fn check(file: PathBuf) -> i32 {
    let source = ConfigSource::File {
        path: file.clone(),
        origin: "the command line",
    };
    match source.load() {
        Ok(loaded) => {
            let apps = &loaded.config.apps;
            let roles: usize = apps.values().map(|a| a.roles.len()).sum();
            println!(
                "{}: valid: {} apps, {roles} roles, channel_max_length {}",
                file.display(),
                apps.len(),
                loaded.config.channel_max_length
            );
            0
        }
        Err(e) => {
            // The error names the app, role or rule at fault, and the line for YAML errors.
            eprintln!("{}: invalid: {e}", file.display());
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            1
        }
    }
}
