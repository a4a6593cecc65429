//! The admin requests: `admin/get_connections`, `admin/close_connection`.

use cobra_wire::pdu::error_code;
use cobra_wire::pdu::lenient::CloseConnectionBody;
use serde_json::value::RawValue;

use super::json::{json_str, parse_body};
use super::{Refusal, Session};
use crate::broker::CLOSE_NORMAL;

impl Session {
    pub(super) fn get_connections(&mut self) -> Result<Option<String>, Refusal> {
        let ids = self.broker.connection_ids(&self.appkey);
        let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        Ok(Some(format!(r#"{{"connections":{list}}}"#)))
    }

    pub(super) fn close_connection(
        &mut self,
        body: Option<&RawValue>,
    ) -> Result<Option<String>, Refusal> {
        let b: CloseConnectionBody = parse_body(body)?;
        let id = b.connection_id.ok_or_else(|| {
            Refusal::new(error_code::INVALID_BODY, "body.connection_id is missing")
        })?;
        if self
            .broker
            .close_connection(&self.appkey, &id, CLOSE_NORMAL)
        {
            Ok(Some(format!(r#"{{"connection_id":{}}}"#, json_str(&id))))
        } else {
            Err(Refusal::new(
                error_code::UNKNOWN_CONNECTION,
                format!("no connection {id:?} of this app on this node"),
            ))
        }
    }
}
