//! The run log writer: group commit. A run whose log finds no commit under way commits it
//! with whatever other logs are waiting; a run that finds one under way queues its
//! log and waits. When a commit ends, the committer tells each run in its batch that its
//! log is durable (or why not) and hands the turn to the run that has waited longest, which
//! commits everything queued meanwhile. A call's HTTP answer waits for that, so an answered
//! call always has its run log.
//!
//! Before, one thread of its own wrote every batch, taking whatever logs had gathered
//! whenever it woke: batches of about two logs at 16 connections, each call waiting for the
//! thread to wake and for the acknowledgement to cross back. Here the first run of a burst
//! yields once to the tasks ready on its worker, whose logs join its batch (about five logs
//! a commit), and the commit, fewer of them, runs on the blocking pool: p99 at 16
//! connections 0.54x–1.00x of the writer thread's (BENCHMARKS.md).
//!
//! A round always commits on the blocking pool, never on the async thread of the run that
//! holds the turn, although an SQLite commit is only a tenth of a millisecond: committed
//! there, the quiet organization's p99 beside a neighbour's loops was about twice as long
//! (BENCHMARKS.md, the noisy neighbour): a write to the log file can wait for the checkpoint
//! thread's sync, or for the connection a read holds, and a stalled async thread stalls
//! every request it holds.
//!
//! The queue has no bound of its own: every queued log belongs to a run waiting for it, and
//! the runs in flight are bounded by the run limits.
//!
//! [`RunLogWriter::record`] is how a run is recorded: its log written, then its line logged
//! and its metrics counted, once, whoever ran it (a run, an attempt, a cancellation).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{oneshot, Notify};
use tracing::Instrument;

use crate::metrics::{metrics, organization, phase, Phase, RunKindLabels, RunLabels};
use crate::model::RunLog;
use crate::store::run_logs::RunLogRow;
use crate::store::Store;
use crate::trace_context::TRACE;

/// The most logs written in one transaction.
const MAX_BATCH: usize = 512;

/// Why a run log was not written.
#[derive(Debug, thiserror::Error)]
#[error("the run log could not be written: {0}")]
pub struct WriteError(String);

/// A handle to the writer; clones share it.
#[derive(Clone)]
pub struct RunLogWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RunLogWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunLogWriter")
            .finish_non_exhaustive()
    }
}

/// The queue and the database, shared by every handle and every turn.
struct Shared {
    store: Store,
    queue: Mutex<Queue>,
    /// Told whenever the turn is freed: what [`RunLogWriter::idle`] waits for.
    freed: Notify,
    /// Whether a round is under way: checked (in debug builds, the tests') to be never
    /// two at once.
    in_round: AtomicBool,
}

/// Logs waiting for the next turn, and whether a turn is under way.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<(RunLogRow, Ack)>,
    /// Someone holds the turn: a new log queues rather than commits.
    turn_taken: bool,
}

/// What a queued run is told: its log is written (or failed to be), or the turn is its.
enum Told {
    Written(Result<(), String>),
    YourTurn(Box<Turn>),
}

type Ack = oneshot::Sender<Told>;

/// The right to commit the queue, with the log of the run that holds it. One exists at a
/// time. Dropped unused (its run gave up waiting, or had already), it still takes its
/// round, on the blocking pool: otherwise nobody would hold the turn and every log queued
/// after it would wait forever.
struct Turn {
    shared: Arc<Shared>,
    /// Taken by [`Turn::take`]; still here when the turn is dropped unused.
    own: Option<RunLogRow>,
}

/// A turn's batch, from the queue's front. However it ends (committed on the blocking
/// pool, a panic, or its task dropped before it ran at shutdown) its runs are told and the
/// turn passes on, in [`Round`]'s drop: a round that kept the turn would leave every later
/// log waiting forever.
struct Round {
    shared: Arc<Shared>,
    rows: Vec<RunLogRow>,
    acks: Vec<Ack>,
    /// The commit's result, once committed.
    result: Option<Result<(), String>>,
}

impl RunLogWriter {
    /// A writer for `store`; it needs no thread or task of its own.
    pub fn new(store: Store) -> Self {
        RunLogWriter {
            shared: Arc::new(Shared {
                store,
                queue: Mutex::default(),
                freed: Notify::new(),
                in_round: AtomicBool::new(false),
            }),
        }
    }

