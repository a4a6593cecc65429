//! `cobra_metrics_t`: the game-facing telemetry publisher ([`crate::metrics::MetricsPublisher`]).

use std::ffi::c_char;

use serde_json::{Map, Value};

use super::client::{CLIENTS, CobraClient};
use super::guard::guard;
use super::registry::Registry;
use super::status::{CobraStatus, FfiError, FfiResult};
use super::strings::{required, required_n, to_c_string, write_out};
use crate::metrics::{MetricsPublisher, Publish, PushOutcome};
use crate::{Error, PublishId, WeakClient};

/// Opaque handle of a metrics publisher. Create with `cobra_metrics_new`, free with `cobra_metrics_free`.
pub struct CobraMetrics {
    _opaque: [u8; 0],
}

/// What `cobra_metrics_push` did with an event.
/// cbindgen:rename-all=prefix:COBRA_PUSH_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraPushOutcome {
    /// Handed to the client for publishing (the publish id is set).
    PUBLISHED = 0,
    /// Dropped: the publisher is disabled (`cobra_metrics_set_enabled`).
    DISABLED = 1,
    /// Dropped: the id is blacklisted (`cobra_metrics_set_blacklist`).
    BLACKLISTED = 2,
    /// Dropped: the id's previous event was too recent for its rate control (`cobra_metrics_set_rate_control`).
    RATE_LIMITED = 3,
}

/// Counters of a metrics publisher since its creation (`cobra_metrics_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CobraMetricsStats {
    /// Events handed to the client.
    pub published: u64,
    /// Events dropped while disabled.
    pub disabled: u64,
    /// Events dropped for a blacklisted id.
    pub blacklisted: u64,
    /// Events dropped by rate control.
    pub rate_limited: u64,
    /// Events the client refused (queue full, client freed).
    pub failed: u64,
}

/// Publishes through the client without keeping it alive: freeing the client ends its connection even
/// while a metrics publisher still exists (pushes then fail with `COBRA_STATUS_CLOSED`).
struct WeakSink(WeakClient);

impl Publish for WeakSink {
    fn publish_raw(&self, channels: &[&str], message: &str) -> Result<PublishId, Error> {
        self.0
            .upgrade()
            .ok_or(Error::Shutdown)?
            .publish_many_raw(channels, message)
    }
}

pub(crate) static METRICS: Registry<MetricsPublisher> = Registry::new("metrics");

fn metrics(handle: *mut CobraMetrics) -> FfiResult<std::sync::Arc<MetricsPublisher>> {
    METRICS.get(handle)
}

fn parse_json(text: &str, name: &str) -> FfiResult<Value> {
    serde_json::from_str(text)
        .map_err(|e| FfiError::invalid_argument(format!("`{name}` is not valid JSON: {e}")))
}

/// Reads `count` NUL-terminated strings from `array` (NULL is allowed only with a count of 0).
///
/// # Safety
/// `array` must be NULL or point to `count` pointers, each NULL or a NUL-terminated string valid for `'a`.
unsafe fn string_array<'a>(
    array: *const *const c_char,
    count: usize,
    name: &str,
) -> FfiResult<Vec<&'a str>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if array.is_null() {
        return Err(FfiError::null(name));
    }
    if count > (isize::MAX as usize) / size_of::<*const c_char>() {
        return Err(FfiError::invalid_argument(format!(
            "`{name}`: count {count} is too large"
        )));
    }
    // SAFETY: non-NULL, `count` readable pointers per the contract, size bounded above.
    let ptrs = unsafe { std::slice::from_raw_parts(array, count) };
    // SAFETY: each element is NULL or a valid NUL-terminated string per the contract.
    ptrs.iter().map(|&p| unsafe { required(p, name) }).collect()
}

/// Creates a metrics publisher that sends through `client`: each pushed event is wrapped in the telemetry
/// envelope (`id`, `version`, `session`, `timestamp` in ms, `per_id_counter`, `device`, `data`) and
/// published to `channel` and to a channel named after the event's id. It starts enabled, with a random
/// session id, no device attributes, no blacklist and no rate control.
///
/// The publisher does not keep the client alive: once the client is freed, pushes fail with
/// `COBRA_STATUS_CLOSED`.
///
/// Ownership: `client` is borrowed; `channel` (UTF-8, NUL-terminated) is copied. On success the caller owns
/// `*out_metrics` and frees it with `cobra_metrics_free`; on failure `*out_metrics` is set to NULL.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_new(
    client: *mut CobraClient,
    channel: *const c_char,
    out_metrics: *mut *mut CobraMetrics,
) -> CobraStatus {
    guard(|| {
        // SAFETY: `out_metrics` is NULL or writable per the contract.
        unsafe { write_out(out_metrics, std::ptr::null_mut()) };
        let entry = CLIENTS.get(client)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        let channel = unsafe { required(channel, "channel") }?;
        if channel.is_empty() {
            return Err(FfiError::invalid_argument("`channel` must not be empty"));
        }
        if out_metrics.is_null() {
            return Err(FfiError::null("out_metrics"));
        }
        let publisher = MetricsPublisher::with_sink(WeakSink(entry.client.downgrade()), channel);
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_metrics, METRICS.insert(publisher)) };
        Ok(())
    })
}

