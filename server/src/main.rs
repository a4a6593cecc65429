//! `cobra`: the broker (`cobra run`) and the command-line client (see `cobra --help`).
#![forbid(unsafe_code)]

use clap::Parser;

// A publish allocates and frees a handful of small buffers (PDU text, channel keys, futures)
// across threads; glibc's malloc spent about a quarter of the server's CPU on them in the
// Redis publish profile. mimalloc's thread-local free lists are built for that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cobra_server::cli::Cli::parse();
    std::process::exit(cobra_server::cli::dispatch(cli));
}
