//! A hook: Rossum's Hook object, and the rules a hook must satisfy before it is stored.
//!
//! Validation here is what needs no database: field types and bounds, events, the config of
//! each kind, settings against `settings_schema`, secrets against `secrets_schema`. What
//! needs the database (queues, run_after without cycles, the module, the token owner, all of
//! the same organization) is checked by the store in the transaction that writes the hook,
//! so nothing is ever half-written.
//!
//! - `kind.rs`: the hook types and their typed configs, read once.
//! - `validate.rs`: a hook as a client wrote it, checked and typed (`parse_draft`).
//! - `config.rs`: the config of each kind, checked against the server's bounds.
//! - `schemas.rs`: the settings and secrets JSON Schemas.
//! - `duplicate.rs`: what a copy of a hook is (`POST /hooks/{id}/duplicate`).
//! - `template.rs`: hook templates (Rossum's store) and the hooks made from them.

mod config;
mod duplicate;
mod kind;
mod schemas;
mod template;
#[cfg(test)]
mod tests;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use duplicate::DuplicateRequest;
pub use kind::{
    AllowedHosts, CommonConfig, FunctionConfig, FunctionLimits, HookKind, HookType, InstanceReuse,
    RetryPolicy, ReuseInstances, Runtime, StoredConfigError, WebhookConfig, WebhookOptions,
    DEFAULT_MEMORY_MB, DEFAULT_POLLING_TIME_S, DEFAULT_REUSE_IDLE_S, DEFAULT_REUSE_MAX_CALLS,
    DEFAULT_TIMEOUT_S, MAX_POLLING_TIME_S, MAX_RETRY_COUNT, MAX_REUSE_MAX_CALLS,
    MAX_WEBHOOK_TIMEOUT_S, WASM_RUNTIME,
};
pub use schemas::{
    check_secrets_schema, default_secrets_schema, validate_secrets, validate_settings,
};
pub use template::{parse_template, InstallAction, TemplateSpec};
pub use validate::{distinct_references, module_reference_is, parse_draft, MAX_REFERENCES};

use super::event::EventAction;
use super::field::FieldPath;

/// The longest name and description accepted.
pub const MAX_NAME_CHARS: usize = 200;
/// Client metadata is capped, as Rossum caps it.
pub const MAX_METADATA_BYTES: usize = 4096;

/// The bytes of `value`'s JSON text (compact, as `Value::to_string` writes it), counted as
/// it is written, with neither a copy of the value nor the text held: the one measure of
/// the byte caps on what a hook or a queue is saved with (metadata, settings, schemas), and
/// of the responses an interactive event's answer holds (`dispatch::event`).
pub fn json_bytes(value: &impl Serialize) -> usize {
    /// Counts the bytes written to it, keeping none.
    struct Counted(usize);

    impl std::io::Write for Counted {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(bytes.len());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let mut counted = Counted(0);
    match serde_json::to_writer(&mut counted, value) {
        Ok(()) => counted.0,
        Err(_) => usize::MAX,
    }
}
/// The longest `token_lifetime_s` a hook may ask for (2 h; the shortest is 0): a token that
/// leaks out of a run is worth this long at most.
pub const MAX_TOKEN_LIFETIME_S: u64 = 7200;
/// A token's lifetime after the response when the hook does not say.
pub const DEFAULT_TOKEN_LIFETIME_S: u64 = 600;
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

/// A rule a hook broke: the field, and what is wrong with it. Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct HookError {
    /// The field as data (e.g. `config` then `timeout_s`), so that the API answers in
    /// DRF's shape and a client shows the message beside the field, without anyone reading
    /// the message.
    pub field: FieldPath,
    /// What is wrong.
    pub message: String,
}

impl HookError {
    /// A rule broken by the top-level field `field` (`name`, `events`), named whole.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        HookError::at(FieldPath::new(field), message)
    }

    /// A rule broken by the key `key` of the hook's `config` (`config.timeout_s`).
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        HookError::at(FieldPath::new("config").key(key), message)
    }

    /// A rule broken at `field`, at any depth (`config.schedule.cron`, `secrets.<key>`).
    pub fn at(field: FieldPath, message: impl Into<String>) -> Self {
        HookError {
            field,
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
    /// Most seconds `config.reuse_instances.idle_s` may ask (the operator's
    /// `max_reuse_idle_s`): an idle warm instance holds its memory.
    pub max_reuse_idle_s: u64,
}

/// The bounds the unit tests validate hooks with (the model's and the store's): a
/// function of 1 to 60 s and 16 to 512 MiB, and https webhooks only.
#[cfg(test)]
pub(crate) const TEST_BOUNDS: HookBounds = HookBounds {
    max_timeout_s: 60,
    min_timeout_s: 1,
    max_memory_mb: 512,
    min_memory_mb: 16,
    allow_http_webhooks: false,
    max_reuse_idle_s: 600,
};

/// The hook fields the store keeps as one JSON document, besides the config (the rest are
/// columns or relations): nothing in it is a reference to check or a rule to enforce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDocument {
    /// `event` or `event.action` names.
    pub events: Vec<String>,
    /// Related objects to embed in the payload.
    pub sideload: Vec<String>,
    /// Client data, kept for the client.
    pub metadata: Map<String, Value>,
    /// Copied into every payload.
    pub settings: Map<String, Value>,
    /// The JSON Schema `settings` must match when the hook is saved; none checks nothing.
    pub settings_schema: Option<Value>,
    /// The JSON Schema secret values must match; Rossum's default (any keys, string
    /// values) when the client sends none.
    pub secrets_schema: Value,
    /// Saved test input, for Rossum's UI.
    pub test: Map<String, Value>,
    /// Presentation fields, for Rossum's UI.
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

/// What a client decides about a hook: the fields a stored hook and a draft share, so that
/// they are written once.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSpec {
    /// Shown to users.
    pub name: String,
    /// What it does, with its typed config.
    pub kind: HookKind,
    /// Only active hooks are run for events.
    pub active: bool,
    /// Ids of the queues it is on: an event on a queue runs only the hooks on that queue,
    /// an event on no queue every hook subscribed to it ([`HookSpec::runs_for`]).
    pub queues: Vec<u64>,
    /// Hooks that must finish before it runs.
    pub run_after: Vec<u64>,
    /// The user a token is minted for.
    pub token_owner: Option<u64>,
    /// Everything else.
    pub document: HookDocument,
}