/// Frees a metrics publisher (its client is not affected).
///
/// Ownership: consumes `metrics`. A NULL, already freed or unknown handle returns
/// `COBRA_STATUS_INVALID_HANDLE` and does nothing.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_metrics_free(metrics: *mut CobraMetrics) -> CobraStatus {
    guard(|| METRICS.remove(metrics).map(drop))
}

fn push(
    metrics: *mut CobraMetrics,
    id: &str,
    data_json: &str,
    out_outcome: *mut CobraPushOutcome,
    out_id: *mut u64,
) -> FfiResult<()> {
    let publisher = self::metrics(metrics)?;
    if id.is_empty() {
        return Err(FfiError::invalid_argument("`id` must not be empty"));
    }
    // The data is validated and embedded as the caller wrote it (no JSON tree in between).
    let (outcome, publish_id) = match publisher.push_raw(id, data_json)? {
        PushOutcome::Published { publish_id } => (CobraPushOutcome::PUBLISHED, publish_id),
        PushOutcome::Disabled => (CobraPushOutcome::DISABLED, 0),
        PushOutcome::Blacklisted => (CobraPushOutcome::BLACKLISTED, 0),
        PushOutcome::RateLimited => (CobraPushOutcome::RATE_LIMITED, 0),
    };
    // SAFETY: both are NULL or writable per the contract of the calling function.
    unsafe {
        write_out(out_outcome, outcome);
        write_out(out_id, publish_id);
    }
    Ok(())
}

/// Pushes one event: `id` names it (e.g. "engine_fps_id"), `data_json` is its `data` (JSON text, e.g.
/// `{"fps":30}`). Never blocks. `COBRA_STATUS_OK` covers both a published event and one dropped on purpose
/// (disabled, blacklisted, rate limited): `*out_outcome` says which, and `*out_publish_id` is the client's
/// publish id (0 when not published). Both out-pointers may be NULL.
///
/// Ownership: `id` and `data_json` (UTF-8, NUL-terminated) are borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_push(
    metrics: *mut CobraMetrics,
    id: *const c_char,
    data_json: *const c_char,
    out_outcome: *mut CobraPushOutcome,
    out_publish_id: *mut u64,
) -> CobraStatus {
    guard(|| {
        // SAFETY: the caller passes NULL or NUL-terminated strings valid for the call.
        let (id, data) = unsafe { (required(id, "id")?, required(data_json, "data_json")?) };
        push(metrics, id, data, out_outcome, out_publish_id)
    })
}

/// Like `cobra_metrics_push`, for strings given by pointer and length.
///
/// Ownership: `id[0..id_len]` and `data_json[0..data_len]` are borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_push_n(
    metrics: *mut CobraMetrics,
    id: *const c_char,
    id_len: usize,
    data_json: *const c_char,
    data_len: usize,
    out_outcome: *mut CobraPushOutcome,
    out_publish_id: *mut u64,
) -> CobraStatus {
    guard(|| {
        // SAFETY: the caller passes NULL or buffers of the given lengths valid for the call.
        let (id, data) = unsafe {
            (
                required_n(id, id_len, "id")?,
                required_n(data_json, data_len, "data_json")?,
            )
        };
        push(metrics, id, data, out_outcome, out_publish_id)
    })
}

/// Enables (the default) or disables the publisher; while disabled, pushed events are dropped and counted.
///
/// Ownership: `metrics` is borrowed for the call.
#[unsafe(no_mangle)]
pub(super) extern "C" fn cobra_metrics_set_enabled(
    metrics: *mut CobraMetrics,
    enabled: bool,
) -> CobraStatus {
    guard(|| {
        self::metrics(metrics)?.enable(enabled);
        Ok(())
    })
}

/// Replaces the session id sent with every event (by default 32 random hex characters).
///
/// Ownership: `session` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_set_session(
    metrics: *mut CobraMetrics,
    session: *const c_char,
) -> CobraStatus {
    guard(|| {
        let publisher = self::metrics(metrics)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        publisher.set_session(unsafe { required(session, "session") }?);
        Ok(())
    })
}

