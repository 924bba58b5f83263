//! Reads that may scan (`readers.rs`), on both backends: stopped at their deadline, never
//! holding the connection writes take, and an organization's one at a time while another's
//! goes beside them; on SQLite, the checkpoint's gate interrupts a read under way and the
//! read runs again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::run_logs::log;
use super::TestResult;
use crate::store::db::{params, Dialect};
use crate::store::run_logs::RunLogRow;
use crate::store::{Store, StoreError};

/// A statement that runs for many seconds on SQLite: a read that scans (counting, in
/// SQLite's virtual machine), without needing rows for one.
const LONG_READ: &str = "WITH RECURSIVE counted(n) AS (
        SELECT 1 UNION ALL SELECT n + 1 FROM counted WHERE n < 1000000000)
    SELECT COUNT(*) FROM counted";

/// The same on PostgreSQL, which would store a counting query's rows: a wait, which
/// `statement_timeout` stops as it stops a scan.
const LONG_WAIT: &str = "SELECT COUNT(*) FROM (SELECT pg_sleep(60)) AS slept";

/// A long read for `store`'s database.
fn long(store: &Store) -> &'static str {
    match store.dialect() {
        Dialect::Sqlite => LONG_READ,
        Dialect::Postgres => LONG_WAIT,
    }
}

/// Runs [`long`] as `organization`'s read that may scan, stopped at `deadline`.
async fn long_read(
    store: &Store,
    organization: u64,
    deadline: Duration,
) -> Result<i64, StoreError> {
    let sql = long(store);
    store
        .read_within(Some(organization), deadline, move |db| {
            Ok(db.query_row(sql, params![], |row| row.get::<i64>(0))?)
        })
        .await
}

async fn a_long_read_is_stopped_at_its_deadline_and_writes_go_on_meanwhile(
    store: Store,
) -> TestResult {
    let started = Instant::now();
    let reading = {
        let store = store.clone();
        tokio::spawn(async move { long_read(&store, 1, Duration::from_millis(1500)).await })
    };
    // Let the read begin, then write while it scans.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let row = RunLogRow::new(&log(1, "2030-01-01T00:00:00.000000Z"))?;
    let writer = store.clone();
    tokio::task::spawn_blocking(move || writer.run_logs().insert_batch_blocking(&[row])).await??;
    let written = started.elapsed();
    let read = reading.await?;
    let stopped = started.elapsed();
    assert!(
        matches!(read, Err(StoreError::Deadline(limit)) if limit == Duration::from_millis(1500)),
        "the read was not stopped at its deadline: {read:?}"
    );
    assert!(
        written < Duration::from_millis(1000),
        "the write waited for the read: written after {written:?}"
    );
    assert!(
        stopped >= Duration::from_millis(1500) && stopped < Duration::from_secs(10),
        "stopped after {stopped:?}"
    );
    assert_eq!(
        store.run_logs().count_for_request("request-1").await?,
        1,
        "the write committed"
    );
    Ok(())
}

async fn an_organizations_reads_wait_for_each_other_and_not_another_organizations(
    store: Store,
) -> TestResult {
    let started = Instant::now();
    let seven = |db: &crate::store::db::Db<'_>| -> Result<i64, StoreError> {
        Ok(db.query_row("SELECT 7", params![], |row| row.get::<i64>(0))?)
    };
    // Organization 1 scans for a second.
    let scanning = {
        let store = store.clone();
        tokio::spawn(async move { long_read(&store, 1, Duration::from_millis(1000)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Its next read waits for it (for up to its own deadline), and one whose deadline
    // passes while it waits is not begun.
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            let read = store
                .read_within(Some(1), Duration::from_secs(20), seven)
                .await;
            (read, started.elapsed())
        })
    };
    let queued = store
        .read_within(Some(1), Duration::from_millis(200), seven)
        .await;
    assert!(matches!(queued, Err(StoreError::Queued)), "{queued:?}");
    // Another organization's read goes beside it.
    let other = store
        .read_within(Some(2), Duration::from_secs(20), seven)
        .await?;
    let other_at = started.elapsed();
    assert_eq!(other, 7);
    assert!(
        other_at < Duration::from_millis(900),
        "organization 2's read waited for organization 1's: answered after {other_at:?}"
    );
    let scanned = scanning.await?;
    assert!(
        matches!(scanned, Err(StoreError::Deadline(_))),
        "{scanned:?}"
    );
    let (read, at) = waiting.await?;
    assert_eq!(read?, 7);
    assert!(
        at >= Duration::from_millis(1000),
        "organization 1's second read ran beside its first: answered after {at:?}"
    );
    Ok(())
}

on_both!(
    a_long_read_is_stopped_at_its_deadline_and_writes_go_on_meanwhile,
    an_organizations_reads_wait_for_each_other_and_not_another_organizations,
);

/// SQLite only: the checkpoint thread's restart closes the readers' gate and interrupts a
/// read under way, which then runs again, once the gate opens, within its deadline.
#[tokio::test]
async fn a_read_the_restart_interrupts_runs_again() -> TestResult {
    let (_dir, store) = super::open()?;
    let gate = store.readers.as_ref().ok_or("SQLite has readers")?.gate();
    let attempts = Arc::new(AtomicUsize::new(0));
    let reading = {
        let store = store.clone();
        let attempts = Arc::clone(&attempts);
        tokio::spawn(async move {
            store
                .read_within(Some(1), Duration::from_secs(30), move |db| {
                    // The first attempt scans for seconds; the one after the restart not.
                    let sql = if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                        LONG_READ
                    } else {
                        "SELECT 5"
                    };
                    Ok(db.query_row(sql, params![], |row| row.get::<i64>(0))?)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "the read began");
    let restarted = tokio::task::spawn_blocking(move || {
        gate.closed_for(Duration::from_millis(500), || "restarted")
    })
    .await?;
    assert_eq!(
        restarted,
        Some("restarted"),
        "the read did not leave the gate"
    );
    let answer = tokio::time::timeout(Duration::from_secs(5), reading).await???;
    assert_eq!(answer, 5);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    Ok(())
}
