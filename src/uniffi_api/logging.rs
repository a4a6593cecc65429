//! SDK logs for the host platform: `set_log_sink` forwards `log` records to a foreign `LogSink`
//! (how Swift reaches `os_log`: the `oslog` crate needs the Apple SDK to build), and
//! `init_android_logging` sends them to logcat.

use std::cell::Cell;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use super::error::CobraError;

/// A log level, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Connection life cycle.
    Info,
    /// Details.
    Debug,
    /// Every PDU.
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

impl From<log::Level> for LogLevel {
    fn from(l: log::Level) -> Self {
        match l {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Trace => LogLevel::Trace,
        }
    }
}

/// Receives the SDK's log records, on whichever thread logged (mostly the engine thread).
/// Keep it quick; an exception thrown from it is swallowed.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One record: its level, its target (the Rust module, e.g. `cobra::engine`) and its text.
    fn log(&self, level: LogLevel, target: String, message: String);
}

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
/// Whether the forwarding logger owns the process-wide `log` logger (set once).
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// Set while a record is being forwarded, so a sink that logs through `log` itself (or a
    /// binding runtime that does) cannot recurse forever.
    static FORWARDING: Cell<bool> = const { Cell::new(false) };
}

fn forward(level: log::Level, target: &str, message: &str) {
    if FORWARDING.with(|f| f.replace(true)) {
        return;
    }
    let sink = SINK.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(sink) = sink {
        // A foreign exception surfaces as a panic; a log call must never take the engine down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sink.log(level.into(), target.to_string(), message.to_string())
        }));
    }
    FORWARDING.with(|f| f.set(false));
}

/// Sends the SDK's logs up to `max_level` to `sink`, replacing any previous sink. Fails if
/// another logger already owns the process (`init_android_logging`, or the app's own).
#[uniffi::export]
pub(super) fn set_log_sink(sink: Arc<dyn LogSink>, max_level: LogLevel) -> Result<(), CobraError> {
    let owned = *INSTALLED.get_or_init(|| {
        crate::logging::CallbackLogger::install(log::LevelFilter::Trace, forward).is_ok()
    });
    if !owned {
        return Err(CobraError::InvalidArgument {
            reason: "another logger is already installed in this process".into(),
        });
    }
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    log::set_max_level(max_level.into());
    Ok(())
}

/// Stops forwarding logs and releases the sink.
#[uniffi::export]
pub(super) fn remove_log_sink() {
    if INSTALLED.get() == Some(&true) {
        log::set_max_level(log::LevelFilter::Off);
    }
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = None;
}

/// Sends the SDK's logs up to `max_level` to logcat (tag `cobra`). Returns false, doing nothing,
/// off Android. Exported on every platform so the generated bindings are the same everywhere.
#[uniffi::export]
pub(super) fn init_android_logging(max_level: LogLevel) -> bool {
    #[cfg(target_os = "android")]
    {
        crate::logging::init_android(max_level.into());
        true
    }
    #[cfg(not(target_os = "android"))]
    {
        let _ = max_level;
        false
    }
}
