//! Keeps this replica's caches exact while other replicas write the same PostgreSQL
//! database: every table a cache reads has a trigger (schema migrations 1 and 2 for
//! PostgreSQL) that sends `NOTIFY` on this schema's channel with the table and the kind of
//! statement, and a thread of this process listens on a connection of its own and bumps
//! the table's generation (`cache.rs`), making the entries read from it stale.
//!
//! PostgreSQL delivers a notification when the writing transaction commits, to every
//! listening session, asynchronously: on the same machine or network milliseconds later.
//! Until it arrives this replica could still serve the row it had cached, so a hook
//! PATCHed through another replica, answered, and called here at once would run as it
//! was. [`CatchUp`] closes that moment: before a request's first cached read, this replica
//! sends a notification of its own (a *sync*) and waits until its listener hears it.
//! PostgreSQL delivers notifications in the order their transactions committed, so by then
//! the listener has heard every change committed before the request began, and made the
//! entries they touch stale. One sync serves every read that began before it was sent, so
//! under load a replica sends about one per round trip, not one per read.
//!
//! When the listening connection breaks, notifications sent meanwhile are lost: so until
//! it is back no cached entry is used (every read goes to the database), and every entry
//! is made stale when it is. A sync not heard within [`SYNC_WAIT`] (a listener stuck or
//! reconnecting) has the read go to the database too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::watch;

use super::db::postgres::PostgresUrl;
use super::db::{params, Change, Db, DbError};
use super::{CachedReads, StoreError};

/// How long the listener waits for a notification before it looks whether the store is
/// still there; also the wait between attempts to reconnect.
const POLL: Duration = Duration::from_secs(1);

/// How long a read waits for its sync to be heard before it reads the database instead.
pub(super) const SYNC_WAIT: Duration = Duration::from_secs(2);

/// How a sync's payload begins: `sync <uuid> <number>`. A change's is `table OPERATION`,
/// and no table is named `sync`.
const SYNC_PREFIX: &str = "sync ";

/// What one replica needs to know that it has heard every change committed before a
/// moment: the syncs it sent and heard, and whether one is under way.
#[derive(Debug)]
pub(super) struct CatchUp {
    /// This replica's own syncs' prefix, `sync <uuid>`: other replicas' are ignored.
    tag: String,
    /// The channel the listener listens on.
    channel: String,
    /// The number of the last sync sent.
    sent: AtomicU64,
    /// The number of the last of its own syncs the listener heard.
    heard: watch::Receiver<u64>,
    /// When the last sync heard was sent, in nanoseconds since `epoch` (0: none yet): every
    /// change committed before then has been heard.
    caught_up_to: AtomicU64,
    /// When the last sync sent was sent, until it is heard (then `caught_up_to` passes
    /// it): a read that began before it and finds it not heard does not send another.
    failed_at: AtomicU64,
    epoch: Instant,
    /// How long a read waits for a sync to be heard ([`SYNC_WAIT`]).
    wait: Duration,
    /// Held while a sync is under way: the reads arriving meanwhile wait for the next one,
    /// which they share.
    turn: tokio::sync::Mutex<()>,
}

/// Sends a sync: committed without waiting for the disk (a sync means nothing after a
/// crash, and its place in the order of notifications is set at commit either way), in one
/// statement so that no transaction is left open on the pooled connection if it fails.
pub(super) fn sync(db: &Db<'_>, channel: &str, payload: &str) -> Result<(), DbError> {
    db.execute(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(?1, ?2)",
        params![channel, payload],
    )?;
    Ok(())
}

/// What the listener is given to report the syncs it hears.
pub(super) struct Heard {
    tag: String,
    heard: watch::Sender<u64>,
}

