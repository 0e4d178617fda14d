use std::net::{IpAddr, Ipv4Addr};

use super::*;

const MAC: Mac = [0x28, 0x57, 0xbe, 0x4a, 0x17, 0x23];

fn v4(x: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(x))
}

fn syn(src: IpAddr, dst: IpAddr, port: u16, seq: u32, ts: Nanos) -> Syn {
    Syn {
        ts,
        src,
        src_mac: Some(MAC),
        dst,
        dst_port: port,
        seq,
        window: 5840,
        has_options: false,
    }
}

fn scan_events(d: &ScanDetector) -> Vec<ScanEvent> {
    d.events(&HomeNets::default())
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Scan(s) => Some(s),
            _ => None,
        })
        .collect()
}

const CAMERA: u32 = 0xC0A8_0117; // 192.168.1.23

#[test]
fn three_fingerprinted_syns_to_distinct_targets_are_mirai() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    for (i, t) in [0x0102_0304u32, 0x0506_0708].iter().enumerate() {
        d.syn(&syn(v4(CAMERA), v4(*t), 23, *t, i as u64 + 1), &home);
    }
    // A retransmission to the same target does not make a third.
    d.syn(&syn(v4(CAMERA), v4(0x0506_0708), 23, 0x0506_0708, 3), &home);
    assert!(scan_events(&d).is_empty());
    d.syn(
        &syn(v4(CAMERA), v4(0x0909_0909), 2323, 0x0909_0909, 4),
        &home,
    );
    let ev = scan_events(&d);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].verdict, "mirai-like");
    assert_eq!(ev[0].direction, "outbound");
    assert_eq!(ev[0].mirai_matches, 4);
    assert_eq!(ev[0].source.mac.as_deref(), Some("28:57:be:4a:17:23"));
    let events = d.events(&home);
    assert_eq!(events[0].severity, Severity::Critical);
    assert_eq!(
        events[0].ts, 4,
        "the verdict is due at the third distinct match"
    );
}

#[test]
fn random_sequence_numbers_are_not_mirai_but_a_failing_fan_out_is_a_scanner() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    for i in 0..100u32 {
        let t = 0x0B00_0000 + i * 7919;
        d.syn(
            &syn(
                v4(CAMERA),
                v4(t),
                if i % 2 == 0 { 23 } else { 8080 },
                t ^ 0xdead_beef,
                u64::from(i),
            ),
            &home,
        );
        d.outcome(
            v4(CAMERA),
            v4(t),
            23,
            None,
            u64::from(i) + 1,
            u64::from(i) + 1,
        );
    }
    let ev = scan_events(&d);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].verdict, "scanner");
    assert!(!ev[0].mirai_fingerprint);
    assert_eq!(ev[0].distinct_targets, 100);
    assert_eq!(ev[0].unanswered, 100);
}

#[test]
fn busy_client_with_answered_connections_is_not_a_scanner() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    // A phone opening 200 TLS connections to 60 CDN hosts, nearly all answered.
    for i in 0..200u32 {
        let t = 0x6810_0000 + (i % 60);
        d.syn(&syn(v4(0xC0A8_0150), v4(t), 443, i, u64::from(i)), &home);
        d.outcome(
            v4(0xC0A8_0150),
            v4(t),
            443,
            Some(i % 20 != 0),
            u64::from(i),
            u64::from(i),
        );
    }
    assert!(scan_events(&d).is_empty());
}

#[test]
fn peer_to_peer_failures_on_scattered_ports_are_not_a_scan() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    for i in 0..100u32 {
        let t = 0x2400_0000 + i * 104_729;
        let port = 1024 + (i * 613) as u16 % 60_000;
        d.syn(&syn(v4(0x0A00_020F), v4(t), port, i, u64::from(i)), &home);
        d.outcome(
            v4(0x0A00_020F),
            v4(t),
            port,
            Some(false),
            u64::from(i),
            u64::from(i),
        );
    }
    assert!(scan_events(&d).is_empty());
}

#[test]
fn vertical_scan_of_one_host_inbound() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    let attacker = v4(0xC633_6407); // 198.51.100.7
    for port in 1..=200u16 {
        d.syn(&syn(attacker, v4(CAMERA), port, 7, u64::from(port)), &home);
        let open = port == 23 || port == 80;
        d.outcome(
            attacker,
            v4(CAMERA),
            port,
            Some(open),
            u64::from(port),
            u64::from(port),
        );
    }
    let ev = scan_events(&d);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].verdict, ev[0].direction), ("scanner", "inbound"));
    assert_eq!(ev[0].distinct_ports, 200);
    assert_eq!(ev[0].open, ["192.168.1.23:23", "192.168.1.23:80"]);
    assert_eq!(
        ev[0].source.mac, None,
        "an Internet source's MAC is the router's"
    );
}

