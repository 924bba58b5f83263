//! One hook call as the extension sees it: typed access to the payload, settings, secrets
//! and token.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// One hook call. Everything Rossum's payload carries is here, parsed once.
#[derive(Debug, Clone)]
pub struct Call {
    request_id: String,
    timestamp: String,
    hook_id: u64,
    organization_id: u64,
    event: String,
    action: String,
    payload: Value,
    settings: Map<String, Value>,
    secrets: Vec<(String, String)>,
    token: Option<String>,
    base_url: String,
    #[cfg_attr(not(feature = "component"), allow(dead_code))]
    in_component: bool,
}

impl Call {
    /// Builds a call from a payload object, as a webhook or a command receives it.
    ///
    /// ```
    /// let payload = wasmhook_sdk::json!({
    ///     "request_id": "r-1", "timestamp": "2026-01-01T00:00:00Z",
    ///     "hook": "http://localhost:8080/api/v1/hooks/42",
    ///     "event": "upload", "action": "created",
    ///     "settings": {"greeting": "Hi"}, "secrets": {"api_key": "k"},
    ///     "base_url": "http://localhost:8080", "files": []
    /// });
    /// let call = wasmhook_sdk::Call::from_payload(payload)?;
    /// assert_eq!(call.hook_id(), 42);
    /// assert_eq!(call.secret("api_key"), Some("k"));
    /// assert_eq!(call.setting("greeting").and_then(|g| g.as_str()), Some("Hi"));
    /// # Ok::<(), wasmhook_sdk::Error>(())
    /// ```
    pub fn from_payload(payload: Value) -> Result<Self, Error> {
        let Value::Object(payload) = payload else {
            return Err(Error::new("the payload is not a JSON object"));
        };
        let text = |key: &str| {
            payload
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let settings = match payload.get("settings") {
            Some(Value::Object(settings)) => settings.clone(),
            _ => Map::new(),
        };
        let secrets = match payload.get("secrets") {
            Some(Value::Object(secrets)) => secrets
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                .collect(),
            _ => Vec::new(),
        };
        // The hook's id is the last segment of its URL (`.../hooks/42`).
        let hook_id = text("hook")
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0);
        Ok(Call {
            request_id: text("request_id"),
            timestamp: text("timestamp"),
            hook_id,
            organization_id: 0,
            event: text("event"),
            action: text("action"),
            token: payload
                .get("rossum_authorization_token")
                .and_then(Value::as_str)
                .map(str::to_owned),
            base_url: text("base_url"),
            settings,
            secrets,
            payload: Value::Object(payload),
            in_component: false,
        })
    }

    #[cfg(feature = "component")]
    pub(crate) fn from_request(
        request: crate::bindings::wasmhook::extension::types::Request,
    ) -> Result<Self, Error> {
        let Ok(Value::Object(payload)) = serde_json::from_str(&request.payload) else {
            return Err(Error::new(
                "the host sent a payload that is not a JSON object",
            ));
        };
        let settings = match serde_json::from_str(&request.settings) {
            Ok(Value::Object(settings)) => settings,
            _ => Map::new(),
        };
        Ok(Call {
            request_id: request.request_id,
            timestamp: request.timestamp,
            hook_id: request.hook_id,
            organization_id: request.organization_id,
            event: request.event,
            action: request.action,
            payload: Value::Object(payload),
            settings,
            secrets: request.secrets,
            token: request.authorization_token,
            base_url: request.base_url,
            in_component: true,
        })
    }

    /// Unique id of this call; the run log carries the same.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// When the event happened, RFC 3339 in UTC.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// Id of the hook being run.
    pub fn hook_id(&self) -> u64 {
        self.hook_id
    }

    /// Id of the organization that owns the hook (0 in the command form, whose payload does
    /// not carry it).
    pub fn organization_id(&self) -> u64 {
        self.organization_id
    }

    /// The event, e.g. `annotation_content`.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The action, e.g. `initialize`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The whole payload (a JSON object), exactly as a webhook would receive it.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// The payload deserialized into your own type.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Upload { files: Vec<serde_json::Value> }
    /// let call = wasmhook_sdk::Call::from_payload(wasmhook_sdk::json!({"files": []}))?;
    /// let upload: Upload = call.payload_as()?;
    /// assert!(upload.files.is_empty());
    /// # Ok::<(), wasmhook_sdk::Error>(())
    /// ```
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.payload).map_err(Error::from)
    }

    /// A value inside the payload by a JSON pointer, e.g. `/annotation/content`.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        self.payload.pointer(pointer)
    }

    /// The hook's settings object.
    pub fn settings(&self) -> &Map<String, Value> {
        &self.settings
    }

    /// One setting by name; none when the hook's settings do not have it.
    pub fn setting(&self, name: &str) -> Option<&Value> {
        self.settings.get(name)
    }

    /// The settings deserialized into your own type; missing keys fall to serde defaults.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Settings { #[serde(default)] max_total: Option<i64> }
    /// let call = wasmhook_sdk::Call::from_payload(wasmhook_sdk::json!({"settings": {"max_total": 5}}))?;
    /// assert_eq!(call.settings_as::<Settings>()?.max_total, Some(5));
    /// # Ok::<(), wasmhook_sdk::Error>(())
    /// ```
    pub fn settings_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(Value::Object(self.settings.clone()))
            .map_err(|error| Error::new(format!("the hook's settings do not fit: {error}")))
    }

    /// A secret by name. Secrets exist only during the call; the host redacts their values
    /// from everything it records.
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The names of the secrets this call has.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(|(name, _)| name.as_str())
    }

    /// The API token minted for the hook's token owner, if it has one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Base URL of the host's API, for calls back with the token.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to the installation's own API (`path` under `/api/v1`, e.g.
    /// `/hooks/12`) carrying the token minted for this call, when the hook has a token
    /// owner. Send it with [`Request::send`](crate::http::Request::send).
    #[cfg(feature = "http")]
    pub fn api(&self, method: &str, path: &str) -> crate::http::Request {
        let url = format!("{}/api/v1{path}", self.base_url().trim_end_matches('/'));
        let request = crate::http::Request::new(method, url);
        match self.token() {
            Some(token) => request.bearer(token),
            None => request,
        }
    }

    /// Time left before the host stops this call; `None` in the command form, where the
    /// host does not say.
    pub fn remaining_time(&self) -> Option<Duration> {
        #[cfg(feature = "component")]
        if self.in_component {
            let millis = crate::bindings::wasmhook::extension::host::remaining_time_ms();
            return Some(Duration::from_millis(millis));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_values_by_pointer() -> Result<(), Error> {
        let call = Call::from_payload(serde_json::json!({"annotation": {"content": [1, 2]}}))?;
        assert_eq!(
            call.pointer("/annotation/content/1"),
            Some(&serde_json::json!(2))
        );
        assert_eq!(call.pointer("/annotation/nothing"), None);
        Ok(())
    }

    #[test]
    fn refuses_a_payload_that_is_not_an_object() {
        assert!(Call::from_payload(serde_json::json!([1])).is_err());
    }
}
