//! Schedules across replicas: two stores on one PostgreSQL schema (two replicas) claiming
//! the same tick at once run it once.

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::json;

use super::{open_postgres, save, TestResult};
use crate::store::db::postgres::PostgresUrl;
use crate::store::deliveries::{Lease, NewDelivery, NewEvent};
use crate::store::schedules::{Claim, Tick};
use crate::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claiming_a_tick_at_once_run_it_once() -> TestResult {
    let (schema, first) = open_postgres().await?;
    let url: PostgresUrl = schema.url().parse()?;
    let second = Store::open_postgres(&url, 4).await?;
    let organization = first.organizations().create("ticks", "now").await?.id;
    let hook = save(&first, organization, json!({"name": "ticking"})).await?;
    let tick = Utc
        .with_ymd_and_hms(2027, 1, 1, 12, 10, 0)
        .single()
        .ok_or("a time")?;
    let saved = tick - TimeDelta::minutes(5);
    for (round, tick) in [tick, tick + TimeDelta::minutes(10)]
        .into_iter()
        .enumerate()
    {
        let claims: Vec<_> = (0..16)
            .map(|claim| {
                let store = if claim % 2 == 0 {
                    first.clone()
                } else {
                    second.clone()
                };
                let run = scheduled_run(organization, hook.id, claim);
                let tick = Tick {
                    hook_id: hook.id,
                    expression: "*/10 * * * *".into(),
                    latest: tick,
                    counted_from: saved,
                };
                tokio::spawn(async move { store.schedules().claim(tick, run, 0, 1000).await })
            })
            .collect();
        let mut won = 0;
        for claim in claims {
            if claim.await?? == Claim::Enqueued {
                won += 1;
            }
        }
        assert_eq!(won, 1, "round {round}: one claim of sixteen runs the tick");
    }
    // Each tick won enqueued its one delivery, and no lost claim enqueued any.
    let claimed = first
        .deliveries()
        .claim(
            Lease {
                owner: "test".into(),
                until_ms: i64::MAX,
            },
            1,
            100,
            Vec::new(),
        )
        .await?;
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert!(claimed
        .iter()
        .all(|claimed| claimed.delivery.hook_id == hook.id && claimed.delivery.attempt == 1));
    Ok(())
}

/// The event a claim of a tick enqueues (its request id names the claimer).
fn scheduled_run(organization: u64, hook_id: u64, claimer: usize) -> NewEvent {
    NewEvent {
        organization_id: organization,
        request_id: format!("claim-{claimer}"),
        event: "invocation".into(),
        action: "scheduled".into(),
        queue_id: None,
        body: "{}".into(),
        created_at: "2027-01-01T12:10:00Z".into(),
        deliveries: vec![NewDelivery {
            hook_id,
            layer: 0,
            ancestors: Vec::new(),
            max_attempts: 1,
        }],
    }
}

/// A tick of an organization whose backlog is full is recorded as run, but nothing is
/// enqueued: the scheduler cannot grow the queue past the bound `POST /events` keeps.
async fn a_tick_of_an_organization_with_a_full_backlog_is_skipped(store: Store) -> TestResult {
    let organization = store.organizations().create("busy", "now").await?.id;
    let hook = save(&store, organization, json!({"name": "ticking"})).await?;
    let latest = Utc
        .with_ymd_and_hms(2027, 1, 1, 12, 10, 0)
        .single()
        .ok_or("a time")?;
    let tick = |latest| Tick {
        hook_id: hook.id,
        expression: "*/10 * * * *".into(),
        latest,
        counted_from: latest - TimeDelta::minutes(5),
    };
    // A backlog of one: the first tick's run fills it.
    let run = |claimer| scheduled_run(organization, hook.id, claimer);
    let schedules = store.schedules();
    assert_eq!(
        schedules.claim(tick(latest), run(0), 0, 1).await?,
        Claim::Enqueued
    );
    let next = latest + TimeDelta::minutes(10);
    assert_eq!(
        schedules.claim(tick(next), run(1), 0, 1).await?,
        Claim::Skipped
    );
    // Recorded: the same tick is not claimed again once the backlog drains.
    assert_eq!(
        schedules.claim(tick(next), run(2), 0, 10).await?,
        Claim::NotDue
    );
    assert_eq!(store.deliveries().unfinished(organization).await?, 1);
    Ok(())
}

on_both!(a_tick_of_an_organization_with_a_full_backlog_is_skipped);
