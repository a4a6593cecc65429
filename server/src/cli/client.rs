//! The client commands of `cobra`, built on the SDK (`cobra::Client`): publish, subscribe, health, read,
//! write, delete, and the stats views monitor and top.
//!
//! Exit status: 0 on success, 1 when the server or the network failed us (the message names what), 2 for
//! bad usage or input (clap's own usage errors are 2 as well).

mod creds;
mod health;
mod monitor;
mod session;
mod subscribe_table;
mod tables;

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};

use cobra::{Event, SubscribeOptions};
use serde_json::Value;

pub use creds::{CredsError, apps_config_path, resolve as resolve_credentials};
pub use monitor::{MonitorArgs, StatsArgs, TopArgs, TopSort, monitor, top};
pub use session::client_config;
use session::{Session, wait_event};

/// A failed client command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The command could not do its job (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

/// Connection options shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// WebSocket endpoint [default: ws://127.0.0.1:$COBRA_PORT, port 8765 when unset].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Application key [default: _pubsub; _health for `cobra health`].
    #[arg(long)]
    pub appkey: Option<String>,
    /// Role name [default: the appkey's first role in the apps config].
    #[arg(long, alias = "role")]
    pub rolename: Option<String>,
    /// Role secret [default: from the apps config].
    #[arg(long, alias = "secret")]
    pub rolesecret: Option<String>,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Do not offer permessage-deflate.
    #[arg(long, alias = "no_deflate")]
    pub no_deflate: bool,
}

impl ConnArgs {
    fn timeout(&self) -> Result<Duration, CliError> {
        super::positive_secs("--timeout", self.timeout).map_err(CliError::Usage)
    }
}

/// What to subscribe to: shared by `cobra subscribe` and every `cobra bot`.
#[derive(Debug, Clone, clap::Args)]
pub struct SubscriptionArgs {
    /// Channel to subscribe to (with --stream-sql: defaults to the channel in its FROM clause).
    #[arg(long)]
    pub channel: Option<String>,
    /// StreamSQL filter, e.g. "select data.fps from `engine_fps_id` where data.fps < 30".
    #[arg(long, alias = "stream_sql")]
    pub stream_sql: Option<String>,
    /// Start after this position (`0-0`: from the oldest message kept; default: only new messages).
    #[arg(long)]
    pub position: Option<String>,
}

impl SubscriptionArgs {
    /// The channel to subscribe to: `--channel`, else the one in the FROM clause of `--stream-sql`.
    pub fn channel(&self) -> Result<String, CliError> {
        match (&self.channel, &self.stream_sql) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(sql)) => channel_of_filter(sql).ok_or_else(|| {
                CliError::Usage("--stream-sql has no FROM channel; pass --channel".into())
            }),
            (None, None) => Err(CliError::Usage(
                "--channel (or --stream-sql) is required".into(),
            )),
        }
    }
}

/// The default endpoint: `ws://127.0.0.1:${COBRA_PORT:-8765}`.
pub fn default_endpoint() -> String {
    let port = std::env::var("COBRA_PORT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "8765".into());
    format!("ws://127.0.0.1:{port}")
}

/// Options of `cobra publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Channel to publish to.
    #[arg(long)]
    pub channel: String,
    /// File of JSON messages, one per line; `-` or nothing for stdin.
    pub file: Option<String>,
    /// Messages published but not yet acknowledged at most (flow control, so no message is ever dropped;
    /// at most the SDK's default queue of 10000).
    #[arg(long, alias = "in_flight", default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub in_flight: u16,
}

/// Options of `cobra subscribe`.
#[derive(Debug, clap::Args)]
pub struct SubscribeArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    // No doc comment: clap would read it as help text (SubscriptionArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub subscription: SubscriptionArgs,
    /// Messages per server PDU.
    #[arg(long, alias = "batch_size")]
    pub batch_size: Option<u32>,
    /// Exit after printing this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Show messages as a table redrawn in place (on a terminal; plain lines when piped). With
    /// an aggregate --stream-sql that has a HISTOGRAM: groups as columns, buckets as rows.
    #[arg(long)]
    pub table: bool,
}

