//! Log set-up helpers. The SDK logs through the `log` facade; the application picks the
//! logger. On Android, `init_android` routes logs to logcat.

/// Route `log` records to logcat with the tag `cobra` (Android only). Safe to call twice.
#[cfg(target_os = "android")]
pub fn init_android(level: log::LevelFilter) {
    android_logger::init_once(
        android_logger::Config::default()
            .with_tag("cobra")
            .with_max_level(level),
    );
}

/// A `log::Log` that forwards every record to a callback, for platforms whose native logger
/// lives in another language (Apple's `os_log` through Swift, a game engine's console).
pub struct CallbackLogger<F: Fn(log::Level, &str, &str) + Send + Sync + 'static> {
    callback: F,
    level: log::LevelFilter,
}

impl<F: Fn(log::Level, &str, &str) + Send + Sync + 'static> CallbackLogger<F> {
    /// Install a logger calling `callback(level, target, message)` for records up to `level`.
    /// Fails if a logger is already installed.
    pub fn install(level: log::LevelFilter, callback: F) -> Result<(), log::SetLoggerError> {
        // Leaked once: a logger lives for the whole process.
        log::set_logger(Box::leak(Box::new(Self { callback, level })))?;
        log::set_max_level(level);
        Ok(())
    }
}

impl<F: Fn(log::Level, &str, &str) + Send + Sync + 'static> log::Log for CallbackLogger<F> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            (self.callback)(record.level(), record.target(), &record.args().to_string());
        }
    }
    fn flush(&self) {}
}
