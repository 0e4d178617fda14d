//! Picks a worker for a frame from its IP address pair, reading only the
//! bytes needed to find them (the worker decodes the frame fully).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::capture::{Frame, LinkType};
use crate::flow::FlowKey;

/// A symmetric hash of the frame's IP addresses; frames without IP (ARP, LLDP,
/// damaged) all go to the same worker.
pub fn hash(fr: &Frame<'_>) -> u64 {
    match addrs(fr) {
        Some((a, b)) => FlowKey::shard_hash(a, b),
        None => 0,
    }
}

fn addrs(fr: &Frame<'_>) -> Option<(IpAddr, IpAddr)> {
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
            return ip_addrs(d.get(at..)?);
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
        0x0800 | 0x86DD => ip_addrs(d.get(at..)?),
        _ => None,
    }
}

fn ip_addrs(d: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match d.first()? >> 4 {
        4 => {
            let s: [u8; 4] = d.get(12..16)?.try_into().ok()?;
            let t: [u8; 4] = d.get(16..20)?.try_into().ok()?;
            Some((IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(t))))
        }
        6 => {
            let s: [u8; 16] = d.get(8..24)?.try_into().ok()?;
            let t: [u8; 16] = d.get(24..40)?.try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(t))))
        }
        _ => None,
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}
