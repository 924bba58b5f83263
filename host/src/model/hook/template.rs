//! Hook templates, Rossum's extension store: what the operator registers (a template's
//! fields, checked as a hook's would be), and the hook an organization makes of one with
//! `POST /hooks/create` (Rossum's store flow), both pure so that their rules are tested
//! here. The module a template runs is uploaded with it and stored by the store and the
//! module library; here it is only an id filled into the hook's config.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::kind::HookType;
use super::validate::{parse_draft, plain};
use super::{HookBounds, HookError};

/// The fields a registration may send (`type` too); any other is refused, naming it.
const TEMPLATE_FIELDS: &[&str] = &[
    "name",
    "type",
    "events",
    "sideload",
    "metadata",
    "config",
    "test",
    "description",
    "settings",
    "settings_schema",
    "secrets_schema",
    "guide",
    "read_more_url",
    "extension_image_url",
    "settings_description",
    "store_description",
    "external_url",
    "use_token_owner",
    "install_action",
    "token_lifetime_s",
    "order",
];

/// How an organization gets a template's extension, as Rossum's store says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallAction {
    /// Its admins add it themselves (`POST /hooks/create`).
    Copy,
    /// It is added on request; here, by no one but the operator's decision.
    RequestAccess,
}

impl InstallAction {
    /// Its name in Rossum's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallAction::Copy => "copy",
            InstallAction::RequestAccess => "request_access",
        }
    }
}

/// A template's fields, checked when it was registered: Rossum's HookTemplate without its
/// id and URL. Kept by the store as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// Shown in the store, and the default name of a hook made from it.
    pub name: String,
    /// `function` or `job`: a template runs its module here.
    #[serde(rename = "type")]
    pub hook_type: HookType,
    /// The events a hook made from it subscribes to unless its creator says otherwise.
    pub events: Vec<String>,
    /// Sideloads of its hooks.
    pub sideload: Vec<String>,
    /// Client data of its hooks.
    pub metadata: Map<String, Value>,
    /// Its hooks' config, without `module` (the template's) and `secret`.
    pub config: Map<String, Value>,
    /// Saved test input.
    pub test: Map<String, Value>,
    /// What it does.
    pub description: Option<String>,
    /// Its hooks' settings unless their creator sends others.
    pub settings: Map<String, Value>,
    /// JSON Schema of the settings.
    pub settings_schema: Option<Value>,
    /// JSON Schema of the secrets its hooks need.
    pub secrets_schema: Value,
    /// How to use it.
    pub guide: Option<String>,
    /// More about it.
    pub read_more_url: Option<String>,
    /// Its picture.
    pub extension_image_url: Option<String>,
    /// What each setting means, for the store's UI (a list of objects).
    pub settings_description: Vec<Value>,
    /// Its description in the store.
    pub store_description: Option<String>,
    /// An outside URL it relates to, shown in the store.
    pub external_url: Option<String>,
    /// Whether its hooks need a `token_owner` (it calls the API).
    pub use_token_owner: bool,
    /// How an organization gets it.
    pub install_action: InstallAction,
    /// Seconds its hooks' tokens outlive the response; none means 600.
    pub token_lifetime_s: Option<u64>,
    /// Where it is listed among the templates.
    pub order: i64,
}

