//! Run logs: one row per run, the searchable fields as columns and the whole record as
//! JSON. Written in batches by the dispatcher's writer; read newest first with Rossum's
//! filters; deleted after the retention.

use super::db::{params, Db, ToValue, Value};
use super::usage::{self, Stored};
use super::{Store, StoreError};
use crate::model::{id_in_range, RunLog};

impl Store {
    /// The run logs, reached by name: what the dispatcher's writer inserts and
    /// `GET /hooks/logs` reads.
    pub fn run_logs(&self) -> RunLogs<'_> {
        RunLogs { store: self }
    }
}

/// The run log operations callers may ask for. Their deletion after the retention is part
/// of [`Store::delete_expired`].
#[derive(Debug, Clone, Copy)]
pub struct RunLogs<'a> {
    store: &'a Store,
}

impl RunLogs<'_> {
    /// Writes a batch of run logs in one transaction, on the calling thread, waiting for the
    /// connection: for the writer's rounds, which run on the blocking pool.
    pub fn insert_batch_blocking(&self, rows: &[RunLogRow]) -> Result<(), StoreError> {
        self.store.run_here(|db| insert_batch(db, rows))
    }

    /// Run logs matching a filter, newest start first, at most `filter.limit`. A search,
    /// or a filter no index serves, scans the organization's logs: it runs as a read that
    /// may scan (`readers.rs`), never holding the connection the run logs are written on,
    /// after the organization's reads before it, and stopped past `deadline`
    /// ([`StoreError::Deadline`]).
    pub async fn query(
        &self,
        filter: RunLogFilter,
        deadline: std::time::Duration,
    ) -> Result<Vec<RunLog>, StoreError> {
        self.store
            .read_within(filter.organization, deadline, move |db| query(db, &filter))
            .await
    }

    /// How many run logs a request id has (tests and the load suite count them).
    pub async fn count_for_request(&self, request_id: &str) -> Result<u64, StoreError> {
        let request_id = request_id.to_owned();
        self.store
            .run(move |db| count_for_request(db, &request_id))
            .await
    }
}

/// Rossum's filters of `GET /hooks/logs`; every list is "any of".
#[derive(Debug, Clone, Default)]
pub struct RunLogFilter {
    /// Only this organization's logs (none: the operator sees all).
    pub organization: Option<u64>,
    /// Hook ids.
    pub hooks: Vec<u64>,
    /// Queue ids.
    pub queues: Vec<u64>,
    /// Annotation ids.
    pub annotations: Vec<u64>,
    /// Email ids.
    pub emails: Vec<u64>,
    /// INFO, WARNING, ERROR.
    pub log_levels: Vec<String>,
    /// completed, failed, timeout, cancelled.
    pub statuses: Vec<String>,
    /// HTTP status codes.
    pub status_codes: Vec<u16>,
    /// The runs one request started (its `X-Request-Id`): an invocation's run, or an
    /// event's several.
    pub request_id: Option<String>,
    /// Bounds on `timestamp`, `start` and `end` (RFC 3339, as stored).
    pub timestamp_before: Option<String>,
    /// See `timestamp_before`.
    pub timestamp_after: Option<String>,
    /// See `timestamp_before`.
    pub start_before: Option<String>,
    /// See `timestamp_before`.
    pub start_after: Option<String>,
    /// See `timestamp_before`.
    pub end_before: Option<String>,
    /// See `timestamp_before`.
    pub end_after: Option<String>,
    /// Text anywhere in the record.
    pub search: Option<String>,
    /// The most rows to return.
    pub limit: u64,
}

/// A run log ready to insert: its indexed columns and its whole record as JSON text.
/// Made on the run's own task, so that the writer, which holds the connection, only
/// inserts.
#[derive(Debug, Clone)]
pub struct RunLogRow {
    uuid: String,
    organization_id: u64,
    hook_id: u64,
    request_id: String,
    queue_id: Option<u64>,
    annotation_id: Option<u64>,
    email_id: Option<u64>,
    log_level: &'static str,
    status: &'static str,
    status_code: Option<u16>,
    timestamp: String,
    start: String,
    end: String,
    body: String,
}