#[test]
fn ipv6_scans_are_seen_without_a_mirai_check() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    let src: IpAddr = "fd00::5".parse().unwrap();
    for i in 0..50u16 {
        let dst: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
        d.syn(&syn(src, dst, 23, 0, u64::from(i)), &home);
        d.outcome(src, dst, 23, None, u64::from(i), u64::from(i));
    }
    let ev = scan_events(&d);
    assert_eq!(ev[0].verdict, "scanner");
    assert_eq!(ev[0].mirai_matches, 0);
}

#[test]
fn sweeps_by_arp_and_icmp() {
    let mut d = ScanDetector::default();
    for i in 1..=30u32 {
        d.arp_request(u64::from(i), v4(0xC0A8_01F7), MAC, v4(0xC0A8_0100 + i));
    }
    for i in 1..=10u32 {
        d.ping(u64::from(i), v4(0xC0A8_016D), None, v4(0xC0A8_0100 + i));
    }
    let ev = scan_events(&d);
    assert_eq!(ev.len(), 1, "ten pings are not a sweep");
    assert_eq!((ev[0].verdict, ev[0].direction), ("sweep", "lan"));
    assert_eq!(ev[0].distinct_targets, 30);
}

#[test]
fn odd_flags() {
    use crate::decode::tcp_flags::*;
    for f in [0, FIN, FIN | PSH | URG, SYN | FIN, SYN | RST, URG, PSH] {
        assert!(odd_tcp_flags(f), "{f:#x}");
    }
    for f in [SYN, SYN | ACK, ACK, ACK | FIN, RST, RST | ACK, ACK | PSH] {
        assert!(!odd_tcp_flags(f), "{f:#x}");
    }
}

#[test]
fn split_over_workers_merges_to_the_same_events() {
    let home = HomeNets::default();
    let mut one = ScanDetector::default();
    let mut parts = [ScanDetector::default(), ScanDetector::default()];
    let mut x: u32 = 12345;
    for i in 0..5_000u64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = [23, 2323, 80, 8080, 7547][(x % 5) as usize];
        let s = syn(v4(CAMERA), v4(x), port, if i % 3 == 0 { x } else { !x }, i);
        one.syn(&s, &home);
        parts[(x % 2) as usize].syn(&s, &home);
        let answered = if x.is_multiple_of(7) {
            Some(true)
        } else {
            None
        };
        one.outcome(v4(CAMERA), v4(x), port, answered, i, i);
        parts[(x % 2) as usize].outcome(v4(CAMERA), v4(x), port, answered, i, i);
    }
    let [mut a, mut b] = parts;
    let mut merged = ScanDetector::default();
    merged.merge(&mut b);
    merged.merge(&mut a);
    let j = |d: &ScanDetector| serde_json::to_string(&d.events(&home)).unwrap();
    assert_eq!(j(&one), j(&merged));
}

#[test]
fn sources_are_bounded() {
    let home = HomeNets::default();
    let mut d = ScanDetector::default();
    for i in 0..(MAX_SOURCES as u32 * 3) {
        d.syn(
            &syn(v4(0x0A00_0000 + i), v4(0x0808_0808), 80, 1, u64::from(i)),
            &home,
        );
    }
    assert!(d.sources.len() <= MAX_SOURCES);
    assert!(d.evicted >= 2 * MAX_SOURCES as u64);
}

/// Two bursts of the same scanner an hour apart are two episodes, two
/// events; a scan that runs across a window boundary stays one.
#[test]
fn episodes_split_on_idle_windows() {
    let home = HomeNets::default();
    let burst = |d: &mut ScanDetector, start: Nanos| {
        for i in 0..200u32 {
            let t = 0x0B00_0000 + i;
            let ts = start + u64::from(i) * 1_000_000;
            d.syn(
                &Syn {
                    ts,
                    src: v4(CAMERA),
                    src_mac: None,
                    dst: v4(t),
                    dst_port: 23,
                    seq: t,
                    window: 5840,
                    has_options: false,
                },
                &home,
            );
            d.outcome(v4(CAMERA), v4(t), 23, None, ts, ts);
        }
    };
    let mut d = ScanDetector::default();
    burst(&mut d, EPISODE_WINDOW / 2);
    burst(&mut d, EPISODE_WINDOW * 3);
    assert_eq!(d.events(&home).len(), 2);
    // Straddling a boundary: one episode.
    let mut d = ScanDetector::default();
    burst(&mut d, EPISODE_WINDOW - 100_000_000);
    assert_eq!(d.events(&home).len(), 1);
}
