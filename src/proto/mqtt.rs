//! MQTT logins (3.1, 3.1.1, 5): the CONNECT username/password flags and
//! fields, the CONNACK return (v3) or reason (v5) code for the outcome.
//! Only the connection's first packets are read; lengths are checked before
//! use and a CONNECT larger than `MAX_CONNECT` is not buffered.

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Progress};
use crate::capture::Nanos;
use crate::detect::credentials::{Attempt, Outcome, login_event};
use crate::flow::Chunk;
use crate::signatures::credentials::CredentialDb;

const MAX_CONNECT: usize = 4096;

pub struct Mqtt;

impl Analyzer for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[1883]
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::<MqttFlow>::default()
    }
}

#[derive(Default)]
struct MqttFlow {
    client: Vec<u8>,
    server: Vec<u8>,
    connect: Option<Connect>,
    done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub level: u8,
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
}

/// Why bytes are not (yet) a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    Incomplete,
    Invalid,
}

/// Remaining length: 1 to 4 bytes of 7 bits each. Returns (value, bytes used).
fn varint(d: &[u8]) -> Result<(usize, usize), ParseError> {
    let mut v = 0usize;
    for i in 0..4 {
        let b = *d.get(i).ok_or(ParseError::Incomplete)?;
        v |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(ParseError::Invalid)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.0.len() < n {
            return Err(ParseError::Invalid);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, ParseError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn string(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.u16()?;
        self.take(n)
    }
    fn properties(&mut self) -> Result<(), ParseError> {
        let (n, used) = varint(self.0)?;
        self.take(used)?;
        self.take(n).map(|_| ())
    }
}

/// Parses a CONNECT packet at the start of `d`.
pub fn parse_connect(d: &[u8]) -> Result<(Connect, usize), ParseError> {
    let first = *d.first().ok_or(ParseError::Incomplete)?;
    if first != 0x10 {
        return Err(ParseError::Invalid);
    }
    let (len, used) = varint(&d[1..])?;
    if len > MAX_CONNECT {
        return Err(ParseError::Invalid);
    }
    let total = 1 + used + len;
    let body = d.get(1 + used..total).ok_or(ParseError::Incomplete)?;
    let mut c = Cursor(body);
    let name = c.string()?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return Err(ParseError::Invalid);
    }
    let level = c.u8()?;
    let flags = c.u8()?;
    c.take(2)?; // keep-alive
    if level >= 5 {
        c.properties()?;
    }
    c.string()?; // client id
    if flags & 0x04 != 0 {
        if level >= 5 {
            c.properties()?;
        }
        c.string()?; // will topic
        c.string()?; // will payload
    }
    let username = if flags & 0x80 != 0 {
        Some(c.string()?.to_vec())
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(c.string()?.to_vec())
    } else {
        None
    };
    Ok((
        Connect {
            level,
            username,
            password,
        },
        total,
    ))
}

/// The CONNACK code: v3 return code or v5 reason code.
pub fn parse_connack(d: &[u8]) -> Result<u8, ParseError> {
    let first = *d.first().ok_or(ParseError::Incomplete)?;
    if first != 0x20 {
        return Err(ParseError::Invalid);
    }
    let (len, used) = varint(&d[1..])?;
    if len < 2 {
        return Err(ParseError::Invalid);
    }
    d.get(1 + used + 1).copied().ok_or(ParseError::Incomplete)
}

impl MqttFlow {
    fn finish(&mut self, flow: &FlowInfo, ts: Nanos, outcome: Outcome, out: &mut Output) {
        self.done = true;
        let Some(c) = self.connect.take() else { return };
        if c.username.is_none() && c.password.is_none() {
            return;
        }
        let a = Attempt {
            protocol: "mqtt",
            username: c.username.as_deref(),
            password: c.password.as_deref(),
            proven_default: None,
            outcome,
        };
        out.events
            .push(login_event(flow, ts, &a, CredentialDb::builtin()));
    }
}

impl FlowAnalyzer for MqttFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        let Chunk::Data(data) = chunk else {
            // A hole before the first packets: nothing reliable follows.
            self.finish(flow, ts, Outcome::Unknown, out);
            return Progress::Done;
        };
        match dir {
            Dir::ToServer if self.connect.is_none() => {
                self.client.extend_from_slice(
                    &data[..data
                        .len()
                        .min(MAX_CONNECT + 8 - self.client.len().min(MAX_CONNECT + 8))],
                );
                match parse_connect(&self.client) {
                    Ok((c, _)) => self.connect = Some(c),
                    Err(ParseError::Incomplete) => {}
                    Err(ParseError::Invalid) => return Progress::Done,
                }
            }
            Dir::ToClient if self.connect.is_some() => {
                self.server.extend_from_slice(
                    &data[..data.len().min(16usize.saturating_sub(self.server.len()))],
                );
                match parse_connack(&self.server) {
                    Ok(code) => {
                        let level = self.connect.as_ref().map_or(4, |c| c.level);
                        let outcome = match (level >= 5, code) {
                            (_, 0) => Outcome::Success,
                            // v3: 4 bad user name or password, 5 not authorised;
                            // v5: 0x86 bad user name or password, 0x87 not authorised.
                            (false, 4 | 5) | (true, 0x86 | 0x87) => Outcome::Failure,
                            _ => Outcome::Unknown,
                        };
                        self.finish(flow, ts, outcome, out);
                        return Progress::Done;
                    }
                    Err(ParseError::Incomplete) => {}
                    Err(ParseError::Invalid) => {
                        self.finish(flow, ts, Outcome::Unknown, out);
                        return Progress::Done;
                    }
                }
            }
            _ => {}
        }
        Progress::More
    }

    fn end(&mut self, flow: &FlowInfo, ts: Nanos, out: &mut Output) {
        if !self.done {
            self.finish(flow, ts, Outcome::Unknown, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(level: u8, user: &[u8], pass: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        let name: &[u8] = if level == 3 { b"MQIsdp" } else { b"MQTT" };
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name);
        body.push(level);
        body.push(0xC2);
        body.extend_from_slice(&[0, 60]);
        if level >= 5 {
            body.push(0);
        }
        for s in [&b"client-1"[..], user, pass] {
            body.extend_from_slice(&(s.len() as u16).to_be_bytes());
            body.extend_from_slice(s);
        }
        let mut p = vec![0x10, body.len() as u8];
        p.extend(body);
        p
    }

    #[test]
    fn connect_all_versions() {
        for level in [3, 4, 5] {
            let (c, n) = parse_connect(&connect(level, b"user", b"pass")).unwrap();
            assert_eq!(
                (c.level, c.username.as_deref(), c.password.as_deref()),
                (level, Some(&b"user"[..]), Some(&b"pass"[..]))
            );
            assert_eq!(n, connect(level, b"user", b"pass").len());
        }
    }

    #[test]
    fn truncated_and_lying_lengths() {
        let p = connect(4, b"u", b"p");
        for cut in 0..p.len() {
            assert_eq!(
                parse_connect(&p[..cut]),
                Err(ParseError::Incomplete),
                "cut at {cut}"
            );
        }
        // A five-byte remaining length.
        assert_eq!(
            parse_connect(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(ParseError::Invalid)
        );
        // A string length past the packet.
        let mut bad = p.clone();
        let n = bad.len();
        bad[n - 3] = 0x40;
        assert_eq!(parse_connect(&bad), Err(ParseError::Invalid));
        assert_eq!(parse_connack(&[0x20, 2, 0, 5]), Ok(5));
    }
}
