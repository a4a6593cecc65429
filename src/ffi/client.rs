//! `cobra_client_t`: the connection, its engine thread and its event callback.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::config::{CONFIGS, CobraConfig};
use super::event::{CallbackTarget, CobraEventCallback, to_c_event};
use super::guard::guard;
use super::registry::{Registry, handle_id, next_id};
use super::status::{CobraStatus, FfiError, FfiResult};
use super::strings::{optional, required, required_n, to_c_string, write_out};
use crate::{Client, Event, Listener, State, SubscribeOptions};

/// Opaque handle of a client. Create with `cobra_client_new`, free with `cobra_client_free`.
pub struct CobraClient {
    _opaque: [u8; 0],
}

/// The connection state reported by `cobra_client_state`.
/// cbindgen:rename-all=prefix:COBRA_STATE_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraClientState {
    /// Not connected and not trying (initial state, or after `cobra_client_disconnect`).
    DISCONNECTED = 0,
    /// Resolving, connecting, TLS, proxy or WebSocket upgrade in progress.
    CONNECTING = 1,
    /// The WebSocket is open; authentication is in progress.
    AUTHENTICATING = 2,
    /// Authenticated: publishes and subscriptions flow.
    CONNECTED = 3,
    /// Waiting for the backoff delay before the next attempt.
    RECONNECTING = 4,
    /// Suspended by `cobra_client_suspend` until `cobra_client_resume`.
    SUSPENDED = 5,
    /// The engine has stopped.
    STOPPED = 6,
}

/// Serialises the user's callback with `cobra_client_free`: once free has closed the gate, no callback
/// runs and none is running.
struct Gate {
    id: usize,
    open: AtomicBool,
    lock: Mutex<()>,
}

pub(crate) struct ClientEntry {
    pub(crate) client: Client,
    gate: Arc<Gate>,
}

pub(crate) static CLIENTS: Registry<ClientEntry> = Registry::new("client");

