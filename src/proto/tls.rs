//! TLS ClientHello: the server name (SNI) a device asks for, and the JA4 and
//! JA3 fingerprints of its TLS stack. The hello is gathered across TCP
//! segments and records up to [`MAX_HELLO`] bytes; anything malformed or cut
//! short is a decode error and yields no fingerprint.

use std::borrow::Cow;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, L4, Output, Probe, Progress, hex};
use crate::capture::Nanos;
use crate::flow::Chunk;

/// A ClientHello bigger than this (post-quantum key shares make ~2 KB ones)
/// is not followed.
const MAX_HELLO: usize = 16 * 1024;

pub struct Tls;

impl Analyzer for Tls {
    fn name(&self) -> &'static str {
        "tls"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[443, 465, 636, 853, 993, 995, 5061, 5223, 8443, 8883, 8884]
    }
    fn probes(&self) -> bool {
        true
    }
    /// A handshake record carrying a ClientHello, on any port; also waits
    /// through the plaintext start of protocols that upgrade to TLS
    /// (POP3 STLS, IMAP and SMTP STARTTLS, ADB's STLS, RDP's negotiation).
    fn probe(&self, l4: L4, dir: Dir, first: &[u8]) -> Probe {
        if l4 != L4::Tcp {
            return Probe::No;
        }
        const UPGRADES: &[&[u8]] = &[b"STLS", b"CNXN", b"AUTH", b"\x03\x00"];
        // A text line: a command or reply of a line protocol, which may be
        // followed by STARTTLS.
        let line = first.ends_with(b"\n")
            && first.len() < 512
            && first
                .iter()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        let upgrade = line || UPGRADES.iter().any(|p| first.starts_with(p));
        if upgrade {
            return Probe::Unsure;
        }
        if dir != Dir::ToServer {
            return Probe::No;
        }
        match first {
            [0x16, 3, 0..=4, _, _, 1, ..] => Probe::Yes,
            [0x16]
            | [0x16, 3]
            | [0x16, 3, 0..=4]
            | [0x16, 3, 0..=4, _]
            | [0x16, 3, 0..=4, _, _] => Probe::Unsure,
            _ => Probe::No,
        }
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::<TlsFlow>::default()
    }
}

#[derive(Default)]
struct TlsFlow {
    /// Client bytes so far (records with their headers).
    buf: Vec<u8>,
}

impl FlowAnalyzer for TlsFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        if dir != Dir::ToServer {
            return Progress::More;
        }
        let Chunk::Data(d) = chunk else {
            out.decode_errors += 1;
            return Progress::Done;
        };
        // Most hellos arrive whole in the flow's first segment: parsed where
        // they lie, with nothing copied. The bytes looked at are those the
        // buffer would hold.
        let d = &d[..d
            .len()
            .min(MAX_HELLO + 5 - self.buf.len().min(MAX_HELLO + 5))];
        if self.buf.is_empty() {
            match hello_from_records(d) {
                Gathered::More => {}
                whole => return hello_gathered(whole, flow, ts, out),
            }
            self.buf.reserve_exact(d.len().clamp(512, MAX_HELLO + 5));
        }
        self.buf.extend_from_slice(d);
        match hello_from_records(&self.buf) {
            Gathered::More if self.buf.len() < MAX_HELLO => Progress::More,
            g => hello_gathered(g, flow, ts, out),
        }
    }
}

/// Reports what a flow's gathered hello shows: its server name and, once
/// per sender and hello shape, its fingerprints.
fn hello_gathered(g: Gathered<'_>, flow: &FlowInfo, ts: Nanos, out: &mut Output) -> Progress {
    let Gathered::Hello(h) = g else {
        out.decode_errors += 1;
        return Progress::Done;
    };
    let Some(hello) = parse_client_hello(&h) else {
        out.decode_errors += 1;
        return Progress::Done;
    };
    let sender = &flow.client;
    if let Some(sni) = hello.sni {
        out.facts.add(ts, sender, "tls", "sni", sni, false);
    }
    // A device opens many connections with one TLS stack, and many devices
    // run the same stack: the fingerprints of a hello shape are computed
    // once.
    if out.facts.first_time(hello.shape(Some(sender))) {
        let shape = hello.shape(None);
        let ja4 = out.facts.derive(shape, || hello.ja4());
        let ja3 = out.facts.derive(shape ^ 0x3a3, || hello.ja3());
        out.facts
            .add(ts, sender, "tls", "ja4", ja4.as_bytes(), false);
        out.facts
            .add(ts, sender, "tls", "ja3", ja3.as_bytes(), false);
    }
    Progress::Done
}

