//! `file`: JSON lines in a directory, rotated by size and by age, optionally gzip.
//!
//! Files are named `<prefix>-<unix ms>-<seq>.jsonl` (`.jsonl.gz` with gzip) so that a listing sorts
//! them in write order. Each event is written as the broker sent it (its JSON text, not
//! re-serialized). Each batch goes out in one `write` of whole lines; a batch is confirmed
//! once written (and flushed to the gzip stream), plus fsynced with [`Fsync::Batch`].
//!
//! Torn lines: a crash (even `kill -9` mid-write) can only cut the last line of the file being
//! written, and a restarted bot never appends to an old file. A line without its final `\n` is
//! therefore torn and readers skip it; on start the sink also truncates a torn tail of the newest
//! plain file. A failed write (disk full) is cut back to the last whole line before the retry.
//! Gzip files are written as a sync-flushed stream; a crash leaves a truncated stream, which
//! `zcat` reads up to the last flushed batch (and then complains about the missing end).

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::sink::{Item, Sink, SinkError, Skips};

/// When file data reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fsync before each batch is confirmed: survives power loss (slowest).
    Batch,
    /// fsync about every second: a power loss may lose the last second (the checkpoint may be
    /// ahead of the disk); a process crash loses nothing.
    Interval,
    /// Leave it to the OS: a process crash loses nothing, a power loss may.
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Fsync::Batch),
            "interval" => Ok(Fsync::Interval),
            "never" => Ok(Fsync::Never),
            _ => Err(format!("{s:?}: expected batch, interval or never")),
        }
    }
}

/// Options of the file sink.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// The directory (created if absent).
    pub dir: PathBuf,
    /// File name prefix.
    pub prefix: String,
    /// Start a new file past this many bytes (uncompressed). Default 256 MiB.
    pub rotate_bytes: u64,
    /// Start a new file after this long. Default 1 hour.
    pub rotate_interval: Duration,
    /// Gzip the files.
    pub gzip: bool,
    /// fsync policy.
    pub fsync: Fsync,
}

impl FileOptions {
    /// Defaults for `dir`: prefix `cobra`, 256 MiB, 1 hour, no gzip, fsync each second.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            prefix: "cobra".into(),
            rotate_bytes: 256 << 20,
            rotate_interval: Duration::from_secs(3600),
            gzip: false,
            fsync: Fsync::Interval,
        }
    }
}

enum Writer {
    Plain(File),
    Gz(Box<GzEncoder<File>>),
}

impl Writer {
    fn file(&self) -> &File {
        match self {
            Writer::Plain(f) => f,
            Writer::Gz(g) => g.get_ref(),
        }
    }
}

struct Current {
    writer: Writer,
    path: PathBuf,
    bytes: u64,
    opened: Instant,
}

/// The file sink.
pub struct FileSink {
    opts: FileOptions,
    current: Option<Current>,
    seq: u64,
    buf: Vec<u8>,
    dirty: bool,
    last_sync: Instant,
}

