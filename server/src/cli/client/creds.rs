//! Default credentials for the client commands, read from the apps config as the Python client does:
//! `COBRA_APPS_CONFIG`, else `$HOME/.cobra.yaml`; the first role of the appkey.

use std::path::{Path, PathBuf};

/// Why no credentials could be found.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    /// Neither the options nor an apps config give them.
    #[error(
        "no role credentials: pass --rolename and --rolesecret, or set COBRA_APPS_CONFIG (or create ~/.cobra.yaml)"
    )]
    NoConfig,
    /// The apps config could not be read.
    #[error("cannot read apps config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The apps config is not valid YAML.
    #[error("invalid apps config {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
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
    if let Some(p) = std::env::var_os("COBRA_APPS_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let path = Path::new(&home).join(".cobra.yaml");
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
    let text = std::fs::read_to_string(&path).map_err(|source| CredsError::Read {
        path: path.clone(),
        source,
    })?;
    let (role, secret) = role_from_yaml(&text, appkey, rolename).map_err(|e| match e {
        Lookup::Parse(reason) => CredsError::Parse {
            path: path.clone(),
            reason,
        },
        Lookup::Missing(what) => CredsError::Missing {
            path: path.clone(),
            what,
        },
    })?;
    Ok((role, rolesecret.map_or(secret, str::to_owned)))
}

/// A failed lookup in the config text.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not YAML.
    Parse(String),
    /// The appkey or role is absent.
    Missing(String),
}

/// The role `wanted` (or the first role) of `appkey` and its secret, from apps config YAML text.
pub fn role_from_yaml(
    text: &str,
    appkey: &str,
    wanted: Option<&str>,
) -> Result<(String, String), Lookup> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| Lookup::Parse(e.to_string()))?;
    let roles = doc
        .get("apps")
        .and_then(|apps| apps.get(appkey))
        .and_then(|app| app.get("roles"))
        .and_then(serde_yaml_ng::Value::as_mapping)
        .ok_or_else(|| Lookup::Missing(format!("appkey {appkey} with roles")))?;
    let found = roles.iter().find_map(|(name, role)| {
        let name = name.as_str()?;
        if wanted.is_some_and(|w| w != name) {
            return None;
        }
        let secret = role.get("secret")?.as_str()?;
        Some((name.to_owned(), secret.to_owned()))
    });
    found.ok_or_else(|| match wanted {
        Some(w) => Lookup::Missing(format!("role {w} with a secret for appkey {appkey}")),
        None => Lookup::Missing(format!("role with a secret for appkey {appkey}")),
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

    #[test]
    fn first_role_of_the_appkey() {
        assert_eq!(
            role_from_yaml(YAML, "_health", None),
            Ok(("health".into(), "A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E".into()))
        );
        assert_eq!(
            role_from_yaml(YAML, "_pubsub", None),
            Ok(("pubsub".into(), "p1".into()))
        );
    }

    #[test]
    fn named_role() {
        assert_eq!(
            role_from_yaml(YAML, "_health", Some("other")),
            Ok(("other".into(), "s2".into()))
        );
        assert!(matches!(
            role_from_yaml(YAML, "_health", Some("nope")),
            Err(Lookup::Missing(_))
        ));
    }

    #[test]
    fn unknown_appkey_and_bad_yaml() {
        assert!(matches!(
            role_from_yaml(YAML, "_stats", None),
            Err(Lookup::Missing(_))
        ));
        assert!(matches!(
            role_from_yaml("apps: [", "_stats", None),
            Err(Lookup::Parse(_))
        ));
        assert!(matches!(
            role_from_yaml("42", "_stats", None),
            Err(Lookup::Missing(_))
        ));
    }
}
