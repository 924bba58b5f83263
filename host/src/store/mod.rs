//! Persistence behind a narrow interface: SQLite now (WAL, one file in the data directory),
//! PostgreSQL later behind the same methods.
//!
//! Callers reach the data through one small facade per domain, by name and with the
//! crate's own types: `store.queues().get(id)`, `store.hooks().list(&filter, window)`,
//! `store.tokens().insert(..)`. No SQL, connection or row leaves this module: an operation
//! that takes several statements (a queue and its hooks, checked and written in one
//! transaction) is one method here, so a second database would implement the same methods.
//!
//! SQLite calls block, so every method runs on tokio's blocking pool through the private
//! `Store::run`; callers on the async threads never wait on the disk. One connection
//! serializes writes, which SQLite does anyway. The reads every call makes (its token, its
//! hook, its module) are answered from [`cache`]'s read-through caches, which SQLite's
//! update hook keeps exact.

mod cache;
mod checkpoint;
mod hook_list;
mod hook_references;
pub mod hooks;
pub mod modules;
pub mod organizations;
pub mod queues;
pub mod run_logs;
pub mod schedules;
mod schema;
pub mod templates;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod users;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::model::hook::Hook;
use cache::{Domain, Generations, ReadCache};
use modules::Module;
use tokens::Session;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A uniqueness rule was broken (e.g. a username taken): the field whose value is
    /// taken, as data (the API answers `{"username": [message]}` by it), and what to say.
    #[error("{field}: {message}")]
    Conflict {
        /// The field of the request whose value is taken.
        field: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// The blocking task running the query could not complete.
    #[error("the database task failed: {0}")]
    Task(String),
}

/// The database of one data directory: its one SQLite connection, the facades every
/// caller goes through, and the read-through caches. Clones share all three.
#[derive(Clone, Debug)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    cached: Arc<CachedReads>,
}

/// Cached sessions, hooks and modules; each bounded, filled on first use.
const CACHED_ROWS: NonZeroUsize = NonZeroUsize::new(4096).expect("nonzero");
/// Cached per-organization hook lists (for events).
const CACHED_ORGANIZATIONS: NonZeroUsize = NonZeroUsize::new(256).expect("nonzero");

/// The hot reads and the generations that keep them exact.
#[derive(Debug)]
struct CachedReads {
    generations: Generations,
    /// By the token's hash, so that memory holds no usable token.
    sessions: ReadCache<String, Session>,
    hooks: ReadCache<u64, Arc<Hook>>,
    organization_hooks: ReadCache<u64, Arc<Vec<Hook>>>,
    modules: ReadCache<u64, Arc<Module>>,
}

impl CachedReads {
    fn new() -> Self {
        CachedReads {
            generations: Generations::default(),
            sessions: ReadCache::new(CACHED_ROWS, &[Domain::Tokens, Domain::Users]),
            hooks: ReadCache::new(CACHED_ROWS, &[Domain::Hooks]),
            organization_hooks: ReadCache::new(CACHED_ORGANIZATIONS, &[Domain::Hooks]),
            modules: ReadCache::new(CACHED_ROWS, &[Domain::Modules]),
        }
    }
}

/// A page of a list: the rows and how many there are in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows of this page, in the window's order.
    pub rows: Vec<T>,
    /// Rows across all pages.
    pub total: u64,
}

/// Which rows of a list to return, and in what order: lists are filtered, ordered and
/// paged by the database, never in memory. `K` is the list's own sort key (e.g.
/// [`queues::QueueOrder`]), so a caller can only ask for an order the list has; the store
/// alone knows which column each key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window<K> {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most: the page size.
    pub limit: u64,
    /// The key to order by, then by id.
    pub order_by: K,
    /// Largest first.
    pub descending: bool,
}

impl<K: Default> Window<K> {
    /// The first `limit` rows in the list's default order (by id).
    pub fn first(limit: u64) -> Self {
        Window {
            offset: 0,
            limit,
            order_by: K::default(),
            descending: false,
        }
    }
}

