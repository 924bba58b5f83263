//! Turns for answers about a non-interactive event (`GET /events/{id}`): one of an
//! organization's at a time, and a few of the installation's.
//!
//! Such an answer holds up to `dispatch::ANSWERED_RESPONSE_BYTES` (8 MiB) of its event's
//! responses, parsed: a response of 8 MiB of small objects (`"operations": [{}, {}, ...]`)
//! is millions of values, hundreds of MiB in memory while the answer is rendered. The read
//! costs no run and any member may ask as often as it likes, from as many connections as the
//! listener lets it have: without turns, a tenant's answers at once were bounded only by
//! its connections. An organization's second answer at once is refused at once (429); the
//! installation's answers at once wait for a turn up to [`TURN_WAIT`], then are refused.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::error::ApiError;
use crate::keyed::KeyedSemaphores;

/// Answers about events rendered at once, every organization's together.
pub const ANSWERS_AT_ONCE: usize = 2;

/// How long an answer waits for one of the installation's turns before it is refused.
const TURN_WAIT: Duration = Duration::from_secs(2);

/// The turns; one per server, shared by its requests.
#[derive(Debug)]
pub struct AnswerTurns {
    organizations: KeyedSemaphores<u64>,
    installation: Arc<Semaphore>,
    /// How long an answer waits for one of the installation's turns.
    wait: Duration,
}

/// An answer's turn: its organization's and one of the installation's, given back when
/// dropped, once the answer is rendered to bytes.
#[derive(Debug)]
pub struct AnswerTurn {
    _organization: OwnedSemaphorePermit,
    _installation: OwnedSemaphorePermit,
}

impl Default for AnswerTurns {
    fn default() -> Self {
        AnswerTurns::new(ANSWERS_AT_ONCE, TURN_WAIT)
    }
}

impl AnswerTurns {
    /// Turns for `at_once` answers of the installation at a time, each waited for up to
    /// `wait`, and one of an organization's.
    pub fn new(at_once: usize, wait: Duration) -> Self {
        AnswerTurns {
            organizations: KeyedSemaphores::new(1),
            installation: Arc::new(Semaphore::new(at_once.max(1))),
            wait,
        }
    }

    /// A turn for an answer about an event of `organization`: at once, or refused
    /// (429) when the organization's is taken or none of the installation's comes within
    /// its wait ([`TURN_WAIT`] by default).
    pub async fn take(&self, organization: u64) -> Result<AnswerTurn, ApiError> {
        let busy = |what: &str| ApiError::TooManyRequests {
            detail: format!("{what} is being answered about an event; ask again in a second"),
            retry_after_s: 1,
        };
        let organization = self
            .organizations
            .try_acquire_many(organization, 1)
            .map_err(|_| busy("another request of this organization"))?;
        let installation =
            tokio::time::timeout(self.wait, Arc::clone(&self.installation).acquire_owned())
                .await
                .map_err(|_| busy("every turn of the server"))?
                .map_err(|_| busy("every turn of the server"))?;
        Ok(AnswerTurn {
            _organization: organization,
            _installation: installation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_organization_has_one_turn_and_the_installation_a_few() {
        let turns = AnswerTurns::new(2, Duration::from_millis(50));
        let first = turns.take(1).await;
        assert!(first.is_ok());
        assert!(
            matches!(turns.take(1).await, Err(ApiError::TooManyRequests { .. })),
            "the organization's second at once"
        );
        let second = turns.take(2).await;
        assert!(second.is_ok(), "another organization's");
        // Both of the installation's turns are taken: a third organization waits for one,
        // and is refused when none comes.
        assert!(matches!(
            turns.take(3).await,
            Err(ApiError::TooManyRequests { .. })
        ));
        drop(first);
        assert!(turns.take(1).await.is_ok(), "given back when dropped");
    }
}
