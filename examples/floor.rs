//! The benchmark's floor: the least any flow tool must do. Read a capture
//! with pcap-parser, slice each frame with etherparse, insert its 5-tuple into
//! a hash map, nothing else. `benches/pipeline.sh` runs it beside iotwatch, so
//! iotwatch's cost is measured against the same reader and decoder.
//!
//!     cargo run --release --example floor -- FILE

use std::collections::HashMap;
use std::fs::File;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

/// Source, destination, ports and protocol.
type Tuple = ([u8; 16], [u8; 16], u16, u16, u8);

fn main() {
    let path = std::env::args().nth(1).expect("usage: floor FILE");
    let file = File::open(&path).expect("open");
    let mut reader = create_reader(1 << 20, file).expect("a pcap or pcapng file");
    let mut flows: HashMap<Tuple, u64> = HashMap::new();
    let mut packets = 0u64;
    loop {
        match reader.next() {
            Ok((off, block)) => {
                let data = match block {
                    PcapBlockOwned::Legacy(b) => Some(b.data),
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(b)) => Some(b.data),
                    _ => None,
                };
                if let Some(data) = data {
                    packets += 1;
                    if let Ok(p) = LaxSlicedPacket::from_ethernet(data) {
                        let (src, dst, proto) = match &p.net {
                            Some(LaxNetSlice::Ipv4(v4)) => {
                                let h = v4.header();
                                let m = |a: [u8; 4]| {
                                    std::net::Ipv4Addr::from(a).to_ipv6_mapped().octets()
                                };
                                (m(h.source()), m(h.destination()), v4.payload_ip_number().0)
                            }
                            Some(LaxNetSlice::Ipv6(v6)) => {
                                let h = v6.header();
                                (h.source(), h.destination(), v6.payload().ip_number.0)
                            }
                            _ => ([0; 16], [0; 16], 0),
                        };
                        let (sp, dp) = match &p.transport {
                            Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
                            Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
                            _ => (0, 0),
                        };
                        *flows.entry((src, dst, sp, dp, proto)).or_default() += 1;
                    }
                }
                reader.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
            Err(e) => panic!("{e:?}"),
        }
    }
    println!("{packets} packets, {} flows", flows.len());
}
