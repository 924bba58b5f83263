//! Login throttling: failed logins counted per username (from each address, and from all
//! together) and per peer address, so that guessing passwords is slow, and so is making
//! the server spend argon2 on each guess.
//!
//! A username is locked out quickly for the address guessing it ([`USERNAMES`]), and only
//! slowly and briefly for every other address ([`ACCOUNTS`]), never for an address that
//! logged in as that user before: otherwise anyone could keep a user, say an admin, from
//! logging in by failing as them from a few addresses. (A user on a new address can still
//! be held up by a guessing campaign, a minute at a time.)
//!
//! Each key has [`Policy::free_failures`] failures; beyond them, every attempt locks the
//! key out for a time that doubles from [`Policy::first_lockout`] up to
//! [`Policy::max_lockout`], and an attempt while locked out is refused (429) before its
//! password is looked at. A key's failures are forgotten after [`Policy::forget_after`]
//! without a new one, and a login that succeeds clears its username's.
//!
//! An attempt counts as a failure as soon as it is let through, before its password is
//! checked, so that a burst of concurrent guesses is bounded as well as a sequence; a
//! success then gives its address the attempt back. Unknown usernames are counted exactly
//! as known ones: the throttle never looks at the database, so its answers tell nothing
//! about which usernames exist.
//!
//! Memory is bounded: each kind of key lives in an LRU map of at most [`Policy::capacity`]
//! entries, usernames as their sha256 (a long username costs no more than a short one).
//! Pushing a username's counter out of the map takes that many other failing usernames,
//! which one address, held to its own limit, needs many hours to send.
//!
//! The peer address is the TCP peer's; behind a reverse proxy every client shares the
//! proxy's, and `X-Forwarded-For` is not trusted (any client could set it).
//!
//! This file holds [`LoginThrottle`], which checks and counts an attempt against every
//! kind of key at once, bounds the password checks running together, and answers
//! [`Throttled`]. What it is made of, one idea a file: `policy.rs` (how each kind of key is
//! throttled: [`Policy`] and the three in force), `counters.rs` (the failures remembered
//! per key and the lockout rule that reads them) and `keys.rs` (what a username and an
//! address are counted as).

mod counters;
mod keys;
mod policy;

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;
use tokio::sync::OwnedSemaphorePermit;

use crate::keyed::KeyedSemaphores;

use self::counters::Counters;
use self::keys::{peer_key, username_key, UsernameKey};
use self::policy::{Policy, ACCOUNTS, PEERS, USERNAMES};

/// The counters of both kinds of key, under one lock so that an attempt is checked and
/// counted against both at once.
#[derive(Debug)]
struct Both {
    /// By username and address.
    usernames: Counters<UsernameKey>,
    /// By username alone.
    accounts: Counters<UsernameKey>,
    peers: Counters<IpAddr>,
    /// Username-and-address keys that logged in successfully.
    trusted: LruCache<UsernameKey, ()>,
}

/// The longest a login waits for a place to check its password.
const VERIFICATION_WAIT: Duration = Duration::from_secs(1);

/// Addresses remembered as having logged in as a username: the lockout of a username from
/// every address does not apply to them, so strangers' guesses cannot keep its user out.
const TRUSTED_CAPACITY: NonZeroUsize = NonZeroUsize::new(10_000).expect("nonzero");

/// Failed logins per username and per peer address; see the module doc. One for the
/// whole server, shared by every login.
#[derive(Debug)]
pub struct LoginThrottle {
    counters: Mutex<Both>,
    /// Password checks running at once. Each argon2 check takes about 19 MiB and a core
    /// for tens of milliseconds; without a bound, the failures a throttle lets through
    /// from many addresses at once would be paid in memory all together.
    verifications: Arc<tokio::sync::Semaphore>,
    /// A user write's password hash at a time per organization: so that one
    /// organization's writes hold at most one of [`LoginThrottle::verifications`] places.
    password_writes: KeyedSemaphores<u64>,
}

