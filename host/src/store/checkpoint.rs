//! Checkpoints the write-ahead log on a thread and a connection of its own.
//!
//! By default SQLite checkpoints inside the commit that fills the log past 1,000 pages, so
//! the run log writer's commit, and every call waiting on it, would now and then wait for
//! the database file to be written and synced. Here the writer only appends to the log;
//! this thread copies it into the database every [`INTERVAL`] with a passive checkpoint,
//! which never blocks the writer, and the writer starts the log over once it is copied.
//!
//! A writer that never pauses leaves a passive checkpoint always a few frames behind, and
//! SQLite starts the log over only once a checkpoint has copied all of it: measured under
//! load, the log grew past 1.5 GB beside a 240 MB database, and calls waited on it. So once
//! the log holds more than [`RESTART_FRAMES`], the checkpoint is a restarting one: it holds
//! the writer up (a bounded pause), copies the rest and makes the next commit start the log
//! from its beginning. Passive checkpoints first copy what came while the last one ran, so
//! that the rest, and the pause, is small ([`catch_up_and_restart`]). A passive checkpoint
//! that cannot copy the whole log (under load, none can) leaves what it copied unsynced in
//! the database file, so the restart's sync of the file would write all of it; this thread
//! syncs the file before the restart, beside the writer. And the restart runs while this
//! thread holds the store's connection, so that the run log writer (its rounds commit on
//! the blocking pool) waits on that lock and goes on the moment the restart is done,
//! rather than in SQLite's busy handler, which polls a millisecond at a time. The store's
//! read connections, which scans use (`readers.rs`), are closed out and interrupted for it.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::readers::ReadGate;
use super::StoreError;
use crate::metrics::{metrics, Checkpoint, CheckpointLabels};

