//! Home networks: which addresses belong to the monitored network.

use std::net::IpAddr;

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
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.contains(IpAddr::V4(v4)),
                None => {
                    let a = u128::from(a);
                    self.v6.iter().any(|&(net, mask)| a & mask == net)
                }
            },
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
