//! SNMP logins: the community of v1/v2c requests (GET, GETNEXT, GETBULK,
//! SET) and the v3 user name. An agent answers a good community and stays
//! silent on a wrong one, so a community is `success` once a response comes
//! back, `failure` on authorizationError or when nothing came back by the
//! flow's end. One login per community and flow: a walk is one login, not
//! hundreds.

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Progress};
use crate::capture::Nanos;
use crate::detect::credentials::{Attempt, Outcome, login_event};
use crate::flow::Chunk;
use crate::signatures::credentials::CredentialDb;

/// Communities (or v3 users) tracked per flow.
const MAX_COMMUNITIES: usize = 8;

pub struct Snmp;

impl Analyzer for Snmp {
    fn name(&self) -> &'static str {
        "snmp"
    }
    fn udp_ports(&self) -> &[u16] {
        &[161]
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::<SnmpFlow>::default()
    }
}

/// A BER TLV reader over borrowed bytes; every length is checked.
struct Ber<'a>(&'a [u8]);

impl<'a> Ber<'a> {
    /// The next element: (tag, contents).
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let d = self.0;
        let tag = *d.first()?;
        let first = *d.get(1)?;
        let (len, at) = if first & 0x80 == 0 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let bytes = d.get(2..2 + n)?;
            (
                bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
                2 + n,
            )
        };
        let contents = d.get(at..at.checked_add(len)?)?;
        self.0 = &d[at + len..];
        Some((tag, contents))
    }

    fn int(&mut self) -> Option<i64> {
        let (tag, c) = self.next()?;
        if tag != 0x02 || c.is_empty() || c.len() > 8 {
            return None;
        }
        Some(
            c.iter()
                .fold(if c[0] & 0x80 != 0 { -1i64 } else { 0 }, |a, &b| {
                    (a << 8) | i64::from(b)
                }),
        )
    }
}

/// What one datagram says.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub version: i64,
    /// The community (v1/v2c) or user name (v3).
    pub secret: &'a [u8],
    pub pdu: u8,
    pub error_status: i64,
}

pub fn parse(d: &[u8]) -> Option<Message<'_>> {
    let (tag, body) = Ber(d).next()?;
    if tag != 0x30 {
        return None;
    }
    let mut b = Ber(body);
    let version = b.int()?;
    if version == 3 {
        let _global = b.next()?;
        let (tag, sec) = b.next()?;
        if tag != 0x04 {
            return None;
        }
        // USM security parameters: engine id, boots, time, user name, …
        let (_, usm) = Ber(sec).next()?;
        let mut u = Ber(usm);
        u.next()?;
        u.next()?;
        u.next()?;
        let (_, user) = u.next()?;
        // The scoped PDU is usually encrypted: its type is not needed here.
        return Some(Message {
            version,
            secret: user,
            pdu: 0,
            error_status: 0,
        });
    }
    let (tag, community) = b.next()?;
    if tag != 0x04 {
        return None;
    }
    let (pdu, contents) = b.next()?;
    let mut p = Ber(contents);
    let error_status = if pdu == 0xA4 {
        0 // v1 trap: different layout, no error status
    } else {
        p.int()?;
        p.int()?
    };
    Some(Message {
        version,
        secret: community,
        pdu,
        error_status,
    })
}

/// sysDescr.0, sysObjectID.0 and sysName.0 (RFC 3418) as BER OID contents.
const SYSTEM: &[(&[u8], &str)] = &[
    (&[0x2b, 6, 1, 2, 1, 1, 1, 0], "sys_descr"),
    (&[0x2b, 6, 1, 2, 1, 1, 2, 0], "sys_object_id"),
    (&[0x2b, 6, 1, 2, 1, 1, 5, 0], "sys_name"),
];

