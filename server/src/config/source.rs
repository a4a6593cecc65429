//! Where the apps config comes from, and writing one.
//!
//! Looked up in this order (the first one set wins):
//! 1. `--apps-config PATH` (also spelled `--apps_config_path`), or env `COBRA_APPS_CONFIG`;
//! 2. env `COBRA_APPS_CONFIG_PATH` (a path);
//! 3. env `COBRA_APPS_CONFIG_CONTENT`: the YAML gzipped then base64-encoded, as existing
//!    deployments pass it (`gzip -c ~/.cobra.yaml | base64`; line breaks are fine);
//! 4. the default `$HOME/.cobra.yaml`.
//!
//! A path given explicitly (1, 2) must exist: a typo must not silently start a server with
//! fresh secrets. Only the default path is created when missing, as `cobra init` would, so
//! a first run just works; [`LoadedConfig::created`] then says what to print.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;

use super::apps::{AppsConfig, ConfigError, PUBSUB_APPKEY, default_role_name};

/// Env var holding the apps config path (the reference's name).
pub const ENV_APPS_CONFIG: &str = "COBRA_APPS_CONFIG";
/// Env var holding the apps config path (alternative spelling).
pub const ENV_APPS_CONFIG_PATH: &str = "COBRA_APPS_CONFIG_PATH";
/// Env var holding the gzipped + base64 apps config.
pub const ENV_APPS_CONFIG_CONTENT: &str = "COBRA_APPS_CONFIG_CONTENT";
/// The default file name, in `$HOME`.
pub const DEFAULT_FILE_NAME: &str = ".cobra.yaml";
/// Largest apps config accepted, on disk or after decompression: a real one is a few KiB;
/// the bound keeps a corrupt file or a gzip bomb from exhausting memory.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// The origin of a path given on the command line (clap merges `COBRA_APPS_CONFIG` into it).
pub const ORIGIN_OPTION: &str = "--apps-config or COBRA_APPS_CONFIG";

/// Where the apps config is read from.
#[derive(Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file named explicitly; `origin` says by what (for messages). Must exist.
    File {
        /// The file.
        path: PathBuf,
        /// What named the file (an option or an environment variable).
        origin: &'static str,
    },
    /// The gzipped + base64 YAML of `COBRA_APPS_CONFIG_CONTENT`.
    Content(String),
    /// `$HOME/.cobra.yaml`, created with fresh secrets when missing.
    Default(PathBuf),
}

// Hand-written so the content (full of secrets) never lands in a log.
impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File { path, origin } => f
                .debug_struct("File")
                .field("path", path)
                .field("origin", origin)
                .finish(),
            ConfigSource::Content(c) => write!(f, "Content(<{} bytes>)", c.len()),
            ConfigSource::Default(path) => f.debug_tuple("Default").field(path).finish(),
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File { path, .. } | ConfigSource::Default(path) => {
                write!(f, "{}", path.display())
            }
            ConfigSource::Content(_) => write!(f, "${ENV_APPS_CONFIG_CONTENT}"),
        }
    }
}

/// A loaded, validated apps config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The validated config.
    pub config: AppsConfig,
    /// Where it came from.
    pub source: ConfigSource,
    /// Set when no config existed and a default one was just written.
    pub created: Option<CreatedConfig>,
}

/// What a first run prints after creating the default config: where, and credentials that
/// let a client connect right away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedConfig {
    /// The file.
    pub path: PathBuf,
    /// The appkey.
    pub appkey: String,
    /// The role's name.
    pub role: String,
    /// The role's secret.
    pub secret: String,
}

impl fmt::Display for CreatedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no apps config found: created {} (as `cobra init` would). Connect with appkey `{}`, role `{}`, secret `{}`",
            self.path.display(),
            self.appkey,
            self.role,
            self.secret
        )
    }
}