pub(crate) enum Gathered<'a> {
    More,
    /// The message body: borrowed when one record holds it all.
    Hello(Cow<'a, [u8]>),
    Bad,
}

/// The ClientHello handshake message (without its 4-byte header), from the
/// payloads of as many handshake records as it spans.
pub(crate) fn hello_from_records(mut b: &[u8]) -> Gathered<'_> {
    let mut msg: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    while b.len() >= 5 {
        if b[0] != 0x16 || b[1] != 3 {
            return Gathered::Bad;
        }
        let len = usize::from(u16::from_be_bytes([b[3], b[4]]));
        let Some(body) = b.get(5..5 + len) else {
            return Gathered::More;
        };
        b = &b[5 + len..];
        if msg.is_empty() {
            msg = Cow::Borrowed(body);
        } else {
            msg.to_mut().extend_from_slice(body);
        }
        if msg.len() >= 4 {
            if msg[0] != 1 {
                return Gathered::Bad;
            }
            let need =
                (usize::from(msg[1]) << 16) | (usize::from(msg[2]) << 8) | usize::from(msg[3]);
            if need > MAX_HELLO {
                return Gathered::Bad;
            }
            if msg.len() >= 4 + need {
                return Gathered::Hello(match msg {
                    Cow::Borrowed(m) => Cow::Borrowed(&m[4..4 + need]),
                    Cow::Owned(mut m) => {
                        m.truncate(4 + need);
                        m.drain(..4);
                        Cow::Owned(m)
                    }
                });
            }
        }
    }
    Gathered::More
}

/// A parsed ClientHello, its lists left in the message's bytes: parsing
/// allocates nothing (it runs once per TLS connection; its fingerprints
/// once per distinct hello).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientHello<'a> {
    pub version: u16,
    pub ciphers: U16s<'a>,
    pub extensions: ExtTypes<'a>,
    pub sni: Option<&'a [u8]>,
    /// The ALPN protocol name list (RFC 7301), checked well formed.
    alpn: &'a [u8],
    pub sig_algs: U16s<'a>,
    pub supported_versions: U16s<'a>,
    pub groups: U16s<'a>,
    pub point_formats: &'a [u8],
}

/// The extensions' types, in order, from the extensions block (checked
/// well formed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExtTypes<'a>(&'a [u8]);

impl<'a> ExtTypes<'a> {
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        let mut r = Reader(self.0);
        std::iter::from_fn(move || {
            let kind = r.u16()?;
            r.vec16()?;
            Some(kind)
        })
    }
}

/// A list of big-endian 16-bit values in the message (an odd last byte is
/// not one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct U16s<'a>(&'a [u8]);

impl<'a> U16s<'a> {
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() < 2
    }
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a … 0xfafa, ignored by JA3/JA4.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Parses a ClientHello body; `None` when malformed.
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello<'_>> {
    let mut r = Reader(body);
    let mut h = ClientHello {
        version: r.u16()?,
        ..Default::default()
    };
    r.take(32)?; // random
    r.vec8()?; // session id
    h.ciphers = U16s(r.vec16()?);
    r.vec8()?; // compression methods
    if r.0.is_empty() {
        return Some(h);
    }
    let block = r.vec16()?;
    let mut exts = Reader(block);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        let mut d = Reader(data);
        match kind {
            0 => {
                // server_name list: the first host_name entry.
                let mut list = Reader(d.vec16()?);
                while !list.0.is_empty() {
                    let t = list.u8()?;
                    let name = list.vec16()?;
                    if t == 0 && h.sni.is_none() {
                        h.sni = Some(name);
                    }
                }
            }
            10 => h.groups = U16s(d.vec16()?),
            11 => h.point_formats = d.vec8()?,
            13 => h.sig_algs = U16s(d.vec16()?),
            16 => {
                let names = d.vec16()?;
                let mut list = Reader(names);
                while !list.0.is_empty() {
                    list.vec8()?;
                }
                // Sent twice (which RFC 8446 forbids), the first counts.
                if h.alpn.is_empty() {
                    h.alpn = names;
                }
            }
            43 => h.supported_versions = U16s(d.vec8()?),
            _ => {}
        }
    }
    h.extensions = ExtTypes(block);
    Some(h)
}

