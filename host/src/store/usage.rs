//! What each organization keeps in the database that grows with its calls, in bytes: its
//! run logs, and its finished events (each with its deliveries' responses), so that an
//! organization past its quota of either has its oldest deleted before the retention would,
//! and one organization cannot fill the disk every organization's rows share.
//!
//! Every statement that adds or deletes such rows changes its organization's usage in the
//! same transaction (`run_logs.rs`, `deliveries.rs`, `organizations.rs`); nothing here reads
//! the rows themselves but to trim them. Migrations 13 (run logs) and 14 (events) made the
//! tables and seeded them.

use std::collections::BTreeMap;

use super::db::{params, Db, ToValue};
use super::{Store, StoreError};

/// What a stored row counts besides its texts: its other columns and its index entries,
/// about this much. Migrations 13 and 14 seed the usage with the same number, as the
/// statements below count it; all must stay alike.
pub(super) const ROW_BYTES: u64 = 256;

/// The kinds of rows an organization's usage is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Run logs: a log counts its record's bytes and [`ROW_BYTES`].
    RunLogs,
    /// Finished events: an event counts its body, each of its deliveries' response and
    /// message, and [`ROW_BYTES`] for itself and for each delivery, from the moment it
    /// finishes (`events.stored_bytes`). An unfinished event is bounded by the
    /// organization's unfinished deliveries instead.
    Events,
}

impl Stored {
    /// The table of each organization's usage.
    fn usage_table(self) -> &'static str {
        match self {
            Stored::RunLogs => "run_log_usage",
            Stored::Events => "event_usage",
        }
    }

    /// The sizes of the organization `?1`'s oldest rows that may be trimmed, oldest first,
    /// at most `?2`; events only those finished before `?3` ([`EVENT_TRIM_GRACE`]).
    fn oldest_sizes(self) -> &'static str {
        match self {
            Stored::RunLogs => {
                "SELECT octet_length(body) + 256 FROM run_logs WHERE organization_id = ?1
                 ORDER BY start LIMIT ?2"
            }
            Stored::Events => {
                "SELECT stored_bytes FROM events
                 WHERE organization_id = ?1 AND stored_bytes IS NOT NULL AND finished_at < ?3
                 ORDER BY id LIMIT ?2"
            }
        }
    }

    /// Deletes the same oldest `?2` rows of organization `?1`, answering each one's
    /// organization and size.
    fn delete_oldest(self) -> &'static str {
        match self {
            Stored::RunLogs => {
                "DELETE FROM run_logs WHERE id IN (
                     SELECT id FROM run_logs WHERE organization_id = ?1 ORDER BY start LIMIT ?2)
                 RETURNING organization_id, octet_length(body) + 256"
            }
            // Their deliveries go with them (ON DELETE CASCADE).
            Stored::Events => {
                "DELETE FROM events WHERE id IN (
                     SELECT id FROM events
                     WHERE organization_id = ?1 AND stored_bytes IS NOT NULL AND finished_at < ?3
                     ORDER BY id LIMIT ?2)
                 RETURNING organization_id, stored_bytes"
            }
        }
    }

    fn add_sql(self) -> &'static str {
        match self {
            Stored::RunLogs => {
                "INSERT INTO run_log_usage (organization_id, bytes) VALUES (?1, ?2)
                 ON CONFLICT (organization_id)
                 DO UPDATE SET bytes = run_log_usage.bytes + excluded.bytes"
            }
            Stored::Events => {
                "INSERT INTO event_usage (organization_id, bytes) VALUES (?1, ?2)
                 ON CONFLICT (organization_id)
                 DO UPDATE SET bytes = event_usage.bytes + excluded.bytes"
            }
        }
    }
}

/// How long a finished event is kept whatever its organization's usage: its `POST /events`
/// reads it back to answer, and its client may poll `GET /events/{id}` for it once more.
const EVENT_TRIM_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// What every transaction deleting rows an organization's usage counts (retention, trims)
/// holds on PostgreSQL ([`Db::serialize`]): one at a time across replicas, so that a trim's
/// usage read still holds when it deletes, and no two deletes lock the same rows in
/// different orders (organization deletion holds it too).
pub(super) const DELETES: &str = "stored_deletes";