impl CatchUp {
    /// A barrier on `channel` whose reads wait `wait` at most, and what the listener
    /// reports its syncs through.
    pub(super) fn new(channel: String, wait: Duration) -> (Self, Heard) {
        let tag = format!("{SYNC_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let (sender, receiver) = watch::channel(0);
        let catch_up = CatchUp {
            tag: tag.clone(),
            channel,
            sent: AtomicU64::new(0),
            heard: receiver,
            caught_up_to: AtomicU64::new(0),
            failed_at: AtomicU64::new(0),
            epoch: Instant::now(),
            wait,
            turn: tokio::sync::Mutex::new(()),
        };
        (catch_up, Heard { tag, heard: sender })
    }

    fn nanos(&self, at: Instant) -> u64 {
        // +1 so that 0 stays "none yet"; a u64 of nanoseconds lasts 584 years.
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Whether every change committed before `since` has been heard; when not, a sync is
    /// sent (by this caller, or shared with the one under way after it) and heard first.
    /// `send` notifies its channel with its payload ([`sync`]). False when that cannot be
    /// known within the wait this barrier was made with, counted from the call: the sync
    /// could not be sent, was not heard, or one sent after `since` failed; the caller must
    /// not trust its cache then. So a stuck listener or pool costs each read that wait at
    /// most, and readers never queue behind each other's failures.
    pub(super) async fn caught_up<F, Fut>(&self, since: Instant, send: F) -> bool
    where
        F: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let since = self.nanos(since);
        if self.caught_up_to.load(Ordering::Acquire) >= since {
            return true;
        }
        tokio::time::timeout(self.wait, self.sync(since, send))
            .await
            .unwrap_or(false)
    }

    async fn sync<F, Fut>(&self, since: u64, send: F) -> bool
    where
        F: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let _turn = self.turn.lock().await;
        if self.caught_up_to.load(Ordering::Acquire) >= since {
            return true;
        }
        if self.failed_at.load(Ordering::Acquire) >= since {
            // A sync sent after this read began failed while it waited its turn: another
            // would most likely fail too.
            return false;
        }
        let sent_at = self.nanos(Instant::now());
        // Counted as failed until heard: a sync cut short by its reader's deadline (the
        // future dropped) is one the readers queued behind it must not wait for again.
        self.failed_at.fetch_max(sent_at, Ordering::AcqRel);
        let number = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
        let payload = format!("{} {number}", self.tag);
        if let Err(error) = send(self.channel.clone(), payload).await {
            tracing::warn!("cannot send a sync to catch up with other replicas: {error}");
            return false;
        }
        let mut heard = self.heard.clone();
        if heard.wait_for(|heard| *heard >= number).await.is_err() {
            // The listener is gone.
            return false;
        }
        self.caught_up_to.fetch_max(sent_at, Ordering::AcqRel);
        true
    }
}

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
///
/// `WASMHOOK_TEST_LISTEN_DELAY_MS` (for tests only) delays the handling of each change
/// heard by that long, as a slow network would: what shows that a request's reads wait for
/// the changes committed before it rather than race their notifications.
pub(super) fn spawn(
    url: PostgresUrl,
    channel: String,
    cached: Weak<CachedReads>,
    syncs: Heard,
) -> Result<(), StoreError> {
    let delay = std::env::var("WASMHOOK_TEST_LISTEN_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    std::thread::Builder::new()
        .name("wasmhook-listen".into())
        .spawn(move || listen(&url, &channel, &cached, &syncs, delay))
        .map(|_| ())
        .map_err(|error| StoreError::Task(format!("cannot start the listening thread: {error}")))
}

fn listen(
    url: &PostgresUrl,
    channel: &str,
    cached: &Weak<CachedReads>,
    syncs: &Heard,
    delay: Option<Duration>,
) {
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
                Ok(Some(notification)) => match parse(notification.payload()) {
                    Some(Notice::Changed(table, change)) => {
                        if let Some(delay) = delay {
                            std::thread::sleep(delay);
                        }
                        reads.generations.changed(change, table);
                    }
                    Some(Notice::Sync(tag, number)) if tag == syncs.tag => {
                        syncs.heard.send_if_modified(|heard| {
                            let later = number > *heard;
                            *heard = (*heard).max(number);
                            later
                        });
                    }
                    // Another replica's sync, or a payload of no known shape.
                    Some(Notice::Sync(..)) | None => {}
                },
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

/// One notification on this schema's channel.
#[derive(Debug, PartialEq, Eq)]
enum Notice<'a> {
    /// A trigger's, `table OPERATION`: a table a cache reads was written.
    Changed(&'a str, Change),
    /// A replica's sync, `sync <uuid> <number>`: the tag (`sync <uuid>`) and the number.
    Sync(&'a str, u64),
}

fn parse(payload: &str) -> Option<Notice<'_>> {
    if let Some(sync) = payload.strip_prefix(SYNC_PREFIX) {
        let (uuid, number) = sync.split_once(' ')?;
        let tag = &payload[..SYNC_PREFIX.len() + uuid.len()];
        return Some(Notice::Sync(tag, number.parse().ok()?));
    }
    let (table, operation) = payload.split_once(' ')?;
    let change = match operation {
        "INSERT" => Change::Insert,
        "UPDATE" => Change::Update,
        "DELETE" | "TRUNCATE" => Change::Delete,
        _ => return None,
    };
    Some(Notice::Changed(table, change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_its_table_and_change_or_a_sync() {
        assert_eq!(
            parse("hooks UPDATE"),
            Some(Notice::Changed("hooks", Change::Update))
        );
        assert_eq!(
            parse("tokens INSERT"),
            Some(Notice::Changed("tokens", Change::Insert))
        );
        assert_eq!(
            parse("users TRUNCATE"),
            Some(Notice::Changed("users", Change::Delete))
        );
        assert_eq!(parse("sync 0f3a 17"), Some(Notice::Sync("sync 0f3a", 17)));
        assert_eq!(parse("sync 0f3a x"), None);
        assert_eq!(
            parse("syncs UPDATE"),
            Some(Notice::Changed("syncs", Change::Update))
        );
        assert_eq!(parse("nonsense"), None);
    }

    #[tokio::test]
    async fn reads_that_began_before_a_sync_share_it_and_later_ones_send_another() {
        let (catch_up, syncs) = CatchUp::new("channel".into(), SYNC_WAIT);
        let sent = std::sync::Mutex::new(Vec::new());
        let hear = |_channel: String, payload: String| {
            sent.lock().expect("not poisoned").push(payload);
            let number = catch_up.sent.load(Ordering::Acquire);
            syncs.heard.send_replace(number);
            async { Ok(()) }
        };
        let before = Instant::now();
        assert!(catch_up.caught_up(before, hear).await);
        // A read that began before the sync was sent needs no other.
        assert!(
            catch_up
                .caught_up(before, |_, _| async { unreachable!() })
                .await
        );
        assert!(catch_up.caught_up(Instant::now(), hear).await);
        let sent = sent.into_inner().expect("not poisoned");
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1], format!("{} 2", catch_up.tag));
    }

    #[tokio::test]
    async fn readers_queued_behind_a_failed_sync_send_no_other() {
        let (catch_up, _syncs) = CatchUp::new("channel".into(), Duration::from_millis(50));
        let before = Instant::now();
        let down = |_, _| async { Err(StoreError::Task("the pool is down".into())) };
        assert!(!catch_up.caught_up(Instant::now(), down).await);
        assert!(
            !catch_up
                .caught_up(before, |_, _| async { unreachable!() })
                .await
        );
    }

    #[tokio::test]
    async fn a_sync_never_heard_leaves_the_cache_untrusted() {
        let (catch_up, _syncs) = CatchUp::new("channel".into(), Duration::from_millis(50));
        assert!(
            !catch_up
                .caught_up(Instant::now(), |_, _| async { Ok(()) })
                .await
        );
    }
}
