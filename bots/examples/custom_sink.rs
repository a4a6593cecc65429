//! A custom sink in ~20 lines: print the frame rate of each `engine_fps_id` event.
//! Run: `cargo run -p cobra-bot --example custom_sink -- ws://127.0.0.1:8765 _pubsub pubsub SECRET`
use cobra_bot::{Bot, BotConfig, Item, Sink, SinkError, Skips, json};

struct FpsPrinter;

impl Sink for FpsPrinter {
    fn name(&self) -> &str {
        "fps-printer"
    }
    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError> {
        for item in batch {
            // A field lookup on the event's JSON text (no tree built); `item.value()` parses it all.
            match item
                .lookup("data.fps")
                .ok()
                .flatten()
                .and_then(json::as_f64)
            {
                Some(fps) => println!("{fps:.1} fps"),
                None => skips.skip("fps-printer", "no data.fps"),
            }
        }
        Ok(()) // confirmed: the checkpoint moves past this batch
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let client = cobra::Config::new(
        arg(0, "ws://127.0.0.1:8765"),
        arg(1, "_pubsub"),
        arg(2, "pubsub"),
        arg(3, ""),
    );
    let mut config = BotConfig::new("engine_fps_id");
    config.checkpoint = Some("fps.checkpoint".into());
    Bot::new(client, config)?.run(&mut FpsPrinter)?;
    Ok(())
}
