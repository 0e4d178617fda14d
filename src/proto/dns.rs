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
use crate::inventory::Fact;
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
        let Ok(msg) = Message::from_vec(d) else {
            out.decode_errors += 1;
            return Progress::More;
        };
        if mdns {
            mdns_facts(&msg, ts, sender, out);
        } else if msg.metadata.message_type == MessageType::Query {
            for q in &msg.queries {
                let name = bare(q.name());
                if !name.is_empty() {
                    out.facts
                        .push(Fact::new(ts, sender, "dns", "query", name.as_bytes()));
                }
            }
        }
        Progress::More
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
    let fact = |field: &'static str, v: &[u8]| Fact::new(ts, sender, "mdns", field, v).on_link();
    let records: Vec<&Record> = msg.answers.iter().chain(&msg.additionals).collect();
    for r in records {
        match &r.data {
            RData::PTR(ptr) => {
                if let Some((service, instance)) = service_of(&ptr.0) {
                    out.facts.push(fact("service", service.as_bytes()));
                    if let Some(i) = instance {
                        out.facts.push(fact("instance", i.as_bytes()));
                    }
                }
            }
            RData::SRV(srv) => {
                if let Some((service, instance)) = service_of(&r.name) {
                    out.facts.push(fact("service", service.as_bytes()));
                    if let Some(i) = instance {
                        out.facts.push(fact("instance", i.as_bytes()));
                    }
                }
                let host = bare(&srv.target);
                if !host.is_empty() {
                    out.facts.push(fact("hostname", host.as_bytes()));
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
                        out.facts.push(fact("txt", entry));
                    }
                }
            }
            RData::A(_) | RData::AAAA(_) => {
                let host = bare(&r.name);
                // Reverse-lookup names are not a host name.
                if !host.is_empty() && !host.ends_with(".arpa") {
                    out.facts.push(fact("hostname", host.as_bytes()));
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
        assert!(out.facts.iter().all(|f| f.on_link));
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