    /// Writes one run log; returns once it is committed. The future must be polled to its
    /// end or dropped: one kept but never polled again may hold the turn, and every other
    /// run's log would wait for it.
    pub async fn write(&self, log: &RunLog) -> Result<(), WriteError> {
        let row = RunLogRow::new(log).map_err(|error| WriteError(error.to_string()))?;
        let result = match self.shared.queue_or_take_turn(row) {
            Ok(turn) => {
                // Once behind the other tasks ready on this worker: runs whose guests are
                // ending queue their logs meanwhile, and a burst commits in one transaction
                // rather than one each (about four logs a commit against two and a half
                // without, at 16 connections; fewer commits and a lower p99, BENCHMARKS.md).
                // Alone, the yield comes straight back.
                tokio::task::yield_now().await;
                turn.take().await
            }
            Err(told) => match told.await {
                Ok(Told::Written(result)) => result,
                Ok(Told::YourTurn(turn)) => (*turn).take().await,
                // The round that took this log panicked before telling its batch.
                Err(_) => Err("the round writing it failed".into()),
            },
        };
        result.map_err(WriteError)
    }

    /// Records a run: writes its log and returns once it is committed (in a `log write`
    /// span, timed as that phase), then logs its line and counts it.
    pub async fn record(&self, log: &RunLog) -> Result<(), WriteError> {
        let started = Instant::now();
        self.write(log)
            .instrument(tracing::info_span!(target: TRACE, "log write"))
            .await?;
        phase(Phase::log_write, started.elapsed());
        log_run(log);
        Ok(())
    }

    /// Returns once no log is waiting or being written: a stopping server waits for it, so
    /// that the log of a run whose caller left, which a round on the blocking pool may
    /// still be writing, is written before the process ends.
    pub async fn idle(&self) {
        loop {
            let freed = self.shared.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !self.shared.queue().turn_taken {
                return;
            }
            freed.await;
        }
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The lock is held only to move entries; a panic while holding it leaves the queue
        // whole.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives the caller the turn with `row` when no turn is under way; else queues `row`
    /// and gives back what the caller is to wait for.
    fn queue_or_take_turn(
        self: &Arc<Self>,
        row: RunLogRow,
    ) -> Result<Turn, oneshot::Receiver<Told>> {
        let mut queue = self.queue();
        if queue.turn_taken {
            let (ack, told) = oneshot::channel();
            queue.waiting.push_back((row, ack));
            return Err(told);
        }
        queue.turn_taken = true;
        Ok(Turn {
            shared: Arc::clone(self),
            own: Some(row),
        })
    }

    /// Gives the turn to the run that has waited longest, or frees it when none waits.
    fn pass_turn(self: &Arc<Self>) {
        let next = {
            let mut queue = self.queue();
            let next = queue.waiting.pop_front();
            if next.is_none() {
                queue.turn_taken = false;
            }
            next
        };
        match next {
            Some((row, ack)) => {
                let turn = Turn {
                    shared: Arc::clone(self),
                    own: Some(row),
                };
                // A run that stopped waiting sends the turn back, and dropping it takes it.
                let _ = ack.send(Told::YourTurn(Box::new(turn)));
            }
            None => self.freed.notify_waiters(),
        }
    }
}

impl Turn {
    /// Takes the round: commits its own log and the queue's front on the blocking pool.
    /// Returns its own log's result.
    async fn take(mut self) -> Result<(), String> {
        let round = Round::begin(&self.shared, self.own.take());
        tokio::task::spawn_blocking(move || round.commit())
            .await
            .unwrap_or_else(|error| Err(format!("the commit's task failed: {error}")))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(own) = self.own.take() else {
            return;
        };
        let round = Round::begin(&self.shared, Some(own));
        match tokio::runtime::Handle::try_current() {
            // Not run (the runtime shutting down), the round still commits, in its drop.
            Ok(runtime) => drop(runtime.spawn_blocking(move || round.commit())),
            Err(_) => drop(round.commit()),
        }
    }
}

impl Round {
    /// Takes `own` and up to a batch of the queue's front.
    fn begin(shared: &Arc<Shared>, own: Option<RunLogRow>) -> Self {
        let mut rows: Vec<RunLogRow> = own.into_iter().collect();
        let mut acks = Vec::new();
        {
            let mut queue = shared.queue();
            let taken = queue.waiting.len().min(MAX_BATCH - rows.len());
            for (row, ack) in queue.waiting.drain(..taken) {
                rows.push(row);
                acks.push(ack);
            }
        }
        let overlapping = shared.in_round.swap(true, Ordering::SeqCst);
        debug_assert!(!overlapping, "two rounds at once");
        Round {
            shared: Arc::clone(shared),
            rows,
            acks,
            result: None,
        }
    }

