//! Writing lines to the run log's `output`.
//!
//! In a component the lines go through the host's `log` import with their level; in the
//! command form they go to stderr as `[level] message`, which the host also captures.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`crate::command::run`]: there is no host import to call, only stderr.
static COMMAND_FORM: AtomicBool = AtomicBool::new(false);

pub(crate) fn use_stderr() {
    COMMAND_FORM.store(true, Ordering::Relaxed);
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Details for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that did not stop the extension.
    Warning,
    /// Something that went wrong.
    Error,
}

/// Writes one line at a level.
pub fn write(level: Level, message: &str) {
    #[cfg(feature = "component")]
    if !COMMAND_FORM.load(Ordering::Relaxed) {
        use crate::bindings::wasmhook::extension::types::Level as Wit;
        let wit = match level {
            Level::Debug => Wit::Debug,
            Level::Info => Wit::Info,
            Level::Warning => Wit::Warning,
            Level::Error => Wit::Error,
        };
        crate::bindings::wasmhook::extension::host::log(wit, message);
        return;
    }
    let level = match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
    };
    eprintln!("[{level}] {message}");
}

/// Writes a debug line.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message.as_ref());
}

/// Writes an info line.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message.as_ref());
}

/// Writes a warning line.
pub fn warning(message: impl AsRef<str>) {
    write(Level::Warning, message.as_ref());
}

/// Writes an error line.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message.as_ref());
}