/// Validates a template as the operator registers it: its hook fields as a hook's (with
/// its module standing for `config.module`), then the template's own. It may not carry
/// `secrets` or `config.secret` (they would be every organization's), nor `config.module`
/// (its module is uploaded with it).
pub fn parse_template(
    input: &Map<String, Value>,
    bounds: &HookBounds,
) -> Result<TemplateSpec, HookError> {
    if let Some(key) = input
        .keys()
        .find(|key| !TEMPLATE_FIELDS.contains(&key.as_str()))
    {
        return Err(HookError::new(
            key.as_str(),
            "not a field of a hook template (a template holds no secrets, queues or owner)",
        ));
    }
    let hook_type = match input.get("type") {
        None | Some(Value::Null) => HookType::Function,
        Some(Value::String(name)) if name == "function" => HookType::Function,
        Some(Value::String(name)) if name == "job" => HookType::Job,
        Some(other) => {
            return Err(HookError::new(
                "type",
                format!(
                    "`{}`: a template runs its module here, as a function or job",
                    plain(other)
                ),
            ))
        }
    };
    let mut config = match input.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(config)) => config.clone(),
        Some(_) => return Err(HookError::new("config", "must be an object")),
    };
    for (key, why) in [
        ("module", "the template's module is uploaded with it"),
        (
            "secret",
            "it would be the secret of every organization's hook",
        ),
    ] {
        if config.contains_key(key) {
            return Err(HookError::new(
                format!("config.{key}"),
                format!("not part of a template: {why}"),
            ));
        }
    }
    config.insert("module".into(), Value::from(0));
    // The template's own fields are checked below; the rest as a hook's.
    let mut hook = input.clone();
    for key in [
        "settings_description",
        "store_description",
        "external_url",
        "use_token_owner",
        "install_action",
        "order",
    ] {
        hook.remove(key);
    }
    hook.insert("type".into(), hook_type.as_str().into());
    hook.insert("config".into(), Value::Object(config));
    let spec = parse_draft(&hook, bounds)?.spec;
    let document = spec.document;
    Ok(TemplateSpec {
        name: spec.name,
        hook_type,
        events: document.events,
        sideload: document.sideload,
        metadata: document.metadata,
        config: spec.kind.config(),
        test: document.test,
        description: document.description,
        settings: document.settings,
        settings_schema: document.settings_schema,
        secrets_schema: document.secrets_schema,
        guide: document.guide,
        read_more_url: document.read_more_url,
        extension_image_url: document.extension_image_url,
        settings_description: match input.get("settings_description") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => items.clone(),
            Some(_) => {
                return Err(HookError::new(
                    "settings_description",
                    "must be a list of objects",
                ))
            }
        },
        store_description: optional_text(input, "store_description")?,
        external_url: optional_text(input, "external_url")?,
        use_token_owner: match input.get("use_token_owner") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(value)) => *value,
            Some(_) => return Err(HookError::new("use_token_owner", "must be true or false")),
        },
        install_action: match input.get("install_action") {
            None | Some(Value::Null) => InstallAction::Copy,
            Some(Value::String(action)) if action == "copy" => InstallAction::Copy,
            Some(Value::String(action)) if action == "request_access" => {
                InstallAction::RequestAccess
            }
            Some(other) => {
                return Err(HookError::new(
                    "install_action",
                    format!("`{}` is not one of copy, request_access", plain(other)),
                ))
            }
        },
        token_lifetime_s: document.token_lifetime_s,
        order: match input.get("order") {
            None | Some(Value::Null) => 0,
            Some(value) => value
                .as_i64()
                .ok_or_else(|| HookError::new("order", "must be an integer"))?,
        },
    })
}

/// A string field, none when absent or null.
fn optional_text(input: &Map<String, Value>, key: &str) -> Result<Option<String>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(HookError::new(key, "must be a string or null")),
    }
}

/// The fields of `POST /hooks/create` a hook takes from its creator rather than from the
/// template (`hook_template` names the template); other keys are ignored, as DRF ignores
/// them.
const CREATOR_FIELDS: &[&str] = &[
    "name",
    "events",
    "queues",
    "run_after",
    "token_owner",
    "settings",
    "secrets",
];