/// A stored hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// Its id, given by the store and never given again, even once the hook is deleted.
    pub id: u64,
    /// The organization that owns it; no other may see or run it.
    pub organization_id: u64,
    /// What its writer decided.
    pub spec: HookSpec,
    /// Names of its secrets (values are sealed).
    pub secrets_keys: Vec<String>,
    /// The sealed secrets and config.secret; never rendered.
    pub sealed_secrets: Option<Vec<u8>>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who created it (none for the operator).
    pub created_by: Option<u64>,
    /// When it was last saved: schedule ticks before it are not its to run.
    pub modified_at: String,
    /// Who saved it last.
    pub modified_by: Option<u64>,
    /// The template it was made from (`POST /hooks/create`), if any: rendered as
    /// `hook_template`.
    pub hook_template: Option<u64>,
}

impl HookSpec {
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

    /// Seconds a minted token stays valid after the response.
    pub fn token_lifetime_s(&self) -> u64 {
        self.document
            .token_lifetime_s
            .unwrap_or(DEFAULT_TOKEN_LIFETIME_S)
    }

    /// The hook in the form a client writes it (references as ids): what PATCH lays the
    /// sent fields over before validating the whole, as DRF's partial update does.
    pub fn as_input(&self) -> Map<String, Value> {
        let document = &self.document;
        let mut config = self.kind.config();
        if let Some(module) = self.kind.module_id() {
            config.insert("module".into(), module.into());
        }
        let mut input = Map::new();
        input.insert("name".into(), self.name.clone().into());
        input.insert("type".into(), self.kind.hook_type().as_str().into());
        input.insert("active".into(), self.active.into());
        input.insert("queues".into(), self.queues.clone().into());
        input.insert("run_after".into(), self.run_after.clone().into());
        input.insert("config".into(), Value::Object(config));
        input.insert("token_owner".into(), self.token_owner.into());
        if let Ok(Value::Object(fields)) = serde_json::to_value(document) {
            input.extend(fields);
        }
        input
    }
}

impl HookSpec {
    /// The kind this hook would have with `overrides` laid over its config, as `/test`
    /// runs it: validated as a whole, as a save would be. A function's override must name
    /// its `runtime`; a private hook's URL, module and secret cannot be overridden.
    pub fn with_config_override(
        &self,
        overrides: &Map<String, Value>,
        bounds: &HookBounds,
    ) -> Result<HookKind, HookError> {
        if self.kind.function().is_some() && !overrides.contains_key("runtime") {
            return Err(HookError::config(
                "runtime",
                "required whenever a config is sent",
            ));
        }
        if self.kind.is_private() {
            if let Some(key) = ["url", "module", "secret"]
                .into_iter()
                .find(|key| overrides.contains_key(*key))
            {
                return Err(HookError::config(
                    key,
                    "hidden and fixed on a private hook; it cannot be overridden",
                ));
            }
        }
        let mut input = self.as_input();
        let mut merged = input
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        merged.extend(overrides.clone());
        input.insert("config".into(), Value::Object(merged));
        Ok(parse_draft(&input, bounds)?.spec.kind)
    }

    /// The document and config as one JSON text, the form the store keeps.
    pub fn stored_document(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&StoredDocument {
            document: self.document.clone(),
            config: self.kind.config(),
        })
    }

    /// The kind and document from the store's type, document text and module column.
    pub fn read_stored(
        hook_type: &str,
        text: &str,
        module_id: Option<u64>,
    ) -> Result<(HookKind, HookDocument), StoredHookError> {
        let hook_type =
            HookType::parse(hook_type).ok_or_else(|| StoredHookError::Type(hook_type.into()))?;
        let stored: StoredDocument = serde_json::from_str(text)?;
        let kind = HookKind::stored(hook_type, stored.config, module_id)?;
        Ok((kind, stored.document))
    }
}

/// Why a stored hook cannot be read back: a store written by a newer build, or by hand.
#[derive(Debug, thiserror::Error)]
pub enum StoredHookError {
    /// The type column names no type this build knows.
    #[error("a stored hook has the unknown type `{0}`")]
    Type(String),
    /// The document is not a hook's.
    #[error("a stored hook's document cannot be read: {0}")]
    Document(#[from] serde_json::Error),
    /// The config is not its kind's.
    #[error(transparent)]
    Config(#[from] StoredConfigError),
}

/// The JSON the store keeps: the document with the config beside its fields.
#[derive(Serialize, Deserialize)]
struct StoredDocument {
    #[serde(flatten)]
    document: HookDocument,
    config: Map<String, Value>,
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
    /// What the client decided; queues, run_after, module and token owner are still to be
    /// checked against the organization.
    pub spec: HookSpec,
    /// New secret values, when sent.
    pub secrets: Change<Vec<(String, String)>>,
    /// A new `config.secret`, when sent.
    pub config_secret: Change<String>,
}
