//! The per-peer cap: connections counted per peer address (IPv4, or an IPv6 /64), each
//! held by a `PeerPlace` that gives its count back when the connection ends. Apart from the
//! accept loop because it is shared state of its own, with its own rule for what one peer
//! is, tested without a socket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Connections open per peer address, to cap each.
#[derive(Debug)]
pub(super) struct Peers {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Peers {
    pub(super) fn new(limit: usize) -> Self {
        Peers {
            limit: limit.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection from `address`; `None` when its address is at the cap.
    pub(super) fn claim(self: &Arc<Self>, address: IpAddr) -> Option<PeerPlace> {
        let key = peer_key(address);
        // Held only to count, never across an await.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerPlace {
            peers: Arc::clone(self),
            key,
        })
    }
}

/// One connection counted against its peer's cap, until dropped.
#[derive(Debug)]
pub(super) struct PeerPlace {
    peers: Arc<Peers>,
    key: IpAddr,
}

impl Drop for PeerPlace {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The address a peer's connections are counted under: its IPv4 address (also when mapped
/// into IPv6), or its IPv6 /64, since one host usually holds a whole /64 and counting single
/// IPv6 addresses would cap nothing.
fn peer_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(Ipv6Addr::from(segments))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_at_its_cap_is_refused_until_one_of_its_connections_ends() {
        let peers = Arc::new(Peers::new(2));
        let address = IpAddr::from([127, 0, 0, 2]);
        let first = peers.claim(address);
        let second = peers.claim(address);
        assert!(first.is_some() && second.is_some());
        assert!(peers.claim(address).is_none());
        assert!(peers.claim(IpAddr::from([127, 0, 0, 3])).is_some());
        drop(first);
        assert!(peers.claim(address).is_some());
        drop(second);
        assert!(peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }

    #[test]
    fn ipv6_peers_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("an address");
        let other: IpAddr = "2001:db8:1:2:ffff::1".parse().expect("an address");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(peer_key(one), peer_key(other));
        assert_ne!(peer_key(one), peer_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(peer_key(mapped), IpAddr::from([192, 0, 2, 1]));
    }
}
