//! The `cobra` command line: one module per subcommand family.

use clap::{Parser, Subcommand};

pub mod bench;
pub mod bot;
pub mod client;
pub mod config_check;
pub mod init;
pub mod probe;
pub mod run;
pub mod signal;

/// cobra: realtime telemetry broker and tools.
#[derive(Debug, Parser)]
#[command(name = "cobra", version, about, propagate_version = true)]
pub struct Cli {
    // No doc comment: clap would read it as help text. The subcommands are documented below.
    #[allow(missing_docs)]
    #[command(subcommand)]
    pub command: Command,
}

// The subcommands; each variant's doc comment is its `--help` line. No doc comment on the enum:
// clap may read it as help text.
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Run(run::RunArgs),
    /// Write a default apps config.
    Init(init::InitArgs),
    /// Print a fresh random role secret.
    Secret,
    /// Publish each JSON line of a file (or stdin) and wait for the acks.
    Publish(client::PublishArgs),
    /// Subscribe and print each message as one JSON line.
    Subscribe(client::SubscribeArgs),
    /// Check a server end to end (write, read, delete, publish + filtered subscribe).
    Health(client::HealthArgs),
    /// Read the value stored on a channel.
    Read(client::ReadArgs),
    /// Store a value on a channel.
    Write(client::WriteArgs),
    /// Delete the value stored on a channel.
    Delete(client::DeleteArgs),
    /// Print the server's stats tables (as the Python client's `monitor`), once or every second.
    Monitor(client::MonitorArgs),
    /// A terminal view of the server refreshed every second: channels by rate, connections,
    /// publishes and deliveries per second, per node.
    Top(client::TopArgs),
    /// Load-test a server: publishers, subscribers, idle connections; throughput, latency, loss.
    Bench(Box<bench::BenchArgs>),
    /// Carry a channel's events to a sink: stdout, file, statsd, postgres, sentry, or another broker.
    Bot(Box<bot::BotArgs>),
    /// Put a running server in lame-duck mode (SIGUSR2): not ready, clients moved away.
    Drain(signal::PidArgs),
    /// Make a running server re-read its apps config (SIGHUP).
    Reload(signal::PidArgs),
    /// Apps config tools (`cobra config check FILE`).
    Config(config_check::ConfigArgs),
    /// Ask a local server's /health/live or /health/ready; exit 0 on 200 (container health checks).
    Probe(probe::ProbeArgs),
}

/// The option `option` given as `secs` seconds, as a duration: refused (with the usage message) unless
/// positive and finite.
pub(crate) fn positive_secs(option: &str, secs: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{option} {secs}: expected a positive number of seconds"))
}

/// Runs the parsed command line; the returned code is the process exit status.
pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Init(args) => init::init(args),
        Command::Secret => init::secret(),
        Command::Publish(args) => client::publish(args),
        Command::Subscribe(args) => client::subscribe(args),
        Command::Health(args) => client::health(args),
        Command::Read(args) => client::read(args),
        Command::Write(args) => client::write(args),
        Command::Delete(args) => client::delete(args),
        Command::Monitor(args) => client::monitor(args),
        Command::Top(args) => client::top(args),
        Command::Bench(args) => bench::bench(*args),
        Command::Bot(args) => bot::bot(*args),
        Command::Drain(args) => signal::drain(args),
        Command::Reload(args) => signal::reload(args),
        Command::Config(args) => config_check::config(args),
        Command::Probe(args) => probe::probe(args),
    }
}
