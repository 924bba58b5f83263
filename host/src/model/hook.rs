//! A hook: Rossum's Hook object, and the rules a hook must satisfy before it is stored.
//!
//! Validation here is what needs no database: field types and bounds, events, the
//! function config, settings against `settings_schema`, secrets against `secrets_schema`.
//! What needs the database (queues, run_after without cycles, the module, the token owner,
//! all of the same organization) is checked by `store::hooks` in the transaction that
//! writes the hook, so nothing is ever half-written.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event::{EventAction, EVENTS};
use super::id_from_reference;
use super::schedule::Schedule;
use crate::outbound::AllowList;

/// The longest name and description accepted.
pub const MAX_NAME_CHARS: usize = 200;
/// Client metadata is capped, as Rossum caps it.
pub const MAX_METADATA_BYTES: usize = 4096;
/// The bounds of `token_lifetime_s`.
pub const MAX_TOKEN_LIFETIME_S: u64 = 7200;
/// A token's lifetime after the response when the hook does not say.
pub const DEFAULT_TOKEN_LIFETIME_S: u64 = 600;
/// The bounds of `config.retry_count` (attempts after the first), and its default.
pub const MAX_RETRY_COUNT: u64 = 4;
/// The `runtime` every function hook here has.
pub const WASM_RUNTIME: &str = "wasm";
/// Rossum's default secrets schema: any keys, string values.
pub fn default_secrets_schema() -> Value {
    serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}})
}
/// The related objects a hook may ask to be sideloaded.
pub const SIDELOADS: &[&str] = &[
    "queues",
    "modifiers",
    "schemas",
    "emails",
    "related_emails",
    "relations",
    "child_relations",
    "suggested_edits",
    "assignees",
    "pages",
    "notes",
    "labels",
    "automation_blockers",
];
/// Fields a client may send back from a GET that are not its to set; they are ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "url",
    "organization",
    "status",
    "created_at",
    "created_by",
    "modified_at",
    "modified_by",
    "hook_template",
    "secrets_keys",
];
/// The keys of a function (or job) hook's config.
const FUNCTION_CONFIG_KEYS: &[&str] = &[
    "runtime",
    "module",
    "timeout_s",
    "memory_size_mb",
    "retry_count",
    "private",
    "payload_logging_enabled",
    "schedule",
    "secret",
    "app",
    "allowed_hosts",
];
/// The keys of a webhook hook's config.
const WEBHOOK_CONFIG_KEYS: &[&str] = &[
    "url",
    "secret",
    "insecure_ssl",
    "client_ssl_certificate",
    "client_ssl_key",
    "private",
    "schedule",
    "timeout_s",
    "retry_count",
    "max_polling_time_s",
    "retry_after_polling_failure",
    "retry_on_any_non_2xx",
    "payload_logging_enabled",
    "app",
];
/// The bounds of a webhook's `config.timeout_s`, and its default.
pub const MAX_WEBHOOK_TIMEOUT_S: u64 = 60;
/// See [`MAX_WEBHOOK_TIMEOUT_S`].
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// The bounds of `config.max_polling_time_s`, and its default.
pub const MAX_POLLING_TIME_S: u64 = 3600;
/// See [`MAX_POLLING_TIME_S`].
pub const DEFAULT_POLLING_TIME_S: u64 = 300;
/// The hook types: a module run here, a URL called, a module run on a schedule.
pub const HOOK_TYPES: &[&str] = &["function", "webhook", "job"];

/// A rule a hook broke: the field, and what is wrong with it. Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct HookError {
    /// The field, e.g. `config.timeout_s`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl HookError {
    /// A rule broken by `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        HookError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The installation's bounds on what a hook may ask: a function's limits, a webhook's URL.
#[derive(Debug, Clone, Copy)]
pub struct HookBounds {
    /// Most seconds `config.timeout_s` may ask.
    pub max_timeout_s: u64,
    /// Least seconds.
    pub min_timeout_s: u64,
    /// Most MiB `config.memory_size_mb` may ask.
    pub max_memory_mb: u64,
    /// Least MiB.
    pub min_memory_mb: u64,
    /// Whether a webhook's `config.url` may be plain `http://` (the operator's
    /// `allow_http_webhooks`); otherwise it must be `https://`, since the payload carries the
    /// hook's secrets and a minted token.
    pub allow_http_webhooks: bool,
}