    /// Commits on this thread, waiting for the connection if it must.
    fn commit(mut self) -> Result<(), String> {
        self.write()
    }

    /// Writes the rows in one transaction, counts it, and keeps the result for the drop
    /// to tell the batch.
    fn write(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let result = self
            .shared
            .store
            .run_logs()
            .insert_batch_blocking(&self.rows)
            .map_err(|error| error.to_string());
        if let Some(metrics) = metrics() {
            metrics
                .run_log_batch_seconds
                .observe(started.elapsed().as_secs_f64());
            if result.is_ok() {
                metrics.run_logs_written.inc_by(self.rows.len() as u64);
            }
        }
        if let Err(error) = &result {
            tracing::error!("writing {} run logs failed: {error}", self.rows.len());
        }
        self.result = Some(result.clone());
        result
    }
}

impl Drop for Round {
    fn drop(&mut self) {
        // Made first, dropped last: the turn passes on after the runs are told, and also
        // when the commit below panics.
        let _passes = PassesTurn(Arc::clone(&self.shared));
        let result = match self.result.take() {
            Some(result) => result,
            // Dropped mid-commit by a panic: the runs are told it failed.
            None if std::thread::panicking() => Err("the commit panicked".into()),
            // Its task dropped before it ran (the runtime shutting down): commit now.
            None => self.write(),
        };
        for ack in self.acks.drain(..) {
            // A run that stopped waiting has nothing to be told.
            let _ = ack.send(Told::Written(result.clone()));
        }
    }
}

/// Ends a round: passes the turn on, however the round ended.
struct PassesTurn(Arc<Shared>);

impl Drop for PassesTurn {
    fn drop(&mut self) {
        self.0.in_round.store(false, Ordering::SeqCst);
        self.0.pass_turn();
    }
}

/// One line per run, once its run log is written: which hook, how it ended, how long it
/// took. Never its payload, response or output (they hold the tenant's data).
pub(super) fn log_run(log: &RunLog) {
    if let Some(metrics) = metrics() {
        let kind = match log.hook_type.as_str() {
            "webhook" => "webhook",
            _ => "function",
        };
        metrics
            .runs
            .get_or_create(&RunLabels {
                organization: organization(log.organization_id),
                kind,
                status: log.status.as_str(),
            })
            .inc();
        metrics
            .run_seconds
            .get_or_create(&RunKindLabels { kind })
            .observe(log.duration_ms / 1000.0);
    }
    tracing::info!(
        target: "wasmhook::run",
        hook = log.hook_id,
        organization = log.organization_id,
        kind = %log.hook_type,
        event = %format_args!("{}.{}", log.event, log.action),
        status = log.status.as_str(),
        duration_ms = log.duration_ms,
        run_request_id = %log.request_id,
        "hook {} {}",
        log.hook_id,
        log.status.as_str()
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::db::postgres::PostgresUrl;
    use wasmhook_tests::postgres::TestSchema;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The store tests' run log, with its own uuid and `request_id`, by which the tests
    /// count what was written.
    fn log(request_id: &str, index: usize) -> RunLog {
        let mut log = crate::store::tests::run_logs::log(index, "2030-01-01T00:00:00.000000Z");
        log.uuid = uuid::Uuid::new_v4().to_string();
        log.request_id = request_id.to_owned();
        log
    }

    fn row(request_id: &str, index: usize) -> RunLogRow {
        RunLogRow::new(&log(request_id, index)).expect("a row")
    }

    fn sqlite() -> Result<(tempfile::TempDir, Store), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("wasmhook.db"))?;
        Ok((dir, store))
    }

    /// Runs a test's body, failed if it takes over half a minute: a lost turn hangs every
    /// write, and should fail the test rather than hang it.
    async fn bounded(body: impl std::future::Future<Output = TestResult>) -> TestResult {
        tokio::time::timeout(Duration::from_secs(30), body).await?
    }

