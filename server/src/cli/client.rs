//! The client commands of `cobra`, built on the SDK: publish, subscribe, health, read, write, delete.

macro_rules! todo_command {
    ($($args:ident => $f:ident),*) => {$(
        #[derive(Debug, clap::Args)]
        pub struct $args {}
        pub fn $f(_args: $args) -> i32 {
            eprintln!(concat!("cobra ", stringify!($f), ": not implemented yet"));
            2
        }
    )*};
}
todo_command!(PublishArgs => publish, SubscribeArgs => subscribe, HealthArgs => health, ReadArgs => read, WriteArgs => write, DeleteArgs => delete);
