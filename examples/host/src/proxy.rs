//! The client address of a request that came through reverse proxies the host trusts
//! (`IDENTA_TRUSTED_PROXIES`): [`TrustedProxies`]. Only a request whose TCP peer is one of
//! them is read further, from `X-Forwarded-For`: the right-most address there that is not
//! itself a trusted proxy is the client (each proxy appends the address it was connected
//! from, so the entries to its left are whatever the client claimed, and are never read).
//! An entry that cannot be read at or right of the client leaves the peer's address;
//! nothing here fails a request.

use std::net::IpAddr;

use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` the host believes: IP addresses and CIDR
/// ranges. Empty (the default): the client address is always the TCP peer's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// No proxy: the client address is the TCP peer's.
    pub const NONE: Self = Self { nets: Vec::new() };

    /// Parses a comma-separated list of addresses and ranges (`10.0.0.1, 10.1.0.0/16,
    /// fd00::/8`); an entry that is neither is an error naming it, and so is a range of
    /// every address (`0.0.0.0/0`, `::/0`): trusting every hop would make the left-most
    /// address, which the client writes itself, its address.
    pub fn parse(list: &str) -> Result<Self, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let net = entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "`{entry}` is neither an IP address nor a CIDR range (e.g. 10.0.0.1 or 10.0.0.0/8)"
                        )
                    })?;
                if net.prefix_len() == 0 {
                    return Err(format!(
                        "`{entry}` would trust every address, so any client could name its own \
                         address in X-Forwarded-For: list your proxies' addresses or ranges \
                         (e.g. 10.0.0.0/8)"
                    ));
                }
                Ok(net)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` (an IPv4 address also when mapped into IPv6) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` carrying these `X-Forwarded-For`
    /// header values (in the order received): `peer` unless it is a trusted proxy; else
    /// the right-most address in the header that is not a trusted proxy (the left-most if
    /// all are), read from the right and stopping there, so that what the client wrote to
    /// its left is never read; `peer` when the header is missing or an entry at or right
    /// of that point is not an address.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        // Every entry, left to right; a line that is not text is one unreadable entry.
        let mut hops: Vec<Option<IpAddr>> = Vec::new();
        for value in forwarded_for {
            match std::str::from_utf8(value) {
                Ok(text) => hops.extend(
                    text.split(',')
                        .map(|entry| entry.trim().parse::<IpAddr>().ok()),
                ),
                Err(_) => hops.push(None),
            }
        }
        let mut farthest = None;
        for hop in hops.iter().rev() {
            match hop {
                None => return peer,
                Some(ip) if self.contains(*ip) => farthest = Some(ip.to_canonical()),
                Some(ip) => return ip.to_canonical(),
            }
        }
        farthest.unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn client(proxies: &TrustedProxies, peer: &str, headers: &[&str]) -> IpAddr {
        proxies.client_ip(ip(peer), headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn nothing_trusted_means_the_peer() {
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert_eq!(
            client(&none, "192.0.2.1", &["198.51.100.7"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            client(&proxies, "192.0.2.1", &["198.51.100.7"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse(" 10.0.0.1 , 10.1.0.0/16, fd00::/8").unwrap();
        // The client claimed 203.0.113.9; the edge proxy appended who it really was.
        assert_eq!(
            client(&proxies, "10.0.0.1", &["203.0.113.9, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Two proxies: the inner one's own hop is skipped; several header lines read in order.
        assert_eq!(
            client(&proxies, "10.0.0.1", &["198.51.100.7", "10.1.2.3"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            client(&proxies, "fd00::1", &["2001:db8::1"]),
            ip("2001:db8::1")
        );
        // A peer mapped into IPv6 is still the trusted IPv4 proxy.
        assert_eq!(
            client(&proxies, "::ffff:10.0.0.1", &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Every hop trusted: the farthest.
        assert_eq!(
            client(&proxies, "10.0.0.1", &["10.1.0.5, 10.1.0.6"]),
            ip("10.1.0.5")
        );
    }

    #[test]
    fn a_missing_or_malformed_header_leaves_the_peer() {
        let proxies = TrustedProxies::parse("10.0.0.1, 10.1.0.0/16").unwrap();
        for headers in [
            &[][..],
            &[""],
            &["not an address"],
            &["198.51.100.7, nonsense"],
            &["198.51.100.7:1234"],
            // Malformed right of the client, between trusted hops.
            &["198.51.100.7, nonsense, 10.1.0.5"],
            &["198.51.100.7", "nonsense", "10.1.0.5"],
        ] {
            assert_eq!(
                client(&proxies, "10.0.0.1", headers),
                ip("10.0.0.1"),
                "{headers:?}"
            );
        }
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), [&[0xff, 0xfe][..]]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn what_the_client_wrote_left_of_itself_is_not_read() {
        let proxies = TrustedProxies::parse("10.0.0.1, 10.1.0.0/16").unwrap();
        for headers in [
            &["nonsense, 198.51.100.7"][..],
            &["203.0.113.9:80, nonsense, 198.51.100.7, 10.1.0.5"],
            &["nonsense", "198.51.100.7", "10.1.0.5"],
        ] {
            assert_eq!(
                client(&proxies, "10.0.0.1", headers),
                ip("198.51.100.7"),
                "{headers:?}"
            );
        }
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), [&[0xff, 0xfe][..], b"198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn entries_that_are_not_addresses_or_ranges_are_refused_by_name() {
        let err = TrustedProxies::parse("10.0.0.1, proxy.internal").unwrap_err();
        assert!(err.contains("`proxy.internal`"), "{err}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn ranges_of_every_address_are_refused_by_name() {
        for entry in ["0.0.0.0/0", "::/0", "10.0.0.0/0"] {
            let err = TrustedProxies::parse(&format!("10.0.0.1, {entry}")).unwrap_err();
            assert!(err.contains(&format!("`{entry}`")), "{err}");
            assert!(err.contains("every address"), "{err}");
        }
    }
}
