use super::*;
use crate::event::{EventKind, NewDeviceEvent, Severity};
use crate::output::report::{DeviceReporter, ReportOptions};

fn update(mac: [u8; 6], packets: u64) -> DeviceUpdate {
    let mut d = Device::default();
    d.first_seen = 1_700_000_000_000_000_000;
    d.last_seen = 1_700_000_100_000_000_000;
    d.packets = packets;
    d.bytes = packets * 100;
    d.ips.insert("192.168.1.20".parse().unwrap());
    d.evidence
        .push((("dhcp", "hostname"), "kitchen-plug".to_string()));
    let key = DeviceKey::Mac(mac);
    let (report, _) = DeviceReporter::new(ReportOptions::default()).report(key, &mut d, false);
    DeviceUpdate {
        key,
        json: serde_json::to_string(&report).unwrap(),
        report,
        evidence: vec![("dhcp", "hostname", "kitchen-plug".to_string())],
        delta: (packets, packets * 100),
        eos_reported: false,
    }
}

fn event(ts: Nanos) -> Event {
    Event {
        ts,
        severity: Severity::Info,
        kind: EventKind::NewDevice(NewDeviceEvent {
            mac: Some("50:c7:bf:00:00:01".into()),
            ips: vec![],
            vendor: None,
            hostname: None,
            kind: None,
            model: None,
        }),
    }
}

#[test]
fn devices_and_events_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/iotwatch.db");
    let mac = [0x50, 0xc7, 0xbf, 0, 0, 1];
    {
        let mut s = Store::open(&path, &mut |w| panic!("{w}")).unwrap();
        s.write(
            &[update(mac, 10)],
            &[(event(5), serde_json::to_string(&event(5)).unwrap())],
            1_700_000_000_000_000_000,
        )
        .unwrap();
        s.write(&[update(mac, 30)], &[], 1_700_000_000_000_000_000)
            .unwrap();
    }
    let s = Store::open(&path, &mut |w| panic!("{w}")).unwrap();
    let known = s.known_devices().unwrap();
    assert_eq!(known.len(), 1);
    assert_eq!(known[0].key, DeviceKey::Mac(mac));
    assert_eq!(known[0].device.packets, 30);
    assert_eq!(
        known[0].device.evidence,
        vec![(("dhcp", "hostname"), "kitchen-plug".to_string())]
    );
    let r = Reader::open(&path).unwrap();
    let devices = r.devices().unwrap();
    assert_eq!(devices[0]["mac"], "50:c7:bf:00:00:01");
    assert_eq!(devices[0]["hostname"], "kitchen-plug");
    assert_eq!(r.events(None, None).unwrap().len(), 1);
    assert_eq!(r.events(Some(6), None).unwrap().len(), 0);
    assert_eq!(r.events(None, Some("login")).unwrap().len(), 0);
    // Daily traffic adds the deltas.
    assert_eq!(
        r.traffic().unwrap(),
        vec![(
            "50:c7:bf:00:00:01".to_string(),
            "2023-11-14".to_string(),
            40,
            4000
        )]
    );
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iotwatch.db");
    let _first = Store::open(&path, &mut |_| {}).unwrap();
    let err = Store::open(&path, &mut |_| {}).err().unwrap();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert!(err.to_string().contains("another iotwatch monitor"));
    // Readers are welcome meanwhile.
    Reader::open(&path).unwrap();
}

#[test]
fn a_damaged_file_is_moved_aside_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iotwatch.db");
    std::fs::write(
        &path,
        b"this is not a database, just some text\n".repeat(200),
    )
    .unwrap();
    let mut warnings = Vec::new();
    let s = Store::open(&path, &mut |w| warnings.push(w)).unwrap();
    assert_eq!(s.known_devices().unwrap().len(), 0);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("moved it to"), "{}", warnings[0]);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(
        std::fs::read(aside[0].path())
            .unwrap()
            .starts_with(b"this is not")
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iotwatch.db");
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path, &mut |_| {}).err().unwrap();
    assert!(matches!(err, StoreError::TooNew(_, 99)), "{err}");
}

#[test]
fn keys_round_trip() {
    for k in [
        DeviceKey::Mac([0xde, 0xad, 0xbe, 0xef, 0, 1]),
        DeviceKey::Ip("10.0.0.7".parse().unwrap()),
        DeviceKey::Ip("fe80::1".parse().unwrap()),
    ] {
        assert_eq!(parse_key(&key_string(&k)), Some(k));
    }
    assert_eq!(parse_key("zz:00"), None);
}
