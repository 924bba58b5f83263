//! Run logs in volume: a batch larger than one multi-row INSERT is written whole, read back
//! with the filters, and the retention deletes past a batch of its own.

use serde_json::json;

use super::TestResult;
use crate::model::run_log::{RunLog, RunStatus};
use crate::store::run_logs::{RunLogFilter, RunLogRow};
use crate::store::Store;

fn log(index: usize, start: &str) -> RunLog {
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
        .query(filter)
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

on_both!(a_batch_larger_than_one_insert_is_written_whole_and_retention_deletes_in_batches);