impl TemplateSpec {
    /// The hook its creator asks for in `request` (`POST /hooks/create`), as a client
    /// would write it, running module `module_id` (the organization's copy of the
    /// template's module): the template's fields, with the creator's name, events,
    /// queues, run_after, token owner, settings and secrets where sent. Validated whole
    /// when saved; refused here when the template is installed on request only, or needs
    /// a token owner that was not sent.
    pub fn hook_input(
        &self,
        request: &Map<String, Value>,
        module_id: u64,
    ) -> Result<Map<String, Value>, HookError> {
        if self.install_action == InstallAction::RequestAccess {
            return Err(HookError::new(
                "hook_template",
                "this template is installed on request (install_action request_access): \
                 ask the installation's operator",
            ));
        }
        let sent = |key: &str| request.get(key).filter(|value| !value.is_null());
        if self.use_token_owner && sent("token_owner").is_none() {
            return Err(HookError::new(
                "token_owner",
                "required: this template's extension calls the API with its owner's token",
            ));
        }
        let mut config = self.config.clone();
        config.insert("module".into(), Value::from(module_id));
        let mut input = Map::new();
        input.insert("name".into(), self.name.clone().into());
        input.insert("type".into(), self.hook_type.as_str().into());
        input.insert("events".into(), self.events.clone().into());
        input.insert("sideload".into(), self.sideload.clone().into());
        input.insert("metadata".into(), Value::Object(self.metadata.clone()));
        input.insert("config".into(), Value::Object(config));
        input.insert("test".into(), Value::Object(self.test.clone()));
        input.insert("description".into(), self.description.clone().into());
        input.insert("settings".into(), Value::Object(self.settings.clone()));
        input.insert(
            "settings_schema".into(),
            self.settings_schema.clone().unwrap_or(Value::Null),
        );
        input.insert("secrets_schema".into(), self.secrets_schema.clone());
        input.insert("guide".into(), self.guide.clone().into());
        input.insert("read_more_url".into(), self.read_more_url.clone().into());
        input.insert(
            "extension_image_url".into(),
            self.extension_image_url.clone().into(),
        );
        input.insert("extension_source".into(), "rossum_store".into());
        input.insert("token_lifetime_s".into(), self.token_lifetime_s.into());
        for key in CREATOR_FIELDS.iter().copied() {
            if let Some(value) = sent(key) {
                input.insert(key.into(), value.clone());
            }
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::TEST_BOUNDS;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn template(extra: Value) -> Result<TemplateSpec, HookError> {
        let mut input = object(json!({
            "name": "Invoice checker",
            "events": ["annotation_content.initialize"],
            "config": {"runtime": "wasm", "timeout_s": 10},
            "settings": {"max_total": 1000},
            "settings_schema": {"type": "object", "properties": {"max_total": {"type": "number"}}},
            "store_description": "Checks invoices.",
        }));
        input.extend(object(extra));
        parse_template(&input, &TEST_BOUNDS)
    }

    #[test]
    fn a_template_is_checked_as_a_hook_and_holds_no_secret() -> Result<(), HookError> {
        let spec = template(json!({"order": 3, "install_action": "copy"}))?;
        assert_eq!(spec.hook_type, HookType::Function);
        assert_eq!(spec.config.get("timeout_s"), Some(&json!(10)));
        assert!(!spec.config.contains_key("module"));
        assert_eq!(spec.store_description.as_deref(), Some("Checks invoices."));
        assert_eq!(spec.order, 3);
        for (extra, field) in [
            (json!({"type": "webhook"}), "type"),
            (
                json!({"config": {"runtime": "wasm", "module": 4}}),
                "config.module",
            ),
            (
                json!({"config": {"runtime": "wasm", "secret": "s"}}),
                "config.secret",
            ),
            (json!({"secrets": {"key": "value"}}), "secrets"),
            (json!({"queues": [1]}), "queues"),
            (json!({"events": ["annotation.nope"]}), "events"),
            (json!({"settings": {"max_total": "lots"}}), "settings"),
            (
                json!({"config": {"runtime": "wasm", "timeout_s": 6000}}),
                "config.timeout_s",
            ),
            (json!({"install_action": "steal"}), "install_action"),
            (
                json!({"settings_description": ["text"]}),
                "settings_description",
            ),
        ] {
            let refused = template(extra.clone())
                .err()
                .map(|error| error.field.to_string());
            assert_eq!(refused.as_deref(), Some(field), "{extra}");
        }
        Ok(())
    }

    #[test]
    fn a_hook_from_a_template_takes_the_creators_fields_over_the_templates() -> Result<(), HookError>
    {
        let spec = template(json!({"use_token_owner": true}))?;
        let request = object(json!({
            "hook_template": "https://h.example/api/v1/hook_templates/1",
            "name": "Our checker",
            "queues": [7],
            "token_owner": 9,
            "settings": {"max_total": 50},
            "secrets": {"api_key": "value"},
            "active": false,
        }));
        let input = spec.hook_input(&request, 42)?;
        let draft = parse_draft(&input, &TEST_BOUNDS)?;
        assert_eq!(draft.spec.name, "Our checker");
        assert_eq!(draft.spec.kind.module_id(), Some(42));
        assert_eq!(draft.spec.queues, vec![7]);
        assert_eq!(draft.spec.token_owner, Some(9));
        assert!(
            draft.spec.active,
            "`active` is not the creator's to send here"
        );
        assert_eq!(
            draft.spec.document.settings.get("max_total"),
            Some(&json!(50))
        );
        assert_eq!(draft.spec.document.extension_source, "rossum_store");
        assert_eq!(draft.spec.document.events, spec.events);
        let without_owner = object(json!({"name": "x"}));
        assert_eq!(
            spec.hook_input(&without_owner, 42)
                .err()
                .map(|error| error.field),
            Some(crate::model::FieldPath::new("token_owner"))
        );
        let on_request = TemplateSpec {
            install_action: InstallAction::RequestAccess,
            ..spec
        };
        assert_eq!(
            on_request
                .hook_input(&request, 42)
                .err()
                .map(|error| error.field),
            Some(crate::model::FieldPath::new("hook_template"))
        );
        Ok(())
    }
}
