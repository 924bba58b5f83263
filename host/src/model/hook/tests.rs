//! The validation rules of a hook, each broken once.

use super::*;
use crate::model::hook::validate::parse_draft;
use serde_json::json;

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
    let draft = parse_draft(&minimal(), &TEST_BOUNDS)?;
    assert_eq!(draft.spec.kind.module_id(), Some(4));
    assert!(draft.spec.active);
    assert_eq!(draft.spec.document.extension_source, "custom");
    assert_eq!(draft.spec.document.secrets_schema, default_secrets_schema());
    assert_eq!(draft.secrets, Change::Keep);
    assert!(!draft.spec.kind.config().contains_key("module"));
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
        (
            json!({"settings": {"x": "y".repeat(256 * 1024)}}),
            "settings",
        ),
        (json!({"test": {"x": "y".repeat(256 * 1024)}}), "test"),
        (
            json!({"description": "y".repeat(64 * 1024 + 1)}),
            "description",
        ),
        (json!({"secrets": {"k": "y".repeat(64 * 1024)}}), "secrets"),
        (json!({"settings_schema": {"$ref": "#"}}), "settings_schema"),
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
            json!({"config": {"runtime": "wasm", "module": 1, "reuse_instances": "yes"}}),
            "config.reuse_instances",
        ),
        (
            json!({"config": {"runtime": "wasm", "module": 1, "reuse_instances": {"max_calls": 0}}}),
            "config.reuse_instances.max_calls",
        ),
        (
            json!({"config": {"runtime": "wasm", "module": 1, "reuse_instances": {"max_calls": 10_001}}}),
            "config.reuse_instances.max_calls",
        ),
        (
            json!({"config": {"runtime": "wasm", "module": 1, "reuse_instances": {"idle_s": 601}}}),
            "config.reuse_instances.idle_s",
        ),
        (
            json!({"config": {"runtime": "wasm", "module": 1, "reuse_instances": {"calls": 2}}}),
            "config.reuse_instances.calls",
        ),
        (
            json!({"type": "webhook", "config": {"url": "https://a.com", "reuse_instances": true}}),
            "config.reuse_instances",
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
        match parse_draft(&body, &TEST_BOUNDS) {
            Err(error) => assert_eq!(error.field, field, "{patch}: {error}"),
            Ok(_) => panic!("{patch} was accepted"),
        }
    }
}

#[test]
fn reuse_instances_is_off_unless_asked_and_renders_as_written() -> Result<(), HookError> {
    let reuse = |value: Value| -> Result<(Option<InstanceReuse>, Value), HookError> {
        let mut body = minimal();
        body.insert(
            "config".into(),
            json!({"runtime": "wasm", "module": 4, "reuse_instances": value}),
        );
        let kind = parse_draft(&body, &TEST_BOUNDS)?.spec.kind;
        let written = kind.config().get("reuse_instances").cloned();
        let reuse = kind.function().and_then(FunctionConfig::reuse);
        Ok((reuse, written.unwrap_or(Value::Null)))
    };
    let defaults = InstanceReuse {
        max_calls: DEFAULT_REUSE_MAX_CALLS,
        idle_s: DEFAULT_REUSE_IDLE_S,
    };
    assert_eq!(reuse(json!(false))?, (None, json!(false)));
    assert_eq!(reuse(Value::Null)?, (None, Value::Null));
    assert_eq!(reuse(json!(true))?, (Some(defaults), json!(true)));
    assert_eq!(
        reuse(json!({"max_calls": 2}))?,
        (
            Some(InstanceReuse {
                max_calls: 2,
                ..defaults
            }),
            json!({"max_calls": 2})
        )
    );
    assert_eq!(
        reuse(json!({"idle_s": 600, "max_calls": 10_000}))?.0,
        Some(InstanceReuse {
            max_calls: 10_000,
            idle_s: 600
        })
    );
    let parsed = parse_draft(&minimal(), &TEST_BOUNDS)?.spec.kind;
    assert_eq!(parsed.function().and_then(FunctionConfig::reuse), None);
    Ok(())
}

#[test]
fn webhooks_and_jobs_are_accepted_with_rossums_defaults() -> Result<(), HookError> {
    let mut body = minimal();
    body.extend(input(json!({
        "type": "webhook",
        "config": {"url": "https://example.com/hook", "secret": "s3cret", "timeout_s": 0},
    })));
    let draft = parse_draft(&body, &TEST_BOUNDS)?;
    assert_eq!(draft.spec.kind.module_id(), None);
    assert_eq!(draft.config_secret, Change::Set("s3cret".into()));
    assert!(!draft.spec.kind.config().contains_key("secret"));
    let mut job = minimal();
    job.extend(input(json!({
        "type": "job",
        "events": [],
        "config": {"runtime": "wasm", "module": 2, "schedule": {"cron": "0 * * * *"}},
    })));
    assert_eq!(
        parse_draft(&job, &TEST_BOUNDS)?.spec.kind.module_id(),
        Some(2)
    );
    Ok(())
}

#[test]
fn plain_http_webhooks_need_the_operators_leave() -> Result<(), HookError> {
    let mut body = minimal();
    body.extend(input(json!({
        "type": "webhook",
        "config": {"url": "http://127.0.0.1:9000/hook"},
    })));
    let refused = parse_draft(&body, &TEST_BOUNDS)
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
        ..TEST_BOUNDS
    };
    assert_eq!(parse_draft(&body, &allowing)?.spec.kind.module_id(), None);
    Ok(())
}

#[test]
fn a_secret_breaking_its_schema_is_not_quoted() {
    let mut body = minimal();
    body.extend(input(json!({
        "secrets_schema": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
        "secrets": {"api_key": "very-secret-value"},
    })));
    let error = parse_draft(&body, &TEST_BOUNDS)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.starts_with("secrets: /api_key"), "{error}");
    assert!(!error.contains("very-secret-value"), "{error}");
}

#[test]
fn a_test_override_is_validated_whole_and_keeps_a_private_hooks_secrets_fixed(
) -> Result<(), HookError> {
    let hook = parse_draft(&minimal(), &TEST_BOUNDS)?.spec;
    let faster = input(json!({"runtime": "wasm", "timeout_s": 2}));
    let kind = hook.with_config_override(&faster, &TEST_BOUNDS)?;
    let limits = kind.function().map(FunctionConfig::limits);
    assert_eq!(limits.map(|limits| limits.timeout_s), Some(2));
    assert_eq!(kind.module_id(), Some(4), "the module is kept");
    let refused = |overrides: Value, spec: &HookSpec| {
        spec.with_config_override(&input(overrides), &TEST_BOUNDS)
            .err()
            .map(|error| error.field.to_string())
    };
    assert_eq!(
        refused(json!({"timeout_s": 2}), &hook).as_deref(),
        Some("config.runtime")
    );
    assert_eq!(
        refused(json!({"runtime": "wasm", "timeout_s": 600}), &hook).as_deref(),
        Some("config.timeout_s"),
        "the server's bounds hold for an override too"
    );
    let mut private = minimal();
    private.insert(
        "config".into(),
        json!({"runtime": "wasm", "module": 4, "private": true}),
    );
    let private = parse_draft(&private, &TEST_BOUNDS)?.spec;
    assert_eq!(
        refused(json!({"runtime": "wasm", "module": 5}), &private).as_deref(),
        Some("config.module")
    );
    Ok(())
}
