//! Non-interactive events and their deliveries: one row per hook an event runs, holding
//! where that hook's run is (waiting for its predecessors, ready from a time, leased to a
//! replica, done) and how its last attempt ended. Everything that happens after an event's
//! first answer (a retry, an async webhook's polling, a run_after successor, a scheduled
//! run) is such a row, so that no request waits for it and no restart loses it: any
//! replica claims what is due (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's one
//! connection serializes claims anyway) under a lease its heartbeat extends, and takes over
//! a killed replica's rows once their lease has expired.
//!
//! An attempt's run log is inserted in the transaction that records the attempt's end, and
//! only while the lease is still the replica's: every attempt is logged once, whichever
//! replica dies when. The rules of what comes next (retry, poll, promote, cancel) are the
//! dispatcher's (`dispatch::deliveries`); this file only stores them.

use std::collections::HashMap;

use super::db::{params, Db, DbError, Row};
use super::run_logs::{insert_rows, RunLogRow};
use super::usage::{self, Stored};
use super::{Store, StoreError};
use crate::model::RunStatus;

impl Store {
    /// Events and their deliveries, reached by name.
    pub fn deliveries(&self) -> Deliveries<'_> {
        Deliveries { store: self }
    }
}

/// The delivery operations; each runs on the store's blocking pool.
#[derive(Debug, Clone, Copy)]
pub struct Deliveries<'a> {
    store: &'a Store,
}

/// A non-interactive event to record, with one delivery per hook it runs.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Whose hooks it runs.
    pub organization_id: u64,
    /// The request (or schedule tick) that started it: every attempt's run log carries it.
    pub request_id: String,
    /// The event's name.
    pub event: String,
    /// The event's action.
    pub action: String,
    /// The queue it concerns, when it does.
    pub queue_id: Option<u64>,
    /// The event's own keys, as JSON text.
    pub body: String,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// The hooks it runs.
    pub deliveries: Vec<NewDelivery>,
}

/// One hook an event runs, placed in the event's plan.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The hook.
    pub hook_id: u64,
    /// Its layer of the plan: it may run once every earlier layer is done.
    pub layer: u32,
    /// The planned hooks it runs after, directly or not, in layer order: their responses
    /// make its payload, and one that did not complete cancels it.
    pub ancestors: Vec<u64>,
    /// Its first attempt and its retries.
    pub max_attempts: u64,
}

/// A replica's hold on the deliveries it runs: no other claims them before `until_ms`.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The replica (its id from start).
    pub owner: String,
    /// Unix milliseconds.
    pub until_ms: i64,
}

/// Where a delivery is; stored as its name, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Its predecessors in the plan are not all done.
    Waiting,
    /// Claimable from its `run_at`: its first attempt, a retry or a poll.
    Ready,
    /// Leased to a replica, which is attempting or polling it.
    Running,
    /// Finished: its last attempt's status is final.
    Done,
}

impl DeliveryState {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Waiting => "waiting",
            DeliveryState::Ready => "ready",
            DeliveryState::Running => "running",
            DeliveryState::Done => "done",
        }
    }

    fn parse(name: &str) -> Result<Self, DbError> {
        match name {
            "waiting" => Ok(DeliveryState::Waiting),
            "ready" => Ok(DeliveryState::Ready),
            "running" => Ok(DeliveryState::Running),
            "done" => Ok(DeliveryState::Done),
            _ => Err(DbError::Column {
                expected: "a delivery state",
                found: "another text",
            }),
        }
    }
}

/// The attempt of a delivery whose webhook accepted the call (202): its result is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    /// The URL polled (the 202's `Location`).
    pub url: String,
    /// Unix milliseconds after which the polling has failed.
    pub until_ms: i64,
    /// When the attempt began (RFC 3339), for its run log.
    pub started_at: String,
    /// The token minted for the attempt, sealed: the poll's result is redacted of it, and
    /// it is cut once the polling ends, by whichever replica ends it.
    pub sealed_token: Option<Vec<u8>>,
}

/// One delivery as stored.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its id.
    pub id: u64,
    /// Its event.
    pub event_id: u64,
    /// The hook's organization.
    pub organization_id: u64,
    /// The hook.
    pub hook_id: u64,
    /// Its layer of the event's plan.
    pub layer: u32,
    /// The planned hooks it runs after, in layer order.
    pub ancestors: Vec<u64>,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts begun (the one in progress included).
    pub attempt: u64,
    /// The most attempts it may have.
    pub max_attempts: u64,
    /// When it is claimable (Unix milliseconds), while ready.
    pub run_at_ms: i64,
    /// The current attempt's polling, while its webhook's result is awaited.
    pub poll: Option<Polled>,
    /// How its last finished attempt ended (final once done).
    pub status: Option<RunStatus>,
    /// That attempt's run log message.
    pub message: Option<String>,
    /// That attempt's response (redacted, JSON text), when it completed; none too when
    /// it was left out of a read bounded in bytes (`response_omitted`).
    pub response: Option<String>,
    /// The claim holding it while it runs: the owner a turn's end must name.
    pub lease_owner: Option<String>,
    /// Whether it has a response that this read left out, unread: [`Deliveries::event`]
    /// reads an event's responses up to a budget of bytes, and this one came past it. An
    /// answer says so, so that a client can tell a response left out from none.
    pub response_omitted: bool,
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Its id.
    pub id: u64,
    /// Whose it is.
    pub organization_id: u64,
    /// The request that started it.
    pub request_id: String,
    /// The event's name.
    pub event: String,
    /// Its action.
    pub action: String,
    /// The queue it concerns.
    pub queue_id: Option<u64>,
    /// Its own keys, JSON text; empty as [`Deliveries::event`] reads it, for an answer.
    pub body: String,
    /// When it was accepted.
    pub created_at: String,
    /// When its last delivery was done.
    pub finished_at: Option<String>,
}

