//! `cobra_config_t`: the options object, filled by setters and consumed by `cobra_client_new`.

use std::ffi::c_char;
use std::sync::Mutex;
use std::time::Duration;

use super::guard::{guard, guard_value};
use super::registry::Registry;
use super::status::{CobraStatus, FfiError, FfiResult, from_c_enum};
use super::strings::{optional, required, required_n};
use crate::{Config, DeflateOptions, Delivery, OverflowPolicy};

/// Opaque options object for a client. Create with `cobra_config_new`, fill with the `cobra_config_set_*`
/// functions, then hand it to `cobra_client_new` (which takes ownership) or free it with `cobra_config_free`.
pub struct CobraConfig {
    _opaque: [u8; 0],
}

pub(crate) static CONFIGS: Registry<Mutex<Config>> = Registry::new("config");

/// What `publish` does when the bounded publish queue is full (`cobra_config_set_queue_limits`).
/// cbindgen:rename-all=prefix:COBRA_OVERFLOW_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraOverflowPolicy {
    /// Drop the oldest queued message to make room (each drop is reported as a
    /// `COBRA_EVENT_PUBLISH_DROPPED` event). The default.
    DROP_OLDEST = 0,
    /// Refuse the new message: publish returns `COBRA_STATUS_QUEUE_FULL`.
    REFUSE_NEW = 1,
}

/// Delivery guarantee of published messages across reconnects (`cobra_config_set_delivery`).
/// cbindgen:rename-all=prefix:COBRA_DELIVERY_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraDelivery {
    /// Unacknowledged messages are sent again after a reconnect (the server may see a message twice,
    /// never zero times). The default.
    AT_LEAST_ONCE = 0,
    /// A message is forgotten once written to the socket (never sent twice, may be lost).
    AT_MOST_ONCE = 1,
}

/// Applies `edit` to the config behind `config`.
fn edit(config: *mut CobraConfig, edit: impl FnOnce(&mut Config) -> FfiResult<()>) -> CobraStatus {
    guard(|| {
        let entry = CONFIGS.get(config)?;
        let mut cfg = entry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        edit(&mut cfg)
    })
}

/// Sets the string field that `field` picks to a copy of the required string `value` (`name` names it in
/// errors).
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string valid for the call.
unsafe fn set_text(
    config: *mut CobraConfig,
    value: *const c_char,
    name: &str,
    field: fn(&mut Config) -> &mut String,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: forwarded contract.
        *field(c) = unsafe { required(value, name) }?.to_owned();
        Ok(())
    })
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn to_usize(value: u64, name: &str) -> FfiResult<usize> {
    usize::try_from(value)
        .map_err(|_| FfiError::invalid_argument(format!("`{name}` = {value} is too large")))
}

/// Creates a config with every default (see each setter). The endpoint, appkey, role and secret start
/// empty and must be set before `cobra_client_new`.
///
/// Ownership: the caller owns the returned handle and must pass it to `cobra_client_new` or
/// `cobra_config_free`. Returns NULL only on an internal error (see `cobra_last_error_message`).
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_new() -> *mut CobraConfig {
    guard_value(std::ptr::null_mut(), || {
        Ok(CONFIGS.insert(Mutex::new(Config::new("", "", "", ""))))
    })
}

/// Frees a config that was not handed to `cobra_client_new`.
///
/// Ownership: consumes `config`. NULL, an already freed or a consumed config returns
/// `COBRA_STATUS_INVALID_HANDLE` and does nothing.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_free(config: *mut CobraConfig) -> CobraStatus {
    guard(|| CONFIGS.remove(config).map(drop))
}

/// Sets the server URL: `ws://host[:port][/path]` or `wss://...` (path defaults to `/v2`; `?appkey=` is
/// added). Checked by `cobra_client_new`.
///
/// Ownership: `endpoint` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_endpoint(
    config: *mut CobraConfig,
    endpoint: *const c_char,
) -> CobraStatus {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    unsafe { set_text(config, endpoint, "endpoint", |c| &mut c.endpoint) }
}

/// Sets the application key.
///
/// Ownership: `appkey` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_appkey(
    config: *mut CobraConfig,
    appkey: *const c_char,
) -> CobraStatus {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    unsafe { set_text(config, appkey, "appkey", |c| &mut c.appkey) }
}

