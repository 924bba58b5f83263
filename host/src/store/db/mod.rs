//! The one connection type the store's queries are written against, whichever database
//! holds the data: SQLite (one file in the data directory, the embedded default) or
//! PostgreSQL (shared by every replica). A facade's body is written once, with
//! SQLite-style numbered parameters (`?1`) and portable SQL; where the two dialects differ
//! (a JSON path, case folding, `MAX` of two values), it asks [`Dialect`] for the fragment.
//!
//! Values cross as [`Value`]; a column is read with [`Row::get`] into the Rust type the
//! caller names, and a mismatch is a [`DbError::Column`], never a panic.

mod dialect;
pub mod postgres;
mod value;

use std::cell::RefCell;

pub use dialect::Dialect;
pub use value::{FromValue, ToValue, Value};

use self::postgres::PgConnection;

/// Why a statement failed, by the database it ran on; [`DbError::is_unique_violation`]
/// tells a taken name from other failures by the error's type, on either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused or failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed, or its connection broke.
    #[error(transparent)]
    Postgres(#[from] ::postgres::Error),
    /// No PostgreSQL connection became free in time (the pool's wait is bounded).
    #[error("no database connection is free: {0}")]
    Pool(#[from] r2d2::Error),
    /// The store's connections were closed (it is being dropped).
    #[error("the database connections are closed")]
    Closed,
    /// A query expected to find a row found none.
    #[error("the query returned no row")]
    NoRow,
    /// A column held another kind of value than the code reads it as.
    #[error("a column holds {found} where {expected} was expected")]
    Column {
        /// The Rust type the code reads.
        expected: &'static str,
        /// The kind of value the column held.
        found: &'static str,
    },
    /// A query read past its last column.
    #[error("the query has no column {0}")]
    NoColumn(usize),
    /// An integer parameter beyond the databases' signed 64 bits.
    #[error("an integer beyond 64 signed bits cannot be stored")]
    OutOfRange,
}

impl DbError {
    /// Whether a uniqueness rule refused the statement (a name taken), on either backend.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => {
                failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            DbError::Postgres(error) => {
                error.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }

    /// Whether the statement was stopped under way: on SQLite by an interrupt or the
    /// progress handler, on PostgreSQL by `statement_timeout` (or a cancel).
    pub fn is_interrupted(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => {
                failure.code == rusqlite::ErrorCode::OperationInterrupted
            }
            DbError::Postgres(error) => {
                error.code() == Some(&::postgres::error::SqlState::QUERY_CANCELED)
            }
            _ => false,
        }
    }

    /// Whether a foreign key refused the statement (it names a row that is gone).
    pub fn is_foreign_key_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => {
                failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
            }
            DbError::Postgres(error) => {
                error.code() == Some(&::postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
            }
            _ => false,
        }
    }
}

/// The parameters of one statement, in order: `params![id, name]`.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::ToValue]
    };
    ($($param:expr),+ $(,)?) => {
        &[$(&$param as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue]
    };
}
pub(crate) use params;

/// What a statement did to a table: what the caches need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Rows were added.
    Insert,
    /// Rows were changed.
    Update,
    /// Rows were removed.
    Delete,
}

impl Change {
    /// The table a statement of ours writes and how, read off its first words (`INSERT
    /// INTO t`, `UPDATE t`, `DELETE FROM t`); none for a read. Every statement is the
    /// store's own, so the three shapes are all there are.
    pub fn of_statement(sql: &str) -> Option<(Change, &str)> {
        let mut words = sql.split_whitespace();
        let first = words.next()?;
        let (change, table) = if first.eq_ignore_ascii_case("INSERT") {
            let mut next = words.next()?;
            if next.eq_ignore_ascii_case("OR") {
                words.next()?;
                next = words.next()?;
            }
            next.eq_ignore_ascii_case("INTO")
                .then_some((Change::Insert, words.next()?))?
        } else if first.eq_ignore_ascii_case("UPDATE") {
            (Change::Update, words.next()?)
        } else if first.eq_ignore_ascii_case("DELETE") {
            words
                .next()?
                .eq_ignore_ascii_case("FROM")
                .then_some((Change::Delete, words.next()?))?
        } else {
            return None;
        };
        Some((change, table.split('(').next().unwrap_or(table)))
    }
}

