//! Redis node addresses as operators write them: `redis://[[user]:password@]host[:port][/db]`
//! (`rediss://` for TLS), several separated by `;` (the `--redis` / `COBRA_REDIS_URLS` value).

use std::fmt;

/// The default Redis port when a URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Why a Redis URL list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The list holds no URL at all.
    #[error("no Redis URL given")]
    Empty,
    /// A scheme other than `redis://` or `rediss://` (unix sockets are not supported), or a
    /// query string or fragment (refused rather than silently ignored).
    #[error("unsupported Redis URL `{0}`: expected redis[s]://[:password@]host[:port][/db]")]
    Scheme(String),
    /// No host between the credentials and the port.
    #[error("Redis URL `{0}` has no host")]
    MissingHost(String),
    /// The port is not a number in 1..=65535.
    #[error("Redis URL `{url}` has an invalid port `{port}`")]
    Port {
        /// The URL, credentials removed.
        url: String,
        /// The offending text.
        port: String,
    },
    /// The database is not a non-negative integer.
    #[error("Redis URL `{url}` has an invalid database `{db}`")]
    Database {
        /// The URL, credentials removed.
        url: String,
        /// The offending text.
        db: String,
    },
    /// A `%XX` escape in the credentials is malformed or not UTF-8.
    #[error("Redis URL for `{0}` has a malformed %-escape in its credentials")]
    Escape(String),
    /// The same node (host, port and database) appears twice.
    #[error("Redis node `{0}` is listed twice")]
    Duplicate(String),
}

/// One Redis node: where it is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeAddr {
    /// `rediss://`: TLS, the server's certificate checked against the webpki roots or the CA
    /// given with `--redis-tls-ca`.
    tls: bool,
    host: String,
    port: u16,
    db: i64,
    username: Option<String>,
    password: Option<String>,
}

impl NodeAddr {
    /// Parses one `redis[s]://[[user]:password@]host[:port][/db]` URL. Query strings are
    /// refused rather than silently ignored.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let (tls, rest) = match (url.strip_prefix("redis://"), url.strip_prefix("rediss://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(UrlError::Scheme(redact(url))),
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(UrlError::Scheme(redact(url)));
        }
        // The last '@' separates credentials, so an unescaped '@' inside a password still works.
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (hostport, db) = match hostpart.split_once('/') {
            Some((hp, db)) => (hp, db),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport);
        if host.is_empty() {
            return Err(UrlError::MissingHost(redact(url)));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(UrlError::Port {
                        url: redact(url),
                        port: p.to_string(),
                    });
                }
            },
        };
        let db = if db.is_empty() {
            0
        } else {
            match db.parse::<i64>() {
                Ok(d) if d >= 0 => d,
                _ => {
                    return Err(UrlError::Database {
                        url: redact(url),
                        db: db.to_string(),
                    });
                }
            }
        };
        let mut addr = NodeAddr {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            db,
            username: None,
            password: None,
        };
        if let Some(userinfo) = userinfo {
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => ("", Some(userinfo)), // `redis://secret@host`: a bare word is the password
            };
            let decode = |s: &str| {
                cobra_wire::percent::decode(s).ok_or_else(|| UrlError::Escape(addr.identity()))
            };
            let user = decode(user)?;
            let pass = pass.map(decode).transpose()?;
            addr.username = (!user.is_empty()).then_some(user);
            addr.password = pass.filter(|p| !p.is_empty());
        }
        Ok(addr)
    }

    /// Parses a `;`-separated list (empty items are skipped). Every URL without a password gets
    /// `default_password` (from `COBRA_REDIS_PASSWORD`). A node listed twice is an error, since it
    /// would silently take twice its share of channels.
    pub fn parse_list(urls: &str, default_password: Option<&str>) -> Result<Vec<Self>, UrlError> {
        let mut nodes: Vec<NodeAddr> = Vec::new();
        for item in urls.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let mut node = NodeAddr::parse(item)?;
            if node.password.is_none() {
                node.password = default_password
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned);
            }
            if nodes.iter().any(|n| n.identity() == node.identity()) {
                return Err(UrlError::Duplicate(node.identity()));
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            return Err(UrlError::Empty);
        }
        Ok(nodes)
    }

    /// The node's identity for sharding: `host:port/db`, host lowercased, no credentials, with
    /// or without TLS. Every server must spell a node the same way (`localhost` and
    /// `127.0.0.1` differ).
    pub fn identity(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            format!("{}:{}/{}", self.host, self.port, self.db)
        }
    }

    /// The host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database number.
    pub fn db(&self) -> i64 {
        self.db
    }

    /// Whether the connection uses TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The same credentials, TLS and database at another host and port (a node announced by
    /// Redis Cluster).
    pub(crate) fn at(&self, host: &str, port: u16) -> NodeAddr {
        NodeAddr {
            host: host.to_ascii_lowercase(),
            port,
            ..self.clone()
        }
    }

    /// Whether a password will be sent.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Connection settings for the redis crate: RESP3 (pub/sub pushes on a multiplexed
    /// connection), TCP_NODELAY (pipelined requests must not wait for Nagle), credentials, db.
    pub(crate) fn connection_info(&self) -> redis::RedisResult<redis::ConnectionInfo> {
        use redis::IntoConnectionInfo;
        let mut settings = redis::RedisConnectionInfo::default()
            .set_db(self.db)
            .set_protocol(redis::ProtocolVersion::RESP3);
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(pass) = &self.password {
            settings = settings.set_password(pass);
        }
        let addr = if self.tls {
            redis::ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let info = addr.into_connection_info()?;
        Ok(info
            .set_redis_settings(settings)
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true)))
    }
}