/// The hook fields stored as one JSON document (the rest are columns or relations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDocument {
    /// `event` or `event.action` names.
    pub events: Vec<String>,
    /// Related objects to embed in the payload.
    pub sideload: Vec<String>,
    /// Client data.
    pub metadata: Map<String, Value>,
    /// The config, without `secret` (sealed) and with `module` as an id.
    pub config: Map<String, Value>,
    /// Copied into every payload.
    pub settings: Map<String, Value>,
    /// JSON Schema for `settings`.
    pub settings_schema: Option<Value>,
    /// JSON Schema for `secrets`.
    pub secrets_schema: Value,
    /// Saved test input.
    pub test: Map<String, Value>,
    /// Presentation fields.
    pub description: Option<String>,
    /// See `description`.
    pub guide: Option<String>,
    /// See `description`.
    pub read_more_url: Option<String>,
    /// See `description`.
    pub extension_image_url: Option<String>,
    /// `custom` or `rossum_store`.
    pub extension_source: String,
    /// Seconds the minted token outlives the response; none means 600.
    pub token_lifetime_s: Option<u64>,
}

/// A stored hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// Its id.
    pub id: u64,
    /// Its organization.
    pub organization_id: u64,
    /// Its name.
    pub name: String,
    /// `function` (the type this installation runs).
    pub hook_type: String,
    /// Only active hooks are run for events.
    pub active: bool,
    /// Queues it is subscribed to.
    pub queues: Vec<u64>,
    /// Hooks that must finish before it runs.
    pub run_after: Vec<u64>,
    /// Its module (function hooks).
    pub module_id: Option<u64>,
    /// The user a token is minted for.
    pub token_owner: Option<u64>,
    /// Everything else.
    pub document: HookDocument,
    /// Names of its secrets (values are sealed).
    pub secrets_keys: Vec<String>,
    /// The sealed secrets and config.secret; never rendered.
    pub sealed_secrets: Option<Vec<u8>>,
    /// Timestamps and authors.
    pub created_at: String,
    /// See `created_at`.
    pub created_by: Option<u64>,
    /// See `created_at`.
    pub modified_at: String,
    /// See `created_at`.
    pub modified_by: Option<u64>,
}

/// How failed non-interactive runs are retried, from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first (`config.retry_count`, 0 to 4, default 4).
    pub retry_count: u64,
    /// Retry a webhook on any status that is not 2xx, not only 408, 429, 500, 502-504.
    pub retry_on_any_non_2xx: bool,
}

impl RetryPolicy {
    /// Whether a webhook's answer with `status` is worth another attempt.
    pub fn retries_status(&self, status: u16) -> bool {
        if (200..300).contains(&status) {
            return false;
        }
        self.retry_on_any_non_2xx || matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
    }
}

/// How a webhook is called, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Seconds to wait for an answer to a non-interactive call (0 to 60, default 30).
    pub timeout_s: u64,
    /// Skip TLS certificate checks.
    pub insecure_ssl: bool,
    /// How long the async protocol may poll (`upload.created`, `invocation.scheduled`).
    pub max_polling_time_s: u64,
    /// Call again when polling fails.
    pub retry_after_polling_failure: bool,
}

/// The call limits and retry policy of a function hook, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionLimits {
    /// `config.timeout_s`.
    pub timeout_s: u64,
    /// `config.memory_size_mb`.
    pub memory_size_mb: u64,
    /// `config.retry_count`.
    pub retry_count: u64,
}

impl Hook {
    /// Whether the hook runs for `event` (listed whole or as `event.action`).
    pub fn subscribes_to(&self, event: &EventAction) -> bool {
        self.document
            .events
            .iter()
            .any(|name| name == event.event() || *name == event.to_string())
    }

    /// Whether an event on `queue_id` (or on no queue) runs the hook: it is active,
    /// subscribes to the event, and is on the queue. The API reserves limits for the hooks
    /// the dispatcher will run by this same rule.
    pub fn runs_for(&self, event: &EventAction, queue_id: Option<u64>) -> bool {
        self.active
            && self.subscribes_to(event)
            && queue_id.is_none_or(|queue| self.queues.contains(&queue))
    }

    /// The function limits, defaults filled in.
    pub fn limits(&self) -> FunctionLimits {
        let number = |key: &str, default: u64| {
            self.document
                .config
                .get(key)
                .and_then(Value::as_u64)
                .unwrap_or(default)
        };
        FunctionLimits {
            timeout_s: number("timeout_s", DEFAULT_TIMEOUT_S),
            memory_size_mb: number("memory_size_mb", 256),
            retry_count: number("retry_count", MAX_RETRY_COUNT),
        }
    }

    /// Whether the hook runs a module here (`function`, `job`) rather than calling a URL.
    pub fn runs_module(&self) -> bool {
        self.hook_type != "webhook"
    }

    /// `config.schedule`, when the hook has one (validated when saved).
    pub fn schedule(&self) -> Option<Schedule> {
        let expression = self
            .document
            .config
            .get("schedule")?
            .get("cron")?
            .as_str()?;
        Schedule::saved(expression).ok()
    }