/// A list's sort key as the column it orders by: the SQL side of the keys in [`Window`],
/// private to the store.
trait SortColumn {
    /// The column (or expression) of this key.
    fn column(&self) -> &'static str;
}

/// How many rows [`Store::delete_expired`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Run logs past their retention.
    pub run_logs: usize,
    /// Tokens past their expiry.
    pub tokens: usize,
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "journal_size_limit", 64 << 20)?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut connection)?;
        let cached = Arc::new(CachedReads::new());
        let reported = Arc::clone(&cached);
        connection.update_hook(Some(move |action, _database: &str, table: &str, _row| {
            reported.generations.changed(action, table);
        }));
        let connection = Arc::new(Mutex::new(connection));
        match checkpoint::spawn(path, Arc::downgrade(&connection)) {
            Ok(()) => {
                let locked = connection
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                locked.pragma_update(None, "wal_autocheckpoint", 0)?;
            }
            Err(error) => tracing::warn!("{error}; SQLite checkpoints on commit instead"),
        }
        Ok(Store { connection, cached })
    }

    /// A token's session (whatever its expiry: the caller checks it), by the token.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let hash = tokens::hash(token);
        self.read_through(
            |reads| &reads.sessions,
            hash.clone(),
            move |connection| tokens::session(connection, &hash),
        )
        .await
    }

    /// One hook, from the cache unless a hook changed since it was read; none when there is
    /// no such hook (an answer never cached, so a new hook is found at once).
    pub async fn hook(&self, id: u64) -> Result<Option<Arc<Hook>>, StoreError> {
        self.read_through(
            |reads| &reads.hooks,
            id,
            move |connection| Ok(hooks::get(connection, id)?.map(Arc::new)),
        )
        .await
    }

    /// Every hook of an organization, by id.
    pub async fn organization_hooks(
        &self,
        organization_id: u64,
    ) -> Result<Arc<Vec<Hook>>, StoreError> {
        let hooks = self
            .read_through(
                |reads| &reads.organization_hooks,
                organization_id,
                move |connection| {
                    Ok(Some(Arc::new(hooks::all(
                        connection,
                        Some(organization_id),
                    )?)))
                },
            )
            .await?;
        Ok(hooks.unwrap_or_default())
    }

    /// One module, from the cache unless a module changed since it was read; none when there
    /// is no such module (never cached).
    pub async fn module(&self, id: u64) -> Result<Option<Arc<Module>>, StoreError> {
        self.read_through(
            |reads| &reads.modules,
            id,
            move |connection| Ok(modules::get(connection, id)?.map(Arc::new)),
        )
        .await
    }

    /// The value for `key` from the cache `pick` chooses while it is current, else read by
    /// `load` (a found value is remembered; an absent one never is).
    async fn read_through<K, V, L>(
        &self,
        pick: fn(&CachedReads) -> &ReadCache<K, V>,
        key: K,
        load: L,
    ) -> Result<Option<V>, StoreError>
    where
        K: std::hash::Hash + Eq + Send + 'static,
        V: Clone + Send + 'static,
        L: FnOnce(&Connection) -> Result<Option<V>, StoreError> + Send + 'static,
    {
        let cache = pick(&self.cached);
        let current = self.cached.generations.of(cache.domains());
        if let Some(value) = cache.get(&key, current) {
            return Ok(Some(value));
        }
        let reads = Arc::clone(&self.cached);
        let (generation, value) = self
            .run(move |connection| {
                // Read under the connection's lock, which every write holds too.
                let generation = reads.generations.of(pick(&reads).domains());
                Ok((generation, load(connection)?))
            })
            .await?;
        if let Some(value) = &value {
            cache.put(key, generation, value.clone());
        }
        Ok(value)
    }

    /// Whether the database answers and holds the schema this build expects: what a
    /// readiness probe asks before sending traffic here.
    pub async fn is_ready(&self) -> Result<bool, StoreError> {
        self.run(|connection| Ok(schema::is_current(connection)?))
            .await
    }

    /// The housekeeping the server does every hour: deletes the run logs that started
    /// before `log_cutoff` (RFC 3339) and the tokens expired at `now` (Unix seconds), in
    /// that order; a failure of the first leaves the second undone.
    pub async fn delete_expired(&self, log_cutoff: &str, now: i64) -> Result<Expired, StoreError> {
        let log_cutoff = log_cutoff.to_owned();
        self.run(move |connection| {
            let run_logs = run_logs::delete_before(connection, &log_cutoff)?;
            let tokens = tokens::delete_expired(connection, now)?;
            Ok(Expired { run_logs, tokens })
        })
        .await
    }

    /// Runs a closure with the connection on the blocking pool. Private to the store: its
    /// facades are the only callers, so no SQL is written outside this module.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run_here(work))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }

    /// Runs a closure with the connection on the calling thread, for a facade method whose
    /// caller is already off the async threads (the run log writer, the operator's token
    /// rotation).
    fn run_here<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic inside a query leaves no transaction open (rusqlite rolls back on drop),
        // so the connection is still usable.
        let asked = std::time::Instant::now();
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(metrics) = crate::metrics::metrics() {
            metrics
                .db_wait_seconds
                .observe(asked.elapsed().as_secs_f64());
        }
        let _in_use = crate::metrics::Held::on(|metrics| metrics.db_connections_in_use.clone());
        work(&mut connection)
    }
}

