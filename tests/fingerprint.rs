//! Device fingerprinting against the shared corpus.
//!
//! The oracle: every DHCP hostname and vendor class, every mDNS TXT `md=`,
//! `ty=` and `model=` value, every SSDP SERVER string, every HTTP User-Agent
//! from a home address and every TLS SNI that tshark extracts must appear in
//! the evidence of the device that sent it. Misses are explained or fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use iotwatch::netconf::HomeNets;

fn tshark() -> bool {
    let ok = Command::new("tshark").arg("-v").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: tshark is not installed");
    }
    ok
}

/// Evidence of each device, by MAC and by IP.
struct Devices {
    by_key: BTreeMap<String, BTreeSet<(String, String, String)>>,
}

fn devices(report: &iotwatch::output::Report) -> Devices {
    let v: serde_json::Value = serde_json::from_str(&common::json(report)).unwrap();
    let mut by_key = BTreeMap::new();
    for d in v["devices"].as_array().unwrap() {
        let ev: BTreeSet<(String, String, String)> = d["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["signal"].as_str().unwrap().to_string(),
                    e["field"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if let Some(m) = d["mac"].as_str() {
            by_key.insert(m.to_string(), ev.clone());
        } else {
            for ip in d["ips"].as_array().unwrap() {
                by_key.insert(ip.as_str().unwrap().to_string(), ev.clone());
            }
        }
    }
    Devices { by_key }
}

/// tshark's text for a field value as iotwatch prints it (control
/// characters escaped, cut at 200 bytes).
fn same(ours: &str, theirs: &str) -> bool {
    ours == iotwatch::inventory::printable(theirs.as_bytes())
}

#[derive(Default)]
struct Tally {
    expected: usize,
    found: usize,
    explained: Vec<String>,
    missed: Vec<String>,
}

const FIELDS: &[&str] = &[
    "eth.src",
    "ip.src",
    "ipv6.src",
    "udp.srcport",
    "dhcp.hw.mac_addr",
    "dhcp.option.hostname",
    "dhcp.option.vendor_class_id",
    "dns.flags.response",
    "dns.txt",
    "http.server",
    "http.user_agent",
    "tls.handshake.extensions_server_name",
    "udp.dstport",
    "dhcp.type",
    "sll.src.eth",
    "frame.protocols",
];

/// Encapsulations iotwatch does not decode (or TLS started inside another
/// protocol), with the reason a value inside them is not expected.
const NOT_DECODED: &[(&str, &str)] = &[
    (
        ":quic",
        "QUIC: the ClientHello is in an encrypted Initial packet (not decoded yet)",
    ),
    (":socks", "tunnelled through a SOCKS proxy"),
    (":capwap", "tunnelled in CAPWAP"),
    (":vxlan", "tunnelled in VXLAN"),
    (":gtp", "tunnelled in GTP"),
    (":gre", "tunnelled in GRE"),
    (":teredo", "tunnelled in Teredo"),
    ("ip:ip:", "IP-in-IP tunnel"),
    ("ipv6:ip:", "IPv4-in-IPv6 tunnel"),
    ("ip:ipv6:", "IPv6-in-IPv4 tunnel"),
    (":rdp", "TLS inside RDP (after its X.224 negotiation)"),
    (":pop:", "TLS after POP3 STLS"),
    (":imap:", "TLS after IMAP STARTTLS"),
    (":smtp:", "TLS after SMTP STARTTLS"),
    (":http:tls", "TLS inside an HTTP CONNECT tunnel"),
    ("nflog", "NFLOG link type is not decoded"),
    ("wlan", "802.11 link type is not decoded"),
    (":ppp", "PPP encapsulation is not decoded"),
];

/// Single values not expected, each reviewed.
const REVIEWED: &[(&str, &str)] = &[
    (
        "arkime/CVE-2018-6794.pcap",
        "Suricata CVE-2018-6794 evasion test: data sent before the TCP handshake completes, which iotwatch's reassembly (like Suricata's fix) does not accept",
    ),
    (
        "zeek/tcp/payload-syn.pcap",
        "the request rides in the SYN's payload, which the reassembly skips",
    ),
    (
        "ndpi/fuzz-2006-06-26-2594.pcap",
        "fuzzed frame: the sender's MAC is a group address, so no device",
    ),
    (
        "ndpi/http_starting_with_reply.pcapng",
        "the capture starts mid-connection with the server's reply, so the server is taken for the flow's client and its peer's requests for replies",
    ),
    (
        "arkime/socks5-reverse.pcap",
        "reverse SOCKS: the HTTP request is sent by the side that accepted the connection",
    ),
    (
        "arkime/socks5-http-302-frag.pcap",
        "the request is IP-fragmented; fragments are counted, not reassembled (issue 3)",
    ),
    (
        "arkime/adb_synthetic.pcap",
        "TLS inside Android Debug Bridge framing (after ADB's STLS message)",
    ),
    (
        "ndpi/fuzz-2006-09-29-28586.pcap",
        "fuzzed TCP stream: the request line is damaged, so the flow is not taken as HTTP",
    ),
];

#[test]
fn tshark_oracle_on_the_corpus() {
    let Some(dir) = common::shared() else { return };
    if !tshark() {
        return;
    }
    let home = HomeNets::default();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let files: Vec<String> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let what = f.get(8)?;
            [
                "DHCP hostname",
                "mDNS",
                "SSDP",
                "HTTP UA",
                "TLS SNI",
                "dhcp",
                "ssdp",
            ]
            .iter()
            .any(|k| what.contains(k))
            .then(|| f[0].to_string())
        })
        .collect();
    assert!(files.len() > 200, "{} files", files.len());
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for file in &files {
        let path = dir.join(file);
        let Ok(report) = common::analyze(&[&path], 1) else {
            continue;
        };
        let devs = devices(&report);
        let mut args = vec![
            "-r".to_string(),
            path.display().to_string(),
            "-n".into(),
            "-T".into(),
            "fields".into(),
            "-E".into(),
            "occurrence=a".into(),
            "-E".into(),
            "aggregator=\u{1}".into(),
            "-Y".into(),
            "dhcp or mdns or ssdp or http.user_agent or tls.handshake.type == 1".into(),
        ];
        for f in FIELDS {
            args.push("-e".into());
            args.push(f.to_string());
        }
        let out = Command::new("tshark").args(&args).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let cols: Vec<Vec<&str>> = line
                .split('\t')
                .map(|c| c.split('\u{1}').filter(|s| !s.is_empty()).collect())
                .collect();
            let col = |name: &str| -> Vec<&str> {
                let i = FIELDS.iter().position(|f| *f == name).unwrap();
                cols.get(i).cloned().unwrap_or_default()
            };
            // Innermost addresses (tunnels carry several).
            let eth = col("eth.src")
                .last()
                .or(col("sll.src.eth").last())
                .filter(|m| **m != "00:00:00:00:00:00")
                .map(|s| s.to_string());
            let protocols = col("frame.protocols")
                .first()
                .copied()
                .unwrap_or("")
                .to_string();
            let reply = col("dhcp.type").first() == Some(&"2");
            let ip: Option<IpAddr> = col("ip.src")
                .last()
                .or(col("ipv6.src").last())
                .and_then(|s| s.parse().ok());
            let mdns = col("udp.srcport").contains(&"5353") || col("udp.dstport").contains(&"5353");
            let ssdp = col("udp.srcport").contains(&"1900") || col("udp.dstport").contains(&"1900");
            let mut expect: Vec<(&str, &str, &str, String)> = Vec::new();
            let dhcp_mac = col("dhcp.hw.mac_addr").first().map(|s| s.to_string());
            // Requests are the client's; the hostname in a reply is the one
            // handed to the client: both go to the client's MAC.
            for v in col("dhcp.option.hostname") {
                expect.push(("dhcp", "dhcp", "hostname", v.to_string()));
            }
            // A vendor class in a reply is the server's own.
            for v in col("dhcp.option.vendor_class_id") {
                let kind = if reply { "dhcp-server" } else { "dhcp" };
                expect.push((kind, "dhcp", "vendor_class", v.to_string()));
            }
            if mdns && col("dns.flags.response").contains(&"1") {
                for v in col("dns.txt") {
                    let k = v.split('=').next().unwrap_or("").to_ascii_lowercase();
                    if ["md", "ty", "model"].contains(&k.as_str()) && v.len() > k.len() + 1 {
                        expect.push(("mdns", "mdns", "txt", v.to_string()));
                    }
                }
            }
            if ssdp {
                for v in col("http.server") {
                    expect.push(("ssdp", "ssdp", "server", v.to_string()));
                }
            }
            for v in col("http.user_agent") {
                let signal = if ssdp { "ssdp" } else { "http" };
                expect.push(("http", signal, "user_agent", v.to_string()));
            }
            for v in col("tls.handshake.extensions_server_name") {
                expect.push(("tls", "tls", "sni", v.to_string()));
            }
            for (kind, signal, field, value) in expect {
                let t = tallies.entry(kind).or_default();
                let on_link = kind.starts_with("dhcp") || mdns || (ssdp && signal == "ssdp");
                let home_ip = ip.is_some_and(|ip| home.contains(ip) && !ip.is_unspecified());
                if kind == "http" && !home_ip {
                    continue; // the issue asks for User-Agents from home addresses
                }
                t.expected += 1;
                let key = if kind == "dhcp" {
                    dhcp_mac.clone()
                } else if eth.is_some() {
                    eth.clone()
                } else {
                    ip.map(|i| i.to_string())
                };
                let why = format!("{file}: {signal}/{field} {value:?} from {key:?}");
                if let Some((_, reason)) = REVIEWED.iter().find(|(f, _)| f == file) {
                    t.explained.push(format!("{why}: {reason}"));
                    continue;
                }
                if let Some((_, reason)) = NOT_DECODED.iter().find(|(p, _)| protocols.contains(p)) {
                    t.explained.push(format!("{why}: {reason}"));
                    continue;
                }
                if !home_ip && !on_link {
                    t.explained.push(format!(
                        "{why}: sender is not a home address, so not a device"
                    ));
                    continue;
                }
                let Some(ev) = key.as_ref().and_then(|k| devs.by_key.get(k)) else {
                    t.missed.push(format!("{why}: no such device"));
                    continue;
                };
                let hit = ev.iter().any(|(s, f, v)| {
                    (s == signal || (kind == "http" && s == "rtsp"))
                        && f == field
                        && same(v, &value)
                });
                if hit {
                    t.found += 1;
                } else if ev
                    .iter()
                    .filter(|(s, f, _)| s == signal && f == field)
                    .count()
                    >= iotwatch::inventory::MAX_VALUES
                {
                    t.explained.push(format!(
                        "{why}: the device's {signal}/{field} values reached their cap"
                    ));
                } else {
                    t.missed.push(why);
                }
            }
        }
    }
    let mut failed = false;
    for (kind, t) in &tallies {
        let recall = if t.expected == 0 {
            1.0
        } else {
            (t.found + t.explained.len()) as f64 / t.expected as f64
        };
        eprintln!(
            "{kind}: {} values, {} found in the sender's evidence, {} explained, {} missed (recall {:.1} %)",
            t.expected,
            t.found,
            t.explained.len(),
            t.missed.len(),
            recall * 100.0
        );
        for e in t.explained.iter().take(5) {
            eprintln!("  explained: {e}");
        }
        for m in &t.missed {
            eprintln!("  MISSED: {m}");
            failed = true;
        }
    }
    assert!(!failed, "values tshark sees are missing from the evidence");
    assert!(tallies.values().map(|t| t.found).sum::<usize>() > 300);
}

