//! Decode stage: a frame of any supported link type becomes a [`Packet`], a
//! small fixed-size view whose payload borrows the frame. Built on etherparse's
//! lax slicing, so a packet cut short by the snaplen still yields its headers.

mod link;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::capture::{Frame, LinkType, Nanos};

pub type Mac = [u8; 6];

/// TCP flag bits as they stand in the header's 13th byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Not a fragment.
    No,
    /// Offset 0 with more to come: the transport header is here and used.
    First,
    /// A later fragment: no transport header.
    Later,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol number (after IPv6 extension headers).
    pub proto: u8,
    pub ttl: u8,
    pub fragment: Fragment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Raw option bytes, for fingerprinting.
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl Tcp<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    None,
    Tcp(Tcp<'a>),
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    Icmp {
        kind: u8,
        code: u8,
    },
}

/// An ARP packet over Ethernet and IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub ts: Nanos,
    /// Length on the wire.
    pub wire_len: u32,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    /// Innermost VLAN id, if tagged.
    pub vlan: Option<u16>,
    pub ip: Option<Ip>,
    pub arp: Option<Arp>,
    pub transport: Transport<'a>,
}

/// Why a frame could not be decoded. Counted, never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its link-layer header.
    ShortLink,
    /// An IP or transport header that is malformed (not merely cut by the snaplen).
    Malformed,
}

/// Decodes one frame. Frames that carry neither IP nor ARP (LLDP, STP, …)
/// decode fine with `ip` and `arp` empty.
pub fn decode<'a>(frame: &Frame<'a>) -> Result<Packet<'a>, DecodeError> {
    let data = frame.data;
    let mut pkt = Packet {
        ts: frame.ts,
        wire_len: frame.orig_len,
        src_mac: None,
        dst_mac: None,
        vlan: None,
        ip: None,
        arp: None,
        transport: Transport::None,
    };
    // Cut by the snaplen: a parse that stops at the end is not an error.
    let cut = (data.len() as u64) < u64::from(frame.orig_len);
    let sliced = match frame.link {
        LinkType::Ethernet => {
            let s = LaxSlicedPacket::from_ethernet(data).map_err(|_| DecodeError::ShortLink)?;
            if let Some(etherparse::LinkSlice::Ethernet2(eth)) = &s.link {
                pkt.src_mac = Some(eth.source());
                pkt.dst_mac = Some(eth.destination());
            }
            s
        }
        LinkType::LinuxSll | LinkType::LinuxSll2 => {
            let sll = link::sll(frame.link, data).ok_or(DecodeError::ShortLink)?;
            pkt.src_mac = sll.src_mac;
            LaxSlicedPacket::from_ether_type(EtherType(sll.protocol), sll.payload)
        }
        LinkType::Null | LinkType::Loop => {
            let (ether_type, payload) =
                link::null(frame.link, data).ok_or(DecodeError::ShortLink)?;
            match ether_type {
                Some(t) => LaxSlicedPacket::from_ether_type(EtherType(t), payload),
                None => return Ok(pkt),
            }
        }
        LinkType::Raw | LinkType::RawIpv4 | LinkType::RawIpv6 => {
            if data.is_empty() {
                return Err(DecodeError::ShortLink);
            }
            match LaxSlicedPacket::from_ip(data) {
                Ok(s) => s,
                Err(_) if cut => return Ok(pkt),
                Err(_) => return Err(DecodeError::Malformed),
            }
        }
        LinkType::Other(_) => return Err(DecodeError::ShortLink),
    };
    pkt.vlan = sliced.vlan_ids().last().map(|v| v.value());
    fill_network(&mut pkt, &sliced)?;
    if sliced.stop_err.is_some() && !cut {
        // A TCP or UDP header that should be here and did not parse, with no
        // snaplen to blame.
        if let Some(ip) = pkt.ip {
            let wants_transport = matches!(ip.proto, 6 | 17) && ip.fragment != Fragment::Later;
            if wants_transport && pkt.transport == Transport::None {
                return Err(DecodeError::Malformed);
            }
        }
    }
    Ok(pkt)
}

fn fill_network<'a>(pkt: &mut Packet<'a>, s: &LaxSlicedPacket<'a>) -> Result<(), DecodeError> {
    let (ip, payload) = match &s.net {
        None => {
            if s.stop_err.is_some() {
                // An ethertype of IP whose header did not parse.
                let ip_type = matches!(
                    link_payload_type(s),
                    Some(EtherType::IPV4 | EtherType::IPV6 | EtherType::ARP)
                );
                if ip_type {
                    return Err(DecodeError::Malformed);
                }
            }
            return Ok(());
        }
        Some(LaxNetSlice::Arp(arp)) => {
            pkt.arp = link::arp(arp.slice());
            return Ok(());
        }
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let fragment = if !h.is_fragmenting_payload() {
                Fragment::No
            } else if h.fragments_offset().value() == 0 {
                Fragment::First
            } else {
                Fragment::Later
            };
            let ip = Ip {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                proto: v4.payload_ip_number().0,
                ttl: h.ttl(),
                fragment,
            };
            (ip, v4.payload())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let p = v6.payload();
            // etherparse does not expose the IPv6 fragment offset in lax mode;
            // IPv6 fragments are counted and not looked into.
            let fragment = if p.fragmented {
                Fragment::Later
            } else {
                Fragment::No
            };
            let ip = Ip {
                src: IpAddr::V6(Ipv6Addr::from(h.source())),
                dst: IpAddr::V6(Ipv6Addr::from(h.destination())),
                proto: p.ip_number.0,
                ttl: h.hop_limit(),
                fragment,
            };
            (ip, p)
        }
    };
    pkt.ip = Some(ip);
    pkt.transport = match &s.transport {
        Some(TransportSlice::Tcp(t)) => Transport::Tcp(link::tcp(t)),
        Some(TransportSlice::Udp(u)) => Transport::Udp {
            src_port: u.source_port(),
            dst_port: u.destination_port(),
            payload: u.payload(),
        },
        Some(TransportSlice::Icmpv4(i)) => Transport::Icmp {
            kind: i.type_u8(),
            code: i.code_u8(),
        },
        Some(TransportSlice::Icmpv6(i)) => Transport::Icmp {
            kind: i.type_u8(),
            code: i.code_u8(),
        },
        _ if ip.fragment == Fragment::First => {
            link::first_fragment_transport(ip.proto, payload.payload)
        }
        _ => Transport::None,
    };
    Ok(())
}

fn link_payload_type(s: &LaxSlicedPacket<'_>) -> Option<EtherType> {
    if let Some(ext) = s.link_exts.last() {
        return match ext {
            etherparse::LaxLinkExtSlice::Vlan(v) => Some(v.ether_type()),
            etherparse::LaxLinkExtSlice::Macsec(_) => None,
        };
    }
    match &s.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => Some(e.ether_type()),
        Some(etherparse::LinkSlice::EtherPayload(p)) => Some(p.ether_type),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
