//! Protocol analyzers and the interface they plug into.
//!
//! An [`Analyzer`] claims flows by server port and/or by probing the first
//! payload bytes. For each claimed flow it starts a [`FlowAnalyzer`], which is
//! fed reassembled TCP bytes (or UDP datagrams) with direction and time, and
//! emits device facts and events into an [`Output`]. A flow no analyzer claims
//! costs nothing beyond its flow-table entry: no per-packet call is made.

pub mod dhcp;
pub mod dns;
pub mod ftp;
pub mod http;
pub mod lines;
pub mod mqtt;
pub mod snmp;
pub mod ssdp;
pub mod ssh;
pub mod telnet;
pub mod tls;
pub mod tplink;

use std::net::IpAddr;

use crate::capture::Nanos;
use crate::decode::Mac;
use crate::event::Event;
use crate::flow::Chunk;
use crate::inventory::Fact;

/// Direction of data within a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the side that opened the flow.
    ToServer,
    ToClient,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub mac: Option<Mac>,
}

/// What an analyzer knows of its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub l4: L4,
    pub client: Endpoint,
    pub server: Endpoint,
    pub start: Nanos,
}

/// Answer to "is this flow yours?" from the first payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Yes,
    /// Not enough bytes to tell: ask again with the next payload.
    Unsure,
    No,
}

/// Whether a flow analyzer wants more of its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    More,
    /// Nothing more to learn: the flow's analyzer state is freed.
    Done,
}

/// Facts and events produced while analysing. Owned by a worker and drained
/// by it, so analyzers never touch shared state.
#[derive(Debug, Default)]
pub struct Output {
    pub facts: Facts,
    pub events: Vec<Event>,
    /// Clients seen using a scanning tool (its default User-Agent), for the
    /// scan detector: (time, client, tool).
    pub tools: Vec<(Nanos, Endpoint, &'static str)>,
    /// Malformed protocol messages (a DHCP option past the end, a DNS name
    /// loop): counted with the capture's decode errors.
    pub decode_errors: u64,
}

/// Facts waiting for the inventory. A device repeats itself (an mDNS or
/// SSDP announcement every few seconds, the same DNS query all day), so a
/// fact already seen is dropped before its text is even copied.
#[derive(Debug, Default)]
pub struct Facts {
    pub list: Vec<Fact>,
    /// Hashes of recent facts; cleared when full, so memory stays bounded
    /// and a repeat after that costs one more copy, not a wrong answer.
    seen: rustc_hash::FxHashSet<u64>,
    /// Values analyzers derive from what many devices send alike (the JA3
    /// and JA4 of one TLS library), by a hash of their input; bounded like
    /// `seen`.
    derived: rustc_hash::FxHashMap<u64, std::sync::Arc<str>>,
}

/// Recent facts remembered for dropping repeats.
const SEEN_FACTS: usize = 1 << 16;

impl Facts {
    /// A fact about `sender`; `on_link` when it surely came from the sender's
    /// own MAC (DHCP, mDNS, SSDP multicast).
    pub fn add(
        &mut self,
        ts: Nanos,
        sender: &Endpoint,
        signal: &'static str,
        field: &'static str,
        value: &[u8],
        on_link: bool,
    ) {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        (sender.mac, sender.ip, signal, field, value).hash(&mut h);
        if !self.first_time(h.finish()) {
            // A repeat sent on the link still dates its sender: with the
            // first copy on one worker and this on another, both would,
            // and the report must not depend on the sharding. Once per
            // packet is enough (an mDNS answer repeats a dozen records).
            let dated = self.list.last().is_some_and(|f| {
                f.on_link && f.ts == ts && f.mac == sender.mac && f.ip == sender.ip
            });
            if on_link && !dated {
                self.list.push(Fact {
                    ts,
                    mac: sender.mac,
                    ip: sender.ip,
                    on_link,
                    repeat: true,
                    signal,
                    field,
                    value: String::new(),
                });
            }
            return;
        }
        let mut f = Fact::new(ts, sender, signal, field, value);
        f.on_link = on_link;
        self.list.push(f);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The value derived from an input hashed to `key`, computed by `f`
    /// only when not remembered.
    pub fn derive(&mut self, key: u64, f: impl FnOnce() -> String) -> std::sync::Arc<str> {
        if let Some(v) = self.derived.get(&key) {
            return v.clone();
        }
        if self.derived.len() >= SEEN_FACTS / 16 {
            self.derived.clear();
        }
        let v: std::sync::Arc<str> = f().into();
        self.derived.insert(key, v.clone());
        v
    }

    /// Whether `key` (a hash of something a device showed) is new lately:
    /// lets an analyzer skip work whose result would repeat a fact.
    pub fn first_time(&mut self, key: u64) -> bool {
        if self.seen.len() >= SEEN_FACTS {
            self.seen.clear();
        }
        self.seen.insert(key)
    }
}

impl FlowInfo {
    /// The endpoint that sent data going in `dir`.
    pub fn sender(&self, dir: Dir) -> &Endpoint {
        match dir {
            Dir::ToServer => &self.client,
            Dir::ToClient => &self.server,
        }
    }
}

/// One protocol, registered once per run.
pub trait Analyzer: Send + Sync {
    fn name(&self) -> &'static str;
    /// Server ports it claims over TCP.
    fn tcp_ports(&self) -> &[u16] {
        &[]
    }
    /// Server ports it claims over UDP.
    fn udp_ports(&self) -> &[u16] {
        &[]
    }
    /// Whether [`Analyzer::probe`] should be asked about unclaimed flows.
    fn probes(&self) -> bool {
        false
    }
    /// Looks at the first payload of an unclaimed flow.
    fn probe(&self, _l4: L4, _dir: Dir, _first: &[u8]) -> Probe {
        Probe::No
    }
    /// State for one claimed flow.
    fn start(&self, flow: &FlowInfo) -> Box<dyn FlowAnalyzer>;
}

/// Per-flow state of one analyzer.
pub trait FlowAnalyzer: Send {
    /// Reassembled TCP bytes or a gap; for UDP, one datagram per call.
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress;
    /// The flow ended (FIN/RST, timeout, eviction or end of capture).
    fn end(&mut self, _flow: &FlowInfo, _ts: Nanos, _out: &mut Output) {}
}

/// Every fingerprinting parser on `data`, as one device's datagram or
/// segment: what the fuzz target and the damaged-input test drive. Returns
/// what they produced.
/// `bytes` in lower-case hex, written into `buf` (twice as long at least):
/// for text made per packet, kept off the heap.
pub fn hex_into<'b>(bytes: &[u8], buf: &'b mut [u8]) -> &'b [u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, &b) in buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    &buf[..2 * bytes.len()]
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut buf = vec![0; 2 * bytes.len()];
    hex_into(bytes, &mut buf);
    String::from_utf8(buf).expect("hex digits are ASCII")
}

