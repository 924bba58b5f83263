//! Deliveries as rows, on both backends: a lease keeps a delivery from every other claimer
//! until it runs out, and one taken over mid-attempt says so; a turn ends only while its
//! lease is held, its run log committed with it or not at all; a layer is promoted once;
//! an event's responses are read within a budget of bytes, and a delivery's ancestors'
//! alone; and, on PostgreSQL, two replicas claiming at once take disjoint rows.

use serde_json::json;

use super::TestResult;
use crate::model::run_log::{RunLog, RunStatus};
use crate::store::deliveries::{
    DeliveryState, GivenBack, Lease, NewDelivery, NewEvent, Next, Promotion, ResponsesRead, Turn,
};
use crate::store::run_logs::RunLogRow;
use crate::store::usage::Stored;
use crate::store::Store;

/// A backlog bound no test here reaches unless it means to.
const BACKLOG: u64 = 1000;
/// A budget of response bytes no test here reaches unless it means to (the most a
/// parameter may be: the databases' integers are signed).
const ALL: u64 = u64::MAX >> 1;

fn lease(owner: &str, until_ms: i64) -> Lease {
    Lease {
        owner: owner.into(),
        until_ms,
    }
}

/// An event of two layers: hook 1, then hook 2 after it.
fn event(request_id: &str) -> NewEvent {
    NewEvent {
        organization_id: 1,
        request_id: request_id.into(),
        event: "annotation_content".into(),
        action: "initialize".into(),
        queue_id: None,
        body: "{}".into(),
        created_at: "2027-01-01T00:00:00.000000Z".into(),
        deliveries: vec![
            NewDelivery {
                hook_id: 1,
                layer: 0,
                ancestors: Vec::new(),
                max_attempts: 3,
            },
            NewDelivery {
                hook_id: 2,
                layer: 1,
                ancestors: vec![1],
                max_attempts: 1,
            },
        ],
    }
}

fn log_of(
    request_id: &str,
    hook_id: u64,
    status: RunStatus,
) -> Result<RunLogRow, crate::store::StoreError> {
    RunLogRow::new(&RunLog {
        uuid: uuid::Uuid::new_v4().to_string(),
        request_id: request_id.into(),
        timestamp: "2027-01-01T00:00:00.000000Z".into(),
        event: "annotation_content".into(),
        action: "initialize".into(),
        organization_id: 1,
        hook_id,
        hook_type: "webhook".into(),
        queue_id: None,
        annotation_id: None,
        email_id: None,
        status,
        log_level: status.log_level(),
        status_code: None,
        message: String::new(),
        request: None,
        response: None,
        output: None,
        settings: json!({}),
        start: "2027-01-01T00:00:00.000000Z".into(),
        end: "2027-01-01T00:00:00.000000Z".into(),
        duration_ms: 0.0,
    })
}