/// Display and Debug never show credentials: `redis://host:port/db` (`rediss://` for TLS).
impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(f, "{scheme}://{}", self.identity())
    }
}

impl fmt::Debug for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NodeAddr({self}, password: {})",
            if self.password.is_some() {
                "set"
            } else {
                "none"
            }
        )
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => ("", None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

/// The URL with any credentials removed, for error messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let a = NodeAddr::parse("redis://h1:6380").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.db(), a.has_password()),
            ("h1", 6380, 0, false)
        );
        let a = NodeAddr::parse("redis://:s3cret@H2:7000/3").unwrap();
        assert_eq!((a.host(), a.port(), a.db()), ("h2", 7000, 3));
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        assert_eq!(a.username, None);
        let a = NodeAddr::parse("redis://user:p%40ss@h").unwrap();
        assert_eq!(
            (a.username.as_deref(), a.password.as_deref(), a.port()),
            (Some("user"), Some("p@ss"), 6379)
        );
        let a = NodeAddr::parse("redis://:p@ss@h:1").unwrap();
        assert_eq!(a.password.as_deref(), Some("p@ss"));
        let a = NodeAddr::parse("redis://[::1]:6390/1").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.identity().as_str()),
            ("::1", 6390, "[::1]:6390/1")
        );
        assert!(!a.is_tls());
        // TLS: the same node identity (sharding does not depend on the scheme).
        let t = NodeAddr::parse("rediss://:pw@Cache.example:6380/2").unwrap();
        assert!(t.is_tls());
        assert_eq!(t.identity(), "cache.example:6380/2");
        assert_eq!(t.to_string(), "rediss://cache.example:6380/2");
        assert!(matches!(
            t.connection_info().unwrap().addr(),
            redis::ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ));
    }

    #[test]
    fn refuses_bad_urls_with_typed_errors() {
        // The URL is refused with this error.
        macro_rules! refused {
            ($url:literal, $error:pat) => {
                assert!(matches!(NodeAddr::parse($url), Err($error)), "{}", $url)
            };
        }
        refused!("redis+unix:///tmp/r.sock", UrlError::Scheme(_));
        refused!("h:1", UrlError::Scheme(_));
        refused!("redis://:pw@:1", UrlError::MissingHost(_));
        refused!("redis://h:0", UrlError::Port { .. });
        refused!("redis://h:99999", UrlError::Port { .. });
        refused!("redis://h:1/x", UrlError::Database { .. });
        refused!("redis://h:1/-1", UrlError::Database { .. });
        refused!("redis://:%zz@h:1", UrlError::Escape(_));
        refused!("redis://h:1?db=2", UrlError::Scheme(_));
    }

    #[test]
    fn errors_and_display_never_show_the_password() {
        let err = NodeAddr::parse("redis://:topsecret@h:bad").unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
        let a = NodeAddr::parse("redis://:topsecret@h:1").unwrap();
        assert!(!format!("{a} {a:?}").contains("topsecret"));
        assert_eq!(a.to_string(), "redis://h:1/0");
    }

    #[test]
    fn list_applies_default_password_and_rejects_duplicates() {
        let l = NodeAddr::parse_list(" redis://a:1 ; ;redis://:own@b:2/1;", Some("dflt")).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].password.as_deref(), Some("dflt"));
        assert_eq!(l[1].password.as_deref(), Some("own"));
        assert_eq!(NodeAddr::parse_list(" ; ", None), Err(UrlError::Empty));
        assert!(matches!(
            NodeAddr::parse_list("redis://a:1;redis://A:1/0", None),
            Err(UrlError::Duplicate(_))
        ));
        // Same host and port, another database: another node.
        assert_eq!(
            NodeAddr::parse_list("redis://a:1;redis://a:1/2", None)
                .unwrap()
                .len(),
            2
        );
    }
}