/// A delivery this replica has claimed, with its event.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery, now leased to the claimer.
    pub delivery: Delivery,
    /// Its event.
    pub event: EventRow,
    /// Whether it was taken over from a replica whose lease expired while it was calling
    /// the hook: that attempt's outcome is unknown, and it has no run log yet.
    pub interrupted: bool,
}

impl Claimed {
    /// Whether its claim counted an attempt as begun (a ready row's first or next attempt,
    /// not a poll or a takeover): the count a give-back without a turn takes back.
    pub fn counted(&self) -> bool {
        !self.interrupted && self.delivery.poll.is_none()
    }
}

/// What becomes of a claimed delivery after the claimer's turn with it.
#[derive(Debug, Clone)]
pub enum Next {
    /// Finished, as its last attempt ended.
    Done {
        /// How.
        status: RunStatus,
        /// Its run log's message.
        message: String,
        /// Its response, JSON text.
        response: Option<String>,
    },
    /// Its attempt did not complete: the next is claimable from `run_at_ms`.
    Retry {
        /// Unix milliseconds.
        run_at_ms: i64,
        /// How the attempt ended.
        status: RunStatus,
        /// Its run log's message.
        message: String,
    },
    /// Its webhook accepted the call: poll from `run_at_ms`.
    Poll {
        /// What is polled, until when.
        polled: Polled,
        /// Unix milliseconds.
        run_at_ms: i64,
    },
    /// Back to ready from `run_at_ms` with nothing recorded: a poll that found no result
    /// yet (`uncount` false), or an attempt not begun because its organization had no
    /// free run (`uncount` true: the claim's count is taken back).
    Later {
        /// Unix milliseconds.
        run_at_ms: i64,
        /// Whether the claim counted an attempt that did not begin.
        uncount: bool,
    },
}

/// The end of a replica's turn with a delivery: what comes next, and the run log of the
/// attempt that ended, when one did.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The delivery.
    pub id: u64,
    /// The replica that holds it.
    pub owner: String,
    /// What comes next.
    pub next: Next,
    /// The ended attempt's run log.
    pub log: Option<RunLogRow>,
}

/// A claimed delivery given back without a turn ([`Deliveries::give_back`]).
#[derive(Debug, Clone)]
pub struct GivenBack {
    /// The delivery.
    pub id: u64,
    /// The claim that holds it.
    pub owner: String,
    /// Whether its claim counted an attempt, now taken back.
    pub uncount: bool,
}

impl GivenBack {
    /// `delivery`, held by the claim it names, `uncount` saying whether the attempt that
    /// claim counted is taken back.
    pub fn new(delivery: &Delivery, uncount: bool) -> Self {
        Self {
            id: delivery.id,
            owner: delivery.lease_owner.clone().unwrap_or_default(),
            uncount,
        }
    }
}

impl From<&Claimed> for GivenBack {
    fn from(claimed: &Claimed) -> Self {
        Self::new(&claimed.delivery, claimed.counted())
    }
}

/// Responses of some of an event's deliveries, read within a budget of bytes
/// ([`Deliveries::responses_of`]): what a delivery's payload is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponsesRead {
    /// Each hook's response (JSON text) that was read, with the hook, in the order asked.
    pub responses: Vec<(u64, String)>,
    /// The hooks, in the order asked, whose response was not read: it came past the
    /// budget.
    pub omitted: Vec<u64>,
}

/// What becomes of a waiting delivery once every layer before it is done.
#[derive(Debug, Clone)]
pub enum Promotion {
    /// It runs.
    Run {
        /// The delivery.
        id: u64,
    },
    /// It is cancelled, with this run log.
    Cancel {
        /// The delivery.
        id: u64,
        /// Why.
        message: String,
        /// Its `cancelled` run log (none when its hook is gone).
        log: Option<Box<RunLogRow>>,
    },
}

/// Events deleted per statement by the retention (their deliveries with them).
const DELETED_PER_STATEMENT: usize = 5_000;

