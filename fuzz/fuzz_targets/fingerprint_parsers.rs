//! The fingerprinting parsers on arbitrary bytes: DHCPv4/v6 options, DNS
//! questions and mDNS records, SSDP headers, TLS ClientHellos (with JA3/JA4),
//! TP-Link sysinfo, SNMP system values. Run:
//! `cargo +nightly fuzz run fingerprint_parsers`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iotwatch::proto::run_fingerprint_parsers(data);
});
