//! `cobra init` and `cobra secret`.

/// Options of `cobra init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {}

pub fn init(_args: InitArgs) -> i32 {
    eprintln!("cobra init: not implemented yet");
    2
}

pub fn secret() -> i32 {
    eprintln!("cobra secret: not implemented yet");
    2
}
