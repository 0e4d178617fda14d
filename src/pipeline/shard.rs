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
use crate::decode::addr16;
use crate::flow::FlowKey;

/// The frame's shard bucket: its flow key's, when the ports can be read.
/// Frames without IP (ARP, LLDP, damaged) all go to bucket 0.
pub fn bucket(fr: &Frame<'_>) -> usize {
    match tuple(fr) {
        Some((a, b, ports, proto)) => {
            let (sp, dp) = ports.unwrap_or((0, 0));
            FlowKey::of16(a, b, sp, dp, proto).0.shard_bucket()
        }
        None => 0,
    }
}

/// Addresses (as [`addr16`] gives them), ports (TCP and UDP, first
/// fragments) and IP protocol.
type Tuple = (u128, u128, Option<(u16, u16)>, u8);

fn tuple(fr: &Frame<'_>) -> Option<Tuple> {
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
            return ip_tuple(d.get(at..)?);
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
        0x0800 | 0x86DD => ip_tuple(d.get(at..)?),
        _ => None,
    }
}

fn ip_tuple(d: &[u8]) -> Option<Tuple> {
    match d.first()? >> 4 {
        4 => {
            let s: [u8; 4] = d.get(12..16)?.try_into().ok()?;
            let t: [u8; 4] = d.get(16..20)?.try_into().ok()?;
            let proto = *d.get(9)?;
            let first = be16(d, 6)? & 0x1FFF == 0;
            let ihl = usize::from(d[0] & 0x0F) * 4;
            let ports = if first { ports(d, ihl, proto) } else { None };
            Some((
                addr16(IpAddr::V4(Ipv4Addr::from(s))),
                addr16(IpAddr::V4(Ipv4Addr::from(t))),
                ports,
                proto,
            ))
        }
        6 => {
            let s: [u8; 16] = d.get(8..24)?.try_into().ok()?;
            let t: [u8; 16] = d.get(24..40)?.try_into().ok()?;
            let (mut next, mut at) = (*d.get(6)?, 40);
            let mut first = true;
            // Extension headers, as far as a few go.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let len = (usize::from(*d.get(at + 1)?) + 1) * 8;
                        next = *d.get(at)?;
                        at += len;
                    }
                    44 => {
                        first = be16(d, at + 2)? >> 3 == 0;
                        next = *d.get(at)?;
                        at += 8;
                    }
                    51 => {
                        let len = (usize::from(*d.get(at + 1)?) + 2) * 4;
                        next = *d.get(at)?;
                        at += len;
                    }
                    _ => break,
                }
            }
            let ports = if first { ports(d, at, next) } else { None };
            Some((u128::from_be_bytes(s), u128::from_be_bytes(t), ports, next))
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
