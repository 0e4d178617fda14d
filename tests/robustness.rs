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

/// Reads `bytes` as a stream or, written to a file, through a memory map.
fn run(name: &str, bytes: Vec<u8>, threads: usize, mapped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cf = if mapped {
        let path = dir.path().join("damaged");
        std::fs::write(&path, &bytes).unwrap();
        CaptureFile::open(path.to_str().unwrap())
    } else {
        CaptureFile::from_reader(name, Box::new(Cursor::new(bytes)))
    };
    let Ok(cf) = cf else { return };
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
            run(seed, b.clone(), 1 + round % 2, false);
            run(seed, b, 2 - round % 2, true);
        }
    }
}

/// The fingerprinting parsers on random bytes and on damaged copies of real
/// messages (cut at every length, bytes flipped): no panic, no hang, bounded
/// output. The `fingerprint_parsers` fuzz target does the same, unbounded.
#[test]
fn fingerprint_parsers_on_damaged_input() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Real-shaped messages to damage.
    let mut dhcp_msg = vec![0u8; 240];
    dhcp_msg[0] = 1;
    dhcp_msg[236..240].copy_from_slice(&[99, 130, 83, 99]);
    dhcp_msg.extend_from_slice(&[
        12, 5, b'H', b'S', b'1', b'1', b'0', 60, 3, b'a', b'b', b'c', 255,
    ]);
    let mdns = b"\x00\x00\x84\x00\x00\x00\x00\x01\x00\x00\x00\x01\x0b_googlecast\x04_tcp\x05local\x00\x00\x0c\x00\x01\x00\x00\x00\x78\x00\x05\x02ab\xc0\x0c\xc0\x2e\x00\x10\x80\x01\x00\x00\x00\x78\x00\x08\x07md=Test".to_vec();
    let ssdp_msg =
        b"NOTIFY * HTTP/1.1\r\nSERVER: Linux/3.14 UPnP/1.0 X/1\r\nNT: upnp:rootdevice\r\n\r\n"
            .to_vec();
    let samples = [dhcp_msg, mdns, ssdp_msg];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for s in &samples {
        for cut in 0..s.len() {
            inputs.push(s[..cut].to_vec());
        }
        for _ in 0..200 {
            let mut m = s.clone();
            let i = (next() as usize) % m.len();
            m[i] ^= 1 << (next() % 8);
            inputs.push(m);
        }
    }
    for _ in 0..2000 {
        let len = (next() % 600) as usize;
        inputs.push((0..len).map(|_| next() as u8).collect());
    }
    for data in &inputs {
        let out = iotwatch::proto::run_fingerprint_parsers(data);
        assert!(out.facts.list.len() < 300);
        assert!(out.facts.list.iter().all(|f| f.value.len() <= 200));
    }
}
