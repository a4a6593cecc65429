//! The panic guard every `extern "C"` function runs its body in.
//!
//! A Rust panic unwinding into C is undefined behaviour, so each entry point catches it here and turns it
//! into `COBRA_STATUS_PANIC` (the release profile keeps `panic = "unwind"` for exactly this reason).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::{CobraStatus, FfiError, FfiResult, set_last_error};

/// Runs `body`; an error or a panic becomes a status and this thread's last-error message.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult<()>) -> CobraStatus {
    // AssertUnwindSafe: after a panic we never touch the possibly half-updated state again through this
    // call; shared state behind locks recovers from poisoning explicitly (see `registry`).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CobraStatus::OK,
        Ok(Err(err)) => fail(&err),
        Err(payload) => fail(&panic_error(payload.as_ref())),
    }
}

/// Like [`guard`] for functions that return a value directly: `fallback` on error or panic.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> FfiResult<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => {
            fail(&err);
            fallback
        }
        Err(payload) => {
            fail(&panic_error(payload.as_ref()));
            fallback
        }
    }
}

fn fail(err: &FfiError) -> CobraStatus {
    set_last_error(&err.message);
    err.status
}

pub(crate) fn panic_error(payload: &(dyn Any + Send)) -> FfiError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned());
    FfiError::new(
        CobraStatus::PANIC,
        format!("internal panic caught at the C boundary: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::cobra_last_error_message;
    use std::ffi::CStr;

    fn last_error() -> String {
        // SAFETY: the library returns a valid NUL-terminated string, valid until the next failing call.
        unsafe { CStr::from_ptr(cobra_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom in the engine"));
        assert_eq!(status, CobraStatus::PANIC);
        assert!(
            last_error().contains("boom in the engine"),
            "{}",
            last_error()
        );
        let value = guard_value(7, || -> FfiResult<i32> {
            panic!("{}", String::from("owned payload"))
        });
        assert_eq!(value, 7);
        assert!(last_error().contains("owned payload"));
    }

    #[test]
    fn errors_set_the_thread_local_message_and_success_keeps_it() {
        assert_eq!(
            guard(|| Err(FfiError::invalid_argument("bad thing"))),
            CobraStatus::INVALID_ARGUMENT
        );
        assert_eq!(last_error(), "bad thing");
        assert_eq!(guard(|| Ok(())), CobraStatus::OK);
        assert_eq!(last_error(), "bad thing");
        // Other threads have their own message.
        let other = std::thread::spawn(last_error).join().expect("thread");
        assert_eq!(other, "");
        // Interior NULs are kept visible instead of cutting the message short.
        guard(|| Err(FfiError::invalid_argument("a\0b")));
        assert_eq!(last_error(), "a\u{FFFD}b");
    }
}
