//! Authentication (`auth/handshake`, `auth/authenticate`) and the permission checks.

use std::sync::Arc;

use cobra_wire::pdu::lenient::{AuthenticateBody, HandshakeBody};
use cobra_wire::pdu::{ROLE_SECRET, action, error_code};
use serde_json::value::RawValue;

use super::json::{json_str, parse_body};
use super::{Refusal, Session};
use crate::broker::stats::RoleCounters;

pub(super) enum Auth {
    Start,
    Handshaken {
        role: Box<str>,
        nonce: String,
    },
    Authenticated {
        role: Box<str>,
        counters: Arc<RoleCounters>,
        /// Whether the role may publish: spares every publish the lookups of
        /// [`Session::check_allowed`]. A reload that changes the role's permissions closes
        /// the connection (see [`Broker::reload_apps`]), so it never goes stale.
        may_publish: bool,
    },
}

impl Session {
    /// [`Session::check_allowed`] for `rtm/publish`, from what was cached at authentication.
    pub(super) fn check_publish_allowed(&self) -> Result<(), Refusal> {
        match self.auth {
            Auth::Authenticated {
                may_publish: true, ..
            } => Ok(()),
            _ => self.check_allowed(action::PUBLISH).map(drop),
        }
    }

    pub(super) fn check_allowed(&self, action: &str) -> Result<Arc<RoleCounters>, Refusal> {
        let Auth::Authenticated { role, counters, .. } = &self.auth else {
            return Err(Refusal::new(
                error_code::NOT_AUTHENTICATED,
                format!(
                    "{action} needs an authenticated connection: auth/handshake then auth/authenticate first"
                ),
            ));
        };
        let allowed = self
            .broker
            .apps()
            .apps
            .get(&*self.appkey)
            .and_then(|a| a.roles.get(&**role))
            .is_some_and(|r| r.permissions.allows(action));
        if allowed {
            Ok(Arc::clone(counters))
        } else {
            Err(Refusal::new(
                error_code::PERMISSION_DENIED,
                format!("role {role:?} is not allowed to {action}"),
            ))
        }
    }

    pub(super) fn handshake(&mut self, body: Option<&RawValue>) -> Result<Option<String>, Refusal> {
        let b: HandshakeBody = parse_body(body)?;
        match b.method.as_deref() {
            Some(ROLE_SECRET) => {}
            other => {
                return Err(Refusal::new(
                    error_code::UNSUPPORTED_METHOD,
                    format!("handshake method {other:?} is not supported; use \"role_secret\""),
                ));
            }
        }
        let Some(role) = b.data.and_then(|d| d.role) else {
            return Err(Refusal::new(
                error_code::INVALID_BODY,
                "body.data.role is missing",
            ));
        };
        let nonce = cobra_wire::auth::new_nonce();
        let body = format!(
            r#"{{"data":{{"nonce":{},"version":{},"connection_id":{},"node":{}}}}}"#,
            json_str(&nonce),
            json_str(env!("CARGO_PKG_VERSION")),
            json_str(&self.id),
            json_str(&self.broker.settings.node)
        );
        self.auth = Auth::Handshaken {
            role: role.into(),
            nonce,
        };
        Ok(Some(body))
    }

    pub(super) fn authenticate(
        &mut self,
        body: Option<&RawValue>,
    ) -> Result<Option<String>, Refusal> {
        let b: AuthenticateBody = parse_body(body)?;
        if b.method.as_deref() != Some(ROLE_SECRET) {
            return Err(Refusal::new(
                error_code::UNSUPPORTED_METHOD,
                "authenticate method must be \"role_secret\"",
            ));
        }
        let Some(hash) = b.credentials.and_then(|c| c.hash) else {
            return Err(Refusal::new(
                error_code::INVALID_BODY,
                "body.credentials.hash is missing",
            ));
        };
        // A stray authenticate (no handshake pending) leaves the session as it was: an
        // authenticated connection stays authenticated.
        let (role, nonce) = match std::mem::replace(&mut self.auth, Auth::Start) {
            Auth::Handshaken { role, nonce } => (role, nonce),
            other => {
                self.auth = other;
                return Err(Refusal::new(
                    error_code::HANDSHAKE_REQUIRED,
                    "send auth/handshake before auth/authenticate",
                ));
            }
        };
        let apps = self.broker.apps();
        let secret = apps
            .apps
            .get(&*self.appkey)
            .and_then(|a| a.roles.get(&*role))
            .map(|r| r.secret.as_str());
        // Unknown role: compare against a dummy so timing does not reveal which roles exist.
        let ok = cobra_wire::auth::verify(secret.unwrap_or("\u{0}no-such-role"), &nonce, &hash)
            && secret.is_some();
        if !ok {
            tracing::info!(conn = %self.id, role = %role, "authentication failed");
            return Err(Refusal::new(
                error_code::AUTHENTICATION_FAILED,
                "the role is unknown or the hash does not match the secret",
            ));
        }
        let counters = self.broker.stats.role(&self.appkey, &role);
        tracing::debug!(conn = %self.id, role = %role, "authenticated");
        self.broker.set_role(&self.id, &role);
        let may_publish = apps
            .app(&self.appkey)
            .and_then(|a| a.roles.get(&*role))
            .is_some_and(|r| r.permissions.allows(action::PUBLISH));
        self.auth = Auth::Authenticated {
            role,
            counters,
            may_publish,
        };
        Ok(Some("{}".into()))
    }
}
