//! TP-Link Smart Home protocol (Kasa plugs and bulbs, port 9999): JSON
//! obfuscated with an autokey XOR (key 171), over UDP as is and over TCP
//! behind a 4-byte length. A device's `get_sysinfo` answer names its model,
//! hardware and software versions in clear once de-obfuscated.

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, L4, Output, Progress};
use crate::capture::Nanos;
use crate::flow::Chunk;
use crate::proto::Endpoint;

/// Bytes of an answer de-obfuscated: `get_sysinfo` fits.
const MAX_JSON: usize = 4096;

pub struct TpLink;

impl Analyzer for TpLink {
    fn name(&self) -> &'static str {
        "tplink"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[9999]
    }
    fn udp_ports(&self) -> &[u16] {
        &[9999]
    }
    fn start(&self, flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::new(TpLinkFlow {
            tcp: flow.l4 == L4::Tcp,
            buf: Vec::new(),
            found: false,
        })
    }
}

struct TpLinkFlow {
    tcp: bool,
    /// TCP answer bytes so far.
    buf: Vec<u8>,
    found: bool,
}

/// Reverses the autokey XOR: each byte is XORed with the previous
/// cipher byte, the first with 171.
pub fn deobfuscate(d: &[u8]) -> Vec<u8> {
    let mut key = 171u8;
    d.iter()
        .take(MAX_JSON)
        .map(|&c| {
            let p = c ^ key;
            key = c;
            p
        })
        .collect()
}

impl FlowAnalyzer for TpLinkFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        let Chunk::Data(d) = chunk else {
            return Progress::Done;
        };
        // The device is the side on port 9999.
        let sender = flow.sender(dir);
        if sender.port != 9999 {
            return Progress::More;
        }
        let json = if self.tcp {
            if self.buf.len() < MAX_JSON + 4 {
                self.buf
                    .extend_from_slice(&d[..d.len().min(MAX_JSON + 4 - self.buf.len())]);
            }
            let Some(len) = self.buf.get(..4) else {
                return Progress::More;
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if self.buf.len() < 4 + len.min(MAX_JSON) {
                return Progress::More;
            }
            let j = deobfuscate(&self.buf[4..]);
            self.buf.clear();
            j
        } else {
            deobfuscate(d)
        };
        if sysinfo_facts(&json, ts, sender, out) {
            self.found = true;
        }
        if self.found && self.tcp {
            Progress::Done
        } else {
            Progress::More
        }
    }
}

/// Reads the string fields of a `get_sysinfo` answer; true when it was one.
pub fn sysinfo_facts(json: &[u8], ts: Nanos, sender: &Endpoint, out: &mut Output) -> bool {
    if !json.starts_with(b"{") {
        out.decode_errors += 1;
        return false;
    }
    let mut any = false;
    // JSON keys as they appear, opening quote of the value included.
    for (key, field) in [
        ("\"model\":\"", "model"),
        ("\"sw_ver\":\"", "sw_ver"),
        ("\"hw_ver\":\"", "hw_ver"),
        ("\"dev_name\":\"", "dev_name"),
        ("\"type\":\"", "type"),
        ("\"mic_type\":\"", "type"),
    ] {
        if let Some(v) = json_string(json, key) {
            out.facts.add(ts, sender, "tplink", field, v, false);
            any = true;
        }
    }
    any
}

/// The string value after `key` (`"model":"`; no escapes: the protocol
/// sends none in these fields).
fn json_string<'a>(json: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(json, key.as_bytes())? + key.len();
    let rest = &json[at..];
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obfuscate(p: &[u8]) -> Vec<u8> {
        let mut key = 171u8;
        p.iter()
            .map(|&b| {
                key ^= b;
                key
            })
            .collect()
    }

    #[test]
    fn sysinfo_round_trip() {
        let json = br#"{"system":{"get_sysinfo":{"sw_ver":"1.2.5 Build 171206 Rel.085954","hw_ver":"1.0","type":"IOT.SMARTPLUGSWITCH","model":"HS110(US)","dev_name":"Wi-Fi Smart Plug With Energy Monitoring"}}}"#;
        let plain = deobfuscate(&obfuscate(json));
        assert_eq!(plain, json);
        let sender = Endpoint {
            ip: "192.168.1.159".parse().unwrap(),
            port: 9999,
            mac: None,
        };
        let mut out = Output::default();
        assert!(sysinfo_facts(&plain, 0, &sender, &mut out));
        let f: Vec<_> = out
            .facts
            .list
            .iter()
            .map(|f| (f.field, f.value.as_str()))
            .collect();
        assert!(f.contains(&("model", "HS110(US)")));
        assert!(f.contains(&("sw_ver", "1.2.5 Build 171206 Rel.085954")));
    }
}
