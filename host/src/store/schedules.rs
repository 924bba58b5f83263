//! The last tick each scheduled hook ran for, so that a tick runs once, even across a
//! restart, and a tick missed while the server was down runs once when it is back.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// Claims the run for `latest`, the latest tick of `expression` at or before now: true when
/// it has not been run yet, and it is recorded as run in the same transaction.
///
/// A hook seen for the first time, or whose expression changed, counts from `counted_from`
/// (when it was saved): ticks before that are not its to run.
pub fn claim(
    connection: &mut Connection,
    hook_id: u64,
    expression: &str,
    latest: DateTime<Utc>,
    counted_from: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let transaction = connection.transaction()?;
    let stored: Option<(String, String)> = transaction
        .query_row(
            "SELECT expression, last_tick FROM schedule_ticks WHERE hook_id = ?1",
            [hook_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let last = match stored {
        Some((stored_expression, last)) if stored_expression == expression => {
            DateTime::parse_from_rfc3339(&last)
                .map(|time| time.with_timezone(&Utc))
                .unwrap_or(counted_from)
        }
        _ => counted_from,
    };
    let due = latest > last;
    let recorded = if due { latest } else { last };
    transaction.execute(
        "INSERT INTO schedule_ticks (hook_id, expression, last_tick) VALUES (?1, ?2, ?3)
         ON CONFLICT (hook_id) DO UPDATE SET expression = ?2, last_tick = ?3",
        params![hook_id, expression, recorded.to_rfc3339()],
    )?;
    transaction.commit()?;
    Ok(due)
}
