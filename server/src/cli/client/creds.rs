//! Default credentials for the client commands, read from the apps config as the Python client does:
//! `COBRA_APPS_CONFIG`, else `$HOME/.cobra.yaml`; the first role of the appkey. The file is read and
//! validated by the apps-config module ([`crate::config::source`]), as the server reads it.

use std::path::PathBuf;

use crate::config::AppsConfig;
use crate::config::source::{self, ENV_APPS_CONFIG, SourceError};

/// Why no credentials could be found.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    /// Neither the options nor an apps config give them.
    #[error(
        "no role credentials: pass --rolename and --rolesecret, or set COBRA_APPS_CONFIG (or create ~/.cobra.yaml)"
    )]
    NoConfig,
    /// The apps config could not be read, or is not a valid apps config.
    #[error(transparent)]
    Config(#[from] SourceError),
    /// The appkey or the role is not in the config.
    #[error("apps config {path} has no {what}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What is missing, e.g. `role for appkey _pubsub`.
        what: String,
    },
}

/// The apps config the client commands read their default credentials from, if one is set or exists.
pub fn apps_config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_APPS_CONFIG).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = source::default_path(|name| std::env::var_os(name)).ok()?;
    path.exists().then_some(path)
}

/// Resolves the role and secret: explicit options win; what is missing comes from the apps config
/// (the role named by `--rolename`, else the appkey's first role).
pub fn resolve(
    appkey: &str,
    rolename: Option<&str>,
    rolesecret: Option<&str>,
) -> Result<(String, String), CredsError> {
    if let (Some(role), Some(secret)) = (rolename, rolesecret) {
        return Ok((role.to_owned(), secret.to_owned()));
    }
    let path = apps_config_path().ok_or(CredsError::NoConfig)?;
    let config = source::read_file(&path)?;
    let (role, secret) =
        role_of(&config, appkey, rolename).map_err(|what| CredsError::Missing {
            path: path.clone(),
            what,
        })?;
    Ok((role, rolesecret.map_or(secret, str::to_owned)))
}

/// The role `wanted` (or the first role) of `appkey` and its secret; what is missing otherwise.
pub(super) fn role_of(
    config: &AppsConfig,
    appkey: &str,
    wanted: Option<&str>,
) -> Result<(String, String), String> {
    let app = config
        .app(appkey)
        .ok_or_else(|| format!("appkey {appkey} with roles"))?;
    let found = match wanted {
        Some(w) => app.roles.get_key_value(w),
        None => app.roles.first(),
    };
    found
        .map(|(name, role)| (name.clone(), role.secret.clone()))
        .ok_or_else(|| match wanted {
            Some(w) => format!("role {w} with a secret for appkey {appkey}"),
            None => format!("role with a secret for appkey {appkey}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "
apps:
  _health:
    roles:
      health:
        secret: A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E
        permissions: [read, write]
      other:
        secret: s2
  _pubsub:
    roles:
      pubsub: {secret: p1}
";

    fn lookup(appkey: &str, wanted: Option<&str>) -> Result<(String, String), String> {
        role_of(&AppsConfig::from_yaml(YAML).unwrap(), appkey, wanted)
    }

    #[test]
    fn first_role_of_the_appkey() {
        assert_eq!(
            lookup("_health", None),
            Ok(("health".into(), "A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E".into()))
        );
        assert_eq!(lookup("_pubsub", None), Ok(("pubsub".into(), "p1".into())));
    }

    #[test]
    fn named_role() {
        assert_eq!(
            lookup("_health", Some("other")),
            Ok(("other".into(), "s2".into()))
        );
        assert!(lookup("_health", Some("nope")).is_err());
    }

    #[test]
    fn unknown_appkey_and_bad_config() {
        assert!(lookup("_stats", None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apps.yaml");
        for bad in ["apps: [", "42"] {
            std::fs::write(&path, bad).unwrap();
            assert!(source::read_file(&path).is_err(), "{bad}");
        }
    }
}
