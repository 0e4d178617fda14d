//! Scan detection: the Mirai SYN fingerprint, horizontal and vertical TCP
//! scans judged by the outcomes of first contacts (a Threshold Random Walk
//! in the style of Jung et al., 2004), and ARP/ICMP sweeps of the LAN.
//!
//! State is per source address, bounded in count and in size: distinct
//! targets and ports are [`Distinct`] sketches, no per-target entry is kept.
//! A source's traffic may be split over several workers (flows are sharded by
//! address pair), so every field merges exactly, and the verdict is made once
//! on the merged state: the report is the same whatever the thread count.
//!
//! A source's activity is kept per half-hour window; at the end, runs of
//! consecutive active windows are merged into episodes, one `scan` event per
//! source and episode. Windows, not idle timers, so that workers that each
//! saw part of a scan agree on where its episodes start and end.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::distinct::{Distinct, MAX_SKETCHES, mix};
use crate::capture::Nanos;
use crate::decode::Mac;
use crate::decode::addr16;
use crate::event::{Event, EventKind, Severity, serialize_ts};
use crate::netconf::HomeNets;
use crate::output::report::mac_string;
use crate::signatures::scan_ports;
use crate::signatures::scan_thresholds::{self, ScanThresholds};

/// Sources (per window) tracked per worker; past this, the least active one
/// is replaced.
pub const MAX_SOURCES: usize = 4096;
/// The window of activity: a source idle for a whole window ends an episode.
pub const EPISODE_WINDOW: Nanos = 30 * 60 * 1_000_000_000;

/// A source in one window.
type Key = (IpAddr, u32);

fn key(ip: IpAddr, ts: Nanos) -> Key {
    (ip, (ts / EPISODE_WINDOW) as u32)
}
/// Port-count buckets per source. Each keeps the lowest port that fell in it
/// with an exact count; SYNs to other ports of the bucket are summed apart.
/// "Lowest port" does not depend on the order packets arrive in, so workers'
/// partial counts merge to the same result as one worker's.
const PORT_BUCKETS: usize = 64;
/// Windows remembered per source (Mirai uses one per scanner process).
const MAX_WINDOWS: usize = 4;
/// Answered (target, port) pairs listed per source, for inbound scans.
const MAX_OPEN: usize = 16;

/// Thresholds (how many Mirai matches, the random walk's parameters, fan-out
/// and sweep sizes) are data: `signatures/scan-thresholds.tsv`, each with
/// its source.
fn th() -> &'static ScanThresholds {
    scan_thresholds::builtin()
}

#[derive(Clone, Debug, Default)]
struct Source {
    mac: Option<Mac>,
    first_ts: Nanos,
    last_ts: Nanos,
    syns: u64,
    targets: Distinct,
    home_targets: u64,
    ports: Vec<(u16, u64)>,
    other_port_syns: u64,
    distinct_ports: Distinct,
    /// First contacts answered by SYN-ACK, answered by RST, never answered.
    answered: u64,
    rejected: u64,
    unanswered: u64,
    open: Vec<(IpAddr, u16)>,
    mirai_matches: u64,
    /// Earliest fingerprinted SYNs to distinct targets: (time, target).
    mirai_first: Vec<(Nanos, u32)>,
    no_options: u64,
    windows: Vec<u16>,
    windows_overflow: bool,
    odd_probes: u64,
    /// Requests with a scanning tool's User-Agent, and the tool (the least
    /// by name, so merging is order-free).
    tool_requests: u64,
    tool: Option<&'static str>,
    pings: u64,
    ping_targets: Distinct,
    arps: u64,
    arp_targets: Distinct,
}

impl Source {
    fn touch(&mut self, ts: Nanos) {
        if self.first_ts == 0 || (ts != 0 && ts < self.first_ts) {
            self.first_ts = ts;
        }
        self.last_ts = self.last_ts.max(ts);
    }

    fn activity(&self) -> u64 {
        self.syns + self.pings + self.arps + self.odd_probes + self.tool_requests
    }