/// Why the apps config could not be found, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No path given and no `$HOME` for the default.
    #[error("no apps config given and $HOME is not set: pass --apps-config PATH")]
    NoHome,
    /// A path given explicitly does not exist.
    #[error("apps config {path} (from {origin}) does not exist")]
    NotFound {
        /// The file.
        path: PathBuf,
        /// What named the file (an option or an environment variable).
        origin: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read apps config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file could not be written.
    #[error("cannot write apps config {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file exists and `--force` was not given.
    #[error("{path} already exists (use --force to overwrite)")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// Over `MAX_CONFIG_BYTES`.
    #[error("apps config {what} is larger than {limit} bytes")]
    TooLarge {
        /// What is wrong.
        what: String,
        /// The bound, in bytes.
        limit: u64,
    },
    /// `COBRA_APPS_CONFIG_CONTENT` is not base64.
    #[error(
        "${ENV_APPS_CONFIG_CONTENT} is not valid base64 (expected `gzip -c ~/.cobra.yaml | base64`): {0}"
    )]
    Base64(#[from] base64::DecodeError),
    /// `COBRA_APPS_CONFIG_CONTENT` is not gzip.
    #[error(
        "${ENV_APPS_CONFIG_CONTENT} is not gzip data (expected `gzip -c ~/.cobra.yaml | base64`): {0}"
    )]
    Gzip(io::Error),
    /// The config is not UTF-8.
    #[error("apps config {what} is not UTF-8 text")]
    NotUtf8 {
        /// What is wrong.
        what: String,
    },
    /// The config is not a valid apps config.
    #[error("apps config {what}: {source}")]
    Invalid {
        /// What is wrong.
        what: String,
        #[source]
        /// The underlying error.
        source: ConfigError,
    },
}

impl ConfigSource {
    /// The source to use, from an explicit path (the command line, which clap already merged
    /// with `COBRA_APPS_CONFIG`) and the process environment.
    pub fn from_env(explicit: Option<PathBuf>) -> Result<ConfigSource, SourceError> {
        ConfigSource::resolve(explicit, |name| std::env::var_os(name))
    }

    /// [`ConfigSource::from_env`] with the environment given (for tests).
    pub fn resolve(
        explicit: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<ConfigSource, SourceError> {
        // An empty variable counts as unset, as in a shell `${X:-default}`.
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
            return Ok(ConfigSource::File {
                path,
                origin: ORIGIN_OPTION,
            });
        }
        if let Some(path) = var(ENV_APPS_CONFIG) {
            return Ok(ConfigSource::File {
                path: path.into(),
                origin: ENV_APPS_CONFIG,
            });
        }
        if let Some(path) = var(ENV_APPS_CONFIG_PATH) {
            return Ok(ConfigSource::File {
                path: path.into(),
                origin: ENV_APPS_CONFIG_PATH,
            });
        }
        if let Some(content) = var(ENV_APPS_CONFIG_CONTENT) {
            return Ok(ConfigSource::Content(
                content.to_string_lossy().into_owned(),
            ));
        }
        default_path(env).map(ConfigSource::Default)
    }

    /// Reads and validates the config; for [`ConfigSource::Default`], creates it first if
    /// missing.
    pub fn load(&self) -> Result<LoadedConfig, SourceError> {
        let loaded = |config, created| LoadedConfig {
            config,
            source: self.clone(),
            created,
        };
        match self {
            ConfigSource::File { path, origin } => {
                if !path.exists() {
                    return Err(SourceError::NotFound {
                        path: path.clone(),
                        origin,
                    });
                }
                Ok(loaded(read_file(path)?, None))
            }
            ConfigSource::Content(content) => Ok(loaded(decode_content(content)?, None)),
            ConfigSource::Default(path) => {
                if path.exists() {
                    return Ok(loaded(read_file(path)?, None));
                }
                let config = AppsConfig::default_generated();
                match write_config_file(path, &config.to_yaml(), false) {
                    Ok(()) => {}
                    // Another process created it meanwhile: use theirs.
                    Err(SourceError::AlreadyExists { .. }) => {
                        return Ok(loaded(read_file(path)?, None));
                    }
                    Err(e) => return Err(e),
                }
                let created = pubsub_credentials(&config, path);
                Ok(loaded(config, created))
            }
        }
    }
}

