//! The server's configuration: flags, then environment variables, then an optional TOML
//! file, then defaults, resolved once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where the server listens unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where it keeps its database and modules unless told.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The arguments of `wasmhook serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with any of: listen, data_dir, base_url, and the sections listed below
    /// (each setting also a WASMHOOK_* variable). The operator's token:
    /// WASMHOOK_OPERATOR_TOKEN, else one is generated and shown once at the first start
    /// (`wasmhook operator rotate-token` replaces it).
    #[arg(long, value_name = "FILE", env = "WASMHOOK_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", env = "WASMHOOK_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the database and modules [default: ./data].
    #[arg(long, value_name = "DIR", env = "WASMHOOK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Public base URL of the API, used in object URLs [default: http://ADDR].
    #[arg(long, value_name = "URL", env = "WASMHOOK_BASE_URL")]
    base_url: Option<String>,
    /// Also create a demo organization, admin, queue, hello module and hook, and print a
    /// curl line that calls it (idempotent).
    #[arg(long)]
    demo: bool,
    /// The module the demo hook runs [default: target/examples/hello.wasm].
    #[arg(long, value_name = "FILE", env = "WASMHOOK_DEMO_MODULE")]
    demo_module: Option<PathBuf>,
}

/// The file form of the configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    base_url: Option<String>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    network: Network,
    #[serde(default)]
    connections: Connections,
    #[serde(default)]
    metrics: Metrics,
}

/// `GET /metrics`: where it is served and how its series are labelled; each has a default
/// and an environment variable (`WASMHOOK_METRICS_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Record metrics and serve `GET /metrics`; false records nothing (`/metrics` answers
    /// 404).
    pub enabled: bool,
    /// Also serve `GET /metrics` here, without authentication (bind it to an address only
    /// the scraper reaches). Unset: only on the API's address, with the operator's token.
    pub listen: Option<SocketAddr>,
    /// Label per-organization series with the organization's id; false drops the label
    /// (for installations with very many organizations).
    pub organization_labels: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            listen: None,
            organization_labels: true,
        }
    }
}

impl Metrics {
    fn with_environment(self) -> anyhow::Result<Self> {
        with_environment(self, Section::Metrics)
    }
}

/// Outgoing requests (guests' `wasi:http`, webhooks), retries and schedules; each has a
/// default and an environment variable (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Let hooks reach loopback, private and other non-public addresses (the installation's
    /// own API is always reachable).
    pub allow_private_addresses: bool,
    /// Let webhooks call plain `http://` URLs; otherwise a webhook's `config.url` must be
    /// `https://`, since its payload carries the hook's secrets and a minted token.
    pub allow_http_webhooks: bool,
    /// Milliseconds a connection may take.
    pub connect_timeout_ms: u64,
    /// Milliseconds a guest's request waits for the first byte of its answer.
    pub first_byte_timeout_ms: u64,
    /// The largest response body read.
    pub max_response_bytes: u64,
    /// Outgoing requests one organization may have in flight at once.
    pub requests_per_organization: usize,
    /// Milliseconds before the first retry of a failed non-interactive run; each next
    /// retry waits twice as long, at most 30 s.
    pub retry_delay_ms: u64,
    /// Milliseconds between polls of an async webhook (Rossum polls every 30 s).
    pub webhook_poll_interval_ms: u64,
    /// For tests: read the scheduler's clock from this file (an RFC 3339 time) instead of
    /// the system clock.
    pub test_clock_file: Option<PathBuf>,
}

