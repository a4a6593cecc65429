//! The `cobra` command line: one module per subcommand family.

use clap::{Parser, Subcommand};

pub mod bench;
pub mod bot;
pub mod client;
pub mod init;
pub mod run;

/// cobra: realtime telemetry broker and tools.
#[derive(Debug, Parser)]
#[command(name = "cobra", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

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
    /// Load-test a server: publishers, subscribers, idle connections; throughput, latency, loss.
    Bench(Box<bench::BenchArgs>),
    /// Carry a channel's events to a sink: stdout, file, statsd, postgres, sentry, or another broker.
    Bot(Box<bot::BotArgs>),
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
        Command::Bench(args) => bench::bench(*args),
        Command::Bot(args) => bot::bot(*args),
    }
}