/// The most rows one trimming statement deletes, and about the most bytes: each statement
/// is its own transaction (on SQLite its own hold of the connection every run log's commit
/// waits for), so that trimming a large organization never holds the writer for long.
const TRIMMED_PER_STATEMENT: usize = 1_000;
/// See [`TRIMMED_PER_STATEMENT`].
const TRIMMED_BYTES_PER_STATEMENT: u64 = 16 << 20;

/// Adds `sizes` (each an organization and a row's bytes) to their organizations' usage of
/// `kind`, within the caller's transaction, in the order of the organizations' ids: every
/// statement that changes usage takes them so, and two replicas' transactions then never
/// wait for each other's usage rows in a cycle (PostgreSQL locks each until the commit).
pub(super) fn add(
    transaction: &Db<'_>,
    kind: Stored,
    sizes: impl IntoIterator<Item = (u64, u64)>,
) -> Result<(), StoreError> {
    for (organization, bytes) in summed(sizes) {
        transaction.execute(kind.add_sql(), params![organization, bytes])?;
    }
    Ok(())
}

/// Runs `sql`, a DELETE of rows of `kind` that answers each deleted row's organization and
/// size (`RETURNING organization_id, <size>`), and takes them off their organizations'
/// usage, within the caller's transaction (which should hold [`DELETES`]); how many rows
/// it deleted. The one way the retention and the trims delete what a usage counts.
pub(super) fn delete_counted(
    transaction: &Db<'_>,
    kind: Stored,
    sql: &str,
    parameters: &[&dyn ToValue],
) -> Result<usize, StoreError> {
    // A size is NULL only for an unfinished event, which no such DELETE selects.
    let deleted = transaction.query_map(sql, parameters, |row| {
        Ok((row.get::<u64>(0)?, row.get::<Option<u64>>(1)?.unwrap_or(0)))
    })?;
    release(transaction, kind, &deleted)?;
    Ok(deleted.len())
}

/// Takes the rows a statement deleted (each its organization and its size, as the
/// statement's `RETURNING` answers them) off their organizations' usage of `kind`, within
/// the deleting transaction. Never below zero: rows written by a build from before the
/// usage was kept (a replica of the older version during an upgrade) were never counted.
fn release(transaction: &Db<'_>, kind: Stored, deleted: &[(u64, u64)]) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE {} SET bytes = CASE WHEN bytes > ?2 THEN bytes - ?2 ELSE 0 END
         WHERE organization_id = ?1",
        kind.usage_table()
    );
    for (organization, bytes) in summed(deleted.iter().copied()) {
        transaction.execute(&sql, params![organization, bytes])?;
    }
    Ok(())
}

/// Sizes summed per organization, in the order of their ids.
fn summed(sizes: impl IntoIterator<Item = (u64, u64)>) -> BTreeMap<u64, u64> {
    let mut total: BTreeMap<u64, u64> = BTreeMap::new();
    for (organization, bytes) in sizes {
        let sum = total.entry(organization).or_default();
        *sum = sum.saturating_add(bytes);
    }
    total
}

/// An organization whose rows of a kind were over their quota, and what trimming them
/// deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    /// Whose rows.
    pub organization: u64,
    /// The bytes they held before.
    pub before: u64,
    /// How many of its oldest rows were deleted.
    pub rows: usize,
}

impl Store {
    /// What organizations keep of each kind of row that grows with their calls, reached
    /// by name: their usage, and the trims of those past their quota.
    pub fn usage(&self) -> Usage<'_> {
        Usage { store: self }
    }
}

/// The usage operations callers may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    store: &'a Store,
}

