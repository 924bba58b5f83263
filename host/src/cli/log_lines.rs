//! Log lines gathered in memory and written to stderr in batches by a thread of their own.
//!
//! Why not `tracing_appender::non_blocking`: its queue is either lossy without a bound on
//! what a line may wait for, or (as it was used here) never lossy, so that a reader of
//! stderr that stops reading (a stalled log collector, a full pipe) makes every request's
//! thread wait once 128k lines are queued: one broken consumer stops the server. And it
//! wakes its thread for each line, two a call (the access line and the run's line), about
//! a fifth of the server's context switches on two cores (BENCHMARKS.md, issue 18).
//!
//! Here a line is appended to a buffer under a lock held for a copy, and the writer thread
//! is woken only when the buffer was empty and the thread asleep (a quiet server: a line
//! shows within [`Limits::interval`]) or when the buffer passes [`Limits::early`] (a busy
//! one). Otherwise the thread wakes on its own once an interval and writes what gathered,
//! so a busy server pays a few wake-ups a second in place of thousands. (Measured, that cut
//! the writes a call by a third but left the throughput as it was: BENCHMARKS.md, issue 18,
//! the second 12-05 session.)
//!
//! A request never waits for stderr: when whatever reads it falls behind and the buffer
//! reaches [`Limits::bound`], further lines are dropped, counted at once in
//! `wasmhook_log_lines_dropped_total`, and reported as a line of their own once stderr
//! takes lines again. Lines held when the process ends are written by [`Flushing`]'s drop.
//!
//! No crate found does this (timer-or-size batching behind a `MakeWriter`); it is a lock,
//! a condition variable and a loop.

use std::io::Write;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::writer::EitherWriter;
use tracing_subscriber::fmt::MakeWriter;

/// When gathered lines are written, and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest a line waits to be written while the thread is awake: how stale a
    /// `tail -f` may be, against how often a busy server wakes the thread.
    pub interval: Duration,
    /// Bytes gathered past which the thread is woken before its interval ends, so that a
    /// burst is written in pieces of about this size.
    pub early: usize,
    /// Bytes that may wait; lines past this are dropped. It bounds the memory a flood of
    /// lines can take when stderr is slow or blocked.
    pub bound: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            interval: Duration::from_millis(20),
            early: 256 * 1024,
            bound: 4 * 1024 * 1024,
        }
    }
}

/// The gathered lines and what the writer thread needs to know about them.
#[derive(Debug, Default)]
struct Gathered {
    lines: Vec<u8>,
    /// Lines dropped since the thread last looked.
    dropped: u64,
    /// The thread waits, untimed, for a first line.
    idle: bool,
    /// The process is ending: write what there is and stop.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    gathered: Mutex<Gathered>,
    wake: Condvar,
    limits: Limits,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Gathered> {
        // A panic while the lock was held cannot leave `Gathered` inconsistent (every change
        // to it is a single step), so a poisoned lock is used as it is.
        self.gathered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, line: &[u8]) {
        let wake = {
            let mut gathered = self.lock();
            let before = gathered.lines.len();
            if before + line.len() > self.limits.bound {
                gathered.dropped += 1;
                drop(gathered);
                // Counted now, while stderr may still be stalled: the warning line waits
                // for stderr to take lines again.
                if let Some(metrics) = crate::metrics::metrics() {
                    metrics.log_lines_dropped.inc();
                }
                return;
            }
            gathered.lines.extend_from_slice(line);
            let early = self.limits.early;
            (before == 0 && gathered.idle) || (before < early && gathered.lines.len() >= early)
        };
        if wake {
            self.wake.notify_one();
        }
    }