pub fn run_fingerprint_parsers(data: &[u8]) -> Output {
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
        let (ja3, ja4) = (h.ja3(), h.ja4());
        out.facts.add(0, &ep, "tls", "ja3", ja3.as_bytes(), false);
        out.facts.add(0, &ep, "tls", "ja4", ja4.as_bytes(), false);
    }
    // The same bytes as a client's first records: a hello gathered from
    // one record or several.
    if let tls::Gathered::Hello(h) = tls::hello_from_records(data)
        && let Some(h) = tls::parse_client_hello(&h)
    {
        let _ = (h.ja3(), h.ja4());
    }
    tplink::sysinfo_facts(&tplink::deobfuscate(data), 0, &ep, &mut out);
    snmp::system_facts(data, 0, &ep, &mut out);
    out
}

/// Sentinel for "no analyzer" in the port maps.
const NONE: u8 = u8::MAX;
/// Payload packets an unsure probe may look at before the flow is given up
/// (a POP3 STLS upgrade shows its ClientHello in the sixth).
pub const PROBE_PACKETS: u8 = 8;

/// The registered analyzers, with port maps for O(1) claims.
pub struct Registry {
    analyzers: Vec<Box<dyn Analyzer>>,
    tcp: Box<[u8]>,
    udp: Box<[u8]>,
    probers: Vec<u8>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(Vec::new())
    }
}

impl Registry {
    /// Every analyzer iotwatch has.
    pub fn builtin() -> Registry {
        Registry::new(vec![
            Box::new(ftp::Ftp),
            Box::new(http::Http),
            Box::new(mqtt::Mqtt),
            Box::new(snmp::Snmp),
            Box::new(telnet::Telnet),
            Box::new(dhcp::Dhcp),
            Box::new(dns::Dns),
            Box::new(ssdp::Ssdp),
            Box::new(tls::Tls),
            Box::new(ssh::Ssh),
            Box::new(tplink::TpLink),
        ])
    }

