//! Prints every flow of a capture as it ends: a debugging aid for flow-count
//! differences against other tools.
//!
//!     cargo run --example flows -- FILE
use iotwatch::capture::{CaptureFile, file::Flow as Step};
use iotwatch::decode::decode;
use iotwatch::flow::{ALL_BUCKETS, FlowTable, PacketView, Timeouts};

fn main() {
    let path = std::env::args().nth(1).expect("usage: flows FILE");
    let mut cf = CaptureFile::open(&path).expect("capture");
    let mut t = FlowTable::new(1 << 20, 1 << 16, Timeouts::default(), ALL_BUCKETS);
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
    // The latest time so far: flows go idle by it (`FlowTable::update`).
    let mut clock = 0;
    cf.run(|fr| {
        clock = fr.ts.max(clock);
        if let Ok(p) = decode(&fr)
            && let Some(ip) = p.ip
        {
            let (v, _) = PacketView::of(&p, &ip);
            t.update(&v, clock, &mut show);
        }
        Step::Continue
    })
    .expect("read");
    t.finish(&mut show);
}
