//! The apps config: appkeys, their roles (secret + permissions), and per-app publish options.
//!
//! The YAML is the one the Python `cobras` server reads from `~/.cobra.yaml`:
//!
//! ```yaml
//! apps:
//!   _pubsub:                  # appkey
//!     roles:
//!       pubsub:               # role name
//!         secret: A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E
//!         permissions: [subscribe, unsubscribe, publish, admin, read, write, delete]
//!     batch_publish: true     # optional, default false
//!     channel_builder:        # optional, see `channel_builder`
//!       game: {kind: compose2, separator: _, field1: device.game, field2: id}
//! channel_max_length: 1000    # optional, default 1000
//! ```
//!
//! Parsing is lenient where the reference is (unknown keys are ignored, so newer configs keep
//! loading; a role without permissions may authenticate but do nothing, as in the reference)
//! and strict where a mistake would silently weaken or break a deployment (a role without a
//! secret, an unknown permission name, a malformed channel_builder rule): those are typed
//! errors naming the app and role or rule.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use indexmap::IndexMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::channel_builder::{Rule, RuleError};

/// History kept per channel when the config does not say (the reference default).
pub const DEFAULT_CHANNEL_MAX_LENGTH: usize = 1000;

/// The apps `cobra init` writes, in this order.
pub const DEFAULT_APPS: [&str; 4] = ["_health", "_stats", "_admin", "_pubsub"];

/// The app whose credentials a first run prints, so a client can connect right away.
pub const PUBSUB_APPKEY: &str = "_pubsub";

/// One permission a role may hold. Its name in the YAML is the `rtm/<verb>` it grants
/// (plus `admin` for every `admin/*` action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// `rtm/subscribe`.
    Subscribe,
    /// `rtm/unsubscribe`.
    Unsubscribe,
    /// `rtm/publish`.
    Publish,
    /// Every `admin/*` action.
    Admin,
    /// `rtm/read`.
    Read,
    /// `rtm/write`.
    Write,
    /// `rtm/delete`.
    Delete,
}

impl Permission {
    /// Every permission, in the order `cobra init` writes them.
    pub const ALL: [Permission; 7] = [
        Permission::Subscribe,
        Permission::Unsubscribe,
        Permission::Publish,
        Permission::Admin,
        Permission::Read,
        Permission::Write,
        Permission::Delete,
    ];

    /// The name used in the YAML (and the verb of the `rtm/` action it grants).
    pub fn name(self) -> &'static str {
        match self {
            Permission::Subscribe => "subscribe",
            Permission::Unsubscribe => "unsubscribe",
            Permission::Publish => "publish",
            Permission::Admin => "admin",
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Delete => "delete",
        }
    }

    /// The permission named `name`, if any.
    pub fn from_name(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of permissions of a role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    /// No permission: the role can authenticate and nothing else.
    pub const NONE: Permissions = Permissions(0);

    /// Every permission.
    pub fn all() -> Permissions {
        Permission::ALL.into_iter().collect()
    }

    /// Whether the set holds `p`.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Adds `p` to the set.
    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    /// The permissions held, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Whether a role with these permissions may run `action` (a PDU's `action`, without outcome):
    /// `auth/*` always; `admin/*` needs `admin`; `rtm/<verb>` needs the permission named `<verb>`;
    /// anything else (unknown service or verb) is refused.
    pub fn allows(&self, action: &str) -> bool {
        let Some((service, verb)) = action.split_once('/') else {
            return false;
        };
        match service {
            "auth" => true,
            "admin" => self.contains(Permission::Admin),
            "rtm" => Permission::from_name(verb).is_some_and(|p| self.contains(p)),
            _ => false,
        }
    }

    /// What the old single-string `permission:` form grants. The reference server never read
    /// that key; configs of its predecessors used it, with these meanings:
    /// - `subscribe`: subscribe + unsubscribe + read (everything a consumer needs);
    /// - `publish`: publish + write + delete (everything a producer needs);
    /// - `publish_subscribe`: both of the above;
    /// - any single permission name (`admin`, `read`, ...): just that permission.
    pub fn from_legacy(name: &str) -> Option<Permissions> {
        use Permission::*;
        let consumer = [Subscribe, Unsubscribe, Read];
        let producer = [Publish, Write, Delete];
        let granted: Vec<Permission> = match name {
            "subscribe" => consumer.to_vec(),
            "publish" => producer.to_vec(),
            "publish_subscribe" | "subscribe_publish" => [consumer, producer].concat(),
            other => vec![Permission::from_name(other)?],
        };
        Some(granted.into_iter().collect())
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Permissions::NONE;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// A role of an app: its shared secret and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The shared secret (the HMAC-MD5 key of `auth/authenticate`). Never empty.
    pub secret: String,
    /// What the role may do.
    pub permissions: Permissions,
}

/// One app (appkey) of the config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct App {
    /// The roles, in config order (the client commands default to the first).
    pub roles: IndexMap<String, Role>,
    /// Whether clients of this app may publish in batches (reference option, kept for them).
    pub batch_publish: bool,
    /// Republishing rules applied to every publish, in config order.
    pub channel_builder: Vec<Rule>,
}

