//! Persistence behind a narrow interface, on either of two databases: SQLite (WAL, one
//! file in the data directory, the embedded default) or PostgreSQL (one database shared by
//! every replica), with the same methods, migrations numbered alike and the same answers.
//!
//! Callers reach the data through one small facade per domain, by name and with the
//! crate's own types: `store.queues().get(id)`, `store.hooks().list(&filter, window)`,
//! `store.tokens().insert(..)`. No SQL, connection or row leaves this module: an operation
//! that takes several statements (a queue and its hooks, checked and written in one
//! transaction) is one method here. Each method's SQL is written once against [`db::Db`],
//! which runs it on either database.
//!
//! Both clients block, so every method runs on tokio's blocking pool through the private
//! `Store::run`; callers on the async threads never wait on the disk or the network. On
//! SQLite one connection serializes writes, which SQLite does anyway; on PostgreSQL each
//! operation borrows a connection from a pool. The reads every call makes (its token, its
//! hook, its module) are answered from [`cache`]'s read-through caches, kept exact by
//! SQLite's update hook, or on PostgreSQL by the tables each statement writes and by the
//! notifications other replicas' writes send (`listen.rs`).

mod cache;
mod checkpoint;
pub mod db;
pub mod deliveries;
mod hook_list;
mod hook_references;
pub mod hooks;
mod listen;
pub mod modules;
pub mod organizations;
pub mod queues;
mod readers;
pub mod replicas;
pub mod run_logs;
pub mod schedules;
mod schema;
pub mod templates;
#[cfg(test)]
pub(crate) mod tests;
pub mod tokens;
pub mod usage;
pub mod users;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::hook::Hook;
use cache::{Domain, Generations, ReadCache};
use db::postgres::{Pool, PostgresUrl};
use db::{params, Change, Db, DbError, Row};
use modules::Module;
use tokens::Session;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] DbError),
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
    /// The database file could not be reached beside SQLite (the checkpoint thread syncs
    /// it itself).
    #[error("the database file: {0}")]
    File(#[from] std::io::Error),
    /// A new row would take its organization past one of its quotas; what to say.
    #[error("{0}")]
    Quota(String),
    /// An organization's reads that may scan before this one did not end within its
    /// deadline: it was not begun.
    #[error("the organization's reads before this one are still running")]
    Queued,
    /// A read that may scan ran past its deadline and was stopped ([`readers`]): the
    /// caller is to narrow it.
    #[error("the read did not finish within {} ms", .0.as_millis())]
    Deadline(Duration),
}

impl StoreError {
    /// Whether the statement was stopped under way: by a deadline, or on SQLite by the
    /// checkpoint thread's interrupt ([`readers`]).
    fn is_interrupted(&self) -> bool {
        matches!(self, StoreError::Database(error) if error.is_interrupted())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(DbError::Sqlite(error))
    }
}

/// The database of one installation: its connection (SQLite's one, or PostgreSQL's pool),
/// the facades every caller goes through, and the read-through caches. Clones share all.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// On SQLite: the connections reads that may scan take instead of the writer's.
    readers: Option<Arc<readers::Readers>>,
    /// One read that may scan of each organization at a time, on either database.
    read_turns: Arc<readers::ReadTurns>,
    cached: Arc<CachedReads>,
    /// On PostgreSQL: what makes a request's cached reads see every change other replicas
    /// committed before it began (`listen.rs`).
    catch_up: Option<Arc<listen::CatchUp>>,
}

tokio::task_local! {
    /// When the request being served began (see [`reads_since`]).
    static READS_SINCE: Instant;
}

/// Runs one request's handling with its cached reads held to what was committed before
/// `since`, rather than before each read: on PostgreSQL that takes one sync with the other
/// replicas per request instead of one per read (`listen.rs`). Reads outside it hold
/// themselves to the moment they begin.
pub async fn reads_since<F: std::future::Future>(since: Instant, work: F) -> F::Output {
    READS_SINCE.scope(since, work).await
}

