//! Schedules across replicas: two stores on one PostgreSQL schema (two replicas) claiming
//! the same tick at once run it once.

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::json;

use super::{open_postgres, save, TestResult};
use crate::store::db::postgres::PostgresUrl;
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
                tokio::spawn(async move {
                    store
                        .schedules()
                        .claim(hook.id, "*/10 * * * *", tick, saved)
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for claim in claims {
            if claim.await?? {
                won += 1;
            }
        }
        assert_eq!(won, 1, "round {round}: one claim of sixteen runs the tick");
    }
    Ok(())
}