    fn merge(&mut self, o: &Source) {
        self.mac = self.mac.or(o.mac);
        if o.first_ts != 0 {
            self.touch(o.first_ts);
        }
        self.last_ts = self.last_ts.max(o.last_ts);
        self.syns += o.syns;
        self.targets.merge(&o.targets);
        self.home_targets += o.home_targets;
        for &(p, c) in o.ports.iter().filter(|x| x.1 > 0) {
            add_port(&mut self.ports, &mut self.other_port_syns, p, c);
        }
        self.other_port_syns += o.other_port_syns;
        self.distinct_ports.merge(&o.distinct_ports);
        self.answered += o.answered;
        self.rejected += o.rejected;
        self.unanswered += o.unanswered;
        for &x in &o.open {
            note_open(&mut self.open, x);
        }
        self.mirai_matches += o.mirai_matches;
        for &m in &o.mirai_first {
            note_match(&mut self.mirai_first, m);
        }
        self.no_options += o.no_options;
        for &w in &o.windows {
            note_window(self, w);
        }
        self.windows_overflow |= o.windows_overflow;
        self.odd_probes += o.odd_probes;
        self.tool_requests += o.tool_requests;
        self.tool = match (self.tool, o.tool) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.pings += o.pings;
        self.ping_targets.merge(&o.ping_targets);
        self.arps += o.arps;
        self.arp_targets.merge(&o.arp_targets);
    }
}

fn add_port(ports: &mut Vec<(u16, u64)>, other: &mut u64, port: u16, n: u64) {
    if ports.is_empty() {
        ports.resize(PORT_BUCKETS, (0, 0));
    }
    let slot = &mut ports[usize::from(port) % PORT_BUCKETS];
    if slot.1 == 0 || slot.0 == port {
        *slot = (port, slot.1 + n);
    } else if port < slot.0 {
        *other += slot.1;
        *slot = (port, n);
    } else {
        *other += n;
    }
}

/// Keeps the `MAX_OPEN` smallest answered (target, port) pairs.
fn note_open(open: &mut Vec<(IpAddr, u16)>, x: (IpAddr, u16)) {
    if !open.contains(&x) {
        open.push(x);
        open.sort_unstable();
        open.truncate(MAX_OPEN);
    }
}

/// Keeps the `mirai_matches` earliest matches to distinct targets.
fn note_match(first: &mut Vec<(Nanos, u32)>, m: (Nanos, u32)) {
    if let Some(e) = first.iter_mut().find(|e| e.1 == m.1) {
        e.0 = e.0.min(m.0);
    } else {
        first.push(m);
    }
    first.sort_unstable();
    first.truncate(th().mirai_matches);
}

/// Keeps the `MAX_WINDOWS` smallest windows seen, and whether there were more.
fn note_window(s: &mut Source, w: u16) {
    if !s.windows.contains(&w) {
        s.windows.push(w);
        s.windows.sort_unstable();
        if s.windows.len() > MAX_WINDOWS {
            s.windows.truncate(MAX_WINDOWS);
            s.windows_overflow = true;
        }
    }
}

/// A TCP SYN (without ACK) as the scan detector sees it.
#[derive(Clone, Copy, Debug)]
pub struct Syn {
    pub ts: Nanos,
    pub src: IpAddr,
    pub src_mac: Option<Mac>,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub seq: u32,
    pub window: u16,
    pub has_options: bool,
}

/// Whether TCP flags make a probe no stack sends in normal use.
pub fn odd_tcp_flags(flags: u8) -> bool {
    use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};
    let no_ack = flags & ACK == 0;
    (no_ack && flags & (SYN | RST) == 0) || (flags & SYN != 0 && flags & (FIN | RST) != 0)
}

/// Per-worker scan state.
pub struct ScanDetector {
    sources: FxHashMap<Key, Source>,
    /// Distinct-count sketches this detector may still allocate.
    sketches_left: u32,
    /// Sources replaced because the table was full.
    pub evicted: u64,
    rng: u64,
}

impl Default for ScanDetector {
    fn default() -> Self {
        ScanDetector {
            sources: FxHashMap::default(),
            sketches_left: MAX_SKETCHES,
            evicted: 0,
            rng: 0,
        }
    }
}

