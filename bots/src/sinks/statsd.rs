//! `statsd`: metrics over UDP, plain statsd or DogStatsD tags.
//!
//! Written by hand: the statsd crates (`cadence`, `statsd`) take integer values for counters and
//! timers or a fixed tag model; we need floats kept as published (the C++ bot truncated them),
//! tags taken from event fields, and whole datagrams per batch so that a closed port is seen.
//! The line format is one `name:value|type[|#tag:v,...]` per line, lines packed into datagrams
//! of at most [`StatsdOptions::max_datagram`] bytes.
//!
//! Confirmation: UDP has no ack. On a connected socket an ICMP "port unreachable" makes the next
//! `send` fail (`ECONNREFUSED`), and on loopback it arrives before `send` returns; the sink checks
//! the socket's pending error after each batch and reports a failure, so the runtime sends the
//! batch again once the daemon is back. Across a network this is best effort.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::json;
use crate::sink::{Item, Sink, SinkError, Skips};

/// What each event becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `name:1|c` per event (the default).
    Counter,
    /// `name:<field>|g`.
    Gauge(String),
    /// `name:<field>|ms`.
    Timer(String),
    /// The frame-rate histogram of `cobra_metrics_to_statsd`: each event's fps (at this field)
    /// is counted in a bucket; at each interval, `name.<bucket>:<percent>|g` for the buckets
    /// `gt_60` (> 60), `60` (> 30), `30` (> 15), `15` (> 10), `10` (>= 8), `lt_08` (< 8).
    FpsBuckets(String),
}

/// A DogStatsD tag: a fixed value or one read from each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// `key:value`.
    Fixed(String, String),
    /// `key=path`: the value of the event field at `path`.
    Field(String, String),
}

impl std::str::FromStr for Tag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((k, path)) = s.split_once('=') {
            Ok(Tag::Field(k.to_owned(), path.to_owned()))
        } else if let Some((k, v)) = s.split_once(':') {
            Ok(Tag::Fixed(k.to_owned(), v.to_owned()))
        } else {
            Err(format!("tag {s:?}: expected key:value or key=field.path"))
        }
    }
}

/// Options of the statsd sink.
#[derive(Debug, Clone)]
pub struct StatsdOptions {
    /// `host:port` of the daemon.
    pub addr: String,
    /// Metric name prefix (joined with `.`; may be empty).
    pub prefix: String,
    /// Event fields whose values, joined by `.`, make the metric name.
    pub fields: Vec<String>,
    /// What each event becomes.
    pub kind: Kind,
    /// DogStatsD tags (none = plain statsd).
    pub tags: Vec<Tag>,
    /// Largest datagram. Default 1432 (fits an Ethernet MTU).
    pub max_datagram: usize,
    /// Interval of the fps-bucket gauges.
    pub fps_interval: Duration,
}

impl StatsdOptions {
    /// Counters to `addr` named by `fields`.
    pub fn new(addr: impl Into<String>, fields: Vec<String>) -> Self {
        Self {
            addr: addr.into(),
            prefix: String::new(),
            fields,
            kind: Kind::Counter,
            tags: Vec::new(),
            max_datagram: 1432,
            fps_interval: Duration::from_secs(10),
        }
    }
}

/// The statsd sink.
pub struct StatsdSink {
    opts: StatsdOptions,
    socket: UdpSocket,
    datagram: String,
    line: String,
    /// Per metric name: counts per fps bucket since the last flush.
    fps: BTreeMap<String, [u64; 6]>,
    fps_since: Instant,
}

const BUCKETS: [&str; 6] = ["gt_60", "60", "30", "15", "10", "lt_08"];

fn bucket(fps: f64) -> usize {
    match fps {
        f if f > 60.0 => 0,
        f if f > 30.0 => 1,
        f if f > 15.0 => 2,
        f if f > 10.0 => 3,
        f if f >= 8.0 => 4,
        _ => 5,
    }
}

