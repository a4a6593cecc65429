//! `cobra monitor` (the Python client's `monitor` tables, from the server's `/stats` messages) and
//! `cobra top` (a terminal view refreshed every second, like `nats top`). Both subscribe to the
//! channel `/stats` of the app `_stats`, which every node publishes once a second.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use cobra::{Event, SubscribeOptions};
use serde_json::{Map, Value};

use super::session::Session;
use super::tables::{Cell, format_size, human_cell, simple, transpose};
use super::{CliError, ConnArgs, finish};

/// The app and channel the server publishes its stats on.
const STATS_APPKEY: &str = "_stats";
const STATS_CHANNEL: &str = "/stats";
/// Clears a terminal (as Python's `click.clear()`); never written when stdout is not a terminal.
const CLEAR: &str = "\x1b[2J\x1b[1;1H";

/// Options `cobra monitor` and `cobra top` share.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print the tables once (from the first stats message) and exit.
    #[arg(long)]
    pub once: bool,
}

impl StatsArgs {
    /// The start of a new screen: a terminal is cleared first, unless printing once.
    fn screen(&self, tty: bool) -> String {
        if tty && !self.once {
            CLEAR.to_owned()
        } else {
            String::new()
        }
    }
}

/// Options of `cobra monitor`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    // No doc comment: clap would read it as help text (StatsArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Also print each message's counters as JSON.
    #[arg(long)]
    pub raw: bool,
    /// Hide the per-node table.
    #[arg(long, alias = "hide_nodes")]
    pub hide_nodes: bool,
    /// Hide the per-role table.
    #[arg(long, alias = "hide_roles")]
    pub hide_roles: bool,
    /// Hide the per-channel table.
    #[arg(long, alias = "hide_channels")]
    pub hide_channels: bool,
    /// Hide the summary.
    #[arg(long, alias = "hide_summary")]
    pub hide_summary: bool,
    /// Hide the node, role and channel tables.
    #[arg(long)]
    pub tidy: bool,
    /// Only nodes whose name contains `subscriber`.
    #[arg(long)]
    pub subscribers: bool,
    /// Only roles whose name contains this.
    #[arg(long, alias = "role_filter")]
    pub role_filter: Option<String>,
    /// Only channels whose name contains this.
    #[arg(long, alias = "channel_filter")]
    pub channel_filter: Option<String>,
    /// Only channel metrics whose name contains this.
    #[arg(long, alias = "metric_filter")]
    pub metric_filter: Option<String>,
    /// Leave the publish/subscribe counters out of the node table.
    #[arg(long)]
    pub system: bool,
}

/// Options of `cobra top`.
#[derive(Debug, clap::Args)]
// What "once" prints is a frame here.
#[command(mut_arg("once", |arg| arg.help("Print one frame (after the first stats message) and exit")))]
pub struct TopArgs {
    // No doc comment: clap would read it as help text (StatsArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Exit after this many frames.
    #[arg(long)]
    pub count: Option<u64>,
    /// Channel rows shown at most (the busiest first).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Order of the channels.
    #[arg(long, value_enum, default_value_t = TopSort::Rate)]
    pub sort: TopSort,
}

/// How `cobra top` orders the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopSort {
    /// Messages per second.
    Rate,
    /// Bytes per second.
    Bytes,
    /// Subscriptions.
    Subs,
    /// Messages in all.
    Total,
    /// Channel name.
    Name,
}

/// `cobra monitor`: the stats tables of the Python client's `monitor`.
pub fn monitor(args: MonitorArgs) -> i32 {
    finish("monitor", run_monitor(args))
}

/// `cobra top`: channels by rate, connections and rates per node, refreshed every second.
pub fn top(args: TopArgs) -> i32 {
    finish("top", run_top(args))
}

/// Subscribes to the stats and calls `on_message` with each one until it returns `false` or
/// SIGINT.
fn each_stats_message(
    args: &StatsArgs,
    mut on_message: impl FnMut(&Value) -> Result<bool, CliError>,
) -> Result<(), CliError> {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .map_err(|e| CliError::Failed(format!("installing the SIGINT handler: {e}")))?;
    let session = Session::open(&args.conn, STATS_APPKEY)?;
    session
        .client
        .subscribe(SubscribeOptions::new(STATS_CHANNEL))
        .map_err(|e| CliError::Failed(format!("subscribe: {e}")))?;
    loop {
        crossbeam_channel::select! {
            recv(stop_rx) -> _ => return Ok(()),
            recv(session.events) -> event => {
                let Ok(event) = event else {
                    return Err(CliError::Failed("the client stopped".into()));
                };
                match event {
                    Event::SubscriptionData { messages, .. } => {
                        for m in &messages {
                            if !on_message(m)? {
                                return Ok(());
                            }
                        }
                    }
                    Event::SubscriptionError { error, reason, .. } => {
                        return Err(CliError::Failed(format!("subscription refused: {error}: {reason}")));
                    }
                    other => session.check_connection_event(&other)?,
                }
            }
        }
    }
}

