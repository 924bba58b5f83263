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
//! the log holds more than [`RESTART_FRAMES`], the checkpoint is a restarting one: it waits
//! for the writer's current commit (the writer waits for it in turn, a bounded pause),
//! copies the rest and makes the next commit start the log from its beginning. Passive
//! checkpoints first copy what came while the last one ran, so that the rest, and the
//! pause, is small ([`catch_up_and_restart`]).

use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

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
/// during the one before.
const CATCH_UP_PASSES: usize = 3;
/// Frames added during a passive checkpoint few enough for the restart to copy (1 MiB).
const CATCH_UP_FRAMES: i64 = 256;
/// How long a restarting checkpoint waits for the writer's commit before giving up (it is
/// tried again at the next interval).
const RESTART_WAIT: Duration = Duration::from_millis(500);

/// Starts the checkpointing thread for the database at `path`; it ends once `store` (the
/// writing connection) is gone. On failure the caller keeps SQLite's own checkpoints.
pub(super) fn spawn(path: &Path, store: Weak<Mutex<Connection>>) -> Result<(), StoreError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    connection.busy_timeout(RESTART_WAIT)?;
    std::thread::Builder::new()
        .name("wasmhook-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(INTERVAL);
            if store.strong_count() == 0 {
                break;
            }
            let result = checkpoint(&connection, Checkpoint::passive).and_then(|logged| {
                if logged > RESTART_FRAMES {
                    catch_up_and_restart(&connection, logged)
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
/// held.
fn checkpoint(connection: &Connection, mode: Checkpoint) -> rusqlite::Result<i64> {
    let started = Instant::now();
    let pragma = match mode {
        Checkpoint::passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Checkpoint::restart => "PRAGMA wal_checkpoint(RESTART)",
    };
    // Its row: whether it was blocked, the log's frames, the frames copied.
    let frames = connection.query_row(pragma, [], |row| row.get::<_, i64>(1))?;
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
fn catch_up_and_restart(connection: &Connection, mut logged: i64) -> rusqlite::Result<i64> {
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
    checkpoint(connection, Checkpoint::restart)
}