impl Default for Network {
    fn default() -> Self {
        let outbound = crate::outbound::OutboundConfig::default();
        Network {
            allow_private_addresses: false,
            allow_http_webhooks: false,
            connect_timeout_ms: millis(outbound.connect_timeout),
            first_byte_timeout_ms: millis(outbound.first_byte_timeout),
            max_response_bytes: outbound.max_response_bytes,
            requests_per_organization: outbound.requests_per_organization,
            retry_delay_ms: 1000,
            webhook_poll_interval_ms: 30_000,
            test_clock_file: None,
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Network {
    fn with_environment(self) -> anyhow::Result<Self> {
        let network: Self = with_environment(self, Section::Network)?;
        if network.requests_per_organization == 0 || network.webhook_poll_interval_ms == 0 {
            anyhow::bail!(
                "requests_per_organization and webhook_poll_interval_ms must be at least 1"
            );
        }
        Ok(network)
    }

    /// The outbound client's configuration.
    pub fn outbound(&self) -> crate::outbound::OutboundConfig {
        use std::time::Duration;
        crate::outbound::OutboundConfig {
            allow_private_addresses: self.allow_private_addresses,
            allow_http_webhooks: self.allow_http_webhooks,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            first_byte_timeout: Duration::from_millis(self.first_byte_timeout_ms),
            max_response_bytes: self.max_response_bytes,
            requests_per_organization: self.requests_per_organization,
        }
    }
}

/// A section of the configuration: its name in the file and its variables' prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[limits]`, `WASMHOOK_<NAME>`.
    Limits,
    /// `[network]`, `WASMHOOK_<NAME>`.
    Network,
    /// `[connections]`, `WASMHOOK_<NAME>`.
    Connections,
    /// `[metrics]`, `WASMHOOK_METRICS_<NAME>`.
    Metrics,
}

impl Section {
    /// Every section, in the order the reference lists them.
    pub const ALL: [Section; 4] = [
        Section::Limits,
        Section::Network,
        Section::Connections,
        Section::Metrics,
    ];

    /// The section's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Limits => "limits",
            Section::Network => "network",
            Section::Connections => "connections",
            Section::Metrics => "metrics",
        }
    }

    /// The environment variable of the section's setting `key`.
    pub fn variable(self, key: &str) -> String {
        let prefix = match self {
            Section::Metrics => "WASMHOOK_METRICS_",
            _ => "WASMHOOK_",
        };
        format!("{prefix}{}", key.to_ascii_uppercase())
    }
}

/// A section with every setting whose variable is set replaced by the variable's value.
///
/// The settings are the section's own keys (its serialized form), so that a setting added
/// to a section has its variable, its line in `serve --help` and in
/// `docs/configuration.md` without being listed anywhere else. A value is read as the
/// setting's type: a number, a yes-or-no (`true`/`false`, `1`/`0`, `yes`/`no`), or text
/// (an empty text unsets an optional setting).
fn with_environment<T: Serialize + DeserializeOwned>(
    section: T,
    which: Section,
) -> anyhow::Result<T> {
    use serde_json::Value;
    let Value::Object(mut settings) = serde_json::to_value(section)? else {
        anyhow::bail!("the [{}] section is not a table", which.name());
    };
    let keys: Vec<String> = settings.keys().cloned().collect();
    for key in keys {
        let name = which.variable(&key);
        let Ok(text) = std::env::var(&name) else {
            continue;
        };
        let value = match &settings[&key] {
            Value::Bool(_) => Value::Bool(match text.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => anyhow::bail!("{name} must be true or false, not `{text}`"),
            }),
            Value::Number(_) => Value::Number(
                text.parse::<u64>()
                    .map_err(|_| {
                        anyhow::anyhow!("{name} must be a non-negative integer, not `{text}`")
                    })?
                    .into(),
            ),
            _ if text.is_empty() => Value::Null,
            _ => Value::String(text),
        };
        settings.insert(key, value);
        // Checked one at a time, so that the error names the variable.
        serde_json::from_value::<T>(Value::Object(settings.clone()))
            .map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
    }
    Ok(serde_json::from_value(Value::Object(settings))?)
}

