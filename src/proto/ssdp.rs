//! SSDP (UPnP discovery, UDP 1900): a device's NOTIFY announcements and its
//! answers to M-SEARCH carry SERVER (OS, UPnP stack, product), the device or
//! service type (NT/ST), USN and the LOCATION of its description XML; a
//! searcher's M-SEARCH may carry a USER-AGENT. Headers are read line by
//! line, CRLF or bare LF.

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Progress};
use crate::capture::Nanos;
use crate::flow::Chunk;
use crate::proto::Endpoint;

pub struct Ssdp;

impl Analyzer for Ssdp {
    fn name(&self) -> &'static str {
        "ssdp"
    }
    fn udp_ports(&self) -> &[u16] {
        &[1900]
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::new(SsdpFlow)
    }
}

struct SsdpFlow;

impl FlowAnalyzer for SsdpFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        if let Chunk::Data(d) = chunk {
            ssdp_facts(d, ts, flow.sender(dir), out);
        }
        Progress::More
    }
}

pub fn ssdp_facts(d: &[u8], ts: Nanos, sender: &Endpoint, out: &mut Output) {
    let mut lines = d
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(first) = lines.next() else { return };
    let announce = first.starts_with(b"NOTIFY ") || first.starts_with(b"HTTP/1.");
    let search = first.starts_with(b"M-SEARCH ");
    if !announce && !search {
        out.decode_errors += 1;
        return;
    }
    // A device's reply to a search is unicast; the rest is multicast on the link.
    let on_link = first.starts_with(b"NOTIFY ") || search;
    for line in lines.take(32) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if value.is_empty() {
            continue;
        }
        let name = name.trim_ascii();
        let is = |h: &[u8]| name.eq_ignore_ascii_case(h);
        let field = if is(b"user-agent") {
            "user_agent"
        } else if !announce {
            continue;
        } else if is(b"server") {
            "server"
        } else if is(b"nt") || is(b"st") {
            "type"
        } else if is(b"usn") {
            "usn"
        } else if is(b"location") {
            "location"
        } else {
            continue;
        };
        out.facts.add(ts, sender, "ssdp", field, value, on_link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn run(d: &[u8]) -> Output {
        let sender = Endpoint {
            ip: Ipv4Addr::new(192, 168, 1, 40).into(),
            port: 1900,
            mac: None,
        };
        let mut out = Output::default();
        ssdp_facts(d, 0, &sender, &mut out);
        out
    }

    #[test]
    fn notify_with_crlf_or_bare_lf() {
        for sep in ["\r\n", "\n"] {
            let msg = [
                "NOTIFY * HTTP/1.1",
                "HOST: 239.255.255.250:1900",
                "SERVER: Linux/3.14 UPnP/1.0 Roku/9.4",
                "NT: urn:dial-multiscreen-org:service:dial:1",
                "LOCATION: http://192.168.1.40:8060/",
                "",
            ]
            .join(sep);
            let out = run(msg.as_bytes());
            let f: Vec<_> = out
                .facts
                .list
                .iter()
                .map(|f| (f.field, f.value.as_str()))
                .collect();
            assert_eq!(
                f,
                [
                    ("server", "Linux/3.14 UPnP/1.0 Roku/9.4"),
                    ("type", "urn:dial-multiscreen-org:service:dial:1"),
                    ("location", "http://192.168.1.40:8060/"),
                ]
            );
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert_eq!(run(b"\x00\x01SERVER: x").decode_errors, 1);
        assert!(
            run(b"NOTIFY * HTTP/1.1 SERVER: no line breaks at all")
                .facts
                .is_empty()
        );
    }
}