/// Sets the role name used for `role_secret` authentication.
///
/// Ownership: `role` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_role(
    config: *mut CobraConfig,
    role: *const c_char,
) -> CobraStatus {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    unsafe { set_text(config, role, "role", |c| &mut c.role) }
}

/// Sets the role's secret.
///
/// Ownership: `secret` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_secret(
    config: *mut CobraConfig,
    secret: *const c_char,
) -> CobraStatus {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    unsafe { set_text(config, secret, "secret", |c| &mut c.secret) }
}

/// Adds trusted CA certificates for `wss://` (PEM text, one or more `CERTIFICATE` blocks); NULL removes
/// them. The bundled Mozilla roots stay trusted unless `cobra_config_set_tls_roots` turns them off.
///
/// Ownership: `pem` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_tls_ca_pem(
    config: *mut CobraConfig,
    pem: *const c_char,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        c.tls.extra_ca_pem = unsafe { optional(pem, "pem") }?.map(str::to_owned);
        Ok(())
    })
}

/// Chooses the trust stores: the bundled Mozilla roots (default on) and the operating system's store
/// (default off; only where the library was built with OS-store support).
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_tls_roots(
    config: *mut CobraConfig,
    webpki_roots: bool,
    native_roots: bool,
) -> CobraStatus {
    edit(config, |c| {
        c.tls.webpki_roots = webpki_roots;
        c.tls.native_roots = native_roots;
        Ok(())
    })
}

/// Adds an SPKI pin: base64 of the SHA-256 of the server certificate's DER SubjectPublicKeyInfo (the HPKP
/// `pin-sha256` format). With at least one pin, the server's key must match one of them.
///
/// Ownership: `pin` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_add_tls_pin(
    config: *mut CobraConfig,
    pin: *const c_char,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        c.tls
            .spki_pins
            .push(unsafe { required(pin, "pin") }?.to_owned());
        Ok(())
    })
}

/// Turns permessage-deflate compression on (default: context takeover both ways, a 12-bit window for
/// the client, up to 15 bits for the server) or off.
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_deflate(
    config: *mut CobraConfig,
    enabled: bool,
) -> CobraStatus {
    edit(config, |c| {
        c.deflate = enabled.then(DeflateOptions::default);
        Ok(())
    })
}

/// Turns permessage-deflate on with explicit parameters: window bits 9..=15 for each side, and whether
/// each side must reset its compression context after every message.
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_deflate_options(
    config: *mut CobraConfig,
    client_max_window_bits: u8,
    server_max_window_bits: u8,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
) -> CobraStatus {
    edit(config, |c| {
        c.deflate = Some(DeflateOptions {
            client_max_window_bits,
            server_max_window_bits,
            client_no_context_takeover,
            server_no_context_takeover,
        });
        Ok(())
    })
}

/// Sets the heartbeat: a ping every `ping_interval_ms` (0 = no heartbeat; default 30000) and the
/// connection is dropped when its pong does not come within `pong_timeout_ms` (default 10000).
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_heartbeat(
    config: *mut CobraConfig,
    ping_interval_ms: u64,
    pong_timeout_ms: u64,
) -> CobraStatus {
    edit(config, |c| {
        c.ping_interval = millis(ping_interval_ms);
        c.pong_timeout = millis(pong_timeout_ms);
        Ok(())
    })
}

/// Sets the reconnect backoff: exponential with full jitter from `min_ms` (default 250) up to `max_ms`
/// (default 30000; also the delay after a permanent error such as bad credentials).
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_backoff(
    config: *mut CobraConfig,
    min_ms: u64,
    max_ms: u64,
) -> CobraStatus {
    edit(config, |c| {
        c.backoff_min = millis(min_ms);
        c.backoff_max = millis(max_ms);
        Ok(())
    })
}

