//! Real scanners against real hosts, in two network namespaces this test
//! creates and removes (a veth pair, nothing routed anywhere else): traffic
//! is recorded with tcpdump and the capture checked through `analyze`.
//! Skips with a message when not root or when nmap, hping3 or tcpdump are
//! missing (CI runs as root and installs them).

mod common;

use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::analyze;
use iotwatch::event::EventKind;

struct Netns {
    scanner: String,
    target: String,
}

impl Netns {
    /// Two namespaces joined by a veth pair on 10.231.N.0/24: the scanner at
    /// .1, the target at .2 to .9 (several addresses, so a scan has hosts).
    fn new(tag: &str) -> Option<Netns> {
        let n = std::process::id() % 200 + 20;
        let ns = Netns {
            scanner: format!("iw-{tag}-a-{n}"),
            target: format!("iw-{tag}-b-{n}"),
        };
        let (a, b) = (&ns.scanner, &ns.target);
        let net = format!("10.231.{n}");
        let ok = [
            format!("ip netns add {a}"),
            format!("ip netns add {b}"),
            format!("ip link add iwa{n} netns {a} type veth peer name iwb{n} netns {b}"),
            format!("ip -n {a} link set lo up"),
            format!("ip -n {b} link set lo up"),
            format!("ip -n {a} addr add {net}.1/24 dev iwa{n}"),
            format!("ip -n {a} link set iwa{n} up"),
            format!("ip -n {b} link set iwb{n} up"),
        ]
        .iter()
        .chain(
            &(2..10)
                .map(|h| format!("ip -n {b} addr add {net}.{h}/24 dev iwb{n}"))
                .collect::<Vec<_>>(),
        )
        .all(|c| sh(c));
        ok.then_some(ns)
    }

    fn net(&self) -> String {
        format!("10.231.{}", std::process::id() % 200 + 20)
    }

    fn exec(&self, ns: &str, cmd: &str) -> bool {
        sh(&format!("ip netns exec {ns} {cmd}"))
    }

    fn spawn(&self, ns: &str, cmd: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec ip netns exec {ns} {cmd}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&format!("ip netns del {}", self.scanner));
        sh(&format!("ip netns del {}", self.target));
    }
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ready(tools: &[&str]) -> bool {
    // Only root may create namespaces.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root {
        eprintln!("SKIPPED: network-namespace tests need root");
        return false;
    }
    for t in tools {
        if !sh(&format!("command -v {t}")) {
            eprintln!("SKIPPED: {t} is not installed");
            return false;
        }
    }
    true
}

/// Records on the target side while `scan` runs on the scanner side.
fn record(ns: &Netns, pcap: &std::path::Path, scan: impl FnOnce(&Netns)) {
    let n = std::process::id() % 200 + 20;
    let mut dump = ns.spawn(
        &ns.target,
        &format!("tcpdump -U -n -i iwb{n} -w {}", pcap.display()),
    );
    // A listener on 23 and 80 so some probes are answered.
    let mut listen = ns.spawn(
        &ns.target,
        "python3 -c 'import socket,time\nss=[]\nfor p in (23,80):\n s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((\"0.0.0.0\",p));s.listen(64);ss.append(s)\ntime.sleep(30)'",
    );
    sleep(Duration::from_millis(1500));
    scan(ns);
    sleep(Duration::from_millis(1000));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(dump.id().to_string())
        .status();
    let _ = dump.wait();
    let _ = listen.kill();
    let _ = listen.wait();
}

#[test]
fn nmap_syn_scan_and_hping3_mirai_probes() {
    if !ready(&["ip", "nmap", "hping3", "tcpdump", "python3"]) {
        return;
    }
    let Some(ns) = Netns::new("scan") else {
        eprintln!("SKIPPED: could not create network namespaces here");
        return;
    };
    let net = ns.net();
    let tmp = tempfile::tempdir().unwrap();

    // nmap -sS of 200 ports on one host of our own namespace.
    let nmap_pcap = tmp.path().join("nmap.pcap");
    record(&ns, &nmap_pcap, |ns| {
        assert!(ns.exec(
            &ns.scanner,
            &format!("nmap -sS -n -Pn -p 1-200 --max-retries 0 {net}.2")
        ));
    });
    let r = analyze(&[&nmap_pcap], 1).unwrap();
    let scans: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Scan(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(scans.len(), 1, "{scans:#?}");
    assert_eq!(scans[0].source.ip, format!("{net}.1"));
    assert_eq!((scans[0].verdict, scans[0].direction), ("scanner", "lan"));
    assert!(scans[0].distinct_ports >= 200);
    let open: Vec<&str> = scans[0].open.iter().map(String::as_str).collect();
    assert_eq!(open, [format!("{net}.2:23"), format!("{net}.2:80")]);

    // hping3 SYNs whose sequence number is the target's address, Mirai's
    // trick, to three hosts; and the same with a wrong sequence number from
    // a second run, which must not count.
    let mirai_pcap = tmp.path().join("mirai.pcap");
    record(&ns, &mirai_pcap, |ns| {
        for h in 3..=5u32 {
            let dst = format!("{net}.{h}");
            let ip: std::net::Ipv4Addr = dst.parse().unwrap();
            let seq = u32::from(ip);
            for port in [23, 2323] {
                assert!(ns.exec(
                    &ns.scanner,
                    &format!("hping3 -q -S -c 1 -p {port} -M {seq} {dst}")
                ));
            }
        }
    });
    let r = analyze(&[&mirai_pcap], 1).unwrap();
    let scans: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Scan(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(scans.len(), 1, "{scans:#?}");
    assert_eq!(scans[0].verdict, "mirai-like");
    assert_eq!(scans[0].mirai_matches, 6);
}