impl FileSink {
    /// Creates the directory and repairs a torn tail of the newest plain file.
    pub fn new(opts: FileOptions) -> Result<Self, SinkError> {
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| SinkError::Fatal(format!("creating {}: {e}", opts.dir.display())))?;
        if let Some(newest) = newest_plain(&opts.dir, &opts.prefix) {
            repair_tail(&newest).map_err(|e| {
                SinkError::Fatal(format!("repairing the tail of {}: {e}", newest.display()))
            })?;
        }
        Ok(Self {
            opts,
            current: None,
            seq: 0,
            buf: Vec::with_capacity(1 << 20),
            dirty: false,
            last_sync: Instant::now(),
        })
    }

    /// The file being written, if any.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    fn open(&mut self) -> Result<&mut Current, SinkError> {
        if self.current.is_none() {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.seq += 1;
            let ext = if self.opts.gzip { "jsonl.gz" } else { "jsonl" };
            let path = self.opts.dir.join(format!(
                "{}-{ms:013}-{:06}.{ext}",
                self.opts.prefix, self.seq
            ));
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| SinkError::retry(format!("creating {}: {e}", path.display())))?;
            let writer = if self.opts.gzip {
                Writer::Gz(Box::new(GzEncoder::new(file, Compression::fast())))
            } else {
                Writer::Plain(file)
            };
            self.current = Some(Current {
                writer,
                path,
                bytes: 0,
                opened: Instant::now(),
            });
        }
        self.current
            .as_mut()
            .ok_or_else(|| SinkError::retry("no file"))
    }

    /// Finishes the current file (gzip trailer, fsync) so the next write opens a new one.
    fn close_current(&mut self) -> Result<(), SinkError> {
        if let Some(cur) = self.current.take() {
            let file = match cur.writer {
                Writer::Plain(f) => f,
                Writer::Gz(g) => g.finish().map_err(|e| {
                    SinkError::retry(format!("finishing {}: {e}", cur.path.display()))
                })?,
            };
            if self.opts.fsync != Fsync::Never {
                file.sync_data()
                    .map_err(|e| SinkError::retry(format!("fsync {}: {e}", cur.path.display())))?;
            }
            self.dirty = false;
        }
        Ok(())
    }

    fn rotate_if_due(&mut self) -> Result<(), SinkError> {
        let due = self.current.as_ref().is_some_and(|c| {
            c.bytes >= self.opts.rotate_bytes || c.opened.elapsed() >= self.opts.rotate_interval
        });
        if due {
            self.close_current()?;
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        "file"
    }

    fn send(&mut self, batch: &[Item], _skips: &Skips) -> Result<(), SinkError> {
        self.rotate_if_due()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for item in batch {
            // The message as the broker sent it: valid JSON, and without a raw newline (JSON
            // escapes them in strings), so one line.
            buf.extend_from_slice(item.json().as_bytes());
            buf.push(b'\n');
        }
        let fsync = self.opts.fsync;
        let cur = self.open()?;
        let res = match &mut cur.writer {
            Writer::Plain(f) => {
                let before = f.stream_position().unwrap_or(cur.bytes);
                f.write_all(&buf).inspect_err(|_| {
                    // Cut back to the last whole line so the retry does not follow a torn one.
                    let _ = f.set_len(before);
                })
            }
            Writer::Gz(g) => g.write_all(&buf).and_then(|()| g.flush()),
        };
        let res = res.and_then(|()| {
            if fsync == Fsync::Batch {
                cur.writer.file().sync_data()
            } else {
                Ok(())
            }
        });
        self.buf = buf;
        match res {
            Ok(()) => {
                if let Some(cur) = self.current.as_mut() {
                    cur.bytes += self.buf.len() as u64;
                }
                self.dirty = true;
                Ok(())
            }
            Err(e) => {
                let path = self.current.as_ref().map(|c| c.path.display().to_string());
                if self.opts.gzip {
                    // A gzip stream cannot be cut back: continue in a new file.
                    self.current = None;
                }
                Err(SinkError::retry(format!(
                    "writing {}: {e}",
                    path.unwrap_or_default()
                )))
            }
        }
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        if self.opts.fsync == Fsync::Interval
            && self.dirty
            && self.last_sync.elapsed() >= Duration::from_secs(1)
        {
            self.last_sync = Instant::now();
            if let Some(cur) = &self.current {
                cur.writer
                    .file()
                    .sync_data()
                    .map_err(|e| SinkError::retry(format!("fsync: {e}")))?;
            }
            self.dirty = false;
        }
        self.rotate_if_due()
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Err(e) = self.close_current() {
            log::warn!("file: closing: {e}");
        }
    }
}

fn newest_plain(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
        })
        .collect();
    names.sort();
    names.pop()
}

/// Truncates `path` after its last `\n` (a torn last line left by a crash).
fn repair_tail(path: &Path) -> std::io::Result<()> {
    let data = std::fs::read(path)?;
    let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep < data.len() {
        log::warn!(
            "{}: cutting a torn last line ({} bytes)",
            path.display(),
            data.len() - keep
        );
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|i| Item::new(json!({"n": i}), None)).collect()
    }

    #[test]
    fn rotates_by_size_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = FileOptions::new(dir.path());
        opts.rotate_bytes = 10;
        let skips = Skips::default();
        let mut sink = FileSink::new(opts.clone()).unwrap();
        for _ in 0..3 {
            sink.send(&items(2), &skips).unwrap();
        }
        drop(sink);
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 3);
        let last = files.last().unwrap().clone();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        let _sink = FileSink::new(opts).unwrap();
        assert_eq!(
            std::fs::read_to_string(&last).unwrap(),
            "{\"n\":0}\n{\"n\":1}\n"
        );
    }

    #[test]
    fn gzip_is_readable_after_each_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = FileOptions::new(dir.path());
        opts.gzip = true;
        let mut sink = FileSink::new(opts).unwrap();
        sink.send(&items(3), &Skips::default()).unwrap();
        let path = sink.current_path().unwrap().to_owned();
        let mut text = String::new();
        // The stream is not finished, but everything flushed so far inflates.
        let _ = std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(&path).unwrap()),
            &mut text,
        );
        assert_eq!(text, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    }
}
