//! `cobra run`: the broker.

/// Options of `cobra run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn run(_args: RunArgs) -> i32 {
    eprintln!("cobra run: not implemented yet");
    2
}
