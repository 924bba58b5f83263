//! The last tick each scheduled hook ran for, so that a tick runs once, even across a
//! restart and across replicas, and a tick missed while every server was down runs once
//! when one is back.

use super::db::{params, Db};
use super::deliveries::{self, NewEvent};
use super::{Store, StoreError};
use chrono::{DateTime, Utc};

impl Store {
    /// The scheduled hooks' ticks, reached by name: what the scheduler claims before it
    /// runs a tick.
    pub fn schedules(&self) -> Schedules<'_> {
        Schedules { store: self }
    }
}

/// The schedule operations callers may ask for; each runs on the store's blocking pool.
#[derive(Debug, Clone, Copy)]
pub struct Schedules<'a> {
    store: &'a Store,
}

impl Schedules<'_> {
    /// Claims the run of hook `hook_id` for `latest`, the latest tick of `expression` at or
    /// before now. When it has not been run yet it is recorded as run and `run` (the tick's
    /// event, its one delivery ready) is enqueued in the same transaction, so that a tick
    /// runs once even across a restart, and a claimed tick is never lost to one; unless its
    /// organization has `backlog` unfinished deliveries or more: then the tick is recorded
    /// and skipped. A hook seen for the first time, or whose expression changed, counts
    /// from `counted_from`.
    pub async fn claim(
        &self,
        tick: Tick,
        run: NewEvent,
        now_ms: i64,
        backlog: u64,
    ) -> Result<Claim, StoreError> {
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                let due = claim(
                    &transaction,
                    tick.hook_id,
                    &tick.expression,
                    tick.latest,
                    tick.counted_from,
                )?;
                let claimed = if !due {
                    Claim::NotDue
                } else if deliveries::unfinished_in(&transaction, run.organization_id)? >= backlog {
                    Claim::Skipped
                } else {
                    deliveries::enqueue(&transaction, &run, None, now_ms)?;
                    Claim::Enqueued
                };
                transaction.commit()?;
                Ok(claimed)
            })
            .await
    }
}

/// What became of a tick claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already run (by this replica or another), or not the hook's to run.
    NotDue,
    /// Its run is enqueued.
    Enqueued,
    /// Recorded as run, but not run: its organization's backlog was full.
    Skipped,
}

/// A tick of a hook's schedule, to claim.
#[derive(Debug, Clone)]
pub struct Tick {
    /// The hook.
    pub hook_id: u64,
    /// Its cron expression.
    pub expression: String,
    /// The latest tick of the expression at or before now.
    pub latest: DateTime<Utc>,
    /// When the hook was saved with this expression: earlier ticks are not its to run.
    pub counted_from: DateTime<Utc>,
}

/// Claims the run for `latest`, the latest tick of `expression` at or before now: true when
/// it has not been run yet, and it is recorded as run in the same transaction.
///
/// A hook seen for the first time, or whose expression changed, counts from `counted_from`
/// (when it was saved): ticks before that are not its to run.
fn claim(
    db: &Db<'_>,
    hook_id: u64,
    expression: &str,
    latest: DateTime<Utc>,
    counted_from: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // Inside the caller's transaction. Replicas claim the same ticks: one at a time per
    // hook, so that the second reads what the first recorded and finds the tick taken.
    let transaction = db;
    transaction.serialize(&format!("wasmhook schedule of hook {hook_id}"))?;
    let stored: Option<(String, String)> = transaction.query_opt(
        "SELECT expression, last_tick FROM schedule_ticks WHERE hook_id = ?1",
        params![hook_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let last = match &stored {
        Some((stored_expression, last)) if stored_expression == expression => {
            DateTime::parse_from_rfc3339(last)
                .map(|time| time.with_timezone(&Utc))
                .unwrap_or(counted_from)
        }
        _ => counted_from,
    };
    let due = latest > last;
    let recorded = if due { latest } else { last };
    let unchanged = stored_matches(&stored, expression, recorded);
    if !unchanged {
        transaction.execute(
            "INSERT INTO schedule_ticks (hook_id, expression, last_tick) VALUES (?1, ?2, ?3)
             ON CONFLICT (hook_id) DO UPDATE SET expression = ?2, last_tick = ?3",
            params![hook_id, expression, recorded.to_rfc3339()],
        )?;
    }
    Ok(due)
}

/// Whether the stored row already says `expression` and `tick` (nothing to write).
fn stored_matches(
    stored: &Option<(String, String)>,
    expression: &str,
    tick: DateTime<Utc>,
) -> bool {
    stored.as_ref().is_some_and(|(stored_expression, last)| {
        stored_expression == expression
            && DateTime::parse_from_rfc3339(last).is_ok_and(|last| last == tick)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 12, minute, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn each_tick_is_claimed_once_and_a_new_expression_starts_afresh() -> Result<(), StoreError> {
        let connection = rusqlite::Connection::open_in_memory()?;
        let connection = Db::sqlite(&connection);
        super::super::schema::migrate(&connection)?;
        // The hook itself is not needed for the ticks' rules.
        connection.execute_batch("PRAGMA foreign_keys = OFF")?;
        let every_ten = "*/10 * * * *";
        // Saved at 12:05: the 12:00 tick is not its to run; 12:10 is, once.
        assert!(!claim(&connection, 1, every_ten, at(0), at(5))?);
        assert!(claim(&connection, 1, every_ten, at(10), at(5))?);
        assert!(!claim(&connection, 1, every_ten, at(10), at(5))?);
        // Three ticks later (a restart, say): one claim, for the latest.
        assert!(claim(&connection, 1, every_ten, at(40), at(5))?);
        assert!(!claim(&connection, 1, every_ten, at(40), at(5))?);
        // A new expression counts from when the hook was saved with it.
        assert!(!claim(&connection, 1, "0 * * * *", at(0), at(45))?);
        Ok(())
    }
}