async fn a_lease_holds_until_it_runs_out_and_a_turn_ends_only_while_held(
    store: Store,
) -> TestResult {
    let deliveries = store.deliveries();
    let (row, first) = deliveries
        .enqueue(event("r-1"), Some(lease("a", 1_000)), 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].state, DeliveryState::Running);
    assert_eq!(first[0].attempt, 1);
    // Held by "a" until 1,000: nobody else claims it before, and the waiting layer is
    // never claimable.
    assert!(deliveries
        .claim(lease("b", 5_000), 999, 10, Vec::new())
        .await?
        .is_empty());
    // Run out: "b" takes it over, and is told the attempt in flight was interrupted.
    let taken = deliveries
        .claim(lease("b", 5_000), 1_001, 10, Vec::new())
        .await?;
    assert_eq!(taken.len(), 1);
    assert!(taken[0].interrupted);
    assert_eq!(
        taken[0].delivery.attempt, 1,
        "the interrupted attempt is not counted twice"
    );
    assert_eq!(taken[0].event.request_id, "r-1");
    // "a" comes back too late: its end is refused, and its log is not written.
    let late = Turn {
        id: first[0].id,
        owner: "a".into(),
        next: Next::Done {
            status: RunStatus::Completed,
            message: String::new(),
            response: None,
        },
        log: Some(log_of("r-1", 1, RunStatus::Completed)?),
    };
    assert!(!deliveries.finish(late).await?);
    assert_eq!(store.run_logs().count_for_request("r-1").await?, 0);
    // "b" logs the interrupted attempt and schedules the retry.
    let retry = Turn {
        id: first[0].id,
        owner: "b".into(),
        next: Next::Retry {
            run_at_ms: 2_000,
            status: RunStatus::Failed,
            message: "interrupted".into(),
        },
        log: Some(log_of("r-1", 1, RunStatus::Failed)?),
    };
    assert!(deliveries.finish(retry).await?);
    assert_eq!(store.run_logs().count_for_request("r-1").await?, 1);
    assert!(deliveries
        .claim(lease("c", 9_000), 1_999, 10, Vec::new())
        .await?
        .is_empty());
    let retried = deliveries
        .claim(lease("c", 9_000), 2_000, 10, Vec::new())
        .await?;
    assert_eq!(retried.len(), 1);
    assert!(!retried[0].interrupted);
    assert_eq!(
        retried[0].delivery.attempt, 2,
        "a claimed retry begins the next attempt"
    );
    let done = Turn {
        id: first[0].id,
        owner: "c".into(),
        next: Next::Done {
            status: RunStatus::Completed,
            message: "ok".into(),
            response: Some(r#"{"operations": []}"#.into()),
        },
        log: Some(log_of("r-1", 1, RunStatus::Completed)?),
    };
    assert!(deliveries.finish(done).await?);
    assert_eq!(store.run_logs().count_for_request("r-1").await?, 2);

    // The next layer is promoted once, however many finishers decide it.
    let (_, all) = deliveries
        .event(row.id, None, ALL)
        .await?
        .ok_or("the event")?;
    let second = all
        .iter()
        .find(|delivery| delivery.layer == 1)
        .ok_or("layer 1")?;
    assert_eq!(second.state, DeliveryState::Waiting);
    let promote = || vec![Promotion::Run { id: second.id }];
    let leased = deliveries
        .promote(promote(), Some(lease("c", 9_000)), 3_000)
        .await?;
    assert_eq!(leased, vec![second.id]);
    let again = deliveries
        .promote(promote(), Some(lease("d", 9_000)), 3_000)
        .await?;
    assert!(again.is_empty(), "already promoted");
    let finished = Turn {
        id: second.id,
        owner: "c".into(),
        next: Next::Done {
            status: RunStatus::Completed,
            message: String::new(),
            response: None,
        },
        log: None,
    };
    assert!(deliveries.finish(finished).await?);
    assert!(
        deliveries
            .close_event(row.id, "2027-01-01T00:00:01.000000Z")
            .await?
    );
    // Another organization does not see it; the retention deletes it once finished.
    assert!(deliveries.event(row.id, Some(2), ALL).await?.is_none());
    assert_eq!(deliveries.outlook(&[]).await?.1, 0, "nothing left to do");
    store
        .delete_expired("2028-01-01T00:00:00.000000Z", 0)
        .await?;
    assert!(deliveries.event(row.id, None, ALL).await?.is_none());
    Ok(())
}

async fn a_polled_attempt_is_not_counted_again_and_a_backlog_is_counted(
    store: Store,
) -> TestResult {
    let deliveries = store.deliveries();
    let (_, first) = deliveries
        .enqueue(event("r-2"), Some(lease("a", 1_000)), 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    let poll = Turn {
        id: first[0].id,
        owner: "a".into(),
        next: Next::Poll {
            polled: crate::store::deliveries::Polled {
                url: "https://example.com/result".into(),
                until_ms: 60_000,
                started_at: "2027-01-01T00:00:00.000000Z".into(),
                sealed_token: Some(vec![1, 2, 3]),
            },
            run_at_ms: 500,
        },
        log: None,
    };
    assert!(deliveries.finish(poll).await?);
    assert_eq!(deliveries.unfinished(1).await?, 2);
    assert_eq!(deliveries.unfinished(2).await?, 0);
    // A full backlog refuses the next event and writes nothing.
    assert!(deliveries
        .enqueue(event("r-refused"), None, 100, 2)
        .await?
        .is_none());
    assert_eq!(deliveries.unfinished(1).await?, 2);
    let polled = deliveries
        .claim(lease("b", 5_000), 500, 10, Vec::new())
        .await?;
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].delivery.attempt, 1, "a poll is no new attempt");
    assert_eq!(
        polled[0]
            .delivery
            .poll
            .as_ref()
            .and_then(|poll| poll.sealed_token.clone()),
        Some(vec![1, 2, 3])
    );
    // A poll interrupted by a kill is polled again, not logged as an interrupted attempt.
    let again = deliveries
        .claim(lease("c", 9_000), 5_001, 10, Vec::new())
        .await?;
    assert_eq!(again.len(), 1);
    assert!(!again[0].interrupted);
    Ok(())
}

