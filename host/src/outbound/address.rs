//! Which IP addresses are on the public internet: the rule behind refusing loopback,
//! private, link-local and other inside addresses, whether a URL names one or a name
//! resolves to one (see [`super::resolver`]). It lives apart so that the IPv4, IPv6 and
//! tunnelled-IPv4 rules can be read, and tested, on their own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast, broadcast, unspecified or
/// otherwise reserved; and, for an IPv6 address that carries an IPv4 one, the IPv4 address
/// is public too.
///
/// The one test every outbound address passes (a URL's literal in [`super::Outbound`]'s
/// routing, every address the checking resolver returns) unless the operator allows
/// private addresses; public so that the fuzz target (`fuzz/fuzz_targets/allow_list.rs`)
/// checks the very rule the server applies.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// The IPv4 rule: refused are the unspecified, loopback, private, link-local, broadcast,
/// documentation and multicast addresses std names, plus `0.0.0.0/8`, shared
/// `100.64.0.0/10` (CGNAT), IETF protocol assignments `192.0.0.0/24`, benchmarking
/// `198.18.0.0/15` and reserved `240.0.0.0/4`.
fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

/// An IPv6 address is public when it is global unicast (`2000::/3`) outside the blocks set
/// aside for special use, and every IPv4 address it carries is public: an address that
/// embeds a loopback or private IPv4 one can reach it (through a NAT64 gateway, a 6to4,
/// Teredo or ISATAP tunnel, or the kernel's own mapping), so it is refused as that address
/// would be.
///
/// Deny by default: everything outside `2000::/3` that does not stand for an IPv4 address
/// (see [`translated_v4`]) is reserved, unique-local (`fc00::/7`), link-local (`fe80::/10`),
/// site-local (`fec0::/10`), multicast (`ff00::/8`), the local-use NAT64 prefix
/// (`64:ff9b:1::/48`, RFC 8215), discard-only (`100::/64`) or SRv6 SIDs (`5f00::/16`): no
/// host on the internet has such an address. NAT64 and 6rd prefixes an operator chose for
/// its own network cannot be told from ordinary addresses; a name resolving to one is
/// judged as the IPv6 address it is.
fn is_public_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = translated_v4(address) {
        return is_public_v4(v4);
    }
    let segments = address.segments();
    let [first, second, ..] = segments;
    if first & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23, IETF protocol assignments (benchmarking 2001:2::/48, ORCHID 2001:10::/28,
    // ...), except those IANA lists as globally reachable.
    let protocol_assignment =
        first == 0x2001 && second < 0x0200 && !reachable_protocol_assignment(segments);
    // Documentation: 2001:db8::/32, and 3fff::/20 (RFC 9637).
    let documentation =
        (first == 0x2001 && second == 0x0db8) || (first == 0x3fff && second < 0x1000);
    !protocol_assignment
        && !documentation
        && tunnelled_v4(address)
            .into_iter()
            .flatten()
            .all(is_public_v4)
}

/// The IPv4 address an IPv6 one stands for: IPv4-compatible `::a.b.c.d` (`::/96`,
/// deprecated; `::` and `::1` among them), IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated
/// `::ffff:0:a.b.c.d` (SIIT) and the NAT64 well-known prefix `64:ff9b::a.b.c.d` (RFC 6052).
fn translated_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    match address.segments() {
        [0, 0, 0, 0, 0, 0 | 0xffff, high, low]
        | [0, 0, 0, 0, 0xffff, 0, high, low]
        | [0x0064, 0xff9b, 0, 0, 0, 0, high, low] => Some(v4_of(high, low)),
        _ => None,
    }
}

/// The IPv4 addresses a tunnelled IPv6 address carries, where packets to it may leave as
/// IPv4: 6to4's gateway (`2002::/16`, bits 16 to 48), Teredo's server (`2001::/32`, bits 32
/// to 64) and client (the last 32 bits, inverted), and an ISATAP interface id's address
/// (`…:0:5efe:a.b.c.d` or `…:200:5efe:a.b.c.d`, in any prefix).
fn tunnelled_v4(address: Ipv6Addr) -> [Option<Ipv4Addr>; 3] {
    let segments = address.segments();
    let (gateway, client) = match segments {
        [0x2002, high, low, ..] => (Some(v4_of(high, low)), None),
        [0x2001, 0, server_high, server_low, _, _, client_high, client_low] => (
            Some(v4_of(server_high, server_low)),
            Some(v4_of(!client_high, !client_low)),
        ),
        _ => (None, None),
    };
    let isatap = match segments {
        [_, _, _, _, flags, 0x5efe, high, low] if flags & 0xfcff == 0 => Some(v4_of(high, low)),
        _ => None,
    };
    [gateway, client, isatap]
}

