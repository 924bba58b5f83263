//! Reads that may scan, on connections of their own and under a deadline.
//!
//! On SQLite every operation of this process takes the one connection in turn
//! (`Backend::Sqlite`). A read that scans, `GET /hooks/logs` with `search` over an
//! organization's week of run logs or with a filter no index serves, would hold that
//! connection for as long as it scans, and every tenant's writes (the run log writer's
//! commits, on which every call's answer waits) with it. Such reads run here instead:
//!
//! - on one of [`READERS`] connections of their own (`query_only`: no statement through
//!   them writes), which in WAL mode neither wait for the writer nor make it wait;
//! - one read of an organization at a time, and the readers taken in arrival order
//!   ([`tokio::sync::Semaphore`] is fair), so that one organization's many reads wait
//!   behind each other and never fill the queue in front of another's;
//! - each stopped at its deadline, by SQLite's progress handler, as
//!   [`StoreError::Deadline`].
//!
//! A read holds the write-ahead log at the snapshot it began with, and the checkpoint
//! thread's restart, which starts the log over, cannot finish while one is under way; a
//! reader kept busy without pause would let the log grow without bound. So the restart goes
//! through the readers' [`ReadGate`]: it closes the gate to new reads, interrupts those under
//! way, waits (briefly) for them to leave, restarts the log and opens the gate again; a read
//! cut off that way before its deadline waits at the gate and runs again.
//!
//! On PostgreSQL, where each operation has a pooled connection of its own, the deadline is
//! the statement's `statement_timeout`, and the same one-at-a-time per organization holds.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::db::Db;
use super::StoreError;
use crate::keyed::KeyedSemaphores;

/// Read connections beside the writer's: as many as the cores of the machines this is
/// sized for. More would let scans take more of the cores the calls need.
pub(super) const READERS: usize = 2;

/// SQLite virtual machine steps between two looks at the clock (a few tens of
/// nanoseconds each). A scan of run logs by the organization's index takes about six steps
/// a row, and a `LIKE` over a row's body is one step however long the body: a look every
/// sixteen rows or so, so that a scan of large bodies overshoots its deadline by the time
/// sixteen of them take (tens of milliseconds at 2 MiB each), not by seconds.
const STEPS_PER_LOOK: i32 = 100;

/// The read connections of an SQLite store, and the turns they are taken in.
pub(super) struct Readers {
    idle: Mutex<Vec<Connection>>,
    /// One per idle connection; waiters served in arrival order. A permit is held by the
    /// blocking task that reads, not by the request's future, which a client that hangs up
    /// drops while the read goes on: the permits and the idle connections stay equal.
    free: Arc<Semaphore>,
    gate: Arc<ReadGate>,
}

/// Where the readers' reads pass, and what the checkpoint thread closes to restart the log.
pub(super) struct ReadGate {
    state: Mutex<GateState>,
    changed: Condvar,
    interrupts: Vec<InterruptHandle>,
}

#[derive(Default)]
struct GateState {
    /// Reads between the gate and their end.
    reading: usize,
    /// A restart is waiting for them or under way: no read enters.
    closed: bool,
}

impl ReadGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits while the gate is closed (a restart's few milliseconds), then counts a read in
    /// until the answer is dropped.
    fn enter(&self) -> Reading<'_> {
        let mut state = self
            .changed
            .wait_while(self.lock(), |state| state.closed)
            .unwrap_or_else(PoisonError::into_inner);
        state.reading += 1;
        Reading(self)
    }

    /// Closes the gate and waits up to `wait` for the reads under way to leave: the first
    /// half for them to end by themselves (a short read is not cut off), the rest
    /// interrupting them, again every millisecond, since an interrupt reaches only a
    /// statement under way and a read may be between two. Then runs `restart` and opens the
    /// gate again, whatever happens in `restart`. `None`, with `restart` not run, when a
    /// read did not leave in time: the caller tries again later.
    pub(super) fn closed_for<T>(&self, wait: Duration, restart: impl FnOnce() -> T) -> Option<T> {
        // Declared first, so dropped last: after the lock below is released.
        let _opened = Reopen(self);
        let mut state = self.lock();
        state.closed = true;
        let started = Instant::now();
        while state.reading > 0 {
            let waited = started.elapsed();
            if waited >= wait {
                return None;
            }
            if waited >= wait / 2 {
                for handle in &self.interrupts {
                    handle.interrupt();
                }
            }
            let slice = (wait - waited).min(Duration::from_millis(1));
            state = self
                .changed
                .wait_timeout(state, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        Some(restart())
    }
}

/// Opens the gate when dropped: after the restart, or when it panicked.
struct Reopen<'a>(&'a ReadGate);

