//! The on-disk publish spool: publishes not yet acknowledged survive a restart of the process.
//!
//! The engine appends each publish before sending it and acks it on `rtm/publish/ok`; on the next start
//! [`Spool::pending`] yields what was never acknowledged, in publish order, to be sent again (at-least-once:
//! a publish whose ack was lost in a crash goes out twice).
//!
//! # Layout
//! A directory holding `spool.log` (an append-only log of append and ack records, see `record`), and
//! `spool.lock`, held with an exclusive OS file lock for the life of the [`Spool`] so two processes (or two
//! clients in one process) never share a spool: the second [`Spool::open`] fails with [`SpoolError::Locked`].
//!
//! # Integrity
//! Each record carries its length and a CRC-32. On open, the log is read up to the first record that is
//! truncated (a crash mid-write) or damaged; that record and everything after it are skipped, each such cut
//! reported as a [`SpoolWarning`] (see [`Spool::take_warnings`]), and the file is rewritten clean. A damaged
//! spool never makes `open` fail or panic; only I/O errors, a held lock or an unknown format version do.
//!
//! # Bound
//! The file never exceeds [`SpoolConfig::max_bytes`]. When an append does not fit, the log is first compacted
//! (acknowledged entries dropped); if the pending entries alone leave no room, [`WhenFull`] decides:
//! [`WhenFull::DropOldest`] (the default, like the engine's in-memory publish queue) drops the oldest pending
//! entries, returning their ids so the engine reports each as dropped, and frees a little more than needed
//! (1/16 of the bound) so a full spool is rewritten once per many appends rather than once per append;
//! [`WhenFull::RefuseNew`] returns [`SpoolError::Full`] and keeps what is there.
//!
//! # Compaction
//! Acks are appended as small records. When every entry is acknowledged the file is cut back to its header
//! (cheap, the common case for a healthy connection); when acknowledged bytes exceed both the pending bytes
//! and 1/4 of the bound, the pending entries are rewritten into a new file that atomically replaces the old
//! one (write, fsync, rename, fsync of the directory).
//!
//! # Durability ([`FsyncPolicy`])
//! Every append is written to the file at once (one `write`), so it survives a crash of the process. Surviving
//! a power loss needs an fsync, which costs milliseconds (4 ms measured here, more on phones): by default
//! ([`FsyncPolicy::Periodic`], like Redis's `appendfsync everysec`) the spool fsyncs at most once a second
//! while appends keep coming, and the engine calls [`Spool::sync`] whenever its queue goes idle, so at most the
//! last second of a burst is at risk. Acks are buffered (up to 4 KiB) and written with the next append, on
//! [`Spool::sync`] or on drop, and never fsynced: losing one only means a duplicate send, which at-least-once
//! allows. Measured (`benches/spool.rs`, 300-byte messages, default policy): about 2.3 µs per append + ack.

mod record;

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use record::{DecodeError, HEADER_LEN, Record};

/// File name of the log inside the spool directory.
pub const LOG_FILE: &str = "spool.log";
/// File name of the lock file inside the spool directory.
pub const LOCK_FILE: &str = "spool.lock";
const TMP_FILE: &str = "spool.log.tmp";
/// Smallest accepted [`SpoolConfig::max_bytes`].
pub const MIN_BYTES: u64 = 256;
/// Buffered ack records are written once they reach this size.
const ACK_BUFFER: usize = 4096;

/// One spooled publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The engine's publish id (unique among pending entries).
    pub id: u64,
    /// The channels the message goes to.
    pub channels: Vec<String>,
    /// The message, raw JSON text.
    pub message: String,
}

/// What to do when an append does not fit in the bound, even after compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Drop the oldest pending entries (their ids are returned by [`Spool::append`]).
    #[default]
    DropOldest,
    /// Refuse the new entry with [`SpoolError::Full`].
    RefuseNew,
}