thread_local! {
    /// The handle number of the client whose callback runs on this thread (0: none).
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

fn in_own_callback(id: usize) -> bool {
    IN_CALLBACK.try_with(Cell::get).unwrap_or(0) == id
}

/// Restores `IN_CALLBACK` when the callback returns (or unwinds).
struct CallbackScope(usize);

impl CallbackScope {
    fn enter(id: usize) -> Self {
        Self(IN_CALLBACK.try_with(|c| c.replace(id)).unwrap_or(0))
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        let _ = IN_CALLBACK.try_with(|c| c.set(self.0));
    }
}

/// Forwards SDK events to the C callback.
struct CListener {
    target: CallbackTarget,
    gate: Arc<Gate>,
}

impl Listener for CListener {
    fn on_event(&self, event: &Event) {
        let _held = self
            .gate
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !self.gate.open.load(Ordering::Acquire) {
            return;
        }
        let Some((event, _storage)) = to_c_event(event) else {
            return;
        };
        let _scope = CallbackScope::enter(self.gate.id);
        // SAFETY: `callback` is the non-NULL function pointer the caller registered for this client, called
        // on the engine thread as the header documents, with its own `user_data`; `event` and everything it
        // points to (`_storage`) live until the call returns.
        unsafe { (self.target.callback)(&event, self.target.user_data) };
    }
}

fn client(handle: *mut CobraClient) -> FfiResult<Arc<ClientEntry>> {
    CLIENTS.get(handle)
}

/// Runs one of the client's non-blocking controls (connect, suspend...).
fn control(
    handle: *mut CobraClient,
    action: fn(&Client) -> Result<(), crate::Error>,
) -> CobraStatus {
    guard(|| Ok(action(&client(handle)?.client)?))
}

/// Writes what `read` says of the client to `*out`, which must be given (`name` names it in the error).
///
/// # Safety
/// `out` must be NULL or valid for a write of `T`.
unsafe fn query<T>(
    handle: *mut CobraClient,
    out: *mut T,
    name: &str,
    read: impl FnOnce(&Client) -> T,
) -> CobraStatus {
    guard(|| {
        let entry = client(handle)?;
        if out.is_null() {
            return Err(FfiError::null(name));
        }
        // SAFETY: non-NULL, and writable per the caller's contract.
        unsafe { write_out(out, read(&entry.client)) };
        Ok(())
    })
}

/// Queues a publish and writes its id to `*out_id` when given.
///
/// # Safety
/// `out_id` must be NULL or writable.
unsafe fn publish_one(
    entry: &ClientEntry,
    channel: &str,
    json: &str,
    out_id: *mut u64,
) -> FfiResult<()> {
    let id = entry.client.publish_raw(channel, json)?;
    // SAFETY: NULL or writable per the caller's contract.
    unsafe { write_out(out_id, id) };
    Ok(())
}

/// The client for a call that waits for the engine's answer, which it writes as a new string to
/// `*out_json`: clears `*out_json` first, then checks the handle, `out_json` and the calling thread, in
/// that order.
///
/// # Safety
/// `out_json` must be NULL or writable.
unsafe fn blocking_json(
    handle: *mut CobraClient,
    what: &str,
    out_json: *mut *mut c_char,
) -> FfiResult<Arc<ClientEntry>> {
    // SAFETY: NULL or writable per the caller's contract.
    unsafe { write_out(out_json, std::ptr::null_mut()) };
    let entry = client(handle)?;
    if out_json.is_null() {
        return Err(FfiError::null("out_json"));
    }
    not_in_callback(handle, what)?;
    Ok(entry)
}

/// The client for a call that waits for the engine's answer and writes nothing back.
fn blocking(handle: *mut CobraClient, what: &str) -> FfiResult<Arc<ClientEntry>> {
    let entry = client(handle)?;
    not_in_callback(handle, what)?;
    Ok(entry)
}

/// A JSON value as a new C string owned by the caller.
fn json_string(value: &Value) -> *mut c_char {
    to_c_string(&value.to_string()).into_raw()
}

fn not_in_callback(handle: *mut CobraClient, what: &str) -> FfiResult<()> {
    if in_own_callback(handle_id(handle)) {
        return Err(FfiError::new(
            CobraStatus::WRONG_THREAD,
            format!(
                "{what} blocks until the engine answers, so it cannot be called from this client's own event callback"
            ),
        ));
    }
    Ok(())
}

fn timeout(ms: u64) -> FfiResult<Duration> {
    if ms == 0 {
        return Err(FfiError::invalid_argument("`timeout_ms` must be positive"));
    }
    Ok(Duration::from_millis(ms))
}

fn parse_json(text: &str, name: &str) -> FfiResult<Value> {
    serde_json::from_str(text)
        .map_err(|e| FfiError::invalid_argument(format!("`{name}` is not valid JSON: {e}")))
}

/// Creates a client and starts its engine thread. The client stays disconnected until
/// `cobra_client_connect`.
///
/// `callback` (may be NULL: no events) receives every event on the client's engine thread with
/// `user_data`; `user_data` must stay valid until `cobra_client_free` returns.
///
/// Ownership: ALWAYS consumes `config`, even when it fails (do not free or reuse it). On success the caller
/// owns `*out_client` and must free it with `cobra_client_free`; on failure `*out_client` is set to NULL.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_new(
    config: *mut CobraConfig,
    callback: CobraEventCallback,
    user_data: *mut c_void,
    out_client: *mut *mut CobraClient,
) -> CobraStatus {
    guard(|| {
        // SAFETY: `out_client` is NULL or a writable pointer per the documented contract.
        unsafe { write_out(out_client, std::ptr::null_mut()) };
        let config = CONFIGS.remove(config)?;
        if out_client.is_null() {
            return Err(FfiError::null("out_client"));
        }
        let config = config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let id = next_id();
        let gate = Arc::new(Gate {
            id,
            open: AtomicBool::new(true),
            lock: Mutex::new(()),
        });
        let listener = callback.map(|callback| {
            Arc::new(CListener {
                target: CallbackTarget {
                    callback,
                    user_data,
                },
                gate: gate.clone(),
            }) as Arc<dyn Listener>
        });
        let client = Client::new(config, listener)?;
        let handle = CLIENTS.insert_at(id, ClientEntry { client, gate });
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { write_out(out_client, handle) };
        Ok(())
    })
}

/// Stops the engine thread, closes the connection (messages not yet acknowledged are lost unless a spool
/// is configured) and frees the client.
///
/// When this returns, no callback of this client is running or will run, so `user_data` may be freed.
/// It may be called from the client's own callback (the engine then stops once the callback returns).
/// Do not free a client from inside another client's callback while that client frees this one.
///
/// Ownership: consumes `client`. A NULL, already freed or unknown handle returns
/// `COBRA_STATUS_INVALID_HANDLE` and does nothing (double frees are detected: handles are never reused).
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_client_free(client: *mut CobraClient) -> CobraStatus {
    guard(|| {
        let entry = CLIENTS.remove(client)?;
        if in_own_callback(entry.gate.id) {
            // This thread already holds the gate (we are inside the callback): just close it. The SDK does
            // not join its engine thread when dropped from it.
            entry.gate.open.store(false, Ordering::Release);
        } else {
            let _held = entry
                .gate
                .lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            entry.gate.open.store(false, Ordering::Release);
        }
        // Calls still running on other threads hold their own reference; the engine stops with the last one.
        drop(entry);
        Ok(())
    })
}

