use clap::Parser;

fn main() {
    let cli = cobra_server::cli::Cli::parse();
    std::process::exit(cobra_server::cli::dispatch(cli));
}
