//! What one call hands the guest: the WIT `request`, in host terms.

use super::bindings::Request;
use super::redact::Redactor;

/// One hook call as the runtime sees it. The payload is already assembled (see
/// `model::payload`); the runtime only delivers it.
#[derive(Clone, Default)]
pub struct Invocation {
    /// Unique id of the call; the run log carries the same.
    pub request_id: String,
    /// When the event happened, RFC 3339 in UTC.
    pub timestamp: String,
    /// The hook being run.
    pub hook_id: u64,
    /// The organization that owns the hook.
    pub organization_id: u64,
    /// e.g. `annotation_content`.
    pub event: String,
    /// e.g. `initialize`.
    pub action: String,
    /// The whole payload as JSON text (a command reads it on stdin).
    pub payload: String,
    /// The hook's settings as JSON text.
    pub settings: String,
    /// Secret values by name; they exist only during the call.
    pub secrets: Vec<(String, String)>,
    /// Token minted for the hook's token owner.
    pub authorization_token: Option<String>,
    /// Base URL of the host's API.
    pub base_url: String,
}

/// No secret value, token or payload (which holds the secrets): a `{:?}` of a call shows
/// what it is, not what it carries.
impl std::fmt::Debug for Invocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.secrets.iter().map(|(key, _)| key.as_str()).collect();
        formatter
            .debug_struct("Invocation")
            .field("request_id", &self.request_id)
            .field("hook_id", &self.hook_id)
            .field("organization_id", &self.organization_id)
            .field("event", &self.event)
            .field("action", &self.action)
            .field("payload_bytes", &self.payload.len())
            .field("secrets", &keys)
            .field(
                "authorization_token",
                &self.authorization_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Invocation {
    /// A redactor for every secret value and the token of this call.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(
            self.secrets
                .iter()
                .map(|(_, value)| value.as_str())
                .chain(self.authorization_token.as_deref()),
        )
    }

    pub(crate) fn to_request(&self) -> Request {
        Request {
            request_id: self.request_id.clone(),
            timestamp: self.timestamp.clone(),
            hook_id: self.hook_id,
            organization_id: self.organization_id,
            event: self.event.clone(),
            action: self.action.clone(),
            payload: self.payload.clone(),
            settings: self.settings.clone(),
            secrets: self.secrets.clone(),
            authorization_token: self.authorization_token.clone(),
            base_url: self.base_url.clone(),
        }
    }
}
