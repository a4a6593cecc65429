//! The telemetry envelope: a pure function from an event's parts to its JSON text.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// One telemetry event's envelope, borrowed from its parts. `D` is the data's type: a
/// [`serde_json::Value`], or a [`RawValue`] when the data arrives as JSON text (the C ABI), which spares
/// building a tree only to serialize it again.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Envelope<'a, D: Serialize + ?Sized = Value> {
    /// The event id (also a channel it is published to).
    pub id: &'a str,
    /// The envelope format version (always 1).
    pub version: u32,
    /// The session id.
    pub session: &'a str,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Events published under this id so far, this one included (starts at 1).
    pub per_id_counter: u64,
    /// The device attributes, already serialized (they change rarely, events are many).
    pub device: &'a RawValue,
    /// The event's own data.
    pub data: &'a D,
}

impl<D: Serialize + ?Sized> Envelope<'_, D> {
    /// The envelope as one JSON object.
    pub fn to_json(&self) -> String {
        // Strings, integers, a JSON value and raw JSON cannot fail to serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_has_every_field_of_the_telemetry_shape() {
        let device =
            serde_json::value::to_raw_value(&json!({"game": "wiso", "os_name": "iOS"})).unwrap();
        let data = json!({"fps": 30});
        let text = Envelope {
            id: "engine_fps_id",
            version: 1,
            session: "4dacbafefc214578aa3f8c1d2975ec92",
            timestamp: 1_536_270_895_637,
            per_id_counter: 12,
            device: &device,
            data: &data,
        }
        .to_json();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({"id": "engine_fps_id", "version": 1, "session": "4dacbafefc214578aa3f8c1d2975ec92",
                   "timestamp": 1_536_270_895_637_u64, "per_id_counter": 12,
                   "device": {"game": "wiso", "os_name": "iOS"}, "data": {"fps": 30}})
        );
    }

    #[test]
    fn raw_data_is_embedded_as_is() {
        let device = serde_json::value::to_raw_value(&json!({})).unwrap();
        let data: Box<RawValue> = serde_json::from_str(r#"{"fps": 30, "list": [1, 2]}"#).unwrap();
        let e = Envelope {
            id: "x",
            version: 1,
            session: "s",
            timestamp: 0,
            per_id_counter: 1,
            device: &device,
            data: &*data,
        };
        let parsed: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(parsed["data"], json!({"fps": 30, "list": [1, 2]}));
    }

    #[test]
    fn ids_are_escaped() {
        let device = serde_json::value::to_raw_value(&json!({})).unwrap();
        let text = Envelope {
            id: "a\"b\n",
            version: 1,
            session: "s",
            timestamp: 0,
            per_id_counter: 1,
            device: &device,
            data: &Value::Null,
        }
        .to_json();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["id"], "a\"b\n");
    }
}