impl StatsdSink {
    /// A sink sending to `opts.addr` (resolved once).
    pub fn new(opts: StatsdOptions) -> Result<Self, SinkError> {
        if opts.fields.is_empty() {
            return Err(SinkError::Fatal("statsd: --fields is needed".into()));
        }
        let socket = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect(&opts.addr).map(|()| s))
            .map_err(|e| SinkError::Fatal(format!("statsd {}: {e}", opts.addr)))?;
        Ok(Self {
            opts,
            socket,
            datagram: String::with_capacity(2048),
            line: String::with_capacity(256),
            fps: BTreeMap::new(),
            fps_since: Instant::now(),
        })
    }

    /// Builds the metric name of `item` into `self.line`; `Err` if a field is missing.
    fn name_into(&mut self, item: &Item) -> Result<(), String> {
        self.line.clear();
        if !self.opts.prefix.is_empty() {
            self.line.push_str(&self.opts.prefix);
            self.line.push('.');
        }
        for (i, f) in self.opts.fields.iter().enumerate() {
            if i > 0 {
                self.line.push('.');
            }
            push_scalar(&mut self.line, item, f).map_err(|e| format!("{e} at {f}"))?;
        }
        Ok(())
    }

    fn push_tags(&mut self, item: &Item) -> Result<(), String> {
        if self.opts.tags.is_empty() {
            return Ok(());
        }
        self.line.push_str("|#");
        for (i, t) in self.opts.tags.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            match t {
                Tag::Fixed(k, v) => {
                    let _ = write!(self.line, "{k}:{v}");
                }
                Tag::Field(k, path) => {
                    self.line.push_str(k);
                    self.line.push(':');
                    push_scalar(&mut self.line, item, path)
                        .map_err(|e| format!("{e} (tag) at {path}"))?;
                }
            }
        }
        Ok(())
    }

    /// Appends `self.line` to the datagram, sending the datagram first if it would overflow.
    fn queue_line(&mut self) -> std::io::Result<()> {
        if !self.datagram.is_empty()
            && self.datagram.len() + 1 + self.line.len() > self.opts.max_datagram
        {
            self.flush_datagram()?;
        }
        if !self.datagram.is_empty() {
            self.datagram.push('\n');
        }
        self.datagram.push_str(&self.line);
        Ok(())
    }

    fn flush_datagram(&mut self) -> std::io::Result<()> {
        if self.datagram.is_empty() {
            return Ok(());
        }
        let res = self.socket.send(self.datagram.as_bytes()).map(|_| ());
        self.datagram.clear();
        res
    }

    fn flush_fps(&mut self) -> std::io::Result<()> {
        let fps = std::mem::take(&mut self.fps);
        for (name, counts) in &fps {
            let total: u64 = counts.iter().sum();
            for (b, n) in BUCKETS.iter().zip(counts) {
                self.line.clear();
                let pct = *n as f64 * 100.0 / total as f64;
                let _ = write!(self.line, "{name}.{b}:{pct}|g");
                self.queue_line()?;
            }
        }
        self.flush_datagram()
    }
}