impl App {
    /// The role named `name`, if the app has it.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }
}

/// The validated apps config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppsConfig {
    /// The apps, by appkey.
    pub apps: HashMap<String, App>,
    /// Messages of history kept per channel. At least 1.
    pub channel_max_length: usize,
}

/// Why an apps config was refused. Every variant names the culprit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML, or not the expected shape.
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// No `apps:` section.
    #[error("no `apps:` section")]
    MissingApps,
    /// An app without roles.
    #[error("app `{app}`: no roles")]
    NoRoles {
        /// The appkey.
        app: String,
    },
    /// A role without a secret.
    #[error("app `{app}`, role `{role}`: missing secret")]
    MissingSecret {
        /// The appkey.
        app: String,
        /// The role's name.
        role: String,
    },
    /// A secret that is not a string.
    #[error("app `{app}`, role `{role}`: the secret must be a string")]
    BadSecret {
        /// The appkey.
        app: String,
        /// The role's name.
        role: String,
    },
    /// A permission name not in the list.
    #[error(
        "app `{app}`, role `{role}`: unknown permission `{name}` (expected one of subscribe, unsubscribe, publish, admin, read, write, delete)"
    )]
    UnknownPermission {
        /// The appkey.
        app: String,
        /// The role's name.
        role: String,
        /// The name given.
        name: String,
    },
    /// A role that is not a mapping, or a bad permissions list.
    #[error("app `{app}`, role `{role}`: {what}")]
    BadRole {
        /// The appkey.
        app: String,
        /// The role's name.
        role: String,
        /// What is wrong.
        what: String,
    },
    /// A channel_builder rule refused.
    #[error("app `{app}`, channel_builder rule `{rule}`: {source}")]
    BadRule {
        /// The appkey.
        app: String,
        /// The rule's name.
        rule: String,
        #[source]
        /// The underlying error.
        source: RuleError,
    },
    /// An app section of the wrong shape.
    #[error("app `{app}`: {what}")]
    BadApp {
        /// The appkey.
        app: String,
        /// What is wrong.
        what: String,
    },
    /// `channel_max_length` is not a positive integer.
    #[error("channel_max_length must be a positive integer, got `{0}`")]
    BadChannelMaxLength(String),
}

// The YAML as written. Loose types (`Value`) where the reference accepts several shapes or
// where we want our own error text; serde ignores unknown keys by default.
#[derive(Deserialize)]
struct RawConfig {
    apps: Option<HashMap<String, Option<RawApp>>>,
    channel_max_length: Option<Value>,
}

#[derive(Deserialize)]
struct RawApp {
    roles: Option<IndexMap<String, Value>>,
    batch_publish: Option<bool>,
    channel_builder: Option<Value>,
}

