//! The C ABI of the SDK (`include/cobra.h`, generated from this module by cbindgen).
//!
//! Design, after sentry-native's `sentry.h`:
//! - opaque handles (`cobra_config_t`, `cobra_client_t`, `cobra_metrics_t`) that are registry tokens,
//!   never pointers to Rust memory ([`registry`]), so NULL, stale, doubly freed and wrongly typed handles
//!   are all reported as `COBRA_STATUS_INVALID_HANDLE`;
//! - every function returns a `cobra_status_t` (or a value with a documented fallback) and leaves a
//!   thread-local message for `cobra_last_error_message()`;
//! - every body runs in [`guard::guard`]: no panic crosses the boundary;
//! - strings are UTF-8, borrowed for the call and copied, with `_n` variants taking a length; strings
//!   handed to the caller are freed with `cobra_string_free`;
//! - events reach a C callback with `void *user_data` on the client's engine thread, as a flat typed
//!   `cobra_event_t` valid only during the callback.
//!
//! This is the only module of the crate with `unsafe` code; each block says why it is sound.

// The `unsafe extern "C"` functions share one pointer contract (NULL or valid for the call; strings
// NUL-terminated or with the given length), stated once in the header's conventions rather than in a
// `# Safety` section on each function.
#![allow(clippy::missing_safety_doc)]

// Internals.
mod guard;
mod registry;
mod status;
mod strings;

// One module per group of the header, in the order they appear there (blank lines keep rustfmt from
// sorting them).
mod config;

mod event;

mod client;

mod metrics;

mod logger;

use std::ffi::c_char;

pub use client::{CobraClient, CobraClientState};
pub use config::{CobraConfig, CobraDelivery, CobraOverflowPolicy};
pub use event::{CobraErrorKind, CobraEvent, CobraEventCallback, CobraEventKind};
pub use logger::{CobraLogCallback, CobraLogLevel};
pub use metrics::{CobraMetrics, CobraMetricsStats, CobraPushOutcome};
pub use status::CobraStatus;

/// The message describing the most recent failed `cobra_` call on the calling thread ("" if none).
///
/// Ownership: the string belongs to the library; it stays valid until the next failing `cobra_` call on
/// the same thread. Copy it to keep it. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cobra_last_error_message() -> *const c_char {
    guard::guard_value(c"internal error".as_ptr(), || Ok(status::last_error_ptr()))
}

/// A short static description of `status` (e.g. "invalid handle"); "unknown status" for a value that is
/// not a `cobra_status_t`.
///
/// Ownership: static storage; never free it. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cobra_status_str(status: i32) -> *const c_char {
    use CobraStatus as S;
    const ALL: [S; 13] = [
        S::OK,
        S::INVALID_ARGUMENT,
        S::INVALID_HANDLE,
        S::WRONG_THREAD,
        S::CLOSED,
        S::TIMEOUT,
        S::SERVER,
        S::QUEUE_FULL,
        S::CONFIG,
        S::PROTOCOL,
        S::PANIC,
        S::INTERNAL,
        S::IO,
    ];
    guard::guard_value(c"unknown status".as_ptr(), || {
        Ok(ALL
            .iter()
            .find(|s| **s as i32 == status)
            .map_or(c"unknown status".as_ptr(), |s| {
                status::status_name(*s).as_ptr().cast()
            }))
    })
}

/// The library version, e.g. "0.1.0".
///
/// Ownership: static storage; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn cobra_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    guard::guard_value(VERSION.as_ptr().cast(), || Ok(VERSION.as_ptr().cast()))
}

/// The number of live handles of each type (`cobra_live_handles`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CobraHandleCounts {
    /// Configs created and neither freed nor handed to `cobra_client_new`.
    pub configs: usize,
    /// Clients created and not yet freed.
    pub clients: usize,
    /// Metrics publishers created and not yet freed.
    pub metrics: usize,
}

/// Writes the number of live handles of each type to `*out_counts`: what a binding or a test checks to
/// find leaked handles (e.g. the C# `SafeHandle`s of the Unity package). The counts are process-wide and
/// a snapshot: other threads may create or free handles at the same time. A freed client is no longer
/// counted even if its engine thread is still finishing a call made on another thread.
///
/// Ownership: `out_counts` is written, not kept.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cobra_live_handles(out_counts: *mut CobraHandleCounts) -> CobraStatus {
    guard::guard(|| {
        if out_counts.is_null() {
            return Err(status::FfiError::null("out_counts"));
        }
        let counts = CobraHandleCounts {
            configs: config::CONFIGS.len(),
            clients: client::CLIENTS.len(),
            metrics: metrics::METRICS.len(),
        };
        // SAFETY: checked non-NULL above; writable per the documented contract.
        unsafe { strings::write_out(out_counts, counts) };
        Ok(())
    })
}

/// Frees a string the library handed to the caller (e.g. by `cobra_client_read`). NULL is a no-op.
///
/// Ownership: consumes `s`, which must come from this library and not have been freed already (strings
/// cannot be checked for double frees).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cobra_string_free(s: *mut c_char) {
    // The status is dropped: this function returns nothing, and freeing cannot fail in a detectable way.
    let _ = guard::guard(|| {
        if !s.is_null() {
            // SAFETY: per the contract, `s` came from `CString::into_raw` in this library and is freed once.
            drop(unsafe { std::ffi::CString::from_raw(s) });
        }
        Ok(())
    });
}
