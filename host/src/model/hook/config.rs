//! Validation of a hook's `config`, one function per kind: keys, types and the server's
//! bounds, with the field named in every error. A valid config becomes its kind's typed
//! config here, once.

use serde_json::{Map, Value};

use super::super::field::FieldPath;
use super::super::id_from_reference;
use super::super::schedule::Schedule;
use super::kind::{
    AllowedHosts, HookKind, HookType, MAX_POLLING_TIME_S, MAX_RETRY_COUNT, MAX_REUSE_MAX_CALLS,
    MAX_WEBHOOK_TIMEOUT_S, WASM_RUNTIME,
};
use super::validate::plain;
use super::{Change, HookBounds, HookError};

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
    "reuse_instances",
];
/// The keys of `config.reuse_instances` when it is an object.
const REUSE_KEYS: &[&str] = &["max_calls", "idle_s"];
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

/// A hook's `config` of `kind`, validated and typed, with its write-only `secret` apart (to
/// be sealed).
pub(super) fn parse_config(
    input: &Map<String, Value>,
    kind: HookType,
    bounds: &HookBounds,
) -> Result<(HookKind, Change<String>), HookError> {
    let (config, module_id, secret) = match kind {
        HookType::Webhook => webhook_config(input, bounds)?,
        HookType::Function | HookType::Job => function_config(input, bounds, kind.as_str())?,
    };
    if kind == HookType::Job && !config.contains_key("schedule") {
        return Err(HookError::config(
            "schedule",
            "required: a job hook runs on its schedule, e.g. {\"cron\": \"*/10 * * * *\"}",
        ));
    }
    // Every key was checked above, so reading it typed cannot fail but on a bug here.
    let typed = HookKind::stored(kind, config, module_id)
        .map_err(|error| HookError::new("config", error.to_string()))?;
    Ok((typed, secret))
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
        return Err(HookError::config(
            key,
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
            _ => Err(HookError::config(
                key,
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
                return Err(HookError::config(*key, "must be true or false"));
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
                return Err(HookError::at(
                    FieldPath::new("config").key("schedule").key(key.as_str()),
                    "not a key of a schedule; it has only `cron`",
                ));
            }
            match schedule.get("cron") {
                Some(Value::String(expression)) => {
                    Schedule::parse(expression).map_err(|reason| {
                        HookError::at(
                            FieldPath::new("config").key("schedule").key("cron"),
                            reason.to_string(),
                        )
                    })?;
                }
                _ => {
                    return Err(HookError::at(
                        FieldPath::new("config").key("schedule").key("cron"),
                        "required: a five-field cron expression in UTC, e.g. \"*/10 * * * *\"",
                    ))
                }
            }
        }
        Some(_) => return Err(HookError::config("schedule", "must be an object")),
    }
    if let Some(app) = config.get("app") {
        if !app.is_object() && !app.is_null() {
            return Err(HookError::config("app", "must be an object"));
        }
    }
    flags(config, &["private", "payload_logging_enabled"])?;
    match config.remove("secret") {
        None => Ok(Change::Keep),
        Some(Value::Null) => Ok(Change::Remove),
        Some(Value::String(secret)) if !secret.is_empty() => Ok(Change::Set(secret)),
        Some(_) => Err(HookError::config(
            "secret",
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
        None | Some(Value::Null) => return Err(HookError::config("runtime", "required: `wasm`")),
        Some(other) => {
            return Err(HookError::config(
                "runtime",
                format!(
                    "`{}` is not available here; the runtime is `wasm`",
                    plain(other)
                ),
            ))
        }
    }
    let module_id = match config.remove("module") {
        None | Some(Value::Null) => {
            return Err(HookError::config(
                "module",
                "required: the URL of an uploaded module",
            ))
        }
        Some(reference) => id_from_reference(&reference, "modules").ok_or_else(|| {
            HookError::config(
                "module",
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
                        return Err(HookError::config(
                            "allowed_hosts",
                            "must be a list of host or host:port strings",
                        ))
                    }
                }
            }
            AllowedHosts::parse(texts.into_iter().map(str::to_owned).collect())
                .map_err(|reason| HookError::config("allowed_hosts", reason.to_string()))?;
        }
        Some(_) => {
            return Err(HookError::config(
                "allowed_hosts",
                "must be a list of host or host:port strings",
            ))
        }
    }
    reuse_instances(&config, bounds)?;
    let config_secret = common_config(&mut config)?;
    Ok((config, Some(module_id), config_secret))
}

/// `config.reuse_instances`: `true`, `false`, or an object of `max_calls` (1 to
/// [`MAX_REUSE_MAX_CALLS`]) and `idle_s` (1 to the server's `max_reuse_idle_s`), each
/// optional; an error names the key inside it that is wrong.
fn reuse_instances(config: &Map<String, Value>, bounds: &HookBounds) -> Result<(), HookError> {
    let at = |key: &str| FieldPath::new("config").key("reuse_instances").key(key);
    let reuse = match config.get("reuse_instances") {
        None | Some(Value::Null | Value::Bool(_)) => return Ok(()),
        Some(Value::Object(reuse)) => reuse,
        Some(_) => {
            return Err(HookError::config(
                "reuse_instances",
                "must be true, false or an object of `max_calls` and `idle_s`",
            ))
        }
    };
    if let Some(key) = reuse.keys().find(|key| !REUSE_KEYS.contains(&key.as_str())) {
        return Err(HookError::at(
            at(key),
            "not a key of reuse_instances; it has `max_calls` and `idle_s`",
        ));
    }
    let ranges = [
        ("max_calls", MAX_REUSE_MAX_CALLS),
        ("idle_s", bounds.max_reuse_idle_s),
    ];
    for (key, high) in ranges {
        match reuse.get(key) {
            None | Some(Value::Null) => {}
            Some(value) if value.as_u64().is_some_and(|n| (1..=high).contains(&n)) => {}
            Some(_) => {
                return Err(HookError::at(
                    at(key),
                    format!("must be an integer from 1 to {high}"),
                ))
            }
        }
    }
    Ok(())
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
            let scheme = url::Url::parse(url)
                .ok()
                .filter(|parsed| parsed.host_str().is_some())
                .map(|parsed| parsed.scheme().to_owned());
            match scheme.as_deref() {
                Some("https") => {}
                Some("http") if bounds.allow_http_webhooks => {}
                Some("http") => return Err(HookError::config("url", PLAIN_HTTP_WEBHOOK)),
                _ => {
                    return Err(HookError::config(
                        "url",
                        format!("`{url}` is not an absolute http or https URL"),
                    ))
                }
            }
        }
        None | Some(Value::Null) => {
            return Err(HookError::config(
                "url",
                "required: the URL the webhook calls",
            ))
        }
        Some(_) => return Err(HookError::config("url", "must be a string")),
    }
    for key in ["client_ssl_certificate", "client_ssl_key"] {
        if config.get(key).is_some_and(|value| !value.is_null()) {
            return Err(HookError::config(
                key,
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
