//! End of support, end to end: statuses with their sources on the corpus,
//! on a capture recorded between network namespaces, and across `--as-of`.

mod common;

use std::path::Path;
use std::process::Command;

fn analyze_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_iotwatch"))
        .arg("analyze")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn device<'a>(r: &'a serde_json::Value, mac_prefix: &str) -> &'a serde_json::Value {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"].as_str().is_some_and(|m| m.starts_with(mac_prefix)))
        .unwrap_or_else(|| panic!("no device {mac_prefix}"))
}

#[test]
fn tplink_plug_gets_a_status_with_its_reason() {
    let Some(dir) = common::shared() else { return };
    let f = dir.join("pingpong/wlan1.local.dns.pcap");
    let r = analyze_json(&["-r", f.to_str().unwrap(), "--as-of", "2026-11-26"]);
    let plug = device(&r, "50:c7:bf:33:1f:09");
    let s = &plug["support"];
    // The reference has no row for the HS110: unknown, with TP-Link's policy as source.
    assert_eq!(s["status"], "unknown");
    assert!(s["reason"].as_str().unwrap().contains("policy"), "{s}");
    assert!(s["source"].as_str().unwrap().contains("tp-link.com"), "{s}");
    let cop = &plug["code_of_practice"];
    assert_eq!(cop["support_status"], "unknown");
    assert!(
        cop["disclosure"]["policy_url"]
            .as_str()
            .unwrap()
            .contains("tp-link")
    );
}

#[test]
fn raspberry_pi_is_not_ended_from_a_production_date() {
    let Some(dir) = common::shared() else { return };
    let f = dir.join("slips/test7-malicious.pcap");
    for as_of in ["2026-11-26", "2045-01-01"] {
        let r = analyze_json(&["-r", f.to_str().unwrap(), "--as-of", as_of]);
        let pi = device(&r, "b8:27:eb:");
        assert_ne!(pi["support"]["status"], "ended", "{}", pi["support"]);
    }
}

/// The DHCP client recorded between namespaces (busybox udhcpc with
/// `android-dhcp-9`, a Pixel 3a User-Agent): ended, with the date and source
/// of the Pixel 3a's promise; and `--as-of` before that date says supported.
#[test]
fn old_android_phone_recorded_in_namespaces() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/servers/dhcp-upnp.pcap");
    let p = pcap.to_str().unwrap();
    let phone = |as_of: &str| {
        let r = analyze_json(&["-r", p, "--as-of", as_of]);
        let d = r["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["os"] == "Android 9")
            .cloned()
            .expect("the phone");
        (d, r["events"].clone())
    };
    let (d, events) = phone("2026-11-26");
    assert_eq!(d["support"]["status"], "ended", "{}", d["support"]);
    assert_eq!(d["support"]["end"], "2022-05-05");
    assert_eq!(d["support"]["matched"], "model Pixel 3a");
    assert!(
        d["support"]["source"]
            .as_str()
            .unwrap()
            .contains("endoflife.date")
    );
    let eos: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "end_of_support")
        .collect();
    assert_eq!(eos.len(), 1, "{eos:#?}");
    assert_eq!(eos[0]["model"], "Pixel 3a");
    assert_eq!(eos[0]["severity"], "medium");
    // Across its date.
    assert_eq!(phone("2022-05-05").0["support"]["status"], "ending-soon");
    assert_eq!(phone("2021-06-01").0["support"]["status"], "supported");
    assert_eq!(phone("2022-05-06").0["support"]["status"], "ended");
}

/// An iPhone on iOS 12 and a Windows PC, built as a capture: the iPhone's
/// status comes from its OS release (iOS 12 ended 2026-01-26).
#[test]
fn old_ios_from_its_user_agent() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("ios.pcap");
    let mac = [0xa4, 0x83, 0xe7, 1, 2, 3]; // an Apple, Inc. block
    let server = [0x00, 0x1d, 0x7e, 9, 9, 9];
    let mut frames = Vec::new();
    let mut tcp = |from_client: bool, seq: u32, ack: u32, flags: &str, payload: &[u8]| {
        let (sm, dm, sip, dip, sp, dp) = if from_client {
            (mac, server, [192, 168, 1, 50], [192, 168, 1, 1], 50000, 80)
        } else {
            (server, mac, [192, 168, 1, 1], [192, 168, 1, 50], 80, 50000)
        };
        let mut b = etherparse::PacketBuilder::ethernet2(sm, dm)
            .ipv4(sip, dip, 64)
            .tcp(sp, dp, seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('P') {
            b = b.psh();
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        frames.push((frames.len() as u64 * 1000, v));
    };
    let req = b"GET / HTTP/1.1\r\nHost: 192.168.1.1\r\nUser-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    tcp(true, 100, 0, "S", b"");
    tcp(false, 500, 101, "SA", b"");
    tcp(true, 101, 501, "A", b"");
    tcp(true, 101, 501, "PA", req);
    tcp(false, 501, 101 + req.len() as u32, "PA", resp);
    common::write_pcap(&pcap, 1, &frames);
    let r = analyze_json(&["-r", pcap.to_str().unwrap(), "--as-of", "2026-11-26"]);
    let phone = device(&r, "a4:83:e7");
    assert_eq!(phone["os"], "iOS 12.5");
    assert_eq!(phone["type"], "phone");
    assert_eq!(phone["support"]["status"], "ended");
    assert_eq!(phone["support"]["end"], "2026-01-26");
    assert_eq!(phone["support"]["matched"], "os iOS 12.5");
    let r = analyze_json(&["-r", pcap.to_str().unwrap(), "--as-of", "2025-06-01"]);
    assert_eq!(device(&r, "a4:83:e7")["support"]["status"], "supported");
}

/// Of the devices whose model or OS version the corpus reveals, how many get
/// a status other than unknown (printed: the issue asks for the figure).
#[test]
fn matching_rate_on_the_corpus() {
    let Some(dir) = common::shared() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let (mut revealed, mut matched) = (0, 0);
    let mut unmatched = std::collections::BTreeMap::new();
    for line in manifest.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let Ok(r) = common::analyze(&[&dir.join(file)], 1) else {
            continue;
        };
        for d in &r.devices {
            if d.model.is_none()
                && !d
                    .os
                    .as_deref()
                    .is_some_and(|o| o.chars().any(|c| c.is_ascii_digit()))
            {
                continue;
            }
            revealed += 1;
            if d.support.status != "unknown" {
                matched += 1;
            } else {
                let key = format!(
                    "{} | {}",
                    d.model.as_deref().unwrap_or("-"),
                    d.os.as_deref().unwrap_or("-")
                );
                *unmatched.entry(key).or_insert(0) += 1;
            }
        }
    }
    eprintln!(
        "support matching rate: {matched} of {revealed} devices whose model or OS version is visible ({:.0} %)",
        100.0 * matched as f64 / revealed.max(1) as f64
    );
    for (k, n) in unmatched.iter().take(40) {
        eprintln!("  unknown: {k} (x{n})");
    }
    assert!(revealed > 20 && matched > 0);
}
