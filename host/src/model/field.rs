//! Where in a request a rule was broken, as data: the field a client sent and, inside a
//! JSON field such as a hook's `config`, the keys down to the value.
//!
//! Validation errors carry a [`FieldPath`] beside their message so that the API renders
//! them in Django REST Framework's shape (`{"field": ["message"]}`) by reading the path,
//! never the message. The keys are kept apart, not joined and split again, so a key with a
//! dot in it (a secret's name) stays one key.

use std::fmt;

/// A field of a request, and the keys inside it when the field is a JSON object (for
/// `config.schedule.cron`: the field `config`, then the keys `schedule` and `cron`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    field: String,
    keys: Vec<String>,
}

impl FieldPath {
    /// A top-level field of the request, as the client named it (`name`, `queues`): taken
    /// whole, never split at dots.
    pub fn new(field: impl Into<String>) -> Self {
        FieldPath {
            field: field.into(),
            keys: Vec::new(),
        }
    }

    /// The same path one key deeper (`config`, then `timeout_s`).
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// The top-level field: the key of DRF's error object.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The keys inside the field, outermost first; empty when the path is the field itself.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

impl fmt::Display for FieldPath {
    /// The path as messages and logs write it: `config.schedule.cron`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field)?;
        for key in &self.keys {
            write!(f, ".{key}")?;
        }
        Ok(())
    }
}

/// Compares with the path as written (`config.timeout_s`), so that a test names a field
/// the way a message shows it. Only for comparing: nothing splits a written path.
impl PartialEq<&str> for FieldPath {
    fn eq(&self, written: &&str) -> bool {
        let mut rest: &str = written;
        for (index, part) in std::iter::once(&self.field).chain(&self.keys).enumerate() {
            if index > 0 {
                match rest.strip_prefix('.') {
                    Some(after) => rest = after,
                    None => return false,
                }
            }
            match rest.strip_prefix(part.as_str()) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn a_path_is_written_with_dots_and_compared_as_written() {
        let path = FieldPath::new("config").key("schedule").key("cron");
        assert_eq!(path.to_string(), "config.schedule.cron");
        assert_eq!(path, "config.schedule.cron");
        assert_ne!(path, "config.schedule");
        assert_ne!(path, "config.schedule.cron.x");
        assert_eq!(path.field(), "config");
        assert_eq!(path.keys(), ["schedule", "cron"]);
        // A key with a dot in it is one key.
        let secret = FieldPath::new("secrets").key("a.b");
        assert_eq!(secret.keys(), ["a.b"]);
        assert_eq!(FieldPath::new("name"), "name");
    }
}
