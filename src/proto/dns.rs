//! DNS and mDNS (decoded with `hickory-proto`). A client's DNS queries name
//! the clouds it talks to (`*.tplinkcloud.com`, AWS IoT endpoints). A device's
//! mDNS answers name the services it offers (`_googlecast._tcp`), its
//! instance and host names, and TXT entries that often carry the model and
//! firmware (`md=`, `ty=`, `model=`, `fv=` …).

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{Name, RData, Record};

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Progress};
use crate::capture::Nanos;
use crate::flow::Chunk;
use crate::proto::Endpoint;

/// TXT keys that name a maker, model, firmware or OS in the DNS-SD records
/// of home devices (Google Cast, HomeKit, AirPlay, IPP/Bonjour printing,
/// Spotify Connect, Sonos, ESPHome …). Others (ids, keys, flags) say nothing
/// about what the device is and are not kept.
pub const TXT_KEYS: &[&str] = &[
    "md",
    "fn",
    "ty",
    "model",
    "am",
    "rpmd",
    "fv",
    "mdl",
    "manufacturer",
    "usb_mfg",
    "usb_mdl",
    "product",
    "srcvers",
    "osxvers",
    "vendor",
    "vn",
    "mn",
    "ve",
    "ci",
    "sf",
    "integrator",
    "firmware",
    "fw",
    "fwversion",
    "version",
    "device",
    "deviceid_name",
    "mfg",
    "cpu",
    "os",
    "modelname",
    "systype",
    "hw",
    "hwv",
    "sw",
    "swv",
    "platform",
    "project_name",
    "project_version",
    "board",
    "note",
    "name",
    "n",
];

pub struct Dns;

impl Analyzer for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }
    fn udp_ports(&self) -> &[u16] {
        &[53, 5353]
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::new(DnsFlow)
    }
}

struct DnsFlow;

impl FlowAnalyzer for DnsFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        let Chunk::Data(d) = chunk else {
            return Progress::More;
        };
        let mdns = flow.client.port == 5353 || flow.server.port == 5353;
        let sender = flow.sender(dir);
        if !mdns {
            // A unicast query says what the client looks up: its first
            // question is all that is read (answers come from the resolver).
            if dir == Dir::ToServer {
                let mut name = [0u8; 256];
                match query_name(d, &mut name) {
                    Some(0) => {}
                    Some(n) => out.facts.add(ts, sender, "dns", "query", &name[..n], false),
                    None => out.decode_errors += 1,
                }
            }
            // One query per flow, usually: the answer adds nothing.
            return Progress::Done;
        }
        match Message::from_vec(d) {
            Ok(msg) => mdns_facts(&msg, ts, sender, out),
            Err(_) => out.decode_errors += 1,
        }
        Progress::More
    }
}

/// Writes the first question's name of a query into `out` as dotted text
/// and returns its length (0: not a query, or no question; `None`:
/// malformed). Read by hand, not with `hickory-proto`: a question's name is
/// all a unicast query is read for, it holds no compression pointers worth
/// following, and this runs for every DNS query a network makes.
pub fn query_name(d: &[u8], out: &mut [u8; 256]) -> Option<usize> {
    let header = d.get(..12)?;
    let is_query = header[2] & 0x80 == 0;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    if !is_query || questions == 0 {
        return Some(0);
    }
    wire_name(&d[12..], out)
}

/// Writes an uncompressed wire-format name (length-prefixed labels, ending
/// with a zero length or the data) into `out` as dotted text; its length,
/// or `None` when a label is a pointer, over 63 bytes, cut short, or the
/// name is over 255 bytes. Shared with DHCP's FQDN options.
pub fn wire_name(d: &[u8], out: &mut [u8; 256]) -> Option<usize> {
    let (mut at, mut n) = (0, 0);
    loop {
        let Some(&len) = d.get(at) else {
            return Some(n);
        };
        let len = usize::from(len);
        if len == 0 {
            return Some(n);
        }
        // A pointer or reserved label type in a question, or a label over 63
        // bytes, or a name over 255: malformed.
        if len > 63 || n + len + 1 > out.len() {
            return None;
        }
        let label = d.get(at + 1..at + 1 + len)?;
        if n > 0 {
            out[n] = b'.';
            n += 1;
        }
        out[n..n + len].copy_from_slice(label);
        n += len;
        at += 1 + len;
    }
}

/// A name without its root dot (and, for mDNS, without `.local`).
fn bare(n: &Name) -> String {
    let s = n.to_utf8();
    let s = s.trim_end_matches('.');
    s.strip_suffix(".local").unwrap_or(s).to_string()
}

/// The service type in an mDNS name: `_googlecast._tcp` from
/// `Kitchen._googlecast._tcp.local.`, with the instance label before it.
fn service_of(n: &Name) -> Option<(String, Option<String>)> {
    let labels: Vec<&[u8]> = n.iter().collect();
    let proto = labels
        .iter()
        .rposition(|l| l.eq_ignore_ascii_case(b"_tcp") || l.eq_ignore_ascii_case(b"_udp"))?;
    if proto == 0 {
        return None;
    }
    let service = format!(
        "{}.{}",
        String::from_utf8_lossy(labels[proto - 1]),
        String::from_utf8_lossy(labels[proto])
    );
    // `_sub` selectors sit between instance and type: skip them.
    let instance = labels[..proto - 1]
        .iter()
        .rev()
        .find(|l| !l.starts_with(b"_"))
        .map(|l| String::from_utf8_lossy(l).into_owned());
    Some((service, instance))
}

