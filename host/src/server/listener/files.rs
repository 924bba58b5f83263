//! The open-file limit and the connection cap it sets: the soft limit is raised to the hard
//! one at start, and connections are capped below it by `FILE_RESERVE`, so that neither
//! `accept` nor the database, module files or outgoing sockets run out of file
//! descriptors. Apart from the accept loop because it is arithmetic on the process's
//! limits, done once at start and tested without a socket.

use tokio::sync::Semaphore;

/// Open files kept for everything but client connections: the database and its WAL, module
/// files and compiled artifacts, outgoing webhook and guest sockets, the log. With the
/// connections capped at the open-file limit less this, `accept` never fails for want of a
/// file descriptor, and neither does anything else.
pub const FILE_RESERVE: usize = 1024;

/// Raises the open-file soft limit to the hard limit, and returns the soft limit then in
/// force (`None`: unlimited). A failure keeps the limit as it was, with a warning.
pub(super) fn raise_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(
                "cannot raise the open-file limit from {:?} to {:?}: {error}",
                before.current,
                before.maximum
            );
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The connections served at once: as configured, but never so many that they would take
/// the file descriptors of `FILE_RESERVE` (with a small limit, half of it), and at least one.
pub(super) fn connection_cap(configured: usize, file_limit: Option<u64>) -> usize {
    let by_files = match file_limit {
        None => usize::MAX,
        Some(limit) => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if limit > 2 * FILE_RESERVE {
                limit - FILE_RESERVE
            } else {
                limit / 2
            }
        }
    };
    configured.min(by_files).clamp(1, Semaphore::MAX_PERMITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_keeps_a_reserve_of_files() {
        assert_eq!(connection_cap(16_384, Some(20_000)), 16_384);
        assert_eq!(
            connection_cap(usize::MAX, Some(20_000)),
            20_000 - FILE_RESERVE
        );
        // A small limit: half of it for connections.
        assert_eq!(connection_cap(16_384, Some(1024)), 512);
        assert_eq!(connection_cap(16_384, Some(0)), 1);
        assert_eq!(connection_cap(10, None), 10);
    }
}