/// Per-installation and per-organization limits; each has a default and an environment
/// variable (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent runs per organization; more get 429.
    pub runs_per_organization: usize,
    /// Modules per organization.
    pub modules_per_organization: u64,
    /// Module bytes per organization.
    pub module_bytes_per_organization: u64,
    /// Modules up to this size compile while their upload waits; larger ones in the
    /// background.
    pub foreground_compile_bytes: usize,
    /// Days run logs are kept.
    pub log_retention_days: u64,
    /// The most seconds a hook's `config.timeout_s` may ask.
    pub max_timeout_s: u64,
    /// The most MiB a hook's `config.memory_size_mb` may ask.
    pub max_memory_mb: u64,
    /// Compiled modules kept loaded in memory, the most recently called first; the others
    /// are mapped again from their artifact on their next call (about 0.3 ms for a Rust
    /// module). A loaded Rust module holds about 1 MB resident.
    pub loaded_modules: usize,
    /// MiB of guest memory that running hooks may reserve in all (each run reserves its
    /// `config.memory_size_mb` before it starts; beyond this, runs wait). 0: three quarters
    /// of the machine's (or the container's) memory.
    pub memory_budget_mb: u64,
    /// MiB of that one organization may reserve (beyond it, its calls get 429). 0: half
    /// the budget. Never below `max_memory_mb`.
    pub memory_per_organization_mb: u64,
    /// Modules compiled at once in the whole installation.
    pub concurrent_compiles: usize,
    /// Seconds of compiling one organization may spend per 10 minutes; then uploads get 429.
    pub compile_seconds_per_organization: u64,
    /// Uploads of one organization that may be refused per 10 minutes; then uploads get 429.
    pub refused_uploads_per_organization: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            runs_per_organization: crate::dispatch::limits::DEFAULT_RUNS_PER_ORGANIZATION,
            modules_per_organization: 100,
            module_bytes_per_organization: 2 * 1024 * 1024 * 1024,
            foreground_compile_bytes: crate::modules::DEFAULT_FOREGROUND_COMPILE_BYTES,
            log_retention_days: 7,
            max_timeout_s: 60,
            max_memory_mb: 512,
            loaded_modules: crate::runtime::DEFAULT_MODULE_CACHE_CAPACITY,
            memory_budget_mb: 0,
            memory_per_organization_mb: 0,
            concurrent_compiles: crate::modules::gate::CompileBudget::default().concurrent,
            compile_seconds_per_organization: crate::modules::gate::CompileBudget::default()
                .seconds_per_window,
            refused_uploads_per_organization: crate::modules::gate::CompileBudget::default()
                .refusals_per_window,
        }
    }
}

impl Limits {
    /// Overrides from `WASMHOOK_*` environment variables.
    fn with_environment(self) -> anyhow::Result<Self> {
        let limits: Self = with_environment(self, Section::Limits)?;
        limits.checked()
    }

    fn checked(self) -> anyhow::Result<Self> {
        if self.max_timeout_s == 0 || self.max_memory_mb < 16 {
            anyhow::bail!("max_timeout_s must be at least 1 and max_memory_mb at least 16");
        }
        if self.concurrent_compiles == 0
            || self.compile_seconds_per_organization == 0
            || self.refused_uploads_per_organization == 0
        {
            anyhow::bail!(
                "concurrent_compiles, compile_seconds_per_organization and \
                 refused_uploads_per_organization must be at least 1 (0 would refuse every upload)"
            );
        }
        Ok(self)
    }

    /// The guest memory budget: as configured, else from the machine's memory.
    pub fn memory_budget(&self) -> crate::dispatch::limits::MemoryBudget {
        use crate::dispatch::limits::MemoryBudget;
        let machine = MemoryBudget::for_machine(self.max_memory_mb);
        let total_mb = match self.memory_budget_mb {
            0 => machine.total_mb,
            configured => configured,
        };
        let per_organization_mb = match self.memory_per_organization_mb {
            0 => total_mb / 2,
            configured => configured,
        };
        MemoryBudget {
            total_mb,
            per_organization_mb,
        }
        .at_least(self.max_memory_mb)
    }

    /// How the module library bounds compiles.
    ///
    /// `concurrent_compiles` counts the installation's places; one of them at most is used
    /// by a background compile.
    pub fn compile_policy(&self) -> crate::modules::CompilePolicy {
        crate::modules::CompilePolicy {
            foreground_bytes: self.foreground_compile_bytes,
            bounds: crate::runtime::precheck::ModuleBounds::default(),
            budget: crate::modules::gate::CompileBudget {
                concurrent: self.concurrent_compiles.max(1),
                seconds_per_window: self.compile_seconds_per_organization,
                refusals_per_window: self.refused_uploads_per_organization,
                ..crate::modules::gate::CompileBudget::default()
            },
        }
    }
}

