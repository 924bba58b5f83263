//! The replicas sharing a PostgreSQL database, known from their heartbeats: how many are
//! alive decides each one's share of the limits that hold across all of them (an
//! organization's concurrent runs, `dispatch::limits`). A replica that stops beating (a
//! kill -9) stops counting once its last beat is older than the liveness window, and its
//! row is deleted later still.

use super::db::params;
use super::{Store, StoreError};

impl Store {
    /// The replicas' heartbeats, reached by name.
    pub fn replicas(&self) -> Replicas<'_> {
        Replicas { store: self }
    }
}

/// The heartbeat operations.
#[derive(Debug, Clone, Copy)]
pub struct Replicas<'a> {
    store: &'a Store,
}

/// Rows of replicas silent this many liveness windows are deleted.
const FORGOTTEN_AFTER_WINDOWS: i64 = 10;

impl Replicas<'_> {
    /// Records that replica `id` is alive at `now` (Unix seconds), and answers how many
    /// replicas beat within the last `window_s` seconds, this one included.
    pub async fn beat(&self, id: &str, now: i64, window_s: i64) -> Result<usize, StoreError> {
        let id = id.to_owned();
        self.store
            .run(move |db| {
                db.execute(
                    "INSERT INTO replicas (id, seen_at) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                    params![id, now],
                )?;
                db.execute(
                    "DELETE FROM replicas WHERE seen_at < ?1",
                    params![now - window_s * FORGOTTEN_AFTER_WINDOWS],
                )?;
                Ok(db.query_row(
                    "SELECT COUNT(*) FROM replicas WHERE seen_at >= ?1",
                    params![now - window_s],
                    |row| row.get::<usize>(0),
                )?)
            })
            .await
    }

    /// Removes replica `id` (it is stopping): the others take its share at their next beat.
    pub async fn leave(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.store
            .run(move |db| {
                db.execute("DELETE FROM replicas WHERE id = ?1", params![id])?;
                Ok(())
            })
            .await
    }
}