    /// Waits until `condition` holds, for at most ten seconds.
    async fn until(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Many runs at once, each waiting for its own log: every one is told its log is
    /// written, every log is there, and the turn is free at the end.
    async fn logs_written_at_once_are_each_committed_before_their_run_is_told(
        store: Store,
    ) -> TestResult {
        let writer = RunLogWriter::new(store.clone());
        let runs: Vec<_> = (0..200)
            .map(|index| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer.write(&log("at-once", index)).await?;
                    // Told: so it is in the database, whoever's turn wrote it.
                    let found = writer
                        .shared
                        .store
                        .run_logs()
                        .query(
                            crate::store::run_logs::RunLogFilter {
                                annotations: vec![index as u64],
                                request_id: Some("at-once".into()),
                                limit: 10,
                                ..Default::default()
                            },
                            Duration::from_secs(10),
                        )
                        .await
                        .map_err(|error| WriteError(error.to_string()))?;
                    Ok::<usize, WriteError>(found.len())
                })
            })
            .collect();
        for run in runs {
            assert_eq!(run.await??, 1);
        }
        // The last round tells its runs before it frees the turn.
        writer.idle().await;
        assert_eq!(store.run_logs().count_for_request("at-once").await?, 200);
        let queue = writer.shared.queue();
        assert!(queue.waiting.is_empty() && !queue.turn_taken);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_logs_written_at_once_are_each_committed_before_their_run_is_told() -> TestResult
    {
        let (_dir, store) = sqlite()?;
        bounded(logs_written_at_once_are_each_committed_before_their_run_is_told(store)).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_logs_written_at_once_are_each_committed_before_their_run_is_told(
    ) -> TestResult {
        bounded(async move {
            let schema = TestSchema::create("writer").map_err(|error| error.to_string())?;
            let url: PostgresUrl = schema.url().parse()?;
            let store = Store::open_postgres(&url, 4).await?;
            logs_written_at_once_are_each_committed_before_their_run_is_told(store).await
        })
        .await
    }

    /// Holds the turn as a run under way would, with its own log.
    fn hold_turn(writer: &RunLogWriter, own: &RunLog) -> Turn {
        match writer
            .shared
            .queue_or_take_turn(RunLogRow::new(own).expect("a row"))
        {
            Ok(turn) => turn,
            Err(_) => panic!("the turn is taken"),
        }
    }

    /// Holds the turn with no log of its own: a round under way elsewhere.
    fn hold_turn_empty(writer: &RunLogWriter) {
        let mut turn = hold_turn(writer, &log("none", 0));
        turn.own = None;
    }

    async fn queued_writes(
        writer: &RunLogWriter,
        request_id: &str,
        count: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<(), WriteError>>> {
        let before = writer.shared.queue().waiting.len();
        let writes = (1..=count)
            .map(|index| {
                let writer = writer.clone();
                let log = log(request_id, index);
                tokio::spawn(async move { writer.write(&log).await })
            })
            .collect();
        assert!(until(|| writer.shared.queue().waiting.len() == before + count).await);
        writes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logs_queued_during_a_turn_are_written_in_its_one_round() -> TestResult {
        bounded(async move {
            let (_dir, store) = sqlite()?;
            let writer = RunLogWriter::new(store.clone());
            let turn = hold_turn(&writer, &log("held", 0));
            let queued = queued_writes(&writer, "queued", 10).await;
            assert_eq!(store.run_logs().count_for_request("queued").await?, 0);

            turn.take().await?;
            // The held turn's round took the whole queue: every queued log is there before any
            // queued run has done anything with being told, and nobody holds the turn.
            assert_eq!(store.run_logs().count_for_request("held").await?, 1);
            assert_eq!(store.run_logs().count_for_request("queued").await?, 10);
            assert!(!writer.shared.queue().turn_taken);
            for write in queued {
                write.await??;
            }
            writer.idle().await;
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_fails_tells_every_run_in_it_and_writes_none() -> TestResult {
        bounded(async move {
            let (_dir, store) = sqlite()?;
            let writer = RunLogWriter::new(store.clone());
            let held = log("clash", 0);
            let turn = hold_turn(&writer, &held);
            // The same uuid as the held turn's log: the batch's transaction cannot commit.
            let mut clash = log("clash", 1);
            clash.uuid = held.uuid.clone();
            let queued = {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(&clash).await })
            };
            assert!(until(|| writer.shared.queue().waiting.len() == 1).await);
            let also = queued_writes(&writer, "clash", 1).await;

            assert!(turn.take().await.is_err());
            assert!(queued.await?.is_err(), "told written when it was not");
            for write in also {
                assert!(write.await?.is_err());
            }
            assert_eq!(store.run_logs().count_for_request("clash").await?, 0);
            // The turn went on: the next log is written.
            writer.write(&log("after", 3)).await?;
            assert_eq!(store.run_logs().count_for_request("after").await?, 1);
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_run_whose_task_is_aborted_still_has_its_log_written() -> TestResult {
        bounded(async move {
            let (_dir, store) = sqlite()?;
            let writer = RunLogWriter::new(store.clone());
            let turn = hold_turn(&writer, &log("held", 0));
            let queued = queued_writes(&writer, "aborted", 3).await;
            for write in &queued {
                write.abort();
            }
            for write in queued {
                assert!(write.await.is_err_and(|error| error.is_cancelled()));
            }
            turn.take().await?;
            assert_eq!(store.run_logs().count_for_request("aborted").await?, 3);
            writer.idle().await;
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_turn_passed_to_a_run_that_gave_up_waiting_is_still_taken() -> TestResult {
        bounded(async move {
            let (_dir, store) = sqlite()?;
            let writer = RunLogWriter::new(store.clone());
            let shared = &writer.shared;
            hold_turn_empty(&writer);
            let (ack, told) = oneshot::channel();
            shared.queue().waiting.push_back((row("gone", 1), ack));
            drop(told);
            shared.pass_turn();

            tokio::time::timeout(Duration::from_secs(10), writer.idle()).await?;
            assert_eq!(store.run_logs().count_for_request("gone").await?, 1);
            writer.write(&log("after", 2)).await?;
            assert_eq!(store.run_logs().count_for_request("after").await?, 1);
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_turn_told_to_a_run_that_then_gave_up_is_still_taken() -> TestResult {
        bounded(async move {
            let (_dir, store) = sqlite()?;
            let writer = RunLogWriter::new(store.clone());
            let shared = &writer.shared;
            hold_turn_empty(&writer);
            let (ack, told) = oneshot::channel();
            shared.queue().waiting.push_back((row("told", 1), ack));
            let (late_ack, late) = oneshot::channel();
            shared.queue().waiting.push_back((row("late", 2), late_ack));
            shared.pass_turn();
            // The turn reached the run, which is dropped (its caller gone) before reading it.
            drop(told);

            assert!(matches!(late.await, Ok(Told::Written(Ok(())))));
            tokio::time::timeout(Duration::from_secs(10), writer.idle()).await?;
            assert_eq!(store.run_logs().count_for_request("told").await?, 1);
            assert_eq!(store.run_logs().count_for_request("late").await?, 1);
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_turn_dropped_on_postgres_is_still_taken() -> TestResult {
        bounded(async move {
            let schema = TestSchema::create("writer").map_err(|error| error.to_string())?;
            let url: PostgresUrl = schema.url().parse()?;
            let store = Store::open_postgres(&url, 4).await?;
            let writer = RunLogWriter::new(store.clone());
            let turn = hold_turn(&writer, &log("dropped", 0));
            let queued = queued_writes(&writer, "queued", 2).await;
            drop(turn);
            for write in queued {
                write.await??;
            }
            tokio::time::timeout(Duration::from_secs(10), writer.idle()).await?;
            assert_eq!(store.run_logs().count_for_request("dropped").await?, 1);
            assert_eq!(store.run_logs().count_for_request("queued").await?, 2);
            Ok(())
        })
        .await
    }

    // The connection is held across awaits on purpose: it stands for the checkpoint
    // thread's restart (or an operation of another facade) holding it while the writer
    // must not wait on an async thread.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_commit_waits_for_a_busy_connection_off_the_async_thread() -> TestResult {
        let (_dir, store) = sqlite()?;
        let writer = RunLogWriter::new(store.clone());
        bounded(async move {
            let held = store.hold_connection().ok_or("SQLite has a connection")?;
            let write = {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(&log("busy", 1)).await })
            };
            // The runtime's one async thread is free while the write waits: had the round
            // waited for the connection there, this task could not run.
            tokio::spawn(async {}).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(
                !write.is_finished(),
                "written while the connection was held"
            );
            drop(held);
            write.await??;
            assert_eq!(store.run_logs().count_for_request("busy").await?, 1);
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_dropped_before_it_ran_still_commits_and_tells_its_runs() -> TestResult {
        let (_dir, store) = sqlite()?;
        let writer = RunLogWriter::new(store.clone());
        bounded(async move {
            let shared = &writer.shared;
            hold_turn_empty(&writer);
            let (ack, told) = oneshot::channel();
            shared.queue().waiting.push_back((row("queued", 1), ack));
            // As a round on the blocking pool whose task the stopping runtime never ran.
            drop(Round::begin(shared, Some(row("own", 0))));

            assert!(matches!(told.await, Ok(Told::Written(Ok(())))));
            assert_eq!(store.run_logs().count_for_request("own").await?, 1);
            assert_eq!(store.run_logs().count_for_request("queued").await?, 1);
            assert!(!shared.queue().turn_taken);
            Ok(())
        })
        .await
    }
}