impl AppsConfig {
    /// Parses and validates a YAML apps config.
    pub fn from_yaml(text: &str) -> Result<AppsConfig, ConfigError> {
        let mut value: Value = serde_yaml_ng::from_str(text)?;
        // Merge keys (`<<: *shared_roles`), which the reference's PyYAML loader applies.
        value.apply_merge()?;
        let raw: Option<RawConfig> = serde_yaml_ng::from_value(value)?;
        let raw = raw.ok_or(ConfigError::MissingApps)?;
        let raw_apps = raw.apps.ok_or(ConfigError::MissingApps)?;
        let mut apps = HashMap::with_capacity(raw_apps.len());
        for (appkey, raw_app) in raw_apps {
            let app = parse_app(&appkey, raw_app)?;
            apps.insert(appkey, app);
        }
        let channel_max_length = match raw.channel_max_length {
            None | Some(Value::Null) => DEFAULT_CHANNEL_MAX_LENGTH,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::BadChannelMaxLength(scalar_text(&v)))?,
        };
        Ok(AppsConfig {
            apps,
            channel_max_length,
        })
    }

    /// The app of `appkey`, if configured.
    pub fn app(&self, appkey: &str) -> Option<&App> {
        self.apps.get(appkey)
    }

    /// The config `cobra init` writes: the apps [`DEFAULT_APPS`], each with one role named after
    /// the app without its leading underscore, a fresh [`generate_secret`] and every permission.
    pub fn default_generated() -> AppsConfig {
        let apps = DEFAULT_APPS
            .iter()
            .map(|appkey| {
                let role = Role {
                    secret: generate_secret(),
                    permissions: Permissions::all(),
                };
                let roles = IndexMap::from([(default_role_name(appkey).to_owned(), role)]);
                let app = App {
                    roles,
                    ..App::default()
                };
                ((*appkey).to_owned(), app)
            })
            .collect();
        AppsConfig {
            apps,
            channel_max_length: DEFAULT_CHANNEL_MAX_LENGTH,
        }
    }

    /// The YAML of this config, readable by [`AppsConfig::from_yaml`] and by the Python
    /// `cobras` server and client. Keys are sorted so the output is stable.
    pub fn to_yaml(&self) -> String {
        #[derive(Serialize)]
        struct OutConfig<'a> {
            apps: BTreeMap<&'a str, OutApp<'a>>,
            channel_max_length: usize,
        }
        #[derive(Serialize)]
        struct OutApp<'a> {
            roles: BTreeMap<&'a str, OutRole<'a>>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            batch_publish: bool,
            #[serde(skip_serializing_if = "serde_yaml_ng::Mapping::is_empty")]
            channel_builder: serde_yaml_ng::Mapping,
        }
        #[derive(Serialize)]
        struct OutRole<'a> {
            secret: &'a str,
            permissions: Vec<&'static str>,
        }
        let out = OutConfig {
            apps: self
                .apps
                .iter()
                .map(|(key, app)| {
                    let roles = app
                        .roles
                        .iter()
                        .map(|(name, role)| {
                            let permissions = role.permissions.iter().map(Permission::name);
                            let role = OutRole {
                                secret: &role.secret,
                                permissions: permissions.collect(),
                            };
                            (name.as_str(), role)
                        })
                        .collect();
                    let channel_builder = app
                        .channel_builder
                        .iter()
                        .map(|rule| (Value::from(rule.name.clone()), rule.to_yaml_value()))
                        .collect();
                    let app = OutApp {
                        roles,
                        batch_publish: app.batch_publish,
                        channel_builder,
                    };
                    (key.as_str(), app)
                })
                .collect(),
            channel_max_length: self.channel_max_length,
        };
        // Serializing plain maps of strings, numbers and lists cannot fail.
        serde_yaml_ng::to_string(&out).unwrap_or_default()
    }
}

/// The role name `cobra init` gives an app: the appkey without its leading underscore.
pub fn default_role_name(appkey: &str) -> &str {
    appkey.strip_prefix('_').unwrap_or(appkey)
}

