//! Scheduled hooks: every active hook with `config.schedule` (function, webhook or job) is
//! run with `invocation.scheduled` once per tick of its cron expression, in UTC.
//!
//! Each pass reads the clock, finds each hook's latest tick at or before now, and claims it
//! in the database (`store::schedules`) before running: a tick runs once even when the
//! server restarts in between, and ticks missed while it was down run once, not once each.
//! Runs are non-interactive, so a failed one is retried as the hook's `retry_count` says.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Map;

use super::Dispatcher;
use crate::model::hook::Hook;
use crate::model::schedule::Schedule;
use crate::model::EventAction;

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
        let due = dispatcher
            .store()
            .schedules()
            .claim(row.hook_id, &row.expression, latest, counted_from)
            .await?;
        checked.insert(row.hook_id, (row.expression, latest));
        if due {
            if let Some(hook) = dispatcher.store().hook(row.hook_id).await? {
                tokio::spawn(run_once(
                    Arc::clone(dispatcher),
                    Hook::clone(&hook),
                    scheduled.clone(),
                ));
            }
        }
    }
    Ok(())
}

/// How long a scheduled run waits for its organization's turn before it is given up.
const TURN_WAIT: Duration = Duration::from_secs(60);

async fn run_once(dispatcher: Arc<Dispatcher>, hook: Hook, scheduled: EventAction) {
    // A tick is its own request: every attempt of its run shares this id.
    let request_id = uuid::Uuid::new_v4().to_string();
    let waited = tokio::time::Instant::now();
    let permit = loop {
        match dispatcher.limits().try_acquire(
            hook.organization_id,
            1,
            crate::dispatch::limits::reserved_mb(&hook),
        ) {
            Ok(permit) => break permit,
            Err(_) if waited.elapsed() < TURN_WAIT => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => {
                let reason = format!(
                    "not run: the organization's runs or memory stayed at their limit for {} s",
                    TURN_WAIT.as_secs()
                );
                if let Err(error) = dispatcher
                    .cancel(&hook, &scheduled, &Map::new(), None, &request_id, &reason)
                    .await
                {
                    tracing::warn!("scheduled run of hook {} {reason}: {error}", hook.id);
                }
                return;
            }
        }
    };
    if let Err(error) = dispatcher
        .run_retrying(permit, &hook, &scheduled, &Map::new(), None, &request_id)
        .await
    {
        tracing::warn!("scheduled run of hook {} not run: {error}", hook.id);
    }
}
