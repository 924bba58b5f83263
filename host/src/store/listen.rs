//! Keeps this replica's caches exact while other replicas write the same PostgreSQL
//! database: every table a cache reads has a trigger (schema migrations 1 and 2 for
//! PostgreSQL) that sends `NOTIFY` on this schema's channel with the table and the kind of
//! statement, and a thread of this process listens on a connection of its own and bumps
//! the table's generation (`cache.rs`), making the entries read from it stale.
//!
//! PostgreSQL delivers a notification when the writing transaction commits, to every
//! listening session, asynchronously: on the same machine or network milliseconds later.
//! Until it arrives this replica may still serve the row it had cached (tests/postgres
//! see the change served within a poll or two of 20 ms; a request racing the commit can see
//! the old row). Versions checked on every read would close that moment at a round trip
//! per cached read; not done yet. When the listening
//! connection breaks, notifications sent meanwhile are lost: so until it is back no cached
//! entry is used (every read goes to the database), and every entry is made stale when it
//! is.

use std::sync::Weak;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::db::postgres::PostgresUrl;
use super::db::{params, Change, Db, DbError};
use super::{CachedReads, StoreError};

/// How long the listener waits for a notification before it looks whether the store is
/// still there; also the wait between attempts to reconnect.
const POLL: Duration = Duration::from_secs(1);

/// The channel this database's triggers notify on: one per schema, so that installations
/// (and tests) sharing a database in different schemas do not hear each other. Cut to the
/// 63 characters a channel's name may have, as the triggers cut it (migration 1).
pub(super) fn channel(db: &Db<'_>) -> Result<String, DbError> {
    db.query_row(
        "SELECT left('wasmhook:' || current_schema(), 63)",
        params![],
        |row| row.get::<String>(0),
    )
}

/// Starts the listening thread; it ends once the store's caches are gone.
pub(super) fn spawn(
    url: PostgresUrl,
    channel: String,
    cached: Weak<CachedReads>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("wasmhook-listen".into())
        .spawn(move || listen(&url, &channel, &cached))
        .map(|_| ())
        .map_err(|error| StoreError::Task(format!("cannot start the listening thread: {error}")))
}

fn listen(url: &PostgresUrl, channel: &str, cached: &Weak<CachedReads>) {
    let mut warned = false;
    while let Some(reads) = cached.upgrade() {
        reads.generations.set_hearing(false);
        let mut client = match url.connect().and_then(|mut client| {
            client
                .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
                .map_err(DbError::from)?;
            Ok(client)
        }) {
            Ok(client) => {
                // Whatever was sent while no connection listened is unknown: forget it
                // all, then trust what is read from now on.
                reads.generations.changed_all();
                reads.generations.set_hearing(true);
                drop(reads);
                if warned {
                    tracing::info!("listening for other replicas' changes again");
                    warned = false;
                }
                client
            }
            Err(error) => {
                drop(reads);
                if !warned {
                    tracing::warn!(
                        "cannot listen for other replicas' changes ({error}); caches are \
                         not trusted until it can"
                    );
                    warned = true;
                }
                std::thread::sleep(POLL);
                continue;
            }
        };
        loop {
            let next = client.notifications().timeout_iter(POLL).next();
            let Some(reads) = cached.upgrade() else {
                return;
            };
            match next {
                Ok(Some(notification)) => {
                    if let Some((table, change)) = parse(notification.payload()) {
                        reads.generations.changed(change, table);
                    }
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {
                    // Nothing heard for a while: make sure the connection is still there.
                    // A connection lost without a reset (a firewall's idle timeout, a
                    // failover) would otherwise look quiet for as long as TCP takes to
                    // notice, hours, with the caches trusted meanwhile.
                    if let Err(error) = client.simple_query("SELECT 1") {
                        tracing::warn!("the connection listening for changes broke: {error}");
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!("the connection listening for changes broke: {error}");
                    break;
                }
            }
        }
    }
}

/// A trigger's payload, `table OPERATION`.
fn parse(payload: &str) -> Option<(&str, Change)> {
    let (table, operation) = payload.split_once(' ')?;
    let change = match operation {
        "INSERT" => Change::Insert,
        "UPDATE" => Change::Update,
        "DELETE" | "TRUNCATE" => Change::Delete,
        _ => return None,
    };
    Some((table, change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_its_table_and_change() {
        assert_eq!(parse("hooks UPDATE"), Some(("hooks", Change::Update)));
        assert_eq!(parse("tokens INSERT"), Some(("tokens", Change::Insert)));
        assert_eq!(parse("users TRUNCATE"), Some(("users", Change::Delete)));
        assert_eq!(parse("nonsense"), None);
    }
}