/// Options of `cobra health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Channel of the publish + subscribe check [default: a fresh `sms_health_check_channel_<hex>`].
    #[arg(long)]
    pub channel: Option<String>,
}

/// Options of `cobra read`.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Channel (key) to read.
    #[arg(long)]
    pub channel: String,
}

/// Options of `cobra write`.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Channel (key) to write.
    #[arg(long)]
    pub channel: String,
    /// The JSON value to store; read from stdin when absent.
    pub value: Option<String>,
}

/// Options of `cobra delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Channel (key) to delete.
    #[arg(long)]
    pub channel: String,
}

fn finish(command: &str, result: Result<(), CliError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cobra {command}: {e}");
            e.exit_code()
        }
    }
}

/// `cobra publish`: publishes each JSON line of the file (or stdin) and waits for every ack.
pub fn publish(args: PublishArgs) -> i32 {
    finish("publish", run_publish(args))
}

/// `cobra subscribe`: prints each message received as one JSON line.
pub fn subscribe(args: SubscribeArgs) -> i32 {
    finish("subscribe", run_subscribe(args))
}

/// `cobra health`: end-to-end check of a server; 0 healthy, 1 not (the failing step is named).
pub fn health(args: HealthArgs) -> i32 {
    match health::run(&args) {
        Ok(()) => {
            println!("healthy");
            0
        }
        Err(e) => {
            eprintln!("cobra health: unhealthy: {e}");
            1
        }
    }
}

/// `cobra read`: prints the value stored on a channel (`null` when none).
pub fn read(args: ReadArgs) -> i32 {
    finish(
        "read",
        (|| {
            let session = Session::open(&args.conn, "_pubsub")?;
            let value = session
                .client
                .read(&args.channel, session.timeout)
                .map_err(session::failed("read"))?;
            println!("{}", value.unwrap_or(Value::Null));
            Ok(())
        })(),
    )
}

/// `cobra write`: stores a JSON value on a channel.
pub fn write(args: WriteArgs) -> i32 {
    finish(
        "write",
        (|| {
            let text = match &args.value {
                Some(v) => v.clone(),
                None => std::io::read_to_string(std::io::stdin().lock())
                    .map_err(|e| CliError::Usage(format!("reading the value from stdin: {e}")))?,
            };
            let value: Value = serde_json::from_str(text.trim())
                .map_err(|e| CliError::Usage(format!("the value is not JSON: {e}")))?;
            let session = Session::open(&args.conn, "_pubsub")?;
            session
                .client
                .write(&args.channel, &value, session.timeout)
                .map_err(session::failed("write"))
        })(),
    )
}

/// `cobra delete`: deletes the value stored on a channel.
pub fn delete(args: DeleteArgs) -> i32 {
    finish(
        "delete",
        (|| {
            let session = Session::open(&args.conn, "_pubsub")?;
            session
                .client
                .delete(&args.channel, session.timeout)
                .map_err(session::failed("delete"))
        })(),
    )
}