/// What a device announces about itself in mDNS answers. Queries carry
/// other devices' records as known answers, so only responses count.
pub fn mdns_facts(msg: &Message, ts: Nanos, sender: &Endpoint, out: &mut Output) {
    if msg.metadata.message_type != MessageType::Response {
        return;
    }
    let mut fact =
        |field: &'static str, v: &[u8]| out.facts.add(ts, sender, "mdns", field, v, true);
    let records: Vec<&Record> = msg.answers.iter().chain(&msg.additionals).collect();
    for r in records {
        match &r.data {
            RData::PTR(ptr) => {
                if let Some((service, instance)) = service_of(&ptr.0) {
                    fact("service", service.as_bytes());
                    if let Some(i) = instance {
                        fact("instance", i.as_bytes());
                    }
                }
            }
            RData::SRV(srv) => {
                if let Some((service, instance)) = service_of(&r.name) {
                    fact("service", service.as_bytes());
                    if let Some(i) = instance {
                        fact("instance", i.as_bytes());
                    }
                }
                let host = bare(&srv.target);
                if !host.is_empty() {
                    fact("hostname", host.as_bytes());
                }
            }
            RData::TXT(txt) => {
                for entry in txt.txt_data.iter() {
                    let key = entry.split(|&b| b == b'=').next().unwrap_or_default();
                    if entry.len() > key.len() + 1
                        && TXT_KEYS
                            .iter()
                            .any(|k| k.as_bytes().eq_ignore_ascii_case(key))
                    {
                        fact("txt", entry);
                    }
                }
            }
            RData::A(_) | RData::AAAA(_) => {
                let host = bare(&r.name);
                // Reverse-lookup names are not a host name.
                if !host.is_empty() && !host.ends_with(".arpa") {
                    fact("hostname", host.as_bytes());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, PTR, TXT};
    use std::net::Ipv4Addr;

    fn sender() -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(192, 168, 1, 30).into(),
            port: 5353,
            mac: Some([0x54, 0x60, 0x09, 1, 2, 3]),
        }
    }

    #[test]
    fn cast_announcement() {
        let mut m = Message::response(0, hickory_proto::op::OpCode::Query);
        let svc = Name::from_ascii("_googlecast._tcp.local.").unwrap();
        // from_ascii keeps case, as names on the wire do.
        let inst = Name::from_ascii("Chromecast-abc._googlecast._tcp.local.").unwrap();
        m.add_answer(Record::from_rdata(svc, 120, RData::PTR(PTR(inst.clone()))));
        m.add_additional(Record::from_rdata(
            inst,
            120,
            RData::TXT(TXT::new(vec![
                "id=0123".into(),
                "md=Chromecast Ultra".into(),
                "fn=Living Room".into(),
            ])),
        ));
        m.add_additional(Record::from_rdata(
            "abc.local.".parse().unwrap(),
            120,
            RData::A(A(Ipv4Addr::new(192, 168, 1, 30))),
        ));
        let bytes = m.to_vec().unwrap();
        let msg = Message::from_vec(&bytes).unwrap();
        let mut out = Output::default();
        mdns_facts(&msg, 0, &sender(), &mut out);
        let f: Vec<_> = out
            .facts
            .list
            .iter()
            .map(|f| (f.field, f.value.as_str()))
            .collect();
        assert_eq!(
            f,
            [
                ("service", "_googlecast._tcp"),
                ("instance", "Chromecast-abc"),
                ("txt", "md=Chromecast Ultra"),
                ("txt", "fn=Living Room"),
                ("hostname", "abc"),
            ]
        );
        assert!(out.facts.list.iter().all(|f| f.on_link));
    }

    #[test]
    fn unicast_query_names() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(b"\x04devs\x0btplinkcloud\x03com\x00\x00\x01\x00\x01");
        let mut name = [0u8; 256];
        let n = query_name(&q, &mut name).unwrap();
        assert_eq!(&name[..n], b"devs.tplinkcloud.com");
        // A pointer, a 64-byte label, a cut name.
        for bad in [&b"\xc0\x0c"[..], &[64u8; 70][..], &b"\x05ab"[..]] {
            let mut m = q[..12].to_vec();
            m.extend_from_slice(bad);
            assert_eq!(query_name(&m, &mut name), None);
        }
        let mut response = q.clone();
        response[2] |= 0x80;
        assert_eq!(query_name(&response, &mut name), Some(0));
    }

    #[test]
    fn malformed_names_are_errors_not_panics() {
        // Header + one question whose name points at itself (a loop).
        let looped = [0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert!(Message::from_vec(&looped).is_err());
        // A label of 64 bytes.
        let mut long = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64];
        long.extend([b'a'; 64]);
        long.extend([0, 0, 1, 0, 1]);
        assert!(Message::from_vec(&long).is_err());
    }
}
