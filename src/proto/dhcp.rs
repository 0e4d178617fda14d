//! DHCPv4 and DHCPv6: what a client says about itself when it asks for an
//! address (hostname, vendor class, the ordered parameter request list, client
//! id, FQDN, user class), and what a server's reply shows (the server is the
//! router, and the hostname it hands out is the client's).

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Progress, hex_into};
use crate::capture::Nanos;
use crate::decode::Mac;
use crate::flow::Chunk;
use crate::proto::Endpoint;

pub struct Dhcp;

impl Analyzer for Dhcp {
    fn name(&self) -> &'static str {
        "dhcp"
    }
    fn udp_ports(&self) -> &[u16] {
        &[67, 68, 546, 547]
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::new(DhcpFlow)
    }
}

struct DhcpFlow;

impl FlowAnalyzer for DhcpFlow {
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
        let sender = *flow.sender(dir);
        let v6 = [flow.client.port, flow.server.port]
            .iter()
            .any(|p| *p == 546 || *p == 547);
        let ok = if v6 {
            dhcpv6(d, ts, &sender, out)
        } else {
            dhcpv4(d, ts, &sender, out)
        };
        if !ok {
            out.decode_errors += 1;
        }
        Progress::More
    }
}

const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Walks DHCPv4 options; returns false when the message is malformed (the
/// facts of the options before the damage are still kept).
pub fn dhcpv4(d: &[u8], ts: Nanos, sender: &Endpoint, out: &mut Output) -> bool {
    if d.len() < 240 || d[236..240] != MAGIC {
        return false;
    }
    let op = d[0];
    let mut chaddr: Mac = [0; 6];
    chaddr.copy_from_slice(&d[28..34]);
    // The client: by its hardware address, which survives relays and a
    // source of 0.0.0.0.
    let client = Endpoint {
        ip: std::net::Ipv4Addr::new(d[12], d[13], d[14], d[15]).into(),
        port: 68,
        mac: Some(chaddr),
    };
    // Some clients NUL-terminate their strings; the NULs are not the name.
    let mut fact = |who: &Endpoint, field: &'static str, v: &[u8]| {
        let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        out.facts.add(ts, who, "dhcp", field, &v[..end], true);
    };
    let mut i = 240;
    let mut msg_type = 0u8;
    while i < d.len() {
        let code = d[i];
        if code == 0 {
            i += 1;
            continue;
        }
        if code == 255 {
            break;
        }
        let Some(&len) = d.get(i + 1) else {
            return false;
        };
        let Some(v) = d.get(i + 2..i + 2 + usize::from(len)) else {
            return false;
        };
        i += 2 + usize::from(len);
        match (op, code) {
            (_, 53) => msg_type = v.first().copied().unwrap_or(0),
            (1, 12) => fact(&client, "hostname", v),
            (1, 60) => fact(&client, "vendor_class", v),
            (1, 55) => fact(&client, "prl", decimal_list(v, &mut [0; 4 * 255])),
            (1, 61) => fact(&client, "client_id", hex_into(v, &mut [0; 2 * 255])),
            (1, 77) => fact(&client, "user_class", v),
            // FQDN: flags, two obsolete rcode bytes, then the name (usually
            // ASCII; the wire form's length bytes are made printable).
            (1, 81) if v.len() > 3 => fqdn_text(&v[3..], |t| fact(&client, "fqdn", t)),
            // The hostname the server hands out is the client's name.
            (2, 12) => fact(&client, "hostname", v),
            (2, 15) => fact(sender, "domain", v),
            // A server's vendor class names the server (a PXE or AP controller).
            (2, 60) => fact(sender, "vendor_class", v),
            _ => {}
        }
    }
    // An offer or an ack: the sender hands out addresses (a router).
    if op == 2 && matches!(msg_type, 2 | 5) {
        fact(sender, "server", sender.ip.to_string().as_bytes());
    }
    true
}

/// The bytes as decimal numbers joined by commas (a parameter request
/// list, as fingerbank writes it), written into `buf`: made for every
/// DHCP request, so not on the heap.
fn decimal_list<'b>(v: &[u8], buf: &'b mut [u8; 4 * 255]) -> &'b [u8] {
    use std::io::Write;
    let mut w = &mut buf[..];
    for (i, b) in v.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        // Room for 255 of the longest, "255,".
        let _ = write!(w, "{comma}{b}");
    }
    let len = 4 * 255 - w.len();
    &buf[..len]
}

/// An FQDN option's name as dotted text: DNS wire format (RFC 4702 and 4704
/// ask for it) read by the DNS decoder, or the bytes as they are when a
/// client sent plain text.
fn fqdn_text(v: &[u8], f: impl FnOnce(&[u8])) {
    let mut name = [0u8; 256];
    let wire = v
        .first()
        .is_some_and(|&b| b > 0 && b < 64 && !b.is_ascii_graphic());
    match wire.then(|| super::dns::wire_name(v, &mut name)).flatten() {
        Some(n) => f(&name[..n]),
        None => f(v),
    }
}