const DELIVERY_COLUMNS: &str = "id, event_id, organization_id, hook_id, layer, ancestors, state,
    attempt, max_attempts, run_at, poll_url, poll_until, attempt_started_at, status, message,
    response, lease_owner, poll_token";

/// [`DELIVERY_COLUMNS`] without the response, read as null: for the reads that decide what
/// comes next, which an event of many hooks with large answers makes after every delivery.
const DELIVERY_STATE_COLUMNS: &str = "id, event_id, organization_id, hook_id, layer, ancestors,
    state, attempt, max_attempts, run_at, poll_url, poll_until, attempt_started_at, status,
    message, NULL AS response, lease_owner, poll_token";

/// [`DELIVERY_COLUMNS`] of `d`, a delivery joined to `sized` (the running total, in plan
/// order, of its event's responses' bytes: `spent`), for a read whose responses are bounded
/// by the budget bound at `?2`: a response is read only while the total is within it (the
/// `CASE` reads the text only then), and a column more says whether one was left out. Its
/// message (the response's messages joined, up to a MiB) is cut to its first 1,024
/// characters (`dispatch::event::ANSWERED_MESSAGE_CHARS`, as an interactive event's answer
/// cuts it), or 500 of them would be as much as 500 responses; its run log keeps it whole.
/// `octet_length` counts the bytes of the text on both databases (SQLite's `length` counts
/// characters), and neither reads the text to count them: SQLite reads only the header
/// of a value that overflows its page, PostgreSQL only the size of a toasted one.
const BUDGETED_DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.organization_id, d.hook_id,
    d.layer, d.ancestors, d.state, d.attempt, d.max_attempts, d.run_at, d.poll_url,
    d.poll_until, d.attempt_started_at, d.status, substr(d.message, 1, 1024) AS message,
    CASE WHEN sized.spent <= ?2 THEN d.response END AS response, d.lease_owner, d.poll_token,
    CASE WHEN sized.spent > ?2 AND octet_length(d.response) IS NOT NULL THEN 1 ELSE 0 END
        AS response_omitted";

/// Each delivery of event `?1` with the running total of its event's responses' bytes in
/// plan order, its own included: [`BUDGETED_DELIVERY_COLUMNS`]'s `sized`. The window sums
/// lengths only; a text is read by the outer `CASE` alone (PostgreSQL's sort below the
/// window may carry a large one, but as its TOAST pointer). Cast, so that PostgreSQL's
/// total is a `bigint` whatever the lengths' type, as the budget bound at `?2` is.
const RESPONSES_SPENT: &str = "SELECT id, CAST(SUM(COALESCE(octet_length(response), 0)) OVER (
        ORDER BY layer, hook_id, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT)
        AS spent
    FROM deliveries WHERE event_id = ?1";

const EVENT_COLUMNS: &str =
    "id, organization_id, request_id, event, action, queue_id, body, created_at, finished_at";

/// How long [`Deliveries::event`]'s read may take: a safety net, since what it reads is
/// bounded by its budget of bytes (a read past it is answered as too broad).
const EVENT_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// [`EVENT_COLUMNS`] with an empty `body`: for an answer about an event, which never shows
/// its keys (up to a request's 2 MiB), read by any member as often as it likes.
const EVENT_COLUMNS_BUT_BODY: &str =
    "id, organization_id, request_id, event, action, queue_id, '' AS body, created_at, \
     finished_at";

