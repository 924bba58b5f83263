//! The DNS resolver of the clients that reach public hosts: it looks a name up and keeps
//! only the addresses the rules allow, so that a name allowed by a hook cannot be pointed
//! at the inside afterwards (the check is made on the very addresses connected to, not on
//! an earlier lookup). A refusal is a [`ResolveRefusal`], which reaches
//! [`super::error`]'s classification unchanged, inside reqwest's error.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::address::is_public;
use crate::keyed::KeyedSemaphores;

/// Lookups under way at once. The system's resolver blocks a thread of tokio's blocking
/// pool until it answers (seconds, for a name whose servers do not), and nothing cancels
/// it: a request abandoned at its timeout leaves its lookup running. That pool also runs
/// every database operation, so a guest looking up names no server answers, in a loop,
/// would hold all of its threads. Each lookup holds a place until it returns, so at most
/// this many of the pool's threads are ever the resolver's.
const LOOKUPS_AT_ONCE: usize = 32;
/// Of those, the most one organization's requests hold: a guest looking up names no server
/// answers, its requests abandoned at their timeouts and made again, would otherwise take
/// every place, and every other organization's requests and webhooks would wait for its
/// lookups to time out. Eight organizations doing so at once are needed to fill them.
const LOOKUPS_PER_ORGANIZATION: usize = 4;

tokio::task_local! {
    /// The organization whose request the current task's lookups are for
    /// ([`for_organization`]).
    static LOOKUPS_OF: u64;
}

/// Runs `request` (an exchange of `organization`'s) with its lookups counted against the
/// organization's places. The organization is read as a lookup starts, which is in the
/// request's own task (reqwest's connector calls the resolver as the connection is first
/// polled), so a connection the pool finishes after its request stopped waiting still
/// holds its organization's place until the lookup returns. A lookup made outside any
/// (none is, today) takes a place of the installation's alone.
pub(super) async fn for_organization<F: std::future::Future>(
    organization: u64,
    request: F,
) -> F::Output {
    LOOKUPS_OF.scope(organization, request).await
}

/// Why the checking resolver gave a name no address.
///
/// It is returned, boxed, as the resolver's error; reqwest and hyper-util carry it up as
/// a source of the request's error, where the classification finds it by type
/// (`downcast_ref`), so that a late refusal is told from other failures without reading
/// any message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveRefusal {
    /// Every address the name resolves to is loopback, private or otherwise not public,
    /// and the operator has not allowed those.
    #[error("{name} resolves only to non-public addresses")]
    PrivateOnly {
        /// The name looked up.
        name: String,
    },
    /// The lookup failed or found no address.
    #[error("{name} does not resolve")]
    Unresolved {
        /// The name looked up.
        name: String,
    },
}

/// Resolves names and keeps only the addresses the rules allow: a reqwest resolver, set on
/// the public clients (not on the one for the installation's own API, which may be
/// anywhere).
#[derive(Debug)]
pub(super) struct CheckingResolver {
    /// Keep loopback, private and other non-public addresses too (the operator allows
    /// them): then only a name that does not resolve is refused.
    allow_private: bool,
    /// The lookups' places ([`LOOKUPS_AT_ONCE`]), and each organization's share of them
    /// ([`LOOKUPS_PER_ORGANIZATION`]).
    places: Places,
}

/// Where lookups wait for a place: the installation's, and first each organization's.
#[derive(Debug, Clone)]
struct Places {
    all: Arc<Semaphore>,
    per_organization: Arc<KeyedSemaphores<u64>>,
}

/// A lookup's places, held by the thread that looks the name up until the system's
/// resolver returns, however long after its request was abandoned.
struct Held {
    _organization: Option<OwnedSemaphorePermit>,
    _place: OwnedSemaphorePermit,
}

impl Places {
    fn new(all: usize, per_organization: usize) -> Self {
        Places {
            all: Arc::new(Semaphore::new(all)),
            per_organization: Arc::new(KeyedSemaphores::new(per_organization)),
        }
    }

