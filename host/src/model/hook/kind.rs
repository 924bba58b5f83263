//! The three kinds of hook and their configs, typed: parsed once (when a hook is saved, or
//! read from the store), so that nothing on the request path reads `config` by key.
//!
//! A config keeps what the client set (`None` where it set nothing), so it renders back as
//! it was written; the accessors fill Rossum's defaults in.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::allow_list::{AllowList, PatternError};
use super::super::schedule::Schedule;

/// Attempts after the first a hook may ask (`config.retry_count`), and the default.
pub const MAX_RETRY_COUNT: u64 = 4;
/// The `runtime` every function hook here has.
pub const WASM_RUNTIME: &str = "wasm";
/// The bounds of a webhook's `config.timeout_s`.
pub const MAX_WEBHOOK_TIMEOUT_S: u64 = 60;
/// Seconds a call may take when the hook does not say (webhooks and functions alike).
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// MiB a function's instance may grow to when the hook does not say.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// The bounds of `config.max_polling_time_s`.
pub const MAX_POLLING_TIME_S: u64 = 3600;
/// How long the asynchronous webhook protocol may poll when the hook does not say.
pub const DEFAULT_POLLING_TIME_S: u64 = 300;
/// Calls one warm instance serves when `config.reuse_instances` does not say.
pub const DEFAULT_REUSE_MAX_CALLS: u64 = 100;
/// The most calls `config.reuse_instances.max_calls` may ask: an instance's memory only
/// grows, and a leak in a guest should not live for ever.
pub const MAX_REUSE_MAX_CALLS: u64 = 10_000;
/// Seconds a warm instance waits idle for its next call when the hook does not say.
pub const DEFAULT_REUSE_IDLE_S: u64 = 60;

/// A hook's `type`, the one value every layer branches on: a module run here, a URL
/// called, or a module run on its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookType {
    /// A module run here for events.
    Function,
    /// A URL called for events.
    Webhook,
    /// A module run by its schedule.
    Job,
}

impl HookType {
    /// Every type, in the order Rossum lists them.
    pub const ALL: [HookType; 3] = [HookType::Function, HookType::Webhook, HookType::Job];

    /// The name in Rossum's JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::Function => "function",
            HookType::Webhook => "webhook",
            HookType::Job => "job",
        }
    }

    /// The type named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for HookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HookType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HookType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        HookType::parse(&name).ok_or_else(|| {
            <D::Error as serde::de::Error>::custom(format!("unknown hook type `{name}`"))
        })
    }
}

/// What a hook does, with the config of that kind.
#[derive(Debug, Clone, PartialEq)]
pub enum HookKind {
    /// Runs a module for events.
    Function(FunctionConfig),
    /// Calls a URL for events.
    Webhook(WebhookConfig),
    /// Runs a module on its schedule (which it must have).
    Job(FunctionConfig),
}

/// The keys a config shares whatever its kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommonConfig {
    /// Hides the URL or module and fixes them and the secret, for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    /// Keeps the payload in the run log's `request` (Rossum's default is not to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_logging_enabled: Option<bool>,
    /// Runs the hook on a cron schedule too.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "schedule_object"
    )]
    pub schedule: Option<Schedule>,
    /// Rossum's app settings for a hook with a UI; kept for the client, not read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<Map<String, Value>>,
}

/// The config of a hook that runs a module (`function`, `job`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionConfig {
    /// The module, a column of its own in the store (and a URL in JSON), never in `config`.
    #[serde(skip)]
    pub module_id: u64,
    /// Always `wasm`; kept because Rossum's clients send and expect it.
    pub runtime: Runtime,
    /// Seconds a call may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    /// MiB the instance may grow to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_size_mb: Option<u64>,
    /// Attempts after the first for a failed non-interactive run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u64>,
    /// The hosts the guest may call, parsed once.
    #[serde(default, skip_serializing_if = "AllowedHosts::is_empty")]
    pub allowed_hosts: AllowedHosts,
    /// Whether calls may reuse a warm instance, as written (see [`FunctionConfig::reuse`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_instances: Option<ReuseInstances>,
    /// See [`CommonConfig`].
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// `config.reuse_instances` as the client wrote it: `false` (the default), `true` (the
/// defaults), or its bounds, each optional. Kept as written so that it renders back so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReuseInstances {
    /// `true` or `false`.
    Flag(bool),
    /// `{"max_calls": .., "idle_s": ..}`: reuse, within these bounds.
    Bounded {
        /// Calls one instance serves before it is discarded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_calls: Option<u64>,
        /// Seconds an instance waits idle for its next call before it is discarded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idle_s: Option<u64>,
    },
}