/// One page of `table`'s rows whose `column` equals `value` (all rows when it is none),
/// in the window's order then by id: the shape most lists of the API share.
fn page_where<T, K: SortColumn + Copy>(
    connection: &Connection,
    table: &str,
    columns: &str,
    column: &str,
    value: Option<u64>,
    window: Window<K>,
    mut from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>, StoreError> {
    // SQLite's integers are signed: a filter beyond them matches no row, and a window
    // beyond them is past every row. Neither may reach the query as a u64 it cannot convert.
    let Ok(value) = value.map(i64::try_from).transpose() else {
        return Ok(Page {
            rows: Vec::new(),
            total: 0,
        });
    };
    let limit = i64::try_from(window.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(window.offset).unwrap_or(i64::MAX);
    let filter = format!("WHERE ?1 IS NULL OR {column} = ?1");
    let total: u64 = connection.query_row(
        &format!("SELECT COUNT(*) FROM {table} {filter}"),
        [value],
        |row| row.get(0),
    )?;
    let mut statement = connection.prepare(&format!(
        "SELECT {columns} FROM {table} {filter} ORDER BY {} {}, id LIMIT ?2 OFFSET ?3",
        window.order_by.column(),
        if window.descending { "DESC" } else { "ASC" }
    ))?;
    let rows = statement
        .query_map(rusqlite::params![value, limit, offset], |row| from_row(row))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page { rows, total })
}

/// Records in `id_high_water` (migration 4) that every id of `counter` (a table's name) up
/// to `through` has been given, so that a new row is numbered past a deleted one's id:
/// creating an organization or a user takes the larger of its table's highest id and this
/// mark, plus one. A deleted organization's or user's id never comes to name another, so
/// no URL, run log or in-flight run of the deleted one reaches a new one.
fn retire_ids(connection: &Connection, counter: &str, through: u64) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO id_high_water (name, last_id) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
        rusqlite::params![counter, through],
    )?;
    Ok(())
}

/// Maps a uniqueness violation to [`StoreError::Conflict`] on `field`, with a message.
fn unique_violation(error: rusqlite::Error, field: &'static str, message: &str) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict {
                field,
                message: message.to_owned(),
            }
        }
        _ => StoreError::Database(error),
    }
}