async fn a_skipped_organizations_deliveries_are_left_for_later(store: Store) -> TestResult {
    let deliveries = store.deliveries();
    deliveries
        .enqueue(event("r-3"), None, 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    assert!(deliveries
        .claim(lease("a", 5_000), 100, 10, vec![1, 7])
        .await?
        .is_empty());
    let claimed = deliveries
        .claim(lease("a", 5_000), 100, 10, vec![7])
        .await?;
    assert_eq!(
        claimed.len(),
        1,
        "the first layer of organization 1's event"
    );
    Ok(())
}

async fn deliveries_given_back_together_are_ready_uncounted_and_only_if_still_held(
    store: Store,
) -> TestResult {
    let deliveries = store.deliveries();
    let mut fan_out = event("r-4");
    fan_out.deliveries = (1..=3)
        .map(|hook_id| NewDelivery {
            hook_id,
            layer: 0,
            ancestors: Vec::new(),
            max_attempts: 3,
        })
        .collect();
    let (_, first) = deliveries
        .enqueue(fan_out, Some(lease("a", 1_000)), 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    assert_eq!(first.len(), 3);
    let back = |id: u64, owner: &str| GivenBack {
        id,
        owner: owner.into(),
        uncount: true,
    };
    // Two held by "a" and one named with a claim that does not hold it: two go back.
    let given = vec![
        back(first[0].id, "a"),
        back(first[1].id, "a"),
        back(first[2].id, "x"),
    ];
    assert_eq!(deliveries.give_back(given, 200).await?, 2);
    assert_eq!(deliveries.give_back(Vec::new(), 200).await?, 0);
    assert!(deliveries
        .claim(lease("b", 5_000), 199, 10, Vec::new())
        .await?
        .is_empty());
    let again = deliveries
        .claim(lease("b", 5_000), 200, 10, Vec::new())
        .await?;
    let mut ids: Vec<u64> = again.iter().map(|one| one.delivery.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![first[0].id, first[1].id]);
    for one in &again {
        assert!(!one.interrupted);
        assert_eq!(
            one.delivery.attempt, 1,
            "the give-back took its attempt back; this claim counts it again"
        );
    }
    // The third is still "a"'s.
    let (_, all) = deliveries
        .event(first[0].event_id, None, ALL)
        .await?
        .ok_or("the event")?;
    let third = all
        .iter()
        .find(|delivery| delivery.id == first[2].id)
        .ok_or("the third")?;
    assert_eq!(third.lease_owner.as_deref(), Some("a"));
    Ok(())
}

/// Ten bytes of JSON in nine characters: a budget counted in characters would take it.
const FIRST: &str = r#"{"a":"é"}"#;
/// Seven bytes.
const SECOND: &str = r#"{"b":1}"#;

/// An event of hooks 1, 2 and 3, then hook 4 after them, whose first layer is done: hook 1
/// answered [`FIRST`], hook 2 [`SECOND`] and hook 3 nothing. Its id. Hook 2's delivery is
/// written first, so that the deliveries' ids are not in the plan's order (layer, then
/// hook): a read that took them in the ids' order would find hook 2's response first.
async fn answered_event(store: &Store) -> Result<u64, Box<dyn std::error::Error>> {
    let deliveries = store.deliveries();
    let mut answered = event("r-answered");
    answered.deliveries = [2, 1, 3]
        .into_iter()
        .map(|hook_id| NewDelivery {
            hook_id,
            layer: 0,
            ancestors: Vec::new(),
            max_attempts: 1,
        })
        .chain([NewDelivery {
            hook_id: 4,
            layer: 1,
            ancestors: vec![1, 2, 3],
            max_attempts: 1,
        }])
        .collect();
    let (row, first) = deliveries
        .enqueue(answered, Some(lease("a", 1_000)), 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    for delivery in first {
        let response = match delivery.hook_id {
            1 => Some(FIRST.to_owned()),
            2 => Some(SECOND.to_owned()),
            _ => None,
        };
        let done = Turn {
            id: delivery.id,
            owner: "a".into(),
            next: Next::Done {
                status: RunStatus::Completed,
                message: String::new(),
                response,
            },
            log: None,
        };
        assert!(deliveries.finish(done).await?);
    }
    Ok(row.id)
}

async fn an_events_responses_are_read_within_a_budget_of_bytes_and_those_past_it_marked(
    store: Store,
) -> TestResult {
    let id = answered_event(&store).await?;
    let read = |budget: u64| {
        let store = store.clone();
        async move {
            let (_, deliveries) = store
                .deliveries()
                .event(id, None, budget)
                .await?
                .ok_or("the event")?;
            let seen: Vec<(u64, Option<String>, bool)> = deliveries
                .into_iter()
                .map(|delivery| {
                    (
                        delivery.hook_id,
                        delivery.response,
                        delivery.response_omitted,
                    )
                })
                .collect();
            Ok::<_, Box<dyn std::error::Error>>(seen)
        }
    };
    let (first, second) = (Some(FIRST.to_owned()), Some(SECOND.to_owned()));
    assert_eq!(
        read(17).await?,
        vec![
            (1, first.clone(), false),
            (2, second, false),
            (3, None, false),
            (4, None, false),
        ],
        "both responses, 17 bytes, fit in 17"
    );
    assert_eq!(
        read(16).await?,
        vec![
            (1, first, false),
            (2, None, true),
            (3, None, false),
            (4, None, false),
        ],
        "the second is past the budget; those with no response are not marked"
    );
    assert_eq!(
        read(9).await?,
        vec![
            (1, None, true),
            (2, None, true),
            (3, None, false),
            (4, None, false),
        ],
        "the first is nine characters but ten bytes, and the budget is of bytes; past it, \
         every response after is left out too"
    );
    Ok(())
}

async fn a_deliverys_ancestors_responses_are_read_alone_in_its_order_within_a_budget(
    store: Store,
) -> TestResult {
    let id = answered_event(&store).await?;
    let deliveries = store.deliveries();
    let (first, second) = (FIRST.to_owned(), SECOND.to_owned());
    // Hook 3 answered nothing and hook 99 is not the event's: both are skipped.
    assert_eq!(
        deliveries.responses_of(id, vec![2, 3, 1, 99], 17).await?,
        ResponsesRead {
            responses: vec![(2, second.clone()), (1, first.clone())],
            omitted: Vec::new(),
        },
        "in the order asked"
    );
    assert_eq!(
        deliveries.responses_of(id, vec![2, 1], 16).await?,
        ResponsesRead {
            responses: vec![(2, second)],
            omitted: vec![1],
        }
    );
    assert_eq!(
        deliveries.responses_of(id, vec![1, 2], 9).await?,
        ResponsesRead {
            responses: Vec::new(),
            omitted: vec![1, 2],
        },
        "ten bytes are past a budget of nine, and the one after it is left out too"
    );
    assert_eq!(
        deliveries.responses_of(id, vec![1], 10).await?,
        ResponsesRead {
            responses: vec![(1, first)],
            omitted: Vec::new(),
        }
    );
    assert_eq!(
        deliveries.responses_of(id, Vec::new(), 10).await?,
        ResponsesRead::default()
    );
    assert_eq!(
        deliveries.responses_of(id + 1, vec![1, 2], 17).await?,
        ResponsesRead::default(),
        "another event's deliveries are not read"
    );
    Ok(())
}

/// An event of `organization` with one hook, whose delivery ends with `response` and
/// message `m`, finished; its id and the bytes it counts (its body, the response and the
/// message, and the 256 of each row).
async fn finished_event(
    store: &Store,
    organization: u64,
    request_id: &str,
    response: &str,
    finished_at: &str,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let deliveries = store.deliveries();
    let mut one = event(request_id);
    one.organization_id = organization;
    one.deliveries.truncate(1);
    let body_bytes = one.body.len() as u64;
    let (row, first) = deliveries
        .enqueue(one, Some(lease("a", 1_000)), 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    let done = Turn {
        id: first[0].id,
        owner: "a".into(),
        next: Next::Done {
            status: RunStatus::Completed,
            message: "m".into(),
            response: Some(response.to_owned()),
        },
        log: None,
    };
    assert!(deliveries.finish(done).await?);
    assert!(deliveries.close_event(row.id, finished_at).await?);
    Ok((row.id, body_bytes + 256 + response.len() as u64 + 1 + 256))
}

async fn finished_events_count_toward_their_organizations_usage_and_the_oldest_are_trimmed(
    store: Store,
) -> TestResult {
    let response = format!("{{\"pad\": \"{}\"}}", "é".repeat(500));
    let mut ours = Vec::new();
    for index in 0..3 {
        ours.push(finished_event(&store, 1, &format!("r-{index}"), &response, LONG_AGO).await?);
    }
    let (theirs, size) = finished_event(&store, 2, "r-theirs", &response, LONG_AGO).await?;
    assert!(ours.iter().all(|(_, each)| *each == size));
    assert_eq!(store.usage().of(Stored::Events, 1).await?, 3 * size);
    assert_eq!(store.usage().of(Stored::Events, 2).await?, size);
    // An unfinished event of ours counts nothing yet, and is never trimmed.
    let (unfinished, _) = store
        .deliveries()
        .enqueue(event("r-unfinished"), None, 100, BACKLOG)
        .await?
        .ok_or("the backlog has room")?;
    assert_eq!(store.usage().of(Stored::Events, 1).await?, 3 * size);

    // Over a quota of two and a bit: the oldest goes, with its deliveries.
    let trimmed = store
        .usage()
        .trim_over(Stored::Events, 2 * size + 1, 2 * size)
        .await?;
    assert_eq!(trimmed.len(), 1, "{trimmed:?}");
    assert_eq!((trimmed[0].organization, trimmed[0].rows), (1, 1));
    let deliveries = store.deliveries();
    assert!(deliveries.event_row(ours[0].0).await?.is_none());
    assert!(deliveries.states(ours[0].0).await?.is_empty());
    assert!(deliveries.event_row(ours[1].0).await?.is_some());
    assert_eq!(store.usage().of(Stored::Events, 1).await?, 2 * size);
    // Over a quota theirs is within, down to nothing: every finished one of ours goes,
    // the unfinished one stays.
    store.usage().trim_over(Stored::Events, size + 1, 0).await?;
    assert!(deliveries.event_row(ours[2].0).await?.is_none());
    assert!(deliveries.event_row(unfinished.id).await?.is_some());
    assert_eq!(store.usage().of(Stored::Events, 1).await?, 0);
    assert_eq!(store.usage().of(Stored::Events, 2).await?, size);

    // The retention takes what it deletes off the usage too.
    store
        .delete_expired("2028-01-01T00:00:00.000000Z", 0)
        .await?;
    assert!(deliveries.event_row(theirs).await?.is_none());
    assert_eq!(store.usage().of(Stored::Events, 2).await?, 0);

    // An event finished a moment ago is kept whatever the usage: its POST /events reads
    // it back to answer.
    let now = crate::model::now_rfc3339();
    let (fresh, _) = finished_event(&store, 3, "r-fresh", &response, &now).await?;
    let trimmed = store.usage().trim_over(Stored::Events, 1, 0).await?;
    assert_eq!(
        trimmed.iter().map(|t| t.rows).sum::<usize>(),
        0,
        "{trimmed:?}"
    );
    assert!(deliveries.event_row(fresh).await?.is_some());
    Ok(())
}

/// When the events of [`finished_events_count_toward_their_organizations_usage_and_the_oldest_are_trimmed`]
/// finished: long before the trims' grace.
const LONG_AGO: &str = "2025-01-01T00:00:01.000000Z";

on_both!(
    finished_events_count_toward_their_organizations_usage_and_the_oldest_are_trimmed,
    an_events_responses_are_read_within_a_budget_of_bytes_and_those_past_it_marked,
    a_deliverys_ancestors_responses_are_read_alone_in_its_order_within_a_budget,
    deliveries_given_back_together_are_ready_uncounted_and_only_if_still_held,
    a_lease_holds_until_it_runs_out_and_a_turn_ends_only_while_held,
    a_polled_attempt_is_not_counted_again_and_a_backlog_is_counted,
    a_skipped_organizations_deliveries_are_left_for_later,
);

/// Two stores on one schema (two replicas) claiming at once take disjoint deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claiming_at_once_take_disjoint_deliveries() -> TestResult {
    let (schema, first) = super::open_postgres().await?;
    let url: crate::store::db::postgres::PostgresUrl = schema.url().parse()?;
    let second = Store::open_postgres(&url, 4).await?;
    for index in 0..40 {
        first
            .deliveries()
            .enqueue(event(&format!("r-{index}")), None, 0, BACKLOG)
            .await?
            .ok_or("the backlog has room")?;
    }
    let claims: Vec<_> = (0..8)
        .map(|claimer| {
            let store = if claimer % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                store
                    .deliveries()
                    .claim(
                        lease(&format!("replica-{claimer}"), 9_000),
                        1,
                        10,
                        Vec::new(),
                    )
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await??.into_iter().map(|claimed| claimed.delivery.id));
    }
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "a delivery claimed twice");
    assert_eq!(claimed, 40, "every first layer's delivery claimed once");
    Ok(())
}
