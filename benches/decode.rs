//! Criterion bench: decoding frames of the common shapes.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use iotwatch::capture::{Frame, LinkType};
use iotwatch::decode::decode;

fn frames() -> Vec<Vec<u8>> {
    let mut tcp = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 168, 1, 2], [93, 184, 216, 34], 64)
        .tcp(50000, 443, 1, 65535)
        .ack(1)
        .write(&mut tcp, &[0u8; 400])
        .unwrap();
    let mut udp = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .single_vlan(10.try_into().unwrap())
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb],
            255,
        )
        .udp(5353, 5353)
        .write(&mut udp, &[0u8; 120])
        .unwrap();
    vec![tcp, udp]
}

fn bench(c: &mut Criterion) {
    let fs = frames();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(fs.len() as u64));
    g.bench_function("ethernet_tcp_and_vlan_ipv6_udp", |b| {
        b.iter(|| {
            for f in &fs {
                let fr = Frame {
                    ts: 1,
                    link: LinkType::Ethernet,
                    data: f,
                    orig_len: f.len() as u32,
                };
                std::hint::black_box(decode(std::hint::black_box(&fr)).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
