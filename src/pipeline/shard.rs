//! Picks a worker's bucket for a frame from its 5-tuple, reading only the
//! bytes needed to find it (the worker decodes the frame fully).
//!
//! By 5-tuple, not by address pair: two hosts with many conversations
//! (a flood, a busy NAS) spread over all workers, and so do their unanswered
//! SYNs over the SYN cache's regions (see `flow::syn_cache`). A fragment
//! after the first carries no ports; it goes by its addresses alone, which is
//! fine: such fragments are only counted, and counts add up whichever worker
//! has them.

use std::net::{IpAddr, Ipv4Addr};

use crate::capture::{Frame, LinkType};
use crate::decode::{addr16, ipv6_chain};
use crate::flow::shard_bucket_of16;

/// The frame's shard bucket: its flow key's, when the ports can be read.
/// Frames without IP (ARP, LLDP, damaged) all go to bucket 0.
pub fn bucket(fr: &Frame<'_>) -> usize {
    tuple_bucket(fr).unwrap_or(0)
}

/// The bucket of a 5-tuple: addresses (as [`addr16`] gives them), ports
/// (TCP and UDP, first fragments) and IP protocol. Each function below
/// returns the bucket, not the tuple: a tuple returned through memory was
/// read back in other pieces than it was written in, which stalled every
/// frame.
fn key_bucket(a: u128, b: u128, ports: Option<(u16, u16)>, proto: u8) -> usize {
    let (sp, dp) = ports.unwrap_or((0, 0));
    shard_bucket_of16(a, b, sp, dp, proto)
}

fn tuple_bucket(fr: &Frame<'_>) -> Option<usize> {
    let d = fr.data;
    let (mut ether_type, mut at) = match fr.link {
        LinkType::Ethernet => (be16(d, 12)?, 14),
        LinkType::LinuxSll => (be16(d, 14)?, 16),
        LinkType::LinuxSll2 => (be16(d, 0)?, 20),
        LinkType::Null | LinkType::Loop | LinkType::Raw | LinkType::RawIpv4 | LinkType::RawIpv6 => {
            let at = if matches!(fr.link, LinkType::Null | LinkType::Loop) {
                4
            } else {
                0
            };
            return ip_bucket(d.get(at..)?);
        }
        LinkType::Other(_) => return None,
    };
    // 802.1Q, 802.1ad and the old QinQ tag, up to three deep.
    for _ in 0..3 {
        if !matches!(ether_type, 0x8100 | 0x88A8 | 0x9100) {
            break;
        }
        ether_type = be16(d, at + 2)?;
        at += 4;
    }
    match ether_type {
        0x0800 | 0x86DD => ip_bucket(d.get(at..)?),
        _ => None,
    }
}

fn ip_bucket(d: &[u8]) -> Option<usize> {
    match d.first()? >> 4 {
        4 => {
            let s: [u8; 4] = d.get(12..16)?.try_into().ok()?;
            let t: [u8; 4] = d.get(16..20)?.try_into().ok()?;
            let proto = *d.get(9)?;
            let first = be16(d, 6)? & 0x1FFF == 0;
            let ihl = usize::from(d[0] & 0x0F) * 4;
            let ports = if first { ports(d, ihl, proto) } else { None };
            Some(key_bucket(
                addr16(IpAddr::V4(Ipv4Addr::from(s))),
                addr16(IpAddr::V4(Ipv4Addr::from(t))),
                ports,
                proto,
            ))
        }
        6 => {
            let s: [u8; 16] = d.get(8..24)?.try_into().ok()?;
            let t: [u8; 16] = d.get(24..40)?.try_into().ok()?;
            let chain = ipv6_chain(*d.get(6)?, &d[40..]);
            if chain.cut {
                return None;
            }
            let ports = if chain.later_fragment {
                None
            } else {
                ports(d, 40 + chain.len, chain.next)
            };
            Some(key_bucket(
                u128::from_be_bytes(s),
                u128::from_be_bytes(t),
                ports,
                chain.next,
            ))
        }
        _ => None,
    }
}

fn ports(d: &[u8], at: usize, proto: u8) -> Option<(u16, u16)> {
    match proto {
        6 | 17 => Some((be16(d, at)?, be16(d, at + 2)?)),
        _ => None,
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use etherparse::{IpNumber, PacketBuilder};

    use super::*;
    use crate::decode::decode;
    use crate::flow::PacketView;

    /// The bucket the worker files the decoded packet's flow under.
    fn decoded_bucket(fr: &Frame<'_>) -> usize {
        let p = decode(fr).unwrap();
        let ip = p.ip.unwrap();
        PacketView::of(&p, &ip).0.key.shard_bucket()
    }

    #[test]
    fn reader_and_decoder_agree_on_the_bucket() {
        const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
        const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
        let v4 = [192, 168, 1, 2];
        let v6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut frames: Vec<(LinkType, Vec<u8>)> = Vec::new();
        for (sport, dport) in [(40000, 23), (5353, 5353), (1, 65535)] {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(A, B)
                .ipv4(v4, [8, 8, 8, 8], 64)
                .tcp(sport, dport, 1, 1024)
                .write(&mut v, b"x")
                .unwrap();
            frames.push((LinkType::Ethernet, v));
            let mut v = Vec::new();
            PacketBuilder::ethernet2(A, B)
                .single_vlan(7.try_into().unwrap())
                .ipv6(
                    v6,
                    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    64,
                )
                .udp(sport, dport)
                .write(&mut v, b"x")
                .unwrap();
            frames.push((LinkType::Ethernet, v));
            let mut v = Vec::new();
            PacketBuilder::ipv4([10, 0, 0, 1], v4, 64)
                .udp(sport, dport)
                .write(&mut v, b"x")
                .unwrap();
            frames.push((LinkType::Raw, v));
        }
        // ICMP: no ports.
        let mut v = Vec::new();
        PacketBuilder::ipv4(v4, [1, 1, 1, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut v, b"ping")
            .unwrap();
        frames.push((LinkType::Raw, v));
        // IPv6 behind a hop-by-hop options header.
        let mut v = Vec::new();
        PacketBuilder::ipv6(v6, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 64)
            .tcp(443, 50000, 1, 1024)
            .write(&mut v, b"x")
            .unwrap();
        let mut hop = v[..40].to_vec();
        hop[6] = 0; // next header: hop-by-hop
        hop[4..6].copy_from_slice(&(u16::from_be_bytes([v[4], v[5]]) + 8).to_be_bytes());
        hop.extend_from_slice(&[u8::from(IpNumber::TCP), 0, 1, 4, 0, 0, 0, 0]);
        hop.extend_from_slice(&v[40..]);
        frames.push((LinkType::Raw, hop));
        let mut buckets = Vec::new();
        for (link, data) in &frames {
            let fr = Frame::whole(*link, data);
            assert_eq!(bucket(&fr), decoded_bucket(&fr), "{link:?} {data:02x?}");
            buckets.push(bucket(&fr));
        }
        buckets.sort_unstable();
        buckets.dedup();
        assert!(buckets.len() > 3, "tuples spread over buckets: {buckets:?}");
    }
}