/// How a hook's calls reuse warm instances, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceReuse {
    /// Calls one instance serves ([`DEFAULT_REUSE_MAX_CALLS`] if unset).
    pub max_calls: u64,
    /// Seconds it waits idle for the next ([`DEFAULT_REUSE_IDLE_S`] if unset; the server
    /// also caps it at its `max_reuse_idle_s`).
    pub idle_s: u64,
}

/// The only runtime: a WebAssembly module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Runtime {
    /// `wasm`, as `config.runtime` says it.
    #[serde(rename = "wasm")]
    Wasm,
}

/// The config of a webhook: the URL it calls and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// The URL called (https, unless the operator allows http).
    pub url: String,
    /// Skip TLS certificate checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_ssl: Option<bool>,
    /// Seconds to wait for an answer to a non-interactive call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    /// Attempts after the first for a failed non-interactive call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u64>,
    /// How long the asynchronous protocol may poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_polling_time_s: Option<u64>,
    /// Call again when polling fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_polling_failure: Option<bool>,
    /// Retry on any status that is not 2xx, not only 408, 429, 500, 502-504.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_any_non_2xx: Option<bool>,
    /// See [`CommonConfig`].
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// `config.allowed_hosts`: the patterns as written (to render them back) and parsed (to
/// check a guest's every request without parsing again).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowedHosts {
    patterns: Vec<String>,
    parsed: AllowList,
}

impl AllowedHosts {
    /// The patterns, checked by the allow-list grammar; the error says which is wrong.
    pub fn parse(patterns: Vec<String>) -> Result<Self, PatternError> {
        let parsed = AllowList::parse(patterns.iter().map(String::as_str))?;
        Ok(AllowedHosts { patterns, parsed })
    }

    /// What a guest's request is checked against.
    pub fn allow_list(&self) -> &AllowList {
        &self.parsed
    }

    fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl Serialize for AllowedHosts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AllowedHosts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let patterns = Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default();
        AllowedHosts::parse(patterns).map_err(serde::de::Error::custom)
    }
}

/// A schedule as JSON: `{"cron": "<expression>"}`.
mod schedule_object {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Schedule;

    #[derive(Serialize, Deserialize)]
    struct Cron {
        cron: String,
    }

