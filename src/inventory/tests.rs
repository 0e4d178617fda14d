use std::net::IpAddr;

use super::*;
use crate::decode::{Ip, Transport};

/// The devices seen sending, in key order, as the report reads them.
fn devices(inv: Inventory) -> Vec<(DeviceKey, Device)> {
    merge_all(vec![inv.into_sorted()])
}

const DEV: Mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const ROUTER: Mac = [0x00, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];

fn pkt(
    src_mac: Option<Mac>,
    dst_mac: Option<Mac>,
    src: &str,
    dst: &str,
    ts: Nanos,
) -> Packet<'static> {
    Packet {
        ts,
        wire_len: 100,
        src_mac,
        dst_mac,
        vlan: None,
        ip: Some(Ip {
            src16: crate::decode::addr16(src.parse().unwrap()),
            dst16: crate::decode::addr16(dst.parse().unwrap()),
            v6: src.contains(':'),
            proto: 17,
            ttl: 64,
            fragment: crate::decode::Fragment::No,
        }),
        arp: None,
        transport: Transport::None,
    }
}

#[test]
fn router_does_not_collect_internet_addresses() {
    let home = HomeNets::default();
    let mut inv = Inventory::default();
    inv.observe(
        &pkt(Some(DEV), Some(ROUTER), "192.168.1.20", "93.184.216.34", 5),
        &home,
    );
    inv.observe(
        &pkt(Some(ROUTER), Some(DEV), "93.184.216.34", "192.168.1.20", 7),
        &home,
    );
    inv.observe(
        &pkt(Some(ROUTER), Some(DEV), "192.168.1.1", "192.168.1.20", 9),
        &home,
    );
    let devs = devices(inv);
    assert_eq!(devs.len(), 2);
    let router = &devs
        .iter()
        .find(|(k, _)| *k == DeviceKey::Mac(ROUTER))
        .unwrap()
        .1;
    assert_eq!(
        router.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        ["192.168.1.1"]
    );
    assert_eq!(router.packets, 3);
    assert_eq!((router.first_seen, router.last_seen), (7, 9));
    let dev = &devs
        .iter()
        .find(|(k, _)| *k == DeviceKey::Mac(DEV))
        .unwrap()
        .1;
    assert_eq!(dev.ips.len(), 1);
}

#[test]
fn without_macs_home_ips_are_devices() {
    let home = HomeNets::default();
    let mut inv = Inventory::default();
    inv.observe(&pkt(None, None, "10.0.0.2", "8.8.8.8", 1), &home);
    inv.observe(&pkt(None, None, "8.8.8.8", "10.0.0.2", 2), &home);
    inv.observe(&pkt(None, None, "8.8.8.8", "10.0.0.3", 2), &home);
    let devs = devices(inv);
    // 10.0.0.3 only received: not a device yet.
    assert_eq!(devs.len(), 1);
    assert_eq!(
        devs[0].0,
        DeviceKey::Ip("10.0.0.2".parse::<IpAddr>().unwrap())
    );
    assert_eq!(devs[0].1.packets, 2);
}

#[test]
fn multicast_and_broadcast_macs_are_not_devices() {
    let home = HomeNets::default();
    let mut inv = Inventory::default();
    inv.observe(
        &pkt(
            Some(DEV),
            Some([0xff; 6]),
            "192.168.1.20",
            "255.255.255.255",
            1,
        ),
        &home,
    );
    inv.observe(
        &pkt(
            Some(DEV),
            Some([0x01, 0, 0x5e, 0, 0, 0xfb]),
            "192.168.1.20",
            "224.0.0.251",
            1,
        ),
        &home,
    );
    assert_eq!(devices(inv).len(), 1);
}

