//! Any bytes as a frame of every supported link type.
//! Run: `cargo +nightly fuzz run decode`.
#![no_main]
use iotwatch::capture::{Frame, LinkType};
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
    let _ = iotwatch::decode::decode(&fr);
});
