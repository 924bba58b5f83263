//! Scheduled hooks: every active hook with `config.schedule` (function, webhook or job) is
//! run with `invocation.scheduled` once per tick of its cron expression, in UTC.
//!
//! Each pass reads the clock, finds each hook's latest tick at or before now, and claims it
//! in the database (`store::schedules`) before running: a tick runs once even when the
//! server restarts in between, and ticks missed while it was down run once, not once each.
//! The claim enqueues the tick's run as a delivery in the same transaction
//! (`dispatch::deliveries`): runs are non-interactive, so a failed one is retried as the
//! hook's `retry_count` says, by whichever replica claims the delivery.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::deliveries::{scheduled_event, unix_ms};
use super::Dispatcher;
use crate::model::schedule::Schedule;
use crate::model::EventAction;
use crate::store::schedules::{Claim, Tick};

/// Where the scheduler reads the time.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's clock.
    System,
    /// An RFC 3339 time read from this file at every pass: for tests, which move time
    /// forward by writing the file instead of waiting ten minutes.
    File(PathBuf),
}

impl Clock {
    /// Now, by this clock; none when the file cannot be read.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        match self {
            Clock::System => Some(Utc::now()),
            Clock::File(path) => {
                let text = std::fs::read_to_string(path).ok()?;
                DateTime::parse_from_rfc3339(text.trim())
                    .ok()
                    .map(|time| time.with_timezone(&Utc))
            }
        }
    }

    /// How often the clock is looked at.
    fn pass_every(&self) -> Duration {
        match self {
            Clock::System => Duration::from_secs(1),
            Clock::File(_) => Duration::from_millis(100),
        }
    }
}

/// Runs the schedules of every organization until the future is dropped.
pub async fn run_schedules(dispatcher: Arc<Dispatcher>, clock: Clock) {
    let scheduled = EventAction::new("invocation", "scheduled");
    let Ok(scheduled) = scheduled else {
        tracing::error!("invocation.scheduled is not a known event; schedules are off");
        return;
    };
    let mut checked = Checked::default();
    loop {
        if let Some(now) = clock.now() {
            if let Err(error) = pass(&dispatcher, &scheduled, now, &mut checked).await {
                tracing::warn!("scheduler: {error}");
            }
        }
        tokio::time::sleep(clock.pass_every()).await;
    }
}

/// The latest tick already looked at in the database, per hook and expression: a pass
/// touches the database again only for a hook whose latest tick has moved on.
type Checked = HashMap<u64, (String, DateTime<Utc>)>;

/// One look at every scheduled hook: claims and starts the runs that are due. Reads one
/// row per scheduled hook; writes only for a new tick.
async fn pass(
    dispatcher: &Arc<Dispatcher>,
    scheduled: &EventAction,
    now: DateTime<Utc>,
    checked: &mut Checked,
) -> Result<(), crate::store::StoreError> {
    let rows = dispatcher.store().hooks().schedules().await?;
    checked.retain(|id, _| rows.iter().any(|row| row.hook_id == *id));
    for row in rows {
        let Ok(schedule) = Schedule::saved(&row.expression) else {
            continue;
        };
        let Some(latest) = schedule.latest_at_or_before(now) else {
            continue;
        };
        if checked.get(&row.hook_id) == Some(&(row.expression.clone(), latest)) {
            continue;
        }
        let counted_from = DateTime::parse_from_rfc3339(&row.modified_at)
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or(now);
        // The run is enqueued with the claim: any replica's worker takes it, and a
        // restart between the claim and the run loses nothing.
        let Some(hook) = dispatcher.store().hook(row.hook_id).await? else {
            continue;
        };
        let tick = Tick {
            hook_id: row.hook_id,
            expression: row.expression.clone(),
            latest,
            counted_from,
        };
        let run = scheduled_event(&hook, scheduled);
        let backlog = dispatcher.settings.unfinished_per_organization;
        let claimed = dispatcher
            .store()
            .schedules()
            .claim(tick, run, unix_ms(), backlog)
            .await?;
        checked.insert(row.hook_id, (row.expression, latest));
        match claimed {
            Claim::Enqueued => dispatcher.wake.notify_one(),
            Claim::Skipped => tracing::warn!(
                hook = row.hook_id,
                organization = hook.organization_id,
                "a scheduled run was skipped: the organization has {backlog} unfinished \
                 deliveries or more"
            ),
            Claim::NotDue => {}
        }
    }
    Ok(())
}
