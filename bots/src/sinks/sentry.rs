//! `sentry`: events with a level (errors, soft crashes) to Sentry's envelope endpoint.
//!
//! Each event becomes one envelope (`POST /api/<project>/envelope/`, `X-Sentry-Auth` with the DSN's
//! key). The level comes from `level` (in `data` or at the top), the message from `message`/`msg`,
//! tags from `tags` plus the device's `game`, `os_name`, `app_version`, `model`, extra from `extra`;
//! a Lua or C++ traceback in `stack`/`traceback` is parsed into frames. An event without a level is
//! not for Sentry: it is counted as malformed.
//!
//! 429 and 503 are retried after their `Retry-After` (or `X-Sentry-Rate-Limits`); other 5xx and
//! network errors with the normal backoff; 401/403 stop the bot (wrong DSN); any other 4xx is the
//! event's fault and it is skipped as malformed. Events of a batch already accepted are not sent
//! again when the batch is retried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::retry::parse_retry_after;
use crate::sink::{Item, Sink, SinkError, Skips, lookup};

/// A parsed DSN: `scheme://public_key@host[:port][/path]/project_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// The envelope endpoint.
    pub envelope_url: String,
    /// The public key.
    pub key: String,
    /// The DSN as given (sent in the envelope header).
    pub raw: String,
}

impl std::str::FromStr for Dsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("DSN {s:?}: {why} (expected scheme://key@host/project)");
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let (userinfo, hostpath) = rest.rsplit_once('@').ok_or_else(|| bad("no key"))?;
        let key = userinfo.split(':').next().unwrap_or_default();
        let (host, path) = hostpath.split_once('/').ok_or_else(|| bad("no project"))?;
        let path = path.trim_end_matches('/');
        let (prefix, project) = match path.rsplit_once('/') {
            Some((p, id)) => (format!("/{p}"), id),
            None => (String::new(), path),
        };
        if key.is_empty() || host.is_empty() || project.is_empty() {
            return Err(bad("empty key, host or project"));
        }
        Ok(Dsn {
            envelope_url: format!("{scheme}://{host}{prefix}/api/{project}/envelope/"),
            key: key.to_owned(),
            raw: s.to_owned(),
        })
    }
}

/// The Sentry sink.
pub struct SentrySink {
    dsn: Dsn,
    agent: ureq::Agent,
    /// Events of the current batch already accepted (kept across a retry of that batch).
    done: usize,
    environment: Option<String>,
}

impl SentrySink {
    /// A sink for `dsn`; `environment` is set on every event when given.
    pub fn new(dsn: Dsn, environment: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build()
            .into();
        Self {
            dsn,
            agent,
            done: 0,
            environment,
        }
    }

    fn auth(&self) -> String {
        format!(
            "Sentry sentry_version=7, sentry_key={}, sentry_client=cobra-bot/{}",
            self.dsn.key,
            env!("CARGO_PKG_VERSION")
        )
    }

    fn envelope(&self, event: &Value, event_id: &str) -> Vec<u8> {
        let mut out = serde_json::to_vec(&json!({"event_id": event_id, "dsn": self.dsn.raw}))
            .unwrap_or_default();
        let payload = serde_json::to_vec(event).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(
            json!({"type": "event", "length": payload.len(), "content_type": "application/json"})
                .to_string()
                .as_bytes(),
        );
        out.push(b'\n');
        out.extend_from_slice(&payload);
        out.push(b'\n');
        out
    }
}

fn field<'a>(msg: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| lookup(msg, &format!("data.{n}")).or_else(|| msg.get(n)))
}

