//! `config.schedule`: `{"cron": "<five fields>"}` in UTC, firing no more often than every
//! ten minutes, as Rossum allows.
//!
//! Parsing and occurrences are croner's (a maintained cron library with previous and next
//! occurrences, which the scheduler needs to find the latest tick it missed).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// The shortest interval between two runs a schedule may have.
pub const MIN_INTERVAL: Duration = Duration::from_secs(600);

/// Occurrences looked at when checking the interval: a schedule at most every ten minutes
/// fires at most 52,704 times in a leap year; more means a shorter interval somewhere.
const MOST_OCCURRENCES_CHECKED: usize = 52_704 + 1;

/// Why a cron expression is refused; the message is what the client reads beside
/// `config.schedule.cron`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not five cron fields.
    #[error("`{expression}` is not a five-field cron expression: {reason}")]
    Syntax {
        /// The expression as written.
        expression: String,
        /// croner's reason.
        reason: String,
    },
    /// Two ticks closer than [`MIN_INTERVAL`].
    #[error("`{expression}` fires at {first} and again at {second}: at most once every {minutes} minutes")]
    TooOften {
        /// The expression as written.
        expression: String,
        /// The first of the two ticks, `HH:MM`.
        first: String,
        /// The second, `HH:MM`.
        second: String,
        /// The shortest interval allowed, in minutes.
        minutes: u64,
    },
    /// No tick in a whole year (a 31st of February).
    #[error("`{expression}` never fires")]
    Never {
        /// The expression as written.
        expression: String,
    },
}

/// A job's `config.schedule.cron`, parsed: when it runs. Two schedules are equal when
/// their expressions are.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    expression: String,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Schedule {
    /// Parses a five-field cron expression (minute, hour, day of month, month, day of week)
    /// and checks that it fires, and never twice within ten minutes. The error says why.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let schedule = Schedule::saved(expression)?;
        schedule.check_interval()?;
        Ok(schedule)
    }

    /// Parses an expression that [`Schedule::parse`] accepted when its hook was saved,
    /// without walking a year of ticks again (the scheduler reads schedules every second).
    pub fn saved(expression: &str) -> Result<Self, ScheduleError> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(expression)
            .map_err(|error| ScheduleError::Syntax {
                expression: expression.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Schedule {
            cron,
            expression: expression.trim().to_owned(),
        })
    }

    /// The expression as written, trimmed.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The latest tick at or before `now`.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&now, true).ok()
    }

    /// The first tick after `time`.
    pub fn next_after(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&time, false).ok()
    }

    /// Walks a whole leap year (and into the next, so that a year's end is crossed) and
    /// refuses the first gap under [`MIN_INTERVAL`].
    fn check_interval(&self) -> Result<(), ScheduleError> {
        let Some(start) = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).single() else {
            return Ok(());
        };
        let end = start + chrono::Duration::days(367);
        let minimum = chrono::Duration::from_std(MIN_INTERVAL).unwrap_or(chrono::Duration::MAX);
        let mut previous: Option<DateTime<Utc>> = None;
        let mut seen = 0usize;
        for tick in self.cron.iter_from(start, croner::Direction::Forward) {
            if tick > end {
                break;
            }
            if let Some(previous) = previous {
                if tick - previous < minimum {
                    return Err(ScheduleError::TooOften {
                        expression: self.expression.clone(),
                        first: previous.format("%H:%M").to_string(),
                        second: tick.format("%H:%M").to_string(),
                        minutes: MIN_INTERVAL.as_secs() / 60,
                    });
                }
            }
            previous = Some(tick);
            seen += 1;
            if seen > MOST_OCCURRENCES_CHECKED {
                break;
            }
        }
        if previous.is_none() {
            return Err(ScheduleError::Never {
                expression: self.expression.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_minutes_or_more_is_accepted() -> Result<(), Box<dyn std::error::Error>> {
        for expression in [
            "*/10 * * * *",
            "0 * * * *",
            "30 2 * * 1-5",
            "0 0 1 * *",
            "0,30 9-17 * * *",
        ] {
            Schedule::parse(expression)?;
        }
        Ok(())
    }

    #[test]
    fn shorter_intervals_and_nonsense_are_refused_with_the_reason() {
        for (expression, reason) in [
            ("* * * * *", "at most once every 10 minutes"),
            ("*/5 * * * *", "at most once every 10 minutes"),
            ("0,55 0,23 * * *", "at most once every 10 minutes"),
            ("0 0 31 2 *", "never fires"),
            ("every day", "not a five-field cron expression"),
            ("0 0 0 * * *", "not a five-field cron expression"),
        ] {
            match Schedule::parse(expression) {
                Ok(_) => panic!("{expression} was accepted"),
                Err(error) => assert!(error.to_string().contains(reason), "{expression}: {error}"),
            }
        }
    }

    #[test]
    fn the_latest_tick_is_found() -> Result<(), Box<dyn std::error::Error>> {
        let schedule = Schedule::parse("*/10 * * * *")?;
        let now = Utc
            .with_ymd_and_hms(2027, 3, 1, 12, 34, 56)
            .single()
            .ok_or("a time")?;
        let latest = schedule.latest_at_or_before(now).ok_or("a tick")?;
        assert_eq!(latest.to_rfc3339(), "2027-03-01T12:30:00+00:00");
        let next = schedule.next_after(latest).ok_or("a tick")?;
        assert_eq!(next.to_rfc3339(), "2027-03-01T12:40:00+00:00");
        Ok(())
    }
}
