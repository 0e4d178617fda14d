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
use crate::decode::{addr16, decode};
use crate::flow::PacketView;
use crate::flow::shard_bucket_of16;

/// The frame's shard bucket: its flow key's, the key the worker's decoder
/// will give it (else a flow would be split between workers, and the
/// report would depend on the thread count). Frames without IP (ARP, LLDP,
/// damaged) all go to bucket 0.
pub fn bucket(fr: &Frame<'_>) -> usize {
    tuple_bucket(fr).unwrap_or_else(|| decoded_bucket(fr))
}

/// The bucket by the decoder itself, for the IP packets the quick reading
/// below leaves to it: fragments, IPv6 extension headers, IPsec AH, a
/// header too short for its length fields. The `decode` fuzz target checks
/// that the two agree.
#[cold]
fn decoded_bucket(fr: &Frame<'_>) -> usize {
    match decode(fr) {
        Ok(p) => {
            p.ip.map_or(0, |ip| PacketView::of(&p, &ip).0.key.shard_bucket())
        }
        Err(_) => 0,
    }
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

/// The bucket as read quickly from the frame, `None` when only the decoder
/// can tell (which includes frames too short for their link header, rare
/// enough to decode twice).
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
        _ => Some(0),
    }
}

/// The bucket of a plain IP packet, its payload bounded by its length
/// field as etherparse's lax slicing bounds it; `None` for the others.
fn ip_bucket(d: &[u8]) -> Option<usize> {
    match d.first()? >> 4 {
        4 => {
            let ihl = usize::from(d[0] & 0x0F) * 4;
            let proto = *d.get(9)?;
            // Fragments (more to come, or an offset) and AH.
            if ihl < 20 || d.len() < ihl || be16(d, 6)? & 0x3FFF != 0 || proto == 51 {
                return None;
            }
            let s: [u8; 4] = d[12..16].try_into().ok()?;
            let t: [u8; 4] = d[16..20].try_into().ok()?;
            let total = usize::from(be16(d, 2)?);
            let end = if total < ihl || total > d.len() {
                d.len()
            } else {
                total
            };
            Some(key_bucket(
                addr16(IpAddr::V4(Ipv4Addr::from(s))),
                addr16(IpAddr::V4(Ipv4Addr::from(t))),
                ports(&d[ihl..end], proto),
                proto,
            ))
        }
        6 => {
            let s: [u8; 16] = d.get(8..24)?.try_into().ok()?;
            let t: [u8; 16] = d.get(24..40)?.try_into().ok()?;
            let next = d[6];
            // Extension headers (hop-by-hop, routing, fragment, AH,
            // destination options).
            if matches!(next, 0 | 43 | 44 | 51 | 60) {
                return None;
            }
            // A payload length of 0 with bytes after the header: a jumbogram.
            let len = usize::from(be16(d, 4)?);
            let end = if len == 0 && d.len() > 40 {
                d.len()
            } else {
                (40 + len).min(d.len())
            };
            Some(key_bucket(
                u128::from_be_bytes(s),
                u128::from_be_bytes(t),
                ports(&d[40..end], next),
                next,
            ))
        }
        _ => Some(0),
    }
}

/// The ports of a TCP or UDP header that the decoder would take as one
/// (etherparse's `TcpSlice`: 20 bytes at least, and as many as its data
/// offset says; a UDP header: 8).
fn ports(d: &[u8], proto: u8) -> Option<(u16, u16)> {
    let whole = match proto {
        6 => d.len() >= 20 && (20..=d.len()).contains(&(usize::from(d[12] >> 4) * 4)),
        17 => d.len() >= 8,
        _ => false,
    };
    whole.then(|| {
        (
            u16::from_be_bytes([d[0], d[1]]),
            u16::from_be_bytes([d[2], d[3]]),
        )
    })
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use etherparse::{IpNumber, PacketBuilder};

    use super::*;

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
        // Those the decoder decides: extension headers, fragments.
        let mut slow = vec![frames.len()];
        frames.push((LinkType::Raw, hop));
        // Cut by the snaplen: a TCP header cut short, and one past the
        // IPv4 total length (in padding). The decoder takes no ports from
        // either.
        let cut = [frames.len(), frames.len() + 1];
        let mut v = frames[0].1.clone();
        v.truncate(14 + 20 + 12);
        frames.push((LinkType::Ethernet, v));
        let mut v = frames[0].1.clone();
        v[14 + 2..14 + 4].copy_from_slice(&30u16.to_be_bytes());
        frames.push((LinkType::Ethernet, v));
        // A first fragment.
        let mut v = frames[0].1.clone();
        v[14 + 6] = 0x20;
        slow.push(frames.len());
        frames.push((LinkType::Ethernet, v));
        let mut buckets = Vec::new();
        for (i, (link, data)) in frames.iter().enumerate() {
            let mut fr = Frame::whole(*link, data);
            if cut.contains(&i) {
                fr.orig_len += 9;
            }
            let p = decode(&fr).unwrap();
            let ip = p.ip.unwrap();
            let decoded = PacketView::of(&p, &ip).0.key.shard_bucket();
            assert_eq!(bucket(&fr), decoded, "{link:?} {data:02x?}");
            // The others take the quick way, not the decoder's.
            assert_eq!(
                tuple_bucket(&fr).is_none(),
                slow.contains(&i),
                "{link:?} {data:02x?}"
            );
            buckets.push(bucket(&fr));
        }
        buckets.sort_unstable();
        buckets.dedup();
        assert!(buckets.len() > 3, "tuples spread over buckets: {buckets:?}");
    }
}
