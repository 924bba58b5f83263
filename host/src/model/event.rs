//! The events of Rossum's hook API, and the `event.action` pairs a call is made for.

use std::fmt;
use std::str::FromStr;

/// Every event with its actions, as Rossum's API lists them.
pub const EVENTS: &[(&str, &[&str])] = &[
    ("annotation_status", &["changed"]),
    (
        "annotation_content",
        &[
            "initialize",
            "started",
            "user_update",
            "updated",
            "confirm",
            "export",
        ],
    ),
    ("upload", &["created"]),
    ("email", &["received"]),
    ("invocation", &["scheduled", "manual"]),
];

/// An event and one of its actions, e.g. `annotation_content.initialize`; only known pairs
/// can be made.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventAction {
    event: &'static str,
    action: &'static str,
}

/// Why an event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not `event.action`.
    #[error("`{0}` is not of the form EVENT.ACTION (e.g. annotation_content.initialize)")]
    Malformed(String),
    /// The event is not one of Rossum's.
    #[error("unknown event `{event}`; known events: {known}")]
    UnknownEvent {
        /// What was given.
        event: String,
        /// The known ones, comma-separated.
        known: String,
    },
    /// The event exists but has no such action.
    #[error("unknown action `{action}` for event `{event}`; its actions: {known}")]
    UnknownAction {
        /// The event, which is known: only its action is wrong.
        event: String,
        /// What was given.
        action: String,
        /// The event's actions, comma-separated.
        known: String,
    },
}

impl EventAction {
    /// The pair, if both are known.
    pub fn new(event: &str, action: &str) -> Result<Self, EventError> {
        let (event, actions) = EVENTS
            .iter()
            .find(|(name, _)| *name == event)
            .ok_or_else(|| EventError::UnknownEvent {
                event: event.to_owned(),
                known: EVENTS
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let action = actions
            .iter()
            .find(|name| **name == action)
            .ok_or_else(|| EventError::UnknownAction {
                event: (*event).to_owned(),
                action: action.to_owned(),
                known: actions.join(", "),
            })?;
        Ok(EventAction { event, action })
    }

    /// The event, e.g. `annotation_content`.
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// The action, e.g. `initialize`.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// Whether a user is waiting on the answer; interactive calls are never retried.
    pub fn is_interactive(&self) -> bool {
        self.event == "annotation_content"
            && matches!(
                self.action,
                "started" | "user_update" | "updated" | "confirm"
            )
            || (self.event == "invocation" && self.action == "manual")
    }
}

impl FromStr for EventAction {
    type Err = EventError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (event, action) = text
            .split_once('.')
            .ok_or_else(|| EventError::Malformed(text.to_owned()))?;
        EventAction::new(event, action)
    }
}

impl fmt::Display for EventAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.event, self.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_pairs_and_names_the_problem_otherwise() {
        let parsed: Result<EventAction, _> = "annotation_content.initialize".parse();
        assert_eq!(
            parsed.map(|e| e.to_string()).as_deref(),
            Ok("annotation_content.initialize")
        );
        assert!(matches!(
            "nope".parse::<EventAction>(),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            "annotation.initialize".parse::<EventAction>(),
            Err(EventError::UnknownEvent { .. })
        ));
        let error = "upload.deleted"
            .parse::<EventAction>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown action `deleted` for event `upload`; its actions: created")
        );
    }

    #[test]
    fn interactive_events_are_the_ones_a_user_waits_on() -> Result<(), EventError> {
        assert!(EventAction::new("annotation_content", "updated")?.is_interactive());
        assert!(!EventAction::new("annotation_content", "initialize")?.is_interactive());
        assert!(!EventAction::new("upload", "created")?.is_interactive());
        Ok(())
    }
}