impl Deliveries<'_> {
    /// Records `event` and its deliveries in one transaction. The first layer's are leased
    /// to `lease` (attempt 1 begun) when one is given, so that the accepting replica runs
    /// them at once; otherwise they are ready now. Answers the event and the first layer;
    /// none, with nothing written, when its organization has `backlog` unfinished
    /// deliveries or more ([`unfinished_in`]).
    pub async fn enqueue(
        &self,
        event: NewEvent,
        lease: Option<Lease>,
        now_ms: i64,
        backlog: u64,
    ) -> Result<Option<(EventRow, Vec<Delivery>)>, StoreError> {
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                if unfinished_in(&transaction, event.organization_id)? >= backlog {
                    return Ok(None);
                }
                let id = enqueue(&transaction, &event, lease.as_ref(), now_ms)?;
                let row = event_row(&transaction, id)?.ok_or(DbError::NoRow)?;
                let first = deliveries_of(&transaction, id)?
                    .into_iter()
                    .filter(|delivery| delivery.layer == 0)
                    .collect();
                transaction.commit()?;
                Ok(Some((row, first)))
            })
            .await
    }

    /// Claims up to `limit` deliveries due at `now_ms` (ready ones, and running ones whose
    /// lease expired) for `lease`, oldest due first; a claimed ready one that is not being
    /// polled begins its next attempt. Rows another replica is claiming are skipped.
    ///
    /// `skipped` organizations' deliveries are left for later (those whose share of the
    /// claimer's turns is taken, or that have no run free on the claimer's replica).
    pub async fn claim(
        &self,
        lease: Lease,
        now_ms: i64,
        limit: usize,
        skipped: Vec<u64>,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.store
            .run(move |db| claim(db, &lease, now_ms, limit, &skipped))
            .await
    }

    /// Extends the leases of the deliveries `held` (each with the claim that holds it) to
    /// `until_ms`: a replica's heartbeat while it takes their turns. One its claim no
    /// longer holds is left alone.
    pub async fn extend(
        &self,
        held: Vec<(u64, String)>,
        until_ms: i64,
    ) -> Result<usize, StoreError> {
        self.store
            .run(move |db| {
                let mut extended = 0;
                for (id, owner) in held {
                    extended += db.execute(
                        "UPDATE deliveries SET lease_until = ?1
                         WHERE id = ?2 AND lease_owner = ?3 AND state = 'running'",
                        params![until_ms, id, owner],
                    )?;
                }
                Ok(extended)
            })
            .await
    }

    /// Events that no delivery moves on: unfinished, with none ready or running. Their
    /// next layer waits to be promoted, or they wait to be closed, because the replica
    /// that finished their last delivery died (or failed) before it advanced them.
    pub async fn stalled(&self, limit: usize) -> Result<Vec<u64>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .run(move |db| {
                Ok(db.query_map(
                    "SELECT id FROM events
                     WHERE finished_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM deliveries
                                       WHERE deliveries.event_id = events.id
                                         AND deliveries.state IN ('ready', 'running'))
                     ORDER BY id LIMIT ?1",
                    params![limit],
                    |row| row.get(0),
                )?)
            })
            .await
    }

    /// Ends a turn: the delivery's next state and the ended attempt's run log, in one
    /// transaction, only if `turn.owner` still holds it. False (nothing written) when the
    /// lease was lost: another replica has taken the delivery over and logs the attempt.
    pub async fn finish(&self, turn: Turn) -> Result<bool, StoreError> {
        self.store.run(move |db| finish(db, &turn)).await
    }

    /// Gives claimed deliveries back untaken, ready again from `run_at_ms` with nothing
    /// recorded, in one transaction: what [`Next::Later`] does to one, for the many a
    /// claim or an event's fan-out may leave beyond what the replica can take at once, so
    /// that they cost one commit and not one each. Each only if its claim still holds it;
    /// answers how many were.
    pub async fn give_back(
        &self,
        given: Vec<GivenBack>,
        run_at_ms: i64,
    ) -> Result<usize, StoreError> {
        if given.is_empty() {
            return Ok(0);
        }
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                let mut changed = 0;
                for one in &given {
                    changed += transaction.execute(
                        GIVE_BACK,
                        params![one.id, one.owner, run_at_ms, i64::from(one.uncount)],
                    )?;
                }
                transaction.commit()?;
                Ok(changed)
            })
            .await
    }

    /// Applies `promotions` to waiting deliveries of one event, each only if it is still
    /// waiting (two replicas finishing a layer's last deliveries may both decide the next
    /// layer; one applies it). Those to run are leased to `lease` (attempt 1 begun) when
    /// one is given, else ready at `now_ms`. Answers the ids leased to `lease`.
    pub async fn promote(
        &self,
        promotions: Vec<Promotion>,
        lease: Option<Lease>,
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        self.store
            .run(move |db| promote(db, &promotions, lease.as_ref(), now_ms))
            .await
    }

    /// Marks event `id` finished at `now` when every delivery of it is done.
    pub async fn close_event(&self, id: u64, now: &str) -> Result<bool, StoreError> {
        let now = now.to_owned();
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                // What it keeps from now on counts toward its organization's usage
                // (`usage.rs`, `Stored::Events`; migration 14 counts it alike).
                let closed = transaction.query_map(
                    "UPDATE events SET finished_at = ?1,
                         stored_bytes = octet_length(body) + 256 + COALESCE((
                             SELECT SUM(COALESCE(octet_length(response), 0)
                                        + COALESCE(octet_length(message), 0) + 256)
                             FROM deliveries WHERE deliveries.event_id = events.id), 0)
                     WHERE id = ?2 AND finished_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM deliveries
                                       WHERE event_id = ?2 AND state <> 'done')
                     RETURNING organization_id, stored_bytes",
                    params![now, id],
                    |row| Ok((row.get::<u64>(0)?, row.get::<u64>(1)?)),
                )?;
                usage::add(&transaction, Stored::Events, closed.iter().copied())?;
                transaction.commit()?;
                Ok(closed.len() == 1)
            })
            .await
    }

    /// Event `id`'s row alone, without its deliveries.
    pub async fn event_row(&self, id: u64) -> Result<Option<EventRow>, StoreError> {
        self.store.run(move |db| event_row(db, id)).await
    }

    /// The deliveries of event `id` in plan order, their responses left out (none): what
    /// deciding its next layer needs, without reading every answer again each time one of
    /// its deliveries ends.
    pub async fn states(&self, id: u64) -> Result<Vec<Delivery>, StoreError> {
        self.store
            .run(move |db| {
                Ok(db.query_map(
                    &format!(
                        "SELECT {DELIVERY_STATE_COLUMNS} FROM deliveries WHERE event_id = ?1
                         ORDER BY layer, hook_id"
                    ),
                    params![id],
                    delivery_of,
                )?)
            })
            .await
    }

    /// Event `id` with its deliveries in plan order; only `organization`'s when given.
    /// Their responses are read while, in plan order, their bytes together are within
    /// `response_budget`: the first that would pass it, and every one after it, are left
    /// out unread (none, with `response_omitted`), so that an event of hundreds of hooks
    /// answering a MiB each costs no more than the budget to read, however often it is
    /// asked for. Each message is cut to its first 1,024 characters, for the same reason,
    /// and the event's row is read without its `body` (empty here), which no answer shows.
    pub async fn event(
        &self,
        id: u64,
        organization: Option<u64>,
        response_budget: u64,
    ) -> Result<Option<(EventRow, Vec<Delivery>)>, StoreError> {
        // A read of up to the budget's megabytes that any member may ask for as often as it
        // likes: on a read connection, never the one every write waits for, after the
        // organization's reads before it (`readers.rs`).
        self.store
            .read_within(organization, EVENT_READ_DEADLINE, move |db| {
                let Some(row) = event_row_of(db, id, EVENT_COLUMNS_BUT_BODY)? else {
                    return Ok(None);
                };
                if organization.is_some_and(|organization| organization != row.organization_id) {
                    return Ok(None);
                }
                let deliveries = deliveries_within(db, id, response_budget)?;
                Ok(Some((row, deliveries)))
            })
            .await
    }

    /// The responses of event `event_id`'s deliveries of `hook_ids` (a delivery's
    /// ancestors), in that order, read while their bytes together are within `budget`:
    /// the first that would pass it, and every one after it, are left out unread (named in
    /// [`ResponsesRead::omitted`]). A hook with no delivery in the event, or no response,
    /// is skipped. What a delivery's payload is built from, read instead of every response
    /// of its event, and bounded, since a delivery of a long run_after chain reads its
    /// ancestors' again at each of its turns.
    pub async fn responses_of(
        &self,
        event_id: u64,
        hook_ids: Vec<u64>,
        budget: u64,
    ) -> Result<ResponsesRead, StoreError> {
        if hook_ids.is_empty() {
            return Ok(ResponsesRead::default());
        }
        let asked = json_ids(&hook_ids)?;
        self.store
            .run(move |db| {
                // The sizes first (no text is read to count them), then the texts that fit.
                let sizes: Vec<(u64, Option<u64>)> = db.query_map(
                    &format!(
                        "SELECT hook_id, octet_length(response) FROM deliveries
                         WHERE event_id = ?1 AND hook_id IN ({})",
                        db.dialect().json_integers("?2")
                    ),
                    params![event_id, asked],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                let sizes: HashMap<u64, Option<u64>> = sizes.into_iter().collect();
                let (kept, omitted) = within_budget(&hook_ids, &sizes, budget);
                if kept.is_empty() {
                    return Ok(ResponsesRead {
                        responses: Vec::new(),
                        omitted,
                    });
                }
                let kept_ids = json_ids(&kept)?;
                let texts: Vec<(u64, Option<String>)> = db.query_map(
                    &format!(
                        "SELECT hook_id, response FROM deliveries
                         WHERE event_id = ?1 AND hook_id IN ({})",
                        db.dialect().json_integers("?2")
                    ),
                    params![event_id, kept_ids],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                let mut texts: HashMap<u64, Option<String>> = texts.into_iter().collect();
                let responses = kept
                    .into_iter()
                    .filter_map(|hook| Some((hook, texts.remove(&hook).flatten()?)))
                    .collect();
                Ok(ResponsesRead { responses, omitted })
            })
            .await
    }

    /// Deliveries with the given ids (those that exist), with their events: the ones a
    /// promotion leased to this replica.
    pub async fn claimed(&self, ids: Vec<u64>) -> Result<Vec<Claimed>, StoreError> {
        self.store
            .run(move |db| {
                let mut claimed = Vec::new();
                for id in ids {
                    if let Some(found) = claimed_row(db, id, false)? {
                        claimed.push(found);
                    }
                }
                Ok(claimed)
            })
            .await
    }

    /// When the next delivery falls due (the earliest ready one's time, or the earliest
    /// lease to expire), and how many are not done: what the worker sleeps until, and the
    /// pending gauge.
    ///
    /// The `skipped` organizations' deliveries (those a claim leaves out) are counted but
    /// do not make the next one due: a worker would otherwise wake at once, every time,
    /// for rows it will not claim.
    pub async fn outlook(&self, skipped: &[u64]) -> Result<(Option<i64>, u64), StoreError> {
        let skipped = json_ids(skipped)?;
        self.store
            .run(move |db| {
                Ok(db.query_row(
                    &format!(
                        "SELECT MIN(CASE WHEN organization_id IN ({}) THEN NULL
                                         WHEN state = 'ready' THEN run_at
                                         WHEN state = 'running' THEN lease_until END),
                                COUNT(*)
                         FROM deliveries WHERE state IN ('waiting', 'ready', 'running')",
                        db.dialect().json_integers("?1")
                    ),
                    params![skipped],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?)
            })
            .await
    }

    /// How many deliveries of `organization` are not done ([`unfinished_in`]).
    pub async fn unfinished(&self, organization: u64) -> Result<u64, StoreError> {
        self.store
            .run(move |db| unfinished_in(db, organization))
            .await
    }

    /// Lets every delivery leased by an earlier process be claimed at once. Only for a
    /// database no other replica shares (SQLite's one process): there, every lease found at
    /// start is a dead process's.
    pub async fn abandon_leases(&self) -> Result<usize, StoreError> {
        self.store
            .run(|db| {
                Ok(db.execute(
                    "UPDATE deliveries SET lease_until = 0 WHERE state = 'running'",
                    params![],
                )?)
            })
            .await
    }
}

/// Which of `hook_ids` (in their order) have a response within `budget` bytes, by the
/// responses' `sizes` (a hook absent, or without a response, has none and is skipped):
/// those before the first that would take the total past it, and those from it on. Split
/// at the first, rather than skipping it for smaller ones after, so that the operations a
/// payload is built from are always those of its first ancestors, none missing between.
fn within_budget(
    hook_ids: &[u64],
    sizes: &HashMap<u64, Option<u64>>,
    budget: u64,
) -> (Vec<u64>, Vec<u64>) {
    let mut spent = 0u64;
    let mut kept = Vec::new();
    let mut omitted = Vec::new();
    for &hook in hook_ids {
        let Some(size) = sizes.get(&hook).copied().flatten() else {
            continue;
        };
        match spent.checked_add(size) {
            Some(total) if omitted.is_empty() && total <= budget => {
                spent = total;
                kept.push(hook);
            }
            _ => omitted.push(hook),
        }
    }
    (kept, omitted)
}

/// Ids as the JSON array [`super::db::Dialect::json_integers`] reads.
fn json_ids(ids: &[u64]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|error| StoreError::Task(error.to_string()))
}