#[test]
fn known_devices_of_the_corpus() {
    let Some(dir) = common::shared() else { return };
    let dev = |file: &str, mac: &str| -> serde_json::Value {
        let r = common::analyze(&[Path::new(&dir.join(file))], 1).unwrap();
        let v: serde_json::Value = serde_json::from_str(&common::json(&r)).unwrap();
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"].as_str().is_some_and(|m| m.starts_with(mac)))
            .unwrap_or_else(|| panic!("{file}: no device {mac}"))
            .clone()
    };
    let plug = dev("pingpong/wlan1.local.dns.pcap", "50:c7:bf:33:1f:09");
    assert_eq!(plug["vendor"], "TP-Link");
    assert_eq!(plug["type"], "smart-plug");
    assert_eq!(plug["model"], "HS110(US)");
    assert_eq!(plug["firmware"], "1.2.5 Build 171206");
    for (file, mac, vendor, kind) in [
        (
            "iot-dataset-oconnor/blink-cam-01.pcap",
            "f4:b8:5e:ff:2b:1b",
            "Amazon",
            "camera",
        ),
        (
            "iot-dataset-oconnor/lockly-hub-01.pcap",
            "24:6f:28:",
            "Lockly",
            "hub",
        ),
        (
            "iot-dataset-oconnor/ultraloq-hub-01.pcap",
            "a4:cf:12:",
            "Ultraloq",
            "hub",
        ),
        (
            "iot-dataset-oconnor/sifely-hub-01.pcap",
            "f4:cf:a2:",
            "Sciener",
            "hub",
        ),
        (
            "iot-dataset-oconnor/schlage-lock-01.pcap",
            "78:db:2f:",
            "Schlage",
            "lock",
        ),
    ] {
        let r = common::analyze(&[Path::new(&dir.join(file))], 1).unwrap();
        let v: serde_json::Value = serde_json::from_str(&common::json(&r)).unwrap();
        let d = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"].as_str().is_some_and(|m| m.starts_with(mac)))
            .unwrap_or_else(|| panic!("{file}: no device {mac}"));
        assert_eq!(
            (file, &d["vendor"], &d["type"]),
            (file, &vendor.into(), &kind.into()),
            "{d:#}"
        );
    }
    let pi = dev("slips/test7-malicious.pcap", "b8:27:eb:");
    assert_eq!(
        (&pi["vendor"], &pi["type"]),
        (&"Raspberry Pi".into(), &"computer".into()),
        "{pi:#}"
    );
}

