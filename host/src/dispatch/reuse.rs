//! Which warm instances a hook's call may run on (`config.reuse_instances`): its own, at
//! the version of the hook it was made for.

use std::time::Duration;

use crate::model::hook::{Hook, InstanceReuse};
use crate::runtime::{Digest, Reuse, ReusePolicy, WarmHook};

/// What a call of `hook` asks of the runtime's warm instances, under `reuse`: the hook's
/// own instances, at a version that changes with its module, config, settings, secrets
/// (`secrets`, opened) and every save (`modified_at`), so that a saved hook starts a new
/// instance and never sees the old one's state, even when a save puts back what an idle
/// instance was made for. The instance's module digest and memory limit are added by the
/// runtime.
pub(super) fn reuse_for(
    hook: &Hook,
    reuse: InstanceReuse,
    secrets: &[(String, String)],
) -> Option<Reuse> {
    let version = (
        hook.spec.kind.module_id(),
        hook.spec.kind.config(),
        &hook.spec.document.settings,
        secrets,
        &hook.modified_at,
    );
    // Plain data always serializes; were it not to, the call would take a fresh instance.
    let bytes = serde_json::to_vec(&version).ok()?;
    Some(Reuse {
        hook: WarmHook {
            organization: hook.organization_id,
            hook: hook.id,
            version: Digest::of(&bytes),
        },
        policy: ReusePolicy {
            max_calls: reuse.max_calls,
            idle: Duration::from_secs(reuse.idle_s),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::model::hook::{parse_draft, HookError, TEST_BOUNDS};

    fn hook(id: u64, settings: Value) -> Result<Hook, HookError> {
        let mut input = Map::new();
        input.insert("name".into(), json!("h"));
        input.insert("events".into(), json!(["invocation"]));
        input.insert("settings".into(), settings);
        input.insert(
            "config".into(),
            json!({"runtime": "wasm", "module": 4, "reuse_instances": true}),
        );
        let spec = parse_draft(&input, &TEST_BOUNDS)?.spec;
        Ok(Hook {
            id,
            organization_id: 1,
            spec,
            secrets_keys: Vec::new(),
            sealed_secrets: None,
            created_at: String::new(),
            created_by: None,
            modified_at: String::new(),
            modified_by: None,
            hook_template: None,
        })
    }

    #[test]
    fn the_version_changes_with_settings_secrets_and_saves_and_nothing_else(
    ) -> Result<(), HookError> {
        let policy = InstanceReuse {
            max_calls: 5,
            idle_s: 10,
        };
        let of = |hook: &Hook, secrets: &[(String, String)]| {
            reuse_for(hook, policy, secrets).map(|reuse| reuse.hook)
        };
        let first = hook(1, json!({"a": 1}))?;
        let again = hook(1, json!({"a": 1}))?;
        let secret = [("k".to_owned(), "v".to_owned())];
        assert_eq!(of(&first, &[]), of(&again, &[]));
        assert_ne!(of(&first, &[]), of(&hook(1, json!({"a": 2}))?, &[]));
        assert_ne!(of(&first, &[]), of(&first, &secret));
        let saved = Hook {
            modified_at: "2026-01-01T00:00:00Z".into(),
            ..again
        };
        assert_ne!(of(&first, &[]), of(&saved, &[]));
        let other = of(&hook(2, json!({"a": 1}))?, &[]);
        assert_ne!(
            of(&first, &[]).map(|key| key.hook),
            other.map(|key| key.hook)
        );
        let reuse = reuse_for(&first, policy, &[]).map(|reuse| reuse.policy);
        assert_eq!(
            reuse.map(|policy| policy.idle),
            Some(Duration::from_secs(10))
        );
        Ok(())
    }
}
