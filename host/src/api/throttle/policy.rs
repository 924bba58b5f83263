//! How failures of each kind of key are throttled: [`Policy`] (free failures, the doubling
//! lockout, when failures are forgotten, how many keys are remembered) and the three
//! policies in force, [`USERNAMES`], [`ACCOUNTS`] and [`PEERS`]. Apart from the counters
//! because these are the numbers an operator reads and tunes; the counters only apply them.

use std::num::NonZeroUsize;
use std::time::Duration;

/// How failures of one kind of key (usernames, addresses) are throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before the first lockout.
    pub free_failures: u32,
    /// The lockout after the first failure beyond the free ones; each further one doubles it.
    pub first_lockout: Duration,
    /// The cap on the doubling: no lockout lasts longer, however many failures follow.
    pub max_lockout: Duration,
    /// A key without a failure for this long starts again from zero.
    pub forget_after: Duration,
    /// The most keys remembered; the least recently used is forgotten first.
    pub capacity: NonZeroUsize,
}

impl Policy {
    /// The lockout that the `count`th failure starts, if it is beyond the free ones.
    pub(super) fn lockout(&self, count: u32) -> Option<Duration> {
        let beyond = count.checked_sub(self.free_failures)?.checked_sub(1)?;
        let factor = 1u32.checked_shl(beyond).unwrap_or(u32::MAX);
        Some(
            self.first_lockout
                .saturating_mul(factor)
                .min(self.max_lockout),
        )
    }
}

/// A username from one address: ten failures (far more than a person mistyping makes), then a lockout from
/// 1 s doubling to 15 minutes, so about a hundred guesses a day once a guesser is locked
/// out; forgotten after an hour without a failure. The existing tests, which log in a few
/// times, never come near it.
pub const USERNAMES: Policy = Policy {
    free_failures: 10,
    first_lockout: Duration::from_secs(1),
    max_lockout: Duration::from_secs(15 * 60),
    forget_after: Duration::from_secs(60 * 60),
    capacity: NonZeroUsize::new(10_000).expect("nonzero"),
};

/// A username from every address together: a hundred failures, then a lockout from 1 s
/// doubling to a minute. Guessing from many addresses is still held to about a guess a
/// minute, while a user locked out by someone else's guesses waits a minute at most.
pub const ACCOUNTS: Policy = Policy {
    free_failures: 100,
    first_lockout: Duration::from_secs(1),
    max_lockout: Duration::from_secs(60),
    forget_after: Duration::from_secs(60 * 60),
    capacity: NonZeroUsize::new(10_000).expect("nonzero"),
};

/// Peer addresses (IPv6 by /64, the block one host usually has): a hundred failures, enough
/// for an office behind one NAT, then a lockout from 1 s doubling to a minute, so one
/// address spraying a password over many usernames gets about one guess a minute;
/// forgotten after ten minutes without a failure.
pub const PEERS: Policy = Policy {
    free_failures: 100,
    first_lockout: Duration::from_secs(1),
    max_lockout: Duration::from_secs(60),
    forget_after: Duration::from_secs(10 * 60),
    capacity: NonZeroUsize::new(10_000).expect("nonzero"),
};