    /// The hosts its guest may call (`config.allowed_hosts`, validated when saved).
    pub fn allowed_hosts(&self) -> AllowList {
        let patterns = self
            .document
            .config
            .get("allowed_hosts")
            .and_then(Value::as_array)
            .map(|patterns| {
                patterns
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        AllowList::parse(patterns).unwrap_or_default()
    }

    /// Whether `config.private` is set: the URL or module and the secret are hidden and can
    /// no longer be changed.
    pub fn is_private(&self) -> bool {
        self.config_flag("private", false)
    }

    /// `config.url` of a webhook.
    pub fn webhook_url(&self) -> Option<&str> {
        self.document.config.get("url").and_then(Value::as_str)
    }

    /// How a failed non-interactive run is retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retry_count: self.limits().retry_count,
            retry_on_any_non_2xx: self.config_flag("retry_on_any_non_2xx", false),
        }
    }

    /// How a webhook is called (defaults filled in).
    pub fn webhook_options(&self) -> WebhookOptions {
        let config = &self.document.config;
        WebhookOptions {
            timeout_s: config
                .get("timeout_s")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_TIMEOUT_S),
            insecure_ssl: self.config_flag("insecure_ssl", false),
            max_polling_time_s: config
                .get("max_polling_time_s")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_POLLING_TIME_S),
            retry_after_polling_failure: self.config_flag("retry_after_polling_failure", true),
        }
    }

    fn config_flag(&self, key: &str, default: bool) -> bool {
        self.document
            .config
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    /// Seconds a minted token stays valid after the response.
    pub fn token_lifetime_s(&self) -> u64 {
        self.document
            .token_lifetime_s
            .unwrap_or(DEFAULT_TOKEN_LIFETIME_S)
    }

    /// The hook in the form a client writes it (references as ids), for PATCH to merge
    /// into.
    pub fn as_input(&self) -> Map<String, Value> {
        let document = &self.document;
        let mut config = document.config.clone();
        if let Some(module) = self.module_id {
            config.insert("module".into(), module.into());
        }
        let mut input = Map::new();
        input.insert("name".into(), self.name.clone().into());
        input.insert("type".into(), self.hook_type.clone().into());
        input.insert("active".into(), self.active.into());
        input.insert("queues".into(), self.queues.clone().into());
        input.insert("run_after".into(), self.run_after.clone().into());
        input.insert("events".into(), document.events.clone().into());
        input.insert("sideload".into(), document.sideload.clone().into());
        input.insert("metadata".into(), Value::Object(document.metadata.clone()));
        input.insert("config".into(), Value::Object(config));
        input.insert("settings".into(), Value::Object(document.settings.clone()));
        input.insert(
            "settings_schema".into(),
            document.settings_schema.clone().unwrap_or(Value::Null),
        );
        input.insert("secrets_schema".into(), document.secrets_schema.clone());
        input.insert("test".into(), Value::Object(document.test.clone()));
        input.insert("description".into(), document.description.clone().into());
        input.insert("guide".into(), document.guide.clone().into());
        input.insert(
            "read_more_url".into(),
            document.read_more_url.clone().into(),
        );
        input.insert(
            "extension_image_url".into(),
            document.extension_image_url.clone().into(),
        );
        input.insert(
            "extension_source".into(),
            document.extension_source.clone().into(),
        );
        input.insert("token_owner".into(), self.token_owner.into());
        input.insert("token_lifetime_s".into(), document.token_lifetime_s.into());
        input
    }
}

/// What happens to a write-only value on save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Not sent: keep what is stored.
    Keep,
    /// Replace with this.
    Set(T),
    /// Sent as null: remove.
    Remove,
}

/// A hook as a client wrote it, validated as far as it can be without the database.
#[derive(Debug, Clone)]
pub struct HookDraft {
    /// See [`Hook`].
    pub name: String,
    /// See [`Hook`].
    pub hook_type: String,
    /// See [`Hook`].
    pub active: bool,
    /// Queue ids, to be checked against the organization.
    pub queues: Vec<u64>,
    /// Hook ids, to be checked against the organization and for cycles.
    pub run_after: Vec<u64>,
    /// The module id from `config.module`.
    pub module_id: Option<u64>,
    /// The token owner's user id.
    pub token_owner: Option<u64>,
    /// Everything else.
    pub document: HookDocument,
    /// New secret values, when sent.
    pub secrets: Change<Vec<(String, String)>>,
    /// A new `config.secret`, when sent.
    pub config_secret: Change<String>,
}

