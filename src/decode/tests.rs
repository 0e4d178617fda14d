use std::net::IpAddr;

use etherparse::PacketBuilder;

use super::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(A, B)
        .ipv4([192, 168, 1, 2], [8, 8, 8, 8], 64)
        .tcp(40000, 23, 1234, 1024)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

#[test]
fn ethernet_ipv4_tcp() {
    let v = tcp_frame(b"hi");
    let p = decode(&Frame::whole(LinkType::Ethernet, &v)).unwrap();
    assert_eq!(p.src_mac, Some(A));
    assert_eq!(p.dst_mac, Some(B));
    let ip = p.ip.unwrap();
    assert_eq!(ip.src(), "192.168.1.2".parse::<IpAddr>().unwrap());
    assert_eq!(ip.proto, 6);
    let Transport::Tcp(t) = p.transport else {
        panic!()
    };
    assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 23, 1234));
    assert!(t.has(tcp_flags::SYN) && !t.has(tcp_flags::ACK));
    assert_eq!(t.payload, b"hi");
}

#[test]
fn snaplen_cut_keeps_headers_and_is_not_an_error() {
    let v = tcp_frame(&[0u8; 200]);
    let cut = Frame {
        ts: 1,
        link: LinkType::Ethernet,
        data: &v[..60],
        orig_len: v.len() as u32,
    };
    let p = decode(&cut).unwrap();
    let Transport::Tcp(t) = p.transport else {
        panic!("{:?}", p.transport)
    };
    assert_eq!(t.dst_port, 23);
    assert_eq!(t.payload.len(), 60 - 54);
}

#[test]
fn headers_cut_without_snaplen_are_malformed() {
    let v = tcp_frame(b"");
    // IPv4 header intact, TCP header cut, and the wire length says that is all there was.
    assert_eq!(
        decode(&Frame::whole(LinkType::Ethernet, &v[..40])),
        Err(DecodeError::Malformed)
    );
    assert_eq!(
        decode(&Frame::whole(LinkType::Ethernet, &v[..10])),
        Err(DecodeError::ShortLink)
    );
}

#[test]
fn vlan_qinq_udp() {
    let b = PacketBuilder::ethernet2(A, B)
        .double_vlan(100.try_into().unwrap(), 200.try_into().unwrap())
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb],
            255,
        )
        .udp(5353, 5353);
    let mut v = Vec::new();
    b.write(&mut v, b"mdns").unwrap();
    let p = decode(&Frame::whole(LinkType::Ethernet, &v)).unwrap();
    assert_eq!(p.vlan, Some(200));
    assert!(matches!(
        p.transport,
        Transport::Udp {
            dst_port: 5353,
            payload: b"mdns",
            ..
        }
    ));
}

#[test]
fn linux_sll_and_sll2() {
    let mut ip = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 53)
        .write(&mut ip, b"q")
        .unwrap();
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 9, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let p = decode(&Frame::whole(LinkType::LinuxSll, &sll)).unwrap();
    assert_eq!(p.src_mac, Some([2, 0, 0, 0, 0, 9]));
    assert!(p.ip.is_some());
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 7, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let p = decode(&Frame::whole(LinkType::LinuxSll2, &sll2)).unwrap();
    assert_eq!(p.src_mac, Some([2, 0, 0, 0, 0, 7]));
    assert!(matches!(p.transport, Transport::Udp { dst_port: 53, .. }));
}

#[test]
fn null_loop_raw() {
    let mut ip = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1, 2, 3, 4)
        .write(&mut ip, b"")
        .unwrap();
    for (link, af) in [
        (LinkType::Null, 2u32.to_le_bytes()),
        (LinkType::Null, 2u32.to_be_bytes()),
        (LinkType::Loop, 2u32.to_be_bytes()),
    ] {
        let mut d = af.to_vec();
        d.extend_from_slice(&ip);
        assert!(
            decode(&Frame::whole(link, &d)).unwrap().ip.is_some(),
            "{link:?}"
        );
    }
    assert!(
        decode(&Frame::whole(LinkType::Raw, &ip))
            .unwrap()
            .ip
            .is_some()
    );
    assert!(
        decode(&Frame::whole(LinkType::RawIpv4, &ip))
            .unwrap()
            .ip
            .is_some()
    );
    assert_eq!(
        decode(&Frame::whole(LinkType::Raw, &[])),
        Err(DecodeError::ShortLink)
    );
}

#[test]
fn arp_sender() {
    let mut v = vec![0xff; 6];
    v.extend_from_slice(&A);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    v.extend_from_slice(&A);
    v.extend_from_slice(&[192, 168, 1, 9, 0, 0, 0, 0, 0, 0, 192, 168, 1, 1]);
    let p = decode(&Frame::whole(LinkType::Ethernet, &v)).unwrap();
    let arp = p.arp.unwrap();
    assert_eq!(arp.sender_ip.to_string(), "192.168.1.9");
    assert_eq!(arp.target_ip.to_string(), "192.168.1.1");
}