/// The moment the current task's cached reads are held to ([`reads_since`]), or now: what
/// a task spawned for a request carries into its own `reads_since`.
pub fn read_moment() -> Instant {
    READS_SINCE
        .try_with(|since| *since)
        .unwrap_or_else(|_| Instant::now())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

/// Where the rows are.
#[derive(Clone)]
enum Backend {
    /// One connection, serialized: SQLite writes one at a time anyway.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// A pool shared by this process's operations; other replicas have their own.
    Postgres(Arc<Pool>),
}

/// How long an operation waits for a free PostgreSQL connection before it fails: as long
/// as SQLite waits for a lock.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Cached sessions, hooks and modules; each bounded, filled on first use.
const CACHED_ROWS: NonZeroUsize = NonZeroUsize::new(4096).expect("nonzero");
/// Cached per-organization hook lists (for events).
const CACHED_ORGANIZATIONS: NonZeroUsize = NonZeroUsize::new(256).expect("nonzero");

/// The hot reads and the generations that keep them exact.
#[derive(Debug)]
struct CachedReads {
    generations: Generations,
    /// By the token's hash, so that memory holds no usable token.
    sessions: ReadCache<String, Arc<Session>>,
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
    /// Opens (creating and migrating) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = rusqlite::Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "journal_size_limit", 64 << 20)?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_handler(Some(wait_a_millisecond))?;
        schema::migrate(&Db::sqlite(&connection))?;
        let cached = Arc::new(CachedReads::new());
        let reported = Arc::clone(&cached);
        connection.update_hook(Some(move |action, _database: &str, table: &str, _row| {
            use rusqlite::hooks::Action;
            let change = match action {
                Action::SQLITE_INSERT => Change::Insert,
                Action::SQLITE_DELETE => Change::Delete,
                _ => Change::Update,
            };
            reported.generations.changed(change, table);
        }));
        let connection = Arc::new(Mutex::new(connection));
        let readers = readers::Readers::open(path)?;
        match checkpoint::spawn(path, Arc::downgrade(&connection), readers.gate()) {
            Ok(()) => {
                let locked = connection
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                locked.pragma_update(None, "wal_autocheckpoint", 0)?;
            }
            Err(error) => tracing::warn!("{error}; SQLite checkpoints on commit instead"),
        }
        Ok(Store {
            backend: Backend::Sqlite(connection),
            readers: Some(Arc::new(readers)),
            read_turns: Arc::default(),
            cached,
            catch_up: None,
        })
    }

    /// Opens the PostgreSQL database at `url` with a pool of at most `pool_size`
    /// connections, applies the migrations it has not seen (under a lock, so that replicas
    /// starting together apply each once), and starts listening for other replicas'
    /// changes to cached rows. On the blocking pool: the client blocks.
    pub async fn open_postgres(url: &PostgresUrl, pool_size: u32) -> Result<Self, StoreError> {
        let url = url.clone();
        tokio::task::spawn_blocking(move || Self::open_postgres_blocking(&url, pool_size))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }

    /// [`Store::open_postgres`] on the calling thread, which must not be an async one.
    pub fn open_postgres_blocking(url: &PostgresUrl, pool_size: u32) -> Result<Self, StoreError> {
        let pool = url.pool(pool_size, POOL_WAIT)?;
        let channel = {
            let mut connection = pool.get()?;
            let db = Db::postgres(&mut connection);
            schema::migrate(&db)?;
            listen::channel(&db)?
        };
        let cached = Arc::new(CachedReads::new());
        // Not trusted until the listener hears.
        cached.generations.set_hearing(false);
        let (catch_up, syncs) = listen::CatchUp::new(channel.clone(), listen::SYNC_WAIT);
        listen::spawn(url.clone(), channel, Arc::downgrade(&cached), syncs)?;
        Ok(Store {
            backend: Backend::Postgres(Arc::new(pool)),
            readers: None,
            read_turns: Arc::default(),
            cached,
            catch_up: Some(Arc::new(catch_up)),
        })
    }

    /// Whether other processes share this database (PostgreSQL: replicas), so that what one
    /// process has on its disk (a module's file, its compiled code) another may lack.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Changes whenever a module row changes, through this process or (on PostgreSQL)
    /// another replica: what the module library waits on to compile, ahead of any call,
    /// the modules another replica accepted.
    pub fn module_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.cached.generations.module_changes()
    }

    /// Which database this store is on.
    pub fn dialect(&self) -> db::Dialect {
        match self.backend {
            Backend::Sqlite(_) => db::Dialect::Sqlite,
            Backend::Postgres(_) => db::Dialect::Postgres,
        }
    }

    /// A token's session (whatever its expiry: the caller checks it), by the token. Shared
    /// with the cache, not copied: every request reads one, and its user is eight strings
    /// (the password's hash among them) that a request has no use for copies of.
    pub async fn session(&self, token: &str) -> Result<Option<Arc<Session>>, StoreError> {
        let hash = tokens::hash(token);
        self.read_through(
            |reads| &reads.sessions,
            hash.clone(),
            move |connection| Ok(tokens::session(connection, &hash)?.map(Arc::new)),
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
        L: FnOnce(&Db<'_>) -> Result<Option<V>, StoreError> + Send + 'static,
    {
        let cache = pick(&self.cached);
        // Caught up first: the changes it hears make entries stale before one is used.
        if self.cached.generations.trusted() && cache.holds(&key) && self.caught_up().await {
            let current = self.cached.generations.of(cache.domains());
            if let Some(value) = cache.get(&key, current) {
                return Ok(Some(value));
            }
        }
        let reads = Arc::clone(&self.cached);
        let (generation, value) = self
            .run(move |db| {
                // The generation is taken before the row is read. On SQLite both happen
                // under the connection's lock, which every write holds too. On PostgreSQL a
                // write commits and only then bumps (here, or through a notification from
                // another replica), so a row read before that commit is remembered at a
                // generation already past.
                let generation = reads.generations.of(pick(&reads).domains());
                Ok((generation, load(db)?))
            })
            .await?;
        if let Some(value) = &value {
            cache.put(key, generation, value.clone());
        }
        Ok(value)
    }

    /// Whether this replica has heard every change committed before the current request
    /// began (or this read, outside one); always on SQLite, where no other process writes.
    async fn caught_up(&self) -> bool {
        let Some(catch_up) = &self.catch_up else {
            return true;
        };
        let since = read_moment();
        catch_up
            .caught_up(since, |channel, payload| {
                self.run(move |db| Ok(listen::sync(db, &channel, &payload)?))
            })
            .await
    }

    /// Whether the database answers and holds the schema this build expects: what a
    /// readiness probe asks before sending traffic here.
    pub async fn is_ready(&self) -> Result<bool, StoreError> {
        self.run(|db| Ok(schema::is_current(db)?)).await
    }

    /// The housekeeping the server does every hour: deletes the run logs that started
    /// before `log_cutoff` (RFC 3339), a batch per operation so that other writes go
    /// between, then the events finished before it (with their deliveries; an unfinished
    /// one stays), then the tokens expired at `now` (Unix seconds); a failure of one
    /// leaves the next undone.
    pub async fn delete_expired(&self, log_cutoff: &str, now: i64) -> Result<Expired, StoreError> {
        let mut run_logs = 0;
        loop {
            let cutoff = log_cutoff.to_owned();
            let batch = self
                .run(move |db| run_logs::delete_batch_before(db, &cutoff))
                .await?;
            run_logs += batch;
            if batch < run_logs::DELETED_PER_STATEMENT {
                break;
            }
        }
        loop {
            let cutoff = log_cutoff.to_owned();
            let batch = self
                .run(move |db| deliveries::delete_batch_before(db, &cutoff))
                .await?;
            if batch < deliveries::EVENTS_DELETED_PER_STATEMENT {
                break;
            }
        }
        let tokens = self.run(move |db| tokens::delete_expired(db, now)).await?;
        Ok(Expired { run_logs, tokens })
    }

    /// Runs a closure with a connection on the blocking pool. Private to the store: its
    /// facades are the only callers, so no SQL is written outside this module.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run_here(work))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }

    /// Runs a read that may scan ([`readers`]): after `organization`'s reads before it,
    /// stopped at `deadline` ([`StoreError::Deadline`]). On SQLite on a read connection,
    /// never the writer's; on PostgreSQL on a pooled one, under `statement_timeout`.
    async fn read_within<T, F>(
        &self,
        organization: Option<u64>,
        deadline: Duration,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let turn = self.read_turns.take(organization, deadline).await?;
        if let Some(readers) = &self.readers {
            return readers.run(turn, deadline, work).await;
        }
        let timeout_ms = deadline.as_millis().max(1);
        self.run(move |db| {
            // Held by the blocking task, as long as the read lasts.
            let _turn = turn;
            let transaction = db.transaction()?;
            // Until the transaction ends, whichever way: the pooled connection keeps none.
            transaction.execute_batch(&format!("SET LOCAL statement_timeout = {timeout_ms}"))?;
            match work(&transaction) {
                Ok(answer) => {
                    transaction.commit()?;
                    Ok(answer)
                }
                Err(error) if error.is_interrupted() => Err(StoreError::Deadline(deadline)),
                Err(error) => Err(error),
            }
        })
        .await
    }

    /// Holds the SQLite connection as a long read or the checkpoint thread would, for the
    /// tests of callers that must not wait for it (`None` on PostgreSQL).
    #[cfg(test)]
    pub(crate) fn hold_connection(
        &self,
    ) -> Option<std::sync::MutexGuard<'_, rusqlite::Connection>> {
        match &self.backend {
            Backend::Sqlite(connection) => Some(
                connection
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            ),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs a closure with the connection on the calling thread, for a facade method whose
    /// caller is off the async threads already (the run log writer's rounds, on the
    /// blocking pool; the operator's token rotation).
    fn run_here<T>(
        &self,
        work: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let asked = Instant::now();
        match &self.backend {
            Backend::Sqlite(connection) => {
                // A panic inside a query leaves no transaction open (a transaction rolls
                // back when dropped), so the connection is still usable.
                let connection = connection
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                waited(asked);
                let _in_use =
                    crate::metrics::Held::on(|metrics| metrics.db_connections_in_use.clone());
                work(&Db::sqlite(&connection))
            }
            Backend::Postgres(pool) => {
                let mut connection = pool.get()?;
                waited(asked);
                let _in_use =
                    crate::metrics::Held::on(|metrics| metrics.db_connections_in_use.clone());
                let db = Db::postgres(&mut connection);
                let result = work(&db);
                // After the commit: a read that began before it is remembered at a
                // generation this makes stale (see `read_through`).
                for (change, table) in db.take_written() {
                    self.cached.generations.changed(change, &table);
                }
                result
            }
        }
    }
}

/// How long the SQLite connection waits for a lock another connection holds before it
/// fails. The checkpoint thread's restart, which holds the writer's lock, runs while that
/// thread holds this connection, so this connection does not meet it; what is left is
/// another process that opened the database.
const SQLITE_LOCK_WAIT_MS: i32 = 5_000;

/// The SQLite connection's busy handler: waits for the lock in steps of one millisecond,
/// up to [`SQLITE_LOCK_WAIT_MS`]. SQLite's own (`busy_timeout`) sleeps in growing steps of
/// up to 100 ms, so a commit blocked by a checkpoint of a few milliseconds could sleep tens
/// of milliseconds more, with every call waiting on its run log.
fn wait_a_millisecond(tries: i32) -> bool {
    if tries >= SQLITE_LOCK_WAIT_MS {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

/// Records how long an operation waited for its connection.
fn waited(asked: Instant) {
    if let Some(metrics) = crate::metrics::metrics() {
        metrics
            .db_wait_seconds
            .observe(asked.elapsed().as_secs_f64());
    }
}

/// The condition that `column` equals `?1` when a value is `given`, else that `?1` is
/// NULL (every row): each its own statement text. SQLite plans a statement before it sees
/// its parameters, and would scan the whole table for `column = ?1 OR ?1 IS NULL` rather
/// than read `column`'s index, so an organization's list would read every organization's
/// rows. The comparison comes first either way: PostgreSQL types a parameter by its first
/// use.
pub(super) fn equal_or_all(column: &str, given: bool) -> String {
    if given {
        format!("{column} = ?1")
    } else {
        format!("({column} = ?1 OR ?1 IS NULL)")
    }
}

/// One page of `table`'s rows whose `column` equals `value` (all rows when it is none),
/// in the window's order then by id: the shape most lists of the API share.
fn page_where<T, K: SortColumn + Copy>(
    db: &Db<'_>,
    table: &str,
    columns: &str,
    column: &str,
    value: Option<u64>,
    window: Window<K>,
    from_row: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Page<T>, StoreError> {
    // The databases' integers are signed: a filter beyond them matches no row, and a window
    // beyond them is past every row. Neither may reach the query as a u64 it cannot convert.
    let Ok(value) = value.map(i64::try_from).transpose() else {
        return Ok(Page {
            rows: Vec::new(),
            total: 0,
        });
    };
    let limit = i64::try_from(window.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(window.offset).unwrap_or(i64::MAX);
    let filter = format!("WHERE {}", equal_or_all(column, value.is_some()));
    let total: u64 = db.query_row(
        &format!("SELECT COUNT(*) FROM {table} {filter}"),
        params![value],
        |row| row.get(0),
    )?;
    let rows = db.query_map(
        &format!(
            "SELECT {columns} FROM {table} {filter} ORDER BY {} {}, id LIMIT ?2 OFFSET ?3",
            window.order_by.column(),
            if window.descending { "DESC" } else { "ASC" }
        ),
        params![value, limit, offset],
        from_row,
    )?;
    Ok(Page { rows, total })
}

/// Records in `id_high_water` (migration 4) that every id of `counter` (a table's name) up
/// to `through` has been given, so that a new row is numbered past a deleted one's id:
/// creating an organization or a user takes the larger of its table's highest id and this
/// mark, plus one. A deleted organization's or user's id never comes to name another, so
/// no URL, run log or in-flight run of the deleted one reaches a new one.
fn retire_ids(db: &Db<'_>, counter: &str, through: u64) -> Result<(), DbError> {
    db.execute(
        &format!(
            "INSERT INTO id_high_water (name, last_id) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_id = {}",
            db.dialect()
                .greatest("id_high_water.last_id", "excluded.last_id")
        ),
        params![counter, through],
    )?;
    Ok(())
}

/// The next id of `table` (whose counter in `id_high_water` is named `counter`): past its
/// highest row and past every id it ever gave, so that a deleted row's id is never given
/// again. The counter's row is written in the same statement, and on PostgreSQL it stays
/// locked until the caller's transaction ends, so that two replicas creating at the same
/// moment are given different ids. Call it inside the transaction that inserts the row.
fn next_id(db: &Db<'_>, counter: &str, table: &'static str) -> Result<u64, DbError> {
    let highest = format!("COALESCE((SELECT MAX(id) FROM {table}), 0)");
    db.query_row(
        &format!(
            "INSERT INTO id_high_water (name, last_id) VALUES (?1, {highest} + 1)
             ON CONFLICT (name) DO UPDATE SET last_id = {} + 1
             RETURNING last_id",
            db.dialect().greatest("id_high_water.last_id", &highest)
        ),
        params![counter],
        |row| row.get(0),
    )
}

/// Maps a uniqueness violation to [`StoreError::Conflict`] on `field`, with a message.
fn unique_violation(error: DbError, field: &'static str, message: &str) -> StoreError {
    if error.is_unique_violation() {
        StoreError::Conflict {
            field,
            message: message.to_owned(),
        }
    } else {
        StoreError::Database(error)
    }
}