/// Starts connecting in the background and keeps reconnecting (exponential backoff with jitter) until
/// `cobra_client_disconnect`. Returns at once; progress arrives as events.
///
/// Ownership: `client` is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_client_connect(client: *mut CobraClient) -> CobraStatus {
    control(client, Client::connect)
}

/// Closes the connection and stops retrying. Returns once the connection is dropped (well under 50 ms
/// normally; at most 1 s if a callback hogs the engine thread). Queued publishes stay queued for a later
/// `cobra_client_connect`. May be called from the callback (it then does not wait).
///
/// Ownership: `client` is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_client_disconnect(client: *mut CobraClient) -> CobraStatus {
    control(client, Client::disconnect)
}

/// Closes the connection and stops retrying until `cobra_client_resume` (for an app going to the
/// background). Publishes keep queueing.
///
/// Ownership: `client` is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_client_suspend(client: *mut CobraClient) -> CobraStatus {
    control(client, Client::suspend)
}

/// Undoes `cobra_client_suspend`: connects again at once.
///
/// Ownership: `client` is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_client_resume(client: *mut CobraClient) -> CobraStatus {
    control(client, Client::resume)
}

/// Tells the client the network changed (Wi-Fi to cellular...): it drops the current connection, if any,
/// and retries at once, skipping any backoff delay.
///
/// Ownership: `client` is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_client_network_changed(client: *mut CobraClient) -> CobraStatus {
    control(client, Client::network_changed)
}

/// Writes the current connection state to `*out_state`.
///
/// Ownership: `out_state` is written, not kept.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_state(
    client: *mut CobraClient,
    out_state: *mut CobraClientState,
) -> CobraStatus {
    // SAFETY: `out_state` is NULL or writable per the contract.
    unsafe {
        query(client, out_state, "out_state", |client| {
            #[allow(unreachable_patterns)] // the SDK may add states: report them as connecting
            match client.state() {
                State::Disconnected => CobraClientState::DISCONNECTED,
                State::Connecting => CobraClientState::CONNECTING,
                State::Authenticating => CobraClientState::AUTHENTICATING,
                State::Connected => CobraClientState::CONNECTED,
                State::Reconnecting => CobraClientState::RECONNECTING,
                State::Suspended => CobraClientState::SUSPENDED,
                State::Stopped => CobraClientState::STOPPED,
                _ => CobraClientState::CONNECTING,
            }
        })
    }
}

/// Writes the number of messages in the publish queue (not yet sent plus awaiting acknowledgement).
///
/// Ownership: `out_count` is written, not kept.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_pending_count(
    client: *mut CobraClient,
    out_count: *mut usize,
) -> CobraStatus {
    // SAFETY: `out_count` is NULL or writable per the contract.
    unsafe { query(client, out_count, "out_count", Client::pending_count) }
}

/// Publishes `message_json` (the JSON text of one message, usually an object) to `channel`. Never blocks:
/// the message is queued (bounded; see `cobra_config_set_queue_limits`) and sent by the engine, also
/// after a reconnect until acknowledged. The id written to `*out_id` (if not NULL) comes back in a
/// `COBRA_EVENT_PUBLISHED` or `COBRA_EVENT_PUBLISH_DROPPED` event.
///
/// Ownership: `channel` and `message_json` (UTF-8, NUL-terminated) are borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_publish(
    client: *mut CobraClient,
    channel: *const c_char,
    message_json: *const c_char,
    out_id: *mut u64,
) -> CobraStatus {
    guard(|| {
        let entry = self::client(client)?;
        // SAFETY: the caller passes NULL or NUL-terminated strings valid for the call.
        let (channel, json) = unsafe {
            (
                required(channel, "channel")?,
                required(message_json, "message_json")?,
            )
        };
        // SAFETY: `out_id` is NULL or writable per the contract.
        unsafe { publish_one(&entry, channel, json, out_id) }
    })
}