impl RunLogRow {
    /// The row of a run log.
    pub fn new(log: &RunLog) -> Result<Self, StoreError> {
        let body = serde_json::to_string(log)
            .map_err(|error| StoreError::Task(format!("cannot serialize a run log: {error}")))?;
        Ok(RunLogRow {
            uuid: log.uuid.clone(),
            organization_id: log.organization_id,
            hook_id: log.hook_id,
            request_id: log.request_id.clone(),
            // Annotation and email ids come from the caller's payload: one beyond the
            // database's integers would fail the insert, and with it the whole batch (other runs' logs
            // too). Such an id names no object; its column stays empty and the record keeps it.
            queue_id: log.queue_id.and_then(id_in_range),
            annotation_id: log.annotation_id.and_then(id_in_range),
            email_id: log.email_id.and_then(id_in_range),
            log_level: log.log_level.as_str(),
            status: log.status.as_str(),
            status_code: log.status_code,
            timestamp: log.timestamp.clone(),
            start: log.start.clone(),
            end: log.end.clone(),
            body,
        })
    }

    /// The bytes this log counts against its organization's quota once stored: its
    /// record's and `usage::ROW_BYTES`.
    pub fn stored_bytes(&self) -> u64 {
        u64::try_from(self.body.len())
            .unwrap_or(u64::MAX)
            .saturating_add(usage::ROW_BYTES)
    }

    /// When its run started (RFC 3339): the order trimming and retention delete in.
    pub fn start(&self) -> &str {
        &self.start
    }
}

/// Run logs per INSERT statement: 14 parameters each, well under both databases' limits on
/// a statement's parameters (SQLite 32,766, PostgreSQL 65,535).
const ROWS_PER_INSERT: usize = 256;

/// Writes a batch of run logs in one transaction, as multi-row INSERTs: one statement (and
/// on PostgreSQL one round trip) per up to [`ROWS_PER_INSERT`] logs rather than per log.
fn insert_batch(db: &Db<'_>, rows: &[RunLogRow]) -> Result<(), StoreError> {
    let transaction = db.transaction()?;
    insert_rows(&transaction, rows)?;
    transaction.commit()?;
    Ok(())
}

/// The INSERT of `rows` run logs (a power of two up to [`ROWS_PER_INSERT`]), written once
/// per process: every round of the writer inserts its batch with them.
fn insert_sql(rows: usize) -> Option<&'static str> {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (0..=ROWS_PER_INSERT.ilog2())
            .map(|power| {
                let rows = 1usize << power;
                let values: Vec<String> = (0..rows)
                    .map(|index| {
                        let marks: Vec<String> = (index * 14 + 1..=index * 14 + 14)
                            .map(|n| format!("?{n}"))
                            .collect();
                        format!("({})", marks.join(", "))
                    })
                    .collect();
                format!(
                    "INSERT INTO run_logs (uuid, organization_id, hook_id, request_id, queue_id,
                                   annotation_id, email_id, log_level, status, status_code,
                                   timestamp, start, \"end\", body) VALUES {}",
                    values.join(", ")
                )
            })
            .collect()
    });
    // `rows` is a power of two within the bound (`insert_rows` cuts the batch so).
    texts.get(rows.ilog2() as usize).map(String::as_str)
}

// `insert_rows` cuts a batch into powers of two up to it, one text each.
const _: () = assert!(ROWS_PER_INSERT.is_power_of_two());

/// Inserts run logs within the caller's transaction (the writer's batch, or a delivery's
/// attempt, whose log is committed with the delivery's new state).
pub(super) fn insert_rows(transaction: &Db<'_>, rows: &[RunLogRow]) -> Result<(), StoreError> {
    let mut rest = rows;
    while !rest.is_empty() {
        // Chunks of a power of two rows: at most nine statement texts, each prepared once
        // per connection, whatever sizes the batches come in.
        let size = ROWS_PER_INSERT.min(1 << rest.len().ilog2());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 14);
        for row in chunk {
            values.extend([
                Value::Text(row.uuid.clone()),
                row.organization_id.to_value()?,
                row.hook_id.to_value()?,
                Value::Text(row.request_id.clone()),
                row.queue_id.to_value()?,
                row.annotation_id.to_value()?,
                row.email_id.to_value()?,
                Value::Text(row.log_level.to_owned()),
                Value::Text(row.status.to_owned()),
                row.status_code.to_value()?,
                Value::Text(row.timestamp.clone()),
                Value::Text(row.start.clone()),
                Value::Text(row.end.clone()),
                Value::Text(row.body.clone()),
            ]);
        }
        let parameters: Vec<&dyn ToValue> =
            values.iter().map(|value| value as &dyn ToValue).collect();
        let sql = insert_sql(size)
            .ok_or_else(|| StoreError::Task(format!("no INSERT text for {size} rows")))?;
        transaction.execute(sql, &parameters)?;
    }
    usage::add(
        transaction,
        Stored::RunLogs,
        rows.iter()
            .map(|row| (row.organization_id, row.stored_bytes())),
    )
}

