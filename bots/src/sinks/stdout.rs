//! `stdout`: one JSON line per event, optionally wrapped for fluentd as the C++ bot did.

use std::io::Write;

use serde_json::{Value, json};

use crate::sink::{Item, Sink, SinkError, Skips};

/// Writes JSON lines to any writer (stdout for `cobra bot stdout`). A batch is confirmed once the
/// writer was flushed.
pub struct StdoutSink<W: Write + Send> {
    out: W,
    fluentd: bool,
    buf: Vec<u8>,
}

impl StdoutSink<std::io::Stdout> {
    /// Lines on the process's stdout.
    pub fn stdout(fluentd: bool) -> Self {
        Self::new(std::io::stdout(), fluentd)
    }
}

impl<W: Write + Send> StdoutSink<W> {
    /// Lines on `out`; with `fluentd`, each as
    /// `{"producer":"cobra","consumer":"fluentd","message":{...,"position":P}}`.
    pub fn new(out: W, fluentd: bool) -> Self {
        Self {
            out,
            fluentd,
            buf: Vec::with_capacity(1 << 16),
        }
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    fn name(&self) -> &str {
        "stdout"
    }

    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError> {
        self.buf.clear();
        for item in batch {
            let res = if self.fluentd {
                let mut message = match item.value() {
                    Ok(Value::Object(m)) => m,
                    _ => {
                        skips.skip("stdout", "fluentd needs a JSON object");
                        continue;
                    }
                };
                message.insert(
                    "position".into(),
                    item.position.as_deref().map_or(Value::Null, |p| json!(p)),
                );
                serde_json::to_writer(
                    &mut self.buf,
                    &json!({"producer": "cobra", "consumer": "fluentd", "message": message}),
                )
            } else {
                // As the broker sent it: one line of valid JSON.
                self.buf.extend_from_slice(item.json().as_bytes());
                Ok(())
            };
            res.map_err(|e| SinkError::Fatal(format!("serializing: {e}")))?;
            self.buf.push(b'\n');
        }
        let res = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        match res {
            Ok(()) => Ok(()),
            // Nobody reads any more (`| head`): nothing will ever be confirmed again.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(SinkError::Fatal("stdout closed".into()))
            }
            Err(e) => Err(SinkError::retry(format!("writing: {e}"))),
        }
    }
}