/// One row of a query's answer, its columns read into [`Value`]s.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `index` as a `T`.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, DbError> {
        let value = self.0.get(index).ok_or(DbError::NoColumn(index))?;
        T::from_value(value).map_err(|expected| DbError::Column {
            expected,
            found: value.kind(),
        })
    }
}

/// The connection a facade's code runs its statements on: borrowed for one store
/// operation from SQLite's one connection or from PostgreSQL's pool.
pub struct Db<'c> {
    backend: Backend<'c>,
    /// The tables PostgreSQL statements wrote, for the caches of this process (SQLite's
    /// update hook reports its own).
    written: RefCell<Vec<(Change, String)>>,
}

enum Backend<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(RefCell<&'c mut PgConnection>),
}

impl std::fmt::Debug for Db<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Db")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

impl<'c> Db<'c> {
    /// A handle on SQLite's connection.
    pub fn sqlite(connection: &'c rusqlite::Connection) -> Self {
        Db {
            backend: Backend::Sqlite(connection),
            written: RefCell::new(Vec::new()),
        }
    }

    /// A handle on one of PostgreSQL's pooled connections.
    pub fn postgres(connection: &'c mut PgConnection) -> Self {
        Db {
            backend: Backend::Postgres(RefCell::new(connection)),
            written: RefCell::new(Vec::new()),
        }
    }

    /// Which SQL this connection speaks, for the fragments that differ.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement that returns no rows; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<usize, DbError> {
        let values = values(params)?;
        match &self.backend {
            Backend::Sqlite(connection) => Ok(connection
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(values.iter()))?),
            Backend::Postgres(connection) => {
                self.note(sql);
                let mut connection = connection.borrow_mut();
                let changed = connection.execute(sql, &values)?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs statements separated by semicolons, without parameters (migrations,
    /// transaction control).
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match &self.backend {
            Backend::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Backend::Postgres(connection) => {
                Ok(connection.borrow_mut().client().batch_execute(sql)?)
            }
        }
    }

    /// Every row of a query, each made into a `T` by `from_row`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        from_row: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        self.rows(sql, params)?.iter().map(from_row).collect()
    }

    /// The first row of a query made into a `T`, or none when it has no row.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        from_row: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        self.rows(sql, params)?.first().map(from_row).transpose()
    }

    /// The first row of a query made into a `T`; [`DbError::NoRow`] when it has none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        from_row: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, from_row)?.ok_or(DbError::NoRow)
    }

    /// Starts a transaction: its statements take effect together at
    /// [`Transaction::commit`], and not at all when it is dropped before.
    pub fn transaction(&self) -> Result<Transaction<'_, 'c>, DbError> {
        self.execute_batch("BEGIN")?;
        Ok(Transaction {
            db: self,
            done: false,
        })
    }

    /// Inside a transaction: waits until no other transaction holding `name` (in any
    /// replica) is open, and holds it until this one ends. For a read-then-write that two
    /// replicas must not interleave. On SQLite the one connection already serializes every
    /// transaction.
    pub fn serialize(&self, name: &str) -> Result<(), DbError> {
        match self.dialect() {
            Dialect::Sqlite => Ok(()),
            Dialect::Postgres => {
                self.execute("SELECT pg_advisory_xact_lock(hashtext(?1))", params![name])?;
                Ok(())
            }
        }
    }

    /// The tables PostgreSQL statements wrote through this handle, in order, taken.
    pub fn take_written(&self) -> Vec<(Change, String)> {
        std::mem::take(&mut *self.written.borrow_mut())
    }

    fn rows(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, DbError> {
        let values = values(params)?;
        match &self.backend {
            Backend::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
                let mut read = Vec::new();
                while let Some(row) = rows.next()? {
                    let row = (0..columns)
                        .map(|index| Value::from_sqlite(row.get_ref(index)?))
                        .collect::<Result<Vec<_>, DbError>>()?;
                    read.push(Row(row));
                }
                Ok(read)
            }
            Backend::Postgres(connection) => {
                self.note(sql);
                let rows = connection.borrow_mut().query(sql, &values)?;
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|index| row.try_get::<_, Value>(index).map_err(DbError::from))
                            .collect::<Result<Vec<_>, DbError>>()
                            .map(Row)
                    })
                    .collect()
            }
        }
    }

    fn note(&self, sql: &str) {
        if let Some((change, table)) = Change::of_statement(sql) {
            self.written.borrow_mut().push((change, table.to_owned()));
        }
    }
}

