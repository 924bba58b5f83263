//! The error an extension returns: a message for the run log.

use std::fmt;

/// Why an extension could not handle a call. The message goes to the run log, and the run
/// is recorded as failed. Any standard error converts into it, so `?` works on serde, I/O
/// and parsing errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    /// The error for a payload key the extension needs and did not get.
    ///
    /// ```
    /// let error = wasmhook_sdk::Error::missing("annotation.content");
    /// assert_eq!(error.to_string(), "the payload has no `annotation.content`");
    /// ```
    pub fn missing(key: &str) -> Self {
        Error::new(format!("the payload has no `{key}`"))
    }

    /// The message, as the run log will show it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Error::new(error.to_string())
    }
}
