//! Checkpoints the write-ahead log on a thread and a connection of its own.
//!
//! By default SQLite checkpoints inside the commit that fills the log past 1,000 pages, so
//! the run log writer's commit, and every call waiting on it, would now and then wait for
//! the database file to be written and synced. Here the writer only appends to the log;
//! this thread copies it into the database every [`INTERVAL`] with a passive checkpoint,
//! which never blocks the writer, and the writer starts the log over once it is copied.

use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// How often the log is copied into the database.
const INTERVAL: Duration = Duration::from_millis(250);
/// The size the log file is cut back to after it was reset, so that a burst does not leave
/// a large file behind.
const LOG_SIZE_LIMIT: i64 = 64 << 20;

/// Starts the checkpointing thread for the database at `path`; it ends once `store` (the
/// writing connection) is gone. On failure the caller keeps SQLite's own checkpoints.
pub(super) fn spawn(path: &Path, store: Weak<Mutex<Connection>>) -> Result<(), StoreError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    std::thread::Builder::new()
        .name("wasmhook-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(INTERVAL);
            if store.strong_count() == 0 {
                break;
            }
            let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                row.get::<_, i64>(0)
            });
            if let Err(error) = result {
                tracing::warn!("checkpointing the write-ahead log failed: {error}");
            }
        })
        .map_err(|error| {
            StoreError::Task(format!("cannot start the checkpoint thread: {error}"))
        })?;
    Ok(())
}
