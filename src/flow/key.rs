//! Symmetric 5-tuple key: both directions of a conversation map to one key.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::decode::{addr_from16, addr16};

/// Addresses as 128-bit integers (IPv4 mapped into IPv6), the lower one
/// first: integers compare and hash in a few instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub lo: u128,
    pub hi: u128,
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
}

/// Which side of the key sent a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Lo,
    Hi,
}

impl FlowKey {
    /// The key of a packet and the side its sender is on.
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        src_port: u16,
        dst_port: u16,
        proto: u8,
    ) -> (FlowKey, Side) {
        FlowKey::of16(addr16(src), addr16(dst), src_port, dst_port, proto)
    }

    /// [`FlowKey::new`] for addresses as [`addr16`] gives them.
    #[inline]
    pub fn of16(s: u128, d: u128, src_port: u16, dst_port: u16, proto: u8) -> (FlowKey, Side) {
        if (s, src_port) <= (d, dst_port) {
            let key = FlowKey {
                lo: s,
                hi: d,
                lo_port: src_port,
                hi_port: dst_port,
                proto,
            };
            (key, Side::Lo)
        } else {
            let key = FlowKey {
                lo: d,
                hi: s,
                lo_port: dst_port,
                hi_port: src_port,
                proto,
            };
            (key, Side::Hi)
        }
    }

    pub fn addr(&self, side: Side) -> IpAddr {
        addr_from16(match side {
            Side::Lo => self.lo,
            Side::Hi => self.hi,
        })
    }

    pub fn port(&self, side: Side) -> u16 {
        match side {
            Side::Lo => self.lo_port,
            Side::Hi => self.hi_port,
        }
    }

    /// The shard bucket of the flow, the same for both directions: the
    /// worker that owns the bucket gets all of the flow's packets.
    pub fn shard_bucket(&self) -> usize {
        shard_bucket_of(self.fx_hash())
    }

    /// The key's Fx hash, from which its shard bucket is taken (and, by the
    /// flow table, its index entry and SYN-cache slot: one hash for all).
    #[inline]
    pub fn fx_hash(&self) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }
}

/// The shard bucket of a key whose [`FlowKey::fx_hash`] is `x`.
pub fn shard_bucket_of(x: u64) -> usize {
    // Fx leaves the low bits weak; fold the high ones in.
    ((x ^ (x >> 29) ^ (x >> 47)) % SHARD_BUCKETS as u64) as usize
}

/// Hash buckets that flows are spread over; each worker owns some, a bit
/// each in a `u64` mask.
pub const SHARD_BUCKETS: usize = 64;

/// Every shard bucket: a worker that sees all packets.
pub const ALL_BUCKETS: u64 = u64::MAX;

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_give_one_key() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "8.8.8.8".parse().unwrap();
        let (k1, s1) = FlowKey::new(a, b, 5000, 53, 17);
        let (k2, s2) = FlowKey::new(b, a, 53, 5000, 17);
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
        assert_eq!(k1.addr(s1), a);
        assert_eq!(k1.port(s2), 53);
        assert_eq!(k1.shard_bucket(), k2.shard_bucket());
    }

    #[test]
    fn same_address_different_ports() {
        let a: IpAddr = "::1".parse().unwrap();
        let (k1, s1) = FlowKey::new(a, a, 9, 7, 6);
        let (k2, s2) = FlowKey::new(a, a, 7, 9, 6);
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
    }
}