/// A fresh role secret: 32 hex characters (128 bits) from the thread-local CSPRNG
/// (ChaCha seeded from the OS).
pub fn generate_secret() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_app(appkey: &str, raw: Option<RawApp>) -> Result<App, ConfigError> {
    let raw = raw.ok_or_else(|| ConfigError::NoRoles {
        app: appkey.to_owned(),
    })?;
    let raw_roles = raw.roles.unwrap_or_default();
    if raw_roles.is_empty() {
        return Err(ConfigError::NoRoles {
            app: appkey.to_owned(),
        });
    }
    let mut roles = IndexMap::with_capacity(raw_roles.len());
    for (name, value) in raw_roles {
        let role = parse_role(appkey, &name, value)?;
        roles.insert(name, role);
    }
    let channel_builder = match raw.channel_builder {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Mapping(rules)) => rules
            .into_iter()
            .map(|(name, rule)| {
                let name = scalar_text(&name);
                Rule::from_yaml(&name, &rule).map_err(|source| ConfigError::BadRule {
                    app: appkey.to_owned(),
                    rule: name,
                    source,
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ConfigError::BadApp {
                app: appkey.to_owned(),
                what: "channel_builder must be a mapping of rule name to rule".to_owned(),
            });
        }
    };
    Ok(App {
        roles,
        batch_publish: raw.batch_publish.unwrap_or(false),
        channel_builder,
    })
}

fn parse_role(app: &str, role: &str, value: Value) -> Result<Role, ConfigError> {
    let bad = |what: &str| ConfigError::BadRole {
        app: app.to_owned(),
        role: role.to_owned(),
        what: what.to_owned(),
    };
    let Value::Mapping(map) = value else {
        return Err(bad(
            "a role must be a mapping with `secret` and `permissions`",
        ));
    };
    let secret = match map.get("secret") {
        None | Some(Value::Null) => None,
        // The reference calls `secret.encode('ascii')`: only strings work there.
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ConfigError::BadSecret {
                app: app.to_owned(),
                role: role.to_owned(),
            });
        }
    };
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfigError::MissingSecret {
            app: app.to_owned(),
            role: role.to_owned(),
        })?;
    let unknown = |name: String| ConfigError::UnknownPermission {
        app: app.to_owned(),
        role: role.to_owned(),
        name,
    };
    let mut permissions = Permissions::NONE;
    match map.get("permissions") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for item in items {
                let name = item
                    .as_str()
                    .ok_or_else(|| bad("`permissions` must be a list of names"))?;
                let p = Permission::from_name(name).ok_or_else(|| unknown(name.to_owned()))?;
                permissions.insert(p);
            }
        }
        Some(_) => return Err(bad("`permissions` must be a list of names")),
    }
    match map.get("permission") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => {
            let legacy = Permissions::from_legacy(name).ok_or_else(|| unknown(name.clone()))?;
            permissions = legacy.iter().chain(permissions.iter()).collect();
        }
        Some(_) => return Err(bad("`permission` must be a single name")),
    }
    Ok(Role {
        secret,
        permissions,
    })
}