/// When appends are fsynced (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Fsync after every append: nothing is lost on power loss, at the cost of one fsync per publish.
    Always,
    /// Fsync after this many appends since the last fsync (and on [`Spool::sync`]).
    Batched(u32),
    /// Fsync on an append when the last fsync is at least this old (and on [`Spool::sync`]).
    Periodic(Duration),
    /// Only on [`Spool::sync`], on compaction and on drop.
    Manual,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Periodic(Duration::from_secs(1))
    }
}

/// Limits and policies of a spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Upper bound of the log file's size in bytes (header included).
    pub max_bytes: u64,
    /// Policy when an append does not fit.
    pub when_full: WhenFull,
    /// When appends reach the disk.
    pub fsync: FsyncPolicy,
}

impl SpoolConfig {
    /// Defaults ([`WhenFull::DropOldest`], [`FsyncPolicy::Periodic`] every second) with the given bound.
    pub fn new(max_bytes: u64) -> Self {
        SpoolConfig {
            max_bytes,
            when_full: WhenFull::default(),
            fsync: FsyncPolicy::default(),
        }
    }
}

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another [`Spool`] (in this process or another) holds the directory.
    #[error("spool {0} is in use by another client or process")]
    Locked(PathBuf),
    /// The log was written by a newer, unknown format version; it is left untouched.
    #[error("spool {path}: unsupported format version {version}")]
    UnsupportedVersion {
        /// The log file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The bound is below [`MIN_BYTES`].
    #[error("spool bound of {0} bytes is below the minimum of {MIN_BYTES}")]
    BoundTooSmall(u64),
    /// An entry with this id is already pending.
    #[error("a spooled publish with id {0} is already pending")]
    DuplicateId(u64),
    /// The entry alone is larger than the spool's bound (or than the record format allows).
    #[error("publish {id} needs {size} bytes of spool, more than the bound of {max} bytes")]
    EntryTooLarge {
        /// The entry's id.
        id: u64,
        /// The bytes the entry needs on disk.
        size: u64,
        /// The bound.
        max: u64,
    },
    /// The spool is full of pending entries and the policy is [`WhenFull::RefuseNew`].
    #[error("spool full: {pending} pending publishes use {bytes} of {max} bytes")]
    Full {
        /// Pending entries.
        pending: usize,
        /// Bytes they use.
        bytes: u64,
        /// The bound.
        max: u64,
    },
}

/// Result of spool operations.
pub type Result<T, E = SpoolError> = std::result::Result<T, E>;

/// Why part of a spool file was skipped on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptKind {
    /// The file does not start with the spool header.
    BadHeader,
    /// The file ends in the middle of a record.
    Truncated,
    /// A record's length field is larger than the spool's bound.
    BadLength(u32),
    /// A record's checksum does not match.
    CrcMismatch,
    /// A record's checksum matches but its content is invalid.
    BadRecord(&'static str),
}

impl std::fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorruptKind::BadHeader => f.write_str("not a spool file (bad header)"),
            CorruptKind::Truncated => f.write_str("truncated record"),
            CorruptKind::BadLength(n) => write!(f, "record length {n} beyond the bound"),
            CorruptKind::CrcMismatch => f.write_str("checksum mismatch"),
            CorruptKind::BadRecord(why) => write!(f, "invalid record: {why}"),
        }
    }
}

/// A problem found while opening a spool; the engine reports each as an error event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolWarning {
    /// Bytes from `offset` to the end of the file were skipped.
    #[error("spool {path}: {kind} at offset {offset}; skipped the last {skipped_bytes} bytes")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// Bytes skipped (to the end of the file).
        skipped_bytes: u64,
        /// What was wrong.
        kind: CorruptKind,
    },
    /// The file held more pending bytes than the (possibly lowered) bound; the oldest were dropped.
    #[error("spool {path}: over its bound of {max} bytes; dropped the {} oldest pending publishes", dropped.len())]
    OverBound {
        /// The log file.
        path: PathBuf,
        /// The bound.
        max: u64,
        /// Ids of the dropped entries.
        dropped: Vec<u64>,
    },
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// Framed record size on disk.
    size: u64,
}

