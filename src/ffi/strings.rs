//! Strings crossing the boundary: UTF-8 in, UTF-8 out, never trusted.

use std::ffi::{CStr, CString, c_char};

use super::status::{FfiError, FfiResult};

/// Borrows a required NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn required<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and lifetime.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    utf8(bytes, name)
}

/// Borrows an optional NUL-terminated UTF-8 string (NULL → `None`).
///
/// # Safety
/// As for [`required`].
pub(crate) unsafe fn optional<'a>(ptr: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { required(ptr, name) }.map(Some)
}

/// Borrows a required string given by pointer and length (no NUL needed; interior NULs are kept).
/// A NULL pointer is accepted only with a length of 0.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn required_n<'a>(
    ptr: *const c_char,
    len: usize,
    name: &str,
) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return if len == 0 {
            Ok("")
        } else {
            Err(FfiError::null(name))
        };
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid_argument(format!(
            "`{name}`: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, `len` bytes readable per the caller's contract, and `len <= isize::MAX`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    utf8(bytes, name)
}

fn utf8<'a>(bytes: &'a [u8], name: &str) -> FfiResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::invalid_argument(format!(
            "`{name}` is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// An owned C string for the caller (freed with `cobra_string_free`). Interior NULs cannot be represented
/// in a C string; they are replaced by U+FFFD rather than silently truncating.
pub(crate) fn to_c_string(text: &str) -> CString {
    match CString::new(text) {
        Ok(s) => s,
        Err(_) => CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

/// Writes `value` to a caller-provided out-pointer, if one was given.
///
/// # Safety
/// `out` must be NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { out.write(value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::CobraStatus;

    #[test]
    fn strings_are_checked() {
        // SAFETY: every pointer below comes from a live Rust buffer of the given length.
        unsafe {
            assert_eq!(required(c"hé".as_ptr(), "s").expect("utf-8"), "hé");
            assert_eq!(
                required(std::ptr::null(), "s").unwrap_err().status,
                CobraStatus::INVALID_ARGUMENT
            );
            assert_eq!(optional(std::ptr::null(), "s").expect("NULL is None"), None);
            assert!(
                required(c"\xff".as_ptr(), "s")
                    .unwrap_err()
                    .message
                    .contains("UTF-8")
            );
            let bytes = b"abcdef";
            assert_eq!(
                required_n(bytes.as_ptr().cast(), 3, "s").expect("prefix"),
                "abc"
            );
            assert_eq!(required_n(std::ptr::null(), 0, "s").expect("empty"), "");
            assert!(required_n(std::ptr::null(), 1, "s").is_err());
            assert_eq!(
                required_n(b"a\0b".as_ptr().cast(), 3, "s").expect("interior NUL"),
                "a\0b"
            );
        }
        assert_eq!(to_c_string("a\0b").to_str().expect("utf-8"), "a\u{FFFD}b");
    }
}