/// Variables that have no flag and no place in the file: secrets, which belong in neither
/// a command line (visible to every user of the machine) nor a file that may be shared.
pub const ENVIRONMENT_ONLY: [(&str, &str); 2] = [
    (
        OPERATOR_TOKEN_VARIABLE,
        "The operator's token (at least 16 characters), set at every start. Unset: the \
         token in the database, or a new one generated and shown once at the first start; \
         `wasmhook operator rotate-token --data-dir DIR` replaces a lost one.",
    ),
    (
        SECRETS_KEY_VARIABLE,
        "The key sealing hooks' secrets, 64 hexadecimal characters. Unset: the key file in \
         the data directory, generated at the first start.",
    ),
];

/// The operator token's variable.
pub const OPERATOR_TOKEN_VARIABLE: &str = "WASMHOOK_OPERATOR_TOKEN";
/// The secrets key's variable.
pub const SECRETS_KEY_VARIABLE: &str = "WASMHOOK_SECRETS_KEY";

/// One setting of a file section, for the reference.
#[derive(Debug, Clone)]
pub struct SectionSetting {
    /// Its key in the section.
    pub key: String,
    /// Its environment variable.
    pub variable: String,
    /// Its default, as the file would write it (`unset` for none).
    pub default: String,
    /// What it is for: its doc comment.
    pub about: String,
}

