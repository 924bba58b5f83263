//! PostgreSQL's side of [`super::Db`]: the URL an operator gives (its password never
//! printed), the pool of connections, each with its prepared statements, and the
//! translation of the store's `?N` parameters into PostgreSQL's `$N`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

use super::{DbError, Value};

/// A `postgres://` URL, as given by `--database`, `WASMHOOK_DATABASE_URL` or the config
/// file. It prints with its password hidden, so it may go into a log line or an error.
#[derive(Clone)]
pub struct PostgresUrl {
    config: postgres::Config,
    shown: String,
}

/// Why a database URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a `postgres://` or `postgresql://` URL.
    #[error("a database URL starts with postgres:// or postgresql://")]
    Scheme,
    /// The driver could not read it.
    #[error("the database URL is not one PostgreSQL's client reads: {0}")]
    Invalid(String),
    /// It asks for TLS, which this build does not speak to the database.
    #[error("sslmode={0} is not supported: connect over a private network or a local socket")]
    Tls(String),
}

impl FromStr for PostgresUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, UrlError> {
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(UrlError::Scheme);
        }
        let config = postgres::Config::from_str(text).map_err(|error| {
            // The driver's message may quote the URL, password and all.
            UrlError::Invalid(redacted(&error.to_string(), text))
        })?;
        if let Some(mode) = url::Url::parse(text).ok().and_then(|url| {
            url.query_pairs()
                .find(|(key, _)| key == "sslmode")
                .map(|(_, value)| value.into_owned())
        }) {
            if mode != "disable" && mode != "prefer" {
                return Err(UrlError::Tls(mode));
            }
        }
        Ok(PostgresUrl {
            config,
            shown: shown(text),
        })
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.shown)
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        self.shown == other.shown && self.config.get_password() == other.config.get_password()
    }
}

/// The URL with its password replaced by `***`, whether it is in the URL's user part or
/// its `password` parameter.
fn shown(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Cannot fail on a URL with a host, which a password implies.
                let _ = url.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key == "password" {
                        "***".to_owned()
                    } else {
                        value.into_owned()
                    };
                    (key.into_owned(), value)
                })
                .collect();
            if !pairs.is_empty() {
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        Err(_) => "postgres://(unreadable)".to_owned(),
    }
}

/// The passwords a URL holds: in its user part and in `password` parameters.
fn passwords(text: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(text) else {
        return Vec::new();
    };
    url.password()
        .map(str::to_owned)
        .into_iter()
        .chain(
            url.query_pairs()
                .filter(|(key, _)| key == "password")
                .map(|(_, value)| value.into_owned()),
        )
        .filter(|password| !password.is_empty())
        .collect()
}

/// `message` with any copy of the URL's passwords taken out.
fn redacted(message: &str, text: &str) -> String {
    passwords(text)
        .iter()
        .fold(message.to_owned(), |message, password| {
            message.replace(password, "***")
        })
}

impl PostgresUrl {
    /// Opens one connection outside the pool (the change listener's, which sits in
    /// LISTEN for as long as the process runs).
    pub fn connect(&self) -> Result<Client, DbError> {
        Ok(self.config.connect(NoTls)?)
    }

    /// The pool every store operation borrows a connection from: at most `size`
    /// connections, each opened on first need; a caller waits at most `wait` for one.
    pub fn pool(&self, size: u32, wait: Duration) -> Result<Pool, DbError> {
        Ok(Pool(Some(
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(1))
                .connection_timeout(wait)
                // A broken connection is found when it is returned (`has_broken`); testing
                // each one on the way out would cost a round trip per operation.
                .test_on_check_out(false)
                .build(Manager {
                    config: self.config.clone(),
                })?,
        )))
    }
}

/// The store's pool of PostgreSQL connections.
///
/// The synchronous client runs each connection on a small runtime of its own, and closing
/// one (dropping it) blocks on that runtime, which tokio forbids on its async threads. The
/// pool is dropped when the store's last clone is, which may happen on such a thread (at
/// shutdown, at the end of a test), so its connections are closed on a thread of their own.
#[derive(Debug)]
pub struct Pool(Option<r2d2::Pool<Manager>>);

