//! Run logs in volume: a batch larger than one multi-row INSERT is written whole, read back
//! with the filters, and the retention deletes past a batch of its own.

use std::time::Duration;

use serde_json::json;

use super::TestResult;
use crate::model::run_log::{RunLog, RunStatus};
use crate::store::run_logs::{RunLogFilter, RunLogRow};
use crate::store::usage::Stored;
use crate::store::Store;

/// A completed run's log, its annotation `index`, one of three request ids: the rows these
/// tests write, and the run log writer's tests too.
pub(crate) fn log(index: usize, start: &str) -> RunLog {
    RunLog {
        uuid: format!("00000000-0000-4000-8000-{index:012}"),
        request_id: format!("request-{}", index % 3),
        timestamp: start.to_owned(),
        event: "invocation".into(),
        action: "manual".into(),
        organization_id: 1,
        hook_id: 1 + (index % 2) as u64,
        hook_type: "function".into(),
        queue_id: None,
        annotation_id: Some(index as u64),
        email_id: None,
        status: RunStatus::Completed,
        log_level: RunStatus::Completed.log_level(),
        status_code: None,
        message: format!("run {index}"),
        request: None,
        response: None,
        output: None,
        settings: json!({}),
        start: start.to_owned(),
        end: start.to_owned(),
        duration_ms: 1.0,
    }
}

async fn a_batch_larger_than_one_insert_is_written_whole_and_retention_deletes_in_batches(
    store: Store,
) -> TestResult {
    // 5,300 old and 700 recent: many INSERT statements' worth, and more old ones than one
    // retention batch; none of the recent ones is deleted.
    let old = "2020-01-01T00:00:00.000000Z";
    let recent = "2030-01-01T00:00:00.000000Z";
    let rows = (0..6_000)
        .map(|index| RunLogRow::new(&log(index, if index < 5_300 { old } else { recent })))
        .collect::<Result<Vec<_>, _>>()?;
    let writer = store.clone();
    tokio::task::spawn_blocking(move || writer.run_logs().insert_batch_blocking(&rows)).await??;
    assert_eq!(
        store.run_logs().count_for_request("request-0").await?,
        2_000
    );
    let filter = RunLogFilter {
        hooks: vec![2],
        annotations: vec![1, 2, 3, 5_999],
        limit: 100,
        ..RunLogFilter::default()
    };
    let found: Vec<u64> = store
        .run_logs()
        .query(filter, Duration::from_secs(10))
        .await?
        .iter()
        .filter_map(|log| log.annotation_id)
        .collect();
    assert_eq!(found, vec![5_999, 3, 1], "newest start first, then by id");
    let expired = store
        .delete_expired("2025-01-01T00:00:00.000000Z", 0)
        .await?;
    assert_eq!(expired.run_logs, 5_300, "more than one batch of 5,000");
    assert_eq!(store.run_logs().count_for_request("request-0").await?, 233);
    Ok(())
}

/// Writes `rows` in one batch, as the run log writer does.
async fn insert(store: &Store, rows: Vec<RunLogRow>) -> TestResult {
    let writer = store.clone();
    tokio::task::spawn_blocking(move || writer.run_logs().insert_batch_blocking(&rows)).await??;
    Ok(())
}

/// A log of organization `organization`, started at second `second` of 2030, with a message
/// of `message_bytes`.
fn sized(organization: u64, index: usize, second: u32, message_bytes: usize) -> RunLog {
    let mut entry = log(index, &format!("2030-01-01T00:00:{second:02}.000000Z"));
    entry.organization_id = organization;
    entry.message = "m".repeat(message_bytes);
    entry
}