fn run_publish(args: PublishArgs) -> Result<(), CliError> {
    let input: Box<dyn BufRead> = match args.file.as_deref() {
        None | Some("-") => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| CliError::Usage(format!("cannot open {path}: {e}")))?,
        )),
    };
    // Room for one ack per message in flight plus connection events: a full channel would lose acks.
    let in_flight = usize::from(args.in_flight);
    let capacity = in_flight * 2 + 64;
    let session = Session::open_steps(&args.conn, "_pubsub", capacity).map_err(|(_, e)| e)?;
    // Publish id → line number, for the messages not yet acknowledged.
    let mut pending: HashMap<u64, usize> = HashMap::new();
    let mut published = 0usize;
    let mut deadline = Instant::now() + session.timeout;
    let on_event =
        |event: Event, pending: &mut HashMap<u64, usize>, deadline: &mut Instant| match event {
            Event::Published { id } => {
                if pending.remove(&id).is_some() {
                    *deadline = Instant::now() + session.timeout;
                }
                Ok(())
            }
            Event::PublishDropped { id, reason } => match pending.get(&id) {
                Some(line) => Err(CliError::Failed(format!(
                    "the message of line {line} was not published: {reason}"
                ))),
                None => Ok(()),
            },
            other => session.check_connection_event(&other),
        };
    for (index, line) in input.lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|e| CliError::Usage(format!("reading line {line_no}: {e}")))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if serde_json::from_str::<&serde_json::value::RawValue>(text).is_err() {
            return Err(CliError::Usage(format!(
                "line {line_no} is not JSON: {}",
                abbreviate(text)
            )));
        }
        while pending.len() >= in_flight {
            let event = wait_event(&session.events, deadline, pending.len())?;
            on_event(event, &mut pending, &mut deadline)?;
        }
        let id = session
            .client
            .publish_raw(&args.channel, text)
            .map_err(|e| CliError::Failed(format!("line {line_no}: {e}")))?;
        if pending.is_empty() {
            // The wait for acks starts now, not when the (possibly slow) input started.
            deadline = Instant::now() + session.timeout;
        }
        pending.insert(id, line_no);
        published += 1;
        // Take the acks that already came, so the channel never fills up while the input is slow.
        while let Ok(event) = session.events.try_recv() {
            on_event(event, &mut pending, &mut deadline)?;
        }
    }
    while !pending.is_empty() {
        let event = wait_event(&session.events, deadline, pending.len())?;
        on_event(event, &mut pending, &mut deadline)?;
    }
    eprintln!("published {published} messages to {}", args.channel);
    Ok(())
}