/// How many deliveries of `organization` are not done: its backlog, which `POST /events`
/// and the scheduler's ticks bound so that one organization cannot fill the queue every
/// replica's worker reads. Counted in the enqueuing transaction but not locked: enqueues
/// racing may all pass, so the bound can be passed by as many events as are enqueued at
/// once: the organization's runs at once (each `POST /events` holds its run permits) and
/// its hooks' ticks claimed at that moment, no more.
pub(super) fn unfinished_in(db: &Db<'_>, organization: u64) -> Result<u64, StoreError> {
    Ok(db.query_row(
        "SELECT COUNT(*) FROM deliveries
         WHERE organization_id = ?1 AND state IN ('waiting', 'ready', 'running')",
        params![organization],
        |row| row.get(0),
    )?)
}

/// Records `event` and its deliveries in the caller's transaction; its id.
pub(super) fn enqueue(
    db: &Db<'_>,
    event: &NewEvent,
    lease: Option<&Lease>,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let id: u64 = db.query_row(
        "INSERT INTO events (organization_id, request_id, event, action, queue_id, body,
                             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        params![
            event.organization_id,
            event.request_id,
            event.event,
            event.action,
            event.queue_id,
            event.body,
            event.created_at
        ],
        |row| row.get(0),
    )?;
    for delivery in &event.deliveries {
        let (state, attempt, owner, until) = match (delivery.layer, lease) {
            (0, Some(lease)) => (
                "running",
                1,
                Some(lease.owner.as_str()),
                Some(lease.until_ms),
            ),
            (0, None) => ("ready", 0, None, None),
            _ => ("waiting", 0, None, None),
        };
        let ancestors = serde_json::to_string(&delivery.ancestors)
            .map_err(|error| StoreError::Task(error.to_string()))?;
        db.execute(
            "INSERT INTO deliveries (event_id, organization_id, hook_id, layer, ancestors, state,
                                     attempt, max_attempts, run_at, lease_owner, lease_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                id,
                event.organization_id,
                delivery.hook_id,
                delivery.layer,
                ancestors,
                state,
                attempt,
                delivery.max_attempts,
                now_ms,
                owner,
                until
            ],
        )?;
    }
    Ok(id)
}

