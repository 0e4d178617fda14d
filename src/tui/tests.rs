//! Every screen drawn on ratatui's TestBackend from a fixed set of devices
//! and events, at 80x24 and 200x50, compared with the snapshots in
//! `src/tui/snapshots/` (insta: `cargo insta review` after a deliberate change).

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::model::Model;
use super::view::{self, Detail, Screen, Ui};

#[allow(clippy::too_many_arguments)]
fn device(
    mac: &str,
    ip: &str,
    vendor: &str,
    kind: &str,
    model: &str,
    host: &str,
    support: &str,
    cred: bool,
) -> String {
    json!({"type": "device", "device": {
        "mac": mac, "ips": [ip], "vendor": vendor, "hostname": if host.is_empty() { None } else { Some(host) },
        "type": kind, "model": if model.is_empty() { None } else { Some(model) }, "firmware": null, "os": "Linux",
        "confidence": {"vendor": 0.9, "type": 0.6},
        "services": ["tcp/23", "tcp/80"], "first_seen": "2026-11-20T08:00:00.000000Z",
        "last_seen": "2026-11-26T10:15:30.000000Z", "packets": 1200, "bytes": 345_678,
        "support": {"status": support, "end": if support == "ended" { Some("2022-05-05") } else { None },
                    "source": if support == "ended" { Some("https://example.com/eol") } else { None }},
        "code_of_practice": {"default_credentials_seen": cred, "disclosure": {"policy_url": "https://example.com/security", "contact": null, "source": "diodb"}, "support_status": support},
        "evidence": [{"signal": "oui", "field": "organization", "value": vendor, "claims": {"vendor": vendor}},
                     {"signal": "dhcp", "field": "hostname", "value": host, "claims": {}}]
    }}).to_string()
}

fn fixture() -> Model {
    let mut m = Model::default();
    let mut lines = vec![
        r#"{"type":"hello","version":1,"iotwatch":"0.1.0"}"#.to_string(),
        json!({"type": "snapshot", "stats": {"source": "live br-lan", "packets": 123456, "packets_per_second": 420,
               "kernel_dropped": 0, "interface_dropped": 0, "queue_dropped": 0, "flows": 37, "devices": 5, "uptime_seconds": 3725},
               "devices": [], "events": []}).to_string(),
        device("28:57:be:4a:17:23", "192.168.1.23", "Hikvision", "camera", "DS-2CD2042WD", "garage-cam", "ended", true),
        device("50:c7:bf:3a:61:0e", "192.168.1.10", "TP-Link", "smart-plug", "HS110(US)", "kitchen-plug", "unknown", false),
        device("b8:27:eb:12:34:56", "192.168.1.5", "Raspberry Pi", "computer", "", "pi", "supported", false),
        device("3c:28:6d:aa:bb:cc", "192.168.1.44", "Google", "phone", "Pixel 3a", "", "ended", false),
        device("14:a7:8b:0c:52:37", "192.168.1.37", "Dahua", "dvr", "", "", "unknown", false),
    ];
    let events = [
        json!({"ts": "2026-11-26T10:00:01.000000Z", "severity": "info", "kind": "new_device", "mac": "14:a7:8b:0c:52:37", "ips": ["192.168.1.37"], "vendor": "Dahua", "hostname": null, "type": "dvr", "model": null}),
        json!({"ts": "2026-11-26T10:01:00.000000Z", "severity": "high", "kind": "login", "protocol": "telnet",
               "client": {"ip": "203.0.113.9", "port": 40000, "mac": null}, "server": {"ip": "192.168.1.23", "port": 23, "mac": "28:57:be:4a:17:23"},
               "username": "root", "password": "xc3511", "password_masked": "x*****", "default_credential": true, "credential_source": "mirai", "outcome": "success"}),
        json!({"ts": "2026-11-26T10:01:05.000000Z", "severity": "info", "kind": "login", "protocol": "ftp",
               "client": {"ip": "192.168.1.5", "port": 50000, "mac": "b8:27:eb:12:34:56"}, "server": {"ip": "192.168.1.37", "port": 21, "mac": null},
               "username": "admin", "password": null, "password_masked": "s*******", "default_credential": false, "credential_source": null, "outcome": "failure"}),
        json!({"ts": "2026-11-26T10:02:00.000000Z", "severity": "critical", "kind": "scan", "source": {"ip": "192.168.1.37", "mac": "14:a7:8b:0c:52:37"},
               "ports": [23, 2323], "distinct_targets": 8250, "distinct_ports": 2, "syns": 9000, "mirai_fingerprint": true, "mirai_matches": 9000,
               "first_ts": "2026-11-26T10:02:00.000000Z", "last_ts": "2026-11-26T10:05:00.000000Z", "verdict": "mirai-like", "direction": "outbound"}),
        json!({"ts": "2026-11-26T10:03:00.000000Z", "severity": "high", "kind": "end_of_support", "mac": "28:57:be:4a:17:23", "vendor": "Hikvision",
               "model": "DS-2CD2042WD", "os": null, "end": "2022-05-05", "status": "ended", "source": "https://example.com/eol", "matched": "model DS-2CD2042WD"}),
        json!({"ts": "2026-11-26T10:04:00.000000Z", "severity": "medium", "kind": "bruteforce", "source": {"ip": "203.0.113.50", "port": 0, "mac": null},
               "protocol": "telnet", "targets": 1, "attempts": 12, "failures": 12, "successes": 0, "default_credentials_tried": 12, "usernames": ["root"], "scan_verdict": null}),
    ];
    for e in events {
        lines.push(json!({"type": "event", "event": e}).to_string());
    }
    for l in &lines {
        m.apply(l);
    }
    m
}

