//! The link-layer headers etherparse does not cover (SLL2, BSD null/loop) or
//! where we want only a few fields (SLL, ARP), read by hand with bounds checks.

use std::net::Ipv4Addr;

use etherparse::TcpSlice;

use super::{Arp, Mac, Tcp};
use crate::capture::LinkType;

pub(super) struct Sll<'a> {
    pub protocol: u16,
    pub src_mac: Option<Mac>,
    pub payload: &'a [u8],
}

const ARPHRD_ETHER: u16 = 1;

/// Linux cooked capture v1 (16 bytes) or v2 (20 bytes). The address field is
/// the sender's link address, whatever the packet direction.
pub(super) fn sll(link: LinkType, d: &[u8]) -> Option<Sll<'_>> {
    let be16 = |o: usize| u16::from_be_bytes([d[o], d[o + 1]]);
    let (protocol, hatype, halen, addr_at, hdr) = if link == LinkType::LinuxSll2 {
        if d.len() < 20 {
            return None;
        }
        (be16(0), be16(8), d[11], 12, 20)
    } else {
        if d.len() < 16 {
            return None;
        }
        (be16(14), be16(2), be16(4) as u8, 6, 16)
    };
    let src_mac = if hatype == ARPHRD_ETHER && halen == 6 {
        let mut m = [0u8; 6];
        m.copy_from_slice(&d[addr_at..addr_at + 6]);
        (m != [0; 6]).then_some(m)
    } else {
        None
    };
    Some(Sll {
        protocol,
        src_mac,
        payload: &d[hdr..],
    })
}

/// BSD null (address family in the writer's byte order) and OpenBSD loop
/// (network order). Returns the ethertype for IPv4/IPv6, `None` for others.
pub(super) fn null(link: LinkType, d: &[u8]) -> Option<(Option<u16>, &[u8])> {
    let b: [u8; 4] = d.get(..4)?.try_into().ok()?;
    let families = if link == LinkType::Loop {
        [u32::from_be_bytes(b); 2]
    } else {
        [u32::from_le_bytes(b), u32::from_be_bytes(b)]
    };
    let ether_type = families.iter().find_map(|af| match af {
        2 => Some(0x0800),
        // AF_INET6 differs by OS: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
        24 | 28 | 30 | 10 => Some(0x86DD),
        _ => None,
    });
    Some((ether_type, &d[4..]))
}

/// ARP for Ethernet/IPv4 (hardware type 1, protocol 0x0800, lengths 6 and 4).
pub(super) fn arp(d: &[u8]) -> Option<Arp> {
    if d.len() < 28 || d[4] != 6 || d[5] != 4 || d[2..4] != [0x08, 0x00] {
        return None;
    }
    let mut sender_mac = [0u8; 6];
    sender_mac.copy_from_slice(&d[8..14]);
    Some(Arp {
        op: u16::from_be_bytes([d[6], d[7]]),
        sender_mac,
        sender_ip: Ipv4Addr::new(d[14], d[15], d[16], d[17]),
        target_ip: Ipv4Addr::new(d[24], d[25], d[26], d[27]),
    })
}

pub(super) fn tcp<'a>(t: &TcpSlice<'a>) -> Tcp<'a> {
    Tcp {
        src_port: t.source_port(),
        dst_port: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags: t.slice()[13],
        window: t.window_size(),
        // `options()` borrows the slice struct; take them from the packet bytes.
        options: t
            .slice()
            .get(20..usize::from(t.data_offset()) * 4)
            .unwrap_or(&[]),
        payload: t.payload(),
    }
}