/// Like `cobra_client_publish`, for strings given by pointer and length (no NUL needed).
///
/// Ownership: `channel[0..channel_len]` and `message_json[0..message_len]` are borrowed for the call and
/// copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_publish_n(
    client: *mut CobraClient,
    channel: *const c_char,
    channel_len: usize,
    message_json: *const c_char,
    message_len: usize,
    out_id: *mut u64,
) -> CobraStatus {
    guard(|| {
        let entry = self::client(client)?;
        // SAFETY: the caller passes NULL or buffers of the given lengths valid for the call.
        let (channel, json) = unsafe {
            (
                required_n(channel, channel_len, "channel")?,
                required_n(message_json, message_len, "message_json")?,
            )
        };
        // SAFETY: `out_id` is NULL or writable per the contract.
        unsafe { publish_one(&entry, channel, json, out_id) }
    })
}

/// Publishes one message to each of `channel_count` channels (one request with `channels`).
///
/// Ownership: `channels` (an array of `channel_count` UTF-8 NUL-terminated strings) and `message_json`
/// are borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_publish_channels(
    client: *mut CobraClient,
    channels: *const *const c_char,
    channel_count: usize,
    message_json: *const c_char,
    out_id: *mut u64,
) -> CobraStatus {
    guard(|| {
        let entry = self::client(client)?;
        if channels.is_null() || channel_count == 0 {
            return Err(FfiError::invalid_argument(
                "`channels` must hold at least one channel",
            ));
        }
        if channel_count > (isize::MAX as usize) / size_of::<*const c_char>() {
            return Err(FfiError::invalid_argument("`channel_count` is too large"));
        }
        // SAFETY: non-NULL; the caller guarantees `channel_count` readable pointers (size checked above).
        let ptrs = unsafe { std::slice::from_raw_parts(channels, channel_count) };
        // SAFETY: each element is NULL or a NUL-terminated string valid for the call.
        let names = ptrs
            .iter()
            .map(|&p| unsafe { required(p, "channels[i]") })
            .collect::<FfiResult<Vec<&str>>>()?;
        // SAFETY: as above.
        let json = unsafe { required(message_json, "message_json") }?;
        let id = entry.client.publish_many_raw(&names, json)?;
        // SAFETY: `out_id` is NULL or writable per the contract.
        unsafe { write_out(out_id, id) };
        Ok(())
    })
}

/// Subscribes. Queued while offline and re-sent after every reconnect from the last position received, so
/// nothing within the server's history is lost or duplicated. The outcome arrives as a
/// `COBRA_EVENT_SUBSCRIBED` or `COBRA_EVENT_SUBSCRIPTION_ERROR` event, the messages as
/// `COBRA_EVENT_SUBSCRIPTION_DATA`.
///
/// - `channel`: required (with a filter, the channel named in its FROM clause).
/// - `subscription_id`: NULL = the channel; must be unique within the client.
/// - `filter`: NULL or a StreamSQL statement, e.g. ``select data.fps from `engine_fps_id` where data.fps < 30``.
/// - `position`: NULL = only new messages; `"0-0"` = from the oldest kept; else resume after it.
/// - `batch_size`: 0 = server default; else messages per data event.
/// - `fast_forward`: skip ahead (with a SUBSCRIPTION_INFO event) instead of failing when behind.
///
/// Ownership: every string (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_subscribe(
    client: *mut CobraClient,
    channel: *const c_char,
    subscription_id: *const c_char,
    filter: *const c_char,
    position: *const c_char,
    batch_size: u32,
    fast_forward: bool,
) -> CobraStatus {
    guard(|| {
        let entry = self::client(client)?;
        // SAFETY: the caller passes NULL or NUL-terminated strings valid for the call.
        let (channel, id, filter, position) = unsafe {
            (
                required(channel, "channel")?,
                optional(subscription_id, "subscription_id")?,
                optional(filter, "filter")?,
                optional(position, "position")?,
            )
        };
        let mut options = SubscribeOptions::new(channel).fast_forward(fast_forward);
        options.subscription_id = id.map(str::to_owned);
        options.filter = filter.map(str::to_owned);
        options.position = position.map(str::to_owned);
        options.batch_size = (batch_size > 0).then_some(batch_size);
        Ok(entry.client.subscribe(options)?)
    })
}

/// Ends a subscription; a `COBRA_EVENT_UNSUBSCRIBED` event follows.
///
/// Ownership: `subscription_id` (UTF-8, NUL-terminated) is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_unsubscribe(
    client: *mut CobraClient,
    subscription_id: *const c_char,
) -> CobraStatus {
    guard(|| {
        let entry = self::client(client)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        let id = unsafe { required(subscription_id, "subscription_id") }?;
        Ok(entry.client.unsubscribe(id)?)
    })
}