/// The settings of a section, in declaration order, with their defaults and doc comments.
pub fn section_settings(section: Section) -> Vec<SectionSetting> {
    let (defaults, schema) = match section {
        Section::Limits => (
            serde_json::to_value(Limits::default()),
            schemars::schema_for!(Limits),
        ),
        Section::Network => (
            serde_json::to_value(Network::default()),
            schemars::schema_for!(Network),
        ),
        Section::Connections => (
            serde_json::to_value(Connections::default()),
            schemars::schema_for!(Connections),
        ),
        Section::Metrics => (
            serde_json::to_value(Metrics::default()),
            schemars::schema_for!(Metrics),
        ),
    };
    let defaults = defaults.unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(key, property)| {
            let about = property
                .get("description")
                .and_then(|text| text.as_str())
                .unwrap_or_default();
            let default = match defaults.get(key) {
                None | Some(serde_json::Value::Null) => "unset".to_owned(),
                Some(serde_json::Value::String(text)) => format!("\"{text}\""),
                Some(other) => other.to_string(),
            };
            SectionSetting {
                key: key.clone(),
                variable: section.variable(key),
                default,
                about: about.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the database and modules.
    pub data_dir: PathBuf,
    /// Public base URL; none means the listening address.
    pub base_url: Option<String>,
    /// The operator's token (`WASMHOOK_OPERATOR_TOKEN`); none keeps or generates one.
    pub operator_token: Option<String>,
    /// The key sealing secrets (`WASMHOOK_SECRETS_KEY`, 64 hex characters); none uses the
    /// key file in the data directory, generated on first start.
    pub secrets_key: Option<String>,
    /// Limits.
    pub limits: Limits,
    /// Outgoing requests, retries and schedules.
    pub network: Network,
    /// Accepted connections: timeouts and caps.
    pub connections: Connections,
    /// Where metrics are served and how they are labelled.
    pub metrics: Metrics,
    /// Create the demo, running this module.
    pub demo: Option<PathBuf>,
}

impl ServerConfig {
    /// Resolves flags, environment, file and defaults.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = match args.listen.or(file.listen) {
            Some(listen) => listen,
            None => DEFAULT_LISTEN
                .parse()
                .context("the default listen address")?,
        };
        let operator_token = std::env::var(OPERATOR_TOKEN_VARIABLE)
            .ok()
            .filter(|t| !t.is_empty());
        if operator_token
            .as_ref()
            .is_some_and(|token| token.len() < 16)
        {
            anyhow::bail!("WASMHOOK_OPERATOR_TOKEN must be at least 16 characters");
        }
        Ok(ServerConfig {
            listen,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            base_url: args.base_url.clone().or(file.base_url),
            operator_token,
            secrets_key: std::env::var(SECRETS_KEY_VARIABLE)
                .ok()
                .filter(|key| !key.is_empty()),
            limits: file.limits.with_environment()?,
            network: file.network.with_environment()?,
            connections: file.connections.with_environment()?,
            metrics: file.metrics.with_environment()?,
            demo: args.demo.then(|| {
                args.demo_module
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("target/examples/hello.wasm"))
            }),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

/// How long a client may take to send a request's head (request line and headers). hyper
/// starts this clock whenever it waits for a head: when the connection opens, and when an
/// answer has gone out on a kept-alive connection, so it also bounds how long a silent
/// connection is kept between requests. A real client sends its head at once, in a packet or
/// two; 10 s leave room for a slow link and close a slowloris connection (a header byte now
/// and then) soon.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// How long a connection may stay silent, nothing read or written, while none of its
/// requests is being handled (a client that stopped reading its answer or its own body
/// after the handler gave up on it): longer than any pause of a live client, short enough
/// that a held connection soon gives its place back. A running handler is never cut.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// How long a handler waits for the next part of a request body; the whole body must also
/// come at a minimum average rate (`listener::MIN_BODY_BYTES_PER_SECOND`) beyond this
/// allowance. 30 s outlast a stalled but recovering link.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 30_000;
/// Connections served at once, before the open-file limit lowers it (to that limit less a
/// reserve, see `listener::FILE_RESERVE`): far more than the clients of one installation
/// hold, and at hyper's 8 KiB read buffer each, about 128 MiB when all are idle.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Connections from one address at once (IPv6: one /64): a browser opens 6 per host and a
/// busy integration a few dozen, so 128 leaves room for several behind one NAT, while one
/// address can hold at most 128 of the server's places.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 128;

/// Accepted connections: the timeouts and caps that keep idle, slow and too many
/// connections from holding the server; each has a default and an environment variable
/// (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Connections {
    /// Milliseconds to send a request's head, counted from when the server starts waiting
    /// for it: the connection's start, or the end of the previous answer.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a connection may stay silent while none of its requests is being
    /// handled; then it is closed.
    pub idle_timeout_ms: u64,
    /// Milliseconds a handler waits for the next part of a request body (the whole body
    /// must also keep a minimum rate); then the request is answered 408.
    pub body_read_timeout_ms: u64,
    /// Connections served at once; lowered at start to the open-file limit less a reserve.
    /// Beyond it, new connections wait in the listen queue until one ends.
    pub max_connections: usize,
    /// Connections from one address (IPv6: one /64) at once; more are closed at once.
    pub max_connections_per_peer: usize,
    /// Milliseconds between SIGTERM and closing the listener, during which `/readyz`
    /// answers 503 while requests are still served, so a load balancer that polls it
    /// stops sending before connections are refused. 0 (the default) closes at once.
    pub drain_delay_ms: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            body_read_timeout_ms: DEFAULT_BODY_READ_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            drain_delay_ms: 0,
        }
    }
}

impl Connections {
    /// Overrides from `WASMHOOK_*` environment variables.
    fn with_environment(self) -> anyhow::Result<Self> {
        let connections: Self = with_environment(self, Section::Connections)?;
        connections.checked()
    }

    fn checked(self) -> anyhow::Result<Self> {
        if self.header_read_timeout_ms == 0
            || self.idle_timeout_ms == 0
            || self.body_read_timeout_ms == 0
            || self.max_connections == 0
            || self.max_connections_per_peer == 0
        {
            anyhow::bail!("the connections' timeouts and caps must be at least 1");
        }
        Ok(self)
    }

    /// The time to send a request's head.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The time a connection may stay silent while none of its requests is handled.
    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.idle_timeout_ms)
    }

    /// The time a handler waits for the next part of a request body.
    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }
}
