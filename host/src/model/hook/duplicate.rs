//! Duplicating a hook as Rossum's `POST /hooks/{id}/duplicate` does: the request
//! (`{name, copy_secrets, copy_dependencies}`) and what the copy is made of, pure, so that
//! the rules (always inactive, on no queue, its run_after only when asked) are read and
//! tested here rather than in a handler.

use serde_json::{Map, Value};

use super::{HookError, HookSpec, MAX_NAME_CHARS};

/// What a client asks of a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRequest {
    /// The copy's name (required, as in Rossum).
    pub name: String,
    /// Whether the copy gets the original's `secrets` (sealed again, never shown); without
    /// it the copy has none. `config.secret` belongs to the config and is always copied.
    pub copy_secrets: bool,
    /// Whether the copy runs after the hooks the original runs after, and the hooks that
    /// run after the original run after the copy too; without it the copy is in no chain.
    pub copy_dependencies: bool,
}

impl DuplicateRequest {
    /// The request in `body`: a field of the wrong type is refused naming it; a key that is
    /// none of the three is ignored, as DRF ignores it.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, HookError> {
        let name = match body.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
            None | Some(Value::Null | Value::String(_)) => {
                return Err(HookError::new("name", "required"))
            }
            Some(_) => return Err(HookError::new("name", "must be a string")),
        };
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(HookError::new(
                "name",
                format!("at most {MAX_NAME_CHARS} characters"),
            ));
        }
        Ok(DuplicateRequest {
            name,
            copy_secrets: flag(body, "copy_secrets")?,
            copy_dependencies: flag(body, "copy_dependencies")?,
        })
    }
}

/// A boolean field, false when absent or null.
fn flag(body: &Map<String, Value>, key: &str) -> Result<bool, HookError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(HookError::new(key, "must be true or false")),
    }
}

impl HookSpec {
    /// What a copy of this hook is, as Rossum duplicates: named as asked, always inactive
    /// and on no queue (so that it runs for nothing until someone decides), with the
    /// original's run_after only when `copy_dependencies`; its config, events, settings,
    /// schemas, presentation fields and token owner are the original's.
    pub fn duplicated(&self, request: &DuplicateRequest) -> HookSpec {
        HookSpec {
            name: request.name.clone(),
            kind: self.kind.clone(),
            active: false,
            queues: Vec::new(),
            run_after: if request.copy_dependencies {
                self.run_after.clone()
            } else {
                Vec::new()
            },
            token_owner: self.token_owner,
            document: self.document.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::{parse_draft, TEST_BOUNDS};
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_request_needs_a_name_and_takes_two_flags() -> Result<(), HookError> {
        let request = DuplicateRequest::parse(&body(
            json!({"name": " Copy ", "copy_secrets": true, "other": 1}),
        ))?;
        assert_eq!(request.name, "Copy");
        assert!(request.copy_secrets && !request.copy_dependencies);
        for (sent, field) in [
            (json!({}), "name"),
            (json!({"name": ""}), "name"),
            (json!({"name": 7}), "name"),
            (json!({"name": "x".repeat(MAX_NAME_CHARS + 1)}), "name"),
            (json!({"name": "c", "copy_secrets": "yes"}), "copy_secrets"),
            (
                json!({"name": "c", "copy_dependencies": 1}),
                "copy_dependencies",
            ),
        ] {
            let refused = DuplicateRequest::parse(&body(sent.clone())).err();
            assert_eq!(
                refused.map(|error| error.field),
                Some(crate::model::FieldPath::new(field)),
                "{sent}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_copy_is_inactive_on_no_queue_and_in_a_chain_only_when_asked() -> Result<(), HookError> {
        let original = parse_draft(
            &body(json!({
                "name": "Original",
                "type": "webhook",
                "queues": [3],
                "run_after": [5],
                "events": ["annotation_content.initialize"],
                "config": {"url": "https://receiver.example/hook"},
                "settings": {"region": "eu"},
                "token_owner": 9,
            })),
            &TEST_BOUNDS,
        )?
        .spec;
        let mut request = DuplicateRequest {
            name: "Copy".into(),
            copy_secrets: false,
            copy_dependencies: false,
        };
        let copy = original.duplicated(&request);
        assert_eq!(copy.name, "Copy");
        assert!(!copy.active);
        assert!(copy.queues.is_empty() && copy.run_after.is_empty());
        assert_eq!(copy.kind, original.kind);
        assert_eq!(copy.document, original.document);
        assert_eq!(copy.token_owner, Some(9));
        request.copy_dependencies = true;
        assert_eq!(original.duplicated(&request).run_after, vec![5]);
        Ok(())
    }
}
