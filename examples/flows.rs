//! Prints every flow of a capture as it ends: a debugging aid for flow-count
//! differences against other tools.
//!
//!     cargo run --example flows -- FILE
use iotwatch::capture::{CaptureFile, file::Flow as Step};
use iotwatch::decode::{Transport, decode};
use iotwatch::flow::{FlowKey, FlowTable, PacketView, Timeouts};

fn main() {
    let path = std::env::args().nth(1).expect("usage: flows FILE");
    let mut cf = CaptureFile::open(&path).expect("capture");
    let mut t = FlowTable::new(1 << 20, 1 << 16, Timeouts::default());
    let mut show = |f: iotwatch::flow::Flow, why| {
        let c = f.client_side();
        println!(
            "{:?} {} {}:{} -> {}:{} pkts {:?} tcp {:?}",
            why,
            f.key.proto,
            f.key.addr(c),
            f.key.port(c),
            f.key.addr(c.other()),
            f.key.port(c.other()),
            f.packets,
            f.tcp
        )
    };
    cf.run(|fr| {
        if let Ok(p) = decode(&fr)
            && let Some(ip) = p.ip
        {
            let (sp, dp, flags, seq) = match p.transport {
                Transport::Tcp(t) => (t.src_port, t.dst_port, Some(t.flags), t.seq),
                Transport::Udp {
                    src_port, dst_port, ..
                } => (src_port, dst_port, None, 0),
                _ => (0, 0, None, 0),
            };
            let (key, side) = FlowKey::new(ip.src, ip.dst, sp, dp, ip.proto);
            let v = PacketView {
                key,
                side,
                ts: p.ts,
                len: p.wire_len,
                src_mac: p.src_mac,
                tcp_flags: flags,
                seq,
            };
            t.update(&v, &mut show);
        }
        Step::Continue
    })
    .expect("read");
    t.finish(&mut show);
}
