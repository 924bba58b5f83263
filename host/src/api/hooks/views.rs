//! The shapes of hooks in the OpenAPI document and in answers: what a hook write, a
//! duplicate and a payload request read (documentation types, the handlers read the
//! bodies through the model's own parsing), and `HookView`, Rossum's Hook as answered.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::model::hook::Hook;
use crate::store::modules::ModuleStatus;

/// A hook as written (POST, PUT; PATCH sends only the fields it changes), Rossum's Hook
/// fields. The read-only keys of a hook as answered (`id`, `url`, `status`, ...) may be
/// sent back and are ignored.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(in crate::api) struct HookWrite {
    /// Required.
    name: String,
    /// `function`, `webhook` or `job`; required.
    #[schema(rename = "type")]
    hook_type: String,
    /// The queues whose documents it runs on: URLs or ids.
    queues: Option<Vec<Value>>,
    /// The hooks it runs after: URLs or ids.
    run_after: Option<Vec<Value>>,
    active: Option<bool>,
    /// `event.action` or `event` names it subscribes to.
    events: Option<Vec<String>>,
    sideload: Option<Vec<String>>,
    metadata: Option<Map<String, Value>>,
    /// A function's `runtime`, `module` (URL or id), `timeout_s`, `memory_size_mb`, ...; a
    /// webhook's `url`, `secret`, `insecure_ssl`, ...; a job's `schedule`.
    config: Option<Map<String, Value>>,
    test: Option<Map<String, Value>>,
    /// The user whose token the hook's runs carry: a URL or id.
    token_owner: Option<Value>,
    token_lifetime_s: Option<u64>,
    description: Option<String>,
    extension_source: Option<String>,
    settings: Option<Map<String, Value>>,
    settings_schema: Option<Value>,
    secrets_schema: Option<Value>,
    /// Write-only: string values, never answered (see `/secrets_keys`).
    secrets: Option<Map<String, Value>>,
    guide: Option<String>,
    read_more_url: Option<String>,
    extension_image_url: Option<String>,
}

/// What `POST /hooks/{id}/duplicate` reads.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(in crate::api) struct DuplicateBody {
    /// The copy's name; required.
    name: String,
    /// Copy the hook's secrets too (false by default).
    copy_secrets: Option<bool>,
    /// Copy the run_after chain too (false by default).
    copy_dependencies: Option<bool>,
}

/// What `POST /hooks/{id}/generate_payload` reads: the event, and optionally the
/// annotation, statuses, email or upload to describe (URLs).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(in crate::api) struct GeneratePayloadBody {
    /// The event's name, e.g. `annotation_content`; required.
    event: String,
    /// The event's action, e.g. `initialize`; required.
    action: String,
    annotation: Option<String>,
    status: Option<String>,
    previous_status: Option<String>,
    email: Option<String>,
    upload: Option<String>,
}

/// The compile state of a function hook's module (null for webhooks).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(in crate::api) enum HookModuleStatus {
    /// Being compiled.
    Pending,
    /// Compiled.
    Ready,
    /// Failed to compile.
    Failed,
}

/// Rossum's Hook. Secret values never appear; `config.secret` neither.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::api) struct HookView {
    id: u64,
    url: String,
    name: String,
    /// `function`, `webhook` or `job`.
    #[serde(rename = "type")]
    hook_type: &'static str,
    organization: String,
    /// The URLs of its queues.
    queues: Vec<String>,
    /// The URLs of the hooks it runs after.
    run_after: Vec<String>,
    active: bool,
    events: Vec<String>,
    sideload: Vec<String>,
    metadata: Map<String, Value>,
    /// The kind's config, `module` as a URL; a private hook's `url` and `module` hidden.
    config: Map<String, Value>,
    test: Map<String, Value>,
    token_owner: Option<String>,
    token_lifetime_s: Option<u64>,
    description: Option<String>,
    extension_source: String,
    settings: Map<String, Value>,
    settings_schema: Option<Value>,
    secrets_schema: Value,
    guide: Option<String>,
    read_more_url: Option<String>,
    extension_image_url: Option<String>,
    /// The template it was made from.
    hook_template: Option<String>,
    /// Its module's compile state.
    #[schema(value_type = Option<HookModuleStatus>)]
    status: Option<&'static str>,
    created_by: Option<String>,
    created_at: String,
    modified_by: Option<String>,
    modified_at: String,
}

/// A hook in Rossum's JSON shape. Secret values never appear; `config.secret` neither.
pub(in crate::api) fn render(
    state: &AppState,
    hook: &Hook,
    status: Option<ModuleStatus>,
) -> HookView {
    let spec = &hook.spec;
    let document = &spec.document;
    let private = spec.kind.is_private();
    let mut config = Map::new();
    for (key, value) in spec.kind.config() {
        // A private hook's URL and module are hidden, as Rossum hides a private function's
        // code.
        if private && key == "url" {
            continue;
        }
        let runtime = key == "runtime";
        config.insert(key, value);
        if runtime && !private {
            if let Some(module) = spec.kind.module_id() {
                config.insert("module".into(), state.url("modules", module).into());
            }
        }
    }
    let urls = |collection: &str, ids: &[u64]| -> Vec<String> {
        ids.iter().map(|id| state.url(collection, *id)).collect()
    };
    HookView {
        id: hook.id,
        url: state.url("hooks", hook.id),
        name: spec.name.clone(),
        hook_type: spec.kind.hook_type().as_str(),
        organization: state.url("organizations", hook.organization_id),
        queues: urls("queues", &spec.queues),
        run_after: urls("hooks", &spec.run_after),
        active: spec.active,
        events: document.events.clone(),
        sideload: document.sideload.clone(),
        metadata: document.metadata.clone(),
        config,
        test: document.test.clone(),
        token_owner: spec.token_owner.map(|id| state.url("users", id)),
        token_lifetime_s: document.token_lifetime_s,
        description: document.description.clone(),
        extension_source: document.extension_source.clone(),
        settings: document.settings.clone(),
        settings_schema: document.settings_schema.clone(),
        secrets_schema: document.secrets_schema.clone(),
        guide: document.guide.clone(),
        read_more_url: document.read_more_url.clone(),
        extension_image_url: document.extension_image_url.clone(),
        hook_template: hook.hook_template.map(|id| state.url("hook_templates", id)),
        status: status.map(ModuleStatus::as_str),
        created_by: hook.created_by.map(|id| state.url("users", id)),
        created_at: hook.created_at.clone(),
        modified_by: hook.modified_by.map(|id| state.url("users", id)),
        modified_at: hook.modified_at.clone(),
    }
}
