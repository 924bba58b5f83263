//! What came of a call, as types: the caller decides what each means for its run log.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// Everything known about one finished call.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// stdout, stderr and log lines in the order written, secrets redacted, truncated at the
    /// call's output limit (with a marker saying how much was dropped).
    pub output: String,
    /// Whether output was dropped.
    pub output_truncated: bool,
    /// When the call started (wall clock).
    pub started_at: SystemTime,
    /// How long it took, instantiation included.
    pub duration: Duration,
}

/// How a call ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The guest answered with a JSON object.
    Completed {
        /// The response, parsed; within [`CallLimits::response_bytes`](super::CallLimits).
        response: Map<String, Value>,
    },
    /// The guest failed; the reason says how.
    Failed(Failure),
    /// The call ran past its time limit and was stopped.
    Timeout {
        /// The limit it ran past.
        limit: Duration,
    },
    /// The guest asked for more memory than its limit.
    MemoryLimitExceeded {
        /// The limit it met, in bytes ([`CallLimits::memory_bytes`](super::CallLimits)).
        limit_bytes: u64,
        /// What the guest or the trap said when it happened.
        detail: String,
    },
}

impl Outcome {
    /// Whether the call produced a response.
    pub fn is_completed(&self) -> bool {
        matches!(self, Outcome::Completed { .. })
    }

    /// A sentence a person can act on; empty for a completed call.
    pub fn message(&self) -> String {
        match self {
            Outcome::Completed { .. } => String::new(),
            Outcome::Failed(failure) => failure.to_string(),
            Outcome::Timeout { limit } => format!(
                "the extension ran past its time limit of {} and was stopped",
                humanize(*limit)
            ),
            Outcome::MemoryLimitExceeded {
                limit_bytes,
                detail,
            } => {
                let mut message = format!(
                    "the extension exceeded its memory limit of {} MiB",
                    limit_bytes / (1024 * 1024)
                );
                if !detail.is_empty() {
                    message.push_str(": ");
                    message.push_str(detail);
                }
                message
            }
        }
    }
}

fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Why a call failed. Every text in it has had secrets redacted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// `handle` returned an error.
    #[error("the extension returned an error: {0}")]
    Guest(String),
    /// The guest trapped (a panic, an unreachable, a stack overflow...).
    #[error("{0}")]
    Trap(TrapReport),
    /// The response does not parse as JSON (serde's reason).
    #[error("the response is not valid JSON: {0}")]
    ResponseNotJson(String),
    /// The response was JSON but not an object.
    #[error("the response must be a JSON object, not {0}")]
    ResponseNotObject(&'static str),
    /// The response was larger than allowed.
    #[error("the response is {size} bytes, over the limit of {limit} bytes")]
    ResponseTooLarge {
        /// Its size (at least).
        size: u64,
        /// The largest accepted, in bytes ([`CallLimits::response_bytes`](super::CallLimits)).
        limit: usize,
    },
    /// A command exited with a non-zero code.
    #[error("the command exited with code {code}{}", tail_suffix(.stderr_tail))]
    Exit {
        /// What the command passed to `exit`.
        code: i32,
        /// The last lines of its stderr, where a command says why it failed.
        stderr_tail: String,
    },
    /// The instruction budget ran out.
    #[error("the extension used up its instruction budget of {budget} units")]
    FuelExhausted {
        /// The budget it was given, in fuel units ([`CallLimits::fuel`](super::CallLimits)).
        budget: u64,
    },
    /// The host could not run the call (e.g. the instance pool is exhausted).
    #[error("the host could not run the extension: {0}")]
    Host(String),
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; stderr ends with:\n{}", tail.trim_end())
    }
}

/// A trap, with what the guest said before it and where it happened.
#[derive(Debug, Clone)]
pub struct TrapReport {
    /// wasmtime's description of the trap.
    pub description: String,
    /// A Rust guest's panic message, read from its stderr.
    pub panic: Option<String>,
    /// The wasm backtrace with function names.
    pub backtrace: Option<String>,
}

impl std::fmt::Display for TrapReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.panic {
            Some(panic) => write!(f, "the extension panicked: {panic}")?,
            None => write!(f, "the extension trapped: {}", self.description)?,
        }
        if let Some(backtrace) = &self.backtrace {
            write!(f, "\n{}", backtrace.trim_end())?;
        }
        Ok(())
    }
}

/// Parses a guest's response text, checking size, syntax and shape.
pub(crate) fn parse_response(text: &str, limit: usize) -> Result<Map<String, Value>, Failure> {
    if text.len() > limit {
        return Err(Failure::ResponseTooLarge {
            size: text.len() as u64,
            limit,
        });
    }
    let value: Value =
        serde_json::from_str(text).map_err(|error| Failure::ResponseNotJson(error.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Array(_) => Err(Failure::ResponseNotObject("an array")),
        Value::String(_) => Err(Failure::ResponseNotObject("a string")),
        Value::Number(_) => Err(Failure::ResponseNotObject("a number")),
        Value::Bool(_) => Err(Failure::ResponseNotObject("a boolean")),
        Value::Null => Err(Failure::ResponseNotObject("null")),
    }
}

/// Finds a Rust panic message (`thread '...' panicked at file:line:col:\nmessage`) in stderr.
pub(crate) fn panic_message(stderr: &str) -> Option<String> {
    let at = stderr.rfind("panicked at ")?;
    let start = stderr[..at].rfind('\n').map_or(0, |newline| newline + 1);
    let text = &stderr[start..];
    let end = text.find("\nnote: ").unwrap_or(text.len());
    Some(text[..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_must_be_small_json_objects() {
        assert!(parse_response(r#"{"messages": []}"#, 100).is_ok());
        assert!(matches!(
            parse_response("[1]", 100),
            Err(Failure::ResponseNotObject("an array"))
        ));
        assert!(matches!(
            parse_response("{nope", 100),
            Err(Failure::ResponseNotJson(_))
        ));
        assert!(matches!(
            parse_response(r#"{"a": "0123456789"}"#, 5),
            Err(Failure::ResponseTooLarge { size: 19, limit: 5 })
        ));
    }

    #[test]
    fn finds_the_panic_message_in_stderr() {
        let stderr = "log line\nthread '<unnamed>' panicked at src/lib.rs:10:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("thread '<unnamed>' panicked at src/lib.rs:10:5:\nboom")
        );
        assert_eq!(panic_message("all fine"), None);
    }
}
