//! Damaged copies of real captures through the whole pipeline: bit flips and
//! truncation must never panic or hang. Skips without ../shared.

mod common;

use std::io::Cursor;

use iotwatch::capture::{CaptureFile, Timeline};
use iotwatch::pipeline::{self, Config};
use iotwatch::proto::Registry;

const SEEDS: &[&str] = &[
    "ndpi/telnet.pcap",
    "ndpi/1kxun.pcap",
    "ndpi/sites.pcapng",
    "zeek/linux_dlt_sll2.pcap",
    "derived/multi-linktype-eth-sll2-raw.pcapng",
    "arkime/bigendian.pcap",
    "ndpi/snmp.pcap",
];

fn run(name: &str, bytes: Vec<u8>, threads: usize) {
    let Ok(cf) = CaptureFile::from_reader(name, Box::new(Cursor::new(bytes))) else {
        return;
    };
    let mut tl = Timeline::from_files(vec![cf]);
    let config = Config {
        threads,
        ..Config::default()
    };
    let _ = pipeline::run(&mut tl, config, Registry::builtin(), &mut |_| {});
}

#[test]
fn bit_flipped_and_truncated_corpus_files_never_panic() {
    let Some(dir) = common::shared() else { return };
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for seed in SEEDS {
        let orig = std::fs::read(dir.join(seed)).unwrap();
        for round in 0..40 {
            let mut b = orig.clone();
            let flips = 1 + (next() % 64) as usize;
            for _ in 0..flips {
                // Past the file header, so most copies still open and the damage is in records.
                let i = 32 + (next() as usize) % (b.len() - 32);
                b[i] ^= 1 << (next() % 8);
            }
            if round % 4 == 0 {
                let cut = (next() as usize) % b.len();
                b.truncate(cut);
            }
            run(seed, b, 1 + round % 2);
        }
    }
}