/// DHCPv6 client messages: vendor class (16), user class (15), FQDN (39).
pub fn dhcpv6(d: &[u8], ts: Nanos, sender: &Endpoint, out: &mut Output) -> bool {
    // Solicit, Request, Confirm, Renew, Rebind, Release, Decline, Inform.
    if d.len() < 4 || !matches!(d[0], 1 | 3 | 4 | 5 | 6 | 8 | 9 | 11) {
        return d.len() >= 4;
    }
    let mut fact =
        |field: &'static str, v: &[u8]| out.facts.add(ts, sender, "dhcpv6", field, v, true);
    let mut i = 4;
    while i + 4 <= d.len() {
        let code = u16::from_be_bytes([d[i], d[i + 1]]);
        let len = usize::from(u16::from_be_bytes([d[i + 2], d[i + 3]]));
        let Some(v) = d.get(i + 4..i + 4 + len) else {
            return false;
        };
        i += 4 + len;
        match code {
            16 if v.len() >= 4 => {
                let enterprise = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                let data: Vec<u8> = opaque_list(&v[4..]);
                let text = format!("{enterprise}:{}", String::from_utf8_lossy(&data));
                fact("vendor_class", text.as_bytes());
            }
            15 => fact("user_class", &opaque_list(v)),
            39 if !v.is_empty() => fqdn_text(&v[1..], |t| fact("fqdn", t)),
            _ => {}
        }
    }
    i == d.len()
}

/// A list of 16-bit-length-prefixed strings, joined by spaces.
fn opaque_list(mut v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while v.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([v[0], v[1]]));
        let Some(s) = v.get(2..2 + len) else { break };
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(s);
        v = &v[2 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    #[test]
    fn option_lists_are_written_as_before() {
        let all: Vec<u8> = (0..=255).collect();
        for v in [&all[..255], &all[250..], &[][..], &[1, 10, 100][..]] {
            let list: Vec<String> = v.iter().map(u8::to_string).collect();
            assert_eq!(
                decimal_list(v, &mut [0; 4 * 255]),
                list.join(",").as_bytes()
            );
            let text: String = v.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex_into(v, &mut [0; 2 * 255]), text.as_bytes());
        }
    }

    fn request(options: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 240];
        d[0] = 1;
        d[28..34].copy_from_slice(&[0x50, 0xc7, 0xbf, 1, 2, 3]);
        d[236..240].copy_from_slice(&MAGIC);
        d.extend_from_slice(options);
        d
    }

    fn sender() -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::UNSPECIFIED.into(),
            port: 68,
            mac: Some([0x50, 0xc7, 0xbf, 1, 2, 3]),
        }
    }

    fn facts(d: &[u8]) -> (bool, Vec<(&'static str, String)>) {
        let mut out = Output::default();
        let ok = dhcpv4(d, 0, &sender(), &mut out);
        (
            ok,
            out.facts
                .list
                .into_iter()
                .map(|f| (f.field, f.value))
                .collect(),
        )
    }

    #[test]
    fn client_options() {
        let (ok, f) = facts(&request(&[
            53, 1, 3, 12, 5, b'H', b'S', b'1', b'1', b'0', 60, 14, b'a', b'n', b'd', b'r', b'o',
            b'i', b'd', b'-', b'd', b'h', b'c', b'p', b'-', b'9', 55, 4, 1, 3, 6, 15, 255,
        ]));
        assert!(ok);
        assert_eq!(
            f,
            [
                ("hostname", "HS110".into()),
                ("vendor_class", "android-dhcp-9".into()),
                ("prl", "1,3,6,15".into())
            ]
        );
    }

    #[test]
    fn option_running_past_the_end_keeps_earlier_facts() {
        let (ok, f) = facts(&request(&[12, 2, b'a', b'b', 60, 200, b'x']));
        assert!(!ok);
        assert_eq!(f, [("hostname", "ab".into())]);
        let (ok, f) = facts(&request(&[12]));
        assert!(!ok && f.is_empty());
        assert!(!facts(&[1, 2, 3]).0);
    }

    #[test]
    fn dhcpv6_vendor_class_and_fqdn() {
        let mut d = vec![1, 0, 0, 1];
        d.extend_from_slice(&[0, 16, 0, 14, 0, 0, 1, 0x37, 0, 8]);
        d.extend_from_slice(b"MSFT 5.0");
        d.extend_from_slice(&[0, 39, 0, 7, 0, 5]);
        d.extend_from_slice(b"kevin");
        let mut out = Output::default();
        assert!(dhcpv6(&d, 0, &sender(), &mut out));
        let f: Vec<_> = out
            .facts
            .list
            .iter()
            .map(|f| (f.field, f.value.as_str()))
            .collect();
        assert_eq!(f, [("vendor_class", "311:MSFT 5.0"), ("fqdn", "kevin")]);
    }
}
