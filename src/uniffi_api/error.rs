//! `CobraError`: the one error type of the bindings (a Kotlin `CobraException`, a Swift `Error`,
//! a Python exception), converted one to one from [`crate::Error`].

/// Everything that can go wrong in a call (connection problems arrive as
/// `Event::ConnectionError` instead: the SDK retries on its own).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum CobraError {
    /// A configuration value is invalid; `field` names it.
    #[error("invalid config `{field}`: {reason}")]
    InvalidConfig {
        /// The config field at fault.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument is invalid (empty channel, text that is not JSON, unknown subscription...).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The publish queue is full and the overflow policy is `RefuseNew`.
    #[error("publish queue full ({messages} messages, {bytes} bytes)")]
    QueueFull {
        /// Messages held when the new one was refused.
        messages: u64,
        /// Bytes held when the new one was refused.
        bytes: u64,
    },
    /// A message is larger than `max_message_size`.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the refused message.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// No answer within the given time.
    #[error("no response within {timeout_ms} ms")]
    Timeout {
        /// The time waited.
        timeout_ms: u64,
    },
    /// The server answered with `<action>/error`.
    #[error("server refused `{action}`: {code}: {reason}")]
    Server {
        /// The request's action, e.g. `rtm/read`.
        action: String,
        /// The machine-readable error code.
        code: String,
        /// The human-readable reason.
        reason: String,
    },
    /// The client was shut down while the call waited.
    #[error("client is shut down")]
    Shutdown,
    /// The request was abandoned by `disconnect` or `suspend`.
    #[error("request cancelled: {reason}")]
    Cancelled {
        /// Why.
        reason: String,
    },
    /// A local I/O error.
    #[error("I/O error: {reason}")]
    Io {
        /// Details.
        reason: String,
    },
    /// The server broke the protocol.
    #[error("protocol error: {reason}")]
    Protocol {
        /// Details.
        reason: String,
    },
}

impl From<crate::Error> for CobraError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        // Exhaustive on purpose (`non_exhaustive` does not apply inside the crate): a new SDK
        // error variant must be mapped here.
        match e {
            E::InvalidConfig { field, reason } => CobraError::InvalidConfig {
                field: field.to_string(),
                reason,
            },
            E::InvalidArgument(reason) => CobraError::InvalidArgument { reason },
            E::QueueFull { messages, bytes } => CobraError::QueueFull {
                messages: messages as u64,
                bytes: bytes as u64,
            },
            E::MessageTooLarge { size, limit } => CobraError::MessageTooLarge {
                size: size as u64,
                limit: limit as u64,
            },
            E::Timeout(d) => CobraError::Timeout {
                timeout_ms: super::config::millis(d),
            },
            E::Server {
                action,
                error,
                reason,
            } => CobraError::Server {
                action,
                code: error,
                reason,
            },
            E::Shutdown => CobraError::Shutdown,
            E::Cancelled(reason) => CobraError::Cancelled { reason },
            E::Io(reason) => CobraError::Io { reason },
            E::Protocol(reason) => CobraError::Protocol { reason },
        }
    }
}

/// Parses JSON text handed in by the foreign side.
pub(super) fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, CobraError> {
    serde_json::from_str(text).map_err(|e| CobraError::InvalidArgument {
        reason: format!("{what} is not valid JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sdk_errors_keep_their_fields() {
        assert_eq!(
            CobraError::from(crate::Error::Timeout(Duration::from_millis(1500))),
            CobraError::Timeout { timeout_ms: 1500 }
        );
        let e = CobraError::from(crate::Error::Server {
            action: "rtm/read".into(),
            error: "authorization_failed".into(),
            reason: "no read permission".into(),
        });
        assert_eq!(
            e.to_string(),
            "server refused `rtm/read`: authorization_failed: no read permission"
        );
        assert_eq!(
            CobraError::from(crate::Error::InvalidConfig {
                field: "endpoint",
                reason: "empty".into()
            }),
            CobraError::InvalidConfig {
                field: "endpoint".into(),
                reason: "empty".into()
            }
        );
    }

    #[test]
    fn bad_json_is_an_invalid_argument() {
        assert!(matches!(
            parse_json("message", "{nope"),
            Err(CobraError::InvalidArgument { reason }) if reason.starts_with("message is not valid JSON")
        ));
        assert_eq!(parse_json("m", "[1]").ok(), Some(serde_json::json!([1])));
    }
}