/// JA4 agrees with the value Suricata's own test publishes.
#[test]
fn ja4_matches_suricata_verify() {
    let Some(dir) = common::shared() else { return };
    let test = dir.join("suricata-verify/tests/ja4-tls");
    let yaml = std::fs::read_to_string(test.join("test.yaml")).unwrap();
    let expected: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tls.ja4: "))
        .collect();
    assert!(!expected.is_empty());
    let r = common::analyze(&[&test.join("input.pcap")], 1).unwrap();
    let ja4: BTreeSet<String> = r
        .devices
        .iter()
        .flat_map(|d| &d.evidence)
        .filter(|e| e.signal == "tls" && e.field == "ja4")
        .map(|e| e.value.clone())
        .collect();
    for e in expected {
        assert!(ja4.contains(e), "suricata says {e}, iotwatch has {ja4:?}");
    }
}

/// `signatures check` passes on the shipped files and names file and line
/// of a bad overlay, exiting non-zero; `analyze --signatures` refuses it.
#[test]
fn signatures_check_command() {
    let bin = env!("CARGO_BIN_EXE_iotwatch");
    let ok = Command::new(bin)
        .args([
            "signatures",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/signatures"),
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("devices") && text.contains("oui"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("devices")).unwrap();
    std::fs::write(
        dir.path().join("devices/mine.tsv"),
        "id\tsignal\tfield\tpattern\tclaims\tweight\tsource\n\
         my-cam\thttp\tserver\t^MyCam\tvendor=MyCam;type=camera\t0.9\tmy camera's manual\n\
         my-cam\thttp\tserver\t^MyCam2\ttype=toaster\t0.9\tme\n",
    )
    .unwrap();
    let bad = Command::new(bin)
        .args(["signatures", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("devices/mine.tsv:3") && err.contains("toaster"),
        "{err}"
    );
    let refused = Command::new(bin)
        .args(["analyze", "-r", "/dev/null", "--signatures"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    // A good overlay rule names a device.
    std::fs::write(
        dir.path().join("devices/mine.tsv"),
        "id\tsignal\tfield\tpattern\tclaims\tweight\tsource\n\
         my-plug\ttplink\tmodel\t^HS110\tvendor=Overlay Test;type=smart-plug\t1.0\ttest\n",
    )
    .unwrap();
    let Some(shared) = common::shared() else {
        return;
    };
    let out = Command::new(bin)
        .args(["analyze", "--json", "-r"])
        .arg(shared.join("pingpong/wlan1.local.dns.pcap"))
        .arg("--signatures")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plug = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"] == "50:c7:bf:33:1f:09")
        .unwrap();
    assert_eq!(plug["vendor"], "Overlay Test");
}

/// The router of a home capture is not named after Internet hosts, and no
/// randomised MAC gets a vendor.
#[test]
fn router_and_randomised_macs() {
    let Some(dir) = common::shared() else { return };
    for file in [
        "pingpong/wlan1.local.dns.pcap",
        "ndpi/1kxun.pcap",
        "ndpi/sites.pcapng",
        "slips/test7-malicious.pcap",
    ] {
        let r = common::analyze(&[&dir.join(file)], 1).unwrap();
        for d in &r.devices {
            if d.randomised_mac {
                assert_eq!(d.vendor, None, "{file}: {:?}", d.mac);
                assert!(
                    d.evidence
                        .iter()
                        .all(|e| e.signal != "oui" || e.field == "randomised")
                );
            }
            // Facts come only from home addresses or the link itself: no
            // Server header of an Internet web server lands on any device.
            for e in &d.evidence {
                if e.signal == "http" && e.field == "server" {
                    assert!(
                        d.ips
                            .iter()
                            .any(|ip| HomeNets::default().contains(ip.parse().unwrap())),
                        "{file}: {:?} has {:?}",
                        d.mac,
                        e.value
                    );
                }
            }
        }
    }
}