    /// Waits until there are lines to write and they have gathered for an interval (or
    /// past `early`, or the process is ending), then swaps them into `into`. Returns the
    /// lines dropped since the last call and whether the process is ending.
    fn take(&self, into: &mut Vec<u8>) -> (u64, bool) {
        let mut gathered = self.lock();
        while gathered.lines.is_empty() && gathered.dropped == 0 && !gathered.closed {
            gathered.idle = true;
            gathered = self
                .wake
                .wait(gathered)
                .unwrap_or_else(PoisonError::into_inner);
        }
        gathered.idle = false;
        let deadline = Instant::now() + self.limits.interval;
        while gathered.lines.len() < self.limits.early && !gathered.closed {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            gathered = self
                .wake
                .wait_timeout(gathered, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut gathered.lines, into);
        (std::mem::take(&mut gathered.dropped), gathered.closed)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }
}

/// Where `tracing_subscriber`'s format layer writes: each event is one `write` of one
/// whole line (the layer formats into a buffer of its own first), appended to the
/// gathered lines.
#[derive(Debug, Clone)]
pub struct Lines(Arc<Shared>);

/// One event's writer, borrowed from [`Lines`].
#[derive(Debug)]
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

/// Where the format layer writes: the batches, or stderr line by line when the writer
/// thread could not be started (the process is then short of threads, and its lines are
/// better slow than lost).
#[derive(Debug)]
pub enum LogWriter {
    /// Gathered and written by the thread.
    Batched(Lines),
    /// Written by the request's thread as it comes.
    Direct,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = EitherWriter<Line<'a>, std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        match self {
            LogWriter::Batched(lines) => EitherWriter::A(lines.make_writer()),
            LogWriter::Direct => EitherWriter::B(std::io::stderr()),
        }
    }
}

/// The longest the process waits at its end for the last lines to be written: a stderr
/// that nobody reads must not keep a stopping server from stopping.
const LAST_WRITE: Duration = Duration::from_secs(2);

/// The writer thread; dropping it writes the lines still gathered, waiting at most
/// [`LAST_WRITE`] for the thread to end.
#[derive(Debug)]
pub struct Flushing {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends.
    ended: mpsc::Receiver<()>,
}

