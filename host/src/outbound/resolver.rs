//! The DNS resolver of the clients that reach public hosts: it looks a name up and keeps
//! only the addresses the rules allow, so that a name allowed by a hook cannot be pointed
//! at the inside afterwards (the check is made on the very addresses connected to, not on
//! an earlier lookup). A refusal is a [`ResolveRefusal`], which reaches
//! [`super::error`]'s classification unchanged, inside reqwest's error.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::address::is_public;

/// Lookups under way at once. The system's resolver blocks a thread of tokio's blocking
/// pool until it answers (seconds, for a name whose servers do not), and nothing cancels
/// it: a request abandoned at its timeout leaves its lookup running. That pool also runs
/// every database operation, so a guest looking up names no server answers, in a loop,
/// would hold all of its threads. Each lookup holds a place until it returns, so at most
/// this many of the pool's threads are ever the resolver's.
const LOOKUPS_AT_ONCE: usize = 32;

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
    /// The lookups' places ([`LOOKUPS_AT_ONCE`]).
    places: Arc<Semaphore>,
}

impl CheckingResolver {
    /// A resolver under the operator's `allow_private_addresses`.
    pub(super) fn new(allow_private: bool) -> Self {
        CheckingResolver {
            allow_private,
            places: Arc::new(Semaphore::new(LOOKUPS_AT_ONCE)),
        }
    }
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let places = Arc::clone(&self.places);
        let name = name.as_str().to_owned();
        Box::pin(async move {
            match lookup(name, allow_private, places).await {
                Ok(kept) => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
                Err(refusal) => Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// Looks `name` up with the system's resolver, in one of `places` held by the blocking
/// thread until the resolver returns, and keeps the addresses the rules allow.
async fn lookup(
    name: String,
    allow_private: bool,
    places: Arc<Semaphore>,
) -> Result<Vec<SocketAddr>, ResolveRefusal> {
    let unresolved = |name: String| ResolveRefusal::Unresolved { name };
    let Ok(place) = places.acquire_owned().await else {
        return Err(unresolved(name));
    };
    let asked = name.clone();
    let looked_up = tokio::task::spawn_blocking(move || {
        let _place = place;
        (asked.as_str(), 0)
            .to_socket_addrs()
            .map(|found| found.collect::<Vec<_>>())
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
        let places = Arc::new(Semaphore::new(1));
        assert_eq!(
            lookup("localhost".to_owned(), false, Arc::clone(&places)).await,
            Err(ResolveRefusal::PrivateOnly {
                name: "localhost".to_owned()
            })
        );
        let kept = lookup("localhost".to_owned(), true, Arc::clone(&places))
            .await
            .expect("localhost resolves");
        assert_eq!(places.available_permits(), 1, "the place is given back");
        assert!(
            kept.iter().all(|address| address.ip().is_loopback()),
            "{kept:?}"
        );
    }
}
