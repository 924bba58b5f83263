//! The `[database]` section: which database holds the installation's rows. Unset, it is
//! SQLite in the data directory (the embedded default, one process); a `postgres://` URL
//! puts them in PostgreSQL, which several replicas share. A file of its own, as every
//! section, so that a section's settings, defaults and checks read together.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{with_environment, Section, Variables};
use super::error::{at_least, ConfigError};
use crate::store::db::postgres::PostgresUrl;

/// PostgreSQL connections each replica keeps at most: the blocking threads that run store
/// operations wait for one. 16 covers a replica's run-log writer, its scheduler and a burst
/// of API reads on a few cores. PostgreSQL serves 100 connections unless told otherwise,
/// so a primary serving more than five replicas needs its `max_connections` raised (or a
/// pooler in front), as docs/deploying.md says.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// Where the rows are; each setting has a default and an environment variable
/// (`WASMHOOK_DATABASE_<NAME>` in capitals).
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// A `postgres://user:password@host:port/database` URL (`?options=-csearch_path%3DX`
    /// picks a schema): the rows live there, shared by every replica given the same URL.
    /// Unset: SQLite, `wasmhook.db` in the data directory. Also `--database`. The password
    /// is never printed.
    pub url: Option<String>,
    /// PostgreSQL connections this process keeps at most.
    pub pool_size: u32,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: None,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// The URL may hold a password: never printed.
impl std::fmt::Debug for Database {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self
            .url
            .as_deref()
            .map(|url| match url.parse::<PostgresUrl>() {
                Ok(url) => url.to_string(),
                Err(_) => "(unreadable)".to_owned(),
            });
        formatter
            .debug_struct("Database")
            .field("url", &url)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// The database the server opens, resolved from `[database]` and `--database`.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseChoice {
    /// SQLite in the data directory.
    Sqlite,
    /// PostgreSQL at a URL, with a pool of at most `pool_size` connections.
    Postgres {
        /// Where (boxed: its parsed form is large beside the other variant).
        url: Box<PostgresUrl>,
        /// Connections kept at most.
        pool_size: u32,
    },
}

impl Database {
    /// Overrides from `WASMHOOK_DATABASE_*` variables, then the checks.
    pub(super) fn with_environment(self, variables: Variables<'_>) -> Result<Self, ConfigError> {
        let database: Self = with_environment(self, Section::Database, variables)?;
        at_least("pool_size", u64::from(database.pool_size), 1, "")?;
        Ok(database)
    }

    /// The database to open; `flag` is `--database`, which wins over the section.
    pub(super) fn choice(&self, flag: Option<&str>) -> Result<DatabaseChoice, ConfigError> {
        let Some(url) = flag.or(self.url.as_deref()).filter(|url| !url.is_empty()) else {
            return Ok(DatabaseChoice::Sqlite);
        };
        let url = url
            .parse::<PostgresUrl>()
            .map_err(|error| ConfigError::Database(error.to_string()))?;
        Ok(DatabaseChoice::Postgres {
            url: Box::new(url),
            pool_size: self.pool_size,
        })
    }
}
