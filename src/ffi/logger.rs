//! `cobra_set_log_callback`: the SDK's logs (the `log` facade) forwarded to the application.

use std::ffi::{c_char, c_void};
use std::sync::OnceLock;

use super::guard::guard;
use super::status::{CobraStatus, FfiError, from_c_enum};
use super::strings::to_c_string;

/// Severity of a log record (`cobra_set_log_callback`).
/// cbindgen:rename-all=prefix:COBRA_LOG_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraLogLevel {
    /// No logs.
    OFF = 0,
    /// Errors.
    ERROR = 1,
    /// Warnings.
    WARN = 2,
    /// Connection life cycle.
    INFO = 3,
    /// Details.
    DEBUG = 4,
    /// Everything, including each frame.
    TRACE = 5,
}

/// Receives one log record: its level, its target (the module, e.g. "cobra::engine") and message, both
/// UTF-8 and valid only during the call, and the `user_data` given to `cobra_set_log_callback`. Runs on
/// whichever thread logged (usually an engine thread); it must be thread-safe and quick, and must not call
/// `cobra_set_log_callback`.
pub type CobraLogCallback = Option<
    unsafe extern "C" fn(
        level: CobraLogLevel,
        target: *const c_char,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;

/// The callback and its `user_data`, shared with every logging thread.
#[derive(Clone, Copy)]
struct LogTarget {
    callback: unsafe extern "C" fn(CobraLogLevel, *const c_char, *const c_char, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: `cobra_set_log_callback` documents that the callback is called from any thread with this
// `user_data`; by installing it the caller promises that is sound. Rust never dereferences `user_data`.
unsafe impl Send for LogTarget {}
// SAFETY: as above; the pointer is only copied.
unsafe impl Sync for LogTarget {}

/// The process-wide logger handed to the `log` facade: a static, so installing it allocates nothing
/// (and a refused second installation leaks nothing).
struct CLogger {
    target: OnceLock<LogTarget>,
}

static LOGGER: CLogger = CLogger {
    target: OnceLock::new(),
};

impl log::Log for CLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(target) = self.target.get() else {
            return;
        };
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => CobraLogLevel::ERROR,
            log::Level::Warn => CobraLogLevel::WARN,
            log::Level::Info => CobraLogLevel::INFO,
            log::Level::Debug => CobraLogLevel::DEBUG,
            log::Level::Trace => CobraLogLevel::TRACE,
        };
        let module = to_c_string(record.target());
        let message = to_c_string(&record.args().to_string());
        // SAFETY: the registered non-NULL callback, called as documented with its own `user_data`; both
        // strings live until it returns.
        unsafe { (target.callback)(level, module.as_ptr(), message.as_ptr(), target.user_data) };
    }

    fn flush(&self) {}
}

/// Installs a process-wide log callback for records up to `max_level` (a `cobra_log_level_t`). It can be
/// installed once per process (the Rust `log` facade allows one logger): a second call returns
/// `COBRA_STATUS_INVALID_ARGUMENT`, as does a process where other Rust code installed a logger first.
/// Without it the SDK logs nowhere.
///
/// Ownership: `user_data` must stay valid for the rest of the process.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_set_log_callback(
    max_level: i32,
    callback: CobraLogCallback,
    user_data: *mut c_void,
) -> CobraStatus {
    guard(|| {
        let callback = callback.ok_or_else(|| FfiError::null("callback"))?;
        let filter = from_c_enum(
            max_level,
            "log level",
            &[
                (CobraLogLevel::OFF as i32, log::LevelFilter::Off),
                (CobraLogLevel::ERROR as i32, log::LevelFilter::Error),
                (CobraLogLevel::WARN as i32, log::LevelFilter::Warn),
                (CobraLogLevel::INFO as i32, log::LevelFilter::Info),
                (CobraLogLevel::DEBUG as i32, log::LevelFilter::Debug),
                (CobraLogLevel::TRACE as i32, log::LevelFilter::Trace),
            ],
        )?;
        LOGGER
            .target
            .set(LogTarget {
                callback,
                user_data,
            })
            .map_err(|_| {
                FfiError::invalid_argument("a log callback is already installed in this process")
            })?;
        log::set_logger(&LOGGER).map_err(|_| {
            FfiError::invalid_argument("another logger is already installed in this process")
        })?;
        log::set_max_level(filter);
        Ok(())
    })
}