fn claim(
    db: &Db<'_>,
    lease: &Lease,
    now_ms: i64,
    limit: usize,
    skipped: &[u64],
) -> Result<Vec<Claimed>, StoreError> {
    let transaction = db.transaction()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let dialect = transaction.dialect();
    let skipped = json_ids(skipped)?;
    let due: Vec<(u64, String, bool)> = transaction.query_map(
        &format!(
            "SELECT id, state, CASE WHEN poll_url IS NULL THEN 0 ELSE 1 END FROM deliveries
             WHERE ((state = 'ready' AND run_at <= ?1)
                    OR (state = 'running' AND lease_until < ?1))
               AND organization_id NOT IN ({})
             ORDER BY run_at, id LIMIT ?2{}",
            dialect.json_integers("?3"),
            dialect.skip_locked()
        ),
        params![now_ms, limit, skipped],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let mut claimed = Vec::with_capacity(due.len());
    for (id, state, polling) in due {
        let ready = DeliveryState::parse(&state)? == DeliveryState::Ready;
        let begins = i64::from(ready && !polling);
        transaction.execute(
            "UPDATE deliveries SET state = 'running', lease_owner = ?1, lease_until = ?2,
                                   attempt = attempt + ?3
             WHERE id = ?4",
            params![lease.owner, lease.until_ms, begins, id],
        )?;
        if let Some(found) = claimed_row(&transaction, id, !ready && !polling)? {
            claimed.push(found);
        }
    }
    transaction.commit()?;
    Ok(claimed)
}

fn claimed_row(db: &Db<'_>, id: u64, interrupted: bool) -> Result<Option<Claimed>, StoreError> {
    let Some(delivery) = db.query_opt(
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"),
        params![id],
        delivery_of,
    )?
    else {
        return Ok(None);
    };
    let Some(event) = event_row(db, delivery.event_id)? else {
        return Ok(None);
    };
    Ok(Some(Claimed {
        delivery,
        event,
        interrupted,
    }))
}

/// A delivery back to ready at `?3` with nothing recorded, `?4` (0 or 1) attempts taken back,
/// if claim `?2` still holds it ([`Next::Later`]); `finish`'s `held` and `released` spelled out.
const GIVE_BACK: &str = "UPDATE deliveries SET state = 'ready', run_at = ?3,
        lease_owner = NULL, lease_until = NULL,
        attempt = CASE WHEN attempt >= ?4 THEN attempt - ?4 ELSE 0 END
    WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";

fn finish(db: &Db<'_>, turn: &Turn) -> Result<bool, StoreError> {
    let transaction = db.transaction()?;
    let held = "WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";
    let released = "lease_owner = NULL, lease_until = NULL";
    let unpolled =
        "poll_url = NULL, poll_until = NULL, attempt_started_at = NULL, poll_token = NULL";
    let changed = match &turn.next {
        Next::Done {
            status,
            message,
            response,
        } => transaction.execute(
            &format!(
                "UPDATE deliveries SET state = 'done', {released}, {unpolled},
                                       status = ?3, message = ?4, response = ?5 {held}"
            ),
            params![turn.id, turn.owner, status.as_str(), message, response],
        )?,
        Next::Retry {
            run_at_ms,
            status,
            message,
        } => transaction.execute(
            &format!(
                "UPDATE deliveries SET state = 'ready', run_at = ?3, {released}, {unpolled},
                                       status = ?4, message = ?5 {held}"
            ),
            params![turn.id, turn.owner, run_at_ms, status.as_str(), message],
        )?,
        Next::Poll { polled, run_at_ms } => transaction.execute(
            &format!(
                "UPDATE deliveries SET state = 'ready', run_at = ?3, {released},
                                       poll_url = ?4, poll_until = ?5, attempt_started_at = ?6,
                                       poll_token = ?7
                 {held}"
            ),
            params![
                turn.id,
                turn.owner,
                run_at_ms,
                polled.url,
                polled.until_ms,
                polled.started_at,
                polled.sealed_token
            ],
        )?,
        Next::Later { run_at_ms, uncount } => transaction.execute(
            GIVE_BACK,
            params![turn.id, turn.owner, run_at_ms, i64::from(*uncount)],
        )?,
    };
    if changed != 1 {
        return Ok(false);
    }
    if let Some(log) = &turn.log {
        insert_rows(&transaction, std::slice::from_ref(log))?;
    }
    transaction.commit()?;
    Ok(true)
}

fn promote(
    db: &Db<'_>,
    promotions: &[Promotion],
    lease: Option<&Lease>,
    now_ms: i64,
) -> Result<Vec<u64>, StoreError> {
    let transaction = db.transaction()?;
    let mut leased = Vec::new();
    for promotion in promotions {
        match promotion {
            Promotion::Run { id } => {
                let (state, attempt, owner, until) = match lease {
                    Some(lease) => (
                        "running",
                        1,
                        Some(lease.owner.as_str()),
                        Some(lease.until_ms),
                    ),
                    None => ("ready", 0, None, None),
                };
                let changed = transaction.execute(
                    "UPDATE deliveries SET state = ?1, attempt = ?2, run_at = ?3,
                                           lease_owner = ?4, lease_until = ?5
                     WHERE id = ?6 AND state = 'waiting'",
                    params![state, attempt, now_ms, owner, until, id],
                )?;
                if changed == 1 && lease.is_some() {
                    leased.push(*id);
                }
            }
            Promotion::Cancel { id, message, log } => {
                let changed = transaction.execute(
                    "UPDATE deliveries SET state = 'done', status = 'cancelled', message = ?1
                     WHERE id = ?2 AND state = 'waiting'",
                    params![message, id],
                )?;
                if let (1, Some(log)) = (changed, log) {
                    insert_rows(&transaction, std::slice::from_ref(log.as_ref()))?;
                }
            }
        }
    }
    transaction.commit()?;
    Ok(leased)
}

fn event_row(db: &Db<'_>, id: u64) -> Result<Option<EventRow>, StoreError> {
    event_row_of(db, id, EVENT_COLUMNS)
}

/// Event `id`'s row, `columns` read ([`EVENT_COLUMNS`], or [`EVENT_COLUMNS_BUT_BODY`]).
fn event_row_of(db: &Db<'_>, id: u64, columns: &str) -> Result<Option<EventRow>, StoreError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    Ok(db.query_opt(
        &format!("SELECT {columns} FROM events WHERE id = ?1"),
        params![id],
        |row| {
            Ok(EventRow {
                id: row.get(0)?,
                organization_id: row.get(1)?,
                request_id: row.get(2)?,
                event: row.get(3)?,
                action: row.get(4)?,
                queue_id: row.get(5)?,
                body: row.get(6)?,
                created_at: row.get(7)?,
                finished_at: row.get(8)?,
            })
        },
    )?)
}