impl ScanDetector {
    /// The source's state, and the sketch budget it may draw on.
    fn source(&mut self, ip: IpAddr, ts: Nanos) -> (&mut Source, &mut u32) {
        let k = key(ip, ts);
        // The membership lookup only when full: one hash lookup per SYN otherwise.
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&k) {
            self.evict();
        }
        let s = self.sources.entry(k).or_default();
        s.touch(ts);
        (s, &mut self.sketches_left)
    }

    /// Space-saving in spirit: drop the least active of a few sampled sources,
    /// so a flood of one-packet sources cannot push out a real scanner.
    fn evict(&mut self) {
        self.rng = mix(self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15));
        let skip = (self.rng % self.sources.len() as u64) as usize;
        let victim = self
            .sources
            .iter()
            .cycle()
            .skip(skip)
            .take(16)
            .min_by_key(|(k, s)| (s.activity(), **k))
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            self.sources.remove(&k);
            self.evicted += 1;
        }
    }

    pub fn syn(&mut self, syn: &Syn, home: &HomeNets) {
        let home_dst = home.contains(syn.dst);
        let (s, budget) = self.source(syn.src, syn.ts);
        s.mac = s.mac.or(syn.src_mac);
        s.syns += 1;
        let target = addr16(syn.dst);
        s.targets.insert(hash_addr(target), budget);
        if home_dst {
            s.home_targets += 1;
        }
        add_port(&mut s.ports, &mut s.other_port_syns, syn.dst_port, 1);
        s.distinct_ports
            .insert(mix(u64::from(syn.dst_port)), budget);
        if !syn.has_options {
            s.no_options += 1;
        }
        note_window(s, syn.window);
        if let IpAddr::V4(dst) = syn.dst
            && syn.seq == u32::from(dst)
            && !dst.is_unspecified()
        {
            s.mirai_matches += 1;
            note_match(&mut s.mirai_first, (syn.ts, syn.seq));
        }
    }

    /// How a first contact by `client` ended: `Some(true)` answered by
    /// SYN-ACK, `Some(false)` refused by RST, `None` never answered. `syn_ts`
    /// is the time of its SYN (it belongs to that window), `ts` the end.
    pub fn outcome(
        &mut self,
        client: IpAddr,
        server: IpAddr,
        port: u16,
        answered: Option<bool>,
        syn_ts: Nanos,
        ts: Nanos,
    ) {
        let Some(s) = self.sources.get_mut(&key(client, syn_ts)) else {
            return;
        };
        s.last_ts = s.last_ts.max(ts);
        match answered {
            Some(true) => {
                s.answered += 1;
                note_open(&mut s.open, (server, port));
            }
            Some(false) => s.rejected += 1,
            None => s.unanswered += 1,
        }
    }

    /// A request carrying a scanning tool's default User-Agent.
    pub fn tool_request(
        &mut self,
        ts: Nanos,
        src: IpAddr,
        src_mac: Option<Mac>,
        tool: &'static str,
    ) {
        let (s, _) = self.source(src, ts);
        s.mac = s.mac.or(src_mac);
        s.tool_requests += 1;
        s.tool = Some(s.tool.map_or(tool, |t| t.min(tool)));
    }

    /// A probe of the kinds counted by the `odd_probes` threshold.
    pub fn odd_probe(&mut self, ts: Nanos, src: IpAddr, src_mac: Option<Mac>) {
        let (s, _) = self.source(src, ts);
        s.mac = s.mac.or(src_mac);
        s.odd_probes += 1;
    }

    pub fn ping(&mut self, ts: Nanos, src: IpAddr, src_mac: Option<Mac>, dst: IpAddr) {
        let (s, budget) = self.source(src, ts);
        s.mac = s.mac.or(src_mac);
        s.pings += 1;
        s.ping_targets.insert(hash_addr(addr16(dst)), budget);
    }

    pub fn arp_request(&mut self, ts: Nanos, src: IpAddr, src_mac: Mac, target: IpAddr) {
        let (s, budget) = self.source(src, ts);
        s.mac = s.mac.or(Some(src_mac));
        s.arps += 1;
        s.arp_targets.insert(hash_addr(addr16(target)), budget);
    }

    /// Adds `other`'s findings. Its sources are merged or moved out, not
    /// freed: it may have been allocated on another thread, whose heap
    /// another thread may be using (see `pipeline::run`).
    pub fn merge(&mut self, other: &mut ScanDetector) {
        self.evicted += other.evicted;
        for (k, o) in &mut other.sources {
            match self.sources.get_mut(k) {
                Some(s) => s.merge(o),
                None => {
                    self.sources.insert(*k, std::mem::take(o));
                }
            }
        }
    }

    /// The scan events: one per source and episode (a run of consecutive
    /// active windows) with a verdict, in source and time order.
    pub fn events(&self, home: &HomeNets) -> Vec<Event> {
        let mut keys: Vec<&Key> = self.sources.keys().collect();
        keys.sort();
        let mut events = Vec::new();
        let mut episode: Option<(Key, Source)> = None;
        for k in keys {
            let s = &self.sources[k];
            match &mut episode {
                Some(((ip, last), e)) if *ip == k.0 && *last + 1 == k.1 => {
                    e.merge(s);
                    *last = k.1;
                }
                _ => {
                    if let Some(((ip, _), e)) = episode.take() {
                        events.extend(verdict(ip, &e, home));
                    }
                    episode = Some((*k, s.clone()));
                }
            }
        }
        if let Some(((ip, _), e)) = episode {
            events.extend(verdict(ip, &e, home));
        }
        events
    }
}