/// Bounds the publish queue (messages not yet acknowledged) by count (default 10000) and bytes (default
/// 128 MiB), with `policy` (a `cobra_overflow_policy_t` value) deciding what happens when it is full.
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_queue_limits(
    config: *mut CobraConfig,
    max_messages: u64,
    max_bytes: u64,
    policy: i32,
) -> CobraStatus {
    edit(config, |c| {
        c.max_queued_messages = to_usize(max_messages, "max_messages")?;
        c.max_queued_bytes = to_usize(max_bytes, "max_bytes")?;
        c.overflow_policy = from_c_enum(
            policy,
            "overflow policy",
            &[
                (
                    CobraOverflowPolicy::DROP_OLDEST as i32,
                    OverflowPolicy::DropOldest,
                ),
                (
                    CobraOverflowPolicy::REFUSE_NEW as i32,
                    OverflowPolicy::RefuseNew,
                ),
            ],
        )?;
        Ok(())
    })
}

/// Sets the delivery guarantee (a `cobra_delivery_t` value; default at-least-once).
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_delivery(
    config: *mut CobraConfig,
    delivery: i32,
) -> CobraStatus {
    edit(config, |c| {
        c.delivery = from_c_enum(
            delivery,
            "delivery mode",
            &[
                (CobraDelivery::AT_LEAST_ONCE as i32, Delivery::AtLeastOnce),
                (CobraDelivery::AT_MOST_ONCE as i32, Delivery::AtMostOnce),
            ],
        )?;
        Ok(())
    })
}

/// Keeps pending messages in an on-disk spool in directory `dir` (at most `max_bytes` on disk), so they
/// survive a process restart; NULL turns the spool off (the default).
///
/// Ownership: `dir` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_spool(
    config: *mut CobraConfig,
    dir: *const c_char,
    max_bytes: u64,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        c.spool_dir = unsafe { optional(dir, "dir") }?.map(Into::into);
        c.spool_max_bytes = max_bytes;
        Ok(())
    })
}

/// Sets the largest message sent or received, after inflating (default 64 MiB, at least 1024).
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_max_message_size(
    config: *mut CobraConfig,
    bytes: u64,
) -> CobraStatus {
    edit(config, |c| {
        c.max_message_size = to_usize(bytes, "bytes")?;
        Ok(())
    })
}

/// Connects through an HTTP CONNECT proxy, `http://[user:pass@]host:port`; NULL for a direct connection.
///
/// Ownership: `url` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_proxy(
    config: *mut CobraConfig,
    url: *const c_char,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        c.proxy = unsafe { optional(url, "url") }?.map(str::to_owned);
        Ok(())
    })
}

/// Adds a header to the WebSocket upgrade request.
///
/// Ownership: `name` and `value` (UTF-8, NUL-terminated) are borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_add_header(
    config: *mut CobraConfig,
    name: *const c_char,
    value: *const c_char,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: the caller passes, for both strings, NULL or a NUL-terminated string valid for
        // the call.
        let (name, value) = unsafe { (required(name, "name")?, required(value, "value")?) };
        c.extra_headers.push((name.to_owned(), value.to_owned()));
        Ok(())
    })
}

/// Sets the `User-Agent` of the upgrade request.
///
/// Ownership: `user_agent` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_user_agent(
    config: *mut CobraConfig,
    user_agent: *const c_char,
) -> CobraStatus {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    unsafe { set_text(config, user_agent, "user_agent", |c| &mut c.user_agent) }
}

/// Sets the time limits: name resolution plus TCP connect (default 10000 ms); proxy, TLS, upgrade and
/// authentication together (default 10000 ms); and the default limit for requests such as subscribe
/// (default 10000 ms).
///
/// Ownership: `config` is borrowed for the call; nothing else is passed by pointer.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_config_set_timeouts(
    config: *mut CobraConfig,
    connect_ms: u64,
    handshake_ms: u64,
    request_ms: u64,
) -> CobraStatus {
    edit(config, |c| {
        c.connect_timeout = millis(connect_ms);
        c.handshake_timeout = millis(handshake_ms);
        c.request_timeout = millis(request_ms);
        Ok(())
    })
}

/// Like `cobra_config_set_endpoint`, for a string given by pointer and length (no NUL needed).
///
/// Ownership: `endpoint[0..len]` is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_config_set_endpoint_n(
    config: *mut CobraConfig,
    endpoint: *const c_char,
    len: usize,
) -> CobraStatus {
    edit(config, |c| {
        // SAFETY: the caller passes NULL or `len` readable bytes.
        c.endpoint = unsafe { required_n(endpoint, len, "endpoint") }?.to_owned();
        Ok(())
    })
}
