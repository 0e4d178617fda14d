use std::net::IpAddr;

use super::*;
use crate::flow::{ALL_BUCKETS, SHARD_BUCKETS};

const S: Nanos = SECOND;

fn view(src: &str, dst: &str, sp: u16, dp: u16, flags: Option<u8>, ts: Nanos) -> PacketView {
    let (key, side) = FlowKey::new(
        src.parse::<IpAddr>().unwrap(),
        dst.parse().unwrap(),
        sp,
        dp,
        if flags.is_some() { 6 } else { 17 },
    );
    PacketView {
        key,
        side,
        ts,
        len: 60,
        src_mac: None,
        tcp_flags: flags,
        seq: 100,
    }
}

const SYN: Option<u8> = Some(tcp_flags::SYN);
const SYNACK: Option<u8> = Some(tcp_flags::SYN | tcp_flags::ACK);
const ACK: Option<u8> = Some(tcp_flags::ACK);
const RST: Option<u8> = Some(tcp_flags::RST | tcp_flags::ACK);

fn table(cap: usize) -> FlowTable {
    FlowTable::new(cap, 1024, Timeouts::default(), ALL_BUCKETS)
}

#[test]
fn unanswered_syns_take_no_flow_slot() {
    let mut t = table(16);
    let mut ended = Vec::new();
    for i in 0..1000u32 {
        let dst = format!("203.0.{}.{}", i / 250, i % 250);
        assert!(
            t.update(
                &view("10.0.0.5", &dst, 40000, 23, SYN, S),
                S,
                &mut |f, r| { ended.push((f.key, r)) }
            )
            .is_none()
        );
    }
    assert_eq!(t.len(), 0);
    t.finish(&mut |f, r| ended.push((f.key, r)));
    let st = t.stats();
    assert_eq!(st.flows, 1000);
    assert_eq!(st.unanswered_syns, 1000);
    assert_eq!(ended.len(), 1000);
}

#[test]
fn handshake_makes_a_flow_with_the_right_client() {
    let mut t = table(16);
    let mut none = |_: Flow, _: EndReason| panic!("nothing ends");
    assert!(
        t.update(
            &view("10.0.0.5", "10.0.0.9", 40000, 80, SYN, S),
            S,
            &mut none
        )
        .is_none()
    );
    let i = t
        .update(
            &view("10.0.0.9", "10.0.0.5", 80, 40000, SYNACK, S),
            S,
            &mut none,
        )
        .unwrap();
    t.update(
        &view("10.0.0.5", "10.0.0.9", 40000, 80, ACK, S),
        S,
        &mut none,
    )
    .unwrap();
    let f = t.flow_mut(i);
    assert_eq!(f.key.addr(f.client_side()).to_string(), "10.0.0.5");
    assert!(f.tcp.syn && f.tcp.syn_ack && f.tcp.established);
    assert_eq!(f.packets, [2, 1]);
    assert!(f.answered());
    assert_eq!(t.stats().flows, 1);
}

#[test]
fn syn_answered_by_rst_ends_at_once() {
    let mut t = table(16);
    let mut ended = Vec::new();
    t.update(
        &view("10.0.0.5", "10.0.0.9", 40000, 81, SYN, S),
        S,
        &mut |f, r| ended.push((f, r)),
    );
    assert!(
        t.update(
            &view("10.0.0.9", "10.0.0.5", 81, 40000, RST, S),
            S,
            &mut |f, r| ended.push((f, r))
        )
        .is_none()
    );
    assert_eq!(ended.len(), 1);
    assert!(ended[0].0.tcp.rst && !ended[0].0.answered());
    assert_eq!(t.len(), 0);
    assert_eq!(t.stats().flows, 1);
}

#[test]
fn idle_flows_expire_by_class() {
    let mut t = table(16);
    let mut ended = Vec::new();
    t.update(
        &view("10.0.0.5", "8.8.8.8", 5000, 53, None, S),
        S,
        &mut |f, r| ended.push((f.key, r)),
    );
    t.update(
        &view("8.8.8.8", "10.0.0.5", 53, 5000, None, S),
        S,
        &mut |f, r| ended.push((f.key, r)),
    );
    // Another flow 121 s later pushes the clock past the UDP timeout.
    t.update(
        &view("10.0.0.6", "8.8.8.8", 5000, 53, None, 122 * S),
        122 * S,
        &mut |f, r| ended.push((f.key, r)),
    );
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, EndReason::Idle);
    assert_eq!(t.len(), 1);
}

/// `n` sources whose DNS flows to 8.8.8.8 fall in one shard bucket, and
/// one whose flow falls in another.
fn one_bucket(n: usize) -> (Vec<String>, String) {
    let bucket = |src: &str| view(src, "8.8.8.8", 5000, 53, None, 0).key.shard_bucket();
    let all: Vec<String> = (0..4096)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    let b = bucket(&all[0]);
    let same: Vec<String> = all
        .iter()
        .filter(|s| bucket(s) == b)
        .take(n)
        .cloned()
        .collect();
    assert_eq!(same.len(), n);
    let other = all.into_iter().find(|s| bucket(s) != b).unwrap();
    (same, other)
}