/// The `scan` event of DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScanEvent {
    pub source: Host,
    /// Busiest destination ports, most SYNs first (at most 10).
    pub ports: Vec<u16>,
    pub distinct_targets: u64,
    pub distinct_ports: u64,
    pub syns: u64,
    pub mirai_fingerprint: bool,
    pub mirai_matches: u64,
    #[serde(serialize_with = "serialize_ts")]
    pub first_ts: Nanos,
    #[serde(serialize_with = "serialize_ts")]
    pub last_ts: Nanos,
    /// `mirai-like`, `scanner`, or `sweep` (ARP/ICMP).
    pub verdict: &'static str,
    /// `outbound` (home device scans out), `inbound` (home is scanned), `lan`.
    pub direction: &'static str,
    /// First contacts answered by SYN-ACK, refused by RST, never answered.
    pub answered: u64,
    pub refused: u64,
    pub unanswered: u64,
    /// Targets that answered, with the port (bounded list).
    pub open: Vec<String>,
    pub evidence: Vec<String>,
    /// Protocols the same source brute-forced (a scanner that then tries
    /// default logins is one story: Mirai).
    pub bruteforce: Vec<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Host {
    pub ip: String,
    pub mac: Option<String>,
}

fn hash_addr(a: u128) -> u64 {
    mix(a as u64 ^ mix((a >> 64) as u64))
}

fn trw_scanner(s: &Source) -> bool {
    let failures = (s.rejected + s.unanswered) as f64;
    let successes = s.answered as f64;
    let t = th();
    let up = ((1.0 - t.trw_theta1) / (1.0 - t.trw_theta0)).ln();
    let down = (t.trw_theta1 / t.trw_theta0).ln();
    let llr = failures * up + successes * down;
    llr >= (t.trw_beta / t.trw_alpha).ln()
}