impl Usage<'_> {
    /// Deletes the oldest rows of `kind` of every organization whose rows of it hold more
    /// than `quota` bytes, until each holds at most `target`: a statement per batch, so
    /// that the run log writer's commits go between. What was deleted, per organization.
    pub async fn trim_over(
        &self,
        kind: Stored,
        quota: u64,
        target: u64,
    ) -> Result<Vec<Trimmed>, StoreError> {
        let over = self
            .store
            .run(move |db| over_quota(db, kind, quota))
            .await?;
        let finished_before = crate::model::format_rfc3339(
            std::time::SystemTime::now()
                .checked_sub(EVENT_TRIM_GRACE)
                .unwrap_or(std::time::UNIX_EPOCH),
        );
        let mut trimmed = Vec::with_capacity(over.len());
        for (organization, before) in over {
            let mut rows = 0;
            while let Some(batch) = {
                let finished_before = finished_before.clone();
                self.store
                    .run(move |db| trim_batch(db, kind, organization, target, &finished_before))
                    .await?
            } {
                rows += batch;
            }
            trimmed.push(Trimmed {
                organization,
                before,
                rows,
            });
        }
        Ok(trimmed)
    }

    /// The bytes `organization`'s rows of `kind` hold, as its quota counts them.
    pub async fn of(&self, kind: Stored, organization: u64) -> Result<u64, StoreError> {
        self.store
            .run(move |db| Ok(usage_of(db, kind, organization)?.unwrap_or(0)))
            .await
    }
}

fn usage_of(db: &Db<'_>, kind: Stored, organization: u64) -> Result<Option<u64>, StoreError> {
    Ok(db.query_opt(
        &format!(
            "SELECT bytes FROM {} WHERE organization_id = ?1",
            kind.usage_table()
        ),
        params![organization],
        |row| row.get(0),
    )?)
}

/// The organizations whose rows of `kind` hold more than `quota` bytes, and how many each
/// holds.
fn over_quota(db: &Db<'_>, kind: Stored, quota: u64) -> Result<Vec<(u64, u64)>, StoreError> {
    Ok(db.query_map(
        &format!(
            "SELECT organization_id, bytes FROM {} WHERE bytes > ?1 ORDER BY organization_id",
            kind.usage_table()
        ),
        params![quota],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// Deletes the oldest rows of `kind` of `organization` (events only those finished before
/// `finished_before`), up to [`TRIMMED_PER_STATEMENT`] of them and about
/// [`TRIMMED_BYTES_PER_STATEMENT`], until its usage is at most `target`: one transaction.
/// How many it deleted; none once the organization is within `target` (or has no such
/// rows it may delete).
fn trim_batch(
    db: &Db<'_>,
    kind: Stored,
    organization: u64,
    target: u64,
    finished_before: &str,
) -> Result<Option<usize>, StoreError> {
    let transaction = db.transaction()?;
    transaction.serialize(DELETES)?;
    let excess = match usage_of(&transaction, kind, organization)? {
        Some(usage) if usage > target => usage - target,
        _ => return Ok(None),
    };
    let which = match kind {
        Stored::RunLogs => params![organization, TRIMMED_PER_STATEMENT],
        Stored::Events => params![organization, TRIMMED_PER_STATEMENT, finished_before],
    };
    let oldest = transaction.query_map(kind.oldest_sizes(), which, |row| row.get::<u64>(0))?;
    // The oldest rows until they free the excess (or this statement's share of it); at
    // least one, so that every statement makes progress.
    let bound = excess.min(TRIMMED_BYTES_PER_STATEMENT);
    let mut count = 0usize;
    let mut freed = 0u64;
    for size in oldest {
        if freed >= bound {
            break;
        }
        freed = freed.saturating_add(size);
        count += 1;
    }
    if count == 0 {
        // None it may delete: events all finished within the grace, or usage counted
        // twice (by a replica of an older build during an upgrade), which the next
        // deletions of its rows take down, never below zero.
        return Ok(None);
    }
    // The same oldest `count` (one text, whatever the count: the connection keeps it
    // prepared); what was deleted is read back, since on PostgreSQL another statement may
    // have deleted some of them meanwhile.
    let which = match kind {
        Stored::RunLogs => params![organization, count],
        Stored::Events => params![organization, count, finished_before],
    };
    let deleted = delete_counted(&transaction, kind, kind.delete_oldest(), which)?;
    transaction.commit()?;
    Ok(Some(deleted))
}