/// Run logs matching a filter, newest start first.
fn query(db: &Db<'_>, filter: &RunLogFilter) -> Result<Vec<RunLog>, StoreError> {
    let mut sql = String::from("SELECT body FROM run_logs WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    if let Some(organization) = filter.organization {
        sql.push_str(" AND organization_id = ?");
        values.push(organization.to_value()?);
    }
    any_of(&mut sql, &mut values, "hook_id", &filter.hooks)?;
    any_of(&mut sql, &mut values, "queue_id", &filter.queues)?;
    any_of(&mut sql, &mut values, "annotation_id", &filter.annotations)?;
    any_of(&mut sql, &mut values, "email_id", &filter.emails)?;
    any_of(&mut sql, &mut values, "log_level", &filter.log_levels)?;
    any_of(&mut sql, &mut values, "status", &filter.statuses)?;
    any_of(&mut sql, &mut values, "status_code", &filter.status_codes)?;
    let mut compare = |column: &str, operator: &str, bound: &Option<String>| {
        if let Some(bound) = bound {
            sql.push_str(&format!(" AND {column} {operator} ?"));
            values.push(Value::Text(bound.clone()));
        }
    };
    compare("request_id", "=", &filter.request_id);
    compare("timestamp", "<", &filter.timestamp_before);
    compare("timestamp", ">", &filter.timestamp_after);
    compare("start", "<", &filter.start_before);
    compare("start", ">", &filter.start_after);
    compare("\"end\"", "<", &filter.end_before);
    compare("\"end\"", ">", &filter.end_after);
    if let Some(text) = &filter.search {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sql.push_str(&format!(" AND body {} ? ESCAPE '\\'", db.dialect().like()));
        values.push(Value::Text(format!("%{escaped}%")));
    }
    sql.push_str(" ORDER BY start DESC, id DESC LIMIT ?");
    values.push(filter.limit.to_value()?);
    let parameters: Vec<&dyn ToValue> = values.iter().map(|value| value as &dyn ToValue).collect();
    let bodies = db.query_map(&sql, &parameters, |row| row.get::<String>(0))?;
    bodies
        .iter()
        .map(|body| {
            serde_json::from_str(body)
                .map_err(|error| StoreError::Task(format!("unreadable run log: {error}")))
        })
        .collect()
}

/// Adds `column IN (...)` for the values wanted, when there are any.
fn any_of<T: ToValue>(
    sql: &mut String,
    values: &mut Vec<Value>,
    column: &str,
    wanted: &[T],
) -> Result<(), StoreError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; wanted.len()].join(", ");
    sql.push_str(&format!(" AND {column} IN ({marks})"));
    for value in wanted {
        values.push(value.to_value()?);
    }
    Ok(())
}

/// How many run logs a request id has.
fn count_for_request(db: &Db<'_>, request_id: &str) -> Result<u64, StoreError> {
    Ok(db.query_row(
        "SELECT COUNT(*) FROM run_logs WHERE request_id = ?1",
        params![request_id],
        |row| row.get(0),
    )?)
}

/// Run logs deleted per statement by the retention: each statement is its own short
/// operation (its own transaction, and on SQLite its own hold of the one connection), so
/// that deleting a day of a busy installation's logs never holds the table for long and
/// the run log writer's commits go between.
pub(super) const DELETED_PER_STATEMENT: usize = 5_000;

/// Deletes at most [`DELETED_PER_STATEMENT`] run logs that started before `cutoff`, oldest
/// first; how many.
pub(super) fn delete_batch_before(db: &Db<'_>, cutoff: &str) -> Result<usize, StoreError> {
    let transaction = db.transaction()?;
    transaction.serialize(usage::DELETES)?;
    let deleted = usage::delete_counted(
        &transaction,
        Stored::RunLogs,
        "DELETE FROM run_logs WHERE id IN (
             SELECT id FROM run_logs WHERE start < ?1 ORDER BY start LIMIT ?2)
         RETURNING organization_id, octet_length(body) + 256",
        params![cutoff, DELETED_PER_STATEMENT],
    )?;
    transaction.commit()?;
    Ok(deleted)
}
