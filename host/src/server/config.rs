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
}

/// The file form of the configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    base_url: Option<String>,
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
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}
