//! Drawing the TUI on ratatui's TestBackend with 5,000 devices and 100,000
//! events (issue 9: under 10 ms a frame). "after an event" and "after a
//! device update" apply one message first, so the event lists, and for a
//! device the sorted device order, are rebuilt as when a capture is busy.

use criterion::{Criterion, criterion_group, criterion_main};
use iotwatch::tui::model::Model;
use iotwatch::tui::view::{Screen, Ui, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

fn model() -> Model {
    let mut m = Model::default();
    m.apply(r#"{"type":"snapshot","stats":{"source":"live br-lan","packets_per_second":5000},"devices":[],"events":[]}"#);
    for i in 0..5000u32 {
        let vendor = ["TP-Link", "Hikvision", "Google"][i as usize % 3];
        let mac = format!(
            "00:1b:44:{:02x}:{:02x}:{:02x}",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        );
        let d = json!({"type": "device", "device": {
            "mac": mac, "ips": [format!("10.0.{}.{}", i >> 8, i & 255)], "vendor": vendor,
            "hostname": format!("device-{i}"), "type": "camera", "model": null, "os": "Linux",
            "last_seen": "2026-11-26T10:00:00.000000Z", "packets": i * 10, "bytes": i * 1000,
            "support": {"status": if i % 7 == 0 { "ended" } else { "unknown" }},
            "code_of_practice": {"default_credentials_seen": i % 11 == 0},
            "evidence": []}});
        m.apply(&d.to_string());
    }
    for i in 0..100_000u32 {
        let severity = ["info", "low", "medium", "high", "critical"][i as usize % 5];
        let e = json!({"type": "event", "event": {
            "ts": "2026-11-26T10:00:00.000000Z", "severity": severity,
            "kind": "login", "protocol": "telnet", "client": {"ip": "203.0.113.9", "port": 4000, "mac": null},
            "server": {"ip": format!("10.0.{}.{}", (i % 5000) >> 8, i % 256), "port": 23, "mac": null},
            "username": "root", "password": null, "password_masked": "x*****", "default_credential": false, "outcome": "failure"}});
        m.apply(&e.to_string());
    }
    m
}

fn bench(c: &mut Criterion) {
    let mut m = model();
    let one_more = json!({"type": "event", "event": {"ts": "2026-11-26T10:00:01.000000Z", "severity": "info", "kind": "new_device", "mac": "00:1b:44:ff:ff:ff", "ips": []}}).to_string();
    let a_device = json!({"type": "device", "device": {"mac": "00:1b:44:00:00:07", "ips": ["10.0.0.7"], "vendor": "TP-Link",
        "hostname": "device-7", "type": "camera", "packets": 1, "bytes": 1, "support": {"status": "ended"}, "evidence": []}}).to_string();
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        for screen in [Screen::Devices, Screen::Events] {
            let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
            let mut ui = Ui::new(true);
            ui.screen = screen;
            c.bench_function(&format!("draw/{screen:?}/{w}x{h}"), |b| {
                b.iter(|| {
                    t.draw(|f| draw(f, &m, &mut ui)).unwrap();
                });
            });
            c.bench_function(
                &format!("draw_after_a_device_update/{screen:?}/{w}x{h}"),
                |b| {
                    b.iter(|| {
                        m.apply(&a_device);
                        t.draw(|f| draw(f, &m, &mut ui)).unwrap();
                    });
                },
            );
            c.bench_function(&format!("draw_after_an_event/{screen:?}/{w}x{h}"), |b| {
                b.iter(|| {
                    m.apply(&one_more);
                    t.draw(|f| draw(f, &m, &mut ui)).unwrap();
                });
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