/// `$HOME/.cobra.yaml`.
pub fn default_path(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, SourceError> {
    let home = env("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(SourceError::NoHome)?;
    Ok(PathBuf::from(home).join(DEFAULT_FILE_NAME))
}

fn pubsub_credentials(config: &AppsConfig, path: &Path) -> Option<CreatedConfig> {
    let role_name = default_role_name(PUBSUB_APPKEY);
    let role = config.app(PUBSUB_APPKEY)?.role(role_name)?;
    Some(CreatedConfig {
        path: path.to_owned(),
        appkey: PUBSUB_APPKEY.to_owned(),
        role: role_name.to_owned(),
        secret: role.secret.clone(),
    })
}

/// Reads and validates the apps config file at `path`.
pub fn read_file(path: &Path) -> Result<AppsConfig, SourceError> {
    read_file_bounded(path, MAX_CONFIG_BYTES)
}

fn read_file_bounded(path: &Path, limit: u64) -> Result<AppsConfig, SourceError> {
    let read_err = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let what = path.display().to_string();
    parse_bytes(bytes, limit, what)
}

/// Decodes and validates `COBRA_APPS_CONFIG_CONTENT` (base64 of gzip of the YAML).
pub fn decode_content(content: &str) -> Result<AppsConfig, SourceError> {
    decode_content_bounded(content, MAX_CONFIG_BYTES)
}

fn decode_content_bounded(content: &str, limit: u64) -> Result<AppsConfig, SourceError> {
    // `base64` wraps its output at 76 columns; the reference's decoder skips the breaks.
    let compact: Vec<u8> = content
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let gz = base64::engine::general_purpose::STANDARD.decode(compact)?;
    let mut bytes = Vec::new();
    // Multi-member aware, like Python's gzip module; bounded against gzip bombs.
    flate2::read::MultiGzDecoder::new(gz.as_slice())
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(SourceError::Gzip)?;
    parse_bytes(bytes, limit, format!("${ENV_APPS_CONFIG_CONTENT}"))
}

fn parse_bytes(bytes: Vec<u8>, limit: u64, what: String) -> Result<AppsConfig, SourceError> {
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge { what, limit });
    }
    let text = String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 { what: what.clone() })?;
    AppsConfig::from_yaml(&text).map_err(|source| SourceError::Invalid { what, source })
}