/// The dotted form of BER OID contents.
fn oid_text(c: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut v: u64 = 0;
    for (i, &b) in c.iter().enumerate() {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
        if i > 64 {
            break;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The agent's own description in a v1/v2c response: sysDescr, sysObjectID
/// and sysName often name the maker, model and firmware.
pub fn system_facts(d: &[u8], ts: Nanos, agent: &super::Endpoint, out: &mut Output) {
    let walk = || -> Option<Vec<(&'static str, Vec<u8>)>> {
        let (_, body) = Ber(d).next()?;
        let mut b = Ber(body);
        b.int()?;
        b.next()?; // community
        let (pdu, contents) = b.next()?;
        if pdu != 0xA2 {
            return None;
        }
        let mut p = Ber(contents);
        p.int()?;
        p.int()?;
        p.int()?;
        let (_, list) = p.next()?;
        let mut list = Ber(list);
        let mut found = Vec::new();
        while let Some((_, vb)) = list.next() {
            let mut vb = Ber(vb);
            let (_, oid) = vb.next()?;
            let (tag, value) = vb.next()?;
            if let Some((_, field)) = SYSTEM.iter().find(|(o, _)| *o == oid) {
                match tag {
                    0x04 => found.push((*field, value.to_vec())),
                    0x06 => found.push((*field, oid_text(value).into_bytes())),
                    _ => {}
                }
            }
        }
        Some(found)
    };
    for (field, v) in walk().unwrap_or_default() {
        out.facts.add(ts, agent, "snmp", field, &v, false);
    }
}

#[derive(Default)]
struct SnmpFlow {
    /// (community or user, v3?, outcome so far)
    seen: Vec<(Vec<u8>, bool, Outcome)>,
    last: Nanos,
}

impl FlowAnalyzer for SnmpFlow {
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
        let Some(m) = parse(d) else {
            out.decode_errors += 1;
            return Progress::More;
        };
        if dir == Dir::ToClient && m.pdu == 0xA2 && m.version != 3 {
            system_facts(d, ts, &flow.server, out);
        }
        self.last = ts;
        let v3 = m.version == 3;
        if v3 && m.secret.is_empty() {
            return Progress::More; // engine-id discovery carries no user
        }
        let i = match self.seen.iter().position(|(s, _, _)| s == m.secret) {
            Some(i) => i,
            None if self.seen.len() < MAX_COMMUNITIES => {
                // Requests: GET, GETNEXT, SET, GETBULK (v3: any message); or a
                // response whose request was not captured.
                let request =
                    dir == Dir::ToServer && (v3 || matches!(m.pdu, 0xA0 | 0xA1 | 0xA3 | 0xA5));
                let response = dir == Dir::ToClient && (v3 || m.pdu == 0xA2);
                if !request && !response {
                    return Progress::More;
                }
                self.seen.push((m.secret.to_vec(), v3, Outcome::Failure));
                self.seen.len() - 1
            }
            None => return Progress::More,
        };
        if dir == Dir::ToClient && (v3 || m.pdu == 0xA2) {
            // 16 = authorizationError (RFC 3416).
            self.seen[i].2 = if m.error_status == 16 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
        }
        Progress::More
    }

    fn end(&mut self, flow: &FlowInfo, ts: Nanos, out: &mut Output) {
        for (secret, v3, outcome) in self.seen.drain(..) {
            let a = if v3 {
                Attempt {
                    protocol: "snmp",
                    username: Some(&secret),
                    password: None,
                    proven_default: None,
                    outcome: if outcome == Outcome::Success {
                        Outcome::Success
                    } else {
                        Outcome::Unknown
                    },
                }
            } else {
                Attempt {
                    protocol: "snmp",
                    username: None,
                    password: Some(&secret),
                    proven_default: None,
                    outcome,
                }
            };
            out.events.push(login_event(
                flow,
                ts.max(self.last),
                &a,
                CredentialDb::builtin(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SNMPv2c GetRequest, community "public", request-id 1, sysDescr.0.
    const GET: &[u8] = &[
        0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x19,
        0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08,
        0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
    ];

    #[test]
    fn v2c_get() {
        let m = parse(GET).unwrap();
        assert_eq!(
            (m.version, m.secret, m.pdu, m.error_status),
            (1, &b"public"[..], 0xa0, 0)
        );
    }

    #[test]
    fn lying_lengths_and_truncation() {
        for cut in 0..GET.len() {
            let _ = parse(&GET[..cut]);
        }
        let mut bad = GET.to_vec();
        bad[6] = 0x7f; // community length past the message
        assert_eq!(parse(&bad), None);
        assert_eq!(parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }
}