/// Validates a hook as written (a whole object: for PATCH, the stored hook with the sent
/// fields laid over it).
pub fn parse_draft(
    input: &Map<String, Value>,
    bounds: &HookBounds,
) -> Result<HookDraft, HookError> {
    let known = [
        "name",
        "type",
        "active",
        "queues",
        "run_after",
        "events",
        "sideload",
        "metadata",
        "config",
        "settings",
        "settings_schema",
        "secrets",
        "secrets_schema",
        "test",
        "description",
        "guide",
        "read_more_url",
        "extension_image_url",
        "extension_source",
        "token_owner",
        "token_lifetime_s",
    ];
    if let Some(key) = input
        .keys()
        .find(|key| !known.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()))
    {
        return Err(HookError::new(key.as_str(), "not a field of a hook"));
    }
    let field = |name: &str| input.get(name).filter(|value| !value.is_null());

    let name = match field("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        Some(Value::String(_)) | None => return Err(HookError::new("name", "required")),
        Some(_) => return Err(HookError::new("name", "must be a string")),
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(HookError::new(
            "name",
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    let hook_type = match field("type") {
        None => "function".to_owned(),
        Some(Value::String(kind)) if HOOK_TYPES.contains(&kind.as_str()) => kind.clone(),
        Some(other) => {
            return Err(HookError::new(
                "type",
                format!("`{}` is not one of function, webhook, job", plain(other)),
            ))
        }
    };
    let active = boolean(input, "active", true)?;
    let queues = references(input, "queues", "queues")?;
    let run_after = references(input, "run_after", "hooks")?;
    let events = events(input)?;
    let sideload = string_list(input, "sideload")?;
    if let Some(unknown) = sideload
        .iter()
        .find(|name| !SIDELOADS.contains(&name.as_str()))
    {
        return Err(HookError::new(
            "sideload",
            format!(
                "`{unknown}` cannot be sideloaded; one of: {}",
                SIDELOADS.join(", ")
            ),
        ));
    }
    let metadata = object(input, "metadata")?;
    if Value::Object(metadata.clone()).to_string().len() > MAX_METADATA_BYTES {
        return Err(HookError::new(
            "metadata",
            format!("at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    let (config, module_id, config_secret) = match hook_type.as_str() {
        "webhook" => webhook_config(input, bounds)?,
        _ => function_config(input, bounds, &hook_type)?,
    };
    if hook_type == "job" && !config.contains_key("schedule") {
        return Err(HookError::new(
            "config.schedule",
            "required: a job hook runs on its schedule, e.g. {\"cron\": \"*/10 * * * *\"}",
        ));
    }
    let settings = object(input, "settings")?;
    let settings_schema = match field("settings_schema") {
        None => None,
        Some(schema @ Value::Object(_)) => Some(schema.clone()),
        Some(_) => {
            return Err(HookError::new(
                "settings_schema",
                "must be an object or null",
            ))
        }
    };
    if let Some(schema) = &settings_schema {
        validate_settings(schema, &settings)?;
    }
    let secrets_schema = match field("secrets_schema") {
        None => default_secrets_schema(),
        Some(schema) => schema.clone(),
    };
    check_secrets_schema(&secrets_schema)?;
    let secrets = match input.get("secrets") {
        None => Change::Keep,
        Some(Value::Null) => Change::Remove,
        Some(Value::Object(values)) => {
            let mut pairs = Vec::with_capacity(values.len());
            for (key, value) in values {
                match value {
                    Value::String(text) => pairs.push((key.clone(), text.clone())),
                    _ => return Err(HookError::new(format!("secrets.{key}"), "must be a string")),
                }
            }
            validate_secrets(&secrets_schema, &pairs)?;
            Change::Set(pairs)
        }
        Some(_) => return Err(HookError::new("secrets", "must be an object of strings")),
    };
    let test = object(input, "test")?;
    let description = optional_string(input, "description")?;
    let guide = optional_string(input, "guide")?;
    let read_more_url = optional_string(input, "read_more_url")?;
    let extension_image_url = optional_string(input, "extension_image_url")?;
    let extension_source = match field("extension_source") {
        None => "custom".to_owned(),
        Some(Value::String(source)) if source == "custom" || source == "rossum_store" => {
            source.clone()
        }
        Some(other) => {
            return Err(HookError::new(
                "extension_source",
                format!("`{}` is not one of custom, rossum_store", plain(other)),
            ))
        }
    };
    let token_owner =
        match field("token_owner") {
            None => None,
            Some(reference) => Some(id_from_reference(reference, "users").ok_or_else(|| {
                HookError::new("token_owner", "expected a user URL, an id or null")
            })?),
        };
    let token_lifetime_s = match field("token_lifetime_s") {
        None => None,
        Some(value) => match value.as_u64() {
            Some(seconds) if seconds <= MAX_TOKEN_LIFETIME_S => Some(seconds),
            _ => {
                return Err(HookError::new(
                    "token_lifetime_s",
                    format!("must be an integer from 0 to {MAX_TOKEN_LIFETIME_S}, or null"),
                ))
            }
        },
    };
    Ok(HookDraft {
        name,
        hook_type,
        active,
        queues,
        run_after,
        module_id,
        token_owner,
        document: HookDocument {
            events,
            sideload,
            metadata,
            config,
            settings,
            settings_schema,
            secrets_schema,
            test,
            description,
            guide,
            read_more_url,
            extension_image_url,
            extension_source,
            token_lifetime_s,
        },
        secrets,
        config_secret,
    })
}

/// A JSON value shown in a message, strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn boolean(input: &Map<String, Value>, key: &str, default: bool) -> Result<bool, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(HookError::new(key, "must be true or false")),
    }
}

fn object(input: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(HookError::new(key, "must be an object")),
    }
}

fn optional_string(input: &Map<String, Value>, key: &str) -> Result<Option<String>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(HookError::new(key, "must be a string or null")),
    }
}