/// Within `2001::/23`, the blocks IANA lists as globally reachable: the PCP, TURN and
/// DNS-SD SRP anycast addresses (`2001:1::1` to `2001:1::3`), AMT (`2001:3::/32`), AS112-v6
/// (`2001:4:112::/48`), ORCHIDv2 and drone remote ID tags (`2001:20::/28`, `2001:30::/28`);
/// and Teredo (`2001::/32`), which is judged by the IPv4 addresses it carries.
fn reachable_protocol_assignment(segments: [u16; 8]) -> bool {
    matches!(
        segments,
        [0x2001, 0x0000, ..]
            | [0x2001, 0x0001, 0, 0, 0, 0, 0, 1..=3]
            | [0x2001, 0x0003, ..]
            | [0x2001, 0x0004, 0x0112, ..]
            | [0x2001, 0x0020..=0x003f, ..]
    )
}

/// The IPv4 address of two 16-bit groups.
fn v4_of(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let address: IpAddr = inside.parse().expect("an address");
            assert!(!is_public(address), "{inside}");
        }
        for outside in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            let address: IpAddr = outside.parse().expect("an address");
            assert!(is_public(address), "{outside}");
        }
    }

    /// Every way an IPv6 address carries an IPv4 one, with a non-public and a public IPv4
    /// address in it; and the IPv6 blocks set aside for special use.
    #[test]
    fn ipv4_inside_ipv6_is_judged_by_the_ipv4_rules() {
        let cases = [
            // The two the adversarial test got through (issue 13).
            ("::127.0.0.1", false),
            ("2002:7f00:1::", false),
            // IPv4-compatible, ::/96 (deprecated).
            ("::", false),
            ("::10.0.0.1", false),
            ("::169.254.169.254", false),
            ("::0.2.0.1", false),
            ("::1.1.1.1", true),
            // IPv4-mapped, ::ffff:0:0/96.
            ("::ffff:127.0.0.1", false),
            ("::ffff:7f00:1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:100.64.0.1", false),
            ("::ffff:1.1.1.1", true),
            // IPv4-translated (SIIT), ::ffff:0:0:0/96.
            ("::ffff:0:127.0.0.1", false),
            ("::ffff:0:192.168.0.1", false),
            ("::ffff:0:1.1.1.1", true),
            // NAT64 well-known prefix, 64:ff9b::/96.
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::10.1.2.3", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::1.1.1.1", true),
            // Local-use NAT64, 64:ff9b:1::/48 (RFC 8215): never public.
            ("64:ff9b:1::1.1.1.1", false),
            ("64:ff9b:1:ffff::1", false),
            // 6to4, 2002::/16: the gateway in bits 16 to 48.
            ("2002:a00:1::1", false),
            ("2002:a9fe:a9fe::", false),
            ("2002:c0a8:101::1", false),
            ("2002:101:101::1", true),
            // Teredo, 2001::/32: the server in bits 32 to 64, the client inverted at the end.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false), // RFC 4380's: client 192.0.2.45
            ("2001:0:a00:1:8000:63bf:fefe:fefe", false),     // server 10.0.0.1
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", false), // client 127.0.0.1
            ("2001:0:4136:e378:8000:63bf:fefe:fefe", true),  // client 1.1.1.1
            // ISATAP interface ids, in any prefix.
            ("2606:4700::5efe:a00:1", false),
            ("2606:4700::200:5efe:7f00:1", false),
            ("2606:4700::5efe:101:101", true),
            // Special-use IPv6.
            ("100::1", false),
            ("2001:2::1", false),
            ("2001:10::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("5f00::1", false),
            ("fc00::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("::1:0:0:1", false),
            // Global unicast, and the globally reachable protocol assignments.
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001::1", true),
            ("2001:1::1", true),
            ("2001:3::1", true),
            ("2001:4:112::1", true),
            ("2001:20::1", true),
        ];
        for (text, public) in cases {
            let address: IpAddr = text.parse().expect("an address");
            assert_eq!(is_public(address), public, "{text}");
        }
    }
}
