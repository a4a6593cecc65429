//! Handle registry: the C side never holds a pointer to Rust memory.
//!
//! A handle (`cobra_client_t *` and friends) is an opaque token: a process-unique number dressed as a
//! pointer, never dereferenced. Each call looks the number up in the registry of its type and clones an
//! `Arc` out of it, so:
//! - a stale or doubly freed handle is reported as `COBRA_STATUS_INVALID_HANDLE` (numbers are never reused),
//!   as is a handle of another type (a config passed where a client is expected);
//! - freeing a handle while another thread is inside a call on it is safe: that call keeps its `Arc` alive
//!   until it returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::status::{CobraStatus, FfiError, FfiResult};

/// Shared by every registry, so a number identifies one object of one type for the whole process life.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A fresh handle number (never 0, never reused).
pub(crate) fn next_id() -> usize {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The number behind a handle (0 for NULL).
pub(crate) fn handle_id<H>(handle: *const H) -> usize {
    handle.addr()
}

/// The live objects of one handle type.
pub(crate) struct Registry<T> {
    kind: &'static str,
    live: Mutex<Option<HashMap<usize, Arc<T>>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new(kind: &'static str) -> Self {
        Self {
            kind,
            live: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashMap<usize, Arc<T>>>> {
        // A panic while holding this lock cannot leave the map half-updated (single insert/remove calls),
        // so a poisoned lock is safe to keep using.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `value` and returns its new handle.
    pub(crate) fn insert<H>(&self, value: T) -> *mut H {
        self.insert_at(next_id(), value)
    }

    /// Registers `value` under `id` (from [`next_id`], for objects that must know their handle before
    /// they are registered) and returns the handle.
    pub(crate) fn insert_at<H>(&self, id: usize, value: T) -> *mut H {
        self.lock()
            .get_or_insert_with(HashMap::new)
            .insert(id, Arc::new(value));
        std::ptr::without_provenance_mut(id)
    }

    /// The live object behind `handle`.
    pub(crate) fn get<H>(&self, handle: *const H) -> FfiResult<Arc<T>> {
        let id = self.id(handle)?;
        self.lock()
            .as_ref()
            .and_then(|map| map.get(&id).cloned())
            .ok_or_else(|| self.stale())
    }

    /// The number of live handles.
    pub(crate) fn len(&self) -> usize {
        self.lock().as_ref().map_or(0, HashMap::len)
    }

    /// Unregisters `handle`, handing back the last registry reference to it.
    pub(crate) fn remove<H>(&self, handle: *const H) -> FfiResult<Arc<T>> {
        let id = self.id(handle)?;
        let mut live = self.lock();
        let value = live
            .as_mut()
            .and_then(|map| map.remove(&id))
            .ok_or_else(|| self.stale())?;
        if live.as_ref().is_some_and(HashMap::is_empty) {
            // Give the table back once the last handle is gone, so a program that freed everything ends
            // with nothing allocated here (leak checkers would otherwise flag the table).
            *live = None;
        }
        Ok(value)
    }

    fn id<H>(&self, handle: *const H) -> FfiResult<usize> {
        if handle.is_null() {
            return Err(FfiError::new(
                CobraStatus::INVALID_HANDLE,
                format!("the {} handle is NULL", self.kind),
            ));
        }
        Ok(handle.addr())
    }

    fn stale(&self) -> FfiError {
        FfiError::new(
            CobraStatus::INVALID_HANDLE,
            format!(
                "not a live {} handle (already freed, or a handle of another type)",
                self.kind
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;

    #[test]
    fn stale_doubly_freed_and_wrong_type_handles_are_refused() {
        let a: Registry<u32> = Registry::new("a");
        let b: Registry<u32> = Registry::new("b");
        let h: *mut A = a.insert(5);
        assert_eq!(*a.get(h).expect("live"), 5);
        assert_eq!((a.len(), b.len()), (1, 0));
        // The same number in another registry is not a live handle there.
        assert_eq!(
            b.get(h.cast::<B>()).map(|_| ()).unwrap_err().status,
            CobraStatus::INVALID_HANDLE
        );
        let held = a.get(h).expect("live");
        assert_eq!(*a.remove(h).expect("first free"), 5);
        assert_eq!(
            a.remove(h).map(|_| ()).unwrap_err().status,
            CobraStatus::INVALID_HANDLE
        );
        assert_eq!(
            a.get(h).map(|_| ()).unwrap_err().status,
            CobraStatus::INVALID_HANDLE
        );
        // A reference taken before the free stays usable (no use-after-free for a concurrent call).
        assert_eq!(*held, 5);
        assert_eq!(
            a.get(std::ptr::null::<A>()).map(|_| ()).unwrap_err().status,
            CobraStatus::INVALID_HANDLE
        );
        // Numbers are never reused.
        let h2: *mut A = a.insert(6);
        assert_ne!(h2.addr(), h.addr());
        assert!(a.remove(h2).is_ok());
        assert_eq!(a.len(), 0);
        assert!(a.lock().is_none(), "the table is released once empty");
    }
}