    pub fn new(analyzers: Vec<Box<dyn Analyzer>>) -> Registry {
        assert!(analyzers.len() < NONE as usize, "too many analyzers");
        let mut tcp = vec![NONE; 65536].into_boxed_slice();
        let mut udp = vec![NONE; 65536].into_boxed_slice();
        let mut probers = Vec::new();
        for (i, a) in analyzers.iter().enumerate() {
            for &p in a.tcp_ports() {
                tcp[p as usize] = i as u8;
            }
            for &p in a.udp_ports() {
                udp[p as usize] = i as u8;
            }
            if a.probes() {
                probers.push(i as u8);
            }
        }
        Registry {
            analyzers,
            tcp,
            udp,
            probers,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.analyzers.is_empty()
    }

    /// The analyzer claiming a flow by port: the server's port first.
    pub fn by_port(&self, flow: &FlowInfo) -> Option<usize> {
        let map = match flow.l4 {
            L4::Tcp => &self.tcp,
            L4::Udp => &self.udp,
        };
        [flow.server.port, flow.client.port]
            .into_iter()
            .map(|p| map[p as usize])
            .find(|&i| i != NONE)
            .map(usize::from)
    }

    pub fn has_probers(&self) -> bool {
        !self.probers.is_empty()
    }

    /// Asks each probing analyzer; the first `Yes` wins.
    pub fn probe(&self, l4: L4, dir: Dir, first: &[u8]) -> Result<usize, Probe> {
        let mut any_unsure = false;
        for &i in &self.probers {
            match self.analyzers[i as usize].probe(l4, dir, first) {
                Probe::Yes => return Ok(i as usize),
                Probe::Unsure => any_unsure = true,
                Probe::No => {}
            }
        }
        Err(if any_unsure { Probe::Unsure } else { Probe::No })
    }

    pub fn start(&self, i: usize, flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        self.analyzers[i].start(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn flow(l4: L4, port: u16) -> FlowInfo {
        let ep = |port| Endpoint {
            ip: Ipv4Addr::LOCALHOST.into(),
            port,
            mac: None,
        };
        FlowInfo {
            l4,
            client: ep(40000),
            server: ep(port),
            start: 0,
        }
    }

    #[test]
    fn builtin_registry_claims_every_analyzers_ports() {
        let r = Registry::builtin();
        for (l4, port, name) in [
            (L4::Tcp, 21, "ftp"),
            (L4::Tcp, 80, "http"),
            (L4::Tcp, 554, "http"),
            (L4::Tcp, 1883, "mqtt"),
            (L4::Udp, 161, "snmp"),
            (L4::Tcp, 23, "telnet"),
            (L4::Tcp, 2323, "telnet"),
            (L4::Udp, 67, "dhcp"),
            (L4::Udp, 547, "dhcp"),
            (L4::Udp, 53, "dns"),
            (L4::Udp, 5353, "dns"),
            (L4::Udp, 1900, "ssdp"),
            (L4::Tcp, 443, "tls"),
            (L4::Tcp, 22, "ssh"),
            (L4::Udp, 9999, "tplink"),
        ] {
            let i = r
                .by_port(&flow(l4, port))
                .unwrap_or_else(|| panic!("{port} unclaimed"));
            assert_eq!(r.analyzers[i].name(), name);
        }
        assert_eq!(r.by_port(&flow(L4::Udp, 123)), None);
        assert_eq!(
            r.probe(L4::Tcp, Dir::ToServer, b"GET /x HTTP/1.1\r\n"),
            Ok(1)
        );
        assert_eq!(
            r.probe(L4::Tcp, Dir::ToServer, b"\x16\x03\x01"),
            Err(Probe::Unsure)
        );
        let tls = r
            .probe(L4::Tcp, Dir::ToServer, b"\x16\x03\x01\x02\x00\x01")
            .unwrap();
        assert_eq!(r.analyzers[tls].name(), "tls");
        assert_eq!(
            r.probe(L4::Tcp, Dir::ToServer, b"\x17\x03\x03"),
            Err(Probe::No)
        );
    }
}