/// The string, number or boolean at `path`, sanitized, onto `out`.
fn push_scalar(out: &mut String, item: &Item, path: &str) -> Result<(), String> {
    match item.lookup(path) {
        Ok(Some(raw)) => {
            if let Some(s) = json::as_str(raw) {
                push_sanitized(out, &s);
            } else if json::is_number(raw) || json::as_bool(raw).is_some() {
                push_sanitized(out, raw);
            } else {
                return Err("no string or number".into());
            }
            Ok(())
        }
        Ok(None) => Err("no string or number".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Statsd names cannot hold `:`, `|`, `@`, `#`, `,` or whitespace; those become `_`.
fn push_sanitized(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| {
        if c.is_whitespace() || matches!(c, ':' | '|' | '@' | '#' | ',') {
            '_'
        } else {
            c
        }
    }));
}

impl Sink for StatsdSink {
    fn name(&self) -> &str {
        "statsd"
    }

    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError> {
        // An error left from before (ICMP of the previous batch's last datagram) is stale.
        let _ = self.socket.take_error();
        self.datagram.clear();
        let io = |e: std::io::Error| SinkError::retry(format!("statsd {}: {e}", "send"));
        for item in batch {
            if let Err(why) = self.name_into(item) {
                skips.skip("statsd", why);
                continue;
            }
            let kind = &self.opts.kind;
            match kind {
                Kind::Counter => self.line.push_str(":1|c"),
                Kind::Gauge(f) | Kind::Timer(f) => {
                    match item.lookup(f).ok().flatten().filter(|r| json::is_number(r)) {
                        Some(n) => {
                            let t = if matches!(kind, Kind::Gauge(_)) {
                                "g"
                            } else {
                                "ms"
                            };
                            // The number as published (16.70 stays 16.70); an exponent, which
                            // statsd daemons do not all read, is written out.
                            if n.contains(['e', 'E']) {
                                let v = json::as_f64(n).unwrap_or(f64::NAN);
                                let _ = write!(self.line, ":{v}|{t}");
                            } else {
                                let _ = write!(self.line, ":{n}|{t}");
                            }
                        }
                        None => {
                            skips.skip("statsd", format!("no number at {f}"));
                            continue;
                        }
                    }
                }
                Kind::FpsBuckets(f) => {
                    match item.lookup(f).ok().flatten().and_then(json::as_f64) {
                        Some(v) => {
                            let b = bucket(v);
                            match self.fps.get_mut(self.line.as_str()) {
                                Some(counts) => counts[b] += 1,
                                None => {
                                    self.fps.entry(self.line.clone()).or_default()[b] += 1;
                                }
                            }
                        }
                        None => skips.skip("statsd", format!("no number at {f}")),
                    }
                    continue;
                }
            }
            if let Err(why) = self.push_tags(item) {
                skips.skip("statsd", why);
                continue;
            }
            self.queue_line().map_err(io)?;
        }
        self.flush_datagram().map_err(io)?;
        match self.socket.take_error() {
            Ok(Some(e)) | Err(e) => Err(io(e)),
            Ok(None) => Ok(()),
        }
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        if matches!(self.opts.kind, Kind::FpsBuckets(_))
            && self.fps_since.elapsed() >= self.opts.fps_interval
        {
            self.fps_since = Instant::now();
            self.flush_fps()
                .map_err(|e| SinkError::retry(format!("statsd send: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_keep_floats_and_tags() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut o = StatsdOptions::new(
            rx.local_addr().unwrap().to_string(),
            vec!["id".into(), "device.game".into()],
        );
        o.prefix = "cobra".into();
        o.kind = Kind::Gauge("data.fps".into());
        o.tags = vec!["env:test".parse().unwrap(), "os=device.os".parse().unwrap()];
        let mut s = StatsdSink::new(o).unwrap();
        let skips = Skips::default();
        let batch = vec![
            Item::new(
                json!({"id": "fps", "device": {"game": "g 1", "os": "iOS"}, "data": {"fps": 16.7}}),
                None,
            ),
            Item::new(json!({"id": "fps"}), None),
        ];
        s.send(&batch, &skips).unwrap();
        let mut buf = [0u8; 2048];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "cobra.fps.g_1:16.7|g|#env:test,os:iOS"
        );
        assert_eq!(skips.count(), 1);
    }

    #[test]
    fn closed_port_is_an_error() {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = StatsdSink::new(StatsdOptions::new(
            format!("127.0.0.1:{port}"),
            vec!["id".into()],
        ))
        .unwrap();
        let batch = vec![Item::new(json!({"id": "x"}), None)];
        assert!(s.send(&batch, &Skips::default()).is_err());
    }

    #[test]
    fn fps_buckets() {
        assert_eq!(
            [61.0, 60.0, 30.0, 15.0, 8.0, 7.9].map(bucket),
            [0, 1, 2, 3, 4, 5]
        );
    }
}