#[test]
fn merge_sums_and_unions() {
    let home = HomeNets::default();
    let mut a = Inventory::default();
    let mut b = Inventory::default();
    // The router only addressed in one worker, seen sending in the other.
    a.observe(
        &pkt(Some(DEV), Some(ROUTER), "192.168.1.20", "8.8.8.8", 10),
        &home,
    );
    b.observe(&pkt(Some(DEV), None, "192.168.1.21", "8.8.8.8", 5), &home);
    b.observe(&pkt(Some(ROUTER), None, "192.168.1.1", "8.8.8.8", 7), &home);
    let devs = merge_all(vec![a.into_sorted(), b.into_sorted()]);
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0].0, DeviceKey::Mac(DEV));
    assert_eq!(devs[0].1.packets, 2);
    assert_eq!(devs[0].1.first_seen, 5);
    assert_eq!(devs[0].1.ips.len(), 2);
    assert_eq!(devs[1].0, DeviceKey::Mac(ROUTER));
    assert_eq!(devs[1].1.first_seen, 7);
    assert_eq!(devs[1].1.packets, 2);
}

#[test]
fn ips_per_device_are_capped() {
    let home = HomeNets::default();
    let mut inv = Inventory::default();
    for i in 0..200u32 {
        let ip = format!("10.0.{}.{}", i / 200, i % 200);
        inv.observe(&pkt(Some(DEV), None, &ip, "8.8.8.8", 1), &home);
    }
    let devs = devices(inv);
    assert_eq!(devs[0].1.ips.len(), MAX_IPS);
    assert_eq!(devs[0].1.ips_dropped, 200 - MAX_IPS as u64);
}

#[test]
fn a_full_inventory_keeps_its_first_devices_when_told_to() {
    let home = HomeNets::default();
    let mut inv = Inventory::with_max_devices(2, WhenFull::KeepFirst);
    for last in [3, 2, 1, 3] {
        let mac = [0x00, 0x11, 0x22, 0x33, 0x44, last];
        let ip = format!("192.168.1.{last}");
        inv.observe(&pkt(Some(mac), None, &ip, "8.8.8.8", 1), &home);
    }
    assert!(inv.over_cap);
    let macs: Vec<_> = devices(inv).iter().map(|(k, d)| (*k, d.packets)).collect();
    let mac = |last| DeviceKey::Mac([0x00, 0x11, 0x22, 0x33, 0x44, last]);
    assert_eq!(macs, vec![(mac(2), 1), (mac(3), 2)]);
}

#[test]
fn a_full_inventory_keeps_the_least_keys_whatever_their_order() {
    let home = HomeNets::default();
    let mac = |last| [0x00, 0x11, 0x22, 0x33, 0x44, last];
    let orders: [&[u8]; 3] = [
        &[1, 2, 3, 4, 5, 1, 5],
        &[5, 4, 3, 2, 1, 1, 5],
        &[3, 5, 1, 4, 2, 5, 1],
    ];
    for order in orders {
        let mut inv = Inventory::with_max_devices(3, WhenFull::KeepLeastKeys);
        for &last in order {
            let ip = format!("192.168.1.{last}");
            inv.observe(&pkt(Some(mac(last)), None, &ip, "8.8.8.8", 1), &home);
            // Through the memo and the maps: an evicted MAC's slot must not
            // lead to the device now in its place.
            inv.observe(&pkt(Some(mac(last)), None, &ip, "8.8.8.8", 1), &home);
        }
        assert!(inv.over_cap);
        let kept: Vec<_> = devices(inv)
            .iter()
            .map(|(k, d)| (*k, d.packets, d.ips.len()))
            .collect();
        let want: Vec<_> = [1, 2, 3]
            .map(|l| {
                (
                    DeviceKey::Mac(mac(l)),
                    2 * order.iter().filter(|&&x| x == l).count() as u64,
                    1,
                )
            })
            .to_vec();
        assert_eq!(kept, want, "{order:?}");
    }
}