async fn each_organization_s_run_log_bytes_are_kept_and_its_oldest_logs_trimmed_past_its_quota(
    store: Store,
) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let theirs = store.organizations().create("theirs", "now").await?.id;
    // Ours: 20 logs of about 10 KB, in two batches (the usage adds up across commits),
    // started in an order their ids do not follow; theirs: 5.
    let mut ours_rows = Vec::new();
    for index in 0..20 {
        let second = u32::try_from((index * 7) % 20)?;
        ours_rows.push(RunLogRow::new(&sized(ours, index, second, 10_000))?);
    }
    let theirs_rows = (100..105)
        .map(|index| RunLogRow::new(&sized(theirs, index, 0, 10_000)))
        .collect::<Result<Vec<_>, _>>()?;
    let ours_bytes: u64 = ours_rows.iter().map(RunLogRow::stored_bytes).sum();
    let theirs_bytes: u64 = theirs_rows.iter().map(RunLogRow::stored_bytes).sum();
    let (first, second) = ours_rows.split_at(12);
    let mut mixed = first.to_vec();
    mixed.extend(theirs_rows.iter().cloned());
    insert(&store, mixed).await?;
    insert(&store, second.to_vec()).await?;
    assert_eq!(store.usage().of(Stored::RunLogs, ours).await?, ours_bytes);
    assert_eq!(
        store.usage().of(Stored::RunLogs, theirs).await?,
        theirs_bytes
    );
    // The bytes of ours' newest twelve logs by start (their second is their place).
    let mut by_start: Vec<&RunLogRow> = ours_rows.iter().collect();
    by_start.sort_by_key(|row| row.start().to_owned());
    let target: u64 = by_start[8..].iter().map(|row| row.stored_bytes()).sum();

    // A quota ours is over and theirs is not: ours is trimmed to its newest twelve logs,
    // its oldest by start deleted first; theirs is untouched.
    let quota = target + 1;
    let trimmed = store
        .usage()
        .trim_over(Stored::RunLogs, quota, target)
        .await?;
    assert_eq!(trimmed.len(), 1, "{trimmed:?}");
    assert_eq!(trimmed[0].organization, ours);
    assert_eq!(trimmed[0].before, ours_bytes);
    assert_eq!(trimmed[0].rows, 8);
    assert_eq!(store.usage().of(Stored::RunLogs, ours).await?, target);
    assert_eq!(
        store.usage().of(Stored::RunLogs, theirs).await?,
        theirs_bytes
    );
    let kept = store
        .run_logs()
        .query(
            RunLogFilter {
                organization: Some(ours),
                limit: 100,
                ..RunLogFilter::default()
            },
            Duration::from_secs(10),
        )
        .await?;
    let mut starts: Vec<String> = kept.iter().map(|log| log.start.clone()).collect();
    starts.sort();
    let expected: Vec<String> = (8..20)
        .map(|second| format!("2030-01-01T00:00:{second:02}.000000Z"))
        .collect();
    assert_eq!(starts, expected, "the oldest eight by start were deleted");
    // Within its quota now: nothing more to trim.
    assert!(store
        .usage()
        .trim_over(Stored::RunLogs, quota, target)
        .await?
        .is_empty());

    // The retention takes what it deletes off each organization's usage.
    let old = RunLogRow::new(&{
        let mut entry = sized(theirs, 200, 0, 5_000);
        entry.start = "2020-01-01T00:00:00.000000Z".into();
        entry
    })?;
    let old_bytes = old.stored_bytes();
    insert(&store, vec![old]).await?;
    assert_eq!(
        store.usage().of(Stored::RunLogs, theirs).await?,
        theirs_bytes + old_bytes
    );
    let expired = store
        .delete_expired("2025-01-01T00:00:00.000000Z", 0)
        .await?;
    assert_eq!(expired.run_logs, 1);
    assert_eq!(
        store.usage().of(Stored::RunLogs, theirs).await?,
        theirs_bytes
    );

    // An organization's deletion takes its usage with its logs.
    store.organizations().delete(ours).await?;
    assert_eq!(store.usage().of(Stored::RunLogs, ours).await?, 0);
    assert_eq!(
        store.usage().of(Stored::RunLogs, theirs).await?,
        theirs_bytes
    );
    Ok(())
}

/// One log larger than the whole quota: trimming deletes it rather than stop short, and
/// every statement deletes at least one log.
async fn a_single_log_larger_than_the_quota_is_trimmed_too(store: Store) -> TestResult {
    let row = RunLogRow::new(&sized(7, 1, 0, 50_000))?;
    insert(&store, vec![row]).await?;
    let trimmed = store.usage().trim_over(Stored::RunLogs, 1_000, 900).await?;
    assert_eq!(trimmed.len(), 1);
    assert_eq!(trimmed[0].rows, 1);
    assert_eq!(store.usage().of(Stored::RunLogs, 7).await?, 0);
    Ok(())
}

on_both!(
    a_batch_larger_than_one_insert_is_written_whole_and_retention_deletes_in_batches,
    each_organization_s_run_log_bytes_are_kept_and_its_oldest_logs_trimmed_past_its_quota,
    a_single_log_larger_than_the_quota_is_trimmed_too,
);

/// SQLite only: a writer that keeps committing (as the run log writer does under load)
/// leaves a passive checkpoint always behind, and SQLite would never start the log over by
/// itself. The checkpoint thread's restart must, or the log grows as long as the load lasts.
#[tokio::test]
async fn the_write_ahead_log_is_started_over_under_a_writer_that_keeps_committing() -> TestResult {
    let (dir, store) = super::open()?;
    let log_file = dir.path().join("wasmhook.db-wal");
    // Logs of 64 KiB each: every commit adds 17 pages or more. 1,600 of them write over
    // 100 MiB to the log, six times the 16 MiB past which it is restarted.
    const LOGS: usize = 1_600;
    let message = "x".repeat(64 << 10);
    let started = std::time::Instant::now();
    let largest = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        let mut largest = 0;
        for index in 0..LOGS {
            let mut entry = log(index, "2030-01-01T00:00:00.000000Z");
            entry.message.clone_from(&message);
            let row = RunLogRow::new(&entry).map_err(|error| error.to_string())?;
            store
                .run_logs()
                .insert_batch_blocking(&[row])
                .map_err(|error| error.to_string())?;
            let size = std::fs::metadata(&log_file).map_err(|error| error.to_string())?;
            largest = largest.max(size.len());
            // At most 32 MiB a second: a checkpoint (every 250 ms) sees the log pass
            // 16 MiB long before it could hold half of what is written.
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(largest)
    })
    .await??;
    let written = (LOGS as u64) * (64 << 10);
    assert!(
        largest < written / 2,
        "the log reached {largest} bytes of the {written} written in {:?}: it was not \
         started over",
        started.elapsed()
    );
    Ok(())
}
