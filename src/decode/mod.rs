//! Decode stage: a frame of any supported link type becomes a [`Packet`], a
//! small fixed-size view whose payload borrows the frame. Built on etherparse's
//! lax slicing, so a packet cut short by the snaplen still yields its headers.

mod link;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{LaxIpSlice, TcpSlice, UdpSlice};

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

/// An address as a 128-bit integer, IPv4 mapped into IPv6: integers
/// compare and hash in a few instructions.
#[inline]
pub fn addr16(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Whether an IPv6 packet whose extension headers `chain` holds (`next`:
/// the fixed header's next-header field) is a later fragment: it has a
/// fragment header, and none of offset 0. Walked by hand, each field
/// bounds-checked: etherparse's iterator over a laxly sliced chain reads
/// past the chain's end when the last header names another that did not
/// parse (found by the `decode` fuzz target).
fn ipv6_later_fragment(mut next: u8, chain: &[u8]) -> bool {
    let (mut at, mut fragment, mut first) = (0, false, false);
    loop {
        let field = |i: usize| chain.get(at + i).copied();
        let len = match next {
            0 | 43 | 60 => field(1).map(|l| (usize::from(l) + 1) * 8),
            44 => field(2).zip(field(3)).map(|(hi, lo)| {
                fragment = true;
                first |= u16::from_be_bytes([hi, lo]) >> 3 == 0;
                8
            }),
            51 => field(1).map(|l| (usize::from(l) + 2) * 4),
            _ => None,
        };
        match (len, field(0)) {
            (Some(len), Some(after)) => (next, at) = (after, at + len),
            _ => return fragment && !first,
        }
    }
}

/// The address [`addr16`] made `a` from. Inlined, and the mapped prefix
/// tested on the integer: called for each end of each flow, it was left
/// out of line when unrelated code changed, and through `Ipv6Addr`'s
/// octets cost 50 instructions a call (3 % of mirai-scan's).
#[inline]
pub fn addr_from16(a: u128) -> IpAddr {
    if a >> 32 == 0xffff {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(a))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    /// Source and destination as [`addr16`] gives them ([`Ip::src`] and
    /// [`Ip::dst`] as addresses). Aligned integers, so the stages after
    /// decoding load them as they were stored: an `IpAddr` is 17 bytes at an
    /// odd offset, copied in pieces that did not line up with the loads that
    /// read it back, which stalled store-to-load forwarding every packet.
    pub src16: u128,
    pub dst16: u128,
    pub v6: bool,
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

impl Ip {
    pub fn src(&self) -> IpAddr {
        self.addr(self.src16)
    }

    pub fn dst(&self) -> IpAddr {
        self.addr(self.dst16)
    }

    fn addr(&self, a: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::from(a as u32))
        }
    }
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
///
/// The link layers are walked by hand (a few fixed offsets); IP and transport
/// headers are sliced with etherparse's lax slices, one layer at a time, so no
/// large composite is built and moved per packet.
#[inline]
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
    // Cut by the snaplen: a header that stops at the end is not an error.
    let cut = (data.len() as u64) < u64::from(frame.orig_len);
    let (ether_type, l3) = match frame.link {
        LinkType::Ethernet => {
            if data.len() < 14 {
                return Err(DecodeError::ShortLink);
            }
            pkt.dst_mac = data[0..6].try_into().ok();
            pkt.src_mac = data[6..12].try_into().ok();
            let mut ether_type = u16::from_be_bytes([data[12], data[13]]);
            let mut at = 14;
            // 802.1Q, 802.1ad and the old QinQ tag, up to three deep.
            for _ in 0..3 {
                if !matches!(ether_type, 0x8100 | 0x88A8 | 0x9100) {
                    break;
                }
                let Some(tag) = data.get(at..at + 4) else {
                    return if cut {
                        Ok(pkt)
                    } else {
                        Err(DecodeError::ShortLink)
                    };
                };
                pkt.vlan = Some(u16::from_be_bytes([tag[0], tag[1]]) & 0x0FFF);
                ether_type = u16::from_be_bytes([tag[2], tag[3]]);
                at += 4;
            }
            (Some(ether_type), &data[at..])
        }
        LinkType::LinuxSll | LinkType::LinuxSll2 => {
            let sll = link::sll(frame.link, data).ok_or(DecodeError::ShortLink)?;
            pkt.src_mac = sll.src_mac;
            (Some(sll.protocol), sll.payload)
        }
        LinkType::Null | LinkType::Loop => {
            let (ether_type, payload) =
                link::null(frame.link, data).ok_or(DecodeError::ShortLink)?;
            match ether_type {
                Some(t) => (Some(t), payload),
                None => return Ok(pkt),
            }
        }
        LinkType::Raw | LinkType::RawIpv4 | LinkType::RawIpv6 => {
            if data.is_empty() {
                return Err(DecodeError::ShortLink);
            }
            (None, data)
        }
        LinkType::Other(_) => return Err(DecodeError::ShortLink),
    };
    match ether_type {
        None | Some(0x0800 | 0x86DD) => {
            decode_ip(&mut pkt, l3, cut)?;
        }
        Some(0x0806) => pkt.arp = link::arp(l3),
        _ => {}
    }
    Ok(pkt)
}

#[inline]
fn decode_ip<'a>(pkt: &mut Packet<'a>, d: &'a [u8], cut: bool) -> Result<(), DecodeError> {
    let ip = match LaxIpSlice::from_slice(d) {
        Ok((ip, _)) => ip,
        // An IP header cut by the snaplen: the frame still counts for its MACs.
        Err(_) if cut => return Ok(()),
        Err(_) => return Err(DecodeError::Malformed),
    };
    let (info, payload) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let fragment = if !h.is_fragmenting_payload() {
                Fragment::No
            } else if h.fragments_offset().value() == 0 {
                Fragment::First
            } else {
                Fragment::Later
            };
            let info = Ip {
                src16: addr16(IpAddr::V4(Ipv4Addr::from(h.source()))),
                dst16: addr16(IpAddr::V4(Ipv4Addr::from(h.destination()))),
                v6: false,
                proto: v4.payload_ip_number().0,
                ttl: h.ttl(),
                fragment,
            };
            (info, v4.payload())
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let p = v6.payload();
            let fragment = if !p.fragmented {
                Fragment::No
            } else if ipv6_later_fragment(h.next_header().0, v6.extensions().slice()) {
                Fragment::Later
            } else {
                Fragment::First
            };
            let info = Ip {
                src16: u128::from_be_bytes(h.source()),
                dst16: u128::from_be_bytes(h.destination()),
                v6: true,
                proto: p.ip_number.0,
                ttl: h.hop_limit(),
                fragment,
            };
            (info, p)
        }
    };
    pkt.ip = Some(info);
    if info.fragment == Fragment::Later {
        return Ok(());
    }
    let d = payload.payload;
    // A transport header missing with no snaplen to blame is malformed (an IP
    // length that claims more than the frame holds is the frame lying).
    let excused = cut;
    pkt.transport = match info.proto {
        6 => match TcpSlice::from_slice(d) {
            Ok(t) => Transport::Tcp(link::tcp(&t)),
            Err(_) if excused => Transport::None,
            Err(_) => return Err(DecodeError::Malformed),
        },
        17 => match UdpSlice::from_slice_lax(d) {
            Ok(u) => Transport::Udp {
                src_port: u.source_port(),
                dst_port: u.destination_port(),
                payload: u.payload(),
            },
            Err(_) if excused => Transport::None,
            Err(_) => return Err(DecodeError::Malformed),
        },
        1 | 58 if d.len() >= 2 => Transport::Icmp {
            kind: d[0],
            code: d[1],
        },
        _ => Transport::None,
    };
    Ok(())
}

#[cfg(test)]
mod tests;
