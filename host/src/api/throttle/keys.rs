//! What the throttle counts: a username as the sha256 of its ASCII lowercase (alone, or
//! with the address it came from), an address as itself or its IPv6 /64. Apart from the
//! counters because it is the identity of a key, not its state.

use std::net::{IpAddr, Ipv6Addr};

use sha2::{Digest as _, Sha256};

/// A username as the throttle keys it: the sha256 of its ASCII lowercase, since usernames
/// are compared without regard to ASCII case (`Alice` and `alice` share their count).
pub(super) type UsernameKey = [u8; 32];

/// A username's key, from one address (`peer`) or from all (`None`).
pub(super) fn username_key(username: &str, peer: Option<IpAddr>) -> UsernameKey {
    let mut hasher = Sha256::new();
    hasher.update(username.to_ascii_lowercase().as_bytes());
    if let Some(peer) = peer {
        hasher.update(b"\0");
        hasher.update(peer.to_string().as_bytes());
    }
    let digest = hasher.finalize();
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    key
}

/// An address as the throttle keys it: IPv4 as is (an IPv4-mapped IPv6 address too), IPv6
/// by its /64, since one host usually holds a whole /64.
pub(super) fn peer_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |text: &str| address(text).map(peer_key);
        assert_eq!(key("2001:db8::1"), key("2001:db8::ffff:ffff:ffff:1"));
        assert_ne!(key("2001:db8::1"), key("2001:db8:0:1::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }
}