/// Reads the value stored on `channel`, waiting for a connection and the answer at most `timeout_ms`.
/// Blocks the calling thread (never the engine); returns `COBRA_STATUS_WRONG_THREAD` from this client's
/// own callback.
///
/// Ownership: `channel` is borrowed for the call. On success `*out_json` receives a new string owned by
/// the caller (free it with `cobra_string_free`), or NULL when nothing is stored.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_read(
    client: *mut CobraClient,
    channel: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
) -> CobraStatus {
    guard(|| {
        // SAFETY: `out_json` is NULL or writable per the contract.
        let entry = unsafe { blocking_json(client, "cobra_client_read", out_json) }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        let channel = unsafe { required(channel, "channel") }?;
        let value = entry.client.read(channel, timeout(timeout_ms)?)?;
        let text = value.map_or(std::ptr::null_mut(), |v| json_string(&v));
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_json, text) };
        Ok(())
    })
}

/// Stores `value_json` as the only value of `channel`, waiting at most `timeout_ms` for the
/// acknowledgement. Blocks like `cobra_client_read`.
///
/// Ownership: `channel` and `value_json` (UTF-8, NUL-terminated) are borrowed for the call.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_write(
    client: *mut CobraClient,
    channel: *const c_char,
    value_json: *const c_char,
    timeout_ms: u64,
) -> CobraStatus {
    guard(|| {
        // SAFETY: the caller passes NULL or NUL-terminated strings valid for the call.
        let (channel, json) = unsafe {
            (
                required(channel, "channel")?,
                required(value_json, "value_json")?,
            )
        };
        write(client, channel, json, timeout_ms)
    })
}

/// Like `cobra_client_write`, for a value given by pointer and length.
///
/// Ownership: `channel` and `value_json[0..value_len]` are borrowed for the call.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_write_n(
    client: *mut CobraClient,
    channel: *const c_char,
    value_json: *const c_char,
    value_len: usize,
    timeout_ms: u64,
) -> CobraStatus {
    guard(|| {
        // SAFETY: the caller passes NULL or a valid string / buffer of `value_len` bytes.
        let (channel, json) = unsafe {
            (
                required(channel, "channel")?,
                required_n(value_json, value_len, "value_json")?,
            )
        };
        write(client, channel, json, timeout_ms)
    })
}

fn write(client: *mut CobraClient, channel: &str, json: &str, timeout_ms: u64) -> FfiResult<()> {
    let entry = blocking(client, "cobra_client_write")?;
    let value = parse_json(json, "value_json")?;
    Ok(entry.client.write(channel, &value, timeout(timeout_ms)?)?)
}

/// Deletes the value of `channel`, waiting at most `timeout_ms`. Blocks like `cobra_client_read`.
///
/// Ownership: `channel` (UTF-8, NUL-terminated) is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_delete(
    client: *mut CobraClient,
    channel: *const c_char,
    timeout_ms: u64,
) -> CobraStatus {
    guard(|| {
        let entry = blocking(client, "cobra_client_delete")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        let channel = unsafe { required(channel, "channel") }?;
        Ok(entry.client.delete(channel, timeout(timeout_ms)?)?)
    })
}

/// Sends any request PDU (e.g. `admin/get_connections`) with `body_json` (a JSON value, usually an object)
/// and waits at most `timeout_ms` for its `/ok` answer, whose body is written to `*out_json`. An `/error`
/// answer returns `COBRA_STATUS_SERVER`. Blocks like `cobra_client_read`.
///
/// Ownership: `action` and `body_json` (UTF-8, NUL-terminated) are borrowed for the call. On success
/// `*out_json` receives a new string owned by the caller (free it with `cobra_string_free`).
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_client_request(
    client: *mut CobraClient,
    action: *const c_char,
    body_json: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
) -> CobraStatus {
    guard(|| {
        // SAFETY: `out_json` is NULL or writable per the contract.
        let entry = unsafe { blocking_json(client, "cobra_client_request", out_json) }?;
        // SAFETY: the caller passes NULL or NUL-terminated strings valid for the call.
        let (action, body) = unsafe {
            (
                required(action, "action")?,
                required(body_json, "body_json")?,
            )
        };
        let answer =
            entry
                .client
                .request(action, parse_json(body, "body_json")?, timeout(timeout_ms)?)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_json, json_string(&answer)) };
        Ok(())
    })
}