#[test]
fn devices_come_out_in_key_order_without_the_never_sending() {
    let home = HomeNets::default();
    let mut inv = Inventory::default();
    // MACs in a scrambled order, each sending to a MAC that never sends:
    // the silent ones are interleaved in the inventory and must be left out.
    let mut want = Vec::new();
    for n in 0..200u32 {
        let last = (n.wrapping_mul(83) % 200) as u8;
        let mac = [0x00, 0x11, 0x22, 0x33, 0x44, last];
        let silent = [0x00, 0x99, 0x22, 0x33, 0x44, last];
        let ip = format!("192.168.{}.{}", last / 100, last % 100 + 1);
        inv.observe(&pkt(Some(mac), Some(silent), &ip, "8.8.8.8", 1), &home);
        want.push(DeviceKey::Mac(mac));
    }
    want.sort();
    let devs = devices(inv);
    let keys: Vec<DeviceKey> = devs.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, want);
    // Each device kept its own data through the reordering.
    for (k, d) in &devs {
        let DeviceKey::Mac(m) = k else { unreachable!() };
        let ip: IpAddr = format!("192.168.{}.{}", m[5] / 100, m[5] % 100 + 1)
            .parse()
            .unwrap();
        assert_eq!(d.ips.iter().copied().collect::<Vec<_>>(), vec![ip]);
    }
}

#[test]
fn evidence_keeps_the_least_values_of_each_kind_in_any_order() {
    // Values of two kinds, in a scrambled order with repeats.
    let kinds: [EvidenceKey; 2] = [("dns", "query"), ("dhcp", "hostname")];
    let values: Vec<(EvidenceKey, String)> = (0..3 * MAX_VALUES as u64)
        .map(|i| i * 7919 % (2 * MAX_VALUES as u64 + 5))
        .map(|i| (kinds[(i % 2) as usize], format!("v{i:03}")))
        .collect();
    let mut want: Vec<(EvidenceKey, String)> = Vec::new();
    for k in kinds {
        let mut of_kind: Vec<String> = values
            .iter()
            .filter(|(kk, _)| *kk == k)
            .map(|(_, v)| v.clone())
            .collect();
        of_kind.sort();
        of_kind.dedup();
        assert!(of_kind.len() > MAX_VALUES, "the test must reach the cap");
        want.extend(of_kind.into_iter().take(MAX_VALUES).map(|v| (k, v)));
    }
    want.sort();
    for order in [values.clone(), values.iter().rev().cloned().collect()] {
        let mut d = Device::default();
        for (k, v) in order {
            d.add_evidence(k, v);
        }
        assert_eq!(d.evidence, want);
        assert_eq!(d.evidence_full.len(), 2);
    }
    // Split between two workers and merged: the same.
    let (mut a, mut b) = (Device::default(), Device::default());
    for (i, (k, v)) in values.into_iter().enumerate() {
        if i % 3 == 0 { &mut a } else { &mut b }.add_evidence(k, v);
    }
    a.merge(&b);
    assert_eq!(a.evidence, want);
}

#[test]
fn a_repeated_on_link_fact_still_dates_its_sender() {
    let home = HomeNets::default();
    let sender = crate::proto::Endpoint {
        ip: "0.0.0.0".parse().unwrap(),
        port: 68,
        mac: Some(DEV),
    };
    let mut facts = crate::proto::Facts::default();
    facts.add(10, &sender, "dhcp", "hostname", b"plug", true);
    facts.add(50, &sender, "dhcp", "hostname", b"plug", true);
    // Not on the link: a repeat is dropped.
    facts.add(90, &sender, "http", "user_agent", b"x", false);
    facts.add(99, &sender, "http", "user_agent", b"x", false);
    assert_eq!(facts.list.len(), 3);
    let mut inv = Inventory::default();
    for f in facts.list.drain(..) {
        inv.add_fact(f, &home);
    }
    let (_, d) = inv.devices_mut().next().unwrap();
    assert_eq!((d.first_seen, d.last_seen), (10, 50));
    assert_eq!(d.evidence, vec![(("dhcp", "hostname"), "plug".to_string())]);
}