fn values(params: &[&dyn ToValue]) -> Result<Vec<Value>, DbError> {
    params.iter().map(|param| param.to_value()).collect()
}

/// A transaction on a [`Db`]; it derefs to the connection, so the same query code runs
/// inside one or not. Dropped without [`Transaction::commit`], it rolls back.
pub struct Transaction<'t, 'c> {
    db: &'t Db<'c>,
    done: bool,
}

impl std::fmt::Debug for Transaction<'_, '_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Transaction")
            .field("done", &self.done)
            .finish()
    }
}

impl<'c> std::ops::Deref for Transaction<'_, 'c> {
    type Target = Db<'c>;

    fn deref(&self) -> &Db<'c> {
        self.db
    }
}

impl Transaction<'_, '_> {
    /// Makes the transaction's statements take effect.
    pub fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        self.db.execute_batch("COMMIT")
    }
}

impl Drop for Transaction<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            // A failed rollback leaves the connection in a broken transaction: SQLite's is
            // rolled back by the next BEGIN's error path, PostgreSQL's connection is
            // dropped by the pool as broken.
            if let Err(error) = self.db.execute_batch("ROLLBACK") {
                tracing::warn!("a transaction could not be rolled back: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_table_is_read_off_each_shape_of_statement() {
        assert_eq!(
            Change::of_statement("INSERT INTO hooks (id) VALUES (?1)"),
            Some((Change::Insert, "hooks"))
        );
        assert_eq!(
            Change::of_statement("\n  insert or ignore into hook_queues(hook_id) VALUES (1)"),
            Some((Change::Insert, "hook_queues"))
        );
        assert_eq!(
            Change::of_statement("UPDATE tokens SET expires_at = ?2"),
            Some((Change::Update, "tokens"))
        );
        assert_eq!(
            Change::of_statement("DELETE FROM users WHERE id = ?1"),
            Some((Change::Delete, "users"))
        );
        assert_eq!(Change::of_statement("SELECT * FROM hooks"), None);
        assert_eq!(Change::of_statement("WITH x AS (SELECT 1) SELECT 2"), None);
    }

    #[test]
    fn a_column_of_another_kind_is_an_error_not_a_panic() {
        let row = Row(vec![Value::Text("x".into()), Value::Int(-1), Value::Null]);
        assert!(matches!(
            row.get::<u64>(0),
            Err(DbError::Column { found: "text", .. })
        ));
        assert!(matches!(row.get::<u64>(1), Err(DbError::Column { .. })));
        assert_eq!(row.get::<i64>(1).ok(), Some(-1));
        assert_eq!(row.get::<Option<String>>(2).ok(), Some(None));
        assert!(matches!(row.get::<String>(3), Err(DbError::NoColumn(3))));
    }

    #[test]
    fn a_transaction_dropped_before_commit_leaves_nothing() -> Result<(), DbError> {
        let connection = rusqlite::Connection::open_in_memory()?;
        let db = Db::sqlite(&connection);
        db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")?;
        {
            let transaction = db.transaction()?;
            transaction.execute("INSERT INTO t (name) VALUES (?1)", params!["gone"])?;
        }
        let transaction = db.transaction()?;
        transaction.execute("INSERT INTO t (name) VALUES (?1)", params!["kept"])?;
        transaction.commit()?;
        let names = db.query_map("SELECT name FROM t ORDER BY id", params![], |row| {
            row.get::<String>(0)
        })?;
        assert_eq!(names, vec!["kept".to_owned()]);
        Ok(())
    }
}
