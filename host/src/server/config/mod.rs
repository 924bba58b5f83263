//! The server's configuration: flags, then environment variables, then an optional TOML
//! file, then defaults, resolved once at start-up.
//!
//! This file holds the command line's arguments, the file's form and the resolved
//! [`ServerConfig`], with the secrets that are read from the environment only. Each
//! section of the file is a file of its own (`limits.rs`, `network.rs`, `connections.rs`,
//! `metrics.rs`, `database.rs`: its settings, their defaults and their checks); `environment.rs` holds the
//! one rule by which every setting of a section is read from its variable, `error.rs` the
//! typed [`ConfigError`] of a refusal, and `schema.rs` lists a section's settings for the
//! reference (`cli/reference.rs`). All of them are re-exported here: `config::Limits`,
//! `config::Section`, and so on. `tests.rs` resolves whole configurations.

mod connections;
mod database;
mod environment;
mod error;
mod limits;
mod metrics;
mod network;
mod schema;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use self::environment::{process_variable, Variables};

pub use self::connections::{
    Connections, DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_HEADER_READ_TIMEOUT_MS,
    DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_PEER,
};
pub use self::database::{Database, DatabaseChoice, DEFAULT_POOL_SIZE};
pub use self::environment::Section;
pub use self::error::ConfigError;
pub use self::limits::{Limits, StoredQuota};
pub use self::metrics::Metrics;
pub use self::network::Network;
pub use self::schema::{section_settings, SectionSetting};

/// Where the server listens unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// [`DEFAULT_LISTEN`] as an address, so that resolving cannot fail on it (a unit test
/// checks that the two agree).
const DEFAULT_LISTEN_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
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
    /// A postgres:// URL: keep the rows in PostgreSQL, shared by every replica given it
    /// (also WASMHOOK_DATABASE_URL, [database] url) [default: SQLite in the data
    /// directory].
    #[arg(long, value_name = "URL")]
    database: Option<String>,
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
    #[serde(default)]
    database: Database,
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

/// The resolved configuration. Its `{:?}` shows neither the operator's token nor the
/// secrets key (the database URL prints its password masked).
#[derive(Clone)]
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
    /// The database: SQLite in the data directory, or PostgreSQL.
    pub database: DatabaseChoice,
    /// Create the demo, running this module.
    pub demo: Option<PathBuf>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |value: &Option<String>| value.as_ref().map(|_| "[redacted]");
        formatter
            .debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("base_url", &self.base_url)
            .field("operator_token", &hidden(&self.operator_token))
            .field("secrets_key", &hidden(&self.secrets_key))
            .field("limits", &self.limits)
            .field("network", &self.network)
            .field("connections", &self.connections)
            .field("metrics", &self.metrics)
            .field("database", &self.database)
            .field("demo", &self.demo)
            .finish()
    }
}

impl ServerConfig {
    /// Resolves flags, environment, file and defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        Self::resolve_from(args, &process_variable)
    }

    /// [`ServerConfig::resolve`] with its variables read from `variables`: the process's
    /// environment when serving, a table of their own in the tests.
    fn resolve_from(args: &ServeArgs, variables: Variables<'_>) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or(DEFAULT_LISTEN_ADDRESS);
        let operator_token = variables(OPERATOR_TOKEN_VARIABLE).filter(|t| !t.is_empty());
        if operator_token
            .as_ref()
            .is_some_and(|token| token.len() < 16)
        {
            return Err(ConfigError::ShortOperatorToken);
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
            secrets_key: variables(SECRETS_KEY_VARIABLE).filter(|key| !key.is_empty()),
            limits: file.limits.with_environment(variables)?,
            network: file.network.with_environment(variables)?,
            connections: file.connections.with_environment(variables)?,
            metrics: file.metrics.with_environment(variables)?,
            database: file
                .database
                .with_environment(variables)?
                .choice(args.database.as_deref())?,
            demo: args.demo.then(|| {
                args.demo_module
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("target/examples/hello.wasm"))
            }),
        })
    }
}

/// The file at `path`, read and parsed whole: any unknown section or key is refused.
fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::File {
        path: path.to_path_buf(),
        source,
    })
}