/// A login attempt the throttle let through: counted as a failure of its username and
/// address until [`LoginThrottle::succeeded`] says otherwise.
#[derive(Debug)]
pub struct Attempt {
    username: UsernameKey,
    account: UsernameKey,
    peer: Option<IpAddr>,
}

/// A login refused before its password was looked at, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins for this username or from this address")]
pub struct Throttled {
    retry_after: Duration,
}

impl Throttled {
    /// The wait in whole seconds, rounded up and at least one: the `Retry-After` value.
    pub fn retry_after_s(&self) -> u64 {
        let seconds = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        seconds.max(1)
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(USERNAMES, PEERS)
    }
}

impl LoginThrottle {
    /// A throttle with these policies for usernames and for peer addresses.
    pub fn new(usernames: Policy, peers: Policy) -> Self {
        LoginThrottle {
            verifications: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(2, |cores| cores.get().saturating_mul(2)),
            )),
            password_writes: KeyedSemaphores::new(1),
            counters: Mutex::new(Both {
                usernames: Counters::new(usernames),
                accounts: Counters::new(ACCOUNTS),
                peers: Counters::new(peers),
                trusted: LruCache::new(TRUSTED_CAPACITY),
            }),
        }
    }

    /// Lets an attempt to log in as `username` from `peer` (when the connection's address
    /// is known) through at `now`, counting it as a failure; or refuses it, with how long
    /// to wait, while the username or the address is locked out.
    pub fn admit(
        &self,
        username: &str,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        let peer = peer.map(peer_key);
        let attempt = Attempt {
            username: username_key(username, peer),
            account: username_key(username, None),
            peer,
        };
        let mut counters = self.lock();
        // An address that logged in as this user before is held to its own count only.
        let trusted = attempt.peer.is_some() && counters.trusted.get(&attempt.username).is_some();
        let account_wait = match trusted {
            true => None,
            false => counters.accounts.wait(&attempt.account, now),
        };
        let username_wait = counters
            .usernames
            .wait(&attempt.username, now)
            .max(account_wait);
        let peer_wait = match attempt.peer {
            Some(peer) => counters.peers.wait(&peer, now),
            None => None,
        };
        if let Some(retry_after) = username_wait.max(peer_wait) {
            return Err(Throttled { retry_after });
        }
        counters.usernames.charge(attempt.username, now);
        counters.accounts.charge(attempt.account, now);
        if let Some(peer) = attempt.peer {
            counters.peers.charge(peer, now);
        }
        Ok(attempt)
    }

    /// A place to check a password, waiting up to a second for one, or [`Throttled`] for a
    /// second when none frees (the answer a throttled client already knows how to handle).
    pub async fn verification(&self) -> Result<OwnedSemaphorePermit, Throttled> {
        let busy = Throttled {
            retry_after: Duration::from_secs(1),
        };
        match tokio::time::timeout(
            VERIFICATION_WAIT,
            Arc::clone(&self.verifications).acquire_owned(),
        )
        .await
        {
            Ok(Ok(place)) => Ok(place),
            _ => Err(busy),
        }
    }

    /// The places to hash a user's new password for `organization_id`: the organization's
    /// one (refused at once, [`Throttled`] for a second, while another write of it hashes),
    /// then one of the verifications' ([`LoginThrottle::verification`]).
    pub async fn password_write(
        &self,
        organization_id: u64,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), Throttled> {
        let own = self
            .password_writes
            .try_acquire_many(organization_id, 1)
            .map_err(|_| Throttled {
                retry_after: Duration::from_secs(1),
            })?;
        Ok((own, self.verification().await?))
    }

    /// Records that `attempt` logged in: its username's failures are forgotten, and its
    /// address gets the attempt back.
    pub fn succeeded(&self, attempt: &Attempt) {
        let mut counters = self.lock();
        counters.usernames.clear(&attempt.username);
        counters.accounts.clear(&attempt.account);
        if attempt.peer.is_some() {
            counters.trusted.put(attempt.username, ());
        }
        if let Some(peer) = &attempt.peer {
            counters.peers.refund(peer);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Both> {
        // The counters hold no invariant a panicking holder could break.
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three free failures, lockouts of 1, 2, 4, 8 s.
    const STRICT: Policy = Policy {
        free_failures: 3,
        first_lockout: Duration::from_secs(1),
        max_lockout: Duration::from_secs(8),
        forget_after: Duration::from_secs(60),
        capacity: NonZeroUsize::new(4).expect("nonzero"),
    };
    /// Never reached by these tests.
    const LAX: Policy = Policy {
        free_failures: 1000,
        ..STRICT
    };

    fn address(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    fn wait(result: Result<Attempt, Throttled>) -> Option<Duration> {
        result.err().map(|throttled| throttled.retry_after)
    }

    #[test]
    fn a_username_has_its_free_failures_then_waits_doubling_lockouts() {
        let throttle = LoginThrottle::new(STRICT, LAX);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(throttle.admit("ann", None, start).is_ok());
        }
        // The fourth is let through, and locks the name out for 1 s.
        assert!(throttle.admit("ann", None, start).is_ok());
        assert_eq!(
            wait(throttle.admit("ann", None, start)),
            Some(Duration::from_secs(1))
        );
        let later = start + Duration::from_secs(1);
        assert!(throttle.admit("ann", None, later).is_ok());
        assert_eq!(
            wait(throttle.admit("ann", None, later)),
            Some(Duration::from_secs(2))
        );
        // Doubling up to the longest lockout, and no further.
        let mut at = later;
        for _ in 0..10 {
            at += STRICT.max_lockout;
            assert!(throttle.admit("ann", None, at).is_ok());
        }
        assert_eq!(
            wait(throttle.admit("ann", None, at)),
            Some(STRICT.max_lockout)
        );
        // Another name is not concerned.
        assert!(throttle.admit("bob", None, at).is_ok());
    }

    #[test]
    fn a_guesser_locks_a_username_out_for_itself_not_for_the_user() {
        let throttle = LoginThrottle::new(STRICT, LAX);
        let start = Instant::now();
        let (guesser, user) = (address("203.0.113.9"), address("198.51.100.7"));
        for _ in 0..4 {
            assert!(throttle.admit("admin", guesser, start).is_ok());
        }
        assert!(throttle.admit("admin", guesser, start).is_err());
        assert!(
            throttle.admit("admin", user, start).is_ok(),
            "the user logs in"
        );
        // Guesses from very many addresses lock the name out for everyone, briefly.
        for index in 0..ACCOUNTS.free_failures {
            let peer = Some(IpAddr::V4((0x0a00_0000 + index).into()));
            let _ = throttle.admit("admin", peer, start);
        }
        let waited = wait(throttle.admit("admin", user, start));
        assert!(
            waited.is_some_and(|wait| wait <= ACCOUNTS.max_lockout),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn password_checks_are_bounded_and_a_login_waits_a_second_at_most() {
        let throttle = LoginThrottle::default();
        let mut held = Vec::new();
        while let Ok(Ok(place)) = tokio::time::timeout(
            Duration::from_millis(10),
            Arc::clone(&throttle.verifications).acquire_owned(),
        )
        .await
        {
            held.push(place);
        }
        let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get() * 2);
        assert_eq!(held.len(), cores);
        let started = Instant::now();
        let refused = throttle.verification().await;
        assert_eq!(refused.err().map(|busy| busy.retry_after_s()), Some(1));
        assert!(started.elapsed() < Duration::from_secs(3));
        held.pop();
        assert!(
            throttle.verification().await.is_ok(),
            "a freed place is taken"
        );
    }

    #[test]
    fn a_refused_attempt_does_not_extend_the_lockout() {
        let throttle = LoginThrottle::new(STRICT, LAX);
        let start = Instant::now();
        for _ in 0..4 {
            assert!(throttle.admit("ann", None, start).is_ok());
        }
        let half = start + Duration::from_millis(500);
        for _ in 0..20 {
            assert_eq!(
                wait(throttle.admit("ann", None, half)),
                Some(Duration::from_millis(500))
            );
        }
        assert!(throttle
            .admit("ann", None, start + Duration::from_secs(1))
            .is_ok());
    }

    #[test]
    fn a_success_clears_the_username() {
        let throttle = LoginThrottle::new(STRICT, LAX);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(throttle.admit("ann", None, start).is_ok());
        }
        let attempt = throttle.admit("ann", None, start);
        assert!(attempt.is_ok());
        if let Ok(attempt) = &attempt {
            throttle.succeeded(attempt);
        }
        // Counting starts again: four more are let through, the fifth waits.
        for _ in 0..4 {
            assert!(throttle.admit("ann", None, start).is_ok());
        }
        assert!(throttle.admit("ann", None, start).is_err());
    }

    #[test]
    fn usernames_are_counted_without_regard_to_ascii_case() {
        let throttle = LoginThrottle::new(STRICT, LAX);
        let start = Instant::now();
        for name in ["Ann", "ANN", "ann", "aNN"] {
            assert!(throttle.admit(name, None, start).is_ok());
        }
        assert!(throttle.admit("anN", None, start).is_err());
    }

    #[test]
    fn an_address_is_throttled_across_usernames() {
        let throttle = LoginThrottle::new(LAX, STRICT);
        let start = Instant::now();
        let peer = address("192.0.2.1");
        for index in 0..4 {
            assert!(throttle.admit(&format!("user{index}"), peer, start).is_ok());
        }
        assert_eq!(
            wait(throttle.admit("someone-else", peer, start)),
            Some(Duration::from_secs(1))
        );
        // Another address, or an unknown one, is not concerned.
        assert!(throttle
            .admit("someone-else", address("192.0.2.2"), start)
            .is_ok());
        assert!(throttle.admit("someone-else", None, start).is_ok());
    }

    #[test]
    fn a_success_gives_the_address_its_attempt_back() {
        let throttle = LoginThrottle::new(LAX, STRICT);
        let start = Instant::now();
        let peer = address("192.0.2.1");
        for index in 0..3 {
            assert!(throttle.admit(&format!("user{index}"), peer, start).is_ok());
        }
        // The fourth starts a lockout, which its success takes back.
        let attempt = throttle.admit("ann", peer, start);
        assert!(attempt.is_ok());
        if let Ok(attempt) = &attempt {
            throttle.succeeded(attempt);
        }
        assert!(throttle.admit("bob", peer, start).is_ok());
        assert!(throttle.admit("carol", peer, start).is_err());
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let throttle = LoginThrottle::new(STRICT, LAX);
        let start = Instant::now();
        for _ in 0..4 {
            assert!(throttle.admit("ann", None, start).is_ok());
        }
        assert!(throttle.admit("ann", None, start).is_err());
        let quiet = start + STRICT.forget_after;
        for _ in 0..4 {
            assert!(throttle.admit("ann", None, quiet).is_ok());
        }
        assert!(throttle.admit("ann", None, quiet).is_err());
    }

    #[test]
    fn the_counters_are_bounded_however_many_keys_fail() {
        let throttle = LoginThrottle::new(STRICT, STRICT);
        let start = Instant::now();
        for index in 0..1000u32 {
            let name = format!("{index}{}", "x".repeat(1000));
            let peer = Some(IpAddr::V4(index.into()));
            assert!(throttle.admit(&name, peer, start).is_ok());
        }
        let counters = throttle.lock();
        assert_eq!(counters.usernames.entries.len(), STRICT.capacity.get());
        assert_eq!(counters.peers.entries.len(), STRICT.capacity.get());
    }

    #[test]
    fn the_retry_after_is_whole_seconds_rounded_up() {
        let seconds = |millis: u64| {
            Throttled {
                retry_after: Duration::from_millis(millis),
            }
            .retry_after_s()
        };
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(1000), 1);
        assert_eq!(seconds(1001), 2);
        assert_eq!(seconds(900_000), 900);
        assert_eq!(seconds(0), 1);
    }
}