impl Pool {
    /// A connection, waiting at most the pool's wait for one to be free.
    pub fn get(&self) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        match &self.0 {
            Some(pool) => Ok(pool.get()?),
            None => Err(DbError::Closed),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            // A failed spawn drops it here: a panic only if this is an async thread.
            let _ = std::thread::Builder::new()
                .name("wasmhook-pool-close".into())
                .spawn(move || drop(pool));
        }
    }
}

/// Opens the pool's connections (r2d2's hook for our connection type).
#[derive(Debug)]
pub struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConnection, postgres::Error> {
        Ok(PgConnection {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, connection: &mut PgConnection) -> Result<(), postgres::Error> {
        connection.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, connection: &mut PgConnection) -> bool {
        connection.client.is_closed()
    }
}

/// The most statements one connection keeps prepared; past it they are all forgotten
/// (lists with many filters make statements of their own).
const PREPARED_STATEMENTS: usize = 256;

/// One pooled connection and the statements prepared on it, by the store's SQL text.
pub struct PgConnection {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PgConnection")
            .field("prepared", &self.statements.len())
            .finish_non_exhaustive()
    }
}

impl PgConnection {
    /// The client, for statements without parameters.
    pub(super) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `sql` prepared on this connection, once.
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&numbered(sql))?;
        if self.statements.len() >= PREPARED_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, DbError> {
        let statement = self.statement(sql)?;
        let params = as_params(values);
        Ok(self.client.execute(&statement, &params)?)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        values: &[Value],
    ) -> Result<Vec<postgres::Row>, DbError> {
        let statement = self.statement(sql)?;
        let params = as_params(values);
        Ok(self.client.query(&statement, &params)?)
    }
}

fn as_params(values: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|value| value as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// The store's SQL with SQLite's parameters (`?3`, or `?` numbered in order) as
/// PostgreSQL's (`$3`); a `?` inside a quoted string is left alone.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '\'' => {
                quoted = !quoted;
                out.push(character);
            }
            '?' if !quoted => {
                out.push('$');
                let mut digits = false;
                while let Some(digit) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(digit);
                    chars.next();
                    digits = true;
                }
                if !digits {
                    next += 1;
                    out.push_str(&next.to_string());
                }
            }
            _ => out.push(character),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_as_postgresql_wants_and_literals_are_left_alone() {
        assert_eq!(
            numbered("SELECT 1 WHERE ?1 IS NULL OR a = ?1 AND b = ?12"),
            "SELECT 1 WHERE $1 IS NULL OR a = $1 AND b = $12"
        );
        assert_eq!(
            numbered("a IN (?, ?) AND c LIKE ? ESCAPE '\\' AND d = '?'"),
            "a IN ($1, $2) AND c LIKE $3 ESCAPE '\\' AND d = '?'"
        );
    }

    #[test]
    fn a_url_prints_without_its_password_and_tls_is_refused_by_name() {
        let url: Result<PostgresUrl, _> = "postgres://app:s3cret@db.internal:5432/wasmhook".parse();
        let shown = url.map(|url| url.to_string()).unwrap_or_default();
        assert_eq!(shown, "postgres://app:***@db.internal:5432/wasmhook");
        let url: Result<PostgresUrl, _> =
            "postgres://app@db.internal/wasmhook?password=s3cret&application_name=x".parse();
        let shown = url.map(|url| format!("{url} {url:?}")).unwrap_or_default();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("application_name=x"), "{shown}");
        assert!(matches!(
            "mysql://x".parse::<PostgresUrl>(),
            Err(UrlError::Scheme)
        ));
        assert!(matches!(
            "postgres://db/x?sslmode=require".parse::<PostgresUrl>(),
            Err(UrlError::Tls(mode)) if mode == "require"
        ));
    }
}