fn abbreviate(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// The channel named in a StreamSQL FROM clause (backquoted or bare).
pub fn channel_of_filter(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let mut search = 0;
    while let Some(found) = lower[search..].find("from") {
        let at = search + found;
        let before_ok = at == 0
            || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
                && lower.as_bytes()[at - 1] != b'_';
        let rest = &sql[at + 4..];
        if before_ok && rest.starts_with(char::is_whitespace) {
            let rest = rest.trim_start();
            let name = if let Some(quoted) = rest.strip_prefix('`') {
                quoted.split('`').next().filter(|_| quoted.contains('`'))?
            } else {
                rest.split(|c: char| c.is_whitespace()).next()?
            };
            return (!name.is_empty()).then(|| name.to_owned());
        }
        search = at + 4;
    }
    None
}

fn run_subscribe(args: SubscribeArgs) -> Result<(), CliError> {
    let channel = args.subscription.channel()?;
    if args.batch_size == Some(0) {
        return Err(CliError::Usage("--batch-size must be positive".into()));
    }
    if args.count == Some(0) {
        return Ok(());
    }
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .map_err(|e| CliError::Failed(format!("installing the SIGINT handler: {e}")))?;

    let session = Session::open(&args.conn, "_pubsub")?;
    let mut options = SubscribeOptions::new(channel);
    if let Some(sql) = &args.subscription.stream_sql {
        options = options.filter(sql);
    }
    if let Some(p) = &args.subscription.position {
        options = options.position(p);
    }
    if let Some(n) = args.batch_size {
        options = options.batch_size(n);
    }
    session
        .client
        .subscribe(options)
        .map_err(|e| CliError::Failed(format!("subscribe: {e}")))?;

    let stdout = std::io::stdout();
    // The table is drawn only on a terminal: piped, `--table` prints the plain lines.
    let mut table = (args.table && stdout.is_terminal()).then(|| {
        let columns = args
            .subscription
            .stream_sql
            .as_deref()
            .and_then(|sql| crate::streamsql::Query::parse(sql).ok())
            .and_then(|q| q.aggregate_columns());
        subscribe_table::Table::new(columns)
    });
    let mut out = BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    loop {
        crossbeam_channel::select! {
            recv(stop_rx) -> _ => break,
            recv(session.events) -> event => {
                let Ok(event) = event else {
                    return Err(CliError::Failed("the client stopped".into()));
                };
                match event {
                    Event::SubscriptionData { messages, .. } => {
                        let done = match &mut table {
                            Some(table) => draw_table(table, &messages, &mut printed, args.count, &mut out),
                            None => print_lines(&messages, &mut printed, args.count, &mut out),
                        };
                        match done {
                            Ok(false) => {}
                            Ok(true) => return Ok(()),
                            Err(e) => return stdout_closed(e),
                        }
                    }
                    Event::Subscribed { subscription_id, position } => {
                        let at = position.map_or_else(String::new, |p| format!(" at position {p}"));
                        eprintln!("subscribed to {subscription_id}{at}");
                    }
                    Event::SubscriptionError { error, reason, .. } => {
                        return Err(CliError::Failed(format!("subscription refused: {error}: {reason}")));
                    }
                    other => session.check_connection_event(&other)?,
                }
            }
        }
    }
    out.flush().or_else(stdout_closed)
}

/// Prints each message as a line of JSON; `Ok(true)` once `count` messages were printed.
fn print_lines(
    messages: &[Value],
    printed: &mut u64,
    count: Option<u64>,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    for message in messages {
        serde_json::to_writer(&mut *out, message).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        *printed += 1;
        if count.is_some_and(|n| *printed >= n) {
            out.flush()?;
            return Ok(true);
        }
    }
    out.flush()?;
    Ok(false)
}

/// Adds the messages to the table and redraws it in place; `Ok(true)` once `count` were shown.
fn draw_table(
    table: &mut subscribe_table::Table,
    messages: &[Value],
    printed: &mut u64,
    count: Option<u64>,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    let take = count.map_or(messages.len(), |n| {
        messages.len().min(n.saturating_sub(*printed) as usize)
    });
    for message in &messages[..take] {
        table.add(message);
    }
    *printed += take as u64;
    // Home, clear to the end of the screen, draw.
    write!(out, "\x1b[H\x1b[J{}", table.render())?;
    out.flush()?;
    Ok(count.is_some_and(|n| *printed >= n))
}

fn stdout_closed(e: std::io::Error) -> Result<(), CliError> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(CliError::Failed(format!("writing to stdout: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_from_the_from_clause() {
        let sql = "select magic,device.android_id from `health_check` where device.game = 'test'";
        assert_eq!(channel_of_filter(sql).as_deref(), Some("health_check"));
        assert_eq!(
            channel_of_filter("SELECT * FROM blah WHERE game = 'ody'").as_deref(),
            Some("blah")
        );
        assert_eq!(
            channel_of_filter("select fromage from `c`").as_deref(),
            Some("c")
        );
        assert_eq!(
            channel_of_filter("select * FROM `unterminated").as_deref(),
            None
        );
        assert_eq!(channel_of_filter("select *").as_deref(), None);
    }

    #[test]
    fn underscore_spellings_parse() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "cobra",
            "subscribe",
            "--stream_sql",
            "select * from `c`",
            "--batch_size",
            "3",
            "--count",
            "2",
            "--position",
            "0-0",
        ])
        .unwrap();
        let crate::cli::Command::Subscribe(args) = cli.command else {
            panic!("not subscribe")
        };
        assert_eq!(
            args.subscription.stream_sql.as_deref(),
            Some("select * from `c`")
        );
        assert_eq!(args.subscription.position.as_deref(), Some("0-0"));
        assert_eq!(args.batch_size, Some(3));
        assert_eq!(args.count, Some(2));
    }
}