    pub fn serialize<S: Serializer>(
        schedule: &Option<Schedule>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        schedule
            .as_ref()
            .map(|schedule| Cron {
                cron: schedule.expression().to_owned(),
            })
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Schedule>, D::Error> {
        match Option::<Cron>::deserialize(deserializer)? {
            None => Ok(None),
            // Checked against the interval rule when it was saved; not walked again.
            Some(Cron { cron }) => Schedule::saved(&cron)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
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

/// How a webhook is called, defaults filled in.
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

/// A function's call limits, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionLimits {
    /// `config.timeout_s`: seconds the whole call may take ([`DEFAULT_TIMEOUT_S`] if unset).
    pub timeout_s: u64,
    /// `config.memory_size_mb`: MiB of linear memory the guest may use, and what its run
    /// reserves from its organization's share ([`DEFAULT_MEMORY_MB`] if unset).
    pub memory_size_mb: u64,
}

impl FunctionConfig {
    /// The call limits, defaults filled in.
    pub fn limits(&self) -> FunctionLimits {
        FunctionLimits {
            timeout_s: self.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
            memory_size_mb: self.memory_size_mb.unwrap_or(DEFAULT_MEMORY_MB),
        }
    }

    /// How calls reuse warm instances; none when every call gets a fresh one (the default,
    /// so that nothing survives between calls unless the hook asks).
    pub fn reuse(&self) -> Option<InstanceReuse> {
        let (max_calls, idle_s) = match self.reuse_instances? {
            ReuseInstances::Flag(false) => return None,
            ReuseInstances::Flag(true) => (None, None),
            ReuseInstances::Bounded { max_calls, idle_s } => (max_calls, idle_s),
        };
        Some(InstanceReuse {
            max_calls: max_calls.unwrap_or(DEFAULT_REUSE_MAX_CALLS),
            idle_s: idle_s.unwrap_or(DEFAULT_REUSE_IDLE_S),
        })
    }
}

impl WebhookConfig {
    /// How the webhook is called, defaults filled in.
    pub fn options(&self) -> WebhookOptions {
        WebhookOptions {
            timeout_s: self.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
            insecure_ssl: self.insecure_ssl.unwrap_or(false),
            max_polling_time_s: self.max_polling_time_s.unwrap_or(DEFAULT_POLLING_TIME_S),
            retry_after_polling_failure: self.retry_after_polling_failure.unwrap_or(true),
        }
    }
}

/// Why a stored config could not be read back (a store written by a newer build, or by
/// hand).
#[derive(Debug, thiserror::Error)]
#[error("a stored {kind} hook's config cannot be read: {source}")]
pub struct StoredConfigError {
    kind: HookType,
    source: serde_json::Error,
}

impl HookKind {
    /// The kind and config of a hook as the store keeps it: its type, its config without
    /// `module` and `secret`, and its module's id. Validated when it was saved, so only
    /// read here.
    pub fn stored(
        kind: HookType,
        config: Map<String, Value>,
        module_id: Option<u64>,
    ) -> Result<Self, StoredConfigError> {
        let failed = |source| StoredConfigError { kind, source };
        let function = |config| -> Result<FunctionConfig, StoredConfigError> {
            let mut function: FunctionConfig =
                serde_json::from_value(Value::Object(config)).map_err(failed)?;
            function.module_id = module_id.unwrap_or_default();
            Ok(function)
        };
        Ok(match kind {
            HookType::Function => HookKind::Function(function(config)?),
            HookType::Job => HookKind::Job(function(config)?),
            HookType::Webhook => {
                HookKind::Webhook(serde_json::from_value(Value::Object(config)).map_err(failed)?)
            }
        })
    }

    /// The config as the store keeps it and the API shows it (without `module`, a column
    /// and a URL, and without `secret`, which is sealed).
    pub fn config(&self) -> Map<String, Value> {
        let value = match self {
            HookKind::Function(config) | HookKind::Job(config) => serde_json::to_value(config),
            HookKind::Webhook(config) => serde_json::to_value(config),
        };
        match value {
            Ok(Value::Object(map)) => map,
            // Plain data with string keys always serializes to an object.
            _ => Map::new(),
        }
    }

    /// The `type` the API shows and filters by: a job is a function run by its schedule.
    pub fn hook_type(&self) -> HookType {
        match self {
            HookKind::Function(_) => HookType::Function,
            HookKind::Webhook(_) => HookType::Webhook,
            HookKind::Job(_) => HookType::Job,
        }
    }

    /// The config of a hook that runs a module here; none for a webhook.
    pub fn function(&self) -> Option<&FunctionConfig> {
        match self {
            HookKind::Function(config) | HookKind::Job(config) => Some(config),
            HookKind::Webhook(_) => None,
        }
    }

    /// The config of a webhook; none for a hook that runs a module.
    pub fn webhook(&self) -> Option<&WebhookConfig> {
        match self {
            HookKind::Webhook(config) => Some(config),
            HookKind::Function(_) | HookKind::Job(_) => None,
        }
    }

    /// The module it runs (`function`, `job`).
    pub fn module_id(&self) -> Option<u64> {
        self.function().map(|config| config.module_id)
    }

    /// The keys every kind has.
    pub fn common(&self) -> &CommonConfig {
        match self {
            HookKind::Function(config) | HookKind::Job(config) => &config.common,
            HookKind::Webhook(config) => &config.common,
        }
    }

    /// Whether `config.private` is set: the URL or module and the secret are hidden and
    /// can no longer be changed.
    pub fn is_private(&self) -> bool {
        self.common().private.unwrap_or(false)
    }

    /// Whether the payload is kept in the run log's `request`.
    pub fn payload_logging_enabled(&self) -> bool {
        self.common().payload_logging_enabled.unwrap_or(false)
    }

    /// `config.schedule`, when the hook has one.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.common().schedule.as_ref()
    }

    /// How a failed non-interactive run is retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        let (retry_count, retry_on_any_non_2xx) = match self {
            HookKind::Function(config) | HookKind::Job(config) => (config.retry_count, None),
            HookKind::Webhook(config) => (config.retry_count, config.retry_on_any_non_2xx),
        };
        RetryPolicy {
            retry_count: retry_count.unwrap_or(MAX_RETRY_COUNT),
            retry_on_any_non_2xx: retry_on_any_non_2xx.unwrap_or(false),
        }
    }
}