fn verdict(ip: IpAddr, s: &Source, home: &HomeNets) -> Option<Event> {
    let t = th();
    let targets = s.targets.count();
    let nports = s.distinct_ports.count();
    let mut busiest: Vec<(u16, u64)> = s.ports.iter().copied().filter(|x| x.1 > 0).collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top3: u64 = busiest.iter().take(3).map(|x| x.1).sum();
    let concentrated = s.syns > 0 && top3 as f64 >= t.port_concentration * s.syns as f64;
    let mirai = s.mirai_first.len() >= t.mirai_matches;
    let horizontal = targets >= t.min_targets && concentrated;
    let vertical = nports >= t.min_ports && targets <= 3;
    let tcp_scan = (trw_scanner(s) && (horizontal || vertical))
        || s.odd_probes >= t.odd_probes
        || s.tool.is_some();
    let sweep =
        s.arp_targets.count() >= t.sweep_targets || s.ping_targets.count() >= t.sweep_targets;
    if !mirai && !tcp_scan && !sweep {
        return None;
    }
    let src_home = home.contains(ip);
    let mostly_home = s.home_targets * 2 > s.syns || (s.syns == 0 && src_home);
    let direction = match (src_home, mostly_home) {
        (true, false) => "outbound",
        (true, true) => "lan",
        (false, _) => "inbound",
    };
    let verdict = if mirai {
        "mirai-like"
    } else if tcp_scan {
        "scanner"
    } else {
        "sweep"
    };
    let severity = match (verdict, direction) {
        ("mirai-like", "outbound" | "lan") => Severity::Critical,
        ("mirai-like", _) => Severity::Medium,
        (_, "outbound") => Severity::High,
        (_, "lan") => Severity::Medium,
        _ if s.answered > 0 => Severity::Medium,
        _ => Severity::Low,
    };
    let mut evidence = Vec::new();
    if mirai {
        evidence.push(format!(
            "{} SYNs with sequence number = destination address (Mirai's stateless scanner)",
            s.mirai_matches
        ));
    }
    if s.syns > 0 {
        let count = |port: u16| busiest.iter().find(|x| x.0 == port).map_or(0, |x| x.1);
        let (telnet, telnet_alt) = (count(23), count(2323));
        if telnet + telnet_alt > 0 {
            evidence.push(format!(
                "ports 23/2323: {telnet}/{telnet_alt} SYNs (Mirai sends 9:1)"
            ));
        }
        evidence.push(format!(
            "{} of {} SYNs carry no TCP options",
            s.no_options, s.syns
        ));
        if !s.windows_overflow && s.windows.len() <= 2 {
            evidence.push(format!("TCP windows used: {:?}", s.windows));
        }
        evidence.push(format!(
            "first contacts: {} answered, {} refused, {} unanswered",
            s.answered, s.rejected, s.unanswered
        ));
    }
    let worm: Vec<String> = busiest
        .iter()
        .filter_map(|&(p, _)| scan_ports::lookup(p).map(|w| format!("{p} ({})", w.family)))
        .take(5)
        .collect();
    if !worm.is_empty() {
        evidence.push(format!("ports scanned by IoT worms: {}", worm.join("; ")));
    }
    if let Some(tool) = s.tool {
        evidence.push(format!(
            "{} HTTP requests with the default User-Agent of {tool} (signatures/scanner-tools.tsv)",
            s.tool_requests
        ));
    }
    if s.odd_probes > 0 {
        evidence.push(format!(
            "{} probes no TCP stack sends in normal use (NULL/FIN/XMAS/SYN+FIN) or ICMP timestamp requests",
            s.odd_probes
        ));
    }
    if s.arp_targets.count() >= t.sweep_targets {
        evidence.push(format!(
            "ARP requests for {} distinct addresses",
            s.arp_targets.count()
        ));
    }
    if s.ping_targets.count() >= t.sweep_targets {
        evidence.push(format!(
            "ICMP echo requests to {} distinct addresses",
            s.ping_targets.count()
        ));
    }
    let ts = if mirai {
        s.mirai_first[t.mirai_matches - 1].0
    } else {
        s.first_ts
    };
    let scan = ScanEvent {
        source: Host {
            ip: ip.to_string(),
            mac: if src_home {
                s.mac.as_ref().map(mac_string)
            } else {
                None
            },
        },
        ports: busiest.iter().take(10).map(|x| x.0).collect(),
        distinct_targets: if verdict == "sweep" && s.syns == 0 {
            s.arp_targets.count().max(s.ping_targets.count())
        } else {
            targets
        },
        distinct_ports: nports,
        syns: s.syns,
        mirai_fingerprint: mirai,
        mirai_matches: s.mirai_matches,
        first_ts: s.first_ts,
        last_ts: s.last_ts,
        verdict,
        direction,
        answered: s.answered,
        refused: s.rejected,
        unanswered: s.unanswered,
        open: s.open.iter().map(|(ip, p)| format!("{ip}:{p}")).collect(),
        evidence,
        bruteforce: Vec::new(),
    };
    Some(Event {
        ts,
        severity,
        kind: EventKind::Scan(scan),
    })
}

#[cfg(test)]
mod tests;