impl Drop for Reopen<'_> {
    fn drop(&mut self) {
        self.0.lock().closed = false;
        self.0.changed.notify_all();
    }
}

/// A read counted in at the gate; counted out when dropped.
struct Reading<'a>(&'a ReadGate);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.lock().reading -= 1;
        self.0.changed.notify_all();
    }
}

impl Readers {
    /// Opens the read connections of the database at `path`, already migrated; the gate
    /// is the checkpoint thread's to close.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let mut idle = Vec::with_capacity(READERS);
        let mut interrupts = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let connection = Connection::open(path)?;
            // Nothing a read does may write, whatever SQL a facade gives it.
            connection.pragma_update(None, "query_only", true)?;
            interrupts.push(connection.get_interrupt_handle());
            idle.push(connection);
        }
        Ok(Readers {
            idle: Mutex::new(idle),
            free: Arc::new(Semaphore::new(READERS)),
            gate: Arc::new(ReadGate {
                state: Mutex::new(GateState::default()),
                changed: Condvar::new(),
                interrupts,
            }),
        })
    }

    /// The gate the checkpoint thread closes to restart the log.
    pub(super) fn gate(&self) -> Arc<ReadGate> {
        Arc::clone(&self.gate)
    }

    /// Runs `work` on a read connection, once one is free, stopped at `deadline`. A read
    /// the checkpoint thread interrupted before then is run again once the gate opens.
    /// `turn` (the organization's) is held until the read ends, even if the caller's
    /// future is dropped first.
    pub(super) async fn run<T, F>(
        self: &Arc<Self>,
        turn: OwnedSemaphorePermit,
        deadline: Duration,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let free = Arc::clone(&self.free)
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // Released after the connection is back (dropped in reverse order).
            let _held = (turn, free);
            let lent = readers.checkout()?;
            let connection = lent.connection()?;
            let until = Instant::now() + deadline;
            connection.busy_timeout(deadline)?;
            connection.progress_handler(STEPS_PER_LOOK, Some(move || Instant::now() >= until));
            loop {
                let reading = readers.gate.enter();
                let result = work(&Db::sqlite(connection));
                drop(reading);
                match result {
                    Err(error) if error.is_interrupted() => {
                        if Instant::now() >= until {
                            return Err(StoreError::Deadline(deadline));
                        }
                    }
                    other => return other,
                }
            }
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }

    /// An idle connection, given back when dropped (a panicking read included): the
    /// semaphore's permits and the idle connections stay equal.
    fn checkout(&self) -> Result<Lent<'_>, StoreError> {
        let connection = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(closed)?;
        Ok(Lent {
            connection: Some(connection),
            readers: self,
        })
    }
}

/// A read connection out of the idle list.
struct Lent<'a> {
    connection: Option<Connection>,
    readers: &'a Readers,
}

impl Lent<'_> {
    fn connection(&self) -> Result<&Connection, StoreError> {
        self.connection.as_ref().ok_or_else(closed)
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.progress_handler(0, None::<fn() -> bool>);
            self.readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
    }
}

fn closed() -> StoreError {
    StoreError::Database(super::db::DbError::Closed)
}

/// One read of an organization at a time in this process (`None`: the operator's, across
/// organizations), on either database: an organization's many reads at once wait behind
/// each other, not in front of another's, and for no longer than their deadline
/// ([`StoreError::Queued`]).
pub(super) struct ReadTurns(KeyedSemaphores<Option<u64>>);

impl Default for ReadTurns {
    fn default() -> Self {
        ReadTurns(KeyedSemaphores::new(1))
    }
}

impl ReadTurns {
    /// Waits up to `wait` for `organization`'s turn; it lasts as long as the permit.
    pub(super) async fn take(
        &self,
        organization: Option<u64>,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit, StoreError> {
        match tokio::time::timeout(wait, self.0.acquire(organization)).await {
            Ok(turn) => turn.map_err(|_| closed()),
            Err(_) => Err(StoreError::Queued),
        }
    }
}