fn deliveries_of(db: &Db<'_>, event_id: u64) -> Result<Vec<Delivery>, StoreError> {
    Ok(db.query_map(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = ?1 ORDER BY layer, hook_id"
        ),
        params![event_id],
        delivery_of,
    )?)
}

/// Event `event_id`'s deliveries in plan order, each response read only while the
/// running total of the responses' bytes in that order (its own included) is within
/// `budget`; past it, a delivery's response is none and `response_omitted` says whether it
/// had one. One statement, so that the total and the texts read are of one moment.
fn deliveries_within(db: &Db<'_>, event_id: u64, budget: u64) -> Result<Vec<Delivery>, StoreError> {
    Ok(db.query_map(
        &format!(
            "SELECT {BUDGETED_DELIVERY_COLUMNS}
             FROM deliveries AS d JOIN ({RESPONSES_SPENT}) AS sized ON sized.id = d.id
             WHERE d.event_id = ?1
             ORDER BY d.layer, d.hook_id"
        ),
        params![event_id, budget],
        |row| {
            Ok(Delivery {
                response_omitted: row.get(18)?,
                ..delivery_of(row)?
            })
        },
    )?)
}

fn delivery_of(row: &Row) -> Result<Delivery, DbError> {
    let ancestors: String = row.get(5)?;
    let state: String = row.get(6)?;
    let poll_url: Option<String> = row.get(10)?;
    let poll_until: Option<i64> = row.get(11)?;
    let started_at: Option<String> = row.get(12)?;
    let status: Option<String> = row.get(13)?;
    Ok(Delivery {
        id: row.get(0)?,
        event_id: row.get(1)?,
        organization_id: row.get(2)?,
        hook_id: row.get(3)?,
        layer: row.get(4)?,
        // Written by `enqueue` from a list of ids; nothing else writes it.
        ancestors: serde_json::from_str(&ancestors).unwrap_or_default(),
        state: DeliveryState::parse(&state)?,
        attempt: row.get(7)?,
        max_attempts: row.get(8)?,
        run_at_ms: row.get(9)?,
        poll: match (poll_url, poll_until, started_at) {
            (Some(url), Some(until_ms), Some(started_at)) => Some(Polled {
                url,
                until_ms,
                started_at,
                sealed_token: row.get(17)?,
            }),
            _ => None,
        },
        status: status.as_deref().and_then(RunStatus::from_name),
        message: row.get(14)?,
        response: row.get(15)?,
        lease_owner: row.get(16)?,
        response_omitted: false,
    })
}

/// Deletes up to [`DELETED_PER_STATEMENT`] events finished before `cutoff` (RFC 3339),
/// their deliveries with them; how many.
pub(super) fn delete_batch_before(db: &Db<'_>, cutoff: &str) -> Result<usize, StoreError> {
    let limit = i64::try_from(DELETED_PER_STATEMENT).unwrap_or(i64::MAX);
    let transaction = db.transaction()?;
    transaction.serialize(usage::DELETES)?;
    let deleted = usage::delete_counted(
        &transaction,
        Stored::Events,
        "DELETE FROM events WHERE id IN (
             SELECT id FROM events WHERE finished_at < ?1 LIMIT ?2)
         RETURNING organization_id, stored_bytes",
        params![cutoff, limit],
    )?;
    transaction.commit()?;
    Ok(deleted)
}

/// How many events one retention statement deletes at most.
pub(super) const EVENTS_DELETED_PER_STATEMENT: usize = DELETED_PER_STATEMENT;
