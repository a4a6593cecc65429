//! Status codes and the thread-local last-error message.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

/// The result of every fallible `cobra_` function. `COBRA_STATUS_OK` (0) is success; every other value is an
/// error whose human-readable description is available from `cobra_last_error_message()` on the same thread.
///
/// The numeric values are part of the ABI and never change; new codes are only ever appended.
/// cbindgen:rename-all=prefix:COBRA_STATUS_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum CobraStatus {
    /// Success.
    OK = 0,
    /// An argument is invalid: a NULL pointer where one is required, a string that is not UTF-8, a message
    /// that is not valid JSON, an out-of-range number.
    INVALID_ARGUMENT = 1,
    /// The handle is NULL, was already freed, or is of the wrong type.
    INVALID_HANDLE = 2,
    /// The call is not allowed from this thread: a blocking call or `cobra_client_free` made from inside
    /// the client's own event callback, where it would deadlock.
    WRONG_THREAD = 3,
    /// The client was disconnected or shut down and cannot serve this request.
    CLOSED = 4,
    /// A request did not get its answer in time.
    TIMEOUT = 5,
    /// The server answered with an error (the message holds its `error` code and `reason`).
    SERVER = 6,
    /// The bounded publish queue is full and the configured policy refuses new messages.
    QUEUE_FULL = 7,
    /// The configuration is invalid (bad endpoint URL, inconsistent limits, unreadable CA file...).
    CONFIG = 8,
    /// The server broke the protocol.
    PROTOCOL = 9,
    /// A Rust panic was caught at the boundary. The library is still usable, but this is a bug: please
    /// report it with the message.
    PANIC = 10,
    /// Any other internal error.
    INTERNAL = 11,
    /// A local I/O error (starting the engine thread, opening the spool directory...).
    IO = 12,
}

/// An error on its way out through the C ABI: a status plus the message stored for
/// `cobra_last_error_message()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FfiError {
    pub(crate) status: CobraStatus,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(status: CobraStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(CobraStatus::INVALID_ARGUMENT, message)
    }

    pub(crate) fn null(name: &str) -> Self {
        Self::invalid_argument(format!("`{name}` must not be NULL"))
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

/// The value `cases` pairs with the C enum value `value` (the C side passes enums as plain `int`s, so any
/// number can arrive); another number is an invalid argument, "unknown `what` N".
pub(crate) fn from_c_enum<T: Copy>(value: i32, what: &str, cases: &[(i32, T)]) -> FfiResult<T> {
    cases
        .iter()
        .find(|(c, _)| *c == value)
        .map(|&(_, t)| t)
        .ok_or_else(|| FfiError::invalid_argument(format!("unknown {what} {value}")))
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error (interior NULs are replaced, so the text is never cut short
/// silently).
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    // `try_with`: during thread teardown the slot may already be gone; losing the message then is harmless.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

/// The pointer returned by `cobra_last_error_message`: valid until the next failing call on this thread.
pub(crate) fn last_error_ptr() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(EMPTY.as_ptr().cast())
}

/// A static, NUL-terminated name for a status.
pub(crate) fn status_name(status: CobraStatus) -> &'static [u8] {
    match status {
        CobraStatus::OK => b"ok\0",
        CobraStatus::INVALID_ARGUMENT => b"invalid argument\0",
        CobraStatus::INVALID_HANDLE => b"invalid handle\0",
        CobraStatus::WRONG_THREAD => b"not allowed on this thread\0",
        CobraStatus::CLOSED => b"client closed\0",
        CobraStatus::TIMEOUT => b"timeout\0",
        CobraStatus::SERVER => b"server error\0",
        CobraStatus::QUEUE_FULL => b"queue full\0",
        CobraStatus::CONFIG => b"invalid configuration\0",
        CobraStatus::PROTOCOL => b"protocol error\0",
        CobraStatus::PANIC => b"internal panic\0",
        CobraStatus::INTERNAL => b"internal error\0",
        CobraStatus::IO => b"I/O error\0",
    }
}

impl From<crate::Error> for FfiError {
    fn from(err: crate::Error) -> Self {
        use crate::Error as E;
        #[allow(unreachable_patterns)]
        // the SDK's error is non_exhaustive: new variants land as INTERNAL
        let status = match &err {
            E::InvalidConfig { .. } => CobraStatus::CONFIG,
            E::InvalidArgument(_) | E::MessageTooLarge { .. } => CobraStatus::INVALID_ARGUMENT,
            E::QueueFull { .. } => CobraStatus::QUEUE_FULL,
            E::Timeout(_) => CobraStatus::TIMEOUT,
            E::Server { .. } => CobraStatus::SERVER,
            E::Shutdown | E::Cancelled(_) => CobraStatus::CLOSED,
            E::Io(_) => CobraStatus::IO,
            E::Protocol(_) => CobraStatus::PROTOCOL,
            _ => CobraStatus::INTERNAL,
        };
        FfiError::new(status, err.to_string())
    }
}
