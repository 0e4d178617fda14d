//! Any bytes as a frame of every supported link type: the decoder, and
//! the reader's shard hash, which must put every packet that reaches a
//! flow in its flow key's bucket (else a flow is split between workers and
//! the report depends on the thread count).
//! Run: `cargo +nightly fuzz run decode`.
#![no_main]
use iotwatch::capture::{Frame, LinkType};
use iotwatch::decode::Fragment;
use iotwatch::flow::PacketView;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let link = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Raw,
        LinkType::RawIpv4,
        LinkType::RawIpv6,
    ][usize::from(sel) % 8];
    let fr = Frame { ts: 0, link, data: rest, orig_len: rest.len() as u32 + u32::from(sel & 0x80) };
    let bucket = iotwatch::pipeline::shard::bucket(&fr);
    if let Ok(p) = iotwatch::decode::decode(&fr)
        && let Some(ip) = p.ip
        && ip.fragment != Fragment::Later
    {
        let (view, _) = PacketView::of(&p, &ip);
        assert_eq!(view.key.shard_bucket(), bucket, "{p:?}");
    }
});
