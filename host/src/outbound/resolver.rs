//! The DNS resolver of the clients that reach public hosts: it looks a name up and keeps
//! only the addresses the rules allow, so that a name allowed by a hook cannot be pointed
//! at the inside afterwards (the check is made on the very addresses connected to, not on
//! an earlier lookup). A refusal is a [`ResolveRefusal`], which reaches
//! [`super::error`]'s classification unchanged, inside reqwest's error.

use std::net::SocketAddr;

use super::address::is_public;

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
}

impl CheckingResolver {
    /// A resolver under the operator's `allow_private_addresses`.
    pub(super) fn new(allow_private: bool) -> Self {
        CheckingResolver { allow_private }
    }
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let name = name.as_str().to_owned();
        Box::pin(async move {
            match lookup(name, allow_private).await {
                Ok(kept) => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
                Err(refusal) => Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// Looks `name` up with the system's resolver and keeps the addresses the rules allow.
async fn lookup(name: String, allow_private: bool) -> Result<Vec<SocketAddr>, ResolveRefusal> {
    // A failed lookup is judged as one that found nothing: the name does not resolve.
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((name.as_str(), 0)).await {
        Ok(found) => found.collect(),
        Err(_) => Vec::new(),
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
        assert_eq!(
            lookup("localhost".to_owned(), false).await,
            Err(ResolveRefusal::PrivateOnly {
                name: "localhost".to_owned()
            })
        );
        let kept = lookup("localhost".to_owned(), true)
            .await
            .expect("localhost resolves");
        assert!(
            kept.iter().all(|address| address.ip().is_loopback()),
            "{kept:?}"
        );
    }
}
