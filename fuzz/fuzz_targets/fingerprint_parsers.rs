//! The fingerprinting parsers on arbitrary bytes: DHCPv4/v6 options, DNS
//! questions and mDNS records, SSDP headers, TLS ClientHellos (with JA3/JA4),
//! TP-Link sysinfo, SNMP system values. Run:
//! `cargo +nightly fuzz run fingerprint_parsers`.
#![no_main]
use iotwatch::proto::{Endpoint, Output, dhcp, dns, snmp, ssdp, tls, tplink};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ep = Endpoint {
        ip: std::net::Ipv4Addr::new(192, 168, 1, 2).into(),
        port: 5353,
        mac: Some([2, 0, 0, 0, 0, 1]),
    };
    let mut out = Output::default();
    dhcp::dhcpv4(data, 0, &ep, &mut out);
    dhcp::dhcpv6(data, 0, &ep, &mut out);
    let mut name = [0u8; 256];
    let _ = dns::query_name(data, &mut name);
    if let Ok(m) = hickory_proto::op::Message::from_vec(data) {
        dns::mdns_facts(&m, 0, &ep, &mut out);
    }
    ssdp::ssdp_facts(data, 0, &ep, &mut out);
    if let Some(h) = tls::parse_client_hello(data) {
        let _ = (h.ja3(), h.ja4());
    }
    tplink::sysinfo_facts(&tplink::deobfuscate(data), 0, &ep, &mut out);
    snmp::system_facts(data, 0, &ep, &mut out);
});