/// Writes an apps config readable by its owner only (0600: it holds secrets), creating the
/// parent directory if needed. Without `overwrite`, an existing file is an
/// [`SourceError::AlreadyExists`] and is left untouched; with it, the file is replaced
/// atomically (written aside, then renamed over).
pub fn write_config_file(path: &Path, yaml: &str, overwrite: bool) -> Result<(), SourceError> {
    let write_err = |source| SourceError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    if !overwrite {
        let mut file = match new_private_file(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SourceError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(write_err(e)),
        };
        return file
            .write_all(yaml.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_err);
    }
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".tmp{}", std::process::id()));
    let aside = PathBuf::from(aside);
    let _ = std::fs::remove_file(&aside); // a leftover of a crashed run
    let result = new_private_file(&aside)
        .and_then(|mut f| f.write_all(yaml.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&aside, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
    result.map_err(write_err)
}

fn new_private_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const YAML: &str =
        "apps:\n  _pubsub:\n    roles:\n      pubsub: {secret: s3cr3t, permissions: [publish]}\n";

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn gz_base64(data: &[u8]) -> String {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap())
    }

    #[test]
    fn resolution_order() {
        let all = [
            (ENV_APPS_CONFIG, "/env1.yaml"),
            (ENV_APPS_CONFIG_PATH, "/env2.yaml"),
            (ENV_APPS_CONFIG_CONTENT, "Zm9v"),
            ("HOME", "/home/me"),
        ];
        let explicit = Some(PathBuf::from("/cli.yaml"));
        let file = |path: &str, origin| ConfigSource::File {
            path: path.into(),
            origin,
        };
        assert_eq!(
            ConfigSource::resolve(explicit, env_of(&all)).unwrap(),
            file("/cli.yaml", ORIGIN_OPTION)
        );
        assert_eq!(
            ConfigSource::resolve(None, env_of(&all)).unwrap(),
            file("/env1.yaml", ENV_APPS_CONFIG)
        );
        assert_eq!(
            ConfigSource::resolve(None, env_of(&all[1..])).unwrap(),
            file("/env2.yaml", ENV_APPS_CONFIG_PATH)
        );
        assert_eq!(
            ConfigSource::resolve(None, env_of(&all[2..])).unwrap(),
            ConfigSource::Content("Zm9v".into())
        );
        assert_eq!(
            ConfigSource::resolve(None, env_of(&all[3..])).unwrap(),
            ConfigSource::Default("/home/me/.cobra.yaml".into())
        );
        // Empty values count as unset.
        let empty = [
            (ENV_APPS_CONFIG, ""),
            (ENV_APPS_CONFIG_CONTENT, ""),
            ("HOME", "/h"),
        ];
        assert_eq!(
            ConfigSource::resolve(Some(PathBuf::new()), env_of(&empty)).unwrap(),
            ConfigSource::Default("/h/.cobra.yaml".into())
        );
        assert!(matches!(
            ConfigSource::resolve(None, env_of(&[])),
            Err(SourceError::NoHome)
        ));
        // The content's secrets never reach a Debug print.
        assert_eq!(
            format!("{:?}", ConfigSource::Content("secret!".into())),
            "Content(<7 bytes>)"
        );
    }

    #[test]
    fn gzipped_base64_content() {
        let content = gz_base64(YAML.as_bytes());
        let c = decode_content(&content).unwrap();
        assert_eq!(
            c.app("_pubsub").unwrap().role("pubsub").unwrap().secret,
            "s3cr3t"
        );
        // Wrapped at 76 columns as `base64` prints it.
        let wrapped: String = content
            .as_bytes()
            .chunks(76)
            .map(|l| format!("{}\n", std::str::from_utf8(l).unwrap()))
            .collect();
        assert_eq!(decode_content(&wrapped).unwrap(), c);
        let loaded = ConfigSource::Content(content).load().unwrap();
        assert!(loaded.created.is_none());
    }

    #[test]
    fn bad_content_is_a_clear_error() {
        let e = decode_content("not base64 !!").unwrap_err();
        assert!(matches!(e, SourceError::Base64(_)), "{e}");
        let plain = base64::engine::general_purpose::STANDARD.encode(YAML);
        let e = decode_content(&plain).unwrap_err();
        assert!(matches!(e, SourceError::Gzip(_)), "{e}");
        assert!(e.to_string().contains("gzip -c ~/.cobra.yaml | base64"));
        let e = decode_content(&gz_base64(
            b"apps:\n  a:\n    roles:\n      r: {permissions: []}\n",
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "apps config $COBRA_APPS_CONFIG_CONTENT: app `a`, role `r`: missing secret"
        );
        let e = decode_content(&gz_base64(&[0xff, 0xfe, b'a'])).unwrap_err();
        assert!(matches!(e, SourceError::NotUtf8 { .. }), "{e}");
    }

    #[test]
    fn decompression_is_bounded() {
        // A gzip bomb in miniature (the real limit is the same code with 16 MiB): a few bytes
        // that inflate past the limit are refused without inflating further.
        const LIMIT: u64 = 4096;
        let bomb = vec![b'#'; 1024 * 1024];
        let content = gz_base64(&bomb);
        assert!(content.len() < 8192);
        let e = decode_content_bounded(&content, LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "apps config $COBRA_APPS_CONFIG_CONTENT is larger than 4096 bytes"
        );
        // Exactly at the limit is fine (padding is a YAML comment).
        let mut at_limit = vec![b'#'; LIMIT as usize - YAML.len() - 1];
        at_limit.push(b'\n');
        at_limit.extend_from_slice(YAML.as_bytes());
        decode_content_bounded(&gz_base64(&at_limit), LIMIT).unwrap();
        // A file too big is refused the same way.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, &bomb).unwrap();
        let e = read_file_bounded(&path, LIMIT).unwrap_err();
        assert!(matches!(e, SourceError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn first_run_creates_the_default_config() {
        let home = tempfile::tempdir().unwrap();
        let source =
            ConfigSource::resolve(None, env_of(&[("HOME", home.path().to_str().unwrap())]))
                .unwrap();
        let path = home.path().join(".cobra.yaml");
        assert_eq!(source, ConfigSource::Default(path.clone()));
        let loaded = source.load().unwrap();
        let created = loaded.created.clone().unwrap();
        assert_eq!(created.path, path);
        assert_eq!(
            (created.appkey.as_str(), created.role.as_str()),
            ("_pubsub", "pubsub")
        );
        assert_eq!(
            loaded.config.apps["_pubsub"].roles["pubsub"].secret,
            created.secret
        );
        assert!(created.to_string().contains(&created.secret));
        assert_eq!(read_file(&path).unwrap(), loaded.config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The second run reads it back, same secrets, nothing created.
        let again = source.load().unwrap();
        assert!(again.created.is_none());
        assert_eq!(again.config, loaded.config);
    }

    #[test]
    fn explicit_paths_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.yaml");
        let source = ConfigSource::File {
            path: path.clone(),
            origin: ENV_APPS_CONFIG_PATH,
        };
        let e = source.load().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "apps config {} (from COBRA_APPS_CONFIG_PATH) does not exist",
                path.display()
            )
        );
        assert!(!path.exists(), "nothing created");
        std::fs::write(&path, YAML).unwrap();
        assert!(source.load().unwrap().created.is_none());
        std::fs::write(
            &path,
            "apps:\n  a:\n    roles:\n      r: {permissions: []}\n",
        )
        .unwrap();
        assert_eq!(
            source.load().unwrap_err().to_string(),
            format!(
                "apps config {}: app `a`, role `r`: missing secret",
                path.display()
            )
        );
    }

    #[test]
    fn write_refuses_to_overwrite_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/apps.yaml");
        write_config_file(&path, "one", false).unwrap();
        let e = write_config_file(&path, "two", false).unwrap_err();
        assert!(matches!(e, SourceError::AlreadyExists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        write_config_file(&path, "three", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }
}
