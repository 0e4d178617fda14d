//! The login parsers on arbitrary bytes: MQTT CONNECT/CONNACK, SNMP BER,
//! HTTP Digest headers. Run: `cargo +nightly fuzz run login_parsers`.
#![no_main]
use iotwatch::proto::{http::DigestParams, mqtt, snmp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mqtt::parse_connect(data);
    let _ = mqtt::parse_connack(data);
    let _ = snmp::parse(data);
    let p = DigestParams::parse(data);
    let _ = p.matches(b"GET", b"admin");
});
