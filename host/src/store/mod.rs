//! Persistence behind a narrow interface: SQLite now (WAL, one file in the data directory),
//! PostgreSQL later behind the same methods.
//!
//! SQLite calls block, so every method runs on tokio's blocking pool through
//! [`Store::run`]; callers on the async threads never wait on the disk. One connection
//! serializes writes, which SQLite does anyway.

pub mod hooks;
pub mod modules;
pub mod organizations;
pub mod queues;
pub mod run_logs;
mod schema;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A uniqueness rule was broken (e.g. a username taken).
    #[error("{0}")]
    Conflict(String),
    /// The blocking task running the query could not complete.
    #[error("the database task failed: {0}")]
    Task(String),
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
}

/// A page of a list: the rows and how many there are in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows of this page.
    pub rows: Vec<T>,
    /// Rows across all pages.
    pub total: u64,
}

/// Which rows of a list to return.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return.
    pub limit: u64,
    /// The column to order by (from the API's allow-list, never from input), then by id.
    pub order_by: &'static str,
    /// Largest first.
    pub descending: bool,
}

impl Window {
    /// The first `limit` rows by id.
    pub fn first(limit: u64) -> Self {
        Window {
            offset: 0,
            limit,
            order_by: "id",
            descending: false,
        }
    }
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut connection)?;
        Ok(Store {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs a closure with the connection on the blocking pool.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic inside a query leaves no transaction open (rusqlite rolls back on
            // drop), so the connection is still usable.
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

/// One page of `table`'s rows whose `column` equals `value` (all rows when it is none),
/// by id: the shape every list of the API shares.
pub(crate) fn page_where<T>(
    connection: &Connection,
    table: &str,
    columns: &str,
    column: &str,
    value: Option<u64>,
    window: Window,
    mut from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>, StoreError> {
    let filter = format!("WHERE ?1 IS NULL OR {column} = ?1");
    let total: u64 = connection.query_row(
        &format!("SELECT COUNT(*) FROM {table} {filter}"),
        [value],
        |row| row.get(0),
    )?;
    let mut statement = connection.prepare(&format!(
        "SELECT {columns} FROM {table} {filter} ORDER BY {} {}, id LIMIT ?2 OFFSET ?3",
        window.order_by,
        if window.descending { "DESC" } else { "ASC" }
    ))?;
    let rows = statement
        .query_map(
            rusqlite::params![value, window.limit, window.offset],
            |row| from_row(row),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page { rows, total })
}

/// Maps a uniqueness violation to [`StoreError::Conflict`] with a message.
pub(crate) fn unique_violation(error: rusqlite::Error, message: &str) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict(message.to_owned())
        }
        _ => StoreError::Database(error),
    }
}