fn hex_list(v: impl Iterator<Item = u16>) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(128);
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x:04x}");
    }
    s
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = Sha256::digest(s.as_bytes());
    hex(&d[..6])
}

impl ClientHello<'_> {
    /// A hash of what JA3 and JA4 read (with the sender, if given).
    fn shape(&self, sender: Option<&super::Endpoint>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        sender.map(|s| (s.mac, s.ip)).hash(&mut h);
        (self.version, self.sni.is_some()).hash(&mut h);
        (self.ciphers, self.alpn, self.sig_algs).hash(&mut h);
        // The types alone: the extensions' data (the server name above
        // all) differ from one connection to the next.
        for t in self.extensions.iter() {
            t.hash(&mut h);
        }
        (self.supported_versions, self.groups, self.point_formats).hash(&mut h);
        h.finish()
    }

    /// The first ALPN protocol name, if any.
    fn first_alpn(&self) -> Option<&[u8]> {
        Reader(self.alpn).vec8()
    }

    /// JA4 (FoxIO, https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md),
    /// for TLS over TCP.
    pub fn ja4(&self) -> String {
        let version = self
            .supported_versions
            .iter()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.version);
        let v = match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        };
        let sni = if self.sni.is_some() { 'd' } else { 'i' };
        let ciphers: Vec<u16> = self.ciphers.iter().filter(|c| !is_grease(*c)).collect();
        let exts: Vec<u16> = self.extensions.iter().filter(|e| !is_grease(*e)).collect();
        let alpn = match self.first_alpn().filter(|a| !a.is_empty()) {
            None => "00".to_string(),
            Some(a) => {
                let (f, l) = (a[0], a[a.len() - 1]);
                if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                    format!("{}{}", f as char, l as char)
                } else {
                    let hex: String = a.iter().map(|b| format!("{b:02x}")).collect();
                    let c: Vec<char> = hex.chars().collect();
                    format!("{}{}", c[0], c[c.len() - 1])
                }
            }
        };
        let mut sorted_ciphers = ciphers.clone();
        sorted_ciphers.sort_unstable();
        let mut sorted_exts: Vec<u16> = exts
            .iter()
            .copied()
            .filter(|e| *e != 0 && *e != 16)
            .collect();
        sorted_exts.sort_unstable();
        let mut ext_str = hex_list(sorted_exts.into_iter());
        if !self.sig_algs.is_empty() {
            ext_str.push('_');
            ext_str.push_str(&hex_list(self.sig_algs.iter()));
        }
        format!(
            "t{v}{sni}{:02}{:02}{alpn}_{}_{}",
            ciphers.len().min(99),
            exts.len().min(99),
            hash12(&hex_list(sorted_ciphers.into_iter())),
            hash12(&ext_str),
        )
    }

    /// JA3 (Salesforce): MD5 of version, ciphers, extensions, groups and
    /// point formats in decimal, GREASE left out.
    pub fn ja3(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(256);
        let _ = write!(s, "{}", self.version);
        let lists: [&mut dyn Iterator<Item = u16>; 3] = [
            &mut self.ciphers.iter(),
            &mut self.extensions.iter(),
            &mut self.groups.iter(),
        ];
        for list in lists {
            s.push(',');
            for (i, x) in list.filter(|x| !is_grease(*x)).enumerate() {
                let _ = write!(s, "{}{x}", if i > 0 { "-" } else { "" });
            }
        }
        s.push(',');
        for (i, x) in self.point_formats.iter().enumerate() {
            let _ = write!(s, "{}{x}", if i > 0 { "-" } else { "" });
        }
        hex(&Md5::digest(s.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello built by hand: TLS 1.3 via supported_versions, SNI,
    /// ALPN h2, GREASE in ciphers and extensions.
    pub fn sample_hello() -> Vec<u8> {
        let mut exts = Vec::new();
        let mut ext = |kind: u16, data: &[u8]| {
            exts.extend_from_slice(&kind.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        };
        ext(0x0a0a, &[]);
        let host = b"example.com";
        let mut sni = vec![0, (host.len() + 3) as u8, 0, 0, host.len() as u8];
        sni.extend_from_slice(host);
        ext(0, &sni);
        ext(16, &[0, 3, 2, b'h', b'2']);
        ext(13, &[0, 4, 0x04, 0x03, 0x08, 0x04]);
        ext(43, &[4, 0x03, 0x04, 0x03, 0x03]);
        ext(10, &[0, 2, 0, 29]);
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 6, 0x2a, 0x2a, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        body
    }

    #[test]
    fn ja4_of_a_known_hello() {
        let body = sample_hello();
        let h = parse_client_hello(&body).unwrap();
        assert_eq!(h.sni, Some(&b"example.com"[..]));
        let ja4 = h.ja4();
        // t, TLS 1.3, SNI, 2 ciphers (GREASE out), 5 extensions, ALPN h2.
        assert!(ja4.starts_with("t13d0205h2_"), "{ja4}");
        assert_eq!(
            &ja4[11..23],
            hash12("1301,1302"),
            "cipher hash is over the sorted hex list"
        );
        assert_eq!(&ja4[24..], hash12("000a,000d,002b_0403,0804"));
        assert_eq!(h.ja3().len(), 32);
    }

    /// The facts a TLS flow yields from the client's bytes, in segments.
    fn facts_of(segments: &[&[u8]]) -> (Vec<(&'static str, String)>, u64) {
        let ep = |port| super::super::Endpoint {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port,
            mac: None,
        };
        let flow = FlowInfo {
            l4: L4::Tcp,
            client: ep(40000),
            server: ep(443),
            start: 0,
        };
        let mut a = Tls.start(&flow);
        let mut out = Output::default();
        for seg in segments {
            if a.data(&flow, Dir::ToServer, 1, Chunk::Data(seg), &mut out) == Progress::Done {
                break;
            }
        }
        let facts = out.facts.list.iter();
        let facts = facts.map(|f| (f.field, f.value.clone())).collect();
        (facts, out.decode_errors)
    }

    #[test]
    fn a_hello_whole_or_in_pieces_gives_the_same_facts() {
        let body = sample_hello();
        let mut record = vec![0x16, 3, 1, 0, 0, 1, 0];
        record.extend_from_slice(&(body.len() as u16).to_be_bytes());
        record.extend_from_slice(&body);
        let len = (record.len() - 5) as u16;
        record[3..5].copy_from_slice(&len.to_be_bytes());
        let (whole, errors) = facts_of(&[&record]);
        assert_eq!(errors, 0);
        let fields: Vec<&str> = whole.iter().map(|(k, _)| *k).collect();
        assert_eq!(fields, ["sni", "ja4", "ja3"]);
        assert_eq!(whole[0].1, "example.com");
        for cut in [1, 5, 9, 40, record.len() - 1] {
            let (a, b) = record.split_at(cut);
            assert_eq!(facts_of(&[a, b]), (whole.clone(), 0), "cut at {cut}");
        }
        // Not a ClientHello: no facts, one decode error.
        let mut bad = record.clone();
        bad[5] = 2;
        assert_eq!(facts_of(&[&bad]), (vec![], 1));
    }

    #[test]
    fn split_and_truncated_hellos() {
        let body = sample_hello();
        let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        msg.extend_from_slice(&body);
        // Two records carrying halves of the message.
        let (a, b) = msg.split_at(20);
        let mut recs = Vec::new();
        for part in [a, b] {
            recs.extend_from_slice(&[0x16, 3, 1, 0, part.len() as u8]);
            recs.extend_from_slice(part);
        }
        match hello_from_records(&recs) {
            Gathered::Hello(h) => assert_eq!(h, &body[..]),
            _ => panic!("not gathered"),
        }
        assert!(matches!(hello_from_records(&recs[..30]), Gathered::More));
        for cut in 0..body.len() {
            let _ = parse_client_hello(&body[..cut]);
        }
        assert!(parse_client_hello(&body[..50]).is_none());
        assert!(matches!(
            hello_from_records(b"\x17\x03\x03\x00\x01x"),
            Gathered::Bad
        ));
    }
}
