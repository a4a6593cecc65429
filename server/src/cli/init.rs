//! `cobra init` and `cobra secret`.

use crate::config::AppsConfigArg;
use crate::config::apps::{AppsConfig, generate_secret};
use crate::config::source::{self, write_config_file};

/// Options of `cobra init`.
#[derive(Debug, clap::Args)]
// The shared option's help speaks of reading the config; here it is written.
#[command(mut_arg("apps_config", |arg| arg.help(
    "Where to write the config [default: $COBRA_APPS_CONFIG, else ~/.cobra.yaml]"
)))]
pub struct InitArgs {
    // No doc comment: clap would read it as help text (the help is set above).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub apps_config: AppsConfigArg,

    /// Overwrite an existing config (its secrets are lost).
    #[arg(long)]
    pub force: bool,
}

/// Writes a default apps config (mode 0600) and prints where and which roles it holds.
/// Exit status 1, leaving the file untouched, when it exists and `--force` is not given.
pub fn init(args: InitArgs) -> i32 {
    let path = match args.apps_config.path.filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => path,
        None => match source::default_path(|name| std::env::var_os(name)) {
            Ok(path) => path,
            Err(e) => {
                eprintln!("cobra init: {e}");
                return 1;
            }
        },
    };
    let config = AppsConfig::default_generated();
    // Without --force an existing file is an `AlreadyExists` error and stays untouched.
    if let Err(e) = write_config_file(&path, &config.to_yaml(), args.force) {
        eprintln!("cobra init: {e}");
        return 1;
    }
    println!(
        "wrote {} (readable by you only; the secrets are in it)",
        path.display()
    );
    let mut apps: Vec<_> = config.apps.iter().collect();
    apps.sort_by_key(|(appkey, _)| *appkey);
    for (appkey, app) in apps {
        let mut roles: Vec<&String> = app.roles.keys().collect();
        roles.sort();
        for role in roles {
            println!("  app {appkey}: role {role}, every permission");
        }
    }
    0
}

/// Prints a fresh role secret (32 hex characters from a CSPRNG).
pub fn secret() -> i32 {
    println!("{}", generate_secret());
    0
}