impl Drop for Flushing {
    fn drop(&mut self) {
        self.shared.close();
        let ended = matches!(
            self.ended.recv_timeout(LAST_WRITE),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        if let Some(thread) = self.thread.take().filter(|_| ended) {
            // The thread only writes; a panic in it has nothing left for us to do.
            let _ = thread.join();
        }
    }
}

/// Starts the thread that writes gathered lines to `sink`; `dropped` is told how many
/// lines were dropped whenever some were, after the lines that were kept are written (the
/// server logs a warning; the metric counted each as it was dropped). Returns where to
/// write lines and the guard that flushes them at the end.
pub fn start<W, D>(mut sink: W, limits: Limits, dropped: D) -> std::io::Result<(Lines, Flushing)>
where
    W: Write + Send + 'static,
    D: Fn(u64) + Send + 'static,
{
    let shared = Arc::new(Shared {
        gathered: Mutex::new(Gathered::default()),
        wake: Condvar::new(),
        limits,
    });
    let theirs = Arc::clone(&shared);
    let (ending, ended) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("wasmhook-log".into())
        .spawn(move || {
            // Dropped when the thread returns, which is what `Flushing` waits for.
            let _ending = ending;
            // A failed write (stderr closed) has nowhere to be reported; the lines are let
            // go, as `tracing_appender` does.
            let mut write_out = |batch: &[u8]| {
                let _ = sink.write_all(batch).and_then(|()| sink.flush());
            };
            let mut batch = Vec::new();
            loop {
                let (lost, closed) = theirs.take(&mut batch);
                write_out(&batch);
                batch.clear();
                // A burst may have grown the buffer far past what a steady load needs.
                if batch.capacity() > 4 * limits.early {
                    batch.shrink_to(limits.early);
                }
                if lost > 0 {
                    dropped(lost);
                }
                if closed {
                    // What `dropped` wrote, and any line that came while this one was
                    // written.
                    theirs.take(&mut batch);
                    write_out(&batch);
                    return;
                }
            }
        })?;
    Ok((
        Lines(Arc::clone(&shared)),
        Flushing {
            shared,
            thread: Some(thread),
            ended,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that keeps what it is given, and can be held shut to play a stalled stderr.
    #[derive(Clone, Default)]
    struct Kept {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        gate: Option<Arc<Mutex<()>>>,
    }

    impl Write for Kept {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.as_ref().map(|gate| gate.lock());
            self.bytes.lock().expect("a lock").extend_from_slice(bytes);
            *self.writes.lock().expect("a lock") += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Kept {
        /// A sink held shut while the returned lock is locked.
        fn gated() -> (Kept, Arc<Mutex<()>>) {
            let gate = Arc::new(Mutex::new(()));
            let sink = Kept {
                gate: Some(Arc::clone(&gate)),
                ..Kept::default()
            };
            (sink, gate)
        }

        fn text(&self) -> String {
            String::from_utf8(self.bytes.lock().expect("a lock").clone()).expect("text")
        }
    }

    fn line(lines: &Lines, text: &str) {
        lines
            .make_writer()
            .write_all(text.as_bytes())
            .expect("a line");
    }

    fn wait_for(what: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn a_quiet_line_is_written_within_the_interval_without_a_flush() {
        let sink = Kept::default();
        let (lines, _flushing) = start(sink.clone(), Limits::default(), |_| {}).expect("started");
        line(&lines, "one\n");
        assert!(wait_for(|| sink.text() == "one\n"), "{:?}", sink.text());
        // The thread went back to sleep and wakes for the next line too.
        line(&lines, "two\n");
        assert!(
            wait_for(|| sink.text() == "one\ntwo\n"),
            "{:?}",
            sink.text()
        );
    }

    #[test]
    fn a_busy_stream_is_written_in_batches_in_order() {
        let sink = Kept::default();
        let limits = Limits {
            interval: Duration::from_millis(50),
            ..Limits::default()
        };
        let (lines, flushing) = start(sink.clone(), limits, |_| {}).expect("started");
        let started = Instant::now();
        for n in 0..1000 {
            line(&lines, &format!("line {n}\n"));
            std::thread::sleep(Duration::from_micros(100));
        }
        let took = started.elapsed();
        drop(flushing);
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(sink.text(), expected);
        // A write an interval (and the first line's, and the last ones' at the end), not
        // one a line.
        let writes = *sink.writes.lock().expect("a lock");
        let most = took.as_millis() / 50 + 3;
        assert!(
            writes as u128 <= most,
            "1000 lines in {took:?} took {writes} writes"
        );
    }

    #[test]
    fn lines_still_gathered_are_written_when_the_guard_drops() {
        let sink = Kept::default();
        let limits = Limits {
            interval: Duration::from_secs(3600),
            ..Limits::default()
        };
        let (lines, flushing) = start(sink.clone(), limits, |_| {}).expect("started");
        for n in 0..100 {
            line(&lines, &format!("line {n}\n"));
        }
        drop(flushing);
        assert_eq!(sink.text().lines().count(), 100);
    }

    #[test]
    fn a_sink_stalled_at_the_end_delays_the_end_by_at_most_the_last_write() {
        let (sink, gate) = Kept::gated();
        let (lines, flushing) = start(sink, Limits::default(), |_| {}).expect("started");
        let _shut = gate.lock().expect("a lock");
        line(&lines, "stuck\n");
        assert!(wait_for(|| lines.0.lock().lines.is_empty()));
        let started = Instant::now();
        drop(flushing);
        let took = started.elapsed();
        assert!(took >= LAST_WRITE && took < LAST_WRITE * 2, "{took:?}");
    }

    #[test]
    fn a_stalled_sink_bounds_the_lines_held_and_counts_those_dropped() {
        let (sink, gate) = Kept::gated();
        let limits = Limits {
            interval: Duration::from_millis(1),
            early: 64,
            bound: 1024,
        };
        let (told, reports) = mpsc::channel();
        let (lines, flushing) = start(sink.clone(), limits, move |lost| {
            told.send(lost).expect("heard");
        })
        .expect("started");
        let shut = gate.lock().expect("a lock");
        // The first batch goes to the sink and stalls there; then the buffer fills.
        line(&lines, "first\n");
        assert!(wait_for(|| lines.0.lock().lines.is_empty()));
        let sixteen = "0123456789abcde\n";
        let started = Instant::now();
        for _ in 0..10_000 {
            line(&lines, sixteen);
        }
        // Ten thousand lines past a stalled sink took no waiting.
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(lines.0.lock().lines.len() <= 1024);
        drop(shut);
        let lost = reports.recv_timeout(Duration::from_secs(5)).expect("told");
        drop(flushing);
        let kept = sink.text().lines().count() as u64;
        assert_eq!(kept, 1 + 1024 / 16);
        assert_eq!(lost, 10_000 - 1024 / 16);
    }
}
