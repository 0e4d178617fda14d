//! Criterion bench: the flow table under established traffic and under a
//! SYN scan (every packet a new unanswered SYN: the SYN cache path).
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iotwatch::decode::tcp_flags;
use iotwatch::flow::{ALL_BUCKETS, FlowKey, FlowTable, PacketView, Timeouts};
use std::net::{IpAddr, Ipv4Addr};

fn view(src: u32, dst: u32, sport: u16, dport: u16, flags: u8, ts: u64) -> PacketView {
    let (key, side) = FlowKey::new(
        IpAddr::V4(Ipv4Addr::from(src)),
        IpAddr::V4(Ipv4Addr::from(dst)),
        sport,
        dport,
        6,
    );
    PacketView {
        key,
        side,
        ts,
        len: 60,
        src_mac: None,
        tcp_flags: Some(flags),
        seq: dst,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    const N: u64 = 10_000;
    g.throughput(Throughput::Elements(N));
    // 1,000 established flows, packets round-robin.
    let mut t = FlowTable::new(65_536, 16_384, Timeouts::default(), ALL_BUCKETS);
    let home = 0xC0A8_0102;
    for i in 0..1000u32 {
        t.update(
            &view(home, 0x5DB8_0000 + i, 50000, 443, tcp_flags::SYN, 1),
            1,
            &mut |_, _| {},
        );
        t.update(
            &view(
                0x5DB8_0000 + i,
                home,
                443,
                50000,
                tcp_flags::SYN | tcp_flags::ACK,
                1,
            ),
            1,
            &mut |_, _| {},
        );
    }
    let mut ts = 2;
    g.bench_function("established_lookup", |b| {
        b.iter(|| {
            for i in 0..N as u32 {
                ts += 1;
                let v = view(home, 0x5DB8_0000 + i % 1000, 50000, 443, tcp_flags::ACK, ts);
                std::hint::black_box(t.update(&v, ts, &mut |_, _| {}));
            }
        })
    });
    let mut scan = FlowTable::new(65_536, 16_384, Timeouts::default(), ALL_BUCKETS);
    let mut dst: u32 = 0x0B00_0000;
    g.bench_function("syn_scan", |b| {
        b.iter(|| {
            for _ in 0..N {
                dst = dst.wrapping_add(7919);
                ts += 1;
                let v = view(home, dst, 40000, 23, tcp_flags::SYN, ts);
                std::hint::black_box(scan.update(&v, ts, &mut |_, _| {}));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