#[test]
fn first_fragment_gives_ports_later_ones_do_not() {
    let mut v = tcp_frame(&[7u8; 64]);
    // Set MF on the IPv4 header (offset 14 + 6): a first fragment.
    v[20] = 0x20;
    let p = decode(&Frame::whole(LinkType::Ethernet, &v)).unwrap();
    assert_eq!(p.ip.unwrap().fragment, Fragment::First);
    assert!(matches!(p.transport, Transport::Tcp(t) if t.dst_port == 23));
    // Offset 8 bytes: a later fragment.
    v[20] = 0x00;
    v[21] = 0x01;
    let p = decode(&Frame::whole(LinkType::Ethernet, &v)).unwrap();
    assert_eq!(p.ip.unwrap().fragment, Fragment::Later);
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn garbage_never_panics() {
    let mut x: u32 = 12345;
    for len in 0..200 {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        for link in [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Null,
            LinkType::Raw,
            LinkType::RawIpv6,
        ] {
            let _ = decode(&Frame::whole(link, &data));
        }
    }
}

#[test]
fn addresses_keep_their_family() {
    // An IPv6 packet from an IPv4-mapped address is still IPv6; the IPv4
    // packet to the same address is IPv4, and both share one flow-key form.
    let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 2];
    let b = PacketBuilder::ethernet2(A, B)
        .ipv6(
            mapped,
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(1, 2);
    let mut v = Vec::new();
    b.write(&mut v, b"").unwrap();
    let six = decode(&Frame::whole(LinkType::Ethernet, &v))
        .unwrap()
        .ip
        .unwrap();
    assert!(six.v6);
    assert_eq!(six.src(), IpAddr::from(mapped));
    assert_eq!(six.dst(), "fe80::1".parse::<IpAddr>().unwrap());
    let v = tcp_frame(b"");
    let four = decode(&Frame::whole(LinkType::Ethernet, &v))
        .unwrap()
        .ip
        .unwrap();
    assert!(!four.v6);
    assert_eq!(four.dst(), "8.8.8.8".parse::<IpAddr>().unwrap());
    assert_eq!(four.src16, six.src16);
    assert_eq!(addr_from16(four.src16), four.src());
}

/// Bytes placed so that they end where a readable page does, the next page
/// unreadable: a read past their end faults rather than going unnoticed.
#[cfg(unix)]
fn at_page_end(bytes: &[u8], f: impl FnOnce(&[u8])) {
    // SAFETY: plain mappings of this test's own; the slice handed to `f`
    // lies inside the first page, which stays mapped until after `f`.
    unsafe {
        let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap();
        assert!(bytes.len() <= page);
        let p = libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let p = p.cast::<u8>();
        assert_eq!(libc::mprotect(p.add(page).cast(), page, libc::PROT_NONE), 0);
        let at = p.add(page - bytes.len());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
        f(std::slice::from_raw_parts(at, bytes.len()));
        libc::munmap(p.cast(), 2 * page);
    }
}

#[cfg(unix)]
#[test]
fn an_ipv6_extension_chain_cut_short_is_not_read_past_its_end() {
    // A later fragment whose fragment header names a hop-by-hop header
    // next, with no bytes left for it (found by the `decode` fuzz target:
    // etherparse's iterator over a laxly sliced chain read past it).
    let mut v = vec![0x60, 0, 0, 0, 0, 8, 44, 64];
    v.extend_from_slice(&[0x20; 16]); // source
    v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    // Fragment header: next header hop-by-hop, offset 1, identification 1.
    v.extend_from_slice(&[0, 0, 0, 1 << 3, 0, 0, 0, 1]);
    at_page_end(&v, |d| {
        let p = decode(&Frame::whole(LinkType::RawIpv6, d)).unwrap();
        assert_eq!(p.ip.unwrap().fragment, Fragment::Later);
    });
    // The first fragment: offset 0, more to come.
    v[43] = 1;
    at_page_end(&v, |d| {
        let p = decode(&Frame::whole(LinkType::RawIpv6, d)).unwrap();
        assert_eq!(p.ip.unwrap().fragment, Fragment::First);
    });
}

#[test]
fn ipv6_later_fragments_found_in_the_chain() {
    // Hop-by-hop (8 bytes), then a first fragment, then TCP.
    let d = [44, 0, 1, 4, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 9];
    assert!(!ipv6_later_fragment(0, &d));
    // The same fragment at offset 2: a later one.
    let mut later = d;
    later[11] = 2 << 3;
    assert!(ipv6_later_fragment(0, &later));
    // Cut inside the fragment header, or no fragment header: not later.
    assert!(!ipv6_later_fragment(0, &later[..10]));
    assert!(!ipv6_later_fragment(17, &[]));
}
