//! The run log writer: runs hand their logs to one thread, which writes whatever has
//! gathered in one transaction and then tells each run its log is durable. A call's HTTP
//! answer waits for that, so an answered call always has its run log.
//!
//! The writer is a thread of its own rather than an async task: when guests keep every
//! async worker busy, a task would wait behind them in the run queue twice per batch (to
//! take the rows, and again when the blocking pool hands the commit back), and every
//! answered call waits for the writer.
//!
//! [`RunLogWriter::record`] is how a run is recorded: its log written, then its line logged
//! and its metrics counted, once, whoever ran it (a run, an attempt, a cancellation).

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::metrics::{metrics, organization, phase, Phase, RunKindLabels, RunLabels};
use crate::model::RunLog;
use crate::store::run_logs::RunLogRow;
use crate::store::Store;
use crate::trace_context::TRACE;

/// The most logs written in one transaction.
const MAX_BATCH: usize = 512;
/// Logs waiting for the writer before runs wait to hand theirs over.
const QUEUE: usize = 4096;

type Ack = oneshot::Sender<Result<(), String>>;

/// Why a run log was not written.
#[derive(Debug, thiserror::Error)]
#[error("the run log could not be written: {0}")]
pub struct WriteError(String);

/// A handle to the writer; clones share it.
#[derive(Debug, Clone)]
pub struct RunLogWriter {
    sender: mpsc::Sender<(RunLogRow, Ack)>,
}

impl RunLogWriter {
    /// Starts the writer on a thread of the blocking pool. It ends once every handle is
    /// dropped and the queue is written.
    pub fn spawn(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let task = tokio::task::spawn_blocking(move || write_batches(&store, receiver));
        (RunLogWriter { sender }, task)
    }

    /// Writes one run log; returns once it is committed.
    pub async fn write(&self, log: &RunLog) -> Result<(), WriteError> {
        let row = RunLogRow::new(log).map_err(|error| WriteError(error.to_string()))?;
        let (ack, done) = oneshot::channel();
        self.sender
            .send((row, ack))
            .await
            .map_err(|_| WriteError("the writer has stopped".into()))?;
        done.await
            .map_err(|_| WriteError("the writer has stopped".into()))?
            .map_err(WriteError)
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

fn write_batches(store: &Store, mut receiver: mpsc::Receiver<(RunLogRow, Ack)>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut rows = vec![first.0];
        let mut acks = vec![first.1];
        while rows.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok((row, ack)) => {
                    rows.push(row);
                    acks.push(ack);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = store
            .run_logs()
            .insert_batch_blocking(&rows)
            .map_err(|error| error.to_string());
        if let Some(metrics) = metrics() {
            metrics
                .run_log_batch_seconds
                .observe(started.elapsed().as_secs_f64());
            if result.is_ok() {
                metrics.run_logs_written.inc_by(rows.len() as u64);
            }
        }
        if let Err(error) = &result {
            tracing::error!("writing {} run logs failed: {error}", acks.len());
        }
        for ack in acks {
            // A run that stopped waiting has nothing to be told.
            let _ = ack.send(result.clone());
        }
    }
}