/// The Sentry event for a cobra event, or why it is not one.
pub fn to_sentry_event(
    msg: &Value,
    event_id: &str,
    environment: Option<&str>,
) -> Result<Value, String> {
    if !msg.is_object() {
        return Err("not a JSON object".into());
    }
    let level = match field(msg, &["level"]).and_then(Value::as_str) {
        Some("fatal" | "critical") => "fatal",
        Some("error") => "error",
        Some("warning" | "warn") => "warning",
        Some("info") => "info",
        Some("debug") => "debug",
        Some(other) => return Err(format!("unknown level {other:?}")),
        None => return Err("no level".into()),
    };
    let message = field(msg, &["message", "msg"])
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .unwrap_or_default();
    let mut tags = Map::new();
    if let Some(Value::Object(t)) = field(msg, &["tags"]) {
        for (k, v) in t {
            tags.insert(
                k.clone(),
                json!(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
            );
        }
    }
    for (tag, path) in [
        ("game", "device.game"),
        ("os_name", "device.os_name"),
        ("app_version", "device.app_version"),
        ("model", "device.model"),
        ("cobra_id", "id"),
    ] {
        if let Some(v) = lookup(msg, path).and_then(Value::as_str) {
            tags.entry(tag).or_insert_with(|| json!(v));
        }
    }
    let mut extra = match field(msg, &["extra"]) {
        Some(Value::Object(e)) => e.clone(),
        _ => Map::new(),
    };
    if let Some(d) = msg.get("device") {
        extra.entry("device").or_insert_with(|| d.clone());
    }
    let mut event = json!({
        "event_id": event_id,
        "level": level,
        "platform": "other",
        "logger": "cobra",
        "message": {"formatted": message},
        "tags": tags,
        "extra": extra,
    });
    let ts = msg
        .get("timestamp")
        .and_then(Value::as_f64)
        .map(|ms| ms / 1000.0)
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
    event["timestamp"] = json!(ts);
    if let Some(env) = environment {
        event["environment"] = json!(env);
    }
    if let Some(stack) = field(msg, &["stack", "traceback", "stacktrace"]).and_then(Value::as_str) {
        let frames = parse_traceback(stack);
        if !frames.is_empty() {
            let ty = field(msg, &["type", "exception"])
                .and_then(Value::as_str)
                .unwrap_or("Error");
            event["exception"] = json!({"values": [{
                "type": ty,
                "value": message,
                "stacktrace": {"frames": frames},
            }]});
        }
    }
    Ok(event)
}

/// Frames of a Lua (`file.lua:12: in function 'f'`) or C++ (gdb `#0 0x.. in f() at x.cpp:3`,
/// `backtrace_symbols` `lib(f+0x1a) [0x..]`) traceback, oldest first as Sentry wants.
pub fn parse_traceback(text: &str) -> Vec<Value> {
    let mut frames: Vec<Value> = text.lines().filter_map(parse_frame).collect();
    frames.reverse();
    frames
}

fn parse_frame(line: &str) -> Option<Value> {
    let l = line.trim();
    if l.is_empty() || l.starts_with("stack traceback") {
        return None;
    }
    // Lua: `file:line: in function 'name'`, `[C]: in function 'error'`, `file:line: in main chunk`.
    if let Some((loc, what)) = l.split_once(": in ") {
        let function = if let Some(name) = what.strip_prefix("function ") {
            name.trim_matches(|c| c == '\'' || c == '<' || c == '>')
                .to_owned()
        } else {
            what.to_owned()
        };
        let (file, lineno) = split_file_line(loc);
        let mut f = json!({"filename": file, "function": function, "platform": "lua"});
        if let Some(n) = lineno {
            f["lineno"] = json!(n);
        }
        f["in_app"] = json!(file != "[C]");
        return Some(f);
    }
    // gdb: `#3  0x00007f.. in Foo::bar (x=1) at src/foo.cpp:42` / `#3 Foo::bar() at foo.cpp:42`.
    if let Some(rest) = l.strip_prefix('#') {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
        let (addr, rest) = match rest.split_once(" in ") {
            Some((a, r)) if a.starts_with("0x") => (Some(a), r),
            _ => (None, rest),
        };
        let (func, loc) = match rest.rsplit_once(" at ") {
            Some((f, loc)) => (f, Some(loc)),
            None => (rest, None),
        };
        let function = func.split(" (").next().unwrap_or(func).trim();
        let mut f = json!({"function": function, "platform": "native"});
        if let Some(a) = addr {
            f["instruction_addr"] = json!(a);
        }
        if let Some(loc) = loc {
            let (file, lineno) = split_file_line(loc);
            f["filename"] = json!(file);
            if let Some(n) = lineno {
                f["lineno"] = json!(n);
            }
        }
        return Some(f);
    }
    // backtrace_symbols: `./app(_ZN3foo3barEv+0x1a) [0x55d4c2]`.
    if let (Some(open), Some(close)) = (l.find('('), l.find(')'))
        && open < close
        && l[close..].contains("[0x")
    {
        let module = &l[..open];
        let sym = l[open + 1..close].split('+').next().unwrap_or_default();
        let addr = l[close..].split(['[', ']']).nth(1).unwrap_or_default();
        return Some(
            json!({"package": module, "function": sym, "instruction_addr": addr, "platform": "native"}),
        );
    }
    None
}

fn split_file_line(loc: &str) -> (String, Option<u64>) {
    match loc.rsplit_once(':') {
        Some((file, n)) if n.trim().parse::<u64>().is_ok() => {
            (file.to_owned(), n.trim().parse().ok())
        }
        _ => (loc.to_owned(), None),
    }
}

fn event_id() -> String {
    let v: u128 = rand::rng().random();
    // UUID v4 layout, as hex without dashes.
    let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    format!("{v:032x}")
}

impl Sink for SentrySink {
    fn name(&self) -> &str {
        "sentry"
    }

    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError> {
        let auth = self.auth();
        while self.done < batch.len() {
            let item = &batch[self.done];
            let id = event_id();
            let parsed = item.value().map_err(|e| format!("not representable: {e}"));
            let event = match parsed
                .and_then(|msg| to_sentry_event(&msg, &id, self.environment.as_deref()))
            {
                Ok(e) => e,
                Err(why) => {
                    skips.skip("sentry", why);
                    self.done += 1;
                    continue;
                }
            };
            let body = self.envelope(&event, &id);
            let resp = self
                .agent
                .post(&self.dsn.envelope_url)
                .header("X-Sentry-Auth", &auth)
                .header("Content-Type", "application/x-sentry-envelope")
                .send(&body[..])
                .map_err(|e| SinkError::retry(format!("POST {}: {e}", self.dsn.envelope_url)))?;
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            match status {
                200..=299 => self.done += 1,
                429 | 503 => {
                    let after = header("retry-after")
                        .and_then(|v| parse_retry_after(&v))
                        .or_else(|| {
                            // `X-Sentry-Rate-Limits: 60:error:organization, ...`: the first delay.
                            header("x-sentry-rate-limits")
                                .and_then(|v| v.split(':').next().and_then(parse_retry_after))
                        });
                    return Err(SinkError::Retry {
                        reason: format!("Sentry answered {status}"),
                        retry_after: after,
                    });
                }
                401 | 403 => {
                    return Err(SinkError::Fatal(format!(
                        "Sentry refused the DSN's key ({status})"
                    )));
                }
                400..=499 => {
                    skips.skip("sentry", format!("Sentry refused the event ({status})"));
                    self.done += 1;
                }
                _ => return Err(SinkError::retry(format!("Sentry answered {status}"))),
            }
        }
        self.done = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn() {
        let d: Dsn = "http://abc@127.0.0.1:9000/42".parse().unwrap();
        assert_eq!(d.envelope_url, "http://127.0.0.1:9000/api/42/envelope/");
        assert_eq!(d.key, "abc");
        let d: Dsn = "https://k:s@o1.ingest.example/sub/7".parse().unwrap();
        assert_eq!(
            d.envelope_url,
            "https://o1.ingest.example/sub/api/7/envelope/"
        );
        assert!("ftp://k@h/1".parse::<Dsn>().is_err());
        assert!("http://h/1".parse::<Dsn>().is_err());
    }

    #[test]
    fn lua_and_cpp_tracebacks() {
        let lua = "stack traceback:\n\t[C]: in function 'error'\n\tscripts/shop.lua:42: in function 'buy'\n\tscripts/main.lua:7: in main chunk";
        // Outermost call first.
        assert_eq!(
            parse_traceback(lua),
            [
                json!({"filename": "scripts/main.lua", "function": "main chunk", "lineno": 7, "platform": "lua", "in_app": true}),
                json!({"filename": "scripts/shop.lua", "function": "buy", "lineno": 42, "platform": "lua", "in_app": true}),
                json!({"filename": "[C]", "function": "error", "platform": "lua", "in_app": false}),
            ]
        );
        let cpp = "#0  0x00007f3a in Shop::buy (this=0x1) at src/shop.cpp:88\n#1  main () at src/main.cpp:12\n./game(_ZN4Shop3buyEv+0x1a) [0x55d4c2]";
        assert_eq!(
            parse_traceback(cpp),
            [
                json!({"package": "./game", "function": "_ZN4Shop3buyEv", "instruction_addr": "0x55d4c2", "platform": "native"}),
                json!({"function": "main", "filename": "src/main.cpp", "lineno": 12, "platform": "native"}),
                json!({"function": "Shop::buy", "instruction_addr": "0x00007f3a", "filename": "src/shop.cpp", "lineno": 88, "platform": "native"}),
            ]
        );
        let id = event_id();
        assert_eq!(id.len(), 32);
        assert_eq!(&id[12..13], "4");
    }

    #[test]
    fn needs_a_level() {
        assert!(to_sentry_event(&json!({"msg": "x"}), "0", None).is_err());
        let e = to_sentry_event(
            &json!({"data": {"level": "warn", "msg": "low memory", "tags": {"scene": "shop"}}, "device": {"game": "wiso"}}),
            "0",
            Some("prod"),
        )
        .unwrap();
        assert_eq!(e["level"], "warning");
        assert_eq!(e["tags"]["scene"], "shop");
        assert_eq!(e["tags"]["game"], "wiso");
        assert_eq!(e["environment"], "prod");
    }
}