fn out_err(e: std::io::Error) -> CliError {
    CliError::Failed(format!("writing to stdout: {e}"))
}

/// Writes `text`, treating a closed pipe (`| head`) as the end.
fn emit(text: &str) -> Result<bool, CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(out_err(e)),
    }
}

fn run_monitor(args: MonitorArgs) -> Result<(), CliError> {
    let mut state = MonitorState::default();
    let throttle = Duration::from_secs(1);
    let mut last_print: Option<Instant> = None;
    let tty = std::io::stdout().is_terminal();
    let stats = args.stats.clone();
    each_stats_message(&stats, |m| {
        if args.raw {
            let cobra = m.pointer("/data/cobra").cloned().unwrap_or(Value::Null);
            if !emit(&format!("{cobra}\n"))? {
                return Ok(false);
            }
        }
        state.add(m, &args);
        // As the Python monitor: nodes accumulate until a second has passed since the last print.
        if last_print.is_some_and(|t| t.elapsed() <= throttle) {
            return Ok(true);
        }
        last_print = Some(Instant::now());
        let mut text = stats.screen(tty);
        text.push_str(&state.render(&args));
        state = MonitorState::default();
        Ok(emit(&text)? && !stats.once)
    })
}

/// What the monitor gathered since its last print (the Python `MessageHandlerClass` fields).
#[derive(Debug, Default)]
pub(crate) struct MonitorState {
    metrics: BTreeMap<String, f64>,
    nodes: BTreeSet<String>,
    node_rows: Vec<Vec<Cell>>,
    node_header: Option<Vec<Cell>>,
    role_metrics: BTreeMap<String, BTreeMap<String, f64>>,
    roles: BTreeSet<String>,
    channel_metrics: BTreeMap<String, BTreeMap<String, f64>>,
    channels: BTreeSet<String>,
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A sum as the Python monitor shows it: an int when whole.
fn sum_value(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

impl MonitorState {
    /// Adds one stats message (`handleMsg`); a node already seen since the last print is skipped.
    pub(crate) fn add(&mut self, m: &Value, args: &MonitorArgs) {
        let node = match m.get("node") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return,
        };
        if self.nodes.contains(&node) || (args.subscribers && !node.contains("subscriber")) {
            return;
        }
        let empty = Map::new();
        let data = m.get("data").and_then(Value::as_object).unwrap_or(&empty);
        let cobra = data
            .get("cobra")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut row = vec![Cell::Text(node.clone())];
        let mut header = vec![Cell::from("Nodes")];
        for (key, per_role) in cobra {
            if args.system
                && ["published", "subscribed", "subscriptions"]
                    .iter()
                    .any(|k| key.contains(k))
            {
                continue;
            }
            let s: f64 = per_role
                .as_object()
                .map_or(0.0, |o| o.values().map(num).sum());
            *self.metrics.entry(key.clone()).or_default() += s;
            row.push(human_cell(key, &sum_value(s)));
            header.push(Cell::Text(key.clone()));
        }
        for (metric, per_role) in cobra {
            let entry = self.role_metrics.entry(metric.clone()).or_default();
            for (role, v) in per_role.as_object().into_iter().flatten() {
                *entry.entry(role.clone()).or_default() += num(v);
                if args.role_filter.as_deref().is_none_or(|f| role.contains(f)) {
                    self.roles.insert(role.clone());
                }
            }
        }
        if let Some(channel_data) = data.get("channel_data").and_then(Value::as_object) {
            for (metric, per_channel) in channel_data {
                let entry = self.channel_metrics.entry(metric.clone()).or_default();
                for (channel, v) in per_channel.as_object().into_iter().flatten() {
                    *entry.entry(channel.clone()).or_default() += num(v);
                    if args
                        .channel_filter
                        .as_deref()
                        .is_none_or(|f| channel.contains(f))
                    {
                        self.channels.insert(channel.clone());
                    }
                }
            }
        }
        if let Some(system) = data.get("system").and_then(Value::as_object) {
            for (metric, v) in system {
                if metric == "connections" {
                    *self.metrics.entry(metric.clone()).or_default() += num(v);
                }
                header.push(Cell::Text(metric.clone()));
                row.push(human_cell(metric, v));
            }
        }
        self.node_rows.push(row);
        self.nodes.insert(node);
        self.node_header.get_or_insert(header);
    }

    /// The text the Python monitor prints for what was gathered.
    pub(crate) fn render(&self, args: &MonitorArgs) -> String {
        let mut out = String::new();
        let (hide_nodes, hide_roles, hide_channels) = if args.tidy {
            (true, true, true)
        } else {
            (args.hide_nodes, args.hide_roles, args.hide_channels)
        };
        if !args.hide_summary {
            let summary: Map<String, Value> = self
                .metrics
                .iter()
                .map(|(k, v)| {
                    let v = sum_value(*v);
                    let shown = match human_cell(k, &v) {
                        Cell::Text(s) => Value::String(s),
                        _ => v,
                    };
                    (k.clone(), shown)
                })
                .collect();
            out.push_str(&python_json(&Value::Object(summary)));
            out.push_str("\n\n");
        }
        if !hide_nodes {
            let mut rows = vec![self.node_header.clone().unwrap_or_default()];
            let mut body = self.node_rows.clone();
            body.sort_by_key(|row| cell_key(row));
            rows.extend(body);
            if rows.len() < 8 {
                rows = transpose(&rows);
            }
            out.push_str(&simple(&rows));
            out.push('\n');
        }
        if !hide_roles {
            let rows = metric_rows("Roles", &self.roles, &self.role_metrics, |_| true);
            out.push('\n');
            out.push_str(&simple(&rows));
            out.push('\n');
        }
        if !hide_channels {
            let filter = args.metric_filter.as_deref();
            let rows = metric_rows("Channels", &self.channels, &self.channel_metrics, |m| {
                filter.is_none_or(|f| m.contains(f))
            });
            out.push('\n');
            out.push_str(&simple(&transpose(&rows)));
            out.push('\n');
        }
        out
    }
}

/// A table headed `title` with a column per entry of `columns` and a row per metric that `keep`
/// accepts (a column the metric lacks counts 0).
fn metric_rows(
    title: &str,
    columns: &BTreeSet<String>,
    metrics: &BTreeMap<String, BTreeMap<String, f64>>,
    keep: impl Fn(&str) -> bool,
) -> Vec<Vec<Cell>> {
    let header =
        std::iter::once(Cell::from(title)).chain(columns.iter().map(|c| Cell::Text(c.clone())));
    let mut rows = vec![header.collect::<Vec<_>>()];
    for (metric, by_column) in metrics.iter().filter(|(m, _)| keep(m)) {
        let values = columns
            .iter()
            .map(|c| human_cell(metric, &sum_value(by_column.get(c).copied().unwrap_or(0.0))));
        rows.push(
            std::iter::once(Cell::Text(metric.clone()))
                .chain(values)
                .collect(),
        );
    }
    rows
}

fn cell_key(row: &[Cell]) -> String {
    match row.first() {
        Some(Cell::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

/// `json.dumps(v, sort_keys=True, indent=4)`: 4-space indent, `ensure_ascii` escapes.
fn python_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    // Serializing a Value into a Vec cannot fail.
    let _ = serde::Serialize::serialize(v, &mut ser);
    let text = String::from_utf8_lossy(&buf);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for u in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------- top

fn run_top(args: TopArgs) -> Result<(), CliError> {
    let tty = std::io::stdout().is_terminal();
    let mut latest: BTreeMap<String, (Instant, Value)> = BTreeMap::new();
    let mut last_frame: Option<Instant> = None;
    let mut frames = 0u64;
    let stats = args.stats.clone();
    let endpoint = stats
        .conn
        .endpoint
        .clone()
        .unwrap_or_else(super::default_endpoint);
    each_stats_message(&stats, |m| {
        let node = m.get("node").map_or_else(String::new, |n| match n {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        latest.insert(node, (Instant::now(), m.clone()));
        // Nodes that stopped publishing for 5 s are gone.
        latest.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(5));
        // One frame a second, whatever the number of nodes.
        if last_frame.is_some_and(|t| t.elapsed() < Duration::from_millis(900)) {
            return Ok(true);
        }
        last_frame = Some(Instant::now());
        let mut text = stats.screen(tty);
        text.push_str(&top_frame(
            &endpoint,
            latest.values().map(|(_, m)| m),
            &args,
        ));
        frames += 1;
        let more = !stats.once && args.count.is_none_or(|n| frames < n);
        Ok(emit(&text)? && more)
    })
}

#[derive(Debug, Default, Clone)]
struct ChannelRow {
    rate: f64,
    bytes_rate: f64,
    subs: f64,
    total: f64,
    bytes: f64,
}

fn sum_of(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_object)
        .map_or(0.0, |o| o.values().map(num).sum())
}

/// One screen of `cobra top` from the latest stats message of each node.
fn top_frame<'a>(
    endpoint: &str,
    messages: impl Iterator<Item = &'a Value>,
    args: &TopArgs,
) -> String {
    let mut node_rows = vec![Cell::header(&[
        "NODE", "CONNS", "PUB/S", "DELIV/S", "IN/S", "OUT/S", "SUBS", "MEM", "UPTIME", "BACKEND",
    ])];
    let mut channels: BTreeMap<String, ChannelRow> = BTreeMap::new();
    let (mut conns, mut pubs, mut delivs) = (0.0, 0.0, 0.0);
    for m in messages {
        let data = m.get("data").cloned().unwrap_or(Value::Null);
        let cobra = data.get("cobra");
        let system = data.get("system");
        let get = |k: &str| sum_of(cobra.and_then(|c| c.get(k)));
        let c = system.and_then(|s| s.get("connections")).map_or(0.0, num);
        let (p, d) = (
            get("published_count_per_second"),
            get("subscribed_count_per_second"),
        );
        conns += c;
        pubs += p;
        delivs += d;
        let backend = data.get("backend").and_then(Value::as_array);
        let backend = backend.map_or_else(
            || "-".to_owned(),
            |nodes| {
                let up = nodes
                    .iter()
                    .filter(|n| n.get("connected") == Some(&Value::Bool(true)))
                    .count();
                format!("{up}/{} up", nodes.len())
            },
        );
        node_rows.push(vec![
            Cell::Text(m.get("node").map_or_else(String::new, |n| {
                n.as_str().map_or_else(|| n.to_string(), str::to_owned)
            })),
            Cell::Int(c as i64),
            Cell::Int(p as i64),
            Cell::Int(d as i64),
            Cell::Text(format!(
                "{}/s",
                format_size(get("published_bytes_per_second"))
            )),
            Cell::Text(format!(
                "{}/s",
                format_size(get("subscribed_bytes_per_second"))
            )),
            Cell::Int(get("subscriptions") as i64),
            Cell::Text(format_size(
                system.and_then(|s| s.get("mem_bytes")).map_or(0.0, num),
            )),
            Cell::Text(
                system
                    .and_then(|s| s.get("uptime"))
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_owned(),
            ),
            Cell::Text(backend),
        ]);
        let cd = data.get("channel_data");
        let mut add = |metric: &str, field: fn(&mut ChannelRow) -> &mut f64| {
            for (ch, v) in cd
                .and_then(|c| c.get(metric))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                *field(channels.entry(ch.clone()).or_default()) += num(v);
            }
        };
        add("published_count_per_second", |r| &mut r.rate);
        add("published_bytes_per_second", |r| &mut r.bytes_rate);
        add("subscriptions", |r| &mut r.subs);
        add("published_count", |r| &mut r.total);
        add("published_bytes", |r| &mut r.bytes);
    }
    let mut sorted: Vec<(String, ChannelRow)> = channels.into_iter().collect();
    let by = |r: &ChannelRow| match args.sort {
        TopSort::Rate => r.rate,
        TopSort::Bytes => r.bytes_rate,
        TopSort::Subs => r.subs,
        TopSort::Total => r.total,
        TopSort::Name => 0.0,
    };
    sorted.sort_by(|a, b| by(&b.1).total_cmp(&by(&a.1)).then_with(|| a.0.cmp(&b.0)));
    let shown = sorted.len().min(args.limit);
    let mut channel_rows = vec![Cell::header(&[
        "CHANNEL", "MSG/S", "BYTES/S", "SUBS", "MESSAGES", "BYTES",
    ])];
    for (name, r) in &sorted[..shown] {
        channel_rows.push(vec![
            Cell::Text(name.clone()),
            Cell::Int(r.rate as i64),
            Cell::Text(format_size(r.bytes_rate)),
            Cell::Int(r.subs as i64),
            Cell::Int(r.total as i64),
            Cell::Text(format_size(r.bytes)),
        ]);
    }
    let nodes = node_rows.len() - 1;
    let mut out = format!(
        "cobra top - {endpoint}  {nodes} node{}  {} connections  {} publishes/s  {} deliveries/s\n\n",
        if nodes == 1 { "" } else { "s" },
        conns as i64,
        pubs as i64,
        delivs as i64
    );
    out.push_str(&simple(&node_rows));
    out.push_str("\n\n");
    out.push_str(&simple(&channel_rows));
    out.push('\n');
    if shown < sorted.len() {
        out.push_str(&format!(
            "({} more channels; --limit shows more)\n",
            sorted.len() - shown
        ));
    }
    out
}
