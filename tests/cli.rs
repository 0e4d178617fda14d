//! The `iotwatch analyze` command as a user runs it: exit codes, messages
//! that name the file, and bad input that must never panic or hang.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::write_pcap;
use etherparse::PacketBuilder;
use iotwatch::pipeline::Config;

fn iotwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotwatch"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn frames() -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let cam = [0x00, 0x12, 0x34, 0x00, 0x00, 0x01];
    let router = [0x00, 0x12, 0x34, 0x00, 0x00, 0xfe];
    for (i, (src, dst, sip, dip, sp, dp)) in [
        (
            cam,
            router,
            [192, 168, 1, 10],
            [192, 168, 1, 1],
            40000u16,
            53u16,
        ),
        (router, cam, [192, 168, 1, 1], [192, 168, 1, 10], 53, 40000),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(src, dst)
            .ipv4(sip, dip, 64)
            .udp(sp, dp)
            .write(&mut v, b"dns")
            .unwrap();
        out.push((1_700_000_000_000_000 + i as u64 * 1000, v));
    }
    out
}

#[test]
fn json_report_has_the_contract_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.pcap");
    write_pcap(&p, 1, &frames());
    let o = iotwatch(&["analyze", "-r", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capture"]["packets"], 2);
    assert_eq!(v["capture"]["flows"], 1);
    assert_eq!(v["capture"]["first_ts"], "2023-11-14T22:13:20.000000Z");
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let router = devices
        .iter()
        .find(|d| d["mac"] == "00:12:34:00:00:fe")
        .unwrap();
    assert_eq!(router["ips"][0], "192.168.1.1");
    assert_eq!(router["services"][0], "udp/53");
    for key in [
        "vendor",
        "hostname",
        "type",
        "model",
        "firmware",
        "os",
        "support",
        "code_of_practice",
        "evidence",
    ] {
        assert!(router.get(key).is_some(), "{key}");
    }
    assert!(v["events"].is_array());
    // The human summary names the devices too.
    let o = iotwatch(&["analyze", "-r", p.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("00:12:34:00:00:fe"));
}

#[test]
fn stdin_and_gzip_are_read() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.pcap");
    write_pcap(&p, 1, &frames());
    let gz = dir.path().join("a.pcap.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&std::fs::read(&p).unwrap()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let o = iotwatch(&["analyze", "-r", gz.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_iotwatch"))
        .args(["analyze", "-r", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&p).unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capture"]["packets"], 2);
}

fn fails_naming(path: &Path, needle: &str) {
    let o = iotwatch(&["analyze", "-r", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(path.to_str().unwrap()) && e.contains(needle),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    assert!(!e.contains("panicked"));
}

#[test]
fn unreadable_inputs_fail_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    fails_naming(&empty, "empty");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"this is not a capture file\n").unwrap();
    fails_naming(&text, "not a pcap or pcapng");
    fails_naming(dir.path(), "directory");
    fails_naming(&dir.path().join("missing.pcap"), "No such file");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(iotwatch(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        iotwatch(&["analyze", "-r", "x", "--threads", "many"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(iotwatch(&["frobnicate"]).status.code(), Some(2));
    let o = iotwatch(&["analyze", "-r", "x", "--home-net", "10.0.0.0/99"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("prefix length"));
}

#[test]
fn truncated_and_oversized_records_keep_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.pcap");
    write_pcap(&p, 1, &frames());
    let mut bytes = std::fs::read(&p).unwrap();
    let whole = bytes.len();
    bytes.truncate(whole - 5);
    std::fs::write(&p, &bytes).unwrap();
    let o = iotwatch(&["analyze", "-r", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let e = stderr(&o);
    let second_record = 24 + 16 + frames()[0].1.len();
    assert!(
        e.contains(&format!("byte offset {second_record}")) && e.contains("truncated"),
        "{e}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capture"]["packets"], 1);
    assert_eq!(v["capture"]["bad_records"], 1);
    // A record claiming 1 GiB.
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.truncate(second_record);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x40]);
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(&p, &bytes).unwrap();
    let o = iotwatch(&["analyze", "-r", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("corrupt length"), "{}", stderr(&o));
}

#[test]
fn unknown_link_type_is_a_warning_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("radiotap.pcap");
    write_pcap(&p, 127, &frames());
    let o = iotwatch(&["analyze", "-r", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("link type 127"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capture"]["skipped_packets"], 2);
}

#[test]
fn malformed_pcapng_block_is_skipped_by_its_length() {
    // SHB, IDB (Ethernet), a block of unknown type whose body is garbage but
    // whose length is sane, then an EPB: the EPB is still read.
    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len()) as u32;
        let mut v = t.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }
    let mut f = block(
        0x0A0D_0D0A,
        &[
            0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    f.extend(block(1, &[1, 0, 0, 0, 0, 0, 1, 0]));
    // An EPB that is too short to hold its own header.
    f.extend(block(6, &[0, 0, 0, 0]));
    let pkt = &frames()[0].1;
    let mut epb = vec![0u8; 20];
    epb[12..16].copy_from_slice(&(pkt.len() as u32).to_le_bytes());
    epb[16..20].copy_from_slice(&(pkt.len() as u32).to_le_bytes());
    epb.extend_from_slice(pkt);
    while !epb.len().is_multiple_of(4) {
        epb.push(0);
    }
    f.extend(block(6, &epb));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.pcapng");
    std::fs::write(&p, &f).unwrap();
    let o = iotwatch(&["analyze", "-r", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capture"]["packets"], 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.pcapng"));
}

/// Many chunks of the report's work (64 devices each): with two threads
/// each thread takes the next chunk not yet taken, and they must still come
/// out in order, the same bytes as one thread's whole report.
#[test]
fn many_devices_give_the_same_report_streamed_on_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.pcap");
    let mut frames = Vec::new();
    for i in 0..1200u32 {
        // Cisco's OUI for some, randomised MACs for others: vendors differ.
        let b = i.to_be_bytes();
        let mac = if i % 3 == 0 {
            [0x02, 0, 0, 0, b[2], b[3]]
        } else {
            [0x00, 0x00, 0x0c, 0, b[2], b[3]]
        };
        let mut v = Vec::new();
        PacketBuilder::ethernet2(mac, [0x00, 0x11, 0x22, 0x33, 0x44, 0x55])
            .ipv4([192, 168, b[2], b[3].max(1)], [8, 8, 8, 8], 64)
            .udp(40000, 123)
            .write(&mut v, &[0u8; 48])
            .unwrap();
        frames.push((u64::from(i) * 1000, v));
    }
    write_pcap(&path, 1, &frames);
    let one = common::json(&common::analyze(&[&path], 1).unwrap());
    assert!(one.matches("\"mac\"").count() > 1000, "{one}");
    assert_eq!(one, common::analyze_json(&[&path], 2));
    let out = iotwatch(&[
        "analyze",
        "-q",
        "--json",
        "--threads",
        "2",
        "-r",
        path.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), one + "\n");
}

/// Whatever the thread count, the same report, also where caps are reached:
/// the SYN cache overflowing (100,000 unanswered SYNs to hosts that spread
/// over every worker, some answered later), more SYN signatures than a device
/// keeps, and more DNS names than a device keeps of one kind.
#[test]
fn same_report_whatever_the_threads_when_caps_are_reached() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.pcap");
    let dev = [0x00, 0x11, 0x22, 0x00, 0x00, 0x01];
    let router = [0x00, 0x11, 0x22, 0x00, 0x00, 0xfe];
    let mut frames = Vec::new();
    let mut t = 0u64;
    let mut push = |frames: &mut Vec<(u64, Vec<u8>)>, b: PacketBuilderStep, payload: &[u8]| {
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        t += 100;
        frames.push((t, v));
    };
    type PacketBuilderStep = etherparse::PacketBuilderStep<etherparse::TcpHeader>;
    for i in 0..100_000u32 {
        let b = i.to_be_bytes();
        let syn = PacketBuilder::ethernet2(dev, router)
            .ipv4([192, 168, 1, 10], [10, b[1], b[2], b[3]], 64)
            .tcp(
                40000 + (i % 20000) as u16,
                80,
                i,
                1024 * (1 + (i % 8) as u16),
            )
            .syn();
        push(&mut frames, syn, &[]);
        if i % 7 == 0 && i >= 50 {
            // An answer to a SYN sent 50 earlier: some still cached, some displaced.
            let j = i - 50;
            let c = j.to_be_bytes();
            let ack = PacketBuilder::ethernet2(router, dev)
                .ipv4([10, c[1], c[2], c[3]], [192, 168, 1, 10], 60)
                .tcp(80, 40000 + (j % 20000) as u16, 7, 65535)
                .syn()
                .ack(j + 1);
            push(&mut frames, ack, &[]);
        }
    }
    for n in 0..60u16 {
        let name = format!("host{n:02}.example.com");
        let mut q = vec![0, n as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut v = Vec::new();
        PacketBuilder::ethernet2(dev, router)
            .ipv4([192, 168, 1, 10], [192, 168, 1, 1], 64)
            .udp(50000 + n, 53)
            .write(&mut v, &q)
            .unwrap();
        frames.push((t + u64::from(n) * 10, v));
    }
    write_pcap(&path, 1, &frames);
    let one = common::analyze_json(&[&path], 1);
    let r: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert!(
        r["capture"]["unanswered_syns"].as_u64().unwrap() > 60_000,
        "{}",
        r["capture"]
    );
    let device = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"] == "00:11:22:00:00:01")
        .unwrap();
    let of = |field: &str| {
        device["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["field"] == field)
            .count()
    };
    assert_eq!(of("syn"), iotwatch::inventory::MAX_SYNS, "{device}");
    assert_eq!(of("query"), iotwatch::inventory::MAX_VALUES, "{device}");
    // Eight: more shards than cores, each worked on by whichever thread is free.
    same_on_threads(&path, &one, &[2, 3, 8], &Config::default());
}

/// The JSON report of `path` on each of `threads`, the pipeline otherwise
/// configured as `config`, is `one`.
fn same_on_threads(path: &Path, one: &str, threads: &[usize], config: &Config) {
    for &threads in threads {
        let config = Config {
            threads,
            ..config.clone()
        };
        let other = common::analyze_json_with(&[path], config);
        assert_eq!(one, other, "{threads} threads");
    }
}

/// A capture whose time jumps forward and then falls back (merged from two
/// sources, say): flows go idle by the latest time read, whichever thread
/// holds them, so one thread and two end the same flows.
#[test]
fn same_report_whatever_the_threads_when_time_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backwards.pcap");
    let dev = [0x00, 0x11, 0x22, 0x00, 0x00, 0x01];
    let router = [0x00, 0x11, 0x22, 0x00, 0x00, 0xfe];
    let dns = |port: u16, frames: &mut Vec<(u64, Vec<u8>)>, t_us: u64| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(dev, router)
            .ipv4([192, 168, 1, 10], [192, 168, 1, 1], 64)
            .udp(port, 53)
            .write(&mut v, &[0u8; 20])
            .unwrap();
        frames.push((t_us, v));
    };
    let mut frames = Vec::new();
    // 64 flows (spread over every shard) at 1 s; one packet at 1,000 s;
    // the 64 again at 2 s and 3 s, behind it.
    for p in 0..64 {
        dns(40000 + p, &mut frames, 1_000_000);
    }
    dns(50000, &mut frames, 1_000_000_000);
    for t in [2_000_000, 3_000_000] {
        for p in 0..64 {
            dns(40000 + p, &mut frames, t);
        }
    }
    write_pcap(&path, 1, &frames);
    let one = common::analyze_json(&[&path], 1);
    let r: serde_json::Value = serde_json::from_str(&one).unwrap();
    // Each of the 64 went idle at the jump (999 s quiet by the latest
    // time) and starts once again at 2 s, going on at 3 s: 64 + 1 + 64.
    assert_eq!(r["capture"]["udp_flows"], 129, "{}", r["capture"]);
    same_on_threads(&path, &one, &[2, 3], &Config::default());
}

/// A flood of more source MACs than the inventory holds: each worker keeps
/// the devices with the least MACs, so the report has the same devices on
/// any number of threads, and says the cap was reached.
#[test]
fn same_report_whatever_the_threads_when_devices_flood_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macflood.pcap");
    let router = [0x00, 0x11, 0x22, 0x00, 0x00, 0xfe];
    let cap = 100;
    let mut frames = Vec::new();
    // 600 made-up MACs in a scrambled order, each sending two flows (which
    // fall in different shards) and coming back later.
    for round in 0..2u32 {
        for i in 0..600u32 {
            let x = i.wrapping_mul(0x9E37_79B9) >> 20;
            let mac = [0x02, 0x00, 0x00, 0x00, (x >> 8) as u8, x as u8];
            for port in [53, 123] {
                let mut v = Vec::new();
                PacketBuilder::ethernet2(mac, router)
                    .ipv4([192, 168, 1, (i % 250) as u8 + 2], [192, 168, 1, 1], 64)
                    .udp(40000 + round as u16, port)
                    .write(&mut v, &[0u8; 8])
                    .unwrap();
                frames.push((frames.len() as u64 * 100, v));
            }
        }
    }
    write_pcap(&path, 1, &frames);
    let config = Config {
        max_devices: cap,
        ..Config::default()
    };
    let one = common::analyze_json_with(&[&path], config.clone());
    let r: serde_json::Value = serde_json::from_str(&one).unwrap();
    let devices = r["devices"].as_array().unwrap();
    // The router (never sending) is among the least keys.
    assert_eq!(devices.len(), cap - 1);
    let macs: Vec<&str> = devices.iter().map(|d| d["mac"].as_str().unwrap()).collect();
    assert!(macs.windows(2).all(|w| w[0] < w[1]));
    assert!(devices.iter().all(|d| d["packets"] == 4), "{}", devices[0]);
    let warnings = r["capture"]["warnings"].to_string();
    assert!(warnings.contains("more than 100 devices"), "{warnings}");
    same_on_threads(&path, &one, &[2, 3, 4], &config);
}

/// A flow table that fills up evicts the same flows whatever the thread
/// count: the cap and the eviction order are per shard bucket, and a
/// bucket's packets are the same whichever worker holds it. A UDP sweep
/// (as an ISP sees) comes back to each target after about as many others
/// as the table holds, so whether a target's flow was evicted before its
/// second packet depends on exactly which flows went first.
#[test]
fn same_report_whatever_the_threads_when_the_flow_table_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.pcap");
    let dev = [0x00, 0x11, 0x22, 0x00, 0x00, 0x01];
    let router = [0x00, 0x11, 0x22, 0x00, 0x00, 0xfe];
    let cap = 64 * 32;
    let target = |i: u32| {
        // Spread over the address space, the same for each i.
        let x = i.wrapping_mul(0x9E37_79B9);
        [11, (x >> 24) as u8, (x >> 16) as u8, (x >> 8) as u8]
    };
    let mut frames = Vec::new();
    let mut probe = |dst: [u8; 4]| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(dev, router)
            .ipv4([192, 168, 1, 10], dst, 64)
            .udp(40000, 9)
            .write(&mut v, &[0u8; 8])
            .unwrap();
        frames.push((frames.len() as u64 * 100, v));
    };
    for i in 0..6000u32 {
        probe(target(i));
        // Back to a target probed about a table's worth of flows earlier.
        let back = i.wrapping_sub(cap as u32 - 200 + (i * 7919) % 400);
        if back < i {
            probe(target(back));
        }
    }
    let sent = frames.len() as u64;
    write_pcap(&path, 1, &frames);
    let config = Config {
        max_flows: cap,
        ..Config::default()
    };
    let one = common::analyze_json_with(&[&path], config.clone());
    let r: serde_json::Value = serde_json::from_str(&one).unwrap();
    let evicted = r["capture"]["flows_evicted"].as_u64().unwrap();
    assert!(evicted > 3000, "{}", r["capture"]);
    // Some second probes found their flow, some did not.
    let flows = r["capture"]["udp_flows"].as_u64().unwrap();
    assert!(flows > 6000 && flows < sent, "{}", r["capture"]);
    assert_eq!(r["capture"]["decode_errors"], 0);
    same_on_threads(&path, &one, &[2, 4, 8], &config);
}