    /// Waits for `organization`'s place (when the lookup is one's), then for one of the
    /// installation's: an organization whose places are taken waits behind its own
    /// lookups, never in the line every other organization's wait in.
    async fn take(&self, organization: Option<u64>) -> Option<Held> {
        let own = match organization {
            Some(organization) => Some(self.per_organization.acquire(organization).await.ok()?),
            None => None,
        };
        let place = Arc::clone(&self.all).acquire_owned().await.ok()?;
        Some(Held {
            _organization: own,
            _place: place,
        })
    }
}

impl CheckingResolver {
    /// A resolver under the operator's `allow_private_addresses`.
    pub(super) fn new(allow_private: bool) -> Self {
        CheckingResolver {
            allow_private,
            places: Places::new(LOOKUPS_AT_ONCE, LOOKUPS_PER_ORGANIZATION),
        }
    }
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let places = self.places.clone();
        let name = name.as_str().to_owned();
        // Read where the connector asks, in the request's task.
        let organization = LOOKUPS_OF.try_with(|organization| *organization).ok();
        Box::pin(async move {
            match lookup(name, allow_private, &places, organization, system_lookup).await {
                Ok(kept) => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
                Err(refusal) => Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// The system's resolver (getaddrinfo): blocks its thread until it answers.
fn system_lookup(name: &str) -> std::io::Result<Vec<SocketAddr>> {
    (name, 0)
        .to_socket_addrs()
        .map(|found| found.collect::<Vec<_>>())
}

/// Looks `name` up with `resolve` (the system's resolver) on the blocking pool, holding
/// its places (`organization`'s and one of the installation's) until it returns, and keeps
/// the addresses the rules allow.
async fn lookup(
    name: String,
    allow_private: bool,
    places: &Places,
    organization: Option<u64>,
    resolve: fn(&str) -> std::io::Result<Vec<SocketAddr>>,
) -> Result<Vec<SocketAddr>, ResolveRefusal> {
    let unresolved = |name: String| ResolveRefusal::Unresolved { name };
    let Some(held) = places.take(organization).await else {
        return Err(unresolved(name));
    };
    let asked = name.clone();
    let looked_up = tokio::task::spawn_blocking(move || {
        let _held = held;
        resolve(&asked)
    })
    .await;
    // A failed lookup is judged as one that found nothing: the name does not resolve.
    let found = match looked_up {
        Ok(Ok(found)) => found,
        _ => Vec::new(),
    };
    allowed(name, found, allow_private)
}

/// The addresses of `found` the rules allow, or why there are none.
fn allowed(
    name: String,
    found: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, ResolveRefusal> {
    if found.is_empty() {
        return Err(ResolveRefusal::Unresolved { name });
    }
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|address| allow_private || is_public(address.ip()))
        .collect();
    if kept.is_empty() {
        return Err(ResolveRefusal::PrivateOnly { name });
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(texts: &[&str]) -> Vec<SocketAddr> {
        texts
            .iter()
            .map(|text| SocketAddr::new(text.parse().expect("an address"), 0))
            .collect()
    }

    #[test]
    fn only_public_addresses_are_kept() {
        let name = || "api.example.com".to_owned();
        assert_eq!(
            allowed(name(), addresses(&["10.0.0.1", "1.1.1.1", "::1"]), false),
            Ok(addresses(&["1.1.1.1"]))
        );
        assert_eq!(
            allowed(name(), addresses(&["127.0.0.1", "::ffff:10.0.0.1"]), false),
            Err(ResolveRefusal::PrivateOnly { name: name() })
        );
        assert_eq!(
            allowed(name(), Vec::new(), false),
            Err(ResolveRefusal::Unresolved { name: name() })
        );
        // The operator allows private addresses: every address is kept, and only a name
        // that does not resolve is refused.
        assert_eq!(
            allowed(name(), addresses(&["127.0.0.1", "::1"]), true),
            Ok(addresses(&["127.0.0.1", "::1"]))
        );
        assert_eq!(
            allowed(name(), Vec::new(), true),
            Err(ResolveRefusal::Unresolved { name: name() })
        );
    }

    /// The messages are those the resolver's errors said when they were strings.
    #[test]
    fn refusals_say_what_happened() {
        let name = "inside.example".to_owned();
        assert_eq!(
            format!("{}", ResolveRefusal::PrivateOnly { name: name.clone() }),
            "inside.example resolves only to non-public addresses"
        );
        assert_eq!(
            format!("{}", ResolveRefusal::Unresolved { name }),
            "inside.example does not resolve"
        );
    }

    /// `localhost` resolves (from /etc/hosts) to loopback addresses only.
    #[tokio::test]
    async fn localhost_is_refused_unless_private_addresses_are_allowed() {
        let places = Places::new(1, 1);
        assert_eq!(
            lookup(
                "localhost".to_owned(),
                false,
                &places,
                Some(1),
                system_lookup
            )
            .await,
            Err(ResolveRefusal::PrivateOnly {
                name: "localhost".to_owned()
            })
        );
        let kept = lookup(
            "localhost".to_owned(),
            true,
            &places,
            Some(1),
            system_lookup,
        )
        .await
        .expect("localhost resolves");
        assert_eq!(places.all.available_permits(), 1, "the place is given back");
        assert!(
            kept.iter().all(|address| address.ip().is_loopback()),
            "{kept:?}"
        );
    }

    /// Lookups that never return (a name whose servers do not answer): the names this
    /// test's resolver blocks on until it is told.
    static STUCK: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>> =
        std::sync::Mutex::new(None);

    fn stuck_lookup(name: &str) -> std::io::Result<Vec<SocketAddr>> {
        if name.starts_with("stuck") {
            // Each waits for one message; the test sends them at its end.
            let receiver = STUCK.lock().map_err(|_| std::io::ErrorKind::Other)?;
            if let Some(receiver) = receiver.as_ref() {
                let _ = receiver.recv_timeout(std::time::Duration::from_secs(30));
            }
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(vec![SocketAddr::new([1, 1, 1, 1].into(), 0)])
    }

    /// One organization's lookups that never return, their requests abandoned and made
    /// again, hold its own places only: past them it waits behind itself, and another
    /// organization's lookup still gets one of the installation's places at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_organizations_stuck_lookups_leave_the_others_places() {
        let (release, receiver) = std::sync::mpsc::channel::<()>();
        *STUCK.lock().expect("unpoisoned") = Some(receiver);
        let places = Places::new(LOOKUPS_AT_ONCE, LOOKUPS_PER_ORGANIZATION);
        // The hostile organization starts as many lookups as the installation has places,
        // each abandoned at once (a timeout), as a guest's requests would be.
        for index in 0..LOOKUPS_AT_ONCE {
            let name = format!("stuck-{index}.example");
            let places = places.clone();
            let abandoned =
                tokio::time::timeout(std::time::Duration::from_millis(20), async move {
                    lookup(name, false, &places, Some(1), stuck_lookup).await
                });
            assert!(abandoned.await.is_err(), "a stuck lookup returned");
        }
        // Only its own places are held; the rest of the installation's are free.
        assert_eq!(
            places.all.available_permits(),
            LOOKUPS_AT_ONCE - LOOKUPS_PER_ORGANIZATION
        );
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            lookup(
                "api.example".to_owned(),
                false,
                &places,
                Some(2),
                stuck_lookup,
            ),
        )
        .await;
        assert_eq!(
            other.ok().and_then(Result::ok),
            Some(vec![SocketAddr::new([1, 1, 1, 1].into(), 0)]),
            "another organization's lookup waited for the stuck ones"
        );
        // Once the stuck lookups return, every place is given back.
        for _ in 0..LOOKUPS_PER_ORGANIZATION {
            let _ = release.send(());
        }
        let freed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while places.all.available_permits() < LOOKUPS_AT_ONCE {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(freed.is_ok(), "the places were not given back");
    }
}