#[test]
fn full_bucket_evicts_its_oldest() {
    // Four flows a bucket.
    let mut t = table(4 * SHARD_BUCKETS);
    let (same, other) = one_bucket(6);
    let mut ended = Vec::new();
    // The oldest flow of all, in another bucket: not evicted for these.
    t.update(
        &view(&other, "8.8.8.8", 5000, 53, None, S),
        S,
        &mut |f, r| ended.push((f.key, r)),
    );
    for (i, src) in same.iter().enumerate() {
        let ts = 2 * S + i as Nanos;
        t.update(
            &view(src, "8.8.8.8", 5000, 53, None, ts),
            ts,
            &mut |f, r| ended.push((f.key, r)),
        );
    }
    assert_eq!(t.len(), 5);
    assert_eq!(t.stats().evicted, 2);
    let key = |src: &str| view(src, "8.8.8.8", 5000, 53, None, 0).key;
    assert_eq!(
        ended,
        vec![
            (key(&same[0]), EndReason::Evicted),
            (key(&same[1]), EndReason::Evicted)
        ]
    );
}

#[test]
fn a_full_bucket_ends_its_idle_flows_rather_than_evict() {
    // Four flows a bucket; UDP idle after 100 ms, within the second
    // between sweeps.
    let timeouts = Timeouts {
        datagram: 100_000_000,
        ..Timeouts::default()
    };
    let mut t = FlowTable::new(4 * SHARD_BUCKETS, 1024, timeouts, ALL_BUCKETS);
    let (same, _) = one_bucket(5);
    let mut ended = Vec::new();
    for (i, src) in same.iter().enumerate() {
        // Four at 1.00 s (a sweep then, the next due at 2.00 s), the fifth
        // at 1.50 s: the four are idle but not swept.
        let ts = if i < 4 { S } else { S + S / 2 };
        t.update(
            &view(src, "8.8.8.8", 5000, 53, None, ts),
            ts,
            &mut |_, r| ended.push(r),
        );
    }
    assert_eq!(ended, vec![EndReason::Idle; 4]);
    assert_eq!(t.stats().evicted, 0);
    assert_eq!(t.len(), 1);
}

#[test]
fn port_reuse_after_close_starts_a_new_flow() {
    let mut t = table(16);
    let mut ended = Vec::new();
    let mut on = |f: Flow, r: EndReason| ended.push((f.packets, r));
    t.update(&view("10.0.0.5", "10.0.0.9", 40000, 80, SYN, S), S, &mut on);
    t.update(
        &view("10.0.0.9", "10.0.0.5", 80, 40000, SYNACK, S),
        S,
        &mut on,
    );
    t.update(&view("10.0.0.5", "10.0.0.9", 40000, 80, RST, S), S, &mut on);
    t.update(
        &view("10.0.0.5", "10.0.0.9", 40000, 80, SYN, 2 * S),
        2 * S,
        &mut on,
    );
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, EndReason::Closed);
    assert_eq!(t.stats().flows, 2);
}

#[test]
fn midstream_flow_guesses_server_by_well_known_port() {
    let mut t = table(16);
    let i = t
        .update(
            &view("1.2.3.4", "10.0.0.5", 443, 50000, ACK, S),
            S,
            &mut |_, _| {},
        )
        .unwrap();
    let f = t.flow_mut(i);
    assert_eq!(f.key.port(f.client_side()), 50000);
    assert!(f.tcp.midstream);
}

#[test]
fn a_busy_flow_is_not_expired_though_its_list_place_is_stale() {
    let mut t = table(16);
    let mut ended = Vec::new();
    // Flow A sends every 0.3 s (less than the relink interval) for 300 s;
    // flow B once. B must end at ~121 s, A never.
    t.update(
        &view("10.0.0.9", "8.8.4.4", 6000, 53, None, S),
        S,
        &mut |f, r| ended.push((f.key, r)),
    );
    let mut ts = S;
    while ts < 300 * S {
        t.update(
            &view("10.0.0.5", "8.8.8.8", 5000, 53, None, ts),
            ts,
            &mut |f, r| ended.push((f.key, r)),
        );
        ts += 300_000_000;
    }
    let b = FlowKey::new(
        "10.0.0.9".parse().unwrap(),
        "8.8.4.4".parse().unwrap(),
        6000,
        53,
        17,
    )
    .0;
    assert_eq!(ended, vec![(b, EndReason::Idle)]);
    assert_eq!(t.len(), 1);
}

#[test]
fn a_flow_behind_the_clock_goes_idle_by_the_clock_not_by_its_own_times() {
    let mut t = table(16);
    let mut ended = Vec::new();
    let a = |ts| view("10.0.0.5", "8.8.8.8", 5000, 53, None, ts);
    t.update(&a(S), S, &mut |f, r| ended.push((f.first_ts, r)));
    // Another source's packet moves the clock to 1,000 s; A goes on at its
    // own times, behind it. Quiet for 999 s by the clock, A ends once and
    // starts again; from then on its packets come as often by the clock as
    // by their own times, and it stays one flow.
    t.update(
        &view("10.0.0.6", "8.8.8.8", 5000, 53, None, 1000 * S),
        1000 * S,
        &mut |f, r| ended.push((f.first_ts, r)),
    );
    for s in 2..200 {
        t.update(&a(s * S), 1000 * S, &mut |f, r| ended.push((f.first_ts, r)));
    }
    assert_eq!(ended, vec![(S, EndReason::Idle)]);
    assert_eq!(t.stats().flows, 3);
    // 121 s later by the clock, a third flow's packet: A is idle and ends
    // (as does the second flow), though by A's own times only 121 s after
    // its last packet would be.
    t.update(
        &view("10.0.0.7", "8.8.8.8", 5000, 53, None, 1121 * S),
        1121 * S,
        &mut |f, r| ended.push((f.first_ts, r)),
    );
    ended.sort_by_key(|&(first, _)| first);
    assert_eq!(
        ended,
        vec![
            (S, EndReason::Idle),
            (2 * S, EndReason::Idle),
            (1000 * S, EndReason::Idle)
        ]
    );
}
