//! The server's configuration: flags, then environment variables, then an optional TOML
//! file, then defaults, resolved once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Where the server listens unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where it keeps its database and modules unless told.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The arguments of `wasmhook serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with any of: listen, data_dir, base_url.
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
}

/// Outgoing requests (guests' `wasi:http`, webhooks), retries and schedules; each has a
/// default and an environment variable (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Let hooks reach loopback, private and other non-public addresses (the installation's
    /// own API is always reachable).
    pub allow_private_addresses: bool,
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
    /// Seconds between polls of an async webhook (Rossum: 30).
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
    fn with_environment(mut self) -> anyhow::Result<Self> {
        if let Ok(text) = std::env::var("WASMHOOK_ALLOW_PRIVATE_ADDRESSES") {
            self.allow_private_addresses = match text.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => anyhow::bail!(
                    "WASMHOOK_ALLOW_PRIVATE_ADDRESSES must be true or false, not `{text}`"
                ),
            };
        }
        read("WASMHOOK_CONNECT_TIMEOUT_MS", &mut self.connect_timeout_ms)?;
        read(
            "WASMHOOK_FIRST_BYTE_TIMEOUT_MS",
            &mut self.first_byte_timeout_ms,
        )?;
        read("WASMHOOK_MAX_RESPONSE_BYTES", &mut self.max_response_bytes)?;
        read(
            "WASMHOOK_REQUESTS_PER_ORGANIZATION",
            &mut self.requests_per_organization,
        )?;
        read("WASMHOOK_RETRY_DELAY_MS", &mut self.retry_delay_ms)?;
        read(
            "WASMHOOK_WEBHOOK_POLL_INTERVAL_MS",
            &mut self.webhook_poll_interval_ms,
        )?;
        if let Ok(path) = std::env::var("WASMHOOK_TEST_CLOCK_FILE") {
            self.test_clock_file =
                Some(PathBuf::from(path)).filter(|path| !path.as_os_str().is_empty());
        }
        if self.requests_per_organization == 0 || self.webhook_poll_interval_ms == 0 {
            anyhow::bail!(
                "requests_per_organization and webhook_poll_interval_ms must be at least 1"
            );
        }
        Ok(self)
    }

    /// The outbound client's configuration.
    pub fn outbound(&self) -> crate::outbound::OutboundConfig {
        use std::time::Duration;
        crate::outbound::OutboundConfig {
            allow_private_addresses: self.allow_private_addresses,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            first_byte_timeout: Duration::from_millis(self.first_byte_timeout_ms),
            max_response_bytes: self.max_response_bytes,
            requests_per_organization: self.requests_per_organization,
        }
    }
}

/// Reads `WASMHOOK_*` variable `name` into `into` when it is set.
fn read<T: std::str::FromStr>(name: &str, into: &mut T) -> anyhow::Result<()> {
    if let Ok(text) = std::env::var(name) {
        *into = text
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a non-negative integer, not `{text}`"))?;
    }
    Ok(())
}

/// Per-installation and per-organization limits; each has a default and an environment
/// variable (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize)]
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
        }
    }
}

impl Limits {
    /// Overrides from `WASMHOOK_*` environment variables.
    fn with_environment(mut self) -> anyhow::Result<Self> {
        read(
            "WASMHOOK_RUNS_PER_ORGANIZATION",
            &mut self.runs_per_organization,
        )?;
        read(
            "WASMHOOK_MODULES_PER_ORGANIZATION",
            &mut self.modules_per_organization,
        )?;
        read(
            "WASMHOOK_MODULE_BYTES_PER_ORGANIZATION",
            &mut self.module_bytes_per_organization,
        )?;
        read(
            "WASMHOOK_FOREGROUND_COMPILE_BYTES",
            &mut self.foreground_compile_bytes,
        )?;
        read("WASMHOOK_LOG_RETENTION_DAYS", &mut self.log_retention_days)?;
        read("WASMHOOK_MAX_TIMEOUT_S", &mut self.max_timeout_s)?;
        read("WASMHOOK_MAX_MEMORY_MB", &mut self.max_memory_mb)?;
        read("WASMHOOK_LOADED_MODULES", &mut self.loaded_modules)?;
        if self.max_timeout_s == 0 || self.max_memory_mb < 16 {
            anyhow::bail!("max_timeout_s must be at least 1 and max_memory_mb at least 16");
        }
        Ok(self)
    }
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
        let operator_token = std::env::var("WASMHOOK_OPERATOR_TOKEN")
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
            secrets_key: std::env::var("WASMHOOK_SECRETS_KEY")
                .ok()
                .filter(|key| !key.is_empty()),
            limits: file.limits.with_environment()?,
            network: file.network.with_environment()?,
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