/// How often the log is copied into the database.
const INTERVAL: Duration = Duration::from_millis(250);
/// The size the log file is cut back to after it was reset, so that a burst does not leave
/// a large file behind.
const LOG_SIZE_LIMIT: i64 = 64 << 20;
/// Frames (pages) in the log past which the checkpoint restarts it: 16 MiB of 4 KiB pages.
const RESTART_FRAMES: i64 = 4096;
/// Passive checkpoints at most before a restarting one, each copying what the writer added
/// during the one before. Under load each takes a millisecond or two (two syncs of a few
/// pages), so the frames that come during one shrink quickly to a few dozen.
const CATCH_UP_PASSES: usize = 8;
/// Frames added during a passive checkpoint few enough for the restart to copy (128 KiB).
/// Syncing what it copies is most of the restart's pause, and a sync's time grows with the
/// pages it writes (measured here: 0.4 ms for 16 pages, 1.2 ms for 256).
const CATCH_UP_FRAMES: i64 = 32;
/// How long the restart waits for this process's reads that may scan to leave their gate
/// (`readers.rs`: half of it for them to end, the rest interrupting them), and then for
/// another process's read or write to end (SQLite never waits in a passive checkpoint).
/// Every call of this process waits on the store's connection meanwhile, up to twice this,
/// so it gives up soon and is tried again at the next interval. Under a heavy write load,
/// when restarts are frequent, a read that scans for longer than the time between two may
/// be cut off again at each, until its deadline.
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// Starts the checkpointing thread for the database at `path`; it ends once `store` (the
/// writing connection) is gone. On failure the caller keeps SQLite's own checkpoints.
pub(super) fn spawn(
    path: &Path,
    store: Weak<Mutex<Connection>>,
    readers: Arc<ReadGate>,
) -> Result<(), StoreError> {
    let connection = Connection::open(path)?;
    // Only synced, never written through: see `catch_up_and_restart`. Closing a file drops
    // every POSIX lock the process holds on it, SQLite's own included (SQLite knows of its
    // own descriptors only); this one is closed when the thread ends, once the store's
    // connection is gone, and no other process opens a data directory's database while a
    // server holds it (`server.lock`).
    let database = File::open(path)?;
    connection.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    connection.busy_timeout(RESTART_WAIT)?;
    std::thread::Builder::new()
        .name("wasmhook-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(INTERVAL);
            if store.strong_count() == 0 {
                break;
            }
            let result = checkpoint(&connection, Checkpoint::passive)
                .map_err(StoreError::from)
                .and_then(|logged| {
                    if logged > RESTART_FRAMES {
                        catch_up_and_restart(&connection, &database, &store, &readers, logged)
                    } else {
                        Ok(logged)
                    }
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

/// Runs one checkpoint, timed into `sqlite_checkpoint_seconds`; returns the frames the log
/// held. A restart that could not finish (another process's read or write outlasted
/// [`RESTART_WAIT`]) is logged and not timed: it is tried again at the next interval.
fn checkpoint(connection: &Connection, mode: Checkpoint) -> rusqlite::Result<i64> {
    let started = Instant::now();
    let pragma = match mode {
        Checkpoint::passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Checkpoint::restart => "PRAGMA wal_checkpoint(RESTART)",
    };
    // Its row: whether it was blocked, the log's frames, the frames copied.
    let (blocked, frames) = connection.query_row(pragma, [], |row| {
        Ok((row.get::<_, i64>(0)? != 0, row.get::<_, i64>(1)?))
    })?;
    if blocked && mode == Checkpoint::restart {
        tracing::warn!(
            "the write-ahead log was not started over: another connection held it past {} ms",
            RESTART_WAIT.as_millis()
        );
        return Ok(frames);
    }
    if let Some(metrics) = metrics() {
        metrics
            .sqlite_checkpoint_seconds
            .get_or_create(&CheckpointLabels { mode })
            .observe(started.elapsed().as_secs_f64());
        if mode == Checkpoint::passive {
            metrics.sqlite_log_frames.set(frames);
        }
    }
    Ok(frames)
}

/// Restarts the log, which holds `logged` frames, all copied by the passive checkpoint
/// just run. The restart holds the writer up while it syncs the log, copies what is left and
/// syncs the database, and what is left is what the writer added during that passive
/// checkpoint (tens of milliseconds of commits, megabytes under load). So passive
/// checkpoints copy it first, beside the writer, each the frames the last one saw come,
/// until few enough came; the restart then has little to write and sync.
///
/// The restart itself runs holding `store`, the store's writing connection, with the read
/// connections' gate closed and their reads interrupted: no transaction of this process is
/// then open, so it waits for none, and every caller (the writer first) waits on the lock
/// and goes on as soon as it is released.
fn catch_up_and_restart(
    connection: &Connection,
    database: &File,
    store: &Weak<Mutex<Connection>>,
    readers: &ReadGate,
    mut logged: i64,
) -> Result<i64, StoreError> {
    for _ in 0..CATCH_UP_PASSES {
        let now = checkpoint(connection, Checkpoint::passive)?;
        if now < logged {
            // The writer started the log over by itself: everything had been copied.
            return Ok(now);
        }
        let came = now - logged;
        logged = now;
        if came <= CATCH_UP_FRAMES {
            break;
        }
    }
    // SQLite syncs the database file only once a checkpoint has copied the whole log, which
    // under load only the restart does: the file then holds every page the passive
    // checkpoints copied since the last restart (megabytes), and syncing them was most of
    // the restart's pause. Synced here, beside the writer, the restart's sync writes only
    // the few pages it copies itself. The sync takes milliseconds, and what the writer
    // added meanwhile is copied by one more passive checkpoint.
    database.sync_data()?;
    checkpoint(connection, Checkpoint::passive)?;
    let Some(store) = store.upgrade() else {
        return Ok(logged);
    };
    let _held = store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The store's read connections' reads are this process's too: closed out and
    // interrupted for the restart, they run again after it.
    match readers.closed_for(RESTART_WAIT, || checkpoint(connection, Checkpoint::restart)) {
        Some(restarted) => Ok(restarted?),
        None => {
            tracing::warn!(
                "the write-ahead log was not started over: a read did not stop within {} ms",
                RESTART_WAIT.as_millis()
            );
            Ok(logged)
        }
    }
}
