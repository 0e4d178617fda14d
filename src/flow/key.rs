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
        shard_bucket_of16(self.lo, self.hi, self.lo_port, self.hi_port, self.proto)
    }

    /// The key's Fx hash: the flow table's index entry and, within the
    /// bucket's region, its SYN-cache slot.
    #[inline]
    pub fn fx_hash(&self) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }
}

/// The shard bucket of a 5-tuple (addresses as [`addr16`] gives them) in
/// either order: the fields are mixed symmetrically, by exclusive or, so the
/// reader picks a worker without ordering the addresses as a key does. That
/// comparison is a coin toss per frame, a mispredicted branch half the time:
/// with the key's Fx hash, finding the bucket took 7 % of a two-thread run.
#[inline]
pub fn shard_bucket_of16(a: u128, b: u128, a_port: u16, b_port: u16, proto: u8) -> usize {
    let fold = |x: u128| x as u64 ^ (x >> 64) as u64;
    let x = fold(a) ^ fold(b) ^ (u64::from(a_port ^ b_port) << 32) ^ (u64::from(proto) << 48);
    // The top bits of a multiply depend on every bit below them.
    ((x ^ (x >> 32)).wrapping_mul(0xff51_afd7_ed55_8ccd) >> (64 - BUCKET_BITS)) as usize
}

const BUCKET_BITS: u32 = SHARD_BUCKETS.trailing_zeros();
// The bucket is the top `BUCKET_BITS` bits of the mix: every bucket is
// reached, and none beyond, only for a power of two.
const _: () = assert!(SHARD_BUCKETS.is_power_of_two());

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

    /// The bucket spread of flows that differ in one field only: a host's
    /// connections to one server, many hosts to one service, a scan of an
    /// IPv6 range. Each of the 64 buckets gets between half and twice its
    /// share.
    #[test]
    fn flows_spread_evenly_over_the_buckets() {
        let v4 = |i: u32| addr16(IpAddr::from((0x0A00_0000 + i).to_be_bytes()));
        let v6 = |i: u32| 0x2001_0db8_u128 << 96 | u128::from(i);
        let server = v4(0x0808_0808);
        let spread = |name: &str, bucket: &dyn Fn(u32) -> usize| {
            let mut counts = [0u32; SHARD_BUCKETS];
            (1..=16_384).for_each(|i| counts[bucket(i)] += 1);
            let share = 16_384 / SHARD_BUCKETS as u32;
            let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(
                *least >= share / 2 && *most <= share * 2,
                "{name}: {least}..{most} flows a bucket, {share} each expected"
            );
        };
        spread("client ports", &|i| {
            shard_bucket_of16(v4(7), server, 32768 + i as u16, 443, 6)
        });
        spread("client hosts", &|i| {
            shard_bucket_of16(v4(i), server, 5353, 53, 17)
        });
        spread("server ports", &|i| {
            shard_bucket_of16(v4(7), server, 40000, i as u16, 6)
        });
        spread("IPv6 targets", &|i| {
            shard_bucket_of16(v6(1), v6(i), 40000, 23, 6)
        });
    }

    #[test]
    fn the_bucket_is_the_same_both_ways_round() {
        for (a, b, pa, pb) in [
            (1u128, 2u128, 80, 40000),
            (5, 5, 9, 7),
            (u128::MAX, 0, 0, 0),
        ] {
            assert_eq!(
                shard_bucket_of16(a, b, pa, pb, 6),
                shard_bucket_of16(b, a, pb, pa, 6)
            );
            let (key, _) = FlowKey::of16(b, a, pb, pa, 6);
            assert_eq!(key.shard_bucket(), shard_bucket_of16(a, b, pa, pb, 6));
        }
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