fn render(m: &Model, ui: &mut Ui, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, m, ui)).unwrap();
    t.backend().to_string()
}

fn screens() -> Vec<(&'static str, Ui)> {
    let m = fixture();
    let mut out = Vec::new();
    for (name, screen) in [
        ("devices", Screen::Devices),
        ("events", Screen::Events),
        ("scans", Screen::Scans),
        ("logins", Screen::Logins),
    ] {
        let mut ui = Ui::new(true);
        ui.screen = screen;
        out.push((name, ui));
    }
    let mut ui = Ui::new(true);
    ui.detail = Some(Detail::Device("28:57:be:4a:17:23".into()));
    out.push(("device_detail", ui));
    let mut ui = Ui::new(true);
    ui.screen = Screen::Events;
    ui.move_by(&m, 1);
    ui.open(&m);
    out.push(("event_detail", ui));
    let mut ui = Ui::new(true);
    ui.help = true;
    out.push(("help", ui));
    let mut ui = Ui::new(false);
    ui.filter = "192.168.1.2".into();
    out.push(("devices_filtered_monochrome", ui));
    out
}

#[test]
fn every_screen_at_80x24_and_200x50() {
    let m = fixture();
    for (w, h) in [(80, 24), (200, 50)] {
        for (name, mut ui) in screens() {
            let text = render(&m, &mut ui, w, h);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
        }
    }
}

#[test]
fn problems_come_first_and_badges_are_earned() {
    let m = fixture();
    let mut ui = Ui::new(true);
    let text = render(&m, &mut ui, 200, 50);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("192.168.1.")).collect();
    // The DVR scans like Mirai (and is new): the most urgent.
    assert!(
        rows[0].contains("192.168.1.37") && rows[0].contains("SCAN") && rows[0].contains("NEW"),
        "{rows:#?}"
    );
    // Then the camera: default credentials accepted and out of support.
    assert!(
        rows[1].contains("garage-cam") && rows[1].contains("CRED") && rows[1].contains("EOS"),
        "{rows:#?}"
    );
    // Nothing wrong with the Pi: last.
    assert!(rows.last().unwrap().contains("192.168.1.5 "), "{rows:#?}");
}

#[test]
fn passwords_that_are_not_defaults_stay_masked() {
    let m = fixture();
    let mut ui = Ui::new(true);
    ui.screen = Screen::Logins;
    let text = render(&m, &mut ui, 200, 50);
    assert!(text.contains("xc3511"), "a known default is shown");
    assert!(text.contains("s*******"), "{text}");
}
