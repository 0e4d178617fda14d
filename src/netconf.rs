//! Home networks: which addresses belong to the monitored network.

use std::net::IpAddr;

use crate::decode::addr16;

/// A set of CIDR blocks, checked with a few integer compares per address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HomeNets {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// RFC 1918, carrier-grade NAT (100.64/10), link-local, unique local.
pub const DEFAULT_HOME_NETS: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "fe80::/10",
    "fc00::/7",
];

impl Default for HomeNets {
    fn default() -> Self {
        HomeNets::parse(DEFAULT_HOME_NETS.iter().copied()).expect("built-in home networks parse")
    }
}

impl HomeNets {
    /// Parses CIDR blocks such as `192.168.1.0/24` or `fd00::/8` (a bare
    /// address is a single host).
    pub fn parse<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> Result<HomeNets, String> {
        let mut nets = HomeNets {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        for c in cidrs {
            let (addr, len) = match c.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (c, None),
            };
            let ip: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("invalid network '{c}': not an IP address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len: u32 = match len {
                Some(l) => l.trim().parse().ok().filter(|&n| n <= max).ok_or_else(|| {
                    format!("invalid network '{c}': prefix length must be 0-{max}")
                })?,
                None => max,
            };
            match ip {
                IpAddr::V4(a) => {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    nets.v4.push((u32::from(a) & mask, mask));
                }
                IpAddr::V6(a) => {
                    let mask = if len == 0 {
                        0
                    } else {
                        u128::MAX << (128 - len)
                    };
                    nets.v6.push((u128::from(a) & mask, mask));
                }
            }
        }
        Ok(nets)
    }

    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains16(addr16(ip))
    }

    /// [`HomeNets::contains`] for an address as [`addr16`] gives it (as
    /// decoded packets hold them): IPv4 and IPv4-mapped IPv6 addresses are
    /// matched against the IPv4 blocks.
    #[inline]
    pub fn contains16(&self, a: u128) -> bool {
        // Every block is tested, with no early exit: on traffic that mixes
        // home and Internet addresses, a loop that stopped at the first
        // match mispredicted its exit on about every packet.
        if a >> 32 == 0xffff {
            let a = a as u32;
            self.v4
                .iter()
                .fold(false, |hit, &(net, mask)| hit | (a & mask == net))
        } else {
            self.v6
                .iter()
                .fold(false, |hit, &(net, mask)| hit | (a & mask == net))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let h = HomeNets::default();
        for a in [
            "192.168.1.5",
            "10.1.2.3",
            "172.31.0.1",
            "100.64.0.1",
            "fe80::1",
            "fd12::1",
        ] {
            assert!(h.contains(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "100.128.0.1"] {
            assert!(!h.contains(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn mapped_ipv6_goes_by_the_ipv4_blocks() {
        let h = HomeNets::parse(["192.168.0.0/16", "::/0"]).unwrap();
        let a16 = |a: &str| addr16(a.parse().unwrap());
        assert!(h.contains("::ffff:192.168.1.5".parse().unwrap()));
        assert!(h.contains16(a16("192.168.1.5")));
        // IPv4 is not inside the IPv6 blocks, even ::/0.
        assert!(!h.contains("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!h.contains16(a16("8.8.8.8")));
        assert!(h.contains16(a16("2001:db8::1")));
    }

    #[test]
    fn custom_and_errors() {
        let h = HomeNets::parse(["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]).unwrap();
        assert!(h.contains("203.0.113.9".parse().unwrap()));
        assert!(h.contains("198.51.100.7".parse().unwrap()));
        assert!(!h.contains("198.51.100.8".parse().unwrap()));
        assert!(h.contains("2001:db8:1::1".parse().unwrap()));
        assert!(HomeNets::parse(["10.0.0.0/33"]).is_err());
        assert!(HomeNets::parse(["banana"]).is_err());
    }
}