/// Writes the current session id to `*out_session`.
///
/// Ownership: `*out_session` receives a new string owned by the caller (free it with `cobra_string_free`).
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_session(
    metrics: *mut CobraMetrics,
    out_session: *mut *mut c_char,
) -> CobraStatus {
    guard(|| {
        let publisher = self::metrics(metrics)?;
        if out_session.is_null() {
            return Err(FfiError::null("out_session"));
        }
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out_session, to_c_string(&publisher.session()).into_raw()) };
        Ok(())
    })
}

/// Sets one device attribute (sent in every event's `device` object), keeping the others.
/// `value_json` is JSON text: `"\"iPhone\""` for a string, `42`, `true`...
///
/// Ownership: `name` and `value_json` (UTF-8, NUL-terminated) are borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_set_device_attribute(
    metrics: *mut CobraMetrics,
    name: *const c_char,
    value_json: *const c_char,
) -> CobraStatus {
    guard(|| {
        let publisher = self::metrics(metrics)?;
        // SAFETY: the caller passes NULL or NUL-terminated strings valid for the call.
        let (name, value) =
            unsafe { (required(name, "name")?, required(value_json, "value_json")?) };
        publisher.set_device_attribute(name, parse_json(value, "value_json")?);
        Ok(())
    })
}

/// Replaces all device attributes with the members of a JSON object, e.g.
/// `{"game":"wiso","os_name":"Android","app_version":"3.25"}`.
///
/// Ownership: `attributes_json` (UTF-8, NUL-terminated) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_set_device_attributes(
    metrics: *mut CobraMetrics,
    attributes_json: *const c_char,
) -> CobraStatus {
    guard(|| {
        let publisher = self::metrics(metrics)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        let text = unsafe { required(attributes_json, "attributes_json") }?;
        let attributes: Map<String, Value> = serde_json::from_str(text).map_err(|e| {
            FfiError::invalid_argument(format!("`attributes_json` is not a JSON object: {e}"))
        })?;
        publisher.set_device_attributes(attributes);
        Ok(())
    })
}

/// Replaces the blacklist: events whose id is one of the `count` strings in `ids` are dropped. A count of
/// 0 clears it.
///
/// Ownership: `ids` (an array of `count` UTF-8 NUL-terminated strings) is borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_set_blacklist(
    metrics: *mut CobraMetrics,
    ids: *const *const c_char,
    count: usize,
) -> CobraStatus {
    guard(|| {
        let publisher = self::metrics(metrics)?;
        // SAFETY: forwarded contract of this function.
        let ids = unsafe { string_array(ids, count, "ids") }?;
        publisher.set_blacklist(ids);
        Ok(())
    })
}

/// Replaces the rate control: for each `ids[i]`, at most one event every `min_interval_seconds[i]` seconds
/// (events sooner than that are dropped and counted; 0 or a negative value means no limit for that id).
/// A count of 0 removes every limit.
///
/// Ownership: `ids` (`count` UTF-8 NUL-terminated strings) and `min_interval_seconds` (`count` doubles) are
/// borrowed for the call and copied.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_set_rate_control(
    metrics: *mut CobraMetrics,
    ids: *const *const c_char,
    min_interval_seconds: *const f64,
    count: usize,
) -> CobraStatus {
    guard(|| {
        let publisher = self::metrics(metrics)?;
        // SAFETY: forwarded contract of this function.
        let ids = unsafe { string_array(ids, count, "ids") }?;
        let intervals: &[f64] = if count == 0 {
            &[]
        } else if min_interval_seconds.is_null() {
            return Err(FfiError::null("min_interval_seconds"));
        } else if count > (isize::MAX as usize) / size_of::<f64>() {
            return Err(FfiError::invalid_argument("`count` is too large"));
        } else {
            // SAFETY: non-NULL, `count` readable doubles per the contract, total size bounded above.
            unsafe { std::slice::from_raw_parts(min_interval_seconds, count) }
        };
        if let Some(bad) = intervals.iter().find(|s| s.is_nan()) {
            return Err(FfiError::invalid_argument(format!(
                "`min_interval_seconds` holds {bad}"
            )));
        }
        publisher.set_rate_control(ids.into_iter().zip(intervals.iter().copied()));
        Ok(())
    })
}

/// Writes the publisher's counters to `*out_stats`.
///
/// Ownership: `out_stats` is written, not kept.
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn cobra_metrics_stats(
    metrics: *mut CobraMetrics,
    out_stats: *mut CobraMetricsStats,
) -> CobraStatus {
    guard(|| {
        let stats = self::metrics(metrics)?.stats();
        if out_stats.is_null() {
            return Err(FfiError::null("out_stats"));
        }
        let c = CobraMetricsStats {
            published: stats.published,
            disabled: stats.disabled,
            blacklisted: stats.blacklisted,
            rate_limited: stats.rate_limited,
            failed: stats.failed,
        };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_out(out_stats, c) };
        Ok(())
    })
}