/// The on-disk publish spool of one client. See the module documentation.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    path: PathBuf,
    config: SpoolConfig,
    file: File,
    /// Held (exclusively locked) for the life of the spool.
    _lock: File,
    /// Pending entries in append order; acked ones become `None` until they reach the front.
    slots: VecDeque<Option<Slot>>,
    /// Absolute position of `slots[0]`.
    base: u64,
    /// id → absolute position in `slots`.
    index: HashMap<u64, u64>,
    /// Sum of the framed sizes of pending entries.
    live_bytes: u64,
    /// Size of the log file.
    file_len: u64,
    unsynced: u32,
    last_sync: Instant,
    /// Ack records not yet written (see the module documentation).
    acks: Vec<u8>,
    /// A failed write could not be undone: the file must be rewritten before the next write.
    needs_rewrite: bool,
    warnings: Vec<SpoolWarning>,
    scratch: Vec<u8>,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` with the default policies and a bound of `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        Spool::open_with(dir, SpoolConfig::new(max_bytes))
    }

    /// Opens (creating if needed) the spool in `dir`. Damage found in the log is skipped and reported
    /// through [`Spool::take_warnings`].
    pub fn open_with(dir: &Path, config: SpoolConfig) -> Result<Spool> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        if config.max_bytes < MIN_BYTES {
            return Err(SpoolError::BoundTooSmall(config.max_bytes));
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let path = dir.join(LOG_FILE);
        // A leftover of a compaction interrupted before its rename: the log itself is still whole.
        let _ = fs::remove_file(dir.join(TMP_FILE));

        let mut loaded = Loaded::default();
        let existing = match File::open(&path) {
            Ok(f) => {
                loaded = load(f, &path, config.max_bytes)?;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(&path)(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            path,
            config,
            file,
            _lock: lock,
            slots: VecDeque::new(),
            base: 0,
            index: HashMap::new(),
            live_bytes: 0,
            file_len: loaded.file_len,
            unsynced: 0,
            last_sync: Instant::now(),
            acks: Vec::new(),
            needs_rewrite: !existing || loaded.damaged,
            warnings: loaded.warnings,
            scratch: Vec::new(),
        };
        for entry in loaded.entries.into_values_ordered() {
            spool.push_slot(entry);
        }
        let max_live = spool.config.max_bytes.saturating_sub(HEADER_LEN);
        let dropped = spool.drop_oldest_until(max_live);
        if !dropped.is_empty() {
            spool.needs_rewrite = true;
            let (path, max) = (spool.path.clone(), spool.config.max_bytes);
            spool
                .warnings
                .push(SpoolWarning::OverBound { path, max, dropped });
        }
        if spool.needs_rewrite || spool.dead_bytes() > spool.live_bytes {
            spool.rewrite(None)?;
        }
        Ok(spool)
    }

    /// Problems found when the spool was opened (each to be reported once); empties the list.
    pub fn take_warnings(&mut self) -> Vec<SpoolWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// Records `entry` as pending. Returns the ids of the oldest entries dropped to make room (only with
    /// [`WhenFull::DropOldest`]; usually empty). On error nothing changed.
    pub fn append(&mut self, entry: &Entry) -> Result<Vec<u64>> {
        if self.index.contains_key(&entry.id) {
            return Err(SpoolError::DuplicateId(entry.id));
        }
        let size = record::append_len(entry);
        let max = self.config.max_bytes;
        let too_large = || SpoolError::EntryTooLarge {
            id: entry.id,
            size,
            max,
        };
        if HEADER_LEN + size > max {
            return Err(too_large());
        }
        self.scratch.clear();
        record::encode_append(entry, &mut self.scratch).map_err(|_| too_large())?;

        let mut dropped = Vec::new();
        if self.needs_rewrite || self.file_len + self.acks.len() as u64 + size > max {
            // Room is needed: compaction alone must leave some slack, or a full spool would be rewritten
            // on every append.
            let slack = if HEADER_LEN + size + max / 16 <= max {
                max / 16
            } else {
                0
            };
            let target = max - slack - HEADER_LEN - size;
            if self.live_bytes > target {
                match self.config.when_full {
                    WhenFull::RefuseNew if HEADER_LEN + self.live_bytes + size > max => {
                        return Err(SpoolError::Full {
                            pending: self.len(),
                            bytes: self.live_bytes,
                            max,
                        });
                    }
                    WhenFull::RefuseNew => {}
                    WhenFull::DropOldest => dropped = self.plan_drops(target),
                }
            }
            let record = std::mem::take(&mut self.scratch);
            let result = self.rewrite_with(dropped.len(), Some(&record));
            self.scratch = record;
            result?;
            for _ in 0..dropped.len() {
                self.pop_oldest();
            }
            self.push_slot(entry.clone());
            return Ok(dropped);
        }

        // Buffered acks go out in the same write.
        let buffered = self.acks.len();
        self.acks.extend_from_slice(&self.scratch);
        if let Err(source) = self.file.write_all(&self.acks) {
            self.acks.truncate(buffered);
            // Undo a partial write so later records are not appended behind garbage.
            if self.file.set_len(self.file_len).is_err() {
                self.needs_rewrite = true;
            }
            return Err(self.io(source));
        }
        self.file_len += self.acks.len() as u64;
        self.acks.clear();
        self.push_slot(entry.clone());
        self.unsynced += 1;
        let due = match self.config.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Batched(n) => self.unsynced >= n.max(1),
            FsyncPolicy::Periodic(every) => self.last_sync.elapsed() >= every,
            FsyncPolicy::Manual => false,
        };
        if due {
            self.sync()?;
        }
        Ok(dropped)
    }

    /// Marks the entry `id` acknowledged (unknown ids are ignored). An I/O error here leaves the entry
    /// acknowledged in memory; at worst it is sent again after a restart.
    pub fn ack(&mut self, id: u64) -> Result<()> {
        let Some(pos) = self.index.remove(&id) else {
            return Ok(());
        };
        if let Some(slot) = self
            .slots
            .get_mut((pos - self.base) as usize)
            .and_then(Option::take)
        {
            self.live_bytes -= slot.size;
        }
        self.trim_front();
        if self.needs_rewrite {
            return self.rewrite(None);
        }
        if self.index.is_empty() {
            // Everything is acknowledged: cutting the file back to its header is the cheapest compaction.
            self.acks.clear();
            return match self.file.set_len(HEADER_LEN) {
                Ok(()) => {
                    self.file_len = HEADER_LEN;
                    Ok(())
                }
                Err(source) => {
                    self.needs_rewrite = true;
                    Err(self.io(source))
                }
            };
        }
        let buffered = self.acks.len() as u64;
        let dead = self.dead_bytes() + buffered + record::ACK_LEN;
        if dead > self.live_bytes && dead >= self.config.max_bytes / 4 {
            return self.rewrite(None);
        }
        if self.file_len + buffered + record::ACK_LEN > self.config.max_bytes {
            return self.rewrite(None);
        }
        record::encode_ack(id, &mut self.acks);
        if self.acks.len() >= ACK_BUFFER {
            return self.flush_acks();
        }
        Ok(())
    }

    /// Writes the buffered ack records.
    fn flush_acks(&mut self) -> Result<()> {
        if self.acks.is_empty() {
            return Ok(());
        }
        if let Err(source) = self.file.write_all(&self.acks) {
            // The acks live on in memory; the next operation rewrites the log from it.
            self.acks.clear();
            let _ = self.file.set_len(self.file_len);
            self.needs_rewrite = true;
            return Err(self.io(source));
        }
        self.file_len += self.acks.len() as u64;
        self.acks.clear();
        Ok(())
    }

    /// Pending entries, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten().map(|s| &s.entry)
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }

    /// An id above every pending one: where an engine restarting on this spool starts numbering.
    pub fn next_free_id(&self) -> u64 {
        self.index.keys().max().map_or(1, |m| m.saturating_add(1))
    }

    /// Number of pending entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Size of the log file in bytes, buffered acks included (always at most the bound).
    pub fn bytes(&self) -> u64 {
        self.file_len + self.acks.len() as u64
    }

    /// Bytes the pending entries take in the log.
    pub fn pending_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The spool's configuration.
    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Forces appends written so far to stable storage (the engine calls this when its queue goes idle).
    /// Buffered acks are written too (without fsync: they need none).
    pub fn sync(&mut self) -> Result<()> {
        if self.needs_rewrite {
            return self.rewrite(None);
        }
        self.flush_acks()?;
        if self.unsynced > 0 {
            self.file.sync_data().map_err(|e| self.io(e))?;
            self.unsynced = 0;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn io(&self, source: io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Bytes of the file (as written) that no pending entry needs.
    fn dead_bytes(&self) -> u64 {
        self.file_len.saturating_sub(HEADER_LEN + self.live_bytes)
    }

    fn push_slot(&mut self, entry: Entry) {
        let size = record::append_len(&entry);
        let pos = self.base + self.slots.len() as u64;
        self.index.insert(entry.id, pos);
        self.live_bytes += size;
        self.slots.push_back(Some(Slot { entry, size }));
    }

    fn trim_front(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// Removes the oldest pending entry from memory.
    fn pop_oldest(&mut self) -> Option<u64> {
        self.trim_front();
        let slot = self.slots.pop_front()??;
        self.base += 1;
        self.index.remove(&slot.entry.id);
        self.live_bytes -= slot.size;
        self.trim_front();
        Some(slot.entry.id)
    }

    /// Ids of the oldest entries to drop so that the pending bytes fit in `target`.
    fn plan_drops(&self, target: u64) -> Vec<u64> {
        let mut live = self.live_bytes;
        let mut ids = Vec::new();
        for slot in self.slots.iter().flatten() {
            if live <= target {
                break;
            }
            live -= slot.size;
            ids.push(slot.entry.id);
        }
        ids
    }

    fn drop_oldest_until(&mut self, target: u64) -> Vec<u64> {
        let mut ids = Vec::new();
        while self.live_bytes > target {
            match self.pop_oldest() {
                Some(id) => ids.push(id),
                None => break,
            }
        }
        ids
    }

    fn rewrite(&mut self, extra: Option<&[u8]>) -> Result<()> {
        self.rewrite_with(0, extra)
    }

    /// Writes a new log holding the pending entries (less the `skip` oldest) and `extra`, then atomically
    /// replaces the old one. On error the old log and the in-memory state are unchanged.
    fn rewrite_with(&mut self, skip: usize, extra: Option<&[u8]>) -> Result<()> {
        let tmp = self.dir.join(TMP_FILE);
        let mut buf = Vec::with_capacity((self.live_bytes as usize).min(1 << 20) + 64);
        buf.extend_from_slice(&record::header());
        let written = (|| -> io::Result<()> {
            let mut out = File::create(&tmp)?;
            for slot in self.slots.iter().flatten().skip(skip) {
                // Entries in memory were encodable when appended, so this cannot fail.
                let _ = record::encode_append(&slot.entry, &mut buf);
                if buf.len() >= 1 << 16 {
                    out.write_all(&buf)?;
                    buf.clear();
                }
            }
            if let Some(extra) = extra {
                buf.extend_from_slice(extra);
            }
            out.write_all(&buf)?;
            out.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            sync_dir(&self.dir)
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(SpoolError::Io { path: tmp, source });
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        let meta = file.metadata().map_err(|e| self.io(e))?;
        self.file = file;
        self.file_len = meta.len();
        self.unsynced = 0;
        self.last_sync = Instant::now();
        self.acks.clear();
        self.needs_rewrite = false;
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Pending entries in first-append order, keyed by id while loading.
#[derive(Default)]
struct LoadedEntries {
    order: Vec<u64>,
    by_id: HashMap<u64, Entry>,
}

impl LoadedEntries {
    fn into_values_ordered(mut self) -> impl Iterator<Item = Entry> {
        self.order
            .into_iter()
            .filter_map(move |id| self.by_id.remove(&id))
    }
}

#[derive(Default)]
struct Loaded {
    entries: LoadedEntries,
    file_len: u64,
    damaged: bool,
    warnings: Vec<SpoolWarning>,
}

/// Reads a log, stopping at the first bad record. Memory stays bounded by the pending entries (at most the
/// spool's bound, plus one record).
fn load(file: File, path: &Path, max_bytes: u64) -> Result<Loaded> {
    let io_err = |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut loaded = Loaded {
        file_len,
        ..Loaded::default()
    };
    let corrupt = |loaded: &mut Loaded, offset: u64, kind: CorruptKind| {
        loaded.damaged = true;
        loaded.warnings.push(SpoolWarning::Corrupt {
            path: path.to_path_buf(),
            offset,
            skipped_bytes: file_len.saturating_sub(offset),
            kind,
        });
    };

    let mut header = [0u8; HEADER_LEN as usize];
    let n = read_full(&mut reader, &mut header).map_err(io_err)?;
    if n == 0 {
        loaded.damaged = true; // an empty file: rewrite it with a header, nothing to report
        return Ok(loaded);
    }
    let Some(version) = record::header_version(&header).filter(|_| n == header.len()) else {
        corrupt(&mut loaded, 0, CorruptKind::BadHeader);
        return Ok(loaded);
    };
    if version != record::VERSION {
        return Err(SpoolError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }

    let mut offset = HEADER_LEN;
    let mut buf = Vec::new();
    loop {
        let mut frame = [0u8; record::FRAME_LEN];
        let n = read_full(&mut reader, &mut frame).map_err(io_err)?;
        if n == 0 {
            break;
        }
        buf.clear();
        buf.extend_from_slice(&frame[..n]);
        if n == frame.len() {
            let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            if u64::from(len) <= max_bytes {
                buf.resize(record::FRAME_LEN + len as usize, 0);
                let got = read_full(&mut reader, &mut buf[record::FRAME_LEN..]).map_err(io_err)?;
                buf.truncate(record::FRAME_LEN + got);
            }
        }
        let kind = match record::decode(&buf, max_bytes) {
            Ok((Record::Append(entry), size)) if !loaded.entries.by_id.contains_key(&entry.id) => {
                loaded.entries.order.push(entry.id);
                loaded.entries.by_id.insert(entry.id, entry);
                offset += size as u64;
                continue;
            }
            Ok((Record::Append(_), _)) => CorruptKind::BadRecord("duplicate pending id"),
            Ok((Record::Ack(id), size)) => {
                loaded.entries.by_id.remove(&id);
                offset += size as u64;
                continue;
            }
            Err(DecodeError::Truncated) => CorruptKind::Truncated,
            Err(DecodeError::BadLength(n)) => CorruptKind::BadLength(n),
            Err(DecodeError::CrcMismatch) => CorruptKind::CrcMismatch,
            Err(DecodeError::BadPayload(why)) => CorruptKind::BadRecord(why),
        };
        corrupt(&mut loaded, offset, kind);
        break;
    }
    Ok(loaded)
}

/// Reads until `buf` is full or the end of the input; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