fn string_list(input: &Map<String, Value>, key: &str) -> Result<Vec<String>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(HookError::new(key, "must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(HookError::new(key, "must be a list of strings")),
    }
}

fn references(
    input: &Map<String, Value>,
    key: &str,
    collection: &str,
) -> Result<Vec<u64>, HookError> {
    let items = match input.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(HookError::new(
                key,
                format!("must be a list of {collection} URLs"),
            ))
        }
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = id_from_reference(item, collection).ok_or_else(|| {
            HookError::new(
                key,
                format!("`{}` is not a URL of {collection}", plain(item)),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn events(input: &Map<String, Value>) -> Result<Vec<String>, HookError> {
    let names = string_list(input, "events")?;
    let mut events: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let known = match name.split_once('.') {
            Some((event, action)) => EventAction::new(event, action).map(|_| ()),
            None if EVENTS.iter().any(|(event, _)| *event == name) => Ok(()),
            None => EventAction::new(&name, "").map(|_| ()),
        };
        if let Err(error) = known {
            return Err(HookError::new("events", error.to_string()));
        }
        if !events.contains(&name) {
            events.push(name);
        }
    }
    Ok(events)
}

type ConfigParts = (Map<String, Value>, Option<u64>, Change<String>);

/// The config object, refusing keys that are not `allowed`.
fn config_object(
    input: &Map<String, Value>,
    allowed: &[&str],
    kind: &str,
    required: &str,
) -> Result<Map<String, Value>, HookError> {
    let config = match input.get("config") {
        None | Some(Value::Null) => {
            return Err(HookError::new(
                "config",
                format!("required: a {kind} hook needs {required}"),
            ))
        }
        Some(Value::Object(config)) => config.clone(),
        Some(_) => return Err(HookError::new("config", "must be an object")),
    };
    if let Some(key) = config.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(HookError::new(
            format!("config.{key}"),
            format!(
                "not a key of a {kind} hook's config; the keys are: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(config)
}

/// `config.key`, when set, is an integer from `low` to `high`.
fn bounded(config: &Map<String, Value>, key: &str, low: u64, high: u64) -> Result<(), HookError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(value) => match value.as_u64() {
            Some(number) if (low..=high).contains(&number) => Ok(()),
            _ => Err(HookError::new(
                format!("config.{key}"),
                format!("must be an integer from {low} to {high}"),
            )),
        },
    }
}

/// `config.key`, when set, is true or false.
fn flags(config: &Map<String, Value>, keys: &[&str]) -> Result<(), HookError> {
    for key in keys {
        if let Some(value) = config.get(*key) {
            if !value.is_boolean() && !value.is_null() {
                return Err(HookError::new(
                    format!("config.{key}"),
                    "must be true or false",
                ));
            }
        }
    }
    Ok(())
}

/// What the config shares whatever the type: schedule, app, and the write-only secret
/// (taken out of the config, to be sealed).
fn common_config(config: &mut Map<String, Value>) -> Result<Change<String>, HookError> {
    match config.get("schedule") {
        None | Some(Value::Null) => {
            config.remove("schedule");
        }
        Some(Value::Object(schedule)) if schedule.is_empty() => {
            config.remove("schedule");
        }
        Some(Value::Object(schedule)) => {
            if let Some(key) = schedule.keys().find(|key| key.as_str() != "cron") {
                return Err(HookError::new(
                    format!("config.schedule.{key}"),
                    "not a key of a schedule; it has only `cron`",
                ));
            }
            match schedule.get("cron") {
                Some(Value::String(expression)) => {
                    Schedule::parse(expression)
                        .map_err(|reason| HookError::new("config.schedule.cron", reason))?;
                }
                _ => {
                    return Err(HookError::new(
                        "config.schedule.cron",
                        "required: a five-field cron expression in UTC, e.g. \"*/10 * * * *\"",
                    ))
                }
            }
        }
        Some(_) => return Err(HookError::new("config.schedule", "must be an object")),
    }
    if let Some(app) = config.get("app") {
        if !app.is_object() && !app.is_null() {
            return Err(HookError::new("config.app", "must be an object"));
        }
    }
    flags(config, &["private", "payload_logging_enabled"])?;
    match config.remove("secret") {
        None => Ok(Change::Keep),
        Some(Value::Null) => Ok(Change::Remove),
        Some(Value::String(secret)) if !secret.is_empty() => Ok(Change::Set(secret)),
        Some(_) => Err(HookError::new(
            "config.secret",
            "must be a non-empty string or null",
        )),
    }
}

/// The config of a hook that runs a module: `function`, or `job` (on its schedule).
fn function_config(
    input: &Map<String, Value>,
    bounds: &HookBounds,
    kind: &str,
) -> Result<ConfigParts, HookError> {
    let mut config = config_object(input, FUNCTION_CONFIG_KEYS, kind, "`runtime` and `module`")?;
    match config.get("runtime") {
        Some(Value::String(runtime)) if runtime == WASM_RUNTIME => {}
        None | Some(Value::Null) => {
            return Err(HookError::new("config.runtime", "required: `wasm`"))
        }
        Some(other) => {
            return Err(HookError::new(
                "config.runtime",
                format!(
                    "`{}` is not available here; the runtime is `wasm`",
                    plain(other)
                ),
            ))
        }
    }
    let module_id = match config.remove("module") {
        None | Some(Value::Null) => {
            return Err(HookError::new(
                "config.module",
                "required: the URL of an uploaded module",
            ))
        }
        Some(reference) => id_from_reference(&reference, "modules").ok_or_else(|| {
            HookError::new(
                "config.module",
                format!("`{}` is not a module URL", plain(&reference)),
            )
        })?,
    };
    bounded(
        &config,
        "timeout_s",
        bounds.min_timeout_s,
        bounds.max_timeout_s,
    )?;
    bounded(
        &config,
        "memory_size_mb",
        bounds.min_memory_mb,
        bounds.max_memory_mb,
    )?;
    bounded(&config, "retry_count", 0, MAX_RETRY_COUNT)?;
    match config.get("allowed_hosts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(patterns)) => {
            let mut texts = Vec::with_capacity(patterns.len());
            for pattern in patterns {
                match pattern {
                    Value::String(text) => texts.push(text.as_str()),
                    _ => {
                        return Err(HookError::new(
                            "config.allowed_hosts",
                            "must be a list of host or host:port strings",
                        ))
                    }
                }
            }
            AllowList::parse(texts)
                .map_err(|reason| HookError::new("config.allowed_hosts", reason))?;
        }
        Some(_) => {
            return Err(HookError::new(
                "config.allowed_hosts",
                "must be a list of host or host:port strings",
            ))
        }
    }
    let config_secret = common_config(&mut config)?;
    Ok((config, Some(module_id), config_secret))
}

/// Why a plain `http://` webhook URL is refused, and how the operator allows it.
const PLAIN_HTTP_WEBHOOK: &str = "must be an https:// URL: a webhook's payload carries the \
    hook's secrets and a token. The operator may allow plain http:// with \
    WASMHOOK_ALLOW_HTTP_WEBHOOKS=true (allow_http_webhooks under [network])";

/// The config of a webhook: the URL it calls and how.
fn webhook_config(
    input: &Map<String, Value>,
    bounds: &HookBounds,
) -> Result<ConfigParts, HookError> {
    let mut config = config_object(input, WEBHOOK_CONFIG_KEYS, "webhook", "`url`")?;
    match config.get("url") {
        Some(Value::String(url)) => {
            let scheme = reqwest::Url::parse(url)
                .ok()
                .filter(|parsed| parsed.host_str().is_some())
                .map(|parsed| parsed.scheme().to_owned());
            match scheme.as_deref() {
                Some("https") => {}
                Some("http") if bounds.allow_http_webhooks => {}
                Some("http") => return Err(HookError::new("config.url", PLAIN_HTTP_WEBHOOK)),
                _ => {
                    return Err(HookError::new(
                        "config.url",
                        format!("`{url}` is not an absolute http or https URL"),
                    ))
                }
            }
        }
        None | Some(Value::Null) => {
            return Err(HookError::new(
                "config.url",
                "required: the URL the webhook calls",
            ))
        }
        Some(_) => return Err(HookError::new("config.url", "must be a string")),
    }
    for key in ["client_ssl_certificate", "client_ssl_key"] {
        if config.get(key).is_some_and(|value| !value.is_null()) {
            return Err(HookError::new(
                format!("config.{key}"),
                "client certificates are not supported by this installation; sign with `secret`",
            ));
        }
    }
    bounded(&config, "timeout_s", 0, MAX_WEBHOOK_TIMEOUT_S)?;
    bounded(&config, "retry_count", 0, MAX_RETRY_COUNT)?;
    bounded(&config, "max_polling_time_s", 1, MAX_POLLING_TIME_S)?;
    flags(
        &config,
        &[
            "insecure_ssl",
            "retry_after_polling_failure",
            "retry_on_any_non_2xx",
        ],
    )?;
    let config_secret = common_config(&mut config)?;
    Ok((config, None, config_secret))
}

/// Whether a sent `config.module` (an id or a URL) names `module`.
pub fn module_reference_is(reference: &Value, module: Option<u64>) -> bool {
    module.is_some() && id_from_reference(reference, "modules") == module
}

/// Checks `settings` against its JSON Schema.
pub fn validate_settings(schema: &Value, settings: &Map<String, Value>) -> Result<(), HookError> {
    let validator = jsonschema::validator_for(schema).map_err(|error| {
        HookError::new(
            "settings_schema",
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    let instance = Value::Object(settings.clone());
    if let Some(error) = validator.iter_errors(&instance).next() {
        let at = error.instance_path().to_string();
        let place = if at.is_empty() {
            String::new()
        } else {
            format!(" (at {at})")
        };
        return Err(HookError::new(
            "settings",
            format!("does not match settings_schema: {error}{place}"),
        ));
    }
    Ok(())
}

/// Checks a secrets schema: a valid JSON Schema that sets `additionalProperties`, to
/// `false` or to a schema, as Rossum requires.
pub fn check_secrets_schema(schema: &Value) -> Result<(), HookError> {
    let Some(object) = schema.as_object() else {
        return Err(HookError::new("secrets_schema", "must be an object"));
    };
    match object.get("additionalProperties") {
        Some(Value::Bool(false) | Value::Object(_)) => {}
        _ => {
            return Err(HookError::new(
                "secrets_schema",
                "must set `additionalProperties`, to false or to a schema such as {\"type\": \"string\"}",
            ))
        }
    }
    jsonschema::validator_for(schema).map_err(|error| {
        HookError::new(
            "secrets_schema",
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    Ok(())
}

/// Checks secret values against the secrets schema. The message names the place and the
/// rule, never the value.
pub fn validate_secrets(schema: &Value, secrets: &[(String, String)]) -> Result<(), HookError> {
    let validator = jsonschema::validator_for(schema).map_err(|error| {
        HookError::new(
            "secrets_schema",
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    let instance = Value::Object(
        secrets
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect(),
    );
    if let Some(error) = validator.iter_errors(&instance).next() {
        let at = error.instance_path().to_string();
        let place = if at.is_empty() {
            "the secrets".to_owned()
        } else {
            at
        };
        return Err(HookError::new(
            "secrets",
            format!("{place} does not match secrets_schema ({})", error.masked()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BOUNDS: HookBounds = HookBounds {
        max_timeout_s: 60,
        min_timeout_s: 1,
        max_memory_mb: 512,
        min_memory_mb: 16,
        allow_http_webhooks: false,
    };

    fn input(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn minimal() -> Map<String, Value> {
        input(json!({
            "name": "h",
            "events": ["annotation_content.initialize", "invocation"],
            "config": {"runtime": "wasm", "module": "http://x/api/v1/modules/4", "timeout_s": 5},
        }))
    }

    #[test]
    fn a_minimal_function_hook_gets_rossums_defaults() -> Result<(), HookError> {
        let draft = parse_draft(&minimal(), &BOUNDS)?;
        assert_eq!(draft.module_id, Some(4));
        assert!(draft.active);
        assert_eq!(draft.document.extension_source, "custom");
        assert_eq!(draft.document.secrets_schema, default_secrets_schema());
        assert_eq!(draft.secrets, Change::Keep);
        assert!(!draft.document.config.contains_key("module"));
        Ok(())
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let cases = [
            (json!({"events": ["annotation_content.nope"]}), "events"),
            (json!({"events": ["nothing"]}), "events"),
            (json!({"token_lifetime_s": 7201}), "token_lifetime_s"),
            (json!({"token_lifetime_s": -1}), "token_lifetime_s"),
            (
                json!({"config": {"runtime": "python3.12", "module": 1}}),
                "config.runtime",
            ),
            (json!({"config": {"runtime": "wasm"}}), "config.module"),
            (
                json!({"config": {"runtime": "wasm", "module": 1, "timeout_s": 61}}),
                "config.timeout_s",
            ),
            (
                json!({"config": {"runtime": "wasm", "module": 1, "memory_size_mb": 8}}),
                "config.memory_size_mb",
            ),
            (
                json!({"config": {"runtime": "wasm", "module": 1, "retry_count": 5}}),
                "config.retry_count",
            ),
            (
                json!({"config": {"runtime": "wasm", "module": 1, "code": "x"}}),
                "config.code",
            ),
            (
                json!({"settings_schema": {"type": "object", "required": ["a"]}}),
                "settings",
            ),
            (
                json!({"secrets_schema": {"type": "object"}}),
                "secrets_schema",
            ),
            (json!({"secrets": {"k": 1}}), "secrets.k"),
            (json!({"type": "cron"}), "type"),
            (json!({"type": "webhook"}), "config.runtime"),
            (
                json!({"type": "job", "config": {"runtime": "wasm", "module": 1}}),
                "config.schedule",
            ),
            (
                json!({"config": {"runtime": "wasm", "module": 1, "schedule": {"cron": "*/5 * * * *"}}}),
                "config.schedule.cron",
            ),
            (
                json!({"config": {"runtime": "wasm", "module": 1, "allowed_hosts": ["http://a.com"]}}),
                "config.allowed_hosts",
            ),
            (
                json!({"type": "webhook", "config": {"url": "ftp://a.com"}}),
                "config.url",
            ),
            (
                json!({"type": "webhook", "config": {"url": "http://a.com"}}),
                "config.url",
            ),
            (
                json!({"type": "webhook", "config": {"url": "https://a.com", "timeout_s": 61}}),
                "config.timeout_s",
            ),
            (
                json!({"type": "webhook", "config": {"url": "https://a.com", "retry_count": 5}}),
                "config.retry_count",
            ),
            (
                json!({"type": "webhook", "config": {"url": "https://a.com", "max_polling_time_s": 0}}),
                "config.max_polling_time_s",
            ),
            (
                json!({"type": "webhook", "config": {"url": "https://a.com", "insecure_ssl": "yes"}}),
                "config.insecure_ssl",
            ),
            (json!({"sideload": ["everything"]}), "sideload"),
            (json!({"colour": "red"}), "colour"),
        ];
        for (patch, field) in cases {
            let mut body = minimal();
            body.extend(input(patch.clone()));
            match parse_draft(&body, &BOUNDS) {
                Err(error) => assert_eq!(error.field, field, "{patch}: {error}"),
                Ok(_) => panic!("{patch} was accepted"),
            }
        }
    }

    #[test]
    fn webhooks_and_jobs_are_accepted_with_rossums_defaults() -> Result<(), HookError> {
        let mut body = minimal();
        body.extend(input(json!({
            "type": "webhook",
            "config": {"url": "https://example.com/hook", "secret": "s3cret", "timeout_s": 0},
        })));
        let draft = parse_draft(&body, &BOUNDS)?;
        assert_eq!(draft.module_id, None);
        assert_eq!(draft.config_secret, Change::Set("s3cret".into()));
        assert!(!draft.document.config.contains_key("secret"));
        let mut job = minimal();
        job.extend(input(json!({
            "type": "job",
            "events": [],
            "config": {"runtime": "wasm", "module": 2, "schedule": {"cron": "0 * * * *"}},
        })));
        assert_eq!(parse_draft(&job, &BOUNDS)?.module_id, Some(2));
        Ok(())
    }

    #[test]
    fn plain_http_webhooks_need_the_operators_leave() -> Result<(), HookError> {
        let mut body = minimal();
        body.extend(input(json!({
            "type": "webhook",
            "config": {"url": "http://127.0.0.1:9000/hook"},
        })));
        let refused = parse_draft(&body, &BOUNDS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.starts_with("config.url: "), "{refused}");
        assert!(
            refused.contains("WASMHOOK_ALLOW_HTTP_WEBHOOKS"),
            "{refused}"
        );
        let allowing = HookBounds {
            allow_http_webhooks: true,
            ..BOUNDS
        };
        assert_eq!(parse_draft(&body, &allowing)?.module_id, None);
        Ok(())
    }

    #[test]
    fn a_secret_breaking_its_schema_is_not_quoted() {
        let mut body = minimal();
        body.extend(input(json!({
            "secrets_schema": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
            "secrets": {"api_key": "very-secret-value"},
        })));
        let error = parse_draft(&body, &BOUNDS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("secrets: /api_key"), "{error}");
        assert!(!error.contains("very-secret-value"), "{error}");
    }
}