/// A YAML scalar as text, for error messages and rule names.
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        match AppsConfig::from_yaml(yaml) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn list_form_with_every_option() {
        let c = AppsConfig::from_yaml(
            r#"
apps:
  _health:
    roles:
      health:
        secret: A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E
        permissions: [subscribe, unsubscribe, publish, admin, read, write, delete]
    batch_publish: true
    channel_builder:
      game:   {kind: compose2, separator: _, field1: device.game, field2: id}
      common: {kind: add, channel: foo}
      shard:  {kind: remove, prefix: sms_live_shard_v1}
      super:  {kind: add_shard, shards: 4, channel: "subscriber_republished_{shard}"}
channel_max_length: 50
"#,
        )
        .unwrap();
        assert_eq!(c.channel_max_length, 50);
        let app = c.app("_health").unwrap();
        assert!(app.batch_publish);
        let role = app.role("health").unwrap();
        assert_eq!(role.secret, "A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E");
        assert_eq!(role.permissions, Permissions::all());
        let names: Vec<&str> = app
            .channel_builder
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["game", "common", "shard", "super"],
            "config order kept"
        );
        assert!(c.app("_nope").is_none());
        assert!(app.role("nope").is_none());
    }

    #[test]
    fn optional_fields_default() {
        let c = AppsConfig::from_yaml(
            "apps:\n  a:\n    roles:\n      r: {secret: s, permissions: [read]}\n",
        )
        .unwrap();
        assert_eq!(c.channel_max_length, DEFAULT_CHANNEL_MAX_LENGTH);
        let app = c.app("a").unwrap();
        assert!(!app.batch_publish);
        assert!(app.channel_builder.is_empty());
        // No permissions at all: may authenticate, nothing else (as the reference).
        let c = AppsConfig::from_yaml("apps:\n  a:\n    roles:\n      r: {secret: s}\n").unwrap();
        let p = c.app("a").unwrap().role("r").unwrap().permissions;
        assert_eq!(p, Permissions::NONE);
        assert!(p.allows("auth/handshake"));
        assert!(!p.allows("rtm/read"));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let c = AppsConfig::from_yaml(
            r#"
batch_publish_size: 12
future_global: {x: 1}
apps:
  a:
    description: hello
    roles:
      r: {secret: s, permissions: [publish], comment: later}
"#,
        )
        .unwrap();
        assert!(
            c.app("a")
                .unwrap()
                .role("r")
                .unwrap()
                .permissions
                .allows("rtm/publish")
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let c = AppsConfig::from_yaml(
            r#"
shared: &shared
  reader: {secret: r, permissions: [read, subscribe]}
apps:
  a:
    roles: *shared
  b:
    roles:
      <<: *shared
      writer: {secret: w, permissions: [write]}
"#,
        )
        .unwrap();
        assert_eq!(c.apps["a"].roles["reader"].secret, "r");
        assert_eq!(c.apps["b"].roles.len(), 2);
        assert!(
            c.apps["b"].roles["reader"]
                .permissions
                .allows("rtm/subscribe")
        );
    }

    #[test]
    fn hostile_yaml_is_an_error_not_a_hang() {
        // "Billion laughs": aliases that expand exponentially.
        let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            yaml += &format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            );
        }
        yaml += "apps: *a11\n";
        assert!(err(&yaml).starts_with("invalid YAML: "));
        // Duplicate keys are refused rather than silently picking one.
        assert!(
            err("apps:\n  a:\n    roles:\n      r: {secret: s}\n      r: {secret: t}\n")
                .starts_with("invalid YAML: ")
        );
    }

    #[test]
    fn legacy_single_string_permission() {
        let perms = |p: &str| {
            let yaml =
                format!("apps:\n  a:\n    roles:\n      r: {{secret: s, permission: {p}}}\n");
            AppsConfig::from_yaml(&yaml).unwrap().apps["a"].roles["r"].permissions
        };
        let sub = perms("subscribe");
        assert!(
            sub.allows("rtm/subscribe") && sub.allows("rtm/unsubscribe") && sub.allows("rtm/read")
        );
        assert!(
            !sub.allows("rtm/publish")
                && !sub.allows("rtm/write")
                && !sub.allows("admin/get_connections")
        );
        let publ = perms("publish");
        assert!(
            publ.allows("rtm/publish") && publ.allows("rtm/write") && publ.allows("rtm/delete")
        );
        assert!(!publ.allows("rtm/subscribe") && !publ.allows("rtm/read"));
        let both = perms("publish_subscribe");
        assert!(both.allows("rtm/publish") && both.allows("rtm/subscribe"));
        assert!(!both.allows("admin/close_connection"));
        assert_eq!(
            perms("admin").iter().collect::<Vec<_>>(),
            [Permission::Admin]
        );
        // Both forms together: the union.
        let c = AppsConfig::from_yaml(
            "apps:\n  a:\n    roles:\n      r: {secret: s, permission: subscribe, permissions: [admin]}\n",
        )
        .unwrap();
        let p = c.apps["a"].roles["r"].permissions;
        assert!(p.allows("admin/get_connections") && p.allows("rtm/subscribe"));
    }

    #[test]
    fn allows_follows_the_spec() {
        let p: Permissions = [Permission::Publish, Permission::Read]
            .into_iter()
            .collect();
        assert!(p.allows("rtm/publish"));
        assert!(p.allows("rtm/read"));
        assert!(!p.allows("rtm/subscribe"));
        assert!(p.allows("auth/handshake") && p.allows("auth/authenticate"));
        assert!(!p.allows("admin/get_connections"));
        assert!(Permissions::all().allows("admin/close_connection"));
        for unknown in [
            "rtm/frobnicate",
            "foo/publish",
            "publish",
            "",
            "rtm/",
            "/publish",
        ] {
            assert!(!Permissions::all().allows(unknown), "{unknown}");
        }
    }

    #[test]
    fn role_without_secret_names_it() {
        let yaml = "apps:\n  _health:\n    roles:\n      health:\n        permissions: [read]\n";
        assert_eq!(err(yaml), "app `_health`, role `health`: missing secret");
        let yaml =
            "apps:\n  _health:\n    roles:\n      health: {secret: '', permissions: [read]}\n";
        assert_eq!(err(yaml), "app `_health`, role `health`: missing secret");
        let yaml = "apps:\n  _health:\n    roles:\n      health: {secret: 1234}\n";
        assert_eq!(
            err(yaml),
            "app `_health`, role `health`: the secret must be a string"
        );
    }

    #[test]
    fn validation_errors_name_the_culprit() {
        assert_eq!(
            err("apps:\n  a:\n    roles:\n      r: {secret: s, permissions: [read, fly]}\n"),
            "app `a`, role `r`: unknown permission `fly` (expected one of subscribe, unsubscribe, publish, admin, read, write, delete)"
        );
        assert!(
            err("apps:\n  a:\n    roles:\n      r: {secret: s, permission: everything}\n")
                .starts_with("app `a`, role `r`: unknown permission `everything`")
        );
        assert_eq!(
            err("apps:\n  a:\n    roles:\n      r: {secret: s, permissions: read}\n"),
            "app `a`, role `r`: `permissions` must be a list of names"
        );
        assert_eq!(
            err("apps:\n  a:\n    roles:\n      r: just-a-string\n"),
            "app `a`, role `r`: a role must be a mapping with `secret` and `permissions`"
        );
        assert_eq!(
            err("apps:\n  a:\n    batch_publish: true\n"),
            "app `a`: no roles"
        );
        assert_eq!(err("apps:\n  a:\n"), "app `a`: no roles");
        assert_eq!(err("channel_max_length: 5\n"), "no `apps:` section");
        assert_eq!(err(""), "no `apps:` section");
        let ok = "apps:\n  a:\n    roles:\n      r: {secret: s}\n";
        assert_eq!(
            err(&format!("{ok}channel_max_length: 0\n")),
            "channel_max_length must be a positive integer, got `0`"
        );
        assert_eq!(
            err(&format!("{ok}channel_max_length: lots\n")),
            "channel_max_length must be a positive integer, got `lots`"
        );
        assert_eq!(
            err(&format!(
                "{ok}    channel_builder:\n      g: {{kind: teleport}}\n"
            )),
            "app `a`, channel_builder rule `g`: unknown kind `teleport` (expected compose2, add, add_shard or remove)"
        );
        assert_eq!(
            err(&format!(
                "{ok}    channel_builder:\n      g: {{kind: compose2, separator: _, field1: id}}\n"
            )),
            "app `a`, channel_builder rule `g`: `compose2` needs `field2`"
        );
        assert_eq!(
            err(&format!("{ok}    channel_builder: [a, b]\n")),
            "app `a`: channel_builder must be a mapping of rule name to rule"
        );
        assert!(err("apps: [1, 2]\n").starts_with("invalid YAML: "));
        assert!(err("apps:\n  a: {roles: {r: {secret: s}}\n").starts_with("invalid YAML: "));
    }

    #[test]
    fn generated_default_config() {
        let c = AppsConfig::default_generated();
        let mut keys: Vec<&str> = c.apps.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["_admin", "_health", "_pubsub", "_stats"]);
        let mut secrets = std::collections::HashSet::new();
        for (appkey, app) in &c.apps {
            assert_eq!(app.roles.len(), 1);
            let role = app.role(&appkey[1..]).unwrap();
            assert_eq!(role.permissions, Permissions::all());
            assert_eq!(role.secret.len(), 32);
            assert!(role.secret.bytes().all(|b| b.is_ascii_hexdigit()));
            secrets.insert(role.secret.clone());
        }
        assert_eq!(secrets.len(), 4, "every secret is fresh");
        // Round trip through the YAML.
        assert_eq!(AppsConfig::from_yaml(&c.to_yaml()).unwrap(), c);
    }

    #[test]
    fn to_yaml_round_trips_every_field_and_quotes_numeric_secrets() {
        let yaml = r#"
apps:
  a:
    roles:
      r: {secret: "12345678901234567890123456789012", permissions: [read, admin]}
      w: {secret: "1e10", permission: publish}
    batch_publish: true
    channel_builder:
      z: {kind: add, channel: foo}
      a: {kind: compose2, separator: "-", field1: device.game, field2: id}
      m: {kind: add_shard, shards: 3, channel: "s_{shard}"}
      b: {kind: remove, prefix: sms}
channel_max_length: 7
"#;
        let c = AppsConfig::from_yaml(yaml).unwrap();
        let again = AppsConfig::from_yaml(&c.to_yaml()).unwrap();
        assert_eq!(again, c);
        assert_eq!(
            again.apps["a"].roles["r"].secret,
            "12345678901234567890123456789012"
        );
    }

    #[test]
    fn secrets_are_hex_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
